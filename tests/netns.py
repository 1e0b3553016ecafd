"""Several hosts on one machine: Linux network namespaces joined by a bridge, for real.

The 1.x promise is interface servers and workers on any number of machines
joined by the channel layer. Loopback cannot show it (everything shares one
address and one kernel stack), so these tests make machines: one network
namespace per host, each with its own ``lo`` and one ``eth0`` on a private
/24, all plugged into one bridge. Processes run in a host with
``ip netns exec`` (Python 3.11 has no ``os.setns``); the filesystem is shared,
so a SQLite file or a socket path works across hosts as on an NFS mount.

API
---
``require_namespaces()``
    Skip the calling test, saying why, where namespaces cannot be made (not
    Linux, no ``ip``, not root, or the kernel/container refuses).
``network(*names)``
    ``require_namespaces()``, then ``with Network(*names)``: what a test uses.
``Network(*names)``
    A context manager. On entry it makes one namespace per name (unique per
    run: ``chn-<token>-<name>``), a hub namespace with the bridge, a veth
    pair per host, addresses ``<subnet>.2``, ``.3``, ... in the order given,
    and ``lo`` up everywhere. On exit (also when the test failed) it stops
    every process started through it, kills whatever else still runs in its
    namespaces, and deletes them (which deletes their links too).
    ``network["name"]`` is a :class:`Host`; ``network.hosts`` all of them;
    ``network.subnet`` the ``ipaddress.IPv4Network``.
``Host``
    ``.name``, ``.namespace``, ``.address``; ``.command(args)`` (the args
    prefixed with ``ip netns exec``); ``.run(args, env, name=...)`` a
    :class:`~tests.processes.ManagedProcess` in the host, stopped with the
    network; ``.start_redis(*flags, port=6379, ready=...)`` a redis-server
    bound to the host's address only (``.url``); ``.start_sentinel(lines,
    port=26379)`` a Sentinel with those configuration lines; ``.call("module:
    function", *args)`` runs a function in the host and returns its JSON result
    (what must talk to the hosts' Redis: the test process cannot reach it);
    ``.start_daphne(app, env, *flags)`` and ``.start_runworker(env, *flags)`` as in
    :mod:`tests.processes`, bound to the host's address; ``.sockets()`` its TCP
    sockets now (``ss``), to assert where traffic goes; ``.disconnect()`` /
    ``.reconnect()`` pull and replug its cable (the hub side of its veth), a
    partition without killing anything.

Extending it
------------
tests/test_multihost_failover.py builds both production topologies this way.
A Sentinel set: ``Network("redisa", "redisb", "sentinel1", ...)``, then
``redisa.start_redis()``, ``redisb.start_redis("--replicaof", master.address,
"6379")`` and ``sentinel1.start_sentinel(["sentinel monitor mymaster
<address> 6379 2", ...])`` on each Sentinel host. A cluster: six hosts
started with ``start_redis("--cluster-enabled", "yes", "--cluster-config-file",
"nodes.conf")``, assembled by a function run with ``.call`` (``CLUSTER
ADDSLOTS``, ``MEET``, ``REPLICATE``). Kill a master with
``process.signal(signal.SIGKILL)``; cut one off with ``disconnect()``.

Why the bridge lives in a namespace of its own, not in the root one: nothing
of a run ever appears among the machine's own links and routes, so runs
(parallel, or left over by a killed test) cannot collide on a link name, the
root namespace gets no route that could shadow its own, and deleting the
namespaces removes every link. The hosts get no default route: the root
namespace, and its loopback, are out of their reach. A run killed outright
(SIGKILL) leaves its namespaces behind, harmless to later runs: list them with
``ip netns list | grep ^chn-`` and remove them with ``ip netns delete``.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import pytest

from tests.processes import (
    ROOT,
    DaphneProcess,
    ManagedProcess,
    start_daphne,
    start_runworker,
)
from tests.waiting import wait_until

__all__ = [
    "Host",
    "Network",
    "NetworkError",
    "RedisProcess",
    "TcpSocket",
    "network",
    "require_namespaces",
]

P = TypeVar("P", bound=ManagedProcess)

#: Every namespace this harness makes starts with this (``ip netns list | grep ^chn-``).
NAMESPACE_PREFIX = "chn-"
#: A host name: short, so ``chn-<token>-<name>`` stays readable in ``ip netns list``.
_HOST_NAME = re.compile(r"^[a-z][a-z0-9]{0,11}$")
#: The line redis-server prints (at loglevel notice) once it serves clients.
REDIS_READY = "Ready to accept connections"
#: Seconds any one ``ip`` command may take.
IP_TIMEOUT = 10.0
#: Seconds teardown waits for killed processes to leave a namespace.
KILL_TIMEOUT = 5.0
#: What :meth:`Host.call` runs: a function named ``module:function``, its JSON result marked.
_RESULT = "netns-call-result "
_CALL = (
    "import importlib, json, sys\n"
    "module, _, name = sys.argv[1].partition(':')\n"
    "result = getattr(importlib.import_module(module), name)(*json.loads(sys.argv[2]))\n"
    f"print({_RESULT!r} + json.dumps(result), flush=True)\n"
)


class NetworkError(RuntimeError):
    """An ``ip`` command of the harness failed; the message has the command and its error."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip *args``; raise :class:`NetworkError` saying what failed unless *check* is off."""
    result = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT, check=False
    )
    if check and result.returncode != 0:
        raise NetworkError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


@functools.cache
def namespaces_unavailable() -> str | None:
    """Say why namespaces with a bridge and veth pairs cannot be made here (None if they can).

    Probes once per test session by making (and deleting) a throwaway
    namespace with a bridge and a veth pair, and running a program in it: the
    exact things :class:`Network` needs, so a later failure is a bug, not the
    environment.
    """
    if not sys.platform.startswith("linux"):
        return f"network namespaces are Linux only (this is {sys.platform})"
    if os.geteuid() != 0:
        return "making network namespaces needs root (CI runs as root)"
    if shutil.which("ip") is None or shutil.which("ss") is None:
        return "no `ip` or `ss` command: apt-get install iproute2"
    probe = f"{NAMESPACE_PREFIX}probe-{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", probe)
        try:
            _ip("-n", probe, "link", "add", "br0", "type", "bridge")
            _ip("-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
            _ip("-n", probe, "link", "set", "v0", "master", "br0")
            _ip("netns", "exec", probe, "true")  # a mount namespace of its own, too
        finally:
            _ip("netns", "delete", probe, check=False)
    except (NetworkError, OSError, subprocess.TimeoutExpired) as exc:
        return f"network namespaces cannot be made here: {exc}"
    return None


def require_namespaces() -> None:
    """Skip the calling test, saying why, unless :class:`Network` can be made here."""
    reason = namespaces_unavailable()
    if reason is not None:
        pytest.skip(reason)


def _networks_in_use() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks the root namespace routes to or has addresses on."""
    used = []
    routes = json.loads(_ip("-j", "-4", "route", "show", "table", "all").stdout or "[]")
    for route in routes:
        destination = route.get("dst", "default")
        if destination != "default":
            used.append(ipaddress.IPv4Network(destination, strict=False))
    for link in json.loads(_ip("-j", "-4", "address", "show").stdout or "[]"):
        for address in link.get("addr_info", []):
            used.append(ipaddress.IPv4Network(f"{address['local']}/{address['prefixlen']}", False))
    return used


def pick_subnet(attempts: int = 100) -> ipaddress.IPv4Network:
    """Return a random 10.x.y.0/24 that overlaps nothing the root namespace routes or owns.

    The hosts' subnet never reaches the root namespace, but a clash would make
    addresses in failure output ambiguous, and an engineer probing from the
    root namespace would reach the wrong machine.
    """
    used = _networks_in_use()
    for _ in range(attempts):
        candidate = ipaddress.IPv4Network(
            f"10.{random.randint(1, 254)}.{random.randint(0, 255)}.0/24"
        )
        if not any(candidate.overlaps(network) for network in used):
            return candidate
    raise NetworkError(f"no free 10.x.y.0/24 in {attempts} tries; routes in use: {used}")


@dataclass(frozen=True)
class TcpSocket:
    """One TCP socket of a host, as ``ss`` shows it; *peer* port 0 means "any" (a listener)."""

    state: str
    local: tuple[str, int]
    peer: tuple[str, int]

    @property
    def listening(self) -> bool:
        return self.state == "LISTEN"


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]").split("%", 1)[0]  # "[::1]", "fe80::1%eth0"
    return host, 0 if port == "*" else int(port)


class RedisProcess(ManagedProcess):
    """A redis-server in a host; :attr:`url` is where the other hosts reach it."""

    address: str
    port: int

    @property
    def url(self) -> str:
        return f"redis://{self.address}:{self.port}/0"


@dataclass
class Host:
    """One machine of a :class:`Network`: a namespace with one address on the bridge."""

    name: str
    namespace: str
    address: str
    network: Network = field(repr=False)
    #: The hub side of this host's veth pair (its "cable").
    cable: str = field(repr=False, default="")

    @property
    def prefix(self) -> list[str]:
        """The command prefix that runs a program in this host."""
        return ["ip", "netns", "exec", self.namespace]

    def command(self, args: Sequence[str]) -> list[str]:
        """Return *args* as a command that runs in this host."""
        return [*self.prefix, *args]

    def run(
        self, args: Sequence[str], env: Mapping[str, str], name: str | None = None, cwd: Path = ROOT
    ) -> ManagedProcess:
        """Start *args* in this host; the network stops it on exit."""
        process = ManagedProcess(self.command(args), env, cwd, name or Path(args[0]).name)
        return self.network.track(process)

    def start_redis(
        self,
        *flags: str,
        port: int = 6379,
        ready: str = REDIS_READY,
        timeout: float = 10,
    ) -> RedisProcess:
        """Start a redis-server bound to this host's address only; return it once it serves.

        No persistence (``--save "" --appendonly no``), files in a fresh
        directory under the network's. *flags* come last, so they override;
        *ready* is the line to wait for (Sentinel mode prints another).
        Protected mode is off: without a password it refuses every client
        that is not on loopback, and this network has no route out anyway.
        """
        from tests.redis_server import find_redis_server

        directory = self.network.directory / f"redis-{self.name}-{port}"
        directory.mkdir(parents=True, exist_ok=True)
        args = [
            find_redis_server(), "--bind", self.address, "--port", str(port), "--save", "",
            "--appendonly", "no", "--dir", str(directory), "--loglevel", "notice",
            "--protected-mode", "no", *flags,
        ]  # fmt: skip
        redis = RedisProcess(self.command(args), os.environ, ROOT, f"redis-{self.name}:{port}")
        redis.address, redis.port = self.address, port
        self.network.track(redis)
        redis.wait_for(ready, timeout)
        return redis

    def start_sentinel(
        self, monitors: Sequence[str], port: int = 26379, timeout: float = 10
    ) -> RedisProcess:
        """Start a Redis Sentinel bound to this host's address; return it once it watches.

        *monitors* are configuration lines (``sentinel monitor NAME HOST PORT
        QUORUM``, ``sentinel down-after-milliseconds NAME MS``...): Sentinel
        rewrites its file as it learns, so each one gets its own, in a fresh
        directory under the network's. Ready once it logs its first
        ``+monitor``.
        """
        from tests.redis_server import find_redis_server

        directory = self.network.directory / f"sentinel-{self.name}-{port}"
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "sentinel.conf"
        lines = [f"port {port}", f"bind {self.address}", f"dir {directory}",
                 "protected-mode no", *monitors]  # fmt: skip
        config.write_text("\n".join(lines) + "\n")
        args = [find_redis_server(), str(config), "--sentinel", "--loglevel", "notice"]
        sentinel = RedisProcess(
            self.command(args), os.environ, ROOT, f"sentinel-{self.name}:{port}"
        )
        sentinel.address, sentinel.port = self.address, port
        self.network.track(sentinel)
        sentinel.wait_for(r"\+monitor master", timeout)
        return sentinel

    def call(
        self, function: str, *args: Any, env: Mapping[str, str] | None = None, timeout: float = 30
    ) -> Any:
        """Run ``module:function(*args)`` with Python in this host; return what it returned.

        For what must happen on the hosts' network, which the test process
        cannot reach (it stays in the root namespace): ask a Redis in a host
        who its master is, assemble a cluster. *args* and the result travel as
        JSON. A failure raises :class:`NetworkError` with the output.
        """
        process = self.run(
            [sys.executable, "-c", _CALL, function, json.dumps(args)],
            env if env is not None else {**os.environ, "PYTHONPATH": str(ROOT)},
            name=f"{function}@{self.name}",
        )
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.stop()
            raise NetworkError(
                f"{function} in {self.name} took over {timeout:g} s; output:\n{process.tail()}"
            ) from None
        lines = "".join(process.output).splitlines()
        if code != 0 or not lines or not lines[-1].startswith(_RESULT):
            raise NetworkError(f"{function} in {self.name} failed ({code}):\n{process.tail()}")
        return json.loads(lines[-1][len(_RESULT) :])

    def start_daphne(
        self, application: str, env: Mapping[str, str], *flags: str, name: str = "daphne"
    ) -> DaphneProcess:
        """Start daphne in this host bound to its address (port from its log line)."""
        daphne = start_daphne(
            application, env, *flags, host=self.address, name=name, prefix=self.prefix
        )
        return self.network.track(daphne)

    def start_runworker(
        self, env: Mapping[str, str], *flags: str, name: str = "runworker"
    ) -> ManagedProcess:
        """Start ``runworker`` in this host; return it once it listens on its channels."""
        return self.network.track(start_runworker(env, *flags, name=name, prefix=self.prefix))

    def sockets(self) -> list[TcpSocket]:
        """Return this host's TCP sockets now (listening, connected, closing)."""
        result = subprocess.run(
            self.command(["ss", "-H", "-t", "-a", "-n"]),
            capture_output=True,
            text=True,
            timeout=IP_TIMEOUT,
            check=True,
        )
        found = []
        for line in result.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 5:
                found.append(TcpSocket(fields[0], _endpoint(fields[3]), _endpoint(fields[4])))
        return found

    def disconnect(self) -> None:
        """Pull this host's cable: its packets go nowhere until :meth:`reconnect`."""
        _ip("-n", self.network.hub, "link", "set", self.cable, "down")

    def reconnect(self) -> None:
        """Plug this host's cable back in."""
        _ip("-n", self.network.hub, "link", "set", self.cable, "up")


class Network:
    """Hosts joined by one bridge; see the module docstring for the API."""

    def __init__(self, *names: str, directory: Path | None = None) -> None:
        if not names:
            raise ValueError("Network() needs at least one host name, e.g. Network('redis')")
        for name in names:
            if not _HOST_NAME.match(name):
                raise ValueError(
                    f"host name {name!r}: use 1-12 lowercase letters and digits, "
                    "starting with a letter"
                )
        if len(set(names)) != len(names):
            raise ValueError(f"host names must differ: {names}")
        self.names = names
        self.token = secrets.token_hex(3)
        self.hub = f"{NAMESPACE_PREFIX}{self.token}-hub"
        self._directory = directory
        self.directory = Path()
        self.subnet = ipaddress.IPv4Network("0.0.0.0/32")
        self.hosts: list[Host] = []
        self.processes: list[ManagedProcess] = []
        self._made: list[str] = []
        self._stack = contextlib.ExitStack()

    def __getitem__(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no host {name!r} in this network; hosts: {[h.name for h in self.hosts]}")

    @property
    def addresses(self) -> set[str]:
        return {host.address for host in self.hosts}

    def track(self, process: P) -> P:
        """Remember *process*, so the network stops it on exit; return it."""
        self.processes.append(process)
        return process

    def __enter__(self) -> Network:
        if self._directory is None:
            import tempfile

            self.directory = Path(
                self._stack.enter_context(tempfile.TemporaryDirectory(prefix="channels-netns-"))
            )
        else:
            self.directory = self._directory
        try:
            self._build()
        except BaseException:
            self._teardown()
            raise
        return self

    def _add_namespace(self, namespace: str) -> None:
        _ip("netns", "add", namespace)
        self._made.append(namespace)
        _ip("-n", namespace, "link", "set", "lo", "up")

    def _build(self) -> None:
        self.subnet = pick_subnet()
        self._add_namespace(self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        addresses = self.subnet.hosts()
        next(addresses)  # .1 stays free (a gateway, if a test ever wants one)
        for index, name in enumerate(self.names):
            host = Host(
                name,
                f"{NAMESPACE_PREFIX}{self.token}-{name}",
                str(next(addresses)),
                self,
                cable=f"v{index}",
            )
            self._add_namespace(host.namespace)
            _ip("-n", self.hub, "link", "add", host.cable, "type", "veth",
                "peer", "name", "eth0", "netns", host.namespace)  # fmt: skip
            _ip("-n", self.hub, "link", "set", host.cable, "master", "br0", "up")
            _ip("-n", host.namespace, "address", "add",
                f"{host.address}/{self.subnet.prefixlen}", "dev", "eth0")  # fmt: skip
            _ip("-n", host.namespace, "link", "set", "eth0", "up")
            self.hosts.append(host)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._teardown()

    def _teardown(self) -> None:
        """Stop our processes, kill what else runs in our namespaces, delete them."""
        try:
            # End our processes first, then whatever they left running (a child
            # still holding their output pipe would keep ManagedProcess.stop
            # waiting on its reader), and only then close their output.
            for process in reversed(self.processes):
                with contextlib.suppress(Exception):
                    _end(process.process, process.stop_timeout)
            for namespace in self._made:
                self._kill_remaining(namespace)
            for process in self.processes:
                with contextlib.suppress(Exception):
                    process.stop()
            for namespace in reversed(self._made):
                _ip("netns", "delete", namespace, check=False)
        finally:
            self._made.clear()
            self._stack.close()

    def _kill_remaining(self, namespace: str) -> None:
        """SIGKILL the processes still in *namespace* (children of ours); wait until gone."""

        def remaining() -> list[int]:
            listed = _ip("netns", "pids", namespace, check=False).stdout.split()
            return [int(pid) for pid in listed]

        for pid in remaining():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(AssertionError):
            wait_until(lambda: not remaining(), KILL_TIMEOUT, f"processes left in {namespace}")


def _end(process: subprocess.Popen[str], timeout: float) -> None:
    """SIGTERM *process*, SIGKILL it after *timeout* seconds; reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def network(*names: str) -> Iterator[Network]:
    """Skip unless namespaces can be made, then run the body in a :class:`Network`."""
    require_namespaces()
    with Network(*names) as made:
        yield made
