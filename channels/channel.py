"""``Channel`` and ``Group``: the names consumers send to."""

from __future__ import annotations

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


class _Named:
    """A name on a channel layer, resolved lazily so module-level objects read no settings."""

    def __init__(self, name: str, alias: str, channel_layer: Any) -> None:
        self.name = name
        self.alias = alias
        self._channel_layer = channel_layer

    @property
    def channel_layer(self) -> Any:
        if self._channel_layer is None:
            return channel_layers[self.alias]
        return self._channel_layer

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.name == self.name  # type: ignore[attr-defined]

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
    """A channel on a layer (the default one unless told otherwise).

    ``send()`` inside a consumer waits until the consumer returns successfully;
    pass ``immediately=True`` to send at once.
    """

    def __init__(
        self,
        name: str | bytes,
        alias: str = DEFAULT_CHANNEL_LAYER,
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
    """A named set of channels that one send reaches."""

    def __init__(
        self,
        name: str | bytes,
        alias: str = DEFAULT_CHANNEL_LAYER,
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

    async def aadd(self, channel: Channel | str) -> None:
        await self.channel_layer.agroup_add(self.name, _channel_name(channel))

    async def adiscard(self, channel: Channel | str) -> None:
        await self.channel_layer.agroup_discard(self.name, _channel_name(channel))

    async def asend(self, content: dict[str, Any], immediately: bool = False) -> None:
        await self._asend("send_group", content, immediately)
