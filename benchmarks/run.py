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
  daphne, the runworkers and Redis, before and after), against Channels 4 and 1.1.8;
* ``cluster``: fan-out to 1000 members on 10 interface-server prefixes and layer
  round trips on a 3-master Redis Cluster it starts, against the one Redis
  (``benchmarks.cluster``);
* ``hygiene``: fan-out to a group of 500 dead + 200 live members before and
  after the reaper removes the dead, the reap itself, and the hot paths it
  touches (``benchmarks.hygiene``; no baseline checkout here).

One throwaway Redis serves everything; each deployment is started for its
scenario and stopped after it. Prints one table (scenario x implementation,
figure, ratios to each anchor), the targets met or missed
(:mod:`benchmarks.targets`), and writes ``benchmarks/results/suite.json`` and
the chart ``benchmarks/results/suite.png`` (matplotlib: the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from benchmarks import (
    _classic,
    _harness,
    _support,
    cluster,
    http,
    hygiene,
    idle,
    layers,
    report,
    websocket,
)
from benchmarks.report import Column, Row
from benchmarks.targets import chart, target_lines, targets

SCENARIOS = ("layers", "http", "websocket", "idle", "cluster", "hygiene")
C4 = "Channels 4"
C1 = "Channels 1.1.8"


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


def _classic_stack(ctx: Context, label: str) -> Callable[[], _harness.Stack]:
    python = ctx.classic_python
    if python is None:
        raise RuntimeError("the Channels 1.1.8 venv is not ready: call prepare_anchors() first")
    return lambda: _classic.start_classic_stack(python, ctx.url, idle.CLASSIC_PREFIX, label)


def _classic_label(python: Path, part: dict[str, Any]) -> str:
    """The label of the Channels 1.1.8 rows; notes its versions in the scenario's *part*."""
    versions = classic_versions(python)
    part["classic"] = {"packages": versions}
    return f"channels {versions['channels']}: daphne {versions['daphne']} + 2 runworker"


# The scenarios ---------------------------------------------------------------------


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
        anchors, anchor_rows = layers.run_anchors(ctx.url, ctx.probe, ctx.durations.layers)
        rows += anchor_rows
        if anchors.get("error"):
            ctx.unavailable["Channels 4 layers"] = anchors["error"]
    layers.add_ratios(rows)
    ctx.probe.flushall()
    return {"settings": asdict(settings), "anchors": anchors, "results": rows}


def run_http(ctx: Context) -> dict[str, Any]:
    log("== http: hello world, 32 keep-alive clients")
    args = argparse.Namespace(
        duration=ctx.durations.http,
        skip_anchors=ctx.skip_anchors or ctx.modern_python is None,
        fallback=False,
    )
    part = http.run_all(ctx.url, ctx.probe, args)
    if ctx.classic_python is not None:
        label = _classic_label(ctx.classic_python, part)
        part["results"].append(http.run_stack(_classic_stack(ctx, label), ctx.probe, args))
    http.add_ratios(part["results"])
    return part


def run_websocket(ctx: Context) -> dict[str, Any]:
    log("== websocket: echo (1 and 50 clients), fan-out to 200 sockets")
    args = argparse.Namespace(
        duration=ctx.durations.websocket, skip_anchors=ctx.skip_anchors or not ctx.modern_python
    )
    part = websocket.run_all(ctx.url, ctx.probe, args)
    if ctx.classic_python is not None:
        label = _classic_label(ctx.classic_python, part)
        settings = websocket.Settings(duration=ctx.durations.websocket)
        part["results"] += websocket.run_stack(_classic_stack(ctx, label), ctx.probe, settings)
    websocket.add_ratios(part["results"])
    return part


def run_idle(ctx: Context) -> dict[str, Any]:
    log(f"== idle: {ctx.durations.idle_sockets} open WebSockets, RSS per connection")
    stacks = idle.stacks(ctx.url, ctx.modern_python, ctx.classic_python)
    return {"results": idle.run(ctx.probe, stacks, ctx.durations.idle_sockets)}


def run_cluster(ctx: Context) -> dict[str, Any]:
    log("== cluster: fan-out to 1000 and round trips, 3-master Redis Cluster beside one Redis")
    quick = ctx.durations == Durations.quick()
    settings = cluster.Settings.quick() if quick else cluster.Settings(ctx.durations.layers)
    return cluster.run_all(ctx.url, ctx.probe, settings)


def run_hygiene(ctx: Context) -> dict[str, Any]:
    log("== hygiene: fan-out past 500 dead members, the reap, the hot paths")
    quick = ctx.durations == Durations.quick()
    settings = hygiene.Settings.quick() if quick else hygiene.Settings()
    return hygiene.run_all(ctx.url, ctx.probe, settings)


RUNNERS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "layers": run_layers,
    "http": run_http,
    "websocket": run_websocket,
    "idle": run_idle,
    "cluster": run_cluster,
    "hygiene": run_hygiene,
}


# The combined table ---------------------------------------------------------------


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
HTTP_NAME = "http hello world"
IDLE_NAME = "idle ws memory"
SCENARIO_ORDER = [*LAYER_NAMES.values(), HTTP_NAME, *WS_NAMES.values(), IDLE_NAME]
#: The suite table's ratio columns: its name, and the impl of the reference row.
SUITE_RATIOS = {
    "vs_c4": "anchor",
    "vs_c1": "classic",
    "vs_floor": "floor",
    "vs_single": cluster.SINGLE,
}


def _layer_line(row: Row) -> Row:
    """A layers row in the suite table: its ratios are the layers benchmark's own."""
    return Row(
        LAYER_NAMES[(row.scenario, row.figures["backend"])],
        row.impl,
        row.label,
        row.rate,
        row.unit,
        error=row.error,
        figures={"lower_is_better": False},
        ratios={
            "vs_c4": row.ratios.get("vs_anchor"),
            "vs_c1": None,
            "vs_floor": row.ratios.get("vs_floor"),
        },
    )


def _end_to_end_line(name: str, row: Row) -> Row:
    """An http / websocket / idle row in the suite table (ratios come after)."""
    latency = row.scenario == "echo_latency"
    figure = None if row.error else (row.p50_ms if latency else row.rate)
    return Row(
        name,
        row.impl,
        row.label,
        figure,
        "ms p50 (lower is better)" if latency else row.unit,
        p50_ms=row.p50_ms,
        p99_ms=row.p99_ms,
        error=row.error,
        figures={"lower_is_better": latency or name == IDLE_NAME},
    )


def combine(parts: dict[str, dict[str, Any]]) -> list[Row]:
    """Turn each scenario's rows into suite table lines with ratios to every anchor."""
    lines = [_layer_line(row) for row in parts.get("layers", {}).get("results", [])]
    end_to_end = [_end_to_end_line(HTTP_NAME, row) for row in _results(parts, "http")]
    end_to_end += [
        _end_to_end_line(WS_NAMES[row.scenario], row) for row in _results(parts, "websocket")
    ]
    end_to_end += [_end_to_end_line(IDLE_NAME, row) for row in _results(parts, "idle")]
    end_to_end += cluster.suite_lines(_results(parts, "cluster"))
    end_to_end += hygiene.suite_lines(_results(parts, "hygiene"))
    for name, reference in SUITE_RATIOS.items():
        report.add_ratios(end_to_end, name, lambda row, reference=reference: reference)
    order = {name: index for index, name in enumerate(SCENARIO_ORDER)}
    kinds = {"ours": 0, "c4": 1, "c1": 2, "floor": 3}
    return sorted(
        lines + end_to_end,
        key=lambda line: (order.get(line.scenario, 99), kinds[_impl_kind(line.impl)]),
    )


def _results(parts: dict[str, dict[str, Any]], name: str) -> list[Row]:
    return parts.get(name, {}).get("results", [])


def _figure(line: Row) -> str:
    if line.error:
        return "FAILED"
    return report.fmt_number(line.rate, 2 if line.rate and line.rate < 100 else 0)


COLUMNS = [
    Column("scenario", lambda line: line.scenario),
    Column("implementation", lambda line: line.label),
    Column("figure", _figure),
    Column("unit", lambda line: line.unit),
    Column("p50 ms", lambda line: report.fmt_number(line.p50_ms, 2)),
    Column("p99 ms", lambda line: report.fmt_number(line.p99_ms, 2)),
    report.ratio_column("vs C4", "vs_c4"),
    report.ratio_column("vs 1.1.8", "vs_c1"),
    report.ratio_column("vs floor", "vs_floor"),
    report.ratio_column("vs 1 Redis", "vs_single"),
]


def line_json(line: Row) -> dict[str, Any]:
    """A suite table line as ``suite.json`` has always written it."""
    return {
        "scenario": line.scenario,
        "impl": line.impl,
        "label": line.label,
        "figure": line.rate,
        "unit": line.unit,
        "p50_ms": line.p50_ms,
        "p99_ms": line.p99_ms,
        **{name: line.ratios.get(name) for name in SUITE_RATIOS},
        "lower_is_better": line.figures.get("lower_is_better", False),
        "error": line.error,
    }


def parts_json(parts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each scenario's part of the run, its rows as JSON."""
    return {
        name: {
            key: report.rows_json(value) if key == "results" else value
            for key, value in part.items()
        }
        for name, part in parts.items()
    }


# Main -----------------------------------------------------------------------------------------


def run_scenarios(
    chosen: Sequence[str], ctx: Context, failures: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Run each chosen scenario; a scenario that raises is noted in *failures*."""
    parts: dict[str, dict[str, Any]] = {}
    if any(name not in ("layers", "cluster", "hygiene") for name in chosen):
        prepare_anchors(ctx)
    for name in chosen:
        begun = time.perf_counter()
        try:
            parts[name] = RUNNERS[name](ctx)
        except Exception as exc:
            log(f"Scenario {name} FAILED: {exc!r}")
            failures[name] = traceback.format_exc()
            ctx.probe.flushall()
        parts.setdefault(name, {})["wall_seconds"] = time.perf_counter() - begun
    return parts


def print_summary(
    lines: Sequence[Row],
    found: Sequence[Any],
    parts: dict[str, dict[str, Any]],
    unavailable: dict[str, str],
    failures: dict[str, str],
) -> None:
    """The table, the targets, the idle notes, what was not measured, the legend."""
    print()
    print(report.table(lines, COLUMNS))
    print()
    print("Targets (ratios from this run):")
    print("\n".join(target_lines(found)))
    idle_rows = _results(parts, "idle")
    if idle_rows:
        print("Idle sockets, RSS growth per process (KiB):")
        print("\n".join(idle.growth_notes(idle_rows)))
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
        "\ndaphne + runworkers + Redis per open socket; vs 1 Redis = a cluster row's figure /"
        "\nthe single Redis's."
    )


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
    fd_limit = idle.raise_fd_limit()
    failures: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    with _support.redis_for_benchmarks() as (url, probe, redis_version):
        ctx = Context(url, probe, durations, args.skip_anchors, unavailable)
        parts = run_scenarios(chosen, ctx, failures)
    leftovers = _harness.reap_leftovers()
    wall = time.perf_counter() - started

    lines = combine(parts)
    found = targets(lines)
    chart_path = report.RESULTS_DIR / "suite.png"
    chart_problem = chart(lines, found, chart_path)
    print_summary(lines, found, parts, unavailable, failures)
    print(f"Left-over processes: {', '.join(leftovers) if leftovers else 'none'}")
    print(f"Chart: {chart_problem or chart_path.relative_to(report.REPO_ROOT)}")
    print(f"Wall time {wall:.1f} s")
    report.record(
        "suite",
        settings={**asdict(durations), "quick": args.quick, "scenarios": chosen},
        packages=["channels-classic", "daphne", "django", "redis"],
        redis_version=redis_version,
        machine={"fd_limit": fd_limit},
        wall_seconds=wall,
        table=[line_json(line) for line in lines],
        targets=[{**asdict(target), "verdict": target.verdict} for target in found],
        anchors_unavailable=unavailable,
        failures=failures,
        leftover_processes=leftovers,
        chart=None if chart_problem else str(chart_path.relative_to(report.REPO_ROOT)),
        chart_problem=chart_problem,
        scenarios=parts_json(parts),
    )
