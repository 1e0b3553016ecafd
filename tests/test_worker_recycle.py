"""A worker's life: it stops for a fresh one, says when it is ready, and never loses a message.

In-process tests run a :class:`~channels.worker.Worker` on the in-memory
layer (or Redis, where the layer matters); the command-line tests run real
``runworker`` and ``rundelay`` processes on a real Redis.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from channels.asgi import ChannelLayerWrapper
from channels.layers.redis import RedisChannelLayer
from channels.readiness import Readiness, ReadyFile
from channels.recycle import Recycler, resident_memory_mb
from channels.routing import Router, route
from channels.worker import Worker
from tests.processes import ManagedProcess, django_command, project_env
from tests.redis_server import RedisServer
from tests.restart_routing import ROUTING
from tests.workers import expect

StartProcess = Callable[..., ManagedProcess]


def send(layer: Any, channel: str, **content: Any) -> None:
    layer.send(channel, {"reply_channel": "reply", **content})


def run_in_thread(worker: Worker) -> tuple[threading.Thread, list[Any]]:
    """Run *worker* on a thread; the list gets what ``run()`` returned."""
    returned: list[Any] = []
    worker.receive_timeout = 0.1
    thread = threading.Thread(target=lambda: returned.append(worker.run()))
    thread.start()
    return thread, returned


def drain(layer: Any, channel: str) -> list[dict[str, Any]]:
    """Everything waiting on *channel* now."""
    taken = []
    while True:
        name, message = layer.receive([channel])
        if name is None:
            return taken
        taken.append(message)


# The recycler -------------------------------------------------------------------


def test_the_message_limit_is_moved_by_at_most_the_jitter() -> None:
    limits = {Recycler(max_messages=1000).limit for _ in range(200)}
    assert all(limit is not None and 900 <= limit <= 1100 for limit in limits)
    assert len(limits) > 1  # a fleet does not recycle all at once
    assert Recycler(max_messages=1, jitter=0.1).limit == 1  # never below one message
    assert Recycler(max_messages=50, jitter=0).limit == 50


def test_the_limit_is_said_once_by_the_message_that_reaches_it() -> None:
    recycler = Recycler(max_messages=3, jitter=0)
    reasons = [recycler.took_one() for _ in range(5)]
    assert reasons[:2] == [None, None]
    assert reasons[3:] == [None, None]
    assert reasons[2] is not None
    assert "taken 3 messages" in reasons[2]
    assert recycler.taken == 5


def test_a_memory_limit_below_the_resident_memory_says_so() -> None:
    assert resident_memory_mb() > 1
    reason = Recycler(max_memory_mb=1).finished_one()
    assert reason is not None
    assert "above the limit of 1 MiB" in reason
    assert Recycler(max_memory_mb=10**6).finished_one() is None
    assert Recycler(max_messages=5).finished_one() is None


@pytest.mark.parametrize(
    "options",
    [{"max_messages": 0}, {"max_messages": True}, {"max_memory_mb": 0}, {"jitter": 1}],
)
def test_the_recycler_refuses_limits_that_make_no_sense(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Recycler(**options)


# The worker in-process ------------------------------------------------------------


def test_a_worker_stops_by_itself_after_max_messages_and_leaves_the_rest(
    layer: ChannelLayerWrapper,
) -> None:
    def consumer(message: Any) -> None:
        message.reply_channel.send({"n": message["n"]})

    for n in range(8):
        send(layer, "work", n=n)
    worker = Worker(layer, Router([route("work", consumer)]), recycler=Recycler(5, jitter=0))
    thread, returned = run_in_thread(worker)
    thread.join(20)
    assert not thread.is_alive()
    assert returned == [[]]
    assert worker.stop_reason is not None
    assert "taken 5 messages" in worker.stop_reason
    assert [message["n"] for message in drain(layer, "reply")] == [0, 1, 2, 3, 4]
    assert [message["n"] for message in drain(layer, "work")] == [5, 6, 7]


def test_a_stop_waits_for_an_async_consumer_in_flight(layer: ChannelLayerWrapper) -> None:
    entered = threading.Event()
    release = threading.Event()

    async def consumer(message: Any) -> None:
        entered.set()
        await asyncio.to_thread(release.wait, 10)
        await message.reply_channel.asend({"finished": True})

    worker = Worker(layer, Router([route("slow", consumer)]))
    thread, returned = run_in_thread(worker)
    send(layer, "slow")
    assert entered.wait(10)
    worker.stop()
    thread.join(0.3)
    assert thread.is_alive()  # it waits for the consumer
    release.set()
    thread.join(10)
    assert not thread.is_alive()
    assert returned == [[]]
    assert expect(layer, "reply") == {"finished": True}


def test_the_stop_timeout_cuts_a_consumer_that_never_returns_and_names_it(
    layer: ChannelLayerWrapper, caplog: pytest.LogCaptureFixture
) -> None:
    entered = threading.Event()
    release = threading.Event()

    def stuck(message: Any) -> None:
        entered.set()
        release.wait(30)

    worker = Worker(layer, Router([route("stuck", stuck)]), stop_timeout=0.5)
    thread, returned = run_in_thread(worker)
    try:
        send(layer, "stuck")
        assert entered.wait(10)
        worker.stop("test")
        thread.join(10)
        assert not thread.is_alive()
        (cut,) = returned[0]
        assert (cut.channel, cut.consumer) == ("stuck", stuck)
        assert "Cut short by the 0.5 s stop timeout" in caplog.text
        assert "stuck on stuck (running for" in caplog.text
    finally:
        release.set()


def test_a_receive_loop_that_dies_stops_the_worker(layer: ChannelLayerWrapper) -> None:
    def exits(message: Any) -> None:
        raise SystemExit(3)

    worker = Worker(layer, Router([route("exit", exits)]), threads=2)
    thread, returned = run_in_thread(worker)
    send(layer, "exit")
    thread.join(20)
    assert not thread.is_alive()
    assert returned == [[]]
    assert worker.stop_reason == "a receive loop died"


def test_a_worker_says_it_is_ready_once_however_many_threads_see_it(
    layer: ChannelLayerWrapper,
) -> None:
    ready = threading.Semaphore(0)
    calls: list[str] = []

    def on_ready() -> None:
        calls.append(threading.current_thread().name)
        ready.release()

    worker = Worker(layer, Router([route("any", lambda message: None)]), threads=4)
    worker.on_ready = on_ready
    thread, _ = run_in_thread(worker)
    try:
        assert ready.acquire(timeout=10)  # the first receive that worked said it
        worker.mark_ready()
    finally:
        worker.stop()
        thread.join(10)
    assert len(calls) == 1
    assert calls[0].startswith("channels-worker-")


class StopsWhileItsSendsTakeTheNext(Worker):
    """As if ``SIGTERM`` came just after the worker chose to take a message with the sends."""

    def _poll_channels(self) -> list[str] | None:
        channels = super()._poll_channels()
        self.stop("SIGTERM")
        return channels


def test_a_message_taken_with_the_sends_at_a_stop_is_handled_before_the_worker_ends(
    redis_layer: ChannelLayerWrapper,
) -> None:
    def consumer(message: Any) -> None:
        message.reply_channel.send({"n": message["n"]})

    # Load the pop script: a send that finds it missing takes nothing with it.
    assert redis_layer.receive(["work"]) == (None, None)
    for n in (1, 2, 3):
        send(redis_layer, "work", n=n)
    worker = StopsWhileItsSendsTakeTheNext(redis_layer, Router([route("work", consumer)]))
    thread, returned = run_in_thread(worker)
    thread.join(20)
    assert not thread.is_alive()
    assert returned == [[]]
    assert [message["n"] for message in drain(redis_layer, "reply")] == [1, 2]
    # 2 came with the reply to 1, after the stop; 3 was left for another worker.
    assert [message["n"] for message in drain(redis_layer, "work")] == [3]


# The ready file -------------------------------------------------------------------


def test_a_ready_file_is_written_once_and_only_its_writer_removes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ready"
    path.write_text("999999\n")  # left by a killed process
    caplog.set_level(logging.INFO, logger="channels.test")
    with Readiness(logging.getLogger("channels.test"), "a test", path) as readiness:
        assert not path.exists()
        assert not readiness.ready
        readiness.announce()
        readiness.announce()
        assert path.read_text() == f"{os.getpid()}\n"
        assert caplog.text.count("Ready: a test") == 1
    assert not path.exists()
    path.write_text("999999\n")  # a successor's
    ReadyFile(path).remove()
    assert path.exists()


def test_a_ready_file_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist: create it"):
        ReadyFile(tmp_path / "nowhere" / "ready")


# runworker and rundelay as processes ------------------------------------------------


@pytest.fixture
def env(redis_url: str, unique_prefix: str) -> dict[str, str]:
    return project_env(
        CHANNELS_TEST_REDIS_URL=redis_url,
        CHANNELS_TEST_PREFIX=unique_prefix,
        CHANNELS_TEST_ROUTING=ROUTING,
    )


@pytest.fixture
def start(env: dict[str, str]) -> Iterator[StartProcess]:
    """Start a command (``runworker`` unless told) once it prints *ready*; stop it after."""
    started: list[ManagedProcess] = []

    def run(
        *args: str,
        command: str = "runworker",
        ready: str = "Listening on channels",
        environment: dict[str, str] | None = None,
    ) -> ManagedProcess:
        process = ManagedProcess(django_command(command, *args), environment or env, name=command)
        started.append(process)
        process.wait_for(ready)
        return process

    yield run
    for process in started:
        process.stop()


@pytest.fixture
def raw_layer(redis_url: str, unique_prefix: str) -> Iterator[RedisChannelLayer]:
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix)
    yield layer
    layer.flush()
    layer.close()


def test_max_messages_exits_zero_after_about_n_and_a_second_worker_takes_the_rest(
    start: StartProcess, raw_layer: RedisChannelLayer
) -> None:
    for n in range(30):
        raw_layer.send("recycle.work", {"n": n, "reply_channel": "test.recycled"})
    first = start("--max-messages", "10")
    line = first.wait_for(r"Recycling: this worker stops after \d+ messages")
    limit = int(re.search(r"after (\d+) messages \(--max-messages 10 ± 10%\)", line)[1])
    assert 9 <= limit <= 11
    assert first.wait(30) == 0
    assert f"Recycling: it has taken {limit} messages" in "".join(first.output)
    handled = drain(raw_layer, "test.recycled")
    assert len(handled) == limit
    assert {reply["pid"] for reply in handled} == {first.pid}
    second = start()
    for _ in range(30 - limit):
        name, reply = raw_layer.receive(["test.recycled"], block=True, timeout=20)
        assert name == "test.recycled", "the second worker did not take the rest"
        assert reply["pid"] == second.pid
        handled.append(reply)
    assert sorted(reply["n"] for reply in handled) == list(range(30))  # each exactly once


def test_max_memory_below_the_rss_exits_zero_after_the_first_message(
    start: StartProcess, raw_layer: RedisChannelLayer
) -> None:
    for n in range(5):
        raw_layer.send("recycle.work", {"n": n, "reply_channel": "test.recycled"})
    worker = start("--max-memory", "1")
    assert worker.wait(30) == 0
    output = "".join(worker.output)
    assert "Recycling: its resident memory" in output
    assert "above the limit of 1 MiB" in output
    assert [reply["n"] for reply in drain(raw_layer, "test.recycled")] == [0]
    assert [message["n"] for message in drain(raw_layer, "recycle.work")] == [1, 2, 3, 4]


def test_the_ready_file_exists_while_the_worker_runs_and_goes_when_it_exits(
    start: StartProcess, tmp_path: Path
) -> None:
    path = tmp_path / "worker.ready"
    path.write_text("999999\n")  # a stale one, from a worker that was killed
    worker = start("--ready-file", str(path), ready=r"Ready: worker \d+ listening on \d+ channels")
    assert path.read_text() == f"{worker.pid}\n"
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert not path.exists()


def test_a_worker_is_not_ready_until_its_layer_answers(
    start: StartProcess,
    env: dict[str, str],
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    path = tmp_path / "worker.ready"
    redis_server.stop()
    worker = start(
        "--ready-file",
        str(path),
        environment={**env, "CHANNELS_TEST_REDIS_URL": redis_server.url},
    )
    assert "is unreachable" in "".join(worker.output)  # said before "Listening on channels"
    assert not path.exists()
    assert "Ready:" not in "".join(worker.output)
    redis_server.start()
    worker.wait_for(r"Ready: worker \d+ listening")
    assert path.read_text() == f"{worker.pid}\n"


def test_the_stop_timeout_ends_a_stuck_worker_with_status_one_and_names_what_it_cut(
    start: StartProcess, raw_layer: RedisChannelLayer, tmp_path: Path
) -> None:
    path = tmp_path / "worker.ready"
    worker = start("--stop-timeout", "1", "--ready-file", str(path), ready="Ready: worker")
    raw_layer.send("recycle.hang", {"reply_channel": "test.hung"})
    name, reply = raw_layer.receive(["test.hung"], block=True, timeout=20)
    assert (name, reply) == ("test.hung", {"started": worker.pid})
    worker.signal(signal.SIGTERM)
    worker.wait_for(r"Stopping: waiting for 1 running consumer .* giving up after 1 s")
    assert worker.wait(30) == 1
    output = "".join(worker.output)
    assert "Cut short by the 1 s stop timeout: tests.restart_routing.hang on recycle.hang" in output
    assert "1 consumer cut short; exiting with status 1" in output
    assert not path.exists()


def test_rundelay_says_it_is_ready_and_keeps_a_ready_file_until_it_exits(
    start: StartProcess, env: dict[str, str], database: Path, tmp_path: Path
) -> None:
    path = tmp_path / "delay.ready"
    server = start(
        "--ready-file",
        str(path),
        command="rundelay",
        ready=r"Ready: delay server \d+ on channel layer 'default'",
        environment={**env, "CHANNELS_TEST_DB": str(database)},
    )
    assert path.read_text() == f"{server.pid}\n"
    server.signal(signal.SIGTERM)
    assert server.wait(30) == 0
    assert not path.exists()
