"""Consistent hashing of names onto Redis shards."""

from __future__ import annotations

import bisect
import hashlib
from functools import lru_cache


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    """Map names onto ``size`` shards so that adding a shard moves few names.

    Every shard owns ``replicas`` points on a ring of 64-bit BLAKE2 hashes; a name
    belongs to the shard of the first point at or after its own hash. The
    points depend only on shard positions, so every process with the same
    host list agrees on where each name lives.
    """

    replicas = 160

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a hash ring needs at least one shard")
        self.size = size
        points = sorted(
            (_hash(f"shard-{index}-{replica}"), index)
            for index in range(size)
            for replica in range(self.replicas)
        )
        self._hashes = [point for point, _ in points]
        self._shards = [index for _, index in points]
        self.shard_for = lru_cache(maxsize=8192)(self._lookup)

    def _lookup(self, name: str) -> int:
        if self.size == 1:
            return 0
        position = bisect.bisect_left(self._hashes, _hash(name))
        return self._shards[position % len(self._shards)]
