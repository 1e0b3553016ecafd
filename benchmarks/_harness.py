"""Deployments for the end-to-end benchmarks (worker, http, websocket, idle).

A :class:`Stack` is one running deployment (ours, Channels 4's, a bare-ASGI
floor, Channels 1.1.8's in :mod:`benchmarks._classic`) made of the tests'
:class:`~tests.processes.ManagedProcess` children: daphne starts on port 0
and says which port it got, workers say when they listen.

Standard library only, like :mod:`tests.processes`: ``_anchor_worker`` loads
it inside the anchor venv to start Channels 4 workers there.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import _support
from tests.processes import ManagedProcess, start_daphne, start_runworker

#: The modern projects (Channels 4) the benchmarks compare against.
ANCHOR_PROJECTS = _support.BENCH_DIR / "anchor_projects"

#: Channels 4 with its Redis layer and daphne: the "modern" stack, servers included.
MODERN_VENV = _support.AnchorVenv(
    name="anchor-modern-servers",
    requirements=["channels>=4,<5", "channels_redis>=4,<5", "daphne>=4,<5", "django>=4.2,<6"],
    imports=["channels.routing", "channels_redis.core", "daphne.server", "django"],
)

#: Settings module of our benchmarks' deployments (the test project, configured by env).
OUR_SETTINGS = "tests.project.settings"

#: Output lines of a server that deserve a look.
_PROBLEM = re.compile(r"Traceback|\bERROR\b|\bWARNING\b|Exception|Error:", re.IGNORECASE)

#: A deployment's child process (daphne, a runworker): the tests' harness.
ServerProcess = ManagedProcess


@dataclass
class Stack:
    """A running deployment: its address, its processes, how to stop it."""

    impl: str
    label: str
    #: daphne's port, known once it listens.
    port: int = 0
    processes: list[ServerProcess] = field(default_factory=list)
    #: Extra cleanup run after the processes are stopped (e.g. flushing Redis keys).
    cleanup: Callable[[], object] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each process, by name."""
        return {process.name: process.cpu_seconds() for process in self.processes}

    def log_problems(self, samples: int = 3) -> dict[str, dict[str, Any]]:
        """Per process: how many output lines look like errors or warnings, and a few of them."""
        found: dict[str, dict[str, Any]] = {}
        for process in self.processes:
            lines = [line.rstrip() for line in process.output if _PROBLEM.search(line)]
            if lines:
                found[process.name] = {"lines": len(lines), "samples": lines[:samples]}
        return found

    def tails(self, lines: int = 15) -> dict[str, str]:
        """The last output lines of every process, by name."""
        return {process.name: process.tail(lines) for process in self.processes}

    def stop(self) -> None:
        """Stop every process (last started first), then run the cleanup."""
        errors: list[BaseException] = []
        for process in reversed(self.processes):
            try:
                process.stop()
            except Exception as exc:  # stop the others anyway
                errors.append(exc)
        if self.cleanup is not None:
            self.cleanup()
        if errors:
            raise errors[0]


def cpu_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """Return ``after - before`` for every name, rounded to milliseconds."""
    return {name: round(after[name] - before.get(name, 0.0), 3) for name in after}


# Environments and commands -------------------------------------------------------


def clean_environ() -> dict[str, str]:
    """This process's environment without ``PYTHON*`` variables (no path leaks)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}


def our_env(redis_url: str, prefix: str, routing: str, **extra: str) -> dict[str, str]:
    """Environment of our daphne / runworker processes (the test project's settings)."""
    return {
        **clean_environ(),
        "PYTHONPATH": str(_support.REPO_ROOT),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": OUR_SETTINGS,
        "CHANNELS_TEST_REDIS_URL": redis_url,
        "CHANNELS_TEST_PREFIX": prefix,
        "CHANNELS_TEST_ROUTING": routing,
        **extra,
    }


def modern_env(redis_url: str, prefix: str, capacity: int = 100) -> dict[str, str]:
    """Environment of the Channels 4 processes (``anchor_projects/modern``)."""
    return {
        **clean_environ(),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "modern.settings",
        "BENCH_REDIS_URL": redis_url,
        "BENCH_PREFIX": prefix,
        "BENCH_CAPACITY": str(capacity),
    }


def start_our_worker(
    name: str, env: Mapping[str, str], only_channels: Iterable[str] = ()
) -> ServerProcess:
    """Start our ``runworker`` (this venv's python); wait until it listens."""
    flags = [arg for channel in only_channels for arg in ("--only-channels", channel)]
    return start_runworker(env, *flags, cwd=_support.REPO_ROOT, name=name, timeout=60)


def start_modern_worker(
    name: str, python: str | Path, env: Mapping[str, str], channels: Sequence[str]
) -> ServerProcess:
    """Start Channels 4's ``runworker`` on *channels* (it prints nothing when ready)."""
    return ServerProcess(
        [str(python), "-s", "-m", "django", "runworker", *channels], env, ANCHOR_PROJECTS, name
    )


# Whole deployments -----------------------------------------------------------------


def _start_all(stack: Stack, starters: Iterable[Callable[[], ServerProcess]]) -> Stack:
    """Run *starters* in order, adding each process to *stack*; stop them all on failure."""
    try:
        for start in starters:
            stack.processes.append(start())
    except BaseException:
        stack.stop()
        raise
    return stack


def _daphne(
    stack: Stack, name: str, python: str | Path, app: str, env: Mapping[str, str], cwd: Path
) -> Callable[[], ServerProcess]:
    """A starter of daphne on port 0 that gives *stack* the port daphne got."""

    def start() -> ServerProcess:
        daphne = start_daphne(app, env, python=python, cwd=cwd, name=name, timeout=60)
        stack.port = daphne.port
        return daphne

    return start


def start_our_stack(
    redis_url: str, prefix: str, routing: str, workers: int = 2, **settings: str
) -> Stack:
    """Ours: daphne serving ``tests.project.asgi:channel_layer`` plus *workers* runworkers."""
    env = our_env(redis_url, prefix, routing, **settings)
    stack = Stack("ours", f"ours: daphne + {workers} runworker")
    app = "tests.project.asgi:channel_layer"
    starters = [_daphne(stack, "ours-daphne", sys.executable, app, env, _support.REPO_ROOT)]
    starters += [
        lambda n=n: start_our_worker(f"ours-runworker-{n}", env) for n in range(1, workers + 1)
    ]
    return _start_all(stack, starters)


def start_modern_stack(python: str | Path, redis_url: str, prefix: str, label: str) -> Stack:
    """Channels 4: daphne serving ``modern.asgi:application`` (no workers needed)."""
    env = modern_env(redis_url, prefix)
    stack = Stack("anchor", label)
    app = "modern.asgi:application"
    return _start_all(
        stack, [_daphne(stack, "channels4-daphne", python, app, env, ANCHOR_PROJECTS)]
    )


def start_floor_stack() -> Stack:
    """The floor: daphne (this venv's) serving the bare ASGI hello-world app."""
    env = {**clean_environ(), "PYTHONPATH": str(_support.REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    stack = Stack("floor", "floor: daphne + bare ASGI app")
    app = "benchmarks.bench_project.bare_asgi:application"
    return _start_all(
        stack, [_daphne(stack, "floor-daphne", sys.executable, app, env, _support.REPO_ROOT)]
    )


def anchor_versions(python: str | Path, names: Sequence[str]) -> dict[str, str | None]:
    """Versions of distributions *names* installed in the venv of *python*."""
    code = (
        "import json, sys; from importlib import metadata as m\n"
        "def v(n):\n"
        "    try: return m.version(n)\n"
        "    except m.PackageNotFoundError: return None\n"
        "print(json.dumps({n: v(n) for n in sys.argv[1:]}))"
    )
    done = subprocess.run(
        [str(python), "-I", "-c", code, *names],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return dict.fromkeys(names)
    return json.loads(done.stdout)


# Left-over processes ---------------------------------------------------------------


def child_pids() -> list[int]:
    """PIDs of this process's living children (servers left running would show here)."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def reap_leftovers() -> list[str]:
    """Stop any child process still running (ours only: children of this process)."""
    left = []
    for pid in child_pids():
        try:
            left.append(f"{pid}: {Path(f'/proc/{pid}/cmdline').read_bytes()[:120]!r}")
            os.kill(pid, signal.SIGTERM)
        except OSError:
            continue
    return left
