"""The Redis layer's groups, presence and housekeeping: who is where, kept free of the dead.

:class:`MembershipMethods` is the half of
:class:`~.layer.RedisChannelLayer`'s public API that says who is in what:
the ``"groups"`` extension (a group add or discard of a process's channel
also keeps that process's ownership index, in the same round trip on one
server), the ``"presence"`` extension (:mod:`.presence`), and
:meth:`~MembershipMethods.maintain`, the housekeeping pass that reaps dead
processes (:mod:`.hygiene`), ends presence entries whose grace ran out and
sends the pending presence diffs. Each method only delegates; the layer's
``__init__`` makes the parts it delegates to.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ...exceptions import ChannelLayerConnectionError
from ..base import BaseChannelLayer, Message
from ..presence import Listing, send_diff
from . import plans
from .errors import TranslateErrors
from .groups import GroupFanOut
from .hygiene import Reaper
from .ownership import Ownership, group_entry
from .presence import PresenceSets, notifications
from .shard import Shard

logger = logging.getLogger("channels.layers.redis")


class MembershipMethods(BaseChannelLayer):
    """Groups, presence and housekeeping of a Redis layer, over the parts its ``__init__`` made."""

    _shards: list[Shard]
    _translate_errors: TranslateErrors
    _groups: GroupFanOut
    _group_key: Callable[[str], tuple[str, Shard]]
    _membership: Callable[[str, str], tuple[str, Shard]]
    _ownership: Ownership
    _presence: PresenceSets
    _reaper: Reaper
    #: When the last housekeeping pass began (``time.monotonic()``).
    _last_maintain: float = float("-inf")

    # Groups --------------------------------------------------------------

    def _add_plan(self, group: str, channel: str) -> plans.Plan:
        key, shard = self._membership(group, channel)
        expire = ("EXPIRE", key, int(self.group_expiry))
        plan: plans.Plan = {shard: [("ZADD", key, time.time(), channel), expire]}
        self._ownership.index_membership(plan, group, channel)
        return plan

    def _discard_plan(self, group: str, channel: str) -> plans.Plan:
        key, shard = self._membership(group, channel)
        plan: plans.Plan = {shard: [("ZREM", key, channel)]}
        self._ownership.unindex(plan, channel, group_entry(group, channel))
        return plan

    def group_add(self, group: str, channel: str) -> None:
        plan = self._add_plan(group, channel)
        with self._translate_errors:
            plans.run(plan)

    async def agroup_add(self, group: str, channel: str) -> None:
        plan = self._add_plan(group, channel)
        with self._translate_errors:
            await plans.arun(plan)

    def group_discard(self, group: str, channel: str) -> None:
        plan = self._discard_plan(group, channel)
        with self._translate_errors:
            plans.run(plan)

    async def agroup_discard(self, group: str, channel: str) -> None:
        plan = self._discard_plan(group, channel)
        with self._translate_errors:
            await plans.arun(plan)

    def group_channels(self, group: str) -> list[str]:
        return self._groups.members(*self._group_key(group))

    async def agroup_channels(self, group: str) -> list[str]:
        return await asyncio.to_thread(self.group_channels, group)

    def _count_command(self, group: str) -> tuple[Shard, tuple[Any, ...]]:
        key, shard = self._group_key(group)
        return shard, ("ZCOUNT", key, f"({time.time() - self.group_expiry!r}", "+inf")

    def group_count(self, group: str) -> int:
        """Return how many members of *group* are newer than ``group_expiry`` (one ``ZCOUNT``)."""
        shard, command = self._count_command(group)
        with self._translate_errors:
            return int(shard.execute(command)[0])

    async def agroup_count(self, group: str) -> int:
        """Async twin of :meth:`group_count`."""
        shard, command = self._count_command(group)
        with self._translate_errors:
            return int(await shard.acall(command))

    def send_group(self, group: str, message: Message) -> None:
        key, shard = self._group_key(group)
        self._groups.push(key, shard, self.codec.encode(message))

    def send_group_encoded(self, group: str, data: bytes) -> None:
        key, shard = self._group_key(group)
        self._groups.push(key, shard, data)

    async def asend_group(self, group: str, message: Message) -> None:
        key, shard = self._group_key(group)
        await self._groups.apush(key, shard, self.codec.encode(message))

    async def asend_group_encoded(self, group: str, data: bytes) -> None:
        key, shard = self._group_key(group)
        await self._groups.apush(key, shard, data)

    # Presence ------------------------------------------------------------

    def presence_track(
        self,
        presence: str,
        channel: str,
        key: str,
        meta: dict[str, Any] | None = None,
        notify: str | None = None,
    ) -> None:
        with self._translate_errors:
            self._presence.track(presence, channel, key, meta, notify)

    async def apresence_track(
        self,
        presence: str,
        channel: str,
        key: str,
        meta: dict[str, Any] | None = None,
        notify: str | None = None,
    ) -> None:
        with self._translate_errors:
            await self._presence.atrack(presence, channel, key, meta, notify)

    def presence_untrack(self, presence: str, channel: str) -> None:
        with self._translate_errors:
            self._presence.untrack(presence, channel)

    async def apresence_untrack(self, presence: str, channel: str) -> None:
        with self._translate_errors:
            await self._presence.auntrack(presence, channel)

    def presence_release(self, channel: str) -> None:
        with self._translate_errors:
            self._presence.release(channel)

    async def apresence_release(self, channel: str) -> None:
        with self._translate_errors:
            await self._presence.arelease(channel)

    def presence_list(self, presence: str) -> Listing:
        with self._translate_errors:
            return self._presence.listing(presence)

    async def apresence_list(self, presence: str) -> Listing:
        with self._translate_errors:
            return await self._presence.alisting(presence)

    def presence_count(self, presence: str) -> int:
        with self._translate_errors:
            return self._presence.count(presence)

    async def apresence_count(self, presence: str) -> int:
        with self._translate_errors:
            return await self._presence.acount(presence)

    # Housekeeping --------------------------------------------------------

    def _maintenance_due(self) -> bool:
        now = time.monotonic()
        if now - self._last_maintain < self.maintain_interval:
            return False
        self._last_maintain = now
        return True

    def maintain(self) -> None:
        """Reap dead processes, end presence whose grace ran out, send presence diffs.

        At most one pass per :attr:`maintain_interval`; a Redis that is down
        is logged at debug level, and the next pass tries again.
        """
        if self._maintenance_due():
            self._maintain_now()

    async def amaintain(self) -> None:
        """Async twin of :meth:`maintain` (the pass runs in a thread, off the event loop)."""
        if self._maintenance_due():
            await asyncio.to_thread(self._maintain_now)

    def _maintain_now(self) -> None:
        """Claim dead processes and sweep presence on every shard in one write, then reap
        what was claimed and send the diffs taken."""
        housekeeping = [self._reaper.claim(), self._presence.sweep()]
        try:
            with self._translate_errors:
                replies = plans.run({shard: housekeeping for shard in self._shards})
                diffs = []
                for shard, (claimed, swept) in replies.items():
                    self._reaper.reap_claimed(shard, claimed)
                    diffs += notifications(swept)
            for group, presence, joins, leaves in diffs:
                send_diff(self.send_group, group, presence, joins, leaves)
        except ChannelLayerConnectionError as exc:
            logger.debug("Housekeeping skipped a pass: %s", exc)
