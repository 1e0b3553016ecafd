"""Flow control per connection: a client that does not read cannot grow the server.

Twisted buffers everything written to a transport, so a client that stops
reading (a 20 MB response, a stream of WebSocket replies, the pongs of a ping
flood) would hold all of it in daphne's memory. Under daphne the bridge
registers a :class:`SendFlow` as the connection's streaming producer (see
:func:`channels.bridge.daphne.watch_writes`): Twisted calls
:meth:`~SendFlow.pauseProducing` once the transport's buffer passes its
``bufferSize`` (64 KiB) and :meth:`~SendFlow.resumeProducing` once it has
drained. While paused the bridge writes nothing more: it holds what the
connection is sent, in order and counting its bytes, and writes it out when
Twisted resumes. Replies cannot be refused at their source (every
connection's replies arrive on one list per process), so what is held is
bounded instead: past ``CHANNELS_SEND_BUFFER_LIMIT`` bytes the connection
*overflows*, its held data is dropped and the connection's ``on_overflow``
ends it.

While paused, a WebSocket is not read either (the transport stops reading),
so a client that floods pings without reading the pongs fills the kernel's
socket buffers and then waits, instead of growing the server.

Under another server nothing is registered: the flow never pauses, and every
write goes straight to the server's ``send``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

logger = logging.getLogger("channels.bridge")

#: One write to the client, run now or when the transport has room.
Write = Callable[[], Awaitable[None]]


class Reading(Protocol):
    """What stops and restarts reading from a client (a Twisted transport)."""

    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...


class SendFlow:
    """Writes to one client, held while its transport is full, up to a limit.

    Implements Twisted's ``IPushProducer`` (the three ``*Producing``
    methods), which Twisted calls in the reactor's thread, the event loop's
    under daphne. :meth:`write` is what the connection calls instead of
    ``send``.
    """

    def __init__(self, limit: int | None, on_overflow: Callable[[int], None]) -> None:
        #: Bytes that may be held while paused; None for no limit.
        self.limit = limit
        self.on_overflow = on_overflow
        #: Set by the shim that registers the flow, when it may pause reading too.
        self.reading: Reading | None = None
        self.paused = False
        #: The limit was passed: the connection is being ended, nothing more is written.
        self.overflowed = False
        self.held: deque[tuple[Write, int]] = deque()
        self.held_bytes = 0
        self._flushing: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()
        self._drained.set()

    # Twisted's IPushProducer ---------------------------------------------------

    def pauseProducing(self) -> None:
        """Hold further writes: the transport's buffer is full (called by Twisted)."""
        self.paused = True
        if self.reading is not None:
            self.reading.pauseProducing()

    def resumeProducing(self) -> None:
        """Write out what is held: the transport's buffer has drained (called by Twisted)."""
        if not self.paused:
            return
        self.paused = False
        if self.reading is not None:
            self.reading.resumeProducing()
        if self.held and (self._flushing is None or self._flushing.done()):
            self._flushing = asyncio.ensure_future(self._flush())

    def stopProducing(self) -> None:
        """Drop what is held: the connection is gone (called by Twisted)."""
        self.stop()

    # The connection's side -----------------------------------------------------

    async def write(self, action: Write, size: int) -> bool:
        """Run *action* (a write of *size* bytes) now, or hold it while the client is behind.

        Return False once the connection has overflowed: the caller stops
        relaying to it.
        """
        if self.overflowed:
            return False
        if not self.paused and not self.held:
            await action()
            return True
        self.held.append((action, size))
        self.held_bytes += size
        self._drained.clear()
        if self.limit is not None and self.held_bytes > self.limit:
            held = self.held_bytes
            self.overflowed = True
            self.stop()
            self.on_overflow(held)
            return False
        return True

    def would_overflow(self, size: int) -> bool:
        """Return whether a write of *size* bytes now would be held past the limit."""
        held = self.paused or bool(self.held)
        return held and self.limit is not None and self.held_bytes + size > self.limit

    async def drain(self) -> None:
        """Wait until everything held has been written, or dropped."""
        await self._drained.wait()

    def stop(self) -> None:
        """Drop what is held and write nothing more of it."""
        self.held.clear()
        self.held_bytes = 0
        self._drained.set()
        if self._flushing is not None and self._flushing is not asyncio.current_task():
            self._flushing.cancel()

    async def _flush(self) -> None:
        try:
            while self.held and not self.paused:
                action, size = self.held.popleft()
                self.held_bytes -= size
                await action()
        except Exception:  # a write that fails ends the flush, not the loop
            logger.exception("Could not write held data to a client")
            self.stop()
        if not self.held:
            self._drained.set()
