"""The delay server: messages sent when due, in due order; bad ones logged and skipped."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator

import pytest

from channels.asgi import ChannelLayerWrapper
from channels.delay.models import DelayedMessage
from channels.delay.server import DelayServer
from tests.logwatch import watch_logs
from tests.processes import ManagedProcess, django_command, project_env
from tests.test_runworker import env, layer  # noqa: F401 - fixtures (database: tests.workers)
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def delay_server(layer: ChannelLayerWrapper) -> Iterator[DelayServer]:  # noqa: F811
    server = DelayServer(layer)
    thread = threading.Thread(target=server.run)
    thread.start()
    yield server
    server.stop()
    thread.join(10)
    assert not thread.is_alive()


def test_a_hundred_delayed_messages_arrive_in_due_order(
    layer: ChannelLayerWrapper,  # noqa: F811
    delay_server: DelayServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    delays = [100 + n * 19 for n in range(100)]  # 0.1 s to 2 s, all different
    random.Random(7).shuffle(delays)
    layer.send("asgi.delay", {"channel": "delayed.out", "content": {"n": 0}, "delay": "soon"})
    layer.send("asgi.delay", {"channel": "bad name", "content": {}, "delay": 5})
    due = {}
    for delay in delays:
        due[delay] = time.monotonic() + delay / 1000
        content = {"delay": delay}
        layer.send("asgi.delay", {"channel": "delayed.out", "content": content, "delay": delay})
    received = []
    while len(received) < 100:
        channel, message = layer.receive(["delayed.out"], block=True, timeout=10)
        assert channel == "delayed.out", "a delayed message did not arrive"
        assert time.monotonic() >= due[message["delay"]] - 0.05  # never early
        received.append(message["delay"])
    assert sorted(received) == sorted(delays)  # each exactly once
    # In due order: the server starts each delay when it takes the message, a few
    # milliseconds after this test sent it, so allow that much between neighbours.
    dues = [due[delay] for delay in received]
    assert all(later >= earlier - 0.05 for earlier, later in itertools.pairwise(dues))
    # Sent, then deleted.
    wait_until(lambda: not DelayedMessage.objects.exists(), 10, "delayed rows were left")
    assert "delay must be ms" in caplog.text
    assert "bad channel" in caplog.text


def test_rundelay_as_a_process(env: dict[str, str], layer) -> None:  # noqa: F811
    server = ManagedProcess(django_command("rundelay"), env)
    try:
        server.wait_for("Delay server running")
        layer.send("asgi.delay", {"channel": "x", "content": "not a dict", "delay": 1})
        for n, delay in enumerate((300, 100, 200)):
            layer.send("asgi.delay", {"channel": "later", "content": {"n": n}, "delay": delay})
        got = [layer.receive(["later"], block=True, timeout=10)[1]["n"] for _ in range(3)]
        assert got == [1, 2, 0]
    finally:
        server.stop()


def test_rundelay_refuses_the_in_memory_layer(database: object) -> None:
    import subprocess

    result = subprocess.run(
        django_command("rundelay"),
        env=project_env(CHANNELS_TEST_DB=str(database)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "cross-process channel layer" in result.stderr


def test_rundelay_without_migrations_exits_saying_run_migrate(
    tmp_path, redis_url: str, unique_prefix: str
) -> None:
    import subprocess

    result = subprocess.run(
        django_command("rundelay"),
        env=project_env(
            CHANNELS_TEST_DB=str(tmp_path / "empty.sqlite3"),
            CHANNELS_TEST_REDIS_URL=redis_url,
            CHANNELS_TEST_PREFIX=unique_prefix,
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "run `python manage.py migrate` first" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_database_failure_loses_no_delayed_message(
    layer: ChannelLayerWrapper,  # noqa: F811
    delay_server: DelayServer,
) -> None:
    """While the table is gone the message waits on asgi.delay; it is sent once it is back."""
    from django.db import connection

    table = DelayedMessage._meta.db_table
    with watch_logs("channels.delay") as logs:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
        try:
            layer.send("asgi.delay", {"channel": "kept", "content": {"n": 1}, "delay": 10})
            logs.wait_for("failed a step")
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE {table}_away RENAME TO {table}")
        assert layer.receive(["kept"], block=True, timeout=15) == ("kept", {"n": 1})
        logs.wait_for("works again")
        assert logs.count("failed a step") == 1  # said once, not on every retry
