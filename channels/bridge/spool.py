"""Bytes a slow client has not taken yet, kept on disk instead of in memory.

A worker produces a streamed response (a file download, a large export) or
a stream of WebSocket frames as fast as it can, and nothing can slow it
down: every connection's replies
arrive on one list per process. A client on a slow link therefore falls
behind, and what it has not read yet has to wait somewhere. Memory is the
wrong place for much of it (``CHANNELS_SEND_BUFFER_LIMIT`` bounds that), and
cutting the download off would be wrong too: the client is reading, only
slowly. So past the memory limit the rest waits in an anonymous temporary
file, as nginx buffers a proxied response to ``proxy_temp_path``, up to
``CHANNELS_SEND_SPOOL_LIMIT`` bytes. Only a client that stays that far
behind is cut off.

The file is written at its end and read from its start, so it is a queue:
each held write reads back exactly the bytes it stored, in order. It is
created on first use and closed (deleted by the system) with the connection.
"""

from __future__ import annotations

import tempfile
from typing import IO


class SendSpool:
    """A first-in, first-out queue of bytes in a temporary file, bounded by *limit*."""

    def __init__(self, limit: int | None) -> None:
        #: Bytes that may wait in the file at once; None for no limit, 0 for no spooling.
        self.limit = limit
        self._file: IO[bytes] | None = None
        self._written = 0
        self._read = 0

    @property
    def waiting(self) -> int:
        """Bytes stored and not read back yet."""
        return self._written - self._read

    @property
    def used(self) -> bool:
        """Whether anything was ever stored (so the response is being spooled)."""
        return self._file is not None

    def has_room(self, size: int) -> bool:
        """Return whether *size* more bytes may wait in the file."""
        return self.limit is None or self.waiting + size <= self.limit

    def store(self, data: bytes) -> None:
        """Add *data* at the end of the queue."""
        if self._file is None:
            # Kept open across writes and closed by close(), which the response always reaches.
            self._file = tempfile.TemporaryFile(prefix="channels-response-")  # noqa: SIM115
        self._file.seek(self._written)
        self._file.write(data)
        self._written += len(data)

    def load(self, size: int) -> bytes:
        """Take the next *size* bytes from the start of the queue."""
        if self._file is None or size > self.waiting:
            raise ValueError(f"The spool holds {self.waiting} bytes, not {size}")
        self._file.seek(self._read)
        data = self._file.read(size)
        self._read += size
        if self._read == self._written:  # empty: start again at the file's beginning
            self._file.seek(0)
            self._file.truncate()
            self._read = self._written = 0
        return data

    def close(self) -> None:
        """Delete the file and forget what it held."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._read = self._written = 0
