"""``manage.py rundelay`` on a Sentinel-managed layer finds the new master after a failover.

daphne and runworker are shown surviving a kill -9 of the master in
tests/test_multihost_failover.py; this is the third kind of process the
issue names. A real ``rundelay`` runs on a master with one replica and
three Sentinels (:mod:`tests.redis_sentinel`); the master is killed with
SIGKILL and the same process, never restarted, keeps sending delayed
messages through the promoted replica: one stored in its database before the
kill and due after it, and one sent after the failover.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.layers.redis import RedisSentinelChannelLayer
from tests.processes import ManagedProcess, django_command, project_env
from tests.redis_sentinel import SentinelSet, start_or_skip
from tests.waiting import wait_until

SERVICE = "mymaster"
#: Table of :class:`channels.delay.models.DelayedMessage` in the test project's database.
DELAY_TABLE = "channels_delay_delayedmessage"


@pytest.fixture
def failover_set() -> Iterator[SentinelSet]:
    """A master with one replica, watched by 3 Sentinels that fail it over within seconds."""
    started = start_or_skip(SentinelSet(services=(SERVICE,), replicas=1))
    try:
        yield started
    finally:
        started.cleanup()


def stored_rows(database: Path) -> int:
    """How many delayed messages rundelay holds in its database now."""
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
        ((rows,),) = connection.execute(f"SELECT COUNT(*) FROM {DELAY_TABLE}")
    return int(rows)


def new_master(sentinels: SentinelSet, old: int) -> int | None:
    """The promoted master's port once every Sentinel names the same one, not *old*."""
    named = {sentinels.master_port(SERVICE, sentinel=port) for port in sentinels.sentinel_ports}
    return named.pop() if len(named) == 1 and old not in named else None


def test_rundelay_sends_through_the_promoted_master_after_a_kill_without_a_restart(
    failover_set: SentinelSet,
    database: Path,
    unique_prefix: str,
) -> None:
    """kill -9 the master: the same rundelay process goes on delivering delayed messages.

    A message it stored before the kill (due after it) and one sent after
    Sentinel promoted the replica both arrive; it said the layer was down
    once and back once, and never crashed or failed a step.
    """
    hosts = ",".join(f"{host}:{port}" for host, port in failover_set.hosts)
    env = project_env(
        CHANNELS_TEST_SENTINELS=hosts,
        CHANNELS_TEST_SENTINEL_SERVICES=SERVICE,
        CHANNELS_TEST_PREFIX=unique_prefix,
        CHANNELS_TEST_DB=str(database),
    )
    options = {"hosts": failover_set.hosts, "services": [SERVICE], "prefix": unique_prefix}
    before = RedisSentinelChannelLayer(**options)
    after: RedisSentinelChannelLayer | None = None
    rundelay = ManagedProcess(django_command("rundelay"), env, name="rundelay")
    try:
        rundelay.wait_for("Delay server running", timeout=30)
        pid = rundelay.pid

        sent = time.monotonic()
        before.send("asgi.delay", {"channel": "delayed", "content": {"n": 1}, "delay": 500})
        assert before.receive(["delayed"], block=True, timeout=10) == ("delayed", {"n": 1})
        assert time.monotonic() - sent >= 0.45, "the delayed message came early"

        # n=1's row is deleted just after it is sent: only then does one row mean n=2.
        wait_until(lambda: stored_rows(database) == 0, 10, "the sent row to be deleted")
        # Due after the kill, and stored before it: it waits in rundelay's database, not in
        # Redis (a message popped off asgi.delay whose reply the kill cuts off would be lost).
        before.send("asgi.delay", {"channel": "delayed", "content": {"n": 2}, "delay": 3000})
        wait_until(lambda: stored_rows(database) == 1, 10, "rundelay to store the message")

        old = failover_set.kill_master(SERVICE)
        promoted = wait_until(
            lambda: new_master(failover_set, old), 20, "every Sentinel to name the new master"
        )
        assert promoted in failover_set.servers  # the replica, not a stray address

        after = RedisSentinelChannelLayer(**options)  # a client that starts after the failover
        after.send("asgi.delay", {"channel": "delayed", "content": {"n": 3}, "delay": 500})
        got = [after.receive(["delayed"], block=True, timeout=15)[1] for _ in range(2)]
        assert sorted(message["n"] for message in got if message) == [2, 3], rundelay.tail(40)
        assert failover_set.client(promoted).info("replication")["role"] == "master"

        rundelay.wait_for("is reachable again", timeout=10)
        assert rundelay.process.poll() is None, f"rundelay exited:\n{rundelay.tail()}"
        assert rundelay.pid == pid
        output = "".join(rundelay.output)
        assert "Traceback" not in output, output
        assert "failed a step" not in output, output
        assert output.count("retrying every") == 1, output  # the outage, said once
        wait_until(lambda: stored_rows(database) == 0, 10, "sent rows to be deleted")
    finally:
        rundelay.stop()
        before.close()
        if after is not None:
            after.flush()
            after.close()
