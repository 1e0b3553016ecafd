"""Memory per idle WebSocket connection: ours against Channels 4 and Channels 1.1.8.

Run from the repository root::

    python -m benchmarks.idle [--sockets N] [--skip-anchors]

(``python -m benchmarks --only idle`` runs it as part of the suite.) Each
deployment gets one socket opened, echoed on and closed first, so lazy imports
are not counted per connection; then *N* sockets are opened, 200 at a time,
the last one answers an echo (the connections are really open), and the RSS
growth of daphne, the runworkers and Redis is divided by *N*. Writes
``benchmarks/results/idle.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

from benchmarks import _classic, _harness, _support, report, websocket
from benchmarks.report import Row
from tests.processes import rss_kib

SCENARIO = "idle"
UNIT = "KiB/conn (lower is better)"
#: Sockets opened at once before the next batch starts.
BATCH = 200
CLASSIC_PREFIX = "bench-classic:"


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's soft open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


async def idle_memory(stack: _harness.Stack, redis_pid: int, sockets: int) -> Row:
    """Open *sockets* WebSockets on *stack*; return the RSS growth per connection."""
    settings = websocket.Settings(connect_concurrency=50, timeout=60)
    pids = {process.name: process.pid for process in stack.processes}
    pids["redis-server"] = redis_pid
    url = stack.ws_url + websocket.ECHO_PATH

    def snapshot() -> dict[str, int]:
        return {name: rss_kib(pid) for name, pid in pids.items()}

    warm = await websocket.open_sockets(url, 1, settings)
    await websocket.round_trip(warm[0], "warm-up", settings.timeout)
    await websocket.close_sockets(warm)
    await asyncio.sleep(0.5)  # let the servers settle after the warm-up: a measurement pause
    before = snapshot()
    opened: list[Any] = []
    started = time.perf_counter()
    try:
        while len(opened) < sockets:
            opened += await websocket.open_sockets(url, min(BATCH, sockets - len(opened)), settings)
        open_seconds = time.perf_counter() - started
        # Every socket still answers: the connections are really open, not half-open.
        await websocket.round_trip(opened[-1], "still here", settings.timeout)
        await asyncio.sleep(1.0)  # RSS settles after the last handshakes: a measurement pause
        after = snapshot()
    finally:
        await websocket.close_sockets(opened)
    grown = {name: after[name] - before[name] for name in after}
    total = sum(grown.values())
    server = sum(value for name, value in grown.items() if "daphne" in name)
    return Row(
        SCENARIO,
        stack.impl,
        stack.label,
        total / len(opened),
        UNIT,
        figures={
            "sockets": len(opened),
            "open_seconds": round(open_seconds, 3),
            "rss_before_kib": before,
            "rss_after_kib": after,
            "rss_growth_kib": grown,
            "kib_per_connection": total / len(opened),
            "daphne_kib_per_connection": server / len(opened),
        },
    )


def run(
    probe: redis.Redis, stacks: Sequence[Callable[[], _harness.Stack]], sockets: int
) -> list[Row]:
    """Measure every stack in turn (a failure becomes a row with the error)."""
    redis_pid = int(probe.info("server")["process_id"])
    rows = []
    for start in stacks:
        probe.flushall()
        stack = start()
        try:
            print(f"Measuring {stack.label} on port {stack.port}...", flush=True)
            try:
                rows.append(asyncio.run(idle_memory(stack, redis_pid, sockets)))
            except Exception as exc:
                print(f"  idle FAILED on {stack.label}: {exc!r}", flush=True)
                rows.append(
                    Row.failed(
                        SCENARIO, stack.impl, stack.label, UNIT, exc, server_output=stack.tails()
                    )
                )
        finally:
            stack.stop()
            probe.flushall()
    return rows


def stacks(
    url: str, modern_python: Any = None, classic_python: Any = None
) -> list[Callable[[], _harness.Stack]]:
    """Ours, then Channels 4 and Channels 1.1.8 where their venvs' pythons are given."""
    found: list[Callable[[], _harness.Stack]] = [
        lambda: _harness.start_our_stack(url, websocket.OUR_PREFIX, websocket.OUR_ROUTING)
    ]
    if modern_python is not None:
        found.append(
            lambda: _harness.start_modern_stack(
                modern_python, url, websocket.ANCHOR_PREFIX, "channels 4: daphne + consumer"
            )
        )
    if classic_python is not None:
        label = "channels 1.1.8: daphne 1.4.2 + 2 runworker"
        found.append(
            lambda: _classic.start_classic_stack(classic_python, url, CLASSIC_PREFIX, label)
        )
    return found


def growth_notes(rows: Sequence[Row]) -> list[str]:
    """One line per measured deployment: sockets, time to open them, RSS growth by process."""
    notes = []
    for row in rows:
        if row.error:
            continue
        grown = ", ".join(f"{name} {kib:,}" for name, kib in row.figures["rss_growth_kib"].items())
        notes.append(
            f"  {row.label}: {row.figures['sockets']} sockets"
            f" in {row.figures['open_seconds']:.1f} s; {grown}"
        )
    return notes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=2000, help="idle sockets per deployment")
    parser.add_argument("--skip-anchors", action="store_true", help="measure ours only")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    fd_limit = raise_fd_limit()
    pythons: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    if not args.skip_anchors:
        for name, venv in (("modern", _harness.MODERN_VENV), ("classic", _classic.CLASSIC_VENV)):
            try:
                pythons[name] = venv.ensure(log=lambda text: print(text, flush=True))
            except _support.AnchorUnavailable as exc:
                print(f"{venv.name} unavailable: {exc}", flush=True)
                unavailable[venv.name] = str(exc)
    with _support.redis_for_benchmarks() as (url, probe, redis_version):
        rows = run(probe, stacks(url, pythons.get("modern"), pythons.get("classic")), args.sockets)
    wall = time.perf_counter() - started
    print()
    print(
        report.table(
            rows,
            [
                report.Column("implementation", lambda row: row.label),
                report.figure_column("KiB/conn", digits=2),
                report.Column(
                    "daphne KiB/conn",
                    lambda row: report.fmt_number(row.figures.get("daphne_kib_per_connection"), 2),
                ),
            ],
        )
    )
    print("Idle sockets, RSS growth per process (KiB):")
    print("\n".join(growth_notes(rows) + report.failure_notes(rows)))
    print(f"Wall time {wall:.1f} s")
    report.record(
        "idle",
        settings={"sockets": args.sockets},
        packages=["channels-classic", "daphne", "websockets", "redis"],
        redis_version=redis_version,
        machine={"fd_limit": fd_limit},
        anchors_unavailable=unavailable,
        wall_seconds=wall,
        results=report.rows_json(rows),
    )


if __name__ == "__main__":
    main()
