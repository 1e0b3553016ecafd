"""Consistent hashing of names onto Redis shards."""

from __future__ import annotations

import bisect
import zlib
from functools import lru_cache


class HashRing:
    """Map names onto ``size`` shards so that adding a shard moves few names.

    Every shard owns ``replicas`` points on a ring of 32-bit hashes; a name
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
            (zlib.crc32(f"shard-{index}-{replica}".encode()), index)
            for index in range(size)
            for replica in range(self.replicas)
        )
        self._hashes = [point for point, _ in points]
        self._shards = [index for _, index in points]
        self.shard_for = lru_cache(maxsize=8192)(self._lookup)

    def _lookup(self, name: str) -> int:
        if self.size == 1:
            return 0
        position = bisect.bisect_left(self._hashes, zlib.crc32(name.encode()))
        return self._shards[position % len(self._shards)]
