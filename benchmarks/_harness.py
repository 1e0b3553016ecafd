"""Server processes for the end-to-end benchmarks (worker, http, websocket).

Starting and stopping daphne / runworker processes, in our venv or in the
modern-Channels anchor venv, reading their CPU time, and percentiles.

Like :mod:`benchmarks._support`, this module imports only the standard
library (and ``_support``): ``_anchor_worker.py`` loads it inside the anchor
venv to start Channels 4 workers there.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from benchmarks import _support
except ImportError:  # run as a script in an anchor venv: this folder is on sys.path
    import _support  # type: ignore[no-redef]

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

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# Ports -------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30) -> None:
    """Wait until something accepts connections on 127.0.0.1:*port*."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# Processes ---------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds of process *pid* (0.0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the ")" that ends the command name: fields[11] is utime, fields[12] stime.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


class ServerProcess:
    """A child process (a server or worker) whose output lines can be waited for."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.output: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        self.process = subprocess.Popen(
            self.args,
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self._lines.put(line)

    def tail(self, lines: int = 20) -> str:
        """Return the last *lines* lines the process printed."""
        return "".join(self.output[-lines:])

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        """Return the first new output line matching *pattern*; raise after *timeout*."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(
                    f"{self.name}: {pattern!r} not seen within {timeout:.0f} s:\n{self.tail()}"
                )
            try:
                line = self._lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self.process.poll() is not None and self._lines.empty():
                    raise RuntimeError(
                        f"{self.name} exited ({self.process.returncode}) before "
                        f"{pattern!r}:\n{self.tail()}"
                    ) from None
                continue
            if regex.search(line):
                return line

    def cpu_seconds(self) -> float:
        """CPU seconds the process has used so far."""
        return process_cpu_seconds(self.pid)

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 10 s) and reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class Stack:
    """A running deployment: its address, its processes, how to stop it."""

    impl: str
    label: str
    port: int
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


def start_daphne(
    name: str,
    python: str | Path,
    app: str,
    port: int,
    env: Mapping[str, str],
    cwd: Path,
) -> ServerProcess:
    """Start ``python -m daphne`` serving *app* on 127.0.0.1:*port*; wait until it listens."""
    daphne = ServerProcess(
        name,
        [str(python), "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app],
        env,
        cwd,
    )
    try:
        daphne.wait_for("Listening on TCP address")
        wait_for_port(port)
    except BaseException:
        daphne.stop()
        raise
    return daphne


def start_our_worker(
    name: str, env: Mapping[str, str], only_channels: Iterable[str] = ()
) -> ServerProcess:
    """Start our ``runworker`` (this venv's python); wait until it listens."""
    flags = [arg for channel in only_channels for arg in ("--only-channels", channel)]
    worker = ServerProcess(
        name, [sys.executable, "-m", "django", "runworker", *flags], env, _support.REPO_ROOT
    )
    try:
        worker.wait_for("Listening on channels")
    except BaseException:
        worker.stop()
        raise
    return worker


def start_modern_worker(
    name: str, python: str | Path, env: Mapping[str, str], channels: Sequence[str]
) -> ServerProcess:
    """Start Channels 4's ``runworker`` on *channels* (it prints nothing when ready)."""
    return ServerProcess(
        name,
        [str(python), "-s", "-m", "django", "runworker", *channels],
        env,
        ANCHOR_PROJECTS,
    )


# Statistics --------------------------------------------------------------------


def percentile(samples: Sequence[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile (*fraction* in 0..1) of *samples*, or None."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def latency_summary(samples: Sequence[float]) -> dict[str, float | int | None]:
    """p50 / p90 / p99 / max in milliseconds of *samples* (seconds)."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(1000 * value, 4)

    return {
        "samples": len(samples),
        "p50_ms": ms(percentile(samples, 0.50)),
        "p90_ms": ms(percentile(samples, 0.90)),
        "p99_ms": ms(percentile(samples, 0.99)),
        "max_ms": ms(max(samples) if samples else None),
    }


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


def start_our_stack(
    redis_url: str, prefix: str, routing: str, workers: int = 2, **settings: str
) -> Stack:
    """Ours: daphne serving ``tests.project.asgi:channel_layer`` plus *workers* runworkers."""
    env = our_env(redis_url, prefix, routing, **settings)
    port = free_port()
    stack = Stack("ours", f"ours: daphne + {workers} runworker", port)
    starters: list[Callable[[], ServerProcess]] = [
        lambda: start_daphne(
            "ours-daphne",
            sys.executable,
            "tests.project.asgi:channel_layer",
            port,
            env,
            _support.REPO_ROOT,
        )
    ]
    starters += [
        lambda n=n: start_our_worker(f"ours-runworker-{n}", env) for n in range(1, workers + 1)
    ]
    return _start_all(stack, starters)


def start_modern_stack(python: str | Path, redis_url: str, prefix: str, label: str) -> Stack:
    """Channels 4: daphne serving ``modern.asgi:application`` (no workers needed)."""
    env = modern_env(redis_url, prefix)
    port = free_port()
    stack = Stack("anchor", label, port)
    return _start_all(
        stack,
        [
            lambda: start_daphne(
                "channels4-daphne", python, "modern.asgi:application", port, env, ANCHOR_PROJECTS
            )
        ],
    )


def start_floor_stack() -> Stack:
    """The floor: daphne (this venv's) serving the bare ASGI hello-world app."""
    env = {**clean_environ(), "PYTHONPATH": str(_support.REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    port = free_port()
    stack = Stack("floor", "floor: daphne + bare ASGI app", port)
    return _start_all(
        stack,
        [
            lambda: start_daphne(
                "floor-daphne",
                sys.executable,
                "benchmarks.bench_project.bare_asgi:application",
                port,
                env,
                _support.REPO_ROOT,
            )
        ],
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
