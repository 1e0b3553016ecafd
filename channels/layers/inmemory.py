"""A channel layer inside one process, for ``runserver`` and tests.

It is thread-safe (``runserver`` runs its workers in threads), a blocking
receive sleeps until a message arrives instead of polling, and an async
receive is woken by sends from any thread. It cannot carry messages between
processes: use the Redis layer for ``runworker``.

Presence follows the same rules as on Redis (:mod:`.presence`); its sets are
kept by a :class:`~.inmemory_presence.PresenceTable` under the layer's lock.
Nothing here dies without closing, so :meth:`InMemoryChannelLayer.maintain`
only expires released entries and sends the pending diffs.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from .base import BaseChannelLayer, Message, ReceiveResult
from .inmemory_presence import PresenceTable
from .names import non_local_part, require_valid_channel_name, require_valid_group_name, stats_name
from .presence import Listing, check_track, require_presence_name, send_diff

# (deadline, full channel name, encoded message)
_Entry = tuple[float, str, bytes]


class _SyncWaiter:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()

    def wake(self) -> None:
        self.event.set()


class _AsyncWaiter:
    __slots__ = ("future", "loop")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[None] = self.loop.create_future()

    def _set(self) -> None:
        if not self.future.done():
            self.future.set_result(None)

    def wake(self) -> None:
        # A closed loop raises RuntimeError: its receiver is gone, nobody to wake.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._set)


class InMemoryChannelLayer(BaseChannelLayer):
    """Channel layer kept in this process's memory."""

    extensions = ["groups", "flush", "statistics", "presence"]

    #: Seconds between sweeps that drop expired messages from idle channels.
    sweep_interval: float = 1.0

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._lock = threading.Lock()
        self._queues: dict[str, deque[_Entry]] = {}
        self._groups: dict[str, dict[str, float]] = {}
        self._waiters: dict[str, set[_SyncWaiter | _AsyncWaiter]] = defaultdict(set)
        self._counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self._totals = [0, 0]
        self._last_sweep = time.monotonic()
        self._presence = PresenceTable()
        self._last_maintain = -math.inf

    # Internals, all called with the lock held ----------------------------

    def _expire(self, queue: deque[_Entry], now: float) -> None:
        while queue and queue[0][0] <= now:
            _, channel, _ = queue.popleft()
            # A message that expired unread means nobody is listening there.
            for members in self._groups.values():
                members.pop(channel, None)

    def _sweep(self, now: float) -> None:
        mono = time.monotonic()
        if mono - self._last_sweep < self.sweep_interval:
            return
        self._last_sweep = mono
        for key, queue in list(self._queues.items()):
            self._expire(queue, now)
            if not queue:  # empty queues are dropped here, not on every receive
                del self._queues[key]
        cutoff = now - self.group_expiry
        for group, members in list(self._groups.items()):
            for channel, added in list(members.items()):
                if added <= cutoff:
                    del members[channel]
            if not members:
                del self._groups[group]

    def _count(self, channel: str, index: int) -> None:
        self._counts[stats_name(channel)][index] += 1
        self._totals[index] += 1

    def _push(self, channel: str, data: bytes, now: float) -> bool:
        key = non_local_part(channel)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        elif queue:
            self._expire(queue, now)
            if len(queue) >= self.get_capacity(channel):
                self._count(channel, 1)
                return False
        queue.append((now + self.expiry, channel, data))
        self._count(channel, 0)
        for waiter in self._waiters.get(key, ()):
            waiter.wake()
        return True

    def _pop(self, keys: list[str], now: float) -> tuple[str, bytes] | None:
        self._sweep(now)
        best: deque[_Entry] | None = None
        for key in keys:
            queue = self._queues.get(key)
            if not queue:
                continue
            self._expire(queue, now)
            if queue and (best is None or queue[0][0] < best[0][0]):
                best = queue
        if best is None:
            return None
        _, channel, data = best.popleft()
        return channel, data

    def _receive_keys(self, channels: Iterable[str]) -> list[str]:
        if isinstance(channels, str):
            raise TypeError("receive() takes a list of channel names, not a single str")
        keys = self._keys_of(tuple(channels))
        # Equal deadlines: no channel is always first.
        return keys if len(keys) < 2 else random.sample(keys, len(keys))

    @staticmethod
    @lru_cache(maxsize=256)
    def _keys_of(channels: tuple[str, ...]) -> list[str]:
        return [non_local_part(require_valid_channel_name(c, receive=True)) for c in channels]

    def _register(self, keys: list[str], waiter: _SyncWaiter | _AsyncWaiter) -> None:
        for key in keys:
            self._waiters[key].add(waiter)

    def _unregister(self, keys: list[str], waiter: _SyncWaiter | _AsyncWaiter) -> None:
        with self._lock:
            for key in keys:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._waiters[key]

    def _result(self, popped: tuple[str, bytes] | None) -> ReceiveResult:
        if popped is None:
            return None, None
        return popped[0], self.codec.decode(popped[1])

    # Channels ------------------------------------------------------------

    def send(self, channel: str, message: Message) -> None:
        require_valid_channel_name(channel)
        data = self.codec.encode(message)
        with self._lock:
            if not self._push(channel, data, time.time()):
                raise self.ChannelFull(f"Channel {stats_name(channel)!r} is at capacity")

    def send_encoded(self, channel: str, data: bytes) -> None:
        # What encode() returns is what this layer stores: push it as it is.
        require_valid_channel_name(channel)
        with self._lock:
            if not self._push(channel, data, time.time()):
                raise self.ChannelFull(f"Channel {stats_name(channel)!r} is at capacity")

    async def asend(self, channel: str, message: Message) -> None:
        self.send(channel, message)

    async def asend_encoded(self, channel: str, data: bytes) -> None:
        self.send_encoded(channel, data)

    def receive(
        self, channels: Iterable[str], block: bool = False, *, timeout: float | None = None
    ) -> ReceiveResult:
        keys = self._receive_keys(channels)
        if not keys:
            return None, None
        deadline = time.monotonic() + (self.blocking_timeout if timeout is None else timeout)
        while True:
            waiter = _SyncWaiter()
            with self._lock:
                popped = self._pop(keys, time.time())
                if popped is not None or not block:
                    return self._result(popped)
                self._register(keys, waiter)
            try:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not waiter.event.wait(remaining):
                    with self._lock:
                        return self._result(self._pop(keys, time.time()))
            finally:
                self._unregister(keys, waiter)

    async def areceive(
        self, channels: Iterable[str], block: bool = False, *, timeout: float | None = None
    ) -> ReceiveResult:
        keys = self._receive_keys(channels)
        if not keys:
            return None, None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.blocking_timeout if timeout is None else timeout)
        while True:
            waiter = _AsyncWaiter()
            with self._lock:
                popped = self._pop(keys, time.time())
                if popped is not None or not block:
                    return self._result(popped)
                self._register(keys, waiter)
            try:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise asyncio.TimeoutError
                await asyncio.wait_for(waiter.future, remaining)
            except asyncio.TimeoutError:
                with self._lock:
                    return self._result(self._pop(keys, time.time()))
            finally:
                self._unregister(keys, waiter)

    # Groups --------------------------------------------------------------

    def group_add(self, group: str, channel: str) -> None:
        require_valid_group_name(group)
        require_valid_channel_name(channel)
        with self._lock:
            self._groups.setdefault(group, {})[channel] = time.time()

    def group_discard(self, group: str, channel: str) -> None:
        require_valid_group_name(group)
        require_valid_channel_name(channel)
        with self._lock:
            members = self._groups.get(group)
            if members is not None:
                members.pop(channel, None)
                if not members:
                    del self._groups[group]

    def _members(self, group: str, now: float) -> list[str]:
        self._sweep(now)
        for channel in list(self._groups.get(group, ())):
            queue = self._queues.get(non_local_part(channel))
            if queue:
                self._expire(queue, now)
        members = self._groups.get(group, {})
        cutoff = now - self.group_expiry
        return [channel for channel, added in members.items() if added > cutoff]

    def group_channels(self, group: str) -> list[str]:
        require_valid_group_name(group)
        with self._lock:
            return self._members(group, time.time())

    def send_group(self, group: str, message: Message) -> None:
        require_valid_group_name(group)
        data = self.codec.encode(message)
        with self._lock:
            now = time.time()
            for channel in self._members(group, now):
                self._push(channel, data, now)

    def send_group_encoded(self, group: str, data: bytes) -> None:
        require_valid_group_name(group)
        with self._lock:
            now = time.time()
            for channel in self._members(group, now):
                self._push(channel, data, now)

    async def agroup_add(self, group: str, channel: str) -> None:
        self.group_add(group, channel)

    async def agroup_discard(self, group: str, channel: str) -> None:
        self.group_discard(group, channel)

    async def agroup_channels(self, group: str) -> list[str]:
        return self.group_channels(group)

    async def asend_group(self, group: str, message: Message) -> None:
        self.send_group(group, message)

    async def asend_group_encoded(self, group: str, data: bytes) -> None:
        self.send_group_encoded(group, data)

    # Presence (the async twins are the base's: nothing here blocks) --------

    def presence_track(
        self,
        presence: str,
        channel: str,
        key: str,
        meta: dict[str, Any] | None = None,
        notify: str | None = None,
    ) -> None:
        presence, channel, key, encoded, notify = check_track(presence, channel, key, meta, notify)
        with self._lock:
            now = time.monotonic()
            self._presence.track(presence, channel, key, encoded, notify, now, self.presence_grace)

    def presence_untrack(self, presence: str, channel: str) -> None:
        require_presence_name(presence)
        require_valid_channel_name(channel)
        with self._lock:
            self._presence.untrack(presence, channel, time.monotonic())

    def presence_release(self, channel: str) -> None:
        require_valid_channel_name(channel)
        with self._lock:
            # Remembered for as long as a websocket.connect of its socket may wait.
            now, remember = time.monotonic(), 2 * self.expiry
            self._presence.release(channel, now, self.presence_grace, remember)

    def presence_list(self, presence: str) -> Listing:
        require_presence_name(presence)
        with self._lock:
            return self._presence.listing(presence, time.monotonic())

    def presence_count(self, presence: str) -> int:
        require_presence_name(presence)
        with self._lock:
            return self._presence.count(presence, time.monotonic())

    def maintain(self) -> None:
        """Expire released presence entries and send the pending diffs, once per interval."""
        with self._lock:
            now = time.monotonic()
            if now - self._last_maintain < self.maintain_interval:
                return
            self._last_maintain = now
            self._sweep(time.time())
            self._presence.expire(now)
            diffs = self._presence.diffs.take()
        # Outside the lock, which send_group takes; through it, so a subclass sees them.
        for group, presence, joins, leaves in diffs:
            send_diff(self.send_group, group, presence, joins, leaves)

    # Flush and statistics ------------------------------------------------

    def flush(self) -> None:
        with self._lock:
            self._queues.clear()
            self._groups.clear()
            self._presence = PresenceTable()
            self._counts.clear()
            self._totals = [0, 0]

    async def aflush(self) -> None:
        self.flush()

    def global_statistics(self) -> dict[str, int]:
        with self._lock:
            return {"messages_count": self._totals[0], "channel_full_count": self._totals[1]}

    def channel_statistics(self, channel: str) -> dict[str, int]:
        require_valid_channel_name(channel)
        with self._lock:
            now = time.time()
            queue = self._queues.get(non_local_part(channel))
            if queue:
                self._expire(queue, now)
            counts = self._counts.get(stats_name(channel), [0, 0])
            pending = len(queue) if queue else 0
            # Whole seconds, as asgi_redis gave.
            max_age = max(0, int(now - (queue[0][0] - self.expiry))) if queue else 0
            return {
                "messages_count": counts[0],
                "channel_full_count": counts[1],
                "messages_pending": pending,
                "messages_max_age": max_age,
            }
