"""Start a throwaway Sentinel set on loopback: masters, their replicas, and Sentinels.

:class:`SentinelSet` runs one redis-server per master and replica and
``redis-server <conf> --sentinel`` per Sentinel (the same binary the other
tests use), with short failure-detection times so that a failover takes a
few seconds. It is ready when every Sentinel knows every master, and, for a
set that is to fail over, knows the other Sentinels and the replicas (only
then can a quorum agree and promote one). :meth:`SentinelSet.kill_master`
kills a master with SIGKILL, as a crash would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.redis_server import find_redis_server, free_port
from tests.waiting import wait_until

__all__ = ["SentinelSet", "sentinel_set"]

LOOPBACK = "127.0.0.1"


def master_state(client: Any, service: str) -> dict[str, Any]:
    """Return what Sentinel *client* knows of master *service* (``SENTINEL MASTERS``' entry).

    Not ``sentinel_master()``: redis-py 6.4 passes it an option its own reply
    parser refuses (a ``TypeError``).
    """
    state: dict[str, Any] = client.sentinel_masters()[service]
    return state


def master_address(client: Any, service: str) -> tuple[str, int]:
    """Return (host, port) of master *service* as Sentinel *client* names it now.

    A raw command: redis-py 6.4's ``sentinel_get_master_addr_by_name()``
    fails in its own reply parser (a ``TypeError``), as ``sentinel_master()`` does.
    """
    host, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", service)
    host = host.decode() if isinstance(host, bytes) else host
    return host, int(port)


class SentinelSet:
    """*services* masters with *replicas* replicas each, watched by *sentinels* Sentinels."""

    start_timeout = 20.0
    #: Sentinel's failure detection: how long a master may be silent before it is "down".
    down_after_ms = 1000
    #: Sentinel's bound on one failover attempt (and twice it, between two attempts).
    failover_timeout_ms = 3000

    def __init__(
        self, services: tuple[str, ...] = ("mymaster",), replicas: int = 0, sentinels: int = 3
    ) -> None:
        self.services = list(services)
        self.replica_count = replicas
        self.sentinel_count = sentinels
        self._dir = tempfile.mkdtemp(prefix="channels-sentinel-")
        #: Every redis-server by port: masters and replicas (which may swap roles).
        self.servers: dict[int, subprocess.Popen[bytes]] = {}
        self.sentinel_ports: list[int] = []
        self._sentinels: list[subprocess.Popen[bytes]] = []
        self.first_masters: dict[str, int] = {}

    @property
    def hosts(self) -> list[tuple[str, int]]:
        """The Sentinels, as the layer's ``hosts`` takes them."""
        return [(LOOPBACK, port) for port in self.sentinel_ports]

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [find_redis_server(), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self._dir,
        )

    def _server(self, *extra: str) -> int:
        port = free_port()
        data = os.path.join(self._dir, str(port))
        os.mkdir(data)
        self.servers[port] = self._spawn(
            *("--port", str(port), "--bind", LOOPBACK, "--save", "", "--appendonly", "no"),
            *("--dir", data, "--loglevel", "warning", *extra),
        )
        return port

    def start(self) -> SentinelSet:
        try:
            self._start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def _start(self) -> None:
        replicas = []
        for service in self.services:
            master = self.first_masters[service] = self._server()
            self._wait(lambda port=master: self.client(port).ping(), f"master {service} up")
            for _ in range(self.replica_count):
                replicas.append(self._server("--replicaof", LOOPBACK, str(master)))
        for port in replicas:
            self._wait(
                lambda port=port: (
                    self.client(port).info("replication")["master_link_status"] == "up"
                ),
                f"replica on {port} in sync",
            )
        for _ in range(self.sentinel_count):
            port = free_port()
            conf = os.path.join(self._dir, f"sentinel-{port}.conf")
            with open(conf, "w") as file:
                file.write(f"port {port}\nbind {LOOPBACK}\ndir {self._dir}\n")
                for service, master in self.first_masters.items():
                    file.write(
                        f"sentinel monitor {service} {LOOPBACK} {master} 2\n"
                        f"sentinel down-after-milliseconds {service} {self.down_after_ms}\n"
                        f"sentinel failover-timeout {service} {self.failover_timeout_ms}\n"
                        f"sentinel parallel-syncs {service} 1\n"
                    )
            self.sentinel_ports.append(port)
            self._sentinels.append(self._spawn(conf, "--sentinel", "--loglevel", "warning"))
        self._wait(self._sentinels_ready, "every Sentinel to know every master")

    def _sentinels_ready(self) -> bool:
        for port in self.sentinel_ports:
            for service in self.services:
                state = master_state(self.client(port), service)
                if self.replica_count and (
                    state["num-other-sentinels"] < self.sentinel_count - 1
                    or state["num-slaves"] < self.replica_count
                ):
                    return False
        return True

    def _wait(self, predicate: object, what: str) -> None:
        def check() -> bool:
            for process in [*self.servers.values(), *self._sentinels]:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"a redis-server exited ({process.returncode}) before {what}"
                    )
            return bool(predicate())  # type: ignore[operator]

        wait_until(
            check, self.start_timeout, f"timed out waiting for {what}", ignore=(redis.RedisError,)
        )

    @staticmethod
    def client(port: int) -> redis.Redis:
        return redis.Redis(LOOPBACK, port, socket_timeout=2, decode_responses=True)

    def master_port(self, service: str = "mymaster", sentinel: int | None = None) -> int:
        """Where the first Sentinel that answers (or the one on port *sentinel*) says it is."""
        for port in [sentinel] if sentinel else self.sentinel_ports:
            try:
                return master_address(self.client(port), service)[1]
            except redis.ConnectionError:
                continue
        raise RuntimeError("no Sentinel answered")

    def replicated(self, service: str = "mymaster") -> bool:
        """Whether every replica of *service*'s master has everything the master wrote."""
        info = self.client(self.master_port(service)).info("replication")
        offset = info["master_repl_offset"]
        replicas = [info[key] for key in info if key.startswith("slave") and key[5:].isdigit()]
        return len(replicas) >= self.replica_count and all(
            int(replica["offset"]) >= offset for replica in replicas
        )

    def kill_master(self, service: str = "mymaster") -> int:
        """SIGKILL *service*'s master (no shutdown, no last write); return its port."""
        port = self.master_port(service)
        process = self.servers[port]
        process.kill()
        process.wait(timeout=10)
        return port

    def cleanup(self) -> None:
        for process in [*self._sentinels, *self.servers.values()]:
            if process.poll() is None:
                process.terminate()
        for process in [*self._sentinels, *self.servers.values()]:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)


def start_or_skip(sentinel_set: SentinelSet) -> SentinelSet:
    """Start *sentinel_set*, or skip the test when this redis-server cannot run Sentinel."""
    try:
        return sentinel_set.start()
    except RuntimeError as exc:
        pytest.skip(f"Redis Sentinel could not be started here ({exc}): install redis-server")


@pytest.fixture(scope="session")
def sentinel_set() -> Iterator[SentinelSet]:
    """Two masters (``channels-a``, ``channels-b``) without replicas, watched by 3 Sentinels.

    For tests that find masters through Sentinel; no test fails them over.
    """
    started = start_or_skip(SentinelSet(services=("channels-a", "channels-b")))
    try:
        yield started
    finally:
        started.cleanup()
