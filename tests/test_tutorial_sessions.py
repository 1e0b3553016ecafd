"""The tutorial's sessions, authentication, security and ordering code, over real sockets.

Each runs on both deployments: ``runserver`` alone (in-memory layer), and
``daphne`` + two ``runworker`` processes on Redis, with real logged-in users.
"""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.interface import login, migrated_database

BOTH = pytest.mark.parametrize("kind", ["runserver", "daphne"])


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database of the test project with users ada and bob (password "pw")."""
    return migrated_database(str(tmp_path_factory.mktemp("db") / "db.sqlite3"), "ada", "bob")


@BOTH
def test_persisting_data(deployments, database: str, kind: str) -> None:
    server = deployments(
        kind, "tests.project.tutorial.persisting.channel_routing", CHANNELS_TEST_DB=database
    )
    with (
        connect(server.ws_url + "/lobby/?username=ada", open_timeout=20) as ada,
        connect(server.ws_url + "/lobby/?username=bob", open_timeout=20) as bob,
    ):
        ada.send("hello")
        expected = {"text": "hello", "username": "ada"}
        assert json.loads(ada.recv(timeout=20)) == expected
        assert json.loads(bob.recv(timeout=20)) == expected
    with (
        connect(server.ws_url + "/lobby/", open_timeout=20) as nameless,
        pytest.raises(ConnectionClosed),
    ):
        nameless.recv(timeout=20)


@BOTH
def test_authentication_and_origin_checks(deployments, database: str, kind: str) -> None:
    server = deployments(
        kind,
        "tests.project.tutorial.auth.channel_routing",
        CHANNELS_TEST_DB=database,
        CHANNELS_TEST_ALLOWED_HOSTS="127.0.0.1,localhost",
        CHANNELS_TEST_SESSION_KEY_QUERY="1",  # bob's socket names its session in the URL
    )
    origin = f"http://127.0.0.1:{server.port}"
    ada_key, bob_key = login(server.url, "ada"), login(server.url, "bob")
    with (
        connect(
            server.ws_url + "/chat/",
            origin=origin,
            additional_headers={"Cookie": f"sessionid={ada_key}"},
            open_timeout=20,
        ) as ada,
        connect(
            server.ws_url + f"/chat/?session_key={bob_key}", origin=origin, open_timeout=20
        ) as bob,
    ):
        ada.send("only for the a group")
        assert ada.recv(timeout=20) == "only for the a group"
        bob.send("only for the b group")
        assert bob.recv(timeout=20) == "only for the b group"
        with pytest.raises(TimeoutError):
            ada.recv(timeout=1)
    for bad in ("http://evil.example", None):
        with pytest.raises(InvalidStatus) as rejected:
            connect(
                server.ws_url + "/chat/",
                origin=bad,
                additional_headers={"Cookie": f"sessionid={ada_key}"},
                open_timeout=20,
            )
        assert rejected.value.response.status_code == 403


@BOTH
def test_enforce_ordering_under_stress(deployments, database: str, kind: str) -> None:
    """200 frames sent back to back come back numbered in order, none lost or doubled."""
    server = deployments(
        kind,
        "tests.project.tutorial.ordering.channel_routing",
        CHANNELS_TEST_DB=database,
        worker_flags=("--threads", "2"),
    )
    with connect(server.ws_url + "/chat/", open_timeout=20) as ws:
        for n in range(1, 201):
            ws.send(f"m{n}")
        received = [ws.recv(timeout=60) for _ in range(200)]
    mismatches = [(i, r) for i, r in enumerate(received, 1) if r != f"{i}: m{i}"]
    assert not mismatches, mismatches[:10]
