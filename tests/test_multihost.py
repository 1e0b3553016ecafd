"""The chat example on five machines: Redis, daphne, two workers and the users each on a host.

Each host is a network namespace of its own (tests/netns.py), so the only
way between them is the bridge and the addresses on it: the Channels 1.x
deployment of interface servers and workers on separate machines joined by
the channel layer, checked for real. Skips, saying why, where namespaces
cannot be made (not root, no ``ip``, a container that forbids them).
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.example.support import PASSWORD, example_env, setup_database
from tests.netns import Host, Network, TcpSocket, network
from tests.processes import ROOT, project_env

#: What daphne serves: the chat example's channel layer.
APPLICATION = "example_project.asgi:channel_layer"
#: Messages each of the two users sends.
MESSAGES = 5
#: A line runworker prints at -v 2 for each message it hands to a consumer.
HANDLED = r" -> \S+ \(reply to "
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def off_network(host: Host, sockets: list[TcpSocket], addresses: set[str]) -> list[TcpSocket]:
    """The sockets of *host* not on its own address, or (but listeners) to no network address."""
    return [
        found
        for found in sockets
        if found.local[0] != host.address
        or found.local[0] in LOOPBACK_HOSTS
        or (not found.listening and found.peer[0] not in addresses)
    ]


@pytest.fixture
def hosts() -> Iterator[Network]:
    with network("redis", "daphne", "workera", "workerb", "client") as made:
        yield made


def test_network_hosts_reach_each_other_by_address_and_nothing_else(hosts: Network) -> None:
    """A host reaches another's address, not the root namespace, and not a host cut off."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # in the root namespace: no host must reach it
    listener.listen()
    root_port = listener.getsockname()[1]
    try:
        server = hosts["redis"].run(
            [sys.executable, "-c", "import socket; s = socket.create_server("
             f"({hosts['redis'].address!r}, 7000)); print('up', flush=True); s.accept()"
             "; print('accepted', flush=True)"],
            project_env(),
            name="listener",
        )  # fmt: skip
        server.wait_for("^up", timeout=10)

        def reach(source: Host, address: str, port: int) -> str:
            probe = source.run(
                [sys.executable, "-c", "import socket\ntry:\n"
                 f"    socket.create_connection(({address!r}, {port}), timeout=2)\n"
                 "    print('reached')\nexcept OSError as e:\n    print('unreachable', e)"],
                project_env(),
                name=f"probe-{source.name}",
            )  # fmt: skip
            return probe.wait_for("reached|unreachable", timeout=10)

        assert reach(hosts["client"], "127.0.0.1", root_port).startswith("unreachable")
        hosts["client"].disconnect()
        assert reach(hosts["client"], hosts["redis"].address, 7000).startswith("unreachable")
        hosts["client"].reconnect()
        assert reach(hosts["client"], hosts["redis"].address, 7000) == "reached\n"
        server.wait_for("^accepted", timeout=10)
    finally:
        listener.close()


def test_chat_across_hosts_reaches_every_member_through_two_workers(
    hosts: Network, tmp_path: Path
) -> None:
    """Every message reaches both users, both workers do work, and no byte goes via loopback."""
    redis = hosts["redis"].start_redis()
    database = tmp_path / "db.sqlite3"  # the hosts share the filesystem, as over NFS
    setup_database(example_env(database))
    env = example_env(database, redis.url)
    env["DJANGO_ALLOWED_HOSTS"] = hosts["daphne"].address
    daphne = hosts["daphne"].start_daphne(APPLICATION, env)
    workers = [
        hosts[name].start_runworker(env, "-v", "2", name=name) for name in ("workera", "workerb")
    ]
    base = f"http://{hosts['daphne'].address}:{daphne.port}"
    users = ["alice", "bob"]
    client = hosts["client"].run(
        [sys.executable, "-m", "tests.multihost_client", "--url", base, "--users", *users,
         "--password", PASSWORD, "--messages", str(MESSAGES)],
        project_env(),
        name="client",
        cwd=ROOT,
    )  # fmt: skip
    report = json.loads(client.wait_for(r"^\{", timeout=60))

    # HTTP from the client host: the login page, the login, the room list, for each user.
    assert report["http"] == {user: [200, 200, 200] for user in users}
    sent = sorted([user, f"{user} #{n}"] for user in users for n in range(MESSAGES))
    for user in users:
        assert sorted(report["received"][user]) == sent, f"{user} missed or doubled messages"
    daphne_endpoint = [hosts["daphne"].address, daphne.port]
    for local, peer in report["sockets"]:
        assert (local[0], peer) == (hosts["client"].address, daphne_endpoint)
    for worker in workers:  # each worker handed at least one message to a consumer
        worker.wait_for(HANDLED, timeout=10)

    listeners = {}
    for host in hosts.hosts:
        sockets = host.sockets()
        assert not off_network(host, sockets, hosts.addresses), (host.name, sockets)
        listeners[host.name] = [found.local for found in sockets if found.listening]
    assert listeners["redis"] == [(redis.address, redis.port)]
    assert listeners["daphne"] == [(hosts["daphne"].address, daphne.port)]
