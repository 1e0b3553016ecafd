"""Redis masters found through Sentinel, which keep working across a failover.

A Sentinel set watches a master and its replicas and, when the master dies,
promotes a replica. :class:`SentinelShard` is a :class:`~.shard.Shard` whose
pools ask Sentinel where the master is each time they open a connection
(redis-py's Sentinel pools). Every exchange of a shard runs on connections
that are dropped after an error, so after a failover the next call of every
process (interface server, worker, delay server) reconnects to the new master
by itself:

* a lost connection (the master died) fails that one call, as any Redis
  outage does (:class:`~channels.exceptions.ChannelLayerConnectionError`),
  and the next call asks Sentinel again;
* a ``READONLY`` reply (the old master came back as a replica, or was
  demoted while still reachable) is turned into a lost connection by
  redis-py's Sentinel connection, with the same effect;
* the new master may not know the layer's scripts: the shard's ``NOSCRIPT``
  handling loads them.

Two ways to configure it: :class:`RedisSentinelChannelLayer` (asgi_redis
1.x's: ``hosts`` are the Sentinels, ``services`` the master names to shard
across), and, on the plain :class:`~.layer.RedisChannelLayer`, a ``hosts``
entry of channels_redis's form ``{"sentinels": [...], "master_name": ...}``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from ...exceptions import ChannelLayerConfigurationError, ChannelLayerConnectionError
from .layer import RedisChannelLayer
from .shard import Shard

__all__ = ["RedisSentinelChannelLayer", "SentinelShard", "make_shard"]

#: Where Sentinel listens when ``hosts`` is not given.
DEFAULT_SENTINEL = ("localhost", 26379)
#: The keys of a channels_redis Sentinel entry; any other key is a master connection option.
_ENTRY_KEYS = ("sentinels", "master_name", "sentinel_kwargs")
_EXAMPLE = "{'sentinels': [('localhost', 26379)], 'master_name': 'mymaster'}"


def sentinel_addresses(sentinels: Any, setting: str) -> list[tuple[str, int]]:
    """Return *sentinels* as (host, port) pairs, or say in *setting* what to write."""
    if isinstance(sentinels, str | bytes) or not isinstance(sentinels, Sequence) or not sentinels:
        raise ValueError(
            f"{setting} must be a list of Sentinel (host, port) pairs such as "
            f"[('localhost', 26379)], even if there is only one, not {sentinels!r}"
        )
    pairs = []
    for entry in sentinels:
        if (
            isinstance(entry, str | bytes)
            or not isinstance(entry, Sequence)
            or len(entry) != 2
            or not isinstance(entry[0], str)
        ):
            raise ValueError(
                f"Each Sentinel in {setting} must be a (host, port) pair such as "
                f"('localhost', 26379), not {entry!r} (redis-py's Sentinel takes no URLs)"
            )
        try:
            pairs.append((entry[0], int(entry[1])))
        except (TypeError, ValueError):
            raise ValueError(
                f"The port of Sentinel {entry!r} in {setting} must be a number"
            ) from None
    return pairs


def _master_name(name: Any, setting: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"{setting} must name a master Sentinel monitors (a non-empty str such as "
            f"'mymaster', from 'sentinel monitor <name> ...'), not {name!r}"
        )
    return name


def _socket_options(connection_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What Sentinel connections share with the masters' by default (as redis-py does)."""
    return {k: v for k, v in connection_kwargs.items() if k.startswith("socket_")}


class _SharedLookupSentinel(AsyncSentinel):
    """An async Sentinel client whose concurrent master lookups share one.

    A burst of new connections (hundreds of calls at once on a fresh loop,
    or every kept connection after a failover) would otherwise open one
    Sentinel connection per lookup. A lookup started after the last one
    ended asks again, so no answer is ever older than the call.
    """

    def __init__(self, sentinels: list[tuple[str, int]], **kwargs: Any) -> None:
        super().__init__(sentinels, **kwargs)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        self._lookups: dict[str, asyncio.Future[Any]] = {}

    async def discover_master(self, service_name: str) -> Any:
        lookup = self._lookups.get(service_name)
        if lookup is None or lookup.done():
            lookup = asyncio.ensure_future(super().discover_master(service_name))
            self._lookups[service_name] = lookup
        return await asyncio.shield(lookup)


class _AsyncBlockingSentinelPool(AsyncSentinelPool, redis.asyncio.BlockingConnectionPool):
    """An async Sentinel pool whose callers wait for a free connection, as the shard's others."""


class SentinelShard(Shard):
    """The master of one Sentinel-monitored service, wherever Sentinel says it is now.

    *host* is a mapping in channels_redis's form: ``sentinels`` (host, port)
    pairs, ``master_name``, optional ``sentinel_kwargs`` (connection options
    for the Sentinels; by default the ``socket_*`` ones of the masters), and
    any other key is a connection option of the master (``password``, ``db``...)
    over the layer's ``connection_kwargs``.
    """

    def __init__(self, host: Any, connection_kwargs: dict[str, Any]) -> None:
        if not isinstance(host, Mapping):
            raise ValueError(
                f"A Sentinel-managed master is a mapping such as {_EXAMPLE}, not {host!r}"
            )
        if "sentinels" not in host or "master_name" not in host:
            raise ValueError(
                f"A Sentinel-managed master needs 'sentinels' and 'master_name', such as "
                f"{_EXAMPLE}; got the keys {sorted(host)}"
            )
        self.sentinels = sentinel_addresses(host["sentinels"], "'sentinels'")
        #: The name of the service (``sentinel monitor <name> ...``).
        self.service = _master_name(host["master_name"], "'master_name'")
        options = {k: v for k, v in host.items() if k not in _ENTRY_KEYS}
        kwargs = {**connection_kwargs, **options}
        sentinel_kwargs = host.get("sentinel_kwargs")
        if sentinel_kwargs is not None and not isinstance(sentinel_kwargs, Mapping):
            raise ValueError(
                f"'sentinel_kwargs' must be a dict of connection options for the Sentinels "
                f"(such as {{'password': '...'}}), not {sentinel_kwargs!r}"
            )
        self._sentinel_kwargs = dict(
            _socket_options(kwargs) if sentinel_kwargs is None else sentinel_kwargs
        )
        # Each lookup tries every Sentinel in turn: retrying a dead one would only delay the next.
        self._sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            self.sentinels,
            sentinel_kwargs={"retry": Retry(NoBackoff(), 0), **self._sentinel_kwargs},
        )
        self._async_sentinels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncSentinel]
        self._async_sentinels = weakref.WeakKeyDictionary()
        self._url = None
        self._address = {}
        where = ", ".join(f"{h}:{p}" for h, p in self.sentinels)
        self.label = f"{self.service} via Sentinel {where}"
        self._init_transport(kwargs)
        self.address = f"the master of {self.service!r} (Sentinel at {where})"

    def _make_pool(self, pool_class: Any, retry: Any) -> Any:
        kwargs = {"retry": retry, **self._kwargs}
        if pool_class is redis.ConnectionPool:
            kwargs.pop("timeout", None)  # only blocking pools wait for a connection
            return SentinelConnectionPool(self.service, self._sentinel, **kwargs)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        # One Sentinel client per event loop, as every async client is.
        loop = asyncio.get_running_loop()
        manager = self._async_sentinels[loop] = _SharedLookupSentinel(
            self.sentinels,
            sentinel_kwargs={"retry": AsyncRetry(NoBackoff(), 0), **self._sentinel_kwargs},
        )
        return _AsyncBlockingSentinelPool(self.service, manager, **kwargs)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated

    def _current_address(self) -> dict[str, Any]:
        host, port = self._sentinel.discover_master(self.service)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        return {"host": host, "port": port}

    def close(self) -> None:
        super().close()
        for client in self._sentinel.sentinels:
            client.close()

    async def aclose(self, loop: asyncio.AbstractEventLoop) -> None:
        await super().aclose(loop)
        manager = self._async_sentinels.pop(loop, None)
        for client in manager.sentinels if manager is not None else ():
            await client.aclose()  # Sentinel.aclose() is not in every redis-py major


def make_shard(shard_class: type[Shard], host: Any, connection_kwargs: dict[str, Any]) -> Shard:
    """Return the shard of *host*: a :class:`SentinelShard` for a Sentinel entry (a mapping)."""
    if isinstance(host, Mapping) and shard_class is Shard:
        return SentinelShard(host, connection_kwargs)
    return shard_class(host, connection_kwargs)


def discover_services(
    sentinels: list[tuple[str, int]], sentinel_kwargs: Mapping[str, Any]
) -> list[str]:
    """Return the names of the masters the first Sentinel that answers monitors, sorted.

    Sorted so that every process, whichever Sentinel it asked, shards the
    same way.
    """
    failures = []
    for host, port in sentinels:
        client = redis.Redis(
            host=host, port=port, **{"retry": Retry(NoBackoff(), 0), **sentinel_kwargs}
        )
        try:
            masters: Any = client.sentinel_masters()  # {name: {...}}
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            failures.append(f"{host}:{port}: {exc}")
            continue
        finally:
            client.close()
        if not masters:
            raise ChannelLayerConfigurationError(
                f"Sentinel at {host}:{port} monitors no master: add 'sentinel monitor <name> "
                "<host> <port> <quorum>' to its configuration, or list the master names "
                "in CONFIG['services']"
            )
        return sorted(masters)
    raise ChannelLayerConnectionError(
        "No Sentinel in CONFIG['hosts'] answered SENTINEL MASTERS "
        f"({'; '.join(failures)}): start them, or check CONFIG['hosts']"
    )


class RedisSentinelChannelLayer(RedisChannelLayer):
    """The Redis layer on masters that Sentinel watches and fails over (asgi_redis 1.x's).

    Options, besides those of :class:`~.layer.RedisChannelLayer`:

    ``hosts``
        The Sentinels, as (host, port) pairs (default ``[("localhost", 26379)]``).
        One Sentinel set, which may monitor several masters.
    ``services``
        The names of the masters to shard across; every process must use the
        same list. Empty or missing: every master the Sentinels monitor,
        asked with ``SENTINEL MASTERS`` when the layer is made, in name order.
    ``sentinel_refresh_interval``
        Accepted for asgi_redis 1.x settings. 1.x cached its master clients
        for that many seconds; here the master is asked of Sentinel on every
        new connection and after every failure, so there is nothing to cache.
    ``sentinel_kwargs``
        Connection options for the Sentinels (a password, TLS...); by default
        the ``socket_*`` ones of ``connection_kwargs``, as redis-py does.
    """

    def __init__(
        self,
        hosts: Sequence[Any] | None = None,
        services: Sequence[str] | None = None,
        sentinel_refresh_interval: float = 0,
        sentinel_kwargs: dict[str, Any] | None = None,
        connection_kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        sentinels = sentinel_addresses(
            [DEFAULT_SENTINEL] if hosts is None else hosts, "CONFIG['hosts']"
        )
        if isinstance(sentinel_refresh_interval, bool) or not isinstance(
            sentinel_refresh_interval, int | float
        ):
            raise ValueError(
                "sentinel_refresh_interval must be a number of seconds, not "
                f"{sentinel_refresh_interval!r}"
            )
        if sentinel_kwargs is not None and not isinstance(sentinel_kwargs, Mapping):
            raise ValueError(
                "sentinel_kwargs must be a dict of connection options for the Sentinels, "
                f"not {sentinel_kwargs!r}"
            )
        if isinstance(services, str) or (
            services is not None and not isinstance(services, Sequence)
        ):
            raise ValueError(
                "services must be a list of master names such as ['mymaster'], even if "
                f"there is only one, not {services!r}"
            )
        names = [_master_name(name, "Each of CONFIG['services']") for name in services or ()]
        if not names:
            names = discover_services(
                sentinels,
                _socket_options(connection_kwargs or {})
                if sentinel_kwargs is None
                else sentinel_kwargs,
            )
        entries = [
            {"sentinels": sentinels, "master_name": name, "sentinel_kwargs": sentinel_kwargs}
            for name in names
        ]
        super().__init__(hosts=entries, connection_kwargs=connection_kwargs, **options)
        self.hosts = sentinels
        self.services = names
        self.sentinel_refresh_interval = sentinel_refresh_interval

    def __repr__(self) -> str:
        sentinels = ", ".join(f"{host}:{port}" for host, port in self.hosts)
        return (
            f"<{type(self).__name__} services={self.services} sentinels=[{sentinels}] "
            f"prefix={self.prefix!r}>"
        )
