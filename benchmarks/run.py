"""The whole benchmark suite in one bounded run: every scenario, every anchor, one table.

Run from the repository root::

    python -m benchmarks [--quick] [--skip-anchors] [--only SCENARIO ...]

Scenarios (``--only`` takes these names, repeatable):

* ``layers``: channel-layer round trips/s, sequential and batched, in-memory and
  Redis, plus ``send_group`` to 1000 members (``benchmarks.layers``), against
  Channels 4's layers and a bare redis-py loop;
* ``http``: hello-world requests/s and p50/p99 with 32 keep-alive clients
  (``benchmarks.http``), against Channels 4, Channels 1.1.8 and a bare-ASGI floor;
* ``websocket``: echo p50/p99 with one client, echo round trips/s with 50 clients
  and fan-out to 200 sockets in a group (``benchmarks.websocket``), against
  Channels 4 and Channels 1.1.8;
* ``idle``: memory per idle WebSocket connection with 2000 sockets open (RSS of
  daphne, the runworkers and Redis, before and after), against Channels 4 and 1.1.8.

One throwaway Redis serves everything; each deployment is started for its
scenario and stopped after it. Prints one table (scenario x implementation,
figure, ratios to each anchor), the targets met or missed, and writes
``benchmarks/results/suite.json`` and the chart ``benchmarks/results/suite.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from benchmarks import _classic, _harness, _support, http, layers, websocket

SCENARIOS = ("layers", "http", "websocket", "idle")
C4 = "Channels 4"
C1 = "Channels 1.1.8"
CLASSIC_PREFIX = "bench-classic:"


@dataclass
class Durations:
    """Seconds per measurement of each scenario, and the idle socket count."""

    layers: float = 2.5
    http: float = 8.0
    websocket: float = 5.0
    idle_sockets: int = 2000

    @classmethod
    def quick(cls) -> Durations:
        return cls(layers=0.3, http=1.5, websocket=1.0, idle_sockets=200)


# Context shared by the scenarios -------------------------------------------------


@dataclass
class Context:
    url: str
    probe: redis.Redis
    durations: Durations
    skip_anchors: bool
    #: Why an anchor could not run, by anchor name.
    unavailable: dict[str, str]
    modern_python: Path | None = None
    classic_python: Path | None = None


def log(text: str) -> None:
    print(text, flush=True)


def prepare_anchors(ctx: Context) -> None:
    """Create (or reuse) the Channels 4 and Channels 1.1.8 venvs; note any failure."""
    if ctx.skip_anchors:
        ctx.unavailable[C4] = ctx.unavailable[C1] = "skipped (--skip-anchors)"
        return
    for name, venv, attr in (
        (C4, _harness.MODERN_VENV, "modern_python"),
        (C1, _classic.CLASSIC_VENV, "classic_python"),
    ):
        try:
            setattr(ctx, attr, venv.ensure(log=log))
        except _support.AnchorUnavailable as exc:
            log(f"{name} unavailable: {exc}")
            ctx.unavailable[name] = f"venv: {exc}"


def classic_versions(python: Path) -> dict[str, str | None]:
    return _harness.anchor_versions(
        python, ["channels", "daphne", "asgi_redis", "asgiref", "django", "twisted"]
    )


# Scenario: layers -------------------------------------------------------------


def run_layers(ctx: Context) -> dict[str, Any]:
    settings = layers.Settings(duration=ctx.durations.layers)
    log("== layers: in-memory, Redis, redis-py floor, Channels 4 layers")
    rows = layers.run_ours_inmemory(settings)
    ctx.probe.flushall()
    rows += layers.run_ours_redis(ctx.url, ctx.probe, settings)
    ctx.probe.flushall()
    rows += layers.run_floor(ctx.url, ctx.probe, settings)
    anchors: dict[str, Any] = {"skipped": ctx.skip_anchors}
    if not ctx.skip_anchors:
        anchors = layers.run_anchors(ctx.url, ctx.probe, ctx.durations.layers)
        rows += anchors.get("results", [])
        if anchors.get("error"):
            ctx.unavailable["Channels 4 layers"] = anchors["error"]
    layers.add_ratios(rows)
    ctx.probe.flushall()
    return {
        "settings": asdict(settings),
        "anchors": {key: value for key, value in anchors.items() if key != "results"},
        "results": rows,
    }


# Scenario: http -----------------------------------------------------------------


def _classic_stack(ctx: Context, label: str) -> Callable[[], _harness.Stack]:
    assert ctx.classic_python is not None
    python = ctx.classic_python
    return lambda: _classic.start_classic_stack(python, ctx.url, CLASSIC_PREFIX, label)


def run_http(ctx: Context) -> dict[str, Any]:
    log("== http: hello world, 32 keep-alive clients")
    args = argparse.Namespace(
        duration=ctx.durations.http,
        skip_anchors=ctx.skip_anchors or ctx.modern_python is None,
        fallback=False,
    )
    report = http.run_all(ctx.url, ctx.probe, args)
    if ctx.classic_python is not None:
        versions = classic_versions(ctx.classic_python)
        report["classic"] = {"packages": versions}
        label = f"channels {versions['channels']}: daphne {versions['daphne']} + 2 runworker"
        report["results"].append(http.run_stack(_classic_stack(ctx, label), ctx.probe, args))
    http.add_ratios(report["results"])
    return report


# Scenario: websocket ----------------------------------------------------------------


def run_websocket(ctx: Context) -> dict[str, Any]:
    log("== websocket: echo (1 and 50 clients), fan-out to 200 sockets")
    args = argparse.Namespace(
        duration=ctx.durations.websocket, skip_anchors=ctx.skip_anchors or not ctx.modern_python
    )
    report = websocket.run_all(ctx.url, ctx.probe, args)
    if ctx.classic_python is not None:
        versions = classic_versions(ctx.classic_python)
        report["classic"] = {"packages": versions}
        label = f"channels {versions['channels']}: daphne {versions['daphne']} + 2 runworker"
        settings = websocket.Settings(duration=ctx.durations.websocket)
        report["results"] += websocket.run_stack(_classic_stack(ctx, label), ctx.probe, settings)
    websocket.add_ratios(report["results"])
    return report


# Scenario: idle connections -------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """VmRSS of process *pid* in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's soft open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


async def _idle_memory(stack: _harness.Stack, redis_pid: int, sockets: int) -> dict[str, Any]:
    settings = websocket.Settings(connect_concurrency=50, timeout=60)
    pids = {process.name: process.pid for process in stack.processes}
    pids["redis-server"] = redis_pid

    def snapshot() -> dict[str, int]:
        return {name: rss_kib(pid) for name, pid in pids.items()}

    # One socket opened and closed first, so lazy imports are not counted per connection.
    warm = await websocket.open_sockets(stack.ws_url + websocket.ECHO_PATH, 1, settings)
    await websocket.round_trip(warm[0], "warm-up", settings.timeout)
    await websocket.close_sockets(warm)
    await asyncio.sleep(0.5)
    before = snapshot()
    opened: list[Any] = []
    started = time.perf_counter()
    try:
        batch = 200
        while len(opened) < sockets:
            count = min(batch, sockets - len(opened))
            url = stack.ws_url + websocket.ECHO_PATH
            opened += await websocket.open_sockets(url, count, settings)
        open_seconds = time.perf_counter() - started
        # Every socket still answers: the connections are really open, not half-open.
        await websocket.round_trip(opened[-1], "still here", settings.timeout)
        await asyncio.sleep(1.0)
        after = snapshot()
    finally:
        await websocket.close_sockets(opened)
    grown = {name: after[name] - before[name] for name in after}
    total = sum(grown.values())
    server = sum(value for name, value in grown.items() if "daphne" in name)
    return {
        "scenario": "idle",
        "impl": stack.impl,
        "label": stack.label,
        "sockets": len(opened),
        "open_seconds": round(open_seconds, 3),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_growth_kib": grown,
        "kib_per_connection": total / len(opened),
        "daphne_kib_per_connection": server / len(opened),
        "rate": total / len(opened),
        "unit": "KiB/conn (lower is better)",
    }


def run_idle(ctx: Context) -> dict[str, Any]:
    log(f"== idle: {ctx.durations.idle_sockets} open WebSockets, RSS per connection")
    redis_pid = int(ctx.probe.info("server")["process_id"])
    stacks: list[Callable[[], _harness.Stack]] = [
        lambda: _harness.start_our_stack(ctx.url, websocket.OUR_PREFIX, websocket.OUR_ROUTING)
    ]
    if ctx.modern_python is not None:
        python = ctx.modern_python
        stacks.append(
            lambda: _harness.start_modern_stack(
                python, ctx.url, websocket.ANCHOR_PREFIX, "channels 4: daphne + consumer"
            )
        )
    if ctx.classic_python is not None:
        stacks.append(_classic_stack(ctx, "channels 1.1.8: daphne 1.4.2 + 2 runworker"))
    rows = []
    for start in stacks:
        ctx.probe.flushall()
        stack = start()
        try:
            log(f"Measuring {stack.label} on port {stack.port}...")
            try:
                rows.append(asyncio.run(_idle_memory(stack, redis_pid, ctx.durations.idle_sockets)))
            except Exception as exc:
                log(f"  idle FAILED on {stack.label}: {exc!r}")
                rows.append(
                    {
                        "scenario": "idle",
                        "impl": stack.impl,
                        "label": stack.label,
                        "rate": None,
                        "error": repr(exc),
                        "server_output": stack.tails(),
                    }
                )
        finally:
            stack.stop()
            ctx.probe.flushall()
    return {"results": rows}


RUNNERS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "layers": run_layers,
    "http": run_http,
    "websocket": run_websocket,
    "idle": run_idle,
}


# The combined table ---------------------------------------------------------------


@dataclass
class Line:
    """One row of the combined table."""

    scenario: str
    impl: str
    label: str
    figure: float | None
    unit: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    vs_c4: float | None = None
    vs_c1: float | None = None
    vs_floor: float | None = None
    lower_is_better: bool = False
    error: str | None = None


def _impl_kind(impl: str) -> str:
    """'ours', 'c4', 'c1' or 'floor' for a row's impl name."""
    if impl.startswith("ours"):
        return "ours"
    if impl == "classic":
        return "c1"
    if impl.startswith("floor"):
        return "floor"
    return "c4"


LAYER_NAMES = {
    ("sequential", "inmemory"): "layer round trips, in-memory",
    ("sequential", "redis"): "layer round trips, Redis",
    ("batched", "inmemory"): "layer batched, in-memory",
    ("batched", "redis"): "layer batched, Redis",
    ("group", "inmemory"): "send_group 1000, in-memory",
    ("group", "redis"): "send_group 1000, Redis",
}
WS_NAMES = {
    "echo_latency": "ws echo p50 (1 client)",
    "echo_50": "ws echo, 50 clients",
    "fanout": "ws fan-out to 200",
}
SCENARIO_ORDER = [
    *LAYER_NAMES.values(),
    "http hello world",
    *WS_NAMES.values(),
    "idle ws memory",
]


def combine(parts: dict[str, dict[str, Any]]) -> list[Line]:
    """Turn each scenario's rows into table lines with ratios to every anchor."""
    lines: list[Line] = []
    for row in parts.get("layers", {}).get("results", []):
        name = LAYER_NAMES[(row["scenario"], row["backend"])]
        lines.append(
            Line(
                name,
                row["impl"],
                row["label"],
                row["rate"],
                row["unit"],
                vs_c4=row.get("vs_anchor"),
                vs_floor=row.get("vs_floor"),
            )
        )
    # End-to-end rows: ratios computed here, against C4 (impl "anchor") and 1.1.8 ("classic").
    e2e: list[tuple[str, dict[str, Any]]] = [
        ("http hello world", row) for row in parts.get("http", {}).get("results", [])
    ]
    e2e += [
        (WS_NAMES[row["scenario"]], row) for row in parts.get("websocket", {}).get("results", [])
    ]
    e2e += [("idle ws memory", row) for row in parts.get("idle", {}).get("results", [])]
    figures: dict[tuple[str, str], float | None] = {}
    for name, row in e2e:
        latency = row.get("scenario") == "echo_latency"
        figure = row.get("p50_ms") if latency else row.get("rate", row.get("rps"))
        if "error" in row:
            figure = None
        figures[(name, _impl_kind(row["impl"]))] = figure
        unit = row.get("unit", "requests/s")
        if latency:
            unit = "ms p50 (lower is better)"
        lines.append(
            Line(
                name,
                row["impl"],
                row["label"],
                figure,
                unit,
                p50_ms=row.get("p50_ms"),
                p99_ms=row.get("p99_ms"),
                lower_is_better=latency or name == "idle ws memory",
                error=row.get("error"),
            )
        )
    for line in lines:
        if line.vs_c4 is not None or line.scenario.startswith(("layer", "send_group")):
            continue
        line.vs_c4 = _support.ratio(line.figure, figures.get((line.scenario, "c4")))
        line.vs_c1 = _support.ratio(line.figure, figures.get((line.scenario, "c1")))
        line.vs_floor = _support.ratio(line.figure, figures.get((line.scenario, "floor")))
    order = {name: index for index, name in enumerate(SCENARIO_ORDER)}
    kinds = {"ours": 0, "c4": 1, "c1": 2, "floor": 3}
    return sorted(
        lines, key=lambda line: (order.get(line.scenario, 99), kinds[_impl_kind(line.impl)])
    )


def table(lines: Sequence[Line]) -> str:
    headers = ["scenario", "implementation", "figure", "unit", "p50 ms", "p99 ms"]
    headers += ["vs C4", "vs 1.1.8", "vs floor"]
    body = [
        [
            line.scenario,
            line.label,
            "FAILED"
            if line.error
            else _support.fmt_number(line.figure, 2 if line.figure and line.figure < 100 else 0),
            line.unit,
            _support.fmt_number(line.p50_ms, 2),
            _support.fmt_number(line.p99_ms, 2),
            _support.fmt_ratio(line.vs_c4),
            _support.fmt_ratio(line.vs_c1),
            _support.fmt_ratio(line.vs_floor),
        ]
        for line in lines
    ]
    return _support.format_table(headers, body)


# Targets ----------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    scenario: str
    ours: str
    against: str
    #: The ratio ours / against must be at least this (or at most, for "max").
    bound: float
    kind: str = "min"
    vs: str = "c4"
    value: float | None = None

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "n/a"
        met = self.value >= self.bound if self.kind == "min" else self.value <= self.bound
        return "MET" if met else "MISSED"


def targets(lines: Sequence[Line]) -> list[Target]:
    """The issue's targets, with the ratios of this run."""
    figure = {(line.scenario, line.impl): line.figure for line in lines if not line.error}
    seq = "layer round trips, Redis"
    wanted = [
        Target(
            "Redis layer round trips (sync) >= 2.5x channels_redis",
            seq,
            "ours-redis-sync",
            "anchor-redis",
            2.5,
        ),
        Target(
            "Redis layer round trips (async) >= 2.5x channels_redis",
            seq,
            "ours-redis-async",
            "anchor-redis",
            2.5,
        ),
        Target(
            "Redis layer round trips (sync) >= 0.8x bare redis-py loop",
            seq,
            "ours-redis-sync",
            "floor-sync",
            0.8,
            vs="floor",
        ),
        Target(
            "Redis layer round trips (async) >= 0.8x bare redis-py asyncio loop",
            seq,
            "ours-redis-async",
            "floor-async",
            0.8,
            vs="floor",
        ),
        Target(
            "HTTP req/s >= 1.25x Channels 1.1.8",
            "http hello world",
            "ours",
            "classic",
            1.25,
            vs="c1",
        ),
        Target("HTTP req/s >= 2x Channels 4", "http hello world", "ours", "anchor", 2.0),
        Target("fan-out >= 1.5x Channels 4", "ws fan-out to 200", "ours", "anchor", 1.5),
        Target(
            "fan-out >= 3x Channels 1.1.8", "ws fan-out to 200", "ours", "classic", 3.0, vs="c1"
        ),
        Target(
            "echo p50 <= 2x Channels 4", "ws echo p50 (1 client)", "ours", "anchor", 2.0, kind="max"
        ),
        Target("echo 50 clients >= 0.8x Channels 4", "ws echo, 50 clients", "ours", "anchor", 0.8),
        Target(
            "echo 50 clients >= 3x Channels 1.1.8",
            "ws echo, 50 clients",
            "ours",
            "classic",
            3.0,
            vs="c1",
        ),
    ]
    for target in wanted:
        target.value = _support.ratio(
            figure.get((target.scenario, target.ours)),
            figure.get((target.scenario, target.against)),
        )
    return wanted


def target_lines(found: Sequence[Target]) -> list[str]:
    return [
        f"  {target.verdict:<6} {target.name}: {_support.fmt_ratio(target.value)}"
        for target in found
    ]


# Chart ------------------------------------------------------------------------------------


def chart(lines: Sequence[Line], found: Sequence[Target], path: Path) -> str | None:
    """Bars of our figures relative to Channels 4's per scenario, with the targets; PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib not installed: {exc}"
    bars = [line for line in lines if line.impl.startswith("ours") and line.vs_c4]
    if not bars:
        return "no ratios to Channels 4 in this run"
    # Lower-is-better figures are inverted, so every bar reads "higher is better".
    heights = [1 / line.vs_c4 if line.lower_is_better else line.vs_c4 for line in bars]
    names = [
        line.scenario + (f" ({line.impl.rsplit('-', 1)[-1]})" if line.impl != "ours" else "")
        for line in bars
    ]
    fig, ax = plt.subplots(figsize=(max(8, 0.8 * len(bars) + 2), 7))
    colors = ["tab:blue" if height >= 1 else "tab:orange" for height in heights]
    ax.bar(range(len(bars)), heights, color=colors)
    for index, height in enumerate(heights):
        ax.text(index, height, f"{height:.2f}x", ha="center", va="bottom", fontsize=8)
    ax.axhline(1.0, color="black", linewidth=0.8)
    for target in found:
        if target.vs != "c4":
            continue
        for index, line in enumerate(bars):
            if line.scenario == target.scenario and line.impl == target.ours:
                bound = 1 / target.bound if target.kind == "max" else target.bound
                ax.hlines(bound, index - 0.45, index + 0.45, colors="red", linestyles="dashed")
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ours vs Channels 4 (x, higher is better)")
    ax.set_title(
        "channels-classic vs Channels 4, same run (latency and memory inverted: C4 / ours)"
        "\nred dashes: targets"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# Processes ----------------------------------------------------------------------------------


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


# Main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short durations, a smoke run")
    parser.add_argument("--skip-anchors", action="store_true", help="run ours (and floors) only")
    parser.add_argument(
        "--only", action="append", choices=SCENARIOS, help="run only this scenario (repeatable)"
    )
    args = parser.parse_args(argv)
    durations = Durations.quick() if args.quick else Durations()
    chosen = [name for name in SCENARIOS if not args.only or name in args.only]
    started = time.perf_counter()
    fd_limit = raise_fd_limit()
    parts: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    with _support.redis_for_benchmarks() as (url, probe, redis_version):
        ctx = Context(url, probe, durations, args.skip_anchors, unavailable)
        needs_servers = any(name != "layers" for name in chosen)
        if needs_servers:
            prepare_anchors(ctx)
        for name in chosen:
            begun = time.perf_counter()
            try:
                parts[name] = RUNNERS[name](ctx)
            except Exception as exc:
                log(f"Scenario {name} FAILED: {exc!r}")
                failures[name] = traceback.format_exc()
                probe.flushall()
            parts.setdefault(name, {})["wall_seconds"] = time.perf_counter() - begun
    leftovers = reap_leftovers()
    wall = time.perf_counter() - started

    lines = combine(parts)
    found = targets(lines)
    chart_path = _support.RESULTS_DIR / "suite.png"
    chart_problem = chart(lines, found, chart_path)

    print()
    print(table(lines))
    print()
    print("Targets (ratios from this run):")
    print("\n".join(target_lines(found)))
    idle = parts.get("idle", {}).get("results", [])
    if idle:
        print("Idle sockets, RSS growth per process (KiB):")
    for row in idle:
        if "error" not in row:
            grown = ", ".join(f"{name} {kib:,}" for name, kib in row["rss_growth_kib"].items())
            print(
                f"  {row['label']}: {row['sockets']} sockets"
                f" in {row['open_seconds']:.1f} s; {grown}"
            )
    row_errors = [f"  {line.scenario} / {line.label}: {line.error}" for line in lines if line.error]
    if unavailable or failures or row_errors:
        print("Not measured:")
        for name, why in unavailable.items():
            print(f"  {name}: {why.splitlines()[0] if why else why}")
        for name, why in failures.items():
            print(f"  scenario {name}: {why.strip().splitlines()[-1]}")
        print("\n".join(row_errors))
    print(
        "figure: higher is better unless marked; vs C4 / vs 1.1.8 / vs floor = figure / that"
        "\nimplementation's figure in the same scenario (for the layers, vs C4 is the matching"
        "\nChannels 4 layer and vs floor the sync redis-py loop); idle memory = RSS growth of"
        "\ndaphne + runworkers + Redis per open socket."
    )
    print(f"Left-over processes: {', '.join(leftovers) if leftovers else 'none'}")
    print(f"Chart: {chart_problem or chart_path.relative_to(_support.REPO_ROOT)}")
    print(f"Wall time {wall:.1f} s")
    _support.record(
        "suite",
        settings={**asdict(durations), "quick": args.quick, "scenarios": chosen},
        packages=["channels-classic", "daphne", "django", "redis"],
        redis_version=redis_version,
        machine={"fd_limit": fd_limit},
        wall_seconds=wall,
        table=[asdict(line) for line in lines],
        targets=[{**asdict(target), "verdict": target.verdict} for target in found],
        anchors_unavailable=unavailable,
        failures=failures,
        leftover_processes=leftovers,
        chart=None if chart_problem else str(chart_path.relative_to(_support.REPO_ROOT)),
        chart_problem=chart_problem,
        scenarios=parts,
    )
