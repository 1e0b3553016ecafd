"""Group and presence hygiene end to end: dead members go, closing servers say goodbye.

Real processes on a real Redis: daphne and ``runworker`` serve
:mod:`tests.hygiene_routing`, and the sockets are real WebSocket clients, held
open by one asyncio loop of the test's (:class:`tests.fleet.Fleet`). What is measured is
printed (``pytest -s``); what is asserted is only what must hold, within the
bounds the layer is configured with. The first tests run the bridge itself
on the in-memory layer, as ``runserver`` does.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from channels.asgi import ChannelLayerWrapper
from channels.bridge import Bridge
from channels.layers.inmemory import InMemoryChannelLayer
from tests.fleet import Client, Fleet, counts
from tests.hygiene_routing import ROUTING, SETTINGS
from tests.interface import Deployment
from tests.test_bridge import FakeServer, websocket_scope
from tests.waiting import wait_until

# The bridge on the in-memory layer (runserver's) ----------------------------------


async def _open_socket(layer: Any) -> tuple[asyncio.Task[None], FakeServer, str]:
    """Open a WebSocket through the bridge; return its task, its server and its reply channel."""
    server = FakeServer()
    task = asyncio.ensure_future(Bridge(layer)(websocket_scope(), server.receive, server.send))
    await server.incoming.put({"type": "websocket.connect"})
    _, connect = await layer.areceive(["websocket.connect"], block=True, timeout=5)
    await layer.asend(connect["reply_channel"], {"accept": True})
    assert await server.next_sent() == {"type": "websocket.accept"}
    return task, server, connect["reply_channel"]


async def _next_diff(layer: Any) -> Any:
    """Return the next presence diff the test's ``watcher`` channel receives."""
    channel, frame = await layer.areceive(["watcher"], block=True, timeout=10)
    assert channel == "watcher", "no diff arrived"
    return json.loads(frame["text"])


async def test_the_bridge_runs_housekeeping_and_releases_a_closed_sockets_presence() -> None:
    """No consumer untracks the socket and no one else calls maintain(): the bridge does both.

    Its housekeeping sends the join, and after the socket closes and the
    grace runs out, the leave.
    """
    memory = InMemoryChannelLayer(presence_grace=0.2)
    memory.maintain_interval = 0.1
    layer = ChannelLayerWrapper(memory, "default", None)
    await layer.agroup_add("watchers", "watcher")
    task, server, reply_channel = await _open_socket(layer)
    await layer.apresence_track("room", reply_channel, "alice", {"tab": 1}, "watchers")
    assert await _next_diff(layer) == {
        "presence": "room",
        "joins": {"alice": [{"tab": 1}]},
        "leaves": {},
    }

    await server.incoming.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 5)
    assert await layer.apresence_count("room") == 1  # within its grace
    assert await _next_diff(layer) == {
        "presence": "room",
        "joins": {},
        "leaves": {"alice": [{"tab": 1}]},
    }
    assert await layer.apresence_count("room") == 0


async def test_a_server_shutting_down_closes_its_sockets_with_1012_and_tells_the_consumers() -> (
    None
):
    """Cancelled as daphne cancels at shutdown, each socket ends normally, having said goodbye.

    Normally, not cancelled: daphne waits for its applications with one
    gather, which would stop waiting at the first to end cancelled.
    """
    layer = ChannelLayerWrapper(InMemoryChannelLayer(), "default", None)
    sockets = [await _open_socket(layer) for _ in range(3)]
    for task, _, _ in sockets:
        task.cancel()
    await asyncio.wait_for(asyncio.gather(*(task for task, _, _ in sockets)), 10)
    for _, server, _ in sockets:
        assert await server.next_sent() == {"type": "websocket.close", "code": 1012}
    codes = []
    for _ in sockets:
        _, disconnect = await layer.areceive(["websocket.disconnect"])
        codes.append(disconnect["code"])
    assert codes == [1012] * 3


# Real processes on Redis ------------------------------------------------------------


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    clients = Fleet()
    yield clients
    clients.stop()


def hygiene(deployments: Any, workers: int, **settings: str) -> Deployment:
    """Start daphne (+ *workers* runworkers) serving the hygiene routing."""
    deployment: Deployment = deployments(
        "daphne", ROUTING, workers=workers, DJANGO_SETTINGS_MODULE=SETTINGS, **settings
    )
    return deployment


def test_the_members_of_a_killed_daphne_leave_every_group_and_presence_in_time(
    deployments: Any, fleet: Fleet
) -> None:
    """kill -9 a daphne with 500 sockets in 10 groups: a live process reaps them.

    Its memberships go within ``process_ttl`` plus a housekeeping pass or two,
    its presence entries ``presence_grace`` later; the live members stay,
    and a group send afterwards reaches each of them exactly once.
    """
    ttl, grace = 3.0, 1.0
    settings = {
        "CHANNELS_TEST_PROCESS_TTL": str(ttl),
        "CHANNELS_TEST_PRESENCE_GRACE": str(grace),
    }
    doomed = hygiene(deployments, 0, **settings)
    survivor = hygiene(deployments, 2, **settings)  # a daphne and workers: they reap
    layer = survivor.layer
    groups = [f"g{k}" for k in range(10)]
    rooms = [f"room{k}" for k in range(10)]
    live = fleet.open(survivor.port, [f"/member/g{k}/room{k}/live{k}/" for k in range(10)])
    fleet.open(doomed.port, [f"/member/g{n % 10}/room{n % 10}/user{n}/" for n in range(500)])
    assert counts(layer, groups, "group_count") == [51] * 10
    assert counts(layer, rooms, "presence_count") == [51] * 10

    doomed.processes[0].signal(signal.SIGKILL)
    killed = time.monotonic()
    doomed.processes[0].wait()
    wait_until(
        lambda: counts(layer, groups, "group_count") == [1] * 10,
        ttl + 15,
        lambda: f"the dead daphne's members stayed: {counts(layer, groups, 'group_count')}",
    )
    groups_gone = time.monotonic() - killed
    wait_until(
        lambda: counts(layer, rooms, "presence_count") == [1] * 10,
        ttl + grace + 15,
        lambda: f"the dead daphne's presence stayed: {counts(layer, rooms, 'presence_count')}",
    )
    presence_gone = time.monotonic() - killed
    print(
        f"\nkill -9 of 500 sockets in 10 groups (process_ttl {ttl:g} s, presence_grace "
        f"{grace:g} s): memberships gone after {groups_gone:.2f} s, presence after "
        f"{presence_gone:.2f} s"
    )

    for k, client in enumerate(live):
        assert layer.group_channels(f"g{k}") == [client.reply_channel]
        assert list(layer.presence_list(f"room{k}")) == [f"live{k}"]
        layer.send_group(f"g{k}", {"text": "after"})
        layer.send_group(f"g{k}", {"text": "end"})
    for client in live:  # "end" follows on the same channel: "after" came exactly once
        assert (fleet.frame(client), fleet.frame(client)) == ("after", "end")


def _diffs(fleet: Fleet, observer: Client, until: str, timeout: float) -> list[dict[str, Any]]:
    """Return the observer's diff frames up to and including the first that names *until*."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        diff = json.loads(fleet.frame(observer, max(0.1, deadline - time.monotonic())))
        seen.append(diff)
        if until in diff["joins"] or until in diff["leaves"]:
            return seen


def test_a_client_that_reconnects_within_the_grace_neither_leaves_nor_joins(
    deployments: Any, fleet: Fleet
) -> None:
    """alice's socket drops and she is back within the grace: the observer hears nothing of her.

    Between the drop and her return, bob joins and is heard: a diff batch
    went out after alice's socket was released, so without the grace she
    would have left in it. bob is heard again when he leaves for good, after
    alice's old socket's grace, so the silence about her is not for want of
    frames.
    """
    grace = 6.0
    server = hygiene(deployments, 1, CHANNELS_TEST_PRESENCE_GRACE=str(grace))
    (observer,) = fleet.open(server.port, ["/observe/lobby/"])
    (alice,) = fleet.open(server.port, ["/track/lobby/alice/"])
    (joined,) = _diffs(fleet, observer, "alice", 20)
    assert (list(joined["joins"]), joined["leaves"]) == (["alice"], {})

    fleet.close(alice)  # a flaky network
    server.event(disconnected="/track/lobby/alice/")  # the bridge released her socket before
    dropped = time.monotonic()
    (bob,) = fleet.open(server.port, ["/track/lobby/bob/"])
    heard = _diffs(fleet, observer, "bob", 20)
    (alice,) = fleet.open(server.port, ["/track/lobby/alice/"])
    assert time.monotonic() - dropped < grace, "alice came back too late to test the grace"
    fleet.close(bob)
    heard += _diffs(fleet, observer, "bob", grace + 20)

    assert "bob" in heard[-2]["joins"]
    assert "bob" in heard[-1]["leaves"]
    assert not [diff for diff in heard if "alice" in diff["joins"] or "alice" in diff["leaves"]]
    assert server.layer.presence_list("lobby") == {"alice": [{"path": "/track/lobby/alice/"}]}


def test_a_daphne_stopped_with_sigterm_says_goodbye_to_every_socket_and_leaves_its_groups(
    deployments: Any, fleet: Fleet
) -> None:
    """SIGTERM: each socket is closed with 1012 and its consumers get websocket.disconnect.

    The bridge drains (tests/test_drain.py): with no response in flight it
    closes the sockets at once. The disconnects are out before daphne exits
    (every consumer runs, after it), and the memberships are gone as it
    exits, long before ``process_ttl`` would have had a live process reap
    them. The SIGTERM comes right after the last handshakes, when daphne's
    own shutdown step often fails (a ``KeyError`` on an upgraded request it
    has not cleaned up yet) and cancels nothing: the drain does not need it.
    """
    server = hygiene(deployments, 1, CHANNELS_TEST_PROCESS_TTL="60")
    groups = [f"g{k}" for k in range(5)]
    clients = fleet.open(server.port, [f"/member/g{n % 5}/room{n % 5}/user{n}/" for n in range(50)])
    assert counts(server.layer, groups, "group_count") == [10] * 5

    daphne = server.processes[0]
    daphne.signal(signal.SIGTERM)
    stopping = time.monotonic()
    daphne.wait(30)
    stopped = time.monotonic() - stopping
    assert counts(server.layer, groups, "group_count") == [0] * 5
    print(f"\nSIGTERM with 50 sockets: daphne exited after {stopped:.2f} s")

    assert fleet.wait_closed(clients) == [1012] * 50
    recorded = [server.event(30) for _ in clients]  # one from each disconnect consumer
    assert {record["reply_channel"] for record in recorded} == {c.reply_channel for c in clients}
    assert {record["code"] for record in recorded} == {1012}
