"""The process harness of the tests and benchmarks: waits, child processes, daphne on port 0."""

from __future__ import annotations

import sys
import time

import pytest

from tests.interface import APPLICATION
from tests.processes import ManagedProcess, accepts, project_env, start_daphne
from tests.waiting import WaitTimeout, wait_until


def test_wait_until_returns_the_first_true_value() -> None:
    calls = iter([0, None, "", "ready"])
    assert wait_until(lambda: next(calls), 5, "never ready", interval=0.001) == "ready"


def test_wait_until_fails_after_its_timeout_saying_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"the flag never rose \(waited 0.2 s\)"):
        wait_until(lambda: False, 0.2, lambda: "the flag never rose")
    assert 0.2 <= time.monotonic() - started < 5


def test_wait_until_counts_ignored_errors_as_not_yet_and_chains_the_last() -> None:
    def refuse() -> bool:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(WaitTimeout) as failed:
        wait_until(refuse, 0.1, "no connection", ignore=(OSError,))
    assert isinstance(failed.value.__cause__, ConnectionRefusedError)


def test_wait_until_refuses_a_timeout_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="positive timeout"):
        wait_until(lambda: True, 0, "anything")


def test_waiting_for_a_line_fails_as_soon_as_the_process_exits() -> None:
    process = ManagedProcess([sys.executable, "-c", "print('bye')"], project_env())
    started = time.monotonic()
    try:
        with pytest.raises(WaitTimeout, match=r"exited \(0\) before 'never printed'"):
            process.wait_for("never printed", timeout=60)
    finally:
        process.stop()
    assert time.monotonic() - started < 30  # on the exit, not on the 60 s timeout
    assert process.output == ["bye\n"]


def test_daphne_on_port_0_says_which_port_it_got_and_listens_there(
    redis_url: str, unique_prefix: str
) -> None:
    env = project_env(CHANNELS_TEST_REDIS_URL=redis_url, CHANNELS_TEST_PREFIX=unique_prefix)
    first = start_daphne(APPLICATION, env)
    try:
        second = start_daphne(APPLICATION, env)
        try:
            assert 0 < first.port != second.port
            assert accepts(first.port)
            assert accepts(second.port)
        finally:
            second.stop()
    finally:
        first.stop()
