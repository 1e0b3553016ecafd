"""Which transport each host of a Redis layer gets, and the connection settings they share.

A host is a plain server (:class:`~.shard.Shard`), a master found through
Sentinel (a ``{"sentinels": ..., "master_name": ...}`` entry:
:mod:`.sentinel`), or, with ``cluster=True``, a starting point into a Redis
Cluster, whose keys are then spread over hash-tagged buckets (:mod:`.cluster`).
The layer builds its shards here, once; everything after that talks to the
:class:`~.shard.Shard` interface alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .cluster import cluster_buckets
from .shard import Shard


def pool_settings(
    connection_kwargs: dict[str, Any] | None, max_connections: int, blocking_timeout: float
) -> tuple[dict[str, Any], float]:
    """Return redis-py's pool settings, and the longest a blocking receive may wait.

    A blocking receive must return before its socket times out, or an idle
    worker would see a timeout error instead of an empty receive.
    """
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "max_connections": max_connections,
        "timeout": None,
        **(connection_kwargs or {}),
    }
    socket_timeout = kwargs.setdefault("socket_timeout", blocking_timeout + 10)
    max_block = blocking_timeout if socket_timeout is None else max(0.1, socket_timeout - 1)
    return kwargs, max_block


def make_shards(
    hosts: Sequence[Any],
    connection_kwargs: dict[str, Any],
    shard_class: type[Shard],
    cluster: bool,
    buckets: int,
) -> list[Shard]:
    """Return the shards of a layer on *hosts*: one per host, or one per bucket of a cluster."""
    if not isinstance(cluster, bool):
        raise ValueError(f"cluster must be True or False, not {cluster!r}")
    if cluster:
        return list(cluster_buckets(hosts, connection_kwargs, buckets))
    # Imported here: sentinel.py's layer subclasses the layer, whose module imports this one.
    from .sentinel import make_shard

    return [make_shard(shard_class, host, connection_kwargs) for host in hosts]
