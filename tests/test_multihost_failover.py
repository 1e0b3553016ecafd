"""The chat across several hosts survives a kill -9 of its Redis master, by itself.

One test per production topology, each on hosts made of network namespaces
(tests/netns.py): daphne on one, two runworkers on two others, the users on
another, and the Redis servers each on its own:

* a Sentinel set: a master, its replica and three Sentinels;
* a Redis Cluster of three masters, one replica each.

The users talk without pause (tests/multihost_client.py ``--chatter``: each
sends a numbered message every 50 ms). The test kills the master that holds
the room's group and daphne's reply list with SIGKILL, and lets them talk on
until messages flow again, and a few seconds more. Nothing is restarted:
daphne and the workers must find the promoted replica themselves. A socket
closed with 1011 meanwhile (the layer is unreachable) is opened again by the
client, as the page's bridge does, with the page's ``sync`` for what it missed.

What is counted, per message sent (a frame written on an open socket):
*delivered* (every user got it, live or caught up by ``sync``), *refused*
(never saved, and its socket was then closed with 1011: the server could not
take it, or lost it as the layer went; a client cannot tell which), *lost*
(anything else: saved but missed by someone, or dropped silently), and
*duplicated* (one user got it twice, not counting the overlap of a ``sync``
with live traffic, which the page drops by id). The outage is from the kill
to the first message sent after it that reached everyone; it includes the
client's reconnection pauses (at most 1 s, shorter than the bridge's). It
must end within :data:`RECOVERY_BOUND`, nothing may be duplicated, and what
is lost or refused must have been sent inside the outage (give or take
:data:`MARGIN_BEFORE` and :data:`MARGIN_AFTER`). Each test prints one line
with its figures for the docs.

Skips, saying why, where namespaces cannot be made.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.example.support import PASSWORD, USERS, example_env, setup_database
from tests.netns import Network, RedisProcess, network
from tests.processes import ROOT, DaphneProcess, ManagedProcess, project_env

#: What daphne serves: the chat example's channel layer.
APPLICATION = "example_project.asgi:channel_layer"
#: Seconds from the kill within which messages must flow again.
RECOVERY_BOUND = 30.0
#: A message sent this long before the kill, or later than this after the
#: recovery, must reach everyone.
MARGIN_BEFORE, MARGIN_AFTER = 1.0, 2.0
#: Seconds of traffic after the recovery.
AFTER_RECOVERY = 3.0
#: Sentinel's failure detection and failover bound, in milliseconds (as tests/redis_sentinel.py).
DOWN_AFTER_MS, FAILOVER_TIMEOUT_MS = 1000, 3000
#: A cluster node unreachable this long (ms) is failed over.
NODE_TIMEOUT_MS = 1000
SERVICE = "mymaster"
#: This module, whose functions below run in the hosts (``Host.call``).
HERE = __name__
SLOTS = 16384
_NUMBERED = re.compile(r"^(?P<user>\S+) #(?P<n>\d+)$")
#: A line runworker prints at -v 2 for each message it hands to a consumer.
HANDLED = r" -> \S+ \(reply to "

# Run inside a host by Host.call (the test process cannot reach the hosts' network) --------


def _client(address: list[Any]) -> Any:
    import redis

    return redis.Redis(address[0], int(address[1]), socket_timeout=2, decode_responses=True)


def sentinels_ready(sentinels: list[list[Any]], replicas: int, timeout: float) -> list[Any]:
    """Wait until every Sentinel knows the others and the replicas; return the master."""
    import redis

    from tests.redis_sentinel import master_state
    from tests.waiting import wait_until

    def ready() -> bool:
        for address in sentinels:
            state = master_state(_client(address), SERVICE)
            if state["num-other-sentinels"] < len(sentinels) - 1 or state["num-slaves"] < replicas:
                return False
        return True

    wait_until(ready, timeout, "every Sentinel to know the others", ignore=(redis.RedisError,))
    return sentinel_master(sentinels)


def sentinel_master(sentinels: list[list[Any]]) -> list[Any]:
    """Return (host, port) of the master, as every Sentinel says it now (or fail)."""
    from tests.redis_sentinel import master_address

    seen = {master_address(_client(address), SERVICE) for address in sentinels}
    if len(seen) != 1:
        raise RuntimeError(f"the Sentinels disagree on the master: {seen}")
    host, port = seen.pop()
    return [host, int(port)]


def assemble_cluster(masters: list[list[Any]], replicas: list[list[Any]], timeout: float) -> None:
    """Make a cluster of *masters* (equal slot ranges), replica *i* following master *i*."""
    from tests.waiting import wait_until

    nodes = [*masters, *replicas]
    for index, address in enumerate(masters):
        low, high = index * SLOTS // len(masters), (index + 1) * SLOTS // len(masters)
        _client(address).execute_command("CLUSTER ADDSLOTS", *range(low, high))
    for address in nodes[1:]:
        _client(nodes[0]).execute_command("CLUSTER MEET", address[0], address[1])

    def info(address: list[Any]) -> dict[str, str]:
        text = _client(address).execute_command("CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in text.split() if ":" in line)

    def met() -> bool:
        return all(info(node).get("cluster_known_nodes") == str(len(nodes)) for node in nodes)

    wait_until(met, timeout, "the cluster's nodes to meet")
    for master, replica in zip(masters, replicas, strict=True):
        myself = _client(master).execute_command("CLUSTER", "MYID")
        _client(replica).execute_command("CLUSTER REPLICATE", myself)

    def ready() -> bool:
        return all(info(node).get("cluster_state") == "ok" for node in nodes) and all(
            _client(node).info("replication").get("master_link_status") == "up" for node in replicas
        )

    wait_until(ready, timeout, "the cluster to be whole, every replica in sync")


def cluster_slots(node: list[Any]) -> list[list[Any]]:
    """Return [start, end, master host, master port] for each slot range, as *node* says."""
    return [
        [int(start), int(end), master[0], int(master[1])]
        for start, end, master, *_ in _client(node).execute_command("CLUSTER", "SLOTS")
    ]


def daphne_prefixes(masters: list[list[Any]]) -> list[str]:
    """Return the reply-channel prefixes of the interface servers alive (their liveness keys)."""
    found = set()
    for address in masters:
        for key in _client(address).scan_iter(match="*alive:daphne.response.*", count=1000):
            found.add(key.split("alive:", 1)[1])
    return sorted(found)


def fetch(url: str) -> int:
    """GET *url*; return the status (a first request through daphne and a worker)."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=20) as response:
        return int(response.status)


# Counting --------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one failover did to the chat (times in seconds, from the kill)."""

    outage: float
    sent: int
    delivered: int
    lost: list[tuple[str, int, float]]
    refused: list[tuple[str, int, float]]
    duplicated: list[tuple[str, str, int]]
    caught_up: int
    closed_1011: int
    failed_opens: int
    unsent: int
    #: Sockets open over 2 s whose ``sync`` got no answer (the page then misses its catch-up).
    unanswered_syncs: int

    def line(self, topology: str) -> str:
        """The figures in one line, for the docs: the first part as the issue's note words it."""
        problems = [at for *_, at in [*self.lost, *self.refused]]
        window = (
            f", those sent {min(problems):+.2f}..{max(problems):+.2f} s from the kill"
            if problems
            else ""
        )
        return (
            f"{topology} failover: outage {self.outage:.2f} s, sent {self.sent}, "
            f"delivered {self.delivered}, lost {len(self.lost)} (in window), "
            f"duplicated {len(self.duplicated)}; refused {len(self.refused)}{window}; "
            f"{self.caught_up} caught up by sync, {self.closed_1011} sockets closed with 1011, "
            f"{self.failed_opens} failed handshakes, {self.unanswered_syncs} syncs unanswered, "
            f"{self.unsent} sends skipped while disconnected"
        )


def count(report: dict[str, Any], stored: set[tuple[str, int]], kill: float) -> Figures:
    """Count what happened to each message of the client's *report* around the *kill*."""
    members = report["members"]
    everyone = set(members)
    first_heard: dict[tuple[str, int], dict[str, float]] = {}
    sent_at = {(sender, n): at for sender, record in members.items() for n, at, _ in record["sent"]}
    duplicated = []
    caught_up = 0
    for listener, record in members.items():
        live: Counter[tuple[str, int]] = Counter()
        for sender, n, _id, at, connection, during_sync in record["received"]:
            first_heard.setdefault((sender, n), {}).setdefault(listener, at)
            if not during_sync:
                live[sender, n] += 1
            elif sent_at.get((sender, n), at) < record["connections"][connection][0]:
                caught_up += 1  # sent before this socket opened: its sync brought it
        duplicated += [(listener, *key) for key, copies in live.items() if copies > 1]
    delivered, lost, refused = 0, [], []
    reached: list[float] = []
    for sender, record in members.items():
        for n, at, connection in record["sent"]:
            heard = first_heard.get((sender, n), {})
            if set(heard) == everyone:
                delivered += 1
                if at > kill:
                    reached.append(max(heard.values()))
                continue
            closed_with = record["connections"][connection][2]
            target = refused if (sender, n) not in stored and closed_with == 1011 else lost
            target.append((sender, n, at - kill))
    connections = [c for record in members.values() for c in record["connections"]]
    return Figures(
        outage=min(reached) - kill if reached else float("inf"),
        sent=sum(len(record["sent"]) for record in members.values()),
        delivered=delivered,
        lost=lost,
        refused=refused,
        duplicated=duplicated,
        caught_up=caught_up,
        closed_1011=sum(1 for c in connections if c[2] == 1011),
        failed_opens=sum(record["failed_opens"] for record in members.values()),
        unsent=sum(record["unsent"] for record in members.values()),
        unanswered_syncs=sum(
            1
            for opened, closed, _code, answered in connections
            if answered is None and (closed is None or closed - opened > 2)
        ),
    )


def stored_messages(database: Path) -> set[tuple[str, int]]:
    """The numbered messages a worker saved (what the room's history has)."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        texts = [text for (text,) in connection.execute("SELECT text FROM chat_chatmessage")]
    found = (_NUMBERED.match(text) for text in texts)
    return {(match["user"], int(match["n"])) for match in found if match}


def add_room(database: Path, slug: str) -> None:
    """Open room *slug* (as the room list's form would; no worker needs to be up)."""
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(
            "INSERT INTO chat_room (slug, title) VALUES (?, ?)",
            (slug, slug.title()),
        )


# The run ---------------------------------------------------------------------------------


@dataclass
class Chat:
    """The example's processes on their hosts, and where its database is."""

    hosts: Network
    database: Path
    env: dict[str, str]
    daphne: DaphneProcess | None = None
    workers: tuple[ManagedProcess, ...] = ()

    @property
    def base(self) -> str:
        assert self.daphne is not None
        return f"http://{self.hosts['daphne'].address}:{self.daphne.port}"

    def start(self) -> None:
        self.env["DJANGO_ALLOWED_HOSTS"] = self.hosts["daphne"].address
        self.daphne = self.hosts["daphne"].start_daphne(APPLICATION, self.env)
        self.workers = tuple(
            self.hosts[name].start_runworker(self.env, "-v", "2", name=name)
            for name in ("workera", "workerb")
        )

    def talk(self, room: str) -> ManagedProcess:
        """Start the users talking in *room*; return the client once messages flow."""
        client = self.hosts["client"].run(
            [sys.executable, "-m", "tests.multihost_client", "--chatter", "--url", self.base,
             "--users", *USERS, "--password", PASSWORD, "--room", room,
             "--after", str(AFTER_RECOVERY)],
            project_env(),
            name="client",
            cwd=ROOT,
        )  # fmt: skip
        client.wait_for("^flowing", timeout=30)
        return client

    def survive(self, client: ManagedProcess, kill: RedisProcess) -> tuple[dict[str, Any], float]:
        """kill -9 *kill*, tell the client; return its report and the kill's time."""
        killed_at = time.monotonic()
        kill.signal(signal.SIGKILL)
        client.signal(signal.SIGUSR1)
        client.wait_for("^marked", timeout=10)
        client.wait_for("^recovered", timeout=RECOVERY_BOUND)
        report = json.loads(client.wait_for(r"^\{", timeout=AFTER_RECOVERY + 20))
        return report, killed_at

    def still_running(self) -> None:
        """Nothing was restarted: the same daphne and workers run, and both workers worked."""
        for process in (self.daphne, *self.workers):
            assert process is not None
            assert process.process.poll() is None, f"{process.name} died:\n{process.tail()}"
        for worker in self.workers:
            worker.wait_for(HANDLED, timeout=10)


def check(figures: Figures, topology: str, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\n" + figures.line(topology))
    assert figures.outage < RECOVERY_BOUND, "messages never flowed again after the kill"
    assert not figures.duplicated, f"messages arrived twice: {figures.duplicated[:10]}"
    outside = [
        (sender, n, round(at, 2))
        for sender, n, at in [*figures.lost, *figures.refused]
        if not -MARGIN_BEFORE <= at <= figures.outage + MARGIN_AFTER
    ]
    assert not outside, f"messages lost outside the outage ({figures.outage:.2f} s): {outside}"
    assert figures.delivered > 0.8 * figures.sent, figures.line(topology)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """The example's SQLite file, migrated, with its users (the hosts share the filesystem)."""
    path = tmp_path / "db.sqlite3"
    setup_database(example_env(path))
    return path


# Sentinel --------------------------------------------------------------------------------

SENTINEL_HOSTS = ("redisa", "redisb", "sentinel1", "sentinel2", "sentinel3")


@pytest.fixture
def sentinel_hosts() -> Iterator[Network]:
    with network(*SENTINEL_HOSTS, "daphne", "workera", "workerb", "client") as made:
        yield made


def test_chat_on_sentinel_survives_the_masters_kill(
    sentinel_hosts: Network, database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kill -9 the master under chat traffic: Sentinel promotes the replica, the chat goes on.

    Only messages sent during the outage may be lost or refused; none twice.
    """
    hosts = sentinel_hosts
    master = hosts["redisa"].start_redis()
    replica = hosts["redisb"].start_redis("--replicaof", master.address, str(master.port))
    monitors = [
        f"sentinel monitor {SERVICE} {master.address} {master.port} 2",
        f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
        f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
    ]
    sentinels = [hosts[f"sentinel{i}"].start_sentinel(monitors) for i in (1, 2, 3)]
    addresses = [[s.address, s.port] for s in sentinels]
    first = hosts["sentinel1"].call(f"{HERE}:sentinels_ready", addresses, 1, 20)
    assert first == [master.address, master.port]

    env = example_env(database)
    env["REDIS_SENTINELS"] = ",".join(f"{host}:{port}" for host, port in addresses)
    env["REDIS_SENTINEL_SERVICES"] = SERVICE
    chat = Chat(hosts, database, env)
    chat.start()
    client = chat.talk("lobby")
    report, killed_at = chat.survive(client, master)

    promoted = hosts["sentinel1"].call(f"{HERE}:sentinel_master", addresses)
    assert promoted == [replica.address, replica.port]
    chat.still_running()
    check(count(report, stored_messages(database), killed_at), "Sentinel", capsys)


# Redis Cluster ---------------------------------------------------------------------------

CLUSTER_HOSTS = tuple(f"redis{i}" for i in range(1, 7))


@pytest.fixture
def cluster_hosts() -> Iterator[Network]:
    with network(*CLUSTER_HOSTS, "daphne", "workera", "workerb", "client") as made:
        yield made


def owner(slots: list[list[Any]], slot: int) -> tuple[str, int]:
    for start, end, host, port in slots:
        if start <= slot <= end:
            return host, port
    raise AssertionError(f"no master serves slot {slot}: {slots}")


def room_beside(
    prefix: str, slots: list[list[Any]], seeds: list[str]
) -> tuple[str, tuple[str, int]]:
    """Return a room whose group lives on the master of the reply list *prefix*, and that master.

    Computed with the layer's own key layout (its buckets' slots), so the
    kill hits both what every delivery to daphne reads and the room's members.
    """
    from channels.layers.redis import RedisChannelLayer

    layer = RedisChannelLayer(hosts=seeds, cluster=True)
    router = layer._router  # the layer's key layout, as tests/layers/test_redis_cluster.py reads it
    _, _, index = router.channel_key(prefix)
    master = owner(slots, router.shards[index].slot)
    for number in range(200):
        slug = "lobby" if number == 0 else f"room{number}"
        _, bucket = router.group_key(f"chat-{slug}")
        if owner(slots, bucket.slot) == master:
            return slug, master
    raise AssertionError(f"no room of 200 has its group on {master}")


def test_chat_on_a_cluster_survives_the_kill_of_the_master_of_its_keys(
    cluster_hosts: Network, database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kill -9 the master of the room's group and daphne's replies: its replica takes over.

    Only messages sent during the outage may be lost or refused; none twice.
    """
    hosts = cluster_hosts
    flags = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS))  # fmt: skip
    nodes = [hosts[name].start_redis(*flags) for name in CLUSTER_HOSTS]
    masters, replicas = nodes[:3], nodes[3:]
    addresses = [[node.address, node.port] for node in nodes]
    hosts["redis1"].call(f"{HERE}:assemble_cluster", addresses[:3], addresses[3:], 20)

    env = example_env(database)
    env["REDIS_CLUSTER"] = ",".join(f"redis://{n.address}:{n.port}" for n in masters)
    chat = Chat(hosts, database, env)
    chat.start()
    assert hosts["client"].call(f"{HERE}:fetch", chat.base + "/accounts/login/") == 200
    (prefix,) = hosts["redis1"].call(f"{HERE}:daphne_prefixes", addresses[:3])
    slots = hosts["redis1"].call(f"{HERE}:cluster_slots", addresses[0])
    room, target = room_beside(prefix, slots, env["REDIS_CLUSTER"].split(","))
    if room != "lobby":
        add_room(database, room)
    victim = next(node for node in masters if (node.address, node.port) == target)
    heir = replicas[masters.index(victim)]

    client = chat.talk(room)
    report, killed_at = chat.survive(client, victim)

    survivor = next(node for node in masters if node is not victim)
    after = hosts["redis1"].call(f"{HERE}:cluster_slots", [survivor.address, survivor.port])
    assert {owner(after, slot) for slot in range(0, SLOTS, 97)} >= {(heir.address, heir.port)}
    assert (victim.address, victim.port) not in {(host, port) for *_, host, port in after}
    chat.still_running()
    check(count(report, stored_messages(database), killed_at), "Redis Cluster", capsys)
