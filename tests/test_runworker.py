"""manage.py runworker as real processes on a real Redis."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from channels.layers.redis import RedisChannelLayer
from tests.processes import ManagedProcess, django_command, project_env
from tests.redis_server import RedisServer

StartWorker = Callable[..., ManagedProcess]


@pytest.fixture
def env(redis_url: str, unique_prefix: str, database: Path) -> dict[str, str]:
    return project_env(
        CHANNELS_TEST_REDIS_URL=redis_url,
        CHANNELS_TEST_PREFIX=unique_prefix,
        CHANNELS_TEST_DB=str(database),
    )


@pytest.fixture
def layer(redis_url: str, unique_prefix: str) -> Iterator[RedisChannelLayer]:
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix)
    yield layer
    layer.flush()
    layer.close()


@pytest.fixture
def start_worker(env: dict[str, str]) -> Iterator[StartWorker]:
    started: list[ManagedProcess] = []

    def start(*args: str, environment: dict[str, str] | None = None) -> ManagedProcess:
        worker = ManagedProcess(django_command("runworker", *args), environment or env)
        started.append(worker)
        worker.wait_for("Listening on channels")
        return worker

    yield start
    for worker in started:
        worker.stop()


def receive(layer: RedisChannelLayer, channel: str, timeout: float = 20) -> dict:
    name, message = layer.receive([channel], block=True, timeout=timeout)
    assert name == channel, f"nothing arrived on {channel}"
    return message


def test_the_tutorials_custom_channel_runs_on_two_workers(
    start_worker: StartWorker, layer: RedisChannelLayer, database: Path
) -> None:
    start_worker()
    start_worker()
    layer.group_add("chat-lobby", "test.listener")
    texts = [f"message {n}" for n in range(20)]
    for text in texts:
        layer.send("chat-in", {"room": "lobby", "text": text})
    received = [receive(layer, "test.listener")["text"] for _ in texts]
    assert sorted(received) == sorted(texts)
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT room, message FROM chat_chatmessage").fetchall()
    assert sorted(rows) == sorted(("lobby", text) for text in texts)


def test_both_workers_take_messages(start_worker: StartWorker, layer: RedisChannelLayer) -> None:
    first, second = start_worker(), start_worker()
    pids: set[int] = set()
    for _ in range(200):
        layer.send("whoami.a", {"reply_channel": "test.reply"})
        pids.add(receive(layer, "test.reply")["pid"])
        if len(pids) == 2:
            break
    assert pids == {first.process.pid, second.process.pid}


def test_only_and_exclude_channels(start_worker: StartWorker, layer: RedisChannelLayer) -> None:
    only = start_worker("--only-channels", "whoami.*", "--exclude-channels", "whoami.b")
    layer.send("whoami.b", {"reply_channel": "test.reply"})
    layer.send("whoami.a", {"reply_channel": "test.reply"})
    assert receive(layer, "test.reply") == {"pid": only.process.pid, "channel": "whoami.a"}
    assert layer.receive(["test.reply"], block=True, timeout=1) == (None, None)
    other = start_worker("--only-channels", "whoami.b")
    assert receive(layer, "test.reply") == {"pid": other.process.pid, "channel": "whoami.b"}


def test_threads_run_consumers_side_by_side(
    start_worker: StartWorker, layer: RedisChannelLayer
) -> None:
    start_worker("--threads", "3")
    for _ in range(3):
        layer.send("slow", {"reply_channel": "test.reply", "seconds": 3})
    # All three start before any finishes: three threads hold one consumer each.
    first_three = [receive(layer, "test.reply") for _ in range(3)]
    assert all("started" in message for message in first_three)


def test_sigterm_lets_the_running_consumer_finish_then_exits_zero(
    start_worker: StartWorker, layer: RedisChannelLayer
) -> None:
    worker = start_worker()
    layer.send("slow", {"reply_channel": "test.reply", "seconds": 1.5})
    assert "started" in receive(layer, "test.reply")
    worker.signal(signal.SIGTERM)
    assert receive(layer, "test.reply") == {"finished": worker.process.pid}
    assert worker.wait(30) == 0


def test_an_idle_worker_stops_at_once_on_sigint(start_worker: StartWorker) -> None:
    worker = start_worker()
    worker.signal(signal.SIGINT)
    assert worker.wait(15) == 0
    assert "Worker stopped." in "".join(worker.output)


def test_a_redis_restart_while_idle_is_survived(
    redis_server: RedisServer, unique_prefix: str, env: dict[str, str], start_worker: StartWorker
) -> None:
    environment = {**env, "CHANNELS_TEST_REDIS_URL": redis_server.url}
    worker = start_worker(environment=environment)
    redis_server.stop()
    worker.wait_for("is unreachable")
    redis_server.start()
    layer = RedisChannelLayer(hosts=[redis_server.url], prefix=unique_prefix)
    try:
        layer.send("whoami.a", {"reply_channel": "test.reply"})
        assert receive(layer, "test.reply")["pid"] == worker.process.pid
    finally:
        layer.close()
    assert worker.process.poll() is None


def test_verbosity_two_logs_every_message(
    start_worker: StartWorker, layer: RedisChannelLayer
) -> None:
    worker = start_worker("-v", "2")
    layer.send("whoami.a", {"reply_channel": "test.reply"})
    receive(layer, "test.reply")
    worker.wait_for(r"whoami\.a -> tests\.project\.chat\.consumers\.whoami")


def test_runworker_refuses_the_in_memory_layer(database: Path) -> None:
    result = subprocess.run(
        django_command("runworker"),
        env=project_env(CHANNELS_TEST_DB=str(database)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "in-memory and cannot reach other processes" in result.stderr


def test_runworker_reports_a_bad_routing(env: dict[str, str]) -> None:
    result = subprocess.run(
        django_command("runworker"),
        env={**env, "CHANNELS_TEST_ROUTING": "tests.project.nowhere.routing"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "channels.E002" in result.stderr or "Cannot import ROUTING" in result.stderr
