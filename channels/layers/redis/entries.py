"""The stored entry, ``b"<deadline in ms>|<local parts>|<encoded message>"``, and read-ahead.

A channel is a Redis list of entries. The deadline is when the message
expires unread; the local parts are empty for normal and single-reader
channels and, on a process's ``prefix!`` list, name the channels the entry is
for (several when one group send reached many sockets of one process). This
module is the only Python that writes or reads that format (the Lua in
:mod:`.scripts` reads it on the server).

Entries taken from Redis but not returned yet (the rest of a fan-out entry, a
process's backlog, what a second shard answered) wait in a :class:`ReadAhead`.

With ``symmetric_encryption_keys`` every entry is sealed (:mod:`.seal`): the
read-ahead checks each entry's seal and claims its tag before it keeps or
returns its messages, in the receive's own round trip style (sync or async).
Plain layers store and read entries exactly as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from ..base import ReceiveResult
from ..codec import MessageCodec
from ..names import stats_name
from .seal import Claims, Parsed, claims_of

logger = logging.getLogger("channels.layers.redis")


class Decrypted(bytes):
    """A fan-out entry's message, decrypted once for all its receivers, each unpacking a copy."""

    __slots__ = ()


#: (channel name, encoded message, deadline in ms).
Item = tuple[str, bytes, int]


def now_ms() -> int:
    """Return the time in the entries' unit: milliseconds since the epoch."""
    return int(time.time() * 1000)


def header(deadline: int, locals_: bytes) -> bytes:
    """Return the start of an entry for *locals_* that expires at *deadline* (ms)."""
    return b"%d|%s|" % (deadline, locals_)


def pack(deadline: int, body: bytes) -> bytes:
    """Return an entry of a normal channel: *body* expiring at *deadline* (ms)."""
    return b"%d||%s" % (deadline, body)


def deadline_of(entry: bytes) -> int | None:
    """Return an entry's deadline in ms, or None if it is not an entry."""
    text = entry.partition(b"|")[0]
    return int(text) if text.isdigit() else None


class ReadAhead:
    """Messages taken from Redis but not yet returned, per list key, in order.

    Threads and event loops of one layer share it (a worker's threads, the
    sync layer's private loops), so every change holds the lock; the empty
    case, the common one, is checked without it.
    """

    def __init__(
        self,
        codec: MessageCodec,
        prefix: str,
        shard_of_key: Callable[[str], Any] | None = None,
    ) -> None:
        self._codec = codec
        self._prefix = prefix
        self._lists: dict[str, deque[Item]] = {}
        self._lock = threading.Lock()
        #: Sealed entries (encrypted layers) only: their checks, and where tags are claimed.
        self.claims: Claims | None = claims_of(codec, prefix)
        if self.claims is not None and shard_of_key is None:
            raise ValueError("An encrypted layer's ReadAhead needs shard_of_key to claim entries")
        self._shard_of_key = shard_of_key

    def _parse(self, key: str, entry: bytes) -> Parsed | None:
        """Return (deadline, local parts, body) of a live *entry*; None if expired or malformed."""
        deadline_text, _, rest = entry.partition(b"|")
        locals_, sep, body = rest.partition(b"|")
        deadline = int(deadline_text) if deadline_text.isdigit() else -1
        if not sep or deadline < 0:
            logger.warning("Dropped an undecodable entry in Redis list %s", key)
            return None
        if deadline <= time.time() * 1000:
            return None
        return deadline, locals_, body

    def _parse_all(self, key: str, entries: Iterable[bytes]) -> list[Parsed]:
        return [p for p in (self._parse(key, entry) for entry in entries) if p is not None]

    def _accept(self, claims: Claims, key: str, parsed: list[Parsed]) -> list[Parsed]:
        """Return the sealed entries of *parsed* that verify and win their claim (sync)."""
        opened, commands = claims.prepare(key, parsed, now_ms())
        if not opened:
            return []
        assert self._shard_of_key is not None
        try:
            claimed = self._shard_of_key(key).execute(*commands)
        except Exception:
            return claims.unclaimed(key, opened)
        return claims.accepted(key, opened, claimed)

    async def _aaccept(self, claims: Claims, key: str, parsed: list[Parsed]) -> list[Parsed]:
        """Async twin of :meth:`_accept`: an async receive never waits on a sync round trip."""
        opened, commands = claims.prepare(key, parsed, now_ms())
        if not opened:
            return []
        assert self._shard_of_key is not None
        try:
            claimed = await self._shard_of_key(key).aexecute(*commands)
        except Exception:
            return claims.unclaimed(key, opened)
        return claims.accepted(key, opened, claimed)

    def _items(self, key: str, parsed: Parsed) -> list[Item]:
        """Return the messages of one live, accepted entry of list *key*."""
        deadline, locals_, body = parsed
        name = key[len(self._prefix) :]
        if not locals_:
            return [(name, body, deadline)]
        try:
            text = locals_.decode("ascii")
        except UnicodeDecodeError:
            # One bad entry (another writer, a corrupted list) must not fail
            # the receive: every other reply channel of the process reads it.
            # Only the prefix is logged: a whole reply channel name keys a session.
            logger.warning("Dropped an entry with undecodable local parts in %s", name)
            return []
        if "," not in text:
            return [(name + text, body, deadline)]
        names = [name + local for local in text.split(",")]
        if self._codec.encryptor is not None:
            try:
                body = Decrypted(self._codec.decrypt(body))
            except ValueError:
                logger.warning("Dropped an undecodable message for channels under %s", name)
                return []
        return [(channel, body, deadline) for channel in names]

    def unpack_many(self, key: str, entries: Iterable[bytes]) -> list[Item]:
        """Return the live messages *entries* of list *key* hold, in order; [] if none are.

        A fan-out entry's message is decrypted here, once for all its channels.
        """
        parsed = self._parse_all(key, entries)
        if self.claims is not None and parsed:
            parsed = self._accept(self.claims, key, parsed)
        return [item for entry in parsed for item in self._items(key, entry)]

    async def aunpack_many(self, key: str, entries: Iterable[bytes]) -> list[Item]:
        """Async twin of :meth:`unpack_many`, for the receives of an encrypted layer."""
        parsed = self._parse_all(key, entries)
        if self.claims is not None and parsed:
            parsed = await self._aaccept(self.claims, key, parsed)
        return [item for entry in parsed for item in self._items(key, entry)]

    def unpack(self, key: str, entry: bytes) -> list[Item]:
        """Return the live messages *entry* of list *key* holds; [] if none are live."""
        if self.claims is not None:
            return self.unpack_many(key, (entry,))
        parsed = self._parse(key, entry)
        return [] if parsed is None else self._items(key, parsed)

    def decode(self, item: Item) -> ReceiveResult:
        """Return *item* as a receive result; ``(None, None)`` if it cannot be decoded."""
        payload = item[1]
        try:
            if type(payload) is Decrypted:
                return item[0], self._codec.unpack(payload)
            return item[0], self._codec.decode(payload)
        except ValueError:
            logger.warning("Dropped an undecodable message for channel %s", stats_name(item[0]))
            return None, None

    def deliver(self, key: str, entry: bytes) -> ReceiveResult:
        """Return the first message of *entry* (from list *key*) and keep the rest."""
        return self._first(key, self.unpack(key, entry))

    async def adeliver(self, key: str, entry: bytes) -> ReceiveResult:
        """Async twin of :meth:`deliver` (only an encrypted layer's differs)."""
        if self.claims is None:
            return self.deliver(key, entry)
        return self._first(key, await self.aunpack_many(key, (entry,)))

    def _first(self, key: str, items: list[Item]) -> ReceiveResult:
        if not items:
            return None, None
        if len(items) > 1:
            self.extend(key, items[1:])
        return self.decode(items[0])

    def keep(self, key: str, entries: Iterable[bytes]) -> None:
        """Keep every message of *entries*, taken from list *key*, for later receives."""
        self.extend(key, self.unpack_many(key, entries))

    async def akeep(self, key: str, entries: Iterable[bytes]) -> None:
        """Async twin of :meth:`keep` (only an encrypted layer's differs)."""
        self.extend(key, await self.aunpack_many(key, entries))

    def extend(self, key: str, items: list[Item]) -> None:
        if not items:
            return
        with self._lock:
            queue = self._lists.get(key)
            if queue is None:
                self._lists[key] = deque(items)
            else:
                queue.extend(items)

    def ready(self, keys: Iterable[str]) -> bool:
        """Whether messages are waiting here for any of *keys*."""
        return bool(self._lists) and any(self._lists.get(key) for key in keys)

    def take(self, keys: Iterable[str]) -> ReceiveResult:
        """Return the first live message kept for *keys*, in their order, or ``(None, None)``."""
        if not self._lists:
            return None, None
        now = time.time() * 1000
        with self._lock:
            for key in keys:
                queue = self._lists.get(key)
                while queue:
                    item = queue.popleft()
                    if item[2] > now:
                        if not queue:
                            del self._lists[key]
                        return self.decode(item)
                if queue is not None:
                    del self._lists[key]
        return None, None

    def clear(self) -> None:
        with self._lock:
            self._lists.clear()

    def drain(self) -> dict[str, list[bytes]]:
        """Empty the buffer; return, per normal channel's key, entries to put back, newest first.

        A process's own (``prefix!``) messages are not returned: they die with it.
        Sealed entries get a fresh seal, which the next receiver accepts.
        """
        with self._lock:
            lists, self._lists = self._lists, {}
        kept = {key: items for key, items in lists.items() if "!" not in key}
        if self.claims is None:
            return {
                key: [pack(deadline, body) for _name, body, deadline in reversed(items)]
                for key, items in kept.items()
            }
        # A new seal has a new nonce, hence a tag nobody claimed; the old
        # tags stay claimed, so the entries as first sent cannot be replayed.
        seal = self.claims.seal
        return {
            key: [
                seal.header(key, deadline, b"", seal.digest(body)) + body
                for _name, body, deadline in reversed(items)
            ]
            for key, items in kept.items()
        }
