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

from benchmarks import _harness, _support
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

ANCHOR_SCRIPT = _support.BENCH_DIR / "_anchor_worker.py"
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
) -> dict[str, Any]:
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
    row.update(impl="ours-sync-client", label=f"{flavour.label} (sync client)")
    return row


def run_ours(url: str, probe: redis.Redis, settings: Settings) -> list[dict[str, Any]]:
    """Every scenario for our flavours, then the sync-client round trips."""
    from channels.layers.redis import RedisChannelLayer

    flavours = our_flavours(url, settings)

    async def run_async() -> list[dict[str, Any]]:
        layer = RedisChannelLayer(hosts=[url], prefix=OUR_PREFIX, capacity=settings.capacity)
        try:
            ops = our_ops(layer, probe)
            rows: list[dict[str, Any]] = []
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


def run_anchors(url: str, probe: redis.Redis, duration: float) -> dict[str, Any]:
    """Run ``_anchor_worker.py`` in the anchor venv; return its report or the error."""
    try:
        _harness.MODERN_VENV.ensure(log=lambda text: print(text, flush=True))
        probe.flushall()
        return _harness.MODERN_VENV.run_json(ANCHOR_SCRIPT, [url, str(duration)], timeout=900)
    except _support.AnchorUnavailable as exc:
        print(f"Anchors skipped: {exc}", flush=True)
        return {"error": str(exc), "results": []}
    finally:
        probe.flushall()


# Report ----------------------------------------------------------------------------


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Set each row's figure relative to each anchor's figure in the same scenario."""
    rates = {(row["scenario"], row["impl"]): row["rate"] for row in rows}
    for row in rows:
        row["ratios"] = {
            anchor: _support.ratio(row["rate"], rates.get((row["scenario"], anchor)))
            for anchor in ANCHORS
        }


def _ms(value: float | None) -> str:
    return _support.fmt_number(value, 3)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def table(rows: list[dict[str, Any]]) -> str:
    """Format the rows, scenario by scenario, as a plain-text table."""
    headers = ["scenario", "implementation", "figure", "unit", "p50 ms", "p99 ms"]
    headers += [*ANCHORS.values(), "worker CPU", "ok"]
    order = {scenario: index for index, scenario in enumerate(SCENARIOS)}
    body = [
        [
            row["scenario"],
            row["label"],
            _support.fmt_number(row["rate"]),
            row["unit"],
            _ms(row.get("p50_ms")),
            _ms(row.get("p99_ms")),
            *(_support.fmt_ratio(row["ratios"][anchor]) for anchor in ANCHORS),
            _percent(row.get("worker_cpu_share")),
            "yes" if row.get("correct", True) else "NO",
        ]
        for row in sorted(rows, key=lambda row: (order[row["scenario"]], row["kind"] != "ours"))
    ]
    return _support.format_table(headers, body)


def drain_notes(rows: list[dict[str, Any]]) -> list[str]:
    """One line per drain row (messages, seconds, pre-fill, start-up), one per failure."""
    return [
        f"  {row['label']}: {row['messages']:,} messages in {row['seconds']:.2f} s"
        f" (counted {row['counted']:,}); pre-fill {row['prefill_seconds']:.2f} s;"
        f" worker start to ack {row['start_to_ack_seconds']:.2f} s"
        for row in rows
        if row["scenario"] == DRAIN and "error" not in row
    ] + [
        f"  {row['label']}: {row['scenario']} FAILED: {row['error']}"
        for row in rows
        if "error" in row
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--skip-anchors", action="store_true", help="do not run Channels 4")
    args = parser.parse_args(argv)
    settings = Settings(duration=args.duration)
    started = time.perf_counter()
    anchors: dict[str, Any] = {"skipped": True, "results": []}
    with _support.redis_for_benchmarks() as (url, probe, redis_version):
        rows = run_ours(url, probe, settings)
        if not args.skip_anchors:
            anchors = run_anchors(url, probe, args.duration)
    rows += anchors.get("results", [])
    add_ratios(rows)
    wall = time.perf_counter() - started
    print_report(rows, anchors, wall)
    _support.record(
        "worker",
        settings=asdict(settings),
        packages=["channels-classic", "redis", "django", "asgiref"],
        redis_version=redis_version,
        anchors={key: value for key, value in anchors.items() if key != "results"},
        client_cpu_seconds=time.process_time(),
        wall_seconds=wall,
        results=rows,
    )


def print_report(rows: list[dict[str, Any]], anchors: dict[str, Any], wall: float) -> None:
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
    print(_support.cpu_line(time.process_time(), anchors.get("cpu_seconds"), wall))


if __name__ == "__main__":
    main()
