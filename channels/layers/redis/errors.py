"""Turn redis-py's errors about reaching Redis into the layer's, each saying what to fix."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import TracebackType

from redis.exceptions import AuthenticationError as RedisAuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...exceptions import (
    ChannelLayerAuthenticationError,
    ChannelLayerConfigurationError,
    ChannelLayerConnectionError,
)
from .shard import Shard

logger = logging.getLogger("channels.layers.redis")

#: How the server's refusals of a missing or wrong password begin.
_AUTH_REPLIES = ("NOAUTH", "WRONGPASS", "invalid password", "invalid username-password")


class TranslateErrors:
    """A context manager: redis-py's errors about reaching Redis become ours.

    An unreachable server is a :class:`ChannelLayerConnectionError`; a server
    that answers but refuses the layer's settings (password, database index,
    ACL permissions) is a :class:`ChannelLayerConfigurationError` naming the
    ``CONFIG`` entry to change. Everything else passes through.
    """

    #: Seconds the one-off ``CONFIG GET databases`` behind a wrong-db message may take.
    probe_timeout = 1.0

    def __init__(self, shards: Sequence[Shard]) -> None:
        self._shards = shards
        self._databases: dict[str, int | None] = {}

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        if isinstance(exc, RedisAuthenticationError) or (
            # Older redis-py releases leave some of the server's auth replies unmapped.
            isinstance(exc, ResponseError) and str(exc).startswith(_AUTH_REPLIES)
        ):
            raise ChannelLayerAuthenticationError(self._auth_message(exc)) from exc
        if isinstance(exc, RedisConnectionError | RedisTimeoutError):
            raise ChannelLayerConnectionError(f"{self._where()} is unreachable: {exc}") from exc
        if isinstance(exc, NoPermissionError):
            raise ChannelLayerConfigurationError(
                f"{self._where()} refused a command to the layer's Redis user ({exc}): grant "
                "that user every command on the layer's keys, or use another user in "
                "CONFIG['hosts']"
            ) from exc
        if isinstance(exc, ResponseError) and "DB index is out of range" in str(exc):
            raise ChannelLayerConfigurationError(self._db_message()) from exc

    def _where(self) -> str:
        shards = self._shards
        if len(shards) == 1:
            return f"Redis at {shards[0].address}"
        return f"Redis (one of {', '.join(shard.address for shard in shards)})"

    def _auth_message(self, exc: BaseException) -> str:
        if not any(shard.has_password for shard in self._shards):
            return (
                f"{self._where()} requires a password and the layer sends none: put it in "
                "the URL in CONFIG['hosts'] ('redis://:PASSWORD@host:6379/0') or set "
                "CONFIG['connection_kwargs']['password']"
            )
        return (
            f"{self._where()} refused the layer's credentials ({exc}): check the password "
            "(and user) in CONFIG['hosts'] or CONFIG['connection_kwargs']"
        )

    def _db_message(self) -> str:
        shards = [shard for shard in self._shards if shard.db]
        details = []
        for shard in shards or self._shards:
            count = self._database_count(shard)
            if count is not None and shard.db < count:
                continue
            has = f"has {count} databases" if count is not None else "has fewer databases"
            last = f"0 to {count - 1}" if count is not None else "a lower number"
            details.append(
                f"Redis at {shard.address} {has}, db {shard.db} does not exist: use a db from "
                f"{last} in CONFIG['hosts'] (or raise 'databases' in redis.conf)"
            )
        return "; ".join(details) or f"{self._where()} has no database with the index asked for"

    def _database_count(self, shard: Shard) -> int | None:
        """Ask *shard* how many databases it has, once; None if it will not say."""
        if shard.label not in self._databases:
            count = None
            try:
                count = shard.database_count(self.probe_timeout)
            except Exception:  # CONFIG may be renamed or forbidden: say less, never fail here
                logger.debug("Could not ask %s how many databases it has", shard.address)
            self._databases[shard.label] = count
        return self._databases[shard.label]
