"""Turn redis-py's errors about reaching Redis into the layer's, each saying what to fix."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from types import TracebackType

from redis.exceptions import AuthenticationError as RedisAuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, OutOfMemoryError, ResponseError
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
#: How the server words a write refused at ``maxmemory``, also inside a script's error
#: (redis-py maps only replies that begin with ``OOM`` to :class:`OutOfMemoryError`).
_OOM_REPLY = "command not allowed when used memory"


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether *exc* is Redis refusing a write because it reached ``maxmemory``."""
    return isinstance(exc, OutOfMemoryError) or (
        isinstance(exc, ResponseError) and _OOM_REPLY in str(exc)
    )


class TranslateErrors:
    """A context manager: redis-py's errors about reaching Redis become ours.

    An unreachable server is a :class:`ChannelLayerConnectionError`, and so is
    a server at ``maxmemory`` that refuses writes: to the layer's callers both
    are Redis being down for a while (HTTP answered 503, WebSockets closed with
    1011, loops that retry), and both pass once the server is back. A server
    that answers but refuses the layer's settings (password, database index,
    ACL permissions) is a :class:`ChannelLayerConfigurationError` naming the
    ``CONFIG`` entry to change. Everything else passes through.

    Running out of memory is logged here, with what to do, once per outage:
    every send fails meanwhile, and only the first failure says anything new.
    """

    #: Seconds the one-off ``CONFIG GET databases`` behind a wrong-db message may take.
    probe_timeout = 1.0
    #: Seconds without a refused write after which the next one is logged again (a new outage).
    oom_quiet_period = 60.0

    def __init__(self, shards: Sequence[Shard]) -> None:
        self._shards = shards
        self._databases: dict[str, int | None] = {}
        self._last_oom: float | None = None

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
        translated = self.translated(exc)
        if translated is not None:
            raise translated from exc

    def translated(self, exc: BaseException) -> Exception | None:
        """Return the layer's exception for redis-py's *exc*, or None to let it pass.

        For errors that come back as values (one reply of several) rather
        than raised; the caller chains it (``__cause__``) if it raises it.
        """
        if isinstance(exc, RedisAuthenticationError) or (
            # Older redis-py releases leave some of the server's auth replies unmapped.
            isinstance(exc, ResponseError) and str(exc).startswith(_AUTH_REPLIES)
        ):
            return ChannelLayerAuthenticationError(self._auth_message(exc))
        if isinstance(exc, RedisConnectionError | RedisTimeoutError):
            return ChannelLayerConnectionError(f"{self._where()} is unreachable: {exc}")
        if is_out_of_memory(exc):
            return self._out_of_memory(exc)
        if isinstance(exc, NoPermissionError):
            return ChannelLayerConfigurationError(
                f"{self._where()} refused a command to the layer's Redis user ({exc}): grant "
                "that user every command on the layer's keys, or use another user in "
                "CONFIG['hosts']"
            )
        if isinstance(exc, ResponseError) and "DB index is out of range" in str(exc):
            return ChannelLayerConfigurationError(self._db_message())
        return None

    def _out_of_memory(self, exc: BaseException) -> ChannelLayerConnectionError:
        """Say (once per outage) and return that Redis refuses writes at ``maxmemory``."""
        message = (
            f"{self._where()} is out of memory and refuses writes ({exc}): raise its "
            "maxmemory (CONFIG SET maxmemory, or redis.conf) or free memory, and look for "
            "a backlog, a channel no worker empties (channel_statistics(), or LLEN of the "
            "layer's keys); until then requests are answered 503 and sockets closed with 1011"
        )
        now = time.monotonic()
        last, self._last_oom = self._last_oom, now
        if last is None or now - last > self.oom_quiet_period:
            logger.error("%s", message)
        return ChannelLayerConnectionError(message)

    def _where(self) -> str:
        # A cluster layer's buckets all name the cluster's seed nodes: say them once.
        addresses = list(dict.fromkeys(shard.address for shard in self._shards))
        if len(addresses) == 1:
            return f"Redis at {addresses[0]}"
        return f"Redis (one of {', '.join(addresses)})"

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
