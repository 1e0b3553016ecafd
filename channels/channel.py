"""``Channel`` and ``Group``: the names consumers send to.

A ``Channel`` or ``Group`` made without an alias or a layer finds its layer
when it is used: inside a consumer, the layer of the message being consumed
(the runner sets it, see :func:`consuming_on`), so a consumer routed on the
alias ``"other"`` that writes ``Group("room").send(...)`` fans out on
``"other"``; elsewhere, the default layer. (1.x took the default layer even
inside such a consumer, unless it passed ``channel_layer=message.channel_layer``.)
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

from .asgi import DEFAULT_CHANNEL_LAYER, channel_layers
from .layers.names import require_valid_channel_name, require_valid_group_name
from .outbox import current_outbox


def _require_dict(content: object) -> dict[str, Any]:
    if not isinstance(content, dict):
        raise TypeError(f"You can only send dicts as content, not {type(content).__name__}")
    return content


#: The frame keys of a reply to a socket, and the type each must have.
_FRAME_TYPES = {"text": str, "bytes": bytes}


def _require_frame(content: dict[str, Any]) -> dict[str, Any]:
    """Check a message bound for sockets, so a mistake fails here, not in the server.

    Forgetting ``json.dumps`` is the usual one: daphne would only fail when it
    writes the frame, far from the consumer that made the mistake.
    """
    for key, kind in _FRAME_TYPES.items():
        value = content.get(key)
        if value is not None and not isinstance(value, kind):
            hint = " (use json.dumps(...) to send a dict or list as text)" if key == "text" else ""
            raise TypeError(
                f"A reply's {key!r} must be {kind.__name__}, not {type(value).__name__}{hint}"
            )
    return content


class _ContextualAlias(str):
    """The type of the default *alias*: ``"default"``, unless a consumer runs on another layer.

    It equals ``DEFAULT_CHANNEL_LAYER`` (the 1.x signature), but an alias
    passed explicitly, even ``"default"``, is a different object and pins
    the layer.
    """

    __slots__ = ()


CONTEXTUAL_ALIAS = _ContextualAlias(DEFAULT_CHANNEL_LAYER)

#: The layer of the message whose consumer runs in this context, if any: the runner
#: sets it (``token = consuming.set(layer)`` ... ``consuming.reset(token)``).
consuming: ContextVar[Any] = ContextVar("channels_consuming", default=None)


def consuming_layer() -> Any:
    """Return the layer of the message being consumed in this context, or None."""
    return consuming.get()


class consuming_on:  # lower case: it is used like a function, as contextlib's are
    """Make *channel_layer* the layer of names used without an alias, in this context.

    The runner of a message sets :data:`consuming` around everything that
    message's run does (signals, consumer, exception policy, callbacks); this
    is the same for code that runs a consumer some other way.
    """

    __slots__ = ("_layer", "_token")

    def __init__(self, channel_layer: Any) -> None:
        self._layer = channel_layer
        self._token: Token[Any] | None = None

    def __enter__(self) -> None:
        self._token = consuming.set(self._layer)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            consuming.reset(self._token)
            self._token = None


class _Named:
    """A name on a channel layer, resolved lazily so module-level objects read no settings."""

    def __init__(self, name: str, alias: str | None, channel_layer: Any) -> None:
        self.name = name
        self._alias = None if alias is CONTEXTUAL_ALIAS else alias
        self._channel_layer = channel_layer

    @property
    def alias(self) -> str:
        """The alias of the layer this name is used on now."""
        if self._alias is not None:
            return self._alias
        layer = self._channel_layer if self._channel_layer is not None else consuming.get()
        return getattr(layer, "alias", DEFAULT_CHANNEL_LAYER)

    @property
    def channel_layer(self) -> Any:
        if self._channel_layer is not None:
            return self._channel_layer
        if self._alias is None:
            layer = consuming.get()
            if layer is not None:
                return layer
            return channel_layers[DEFAULT_CHANNEL_LAYER]
        return channel_layers[self._alias]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.name == self.name

    def __hash__(self) -> int:
        return hash((type(self), self.name))

    def _checked(self, content: object) -> dict[str, Any]:
        return _require_dict(content)

    def _send(self, method: str, content: object, immediately: bool) -> None:
        content = self._checked(content)
        layer = self.channel_layer
        outbox = current_outbox()
        if outbox is None or immediately:
            getattr(layer, method)(self.name, content)
            if outbox is not None:
                outbox.sent_now.add((method, self.name))
        else:
            outbox.add(layer, method, self.name, content)

    async def _asend(self, method: str, content: object, immediately: bool) -> None:
        content = self._checked(content)
        layer = self.channel_layer
        outbox = current_outbox()
        if outbox is None or immediately:
            await getattr(layer, "a" + method)(self.name, content)
            if outbox is not None:
                outbox.sent_now.add((method, self.name))
        else:
            outbox.add(layer, method, self.name, content)


def _channel_name(channel: Channel | str | bytes) -> str:
    if isinstance(channel, Channel):
        return channel.name
    if isinstance(channel, bytes):
        channel = channel.decode("ascii")
    return require_valid_channel_name(channel)


class Channel(_Named):
    """A channel on *channel_layer* or *alias*'s layer, else the consumed message's or the default.

    ``send()`` inside a consumer waits until the consumer returns successfully;
    pass ``immediately=True`` to send at once.
    """

    def __init__(
        self,
        name: str | bytes,
        alias: str = CONTEXTUAL_ALIAS,
        channel_layer: Any = None,
    ) -> None:
        super().__init__(_channel_name(name), alias, channel_layer)

    def _checked(self, content: object) -> dict[str, Any]:
        content = _require_dict(content)
        # Only reply channels (process-specific, "!") carry frames to sockets.
        return _require_frame(content) if "!" in self.name else content

    def send(self, content: dict[str, Any], immediately: bool = False) -> None:
        """Send *content* (a dict) to this channel."""
        self._send("send", content, immediately)

    async def asend(self, content: dict[str, Any], immediately: bool = False) -> None:
        """Async twin of :meth:`send`, for ``async def`` consumers."""
        await self._asend("send", content, immediately)


class Group(_Named):
    """A named set of channels that one send reaches (on the layer a ``Channel`` would use)."""

    def __init__(
        self,
        name: str | bytes,
        alias: str = CONTEXTUAL_ALIAS,
        channel_layer: Any = None,
    ) -> None:
        if isinstance(name, bytes):
            name = name.decode("ascii")
        super().__init__(require_valid_group_name(name), alias, channel_layer)

    def _checked(self, content: object) -> dict[str, Any]:
        return _require_frame(_require_dict(content))

    def add(self, channel: Channel | str) -> None:
        """Add *channel* (a :class:`Channel` or a name) to the group, at once."""
        self.channel_layer.group_add(self.name, _channel_name(channel))

    def discard(self, channel: Channel | str) -> None:
        """Remove *channel* from the group, at once; no error if it is not in it."""
        self.channel_layer.group_discard(self.name, _channel_name(channel))

    def send(self, content: dict[str, Any], immediately: bool = False) -> None:
        """Send *content* (a dict) to every channel in the group."""
        self._send("send_group", content, immediately)

    def count(self) -> int:
        """Return how many channels are in the group now (the layer counts, it lists nothing)."""
        count: int = self.channel_layer.group_count(self.name)
        return count

    def channels(self) -> list[str]:
        """Return the names of the channels in the group now."""
        return list(self.channel_layer.group_channels(self.name))

    async def aadd(self, channel: Channel | str) -> None:
        await self.channel_layer.agroup_add(self.name, _channel_name(channel))

    async def adiscard(self, channel: Channel | str) -> None:
        await self.channel_layer.agroup_discard(self.name, _channel_name(channel))

    async def asend(self, content: dict[str, Any], immediately: bool = False) -> None:
        await self._asend("send_group", content, immediately)

    async def acount(self) -> int:
        """Async twin of :meth:`count`."""
        count: int = await self.channel_layer.agroup_count(self.name)
        return count

    async def achannels(self) -> list[str]:
        """Async twin of :meth:`channels`."""
        return list(await self.channel_layer.agroup_channels(self.name))
