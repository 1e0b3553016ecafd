"""Worker throughput and request/reply latency: our runworker against Channels 4's.

Run from the repository root::

    python -m benchmarks.worker [--duration SECONDS] [--skip-anchors]

One ``runworker`` process (one thread) on the Redis layer, started by this
script on a throwaway Redis server, runs consumers of
``benchmarks/bench_project`` (plain ``def`` and ``async def``):

* ``drain``: messages/s through the worker, on a channel pre-filled while
  no worker runs (the consumer only counts; it acks the last message with the
  wall and CPU seconds it took from the first, measured inside the worker);
* ``round_trip``: sequential request/reply through the worker (the client
  sends with a ``reply_channel`` and blocks on the reply): p50/p99 latency.
  Our client uses the layer's async API, and for the ``def`` consumer also
  its sync API, as a Channels 1 view or script would.

The anchor is Channels 4 + channels_redis 4's ``runworker`` serving
``AsyncConsumer`` and ``SyncConsumer`` through ``ChannelNameRouter``
(``anchor_projects/modern``), run by ``_anchor_worker.py`` in a virtualenv of
its own against the same Redis server. Prints a table and writes
``benchmarks/results/worker.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import redis

from benchmarks import _harness, _support, report
from benchmarks._anchor_worker import (
    DRAIN,
    SCENARIOS,
    ClientOps,
    Flavour,
    Message,
    Settings,
    round_trip_row,
    run_flavour,
)
from benchmarks.report import Column, Row

ANCHOR_MODULE = "benchmarks._anchor_worker"
OUR_ROUTING = "benchmarks.bench_project.routing.worker_routing"
OUR_PREFIX = "bench-ours:"
#: The anchor rows each of our rows is compared with.
ANCHORS = {"anchor-async": "vs C4 async", "anchor-sync": "vs C4 sync"}


# Ours ----------------------------------------------------------------------------


class OurWorker:
    """Our ``runworker`` (one process, one thread), listening on some channels only."""

    def __init__(self, url: str, settings: Settings, channels: Sequence[str]) -> None:
        env = _harness.our_env(
            url, OUR_PREFIX, OUR_ROUTING, CHANNELS_TEST_CAPACITY=str(settings.capacity)
        )
        self.process = _harness.start_our_worker("ours-runworker", env, channels)

    def cpu_seconds(self) -> float:
        return self.process.cpu_seconds()

    def tail(self) -> str:
        return self.process.tail()

    def stop(self) -> None:
        self.process.stop()


def our_flavours(url: str, settings: Settings) -> list[Flavour]:
    """Our worker with a plain ``def`` consumer, and with an ``async def`` one."""

    def start(channels: Sequence[str]) -> OurWorker:
        return OurWorker(url, settings, channels)

    return [
        Flavour(
            "ours-sync", "ours runworker, def consumer", "ours", "bench-count", "bench-reply", start
        ),
        Flavour(
            "ours-async",
            "ours runworker, async def consumer",
            "ours",
            "bench-count-async",
            "bench-reply-async",
            start,
        ),
    ]


def our_ops(layer: Any, probe: redis.Redis) -> ClientOps:
    """Our Redis layer's async API as the client of the scenarios."""

    async def receive(channel: str, timeout: float) -> Message | None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            name, message = await layer.areceive([channel], block=True, timeout=remaining)
            if name is not None or remaining <= 0:
                return message

    async def new_reply_channel() -> str:
        return layer.new_channel("bench.reply?")

    async def reset() -> None:
        await layer.aflush()
        probe.flushall()

    return ClientOps(
        send=layer.asend,
        receive=receive,
        new_reply_channel=new_reply_channel,
        reset=reset,
        meters={"redis_cpu_seconds": _support.redis_cpu_meter(probe)},
    )


def sync_client_round_trip(
    layer: Any, probe: redis.Redis, flavour: Flavour, settings: Settings
) -> Row:
    """Round trips to a ``def`` consumer through our layer's sync API (``send``/``receive``)."""
    layer.flush()
    probe.flushall()
    worker = flavour.start_worker([flavour.reply_channel])
    try:
        reply = layer.new_channel("bench.reply?")

        def one(n: int) -> None:
            layer.send(
                flavour.reply_channel, {"type": "bench.request", "reply_channel": reply, "n": n}
            )
            _, got = layer.receive([reply], block=True, timeout=settings.reply_timeout)
            if got is None or got.get("n") != n:
                raise RuntimeError(f"{flavour.label}: expected reply n={n}, got {got!r}")

        measured = _support.measure(
            one,
            duration=settings.duration,
            max_ops=settings.round_trips,
            warmup_ops=settings.warmup_round_trips,
            keep_samples=True,
            meters={
                "redis_cpu_seconds": _support.redis_cpu_meter(probe),
                "worker_cpu_seconds": worker.cpu_seconds,
            },
        )
    finally:
        worker.stop()
    row = round_trip_row(flavour, measured)
    row.impl, row.label = "ours-sync-client", f"{flavour.label} (sync client)"
    return row


def run_ours(url: str, probe: redis.Redis, settings: Settings) -> list[Row]:
    """Every scenario for our flavours, then the sync-client round trips."""
    from channels.layers.redis import RedisChannelLayer

    flavours = our_flavours(url, settings)

    async def run_async() -> list[Row]:
        layer = RedisChannelLayer(hosts=[url], prefix=OUR_PREFIX, capacity=settings.capacity)
        try:
            ops = our_ops(layer, probe)
            rows: list[Row] = []
            for flavour in flavours:
                rows += await run_flavour(ops, flavour, settings)
            return rows
        finally:
            await layer.aclose()

    rows = asyncio.run(run_async())
    layer = RedisChannelLayer(hosts=[url], prefix=OUR_PREFIX, capacity=settings.capacity)
    try:
        rows.append(sync_client_round_trip(layer, probe, flavours[0], settings))
    finally:
        layer.flush()
        layer.close()
    return rows


# Anchors ---------------------------------------------------------------------------


def run_anchors(url: str, probe: redis.Redis, duration: float) -> tuple[dict[str, Any], list[Row]]:
    """Run ``_anchor_worker`` in the anchor venv; return its report (or the error) and rows."""
    try:
        _harness.MODERN_VENV.ensure(log=lambda text: print(text, flush=True))
        probe.flushall()
        found = _harness.MODERN_VENV.run_json(ANCHOR_MODULE, [url, str(duration)], timeout=900)
    except _support.AnchorUnavailable as exc:
        print(f"Anchors skipped: {exc}", flush=True)
        return {"error": str(exc)}, []
    finally:
        probe.flushall()
    return found, [Row.from_json(row) for row in found.pop("results", [])]


# Report ----------------------------------------------------------------------------


def add_ratios(rows: list[Row]) -> None:
    """Set each row's figure relative to each anchor's figure in the same scenario."""
    for anchor in ANCHORS:
        report.add_ratios(rows, anchor, lambda row, anchor=anchor: anchor)


def _ms(name: str) -> Column:
    return Column(name.replace("_", " "), lambda row: report.fmt_number(getattr(row, name), 3))


COLUMNS = [
    Column("scenario", lambda row: row.scenario),
    Column("implementation", lambda row: row.label),
    report.figure_column(),
    Column("unit", lambda row: row.unit),
    _ms("p50_ms"),
    _ms("p99_ms"),
    *(report.ratio_column(header, anchor) for anchor, header in ANCHORS.items()),
    Column("worker CPU", lambda row: report.fmt_percent(row.figures.get("worker_cpu_share"))),
    Column("ok", report.fmt_ok),
]


def table(rows: list[Row]) -> str:
    """Format the rows, scenario by scenario, as a plain-text table."""
    order = {scenario: index for index, scenario in enumerate(SCENARIOS)}
    return report.table(rows, COLUMNS, key=lambda row: (order[row.scenario], row.kind != "ours"))


def drain_notes(rows: list[Row]) -> list[str]:
    """One line per drain row (messages, seconds, pre-fill, start-up), one per failure."""
    return [
        f"  {row.label}: {row.figures['messages']:,} messages in {row.figures['seconds']:.2f} s"
        f" (counted {row.figures['counted']:,}); pre-fill {row.figures['prefill_seconds']:.2f} s;"
        f" worker start to ack {row.figures['start_to_ack_seconds']:.2f} s"
        for row in rows
        if row.scenario == DRAIN and not row.error
    ] + report.failure_notes(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--skip-anchors", action="store_true", help="do not run Channels 4")
    args = parser.parse_args(argv)
    settings = Settings(duration=args.duration)
    started = time.perf_counter()
    anchors: dict[str, Any] = {"skipped": True}
    with _support.redis_for_benchmarks() as (url, probe, redis_version):
        rows = run_ours(url, probe, settings)
        if not args.skip_anchors:
            anchors, anchor_rows = run_anchors(url, probe, args.duration)
            rows += anchor_rows
    add_ratios(rows)
    wall = time.perf_counter() - started
    print_report(rows, anchors, wall)
    report.record(
        "worker",
        settings=asdict(settings),
        packages=["channels-classic", "redis", "django", "asgiref"],
        redis_version=redis_version,
        anchors=anchors,
        client_cpu_seconds=time.process_time(),
        wall_seconds=wall,
        results=report.rows_json(rows, nest_ratios="ratios"),
    )


def print_report(rows: list[Row], anchors: dict[str, Any], wall: float) -> None:
    """Print the table, the notes and the legend."""
    print()
    print(table(rows))
    print()
    print("Drains (and failures):")
    print("\n".join(drain_notes(rows)))
    print()
    print(
        "figure: higher is better; vs C4 async/sync = figure / the figure of Channels 4's"
        "\nrunworker with an AsyncConsumer / a SyncConsumer in the same scenario;"
        "\nworker CPU = the worker process's CPU time / wall time (2 cores shared)."
    )
    print(report.cpu_line(time.process_time(), anchors.get("cpu_seconds"), wall))


if __name__ == "__main__":
    main()
