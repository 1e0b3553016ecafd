"""The contract every channel layer implements: ASGI 1 plus async twins.

Subclass :class:`BaseChannelLayer` to write a backend. Implement the methods
under "Methods that backends must implement" and list the optional
capabilities you offer in ``extensions`` (``"groups"``, ``"flush"``,
``"statistics"``, ``"presence"``). Name checks, capacity lookup, message
encoding and ``new_channel`` are shared, so every backend behaves the same
way. The defaults of the ``"presence"`` extension live in :mod:`.presence`,
with the rules both built-in layers follow.

A consumer's sends are encoded once, when it calls ``send()`` (so a bad
message fails there), and handed to the layer as bytes when the consumer
returns: :meth:`BaseChannelLayer.encode` and the ``*_encoded`` twins of the
send methods. A backend that stores what :meth:`encode` returns implements
the twins to skip a second encoding; the defaults decode and call the plain
method, and so does a subclass that overrides a plain method but not its
twin, so that its override still sees every message.
"""

from __future__ import annotations

import fnmatch
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, ClassVar

from .. import exceptions
from .codec import DEFAULT_MAX_MESSAGE_SIZE, Encryptor, MessageCodec
from .names import RANDOM_NAME_BYTES, non_local_part, random_name, require_valid_channel_name
from .presence import PresenceExtension

Message = dict[str, Any]
ReceiveResult = tuple[str, Message] | tuple[None, None]
#: What :meth:`BaseChannelLayer.send_then_poll` returns: each send's error (or None),
#: and the message it took, if any.
SendsThenPoll = tuple[list[Exception | None], ReceiveResult]


def _compile_capacity_rules(
    channel_capacity: Mapping[Any, int] | None,
) -> list[tuple[re.Pattern[str], int]]:
    rules = []
    for pattern, capacity in (channel_capacity or {}).items():
        if isinstance(pattern, str):
            pattern = re.compile(fnmatch.translate(pattern))
        elif not isinstance(pattern, re.Pattern):
            raise ValueError(
                f"channel_capacity keys must be glob strings or compiled regexes, not {pattern!r}"
            )
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"channel_capacity for {pattern.pattern!r} must be a positive int")
        rules.append((pattern, capacity))
    return rules


def _decode_then_send(self: BaseChannelLayer, channel: str, data: bytes) -> None:
    """Send encoded *data* through :meth:`~BaseChannelLayer.send` (a layer without a twin)."""
    self.send(channel, self.codec.decode(data))


async def _decode_then_asend(self: BaseChannelLayer, channel: str, data: bytes) -> None:
    await self.asend(channel, self.codec.decode(data))


def _decode_then_send_group(self: BaseChannelLayer, group: str, data: bytes) -> None:
    self.send_group(group, self.codec.decode(data))


async def _decode_then_asend_group(self: BaseChannelLayer, group: str, data: bytes) -> None:
    await self.asend_group(group, self.codec.decode(data))


def _decode_then_send_then_poll(
    self: BaseChannelLayer, sends: Sequence[tuple[str, bytes]], channels: Iterable[str]
) -> SendsThenPoll:
    decode = self.codec.decode
    return self.send_then_poll([(channel, decode(data)) for channel, data in sends], channels)


#: {encoded twin: (the plain method it stands for, the twin that decodes and calls it)}
_TWINS: dict[str, tuple[str, Any]] = {
    "send_encoded": ("send", _decode_then_send),
    "asend_encoded": ("asend", _decode_then_asend),
    "send_group_encoded": ("send_group", _decode_then_send_group),
    "asend_group_encoded": ("asend_group", _decode_then_asend_group),
    "send_encoded_then_poll": ("send_then_poll", _decode_then_send_then_poll),
}


class BaseChannelLayer(PresenceExtension):
    """Shared behaviour of all channel layers.

    Options common to every backend:

    ``expiry``
        Seconds a message waits unread before it is dropped (default 60).
    ``group_expiry``
        Seconds a group membership lasts after the last ``group_add`` (default 86400).
    ``capacity``
        Messages a channel holds before ``send`` raises ``ChannelFull`` (default 100).
    ``channel_capacity``
        ``{glob or compiled regex: capacity}`` overrides, first match wins. A
        process-specific channel is matched, and counted, on its ``prefix!`` part.
    ``max_message_size``
        Largest encoded message in bytes (default 1 MiB); larger ones raise
        ``MessageTooLarge``.
    ``symmetric_encryption_keys``
        A list of keys; messages are stored Fernet-encrypted with the first
        and decrypted with any of them, so keys can be rotated.
    ``presence_grace``
        Seconds a released presence entry (its socket closed, or its process
        died) stays listed, so a client that reconnects does not flicker out
        and in (default 5; 0 for none).
    """

    ChannelFull: ClassVar[type[Exception]] = exceptions.ChannelFull
    MessageTooLarge: ClassVar[type[Exception]] = exceptions.MessageTooLarge

    extensions: ClassVar[list[str]] = []

    #: Capacities of channels channels-classic itself uses, after the project's own
    #: ``channel_capacity`` rules: a connection's wait channel (``enforce_ordering``)
    #: holds every message that overtook the one being consumed.
    internal_channel_capacity: ClassVar[dict[str, int]] = {"channels.wait.*": 10_000}

    #: How long a blocking receive waits, at most, before returning ``(None, None)``.
    blocking_timeout: float = 5.0
    #: Random bytes behind the suffix of a name made by ``new_channel``.
    new_channel_bytes: ClassVar[int] = RANDOM_NAME_BYTES
    #: What turns messages into stored bytes and back (msgpack, size limit, encryption).
    codec_class: ClassVar[type[MessageCodec]] = MessageCodec
    #: Seconds between two housekeeping passes of :meth:`maintain`, at most one per
    #: interval however often it is called (a test may set 0 on an instance).
    maintain_interval: float = 1.0

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: int = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[Any, int] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        symmetric_encryption_keys: Iterable[str | bytes] | None = None,
        presence_grace: float = 5.0,
    ) -> None:
        for option, value in (
            ("expiry", expiry),
            ("group_expiry", group_expiry),
            ("capacity", capacity),
            ("max_message_size", max_message_size),
        ):
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{option} must be a positive number, not {value!r}")
        if (
            not isinstance(presence_grace, int | float)
            or isinstance(presence_grace, bool)
            or not math.isfinite(presence_grace)
            or presence_grace < 0
        ):
            raise ValueError(
                "presence_grace must be a number of seconds >= 0 (0 for no grace), "
                f"not {presence_grace!r}"
            )
        self.presence_grace = float(presence_grace)
        self.expiry = expiry
        self.group_expiry = group_expiry
        self.capacity = int(capacity)
        self._capacity_rules = _compile_capacity_rules(channel_capacity)
        self._internal_rules = _compile_capacity_rules(self.internal_channel_capacity)
        self.get_capacity = lru_cache(maxsize=1024)(self._lookup_capacity)
        encryptor = None
        if symmetric_encryption_keys is not None:
            # Checked at run time: a lone string is refused there with the fix in the message.
            encryptor = Encryptor(symmetric_encryption_keys, ttl=int(expiry) + 10)  # type: ignore[arg-type]
        self.codec = self.codec_class(max_message_size, encryptor)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Route an encoded twin to its plain method in a class that overrides only the latter.

        A subclass of a backend that overrides ``send()`` (to count, to log, to
        refuse) must see the messages the worker flushes too, not only those
        sent directly.
        """
        super().__init_subclass__(**kwargs)
        for twin, (plain, decode_then_plain) in _TWINS.items():
            if plain in vars(cls) and twin not in vars(cls):
                setattr(cls, twin, decode_then_plain)

    # Shared helpers ------------------------------------------------------

    def _lookup_capacity(self, channel: str) -> int:
        """Return the capacity of *channel* (call ``get_capacity``, which caches this)."""
        name = non_local_part(channel)
        for pattern, capacity in (*self._capacity_rules, *self._internal_rules):
            if pattern.match(name):
                return capacity
        return self.capacity

    def new_channel(self, pattern: str) -> str:
        """Return a new, unguessable single-reader channel name: *pattern* plus a random suffix.

        *pattern* must end with ``?``, as the ASGI 1 conformance suite requires
        (``new_channel("test!")`` is an error). The local parts of a
        process-specific channel belong to the process that receives on its
        prefix, which makes them with :func:`~channels.layers.names.new_process_channel`.
        """
        if isinstance(pattern, str) and pattern.endswith("!"):
            raise TypeError(
                f"new_channel() takes a pattern ending in '?', not {pattern!r}: the process "
                "that receives on a 'prefix!' channel makes its names with "
                "channels.layers.names.new_process_channel(prefix)"
            )
        require_valid_channel_name(pattern)
        if not pattern.endswith("?"):
            raise TypeError(f"new_channel() takes a pattern ending in '?', not {pattern!r}")
        return require_valid_channel_name(random_name(pattern, self.new_channel_bytes))

    async def anew_channel(self, pattern: str) -> str:
        """Async twin of :meth:`new_channel`."""
        return self.new_channel(pattern)

    def receive_many(self, channels: Iterable[str], block: bool = False) -> ReceiveResult:
        """Deprecated ASGI 1.0 name of :meth:`receive`."""
        warnings.warn(
            "receive_many() is deprecated; use receive()", DeprecationWarning, stacklevel=2
        )
        return self.receive(channels, block=block)

    def send_then_poll(
        self, sends: Sequence[tuple[str, Message]], channels: Iterable[str]
    ) -> SendsThenPoll:
        """Send each ``(channel, message)`` in order, then maybe take a message.

        The worker calls this when a consumer has finished: a backend that can
        send and pop in one round trip returns a message already waiting on
        *channels*; ``(None, None)`` only means none was taken this way. The
        first list holds each send's exception (``ChannelFull``...), or None.
        This default sends one by one and takes nothing.
        """
        errors: list[Exception | None] = []
        for channel, message in sends:
            try:
                self.send(channel, message)
            except Exception as exc:
                errors.append(exc)
            else:
                errors.append(None)
        return errors, (None, None)

    # Encoded sends: a message encoded once, when a consumer sent it ----------

    def encode(self, message: Message) -> bytes:
        """Return *message* as the bytes this layer stores, for the ``*_encoded`` sends.

        Raise what :meth:`send` raises for a bad message (``TypeError`` naming
        the key path, ``MessageTooLarge``): the worker calls this when a
        consumer sends, so the mistake surfaces in the consumer. The bytes
        depend on the message only, never on where it goes.
        """
        return self.codec.encode(message)

    def send_encoded(self, channel: str, data: bytes) -> None:
        """Send *data*, from :meth:`encode`, to *channel*; raise as :meth:`send` does."""
        _decode_then_send(self, channel, data)

    async def asend_encoded(self, channel: str, data: bytes) -> None:
        """Async twin of :meth:`send_encoded`."""
        await _decode_then_asend(self, channel, data)

    def send_group_encoded(self, group: str, data: bytes) -> None:
        """Send *data*, from :meth:`encode`, to every channel in *group*."""
        _decode_then_send_group(self, group, data)

    async def asend_group_encoded(self, group: str, data: bytes) -> None:
        """Async twin of :meth:`send_group_encoded`."""
        await _decode_then_asend_group(self, group, data)

    def send_encoded_then_poll(
        self, sends: Sequence[tuple[str, bytes]], channels: Iterable[str]
    ) -> SendsThenPoll:
        """:meth:`send_then_poll` for sends whose messages :meth:`encode` made.

        This default sends one by one with :meth:`send_encoded` and takes
        nothing; a layer that overrides :meth:`send_then_poll` alone has its
        override called with the messages decoded.
        """
        errors: list[Exception | None] = []
        for channel, data in sends:
            try:
                self.send_encoded(channel, data)
            except Exception as exc:
                errors.append(exc)
            else:
                errors.append(None)
        return errors, (None, None)

    def process_alive(self, channel: str) -> bool:
        """Return whether the process that receives on *channel* (``prefix!...``) is alive.

        A worker asks before doing work whose only reader is that process (an
        interface server's ``http.request``), to skip it cheaply when the
        process is gone. Answer False only when sure: True for a normal
        channel, and for a process the layer knows nothing of. This default
        knows of no process, so it always answers True; a backend that tracks
        its receivers overrides it.
        """
        if not isinstance(channel, str):
            raise TypeError(f"process_alive() takes a channel name (str), not {channel!r}")
        return True

    async def aprocess_alive(self, channel: str) -> bool:
        """Async twin of :meth:`process_alive`."""
        return self.process_alive(channel)

    def maintain(self) -> None:
        """Do the layer's periodic housekeeping; cheap to call often, it never raises.

        Workers and interface servers call it about once a second; the layer
        does at most one pass per :attr:`maintain_interval`. A pass expires
        presence entries whose grace ran out and sends the pending presence
        diffs; on Redis it also reaps the group memberships and presence of
        dead processes. A layer that is down logs it and returns. This
        default has nothing to do.
        """

    async def amaintain(self) -> None:
        """Async twin of :meth:`maintain`."""
        self.maintain()

    def close(self) -> None:
        """Release connections and other resources (optional)."""

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        self.close()

    # Methods that backends must implement --------------------------------

    def send(self, channel: str, message: Message) -> None:
        """Send *message* to *channel*; never blocks. May raise ``ChannelFull``."""
        raise NotImplementedError("send() must be implemented by a channel layer")

    def receive(
        self, channels: Iterable[str], block: bool = False, *, timeout: float | None = None
    ) -> ReceiveResult:
        """Return ``(channel, message)`` from one of *channels*, or ``(None, None)``.

        With ``block=True`` wait until a message arrives, at most *timeout*
        seconds (default ``blocking_timeout``).
        """
        raise NotImplementedError("receive() must be implemented by a channel layer")

    async def asend(self, channel: str, message: Message) -> None:
        """Async twin of :meth:`send`."""
        raise NotImplementedError("asend() must be implemented by a channel layer")

    async def areceive(
        self, channels: Iterable[str], block: bool = False, *, timeout: float | None = None
    ) -> ReceiveResult:
        """Async twin of :meth:`receive`."""
        raise NotImplementedError("areceive() must be implemented by a channel layer")

    # Methods of the "groups" extension -----------------------------------

    def group_add(self, group: str, channel: str) -> None:
        """Add *channel* to *group*, or refresh its membership."""
        raise NotImplementedError("group_add() is part of the 'groups' extension")

    def group_discard(self, group: str, channel: str) -> None:
        """Remove *channel* from *group*; no error if it is not a member."""
        raise NotImplementedError("group_discard() is part of the 'groups' extension")

    def group_channels(self, group: str) -> list[str]:
        """Return the channels in *group*."""
        raise NotImplementedError("group_channels() is part of the 'groups' extension")

    def group_count(self, group: str) -> int:
        """Return how many live members *group* has (this default counts ``group_channels``)."""
        return len(self.group_channels(group))

    def send_group(self, group: str, message: Message) -> None:
        """Send *message* to every channel in *group*; full channels are skipped and counted."""
        raise NotImplementedError("send_group() is part of the 'groups' extension")

    async def agroup_add(self, group: str, channel: str) -> None:
        raise NotImplementedError("agroup_add() is part of the 'groups' extension")

    async def agroup_discard(self, group: str, channel: str) -> None:
        raise NotImplementedError("agroup_discard() is part of the 'groups' extension")

    async def agroup_channels(self, group: str) -> list[str]:
        raise NotImplementedError("agroup_channels() is part of the 'groups' extension")

    async def agroup_count(self, group: str) -> int:
        """Async twin of :meth:`group_count`."""
        return len(await self.agroup_channels(group))

    async def asend_group(self, group: str, message: Message) -> None:
        raise NotImplementedError("asend_group() is part of the 'groups' extension")

    # Methods of the "flush" and "statistics" extensions ------------------

    def flush(self) -> None:
        """Delete every message and group membership of this layer."""
        raise NotImplementedError("flush() is part of the 'flush' extension")

    async def aflush(self) -> None:
        raise NotImplementedError("aflush() is part of the 'flush' extension")

    def global_statistics(self) -> dict[str, int]:
        """Return ``messages_count`` and ``channel_full_count`` over all channels."""
        raise NotImplementedError("global_statistics() is part of the 'statistics' extension")

    def channel_statistics(self, channel: str) -> dict[str, int]:
        """Return counts, ``messages_pending`` and ``messages_max_age`` for *channel*.

        ``messages_max_age`` is how long the oldest waiting message has waited,
        in whole seconds (as asgi_redis reported it).
        """
        raise NotImplementedError("channel_statistics() is part of the 'statistics' extension")
