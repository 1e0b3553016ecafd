"""HTTP hello-world requests/s and latency: ours against Channels 4 and a bare-ASGI floor.

Run from the repository root::

    python -m benchmarks.http [--duration SECONDS] [--skip-anchors] [--fallback]

32 keep-alive clients (``wrk -t2 -c32 -d<duration>s --latency``, or, without
wrk or with ``--fallback``, the asyncio client of ``_loadgen``) request
``/hello/`` from, one after another:

* ours: daphne serving ``tests.project.asgi:channel_layer`` plus two
  ``runworker`` on a throwaway Redis; the request crosses Redis to a worker,
  which runs the test project's Django view and sends the response back;
* the anchor: Channels 4's daphne serving ``ProtocolTypeRouter`` with Django's
  ASGI app for HTTP and the same view (``anchor_projects/modern``), in its venv;
* the floor: daphne serving a bare ASGI hello-world (``bench_project/bare_asgi``).

Each gets a one-second warm-up first. Reports requests/s, p50/p99 latency,
errors, and CPU seconds of the servers, Redis and the load generator
(everything shares the machine's cores). Writes ``benchmarks/results/http.json``.
"""

from __future__ import annotations

import argparse
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import redis

from benchmarks import _harness, _loadgen, _support, report
from benchmarks.report import Column, Row

SCENARIO = "http"
UNIT = "requests/s"
PATH = "/hello/"
CONNECTIONS = 32
WARMUP_SECONDS = 1.0
OUR_ROUTING = "tests.project.sockets.channel_routing"
OUR_PREFIX = "bench-http:"
ANCHOR_PREFIX = "bench-http-modern"


def check_hello(url: str) -> None:
    """Fetch *url* once; raise unless it is a 200 hello-world page."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    with opener.open(url, timeout=30) as response:
        body = response.read()
        if response.status != 200 or not body.startswith(b"Hello world!"):
            raise RuntimeError(f"{url} answered {response.status}: {body[:200]!r}")


def measure_stack(
    stack: _harness.Stack,
    probe: redis.Redis,
    duration: float,
    connections: int,
    fallback: bool,
) -> Row:
    """Warm *stack* up, then load it for *duration* seconds; return its row."""
    url = stack.url + PATH
    check_hello(url)
    _loadgen.load(url, connections, WARMUP_SECONDS, force_fallback=fallback)
    redis_cpu = _support.redis_cpu_meter(probe)
    cpu_before, redis_before = stack.cpu_seconds(), redis_cpu()
    result = _loadgen.load(url, connections, duration, force_fallback=fallback)
    server_cpu = _harness.cpu_delta(cpu_before, stack.cpu_seconds())
    redis_seconds = redis_cpu() - redis_before
    check_hello(url)
    seconds = result.get("seconds") or duration
    errors = sum(result.get("socket_errors", {}).values()) + result.get("non_2xx", 0)
    figures = {key: value for key, value in result.items() if key != "raw"}
    return Row(
        SCENARIO,
        stack.impl,
        stack.label,
        result["rps"],
        UNIT,
        p50_ms=figures.pop("p50_ms", None),
        p99_ms=figures.pop("p99_ms", None),
        figures={
            **figures,
            "errors": errors,
            "server_cpu_seconds": server_cpu,
            "server_cpu_share": round(sum(server_cpu.values()) / seconds, 4),
            "redis_cpu_seconds": round(redis_seconds, 3),
            "redis_cpu_share": round(redis_seconds / seconds, 4),
            "loadgen_cpu_share": round(result["loadgen_cpu_seconds"] / seconds, 4),
            "wrk_output": result.get("raw"),
        },
    )


def run_stack(
    start: Callable[[], _harness.Stack],
    probe: redis.Redis,
    args: argparse.Namespace,
) -> Row:
    """Start a stack, measure it, stop it (and empty Redis)."""
    probe.flushall()
    stack = start()
    try:
        print(f"Measuring {stack.label} on port {stack.port}...", flush=True)
        try:
            row = measure_stack(stack, probe, args.duration, CONNECTIONS, args.fallback)
        except Exception as exc:
            print(f"  FAILED on {stack.label}: {exc!r}", flush=True)
            row = Row.failed(
                SCENARIO, stack.impl, stack.label, UNIT, exc, rps=None, server_output=stack.tails()
            )
        row.figures["server_log_problems"] = stack.log_problems()
        return row
    finally:
        stack.stop()
        probe.flushall()


def run_all(url: str, probe: redis.Redis, args: argparse.Namespace) -> dict[str, Any]:
    """Ours, then the anchor (unless skipped or unavailable), then the floor."""
    rows = [run_stack(lambda: _harness.start_our_stack(url, OUR_PREFIX, OUR_ROUTING), probe, args)]
    anchor: dict[str, Any] = {"skipped": args.skip_anchors}
    if not args.skip_anchors:
        try:
            python = _harness.MODERN_VENV.ensure(log=lambda text: print(text, flush=True))
        except _support.AnchorUnavailable as exc:
            print(f"Anchor skipped: {exc}", flush=True)
            anchor["error"] = str(exc)
        else:
            versions = _harness.anchor_versions(python, ["channels", "daphne", "django"])
            anchor["packages"] = versions
            label = f"channels {versions['channels']}: daphne + Django ASGI app"
            rows.append(
                run_stack(
                    lambda: _harness.start_modern_stack(python, url, ANCHOR_PREFIX, label),
                    probe,
                    args,
                )
            )
    rows.append(run_stack(_harness.start_floor_stack, probe, args))
    return {"anchor": anchor, "results": rows}


# Report ----------------------------------------------------------------------------


def add_ratios(rows: list[Row]) -> None:
    """Requests/s relative to the anchor's and the floor's; p50 relative to the anchor's."""
    report.add_ratios(rows, "vs_anchor", lambda row: "anchor")
    report.add_ratios(rows, "vs_floor", lambda row: "floor")
    report.add_ratios(rows, "p50_vs_anchor", lambda row: "anchor", lambda row: row.p50_ms)


COLUMNS = [
    Column("implementation", lambda row: row.label),
    report.figure_column("requests/s"),
    Column("p50 ms", lambda row: report.fmt_number(row.p50_ms, 2)),
    Column("p99 ms", lambda row: report.fmt_number(row.p99_ms, 2)),
    report.ratio_column("vs C4", "vs_anchor"),
    report.ratio_column("vs floor", "vs_floor"),
    report.ratio_column("p50 vs C4", "p50_vs_anchor"),
    Column("errors", lambda row: row.figures.get("errors", "FAILED")),
    report.share_column("server_cpu_share"),
    report.share_column("redis_cpu_share"),
    report.share_column("loadgen_cpu_share"),
]


def table(rows: list[Row]) -> str:
    """Format the rows as a plain-text table."""
    return report.table(rows, COLUMNS)


def _note(row: Row) -> str:
    if row.error:
        return f"FAILED: {row.error}"
    return f"{row.figures['requests']:,} requests; server CPU: {report.server_cpu_note(row)}"


def print_report(rows: list[Row], wall: float) -> None:
    """Print the table, the load command and the legend."""
    print()
    print(table(rows))
    print()
    measured = [row for row in rows if not row.error]
    if measured:
        print(f"Load: {measured[0].figures['tool']}: {measured[0].figures['command']}")
    for row in rows:
        print(f"  {row.label}: {_note(row)}")
    print("Server log lines that look like errors or warnings:")
    print("\n".join(report.log_problem_notes(rows)))
    print(
        "requests/s: higher is better; vs C4 / vs floor = requests/s / the anchor's or floor's;"
        "\np50 vs C4 = p50 latency / the anchor's (lower is better); CPU columns = CPU time /"
        "\nwall time of the measurement (100% = one core; the machine's cores are shared)."
    )
    print(f"Wall time {wall:.1f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of load per server")
    parser.add_argument("--skip-anchors", action="store_true", help="do not run Channels 4")
    parser.add_argument(
        "--fallback", action="store_true", help="use the asyncio client even if wrk is installed"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with _support.redis_for_benchmarks() as (url, probe, redis_version):
        found = run_all(url, probe, args)
    rows = found["results"]
    add_ratios(rows)
    wall = time.perf_counter() - started
    print_report(rows, wall)
    report.record(
        "http",
        settings={"duration": args.duration, "connections": CONNECTIONS, "path": PATH},
        packages=["channels-classic", "daphne", "django", "twisted"],
        redis_version=redis_version,
        anchor=found["anchor"],
        wall_seconds=wall,
        results=report.rows_json(rows),
    )


if __name__ == "__main__":
    main()
