"""Worker scenarios through a channel layer's async API, and the anchor run of Channels 4.

Run as a module inside the anchor venv by ``benchmarks.worker`` (through
:meth:`benchmarks._support.AnchorVenv.run_json`, which puts this repository
last on ``sys.path``)::

    python -m benchmarks._anchor_worker REDIS_URL DURATION

it measures Channels 4's ``runworker`` (``ChannelNameRouter`` consumers of
``anchor_projects/modern``) with channels_redis 4 and prints one JSON object.

``benchmarks.worker`` imports this module too, to run our ``runworker``
through the very same loops. So nothing here imports ``channels`` at module
level: the modern one is imported only in :func:`main`'s code path.

Scenarios, for each consumer flavour:

* ``drain``: N messages are put on a channel while no worker runs; then one
  worker starts and consumes them. The consumer counts, and acks the last one
  with the count and the seconds (wall and CPU) it took from the first message
  to the last, measured inside the worker: messages/s excludes start-up.
  A small calibration drain sizes N to last about ``--duration`` seconds.
* ``round_trip``: one worker runs; the client sends a request with a
  ``reply_channel``, the consumer answers there, the client waits for it;
  sequentially, at most ``round_trips`` times or ``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from benchmarks import _harness, _support, report
from benchmarks.report import Row

Message = dict[str, Any]

DRAIN = "drain"
ROUND_TRIP = "round_trip"
SCENARIOS = (DRAIN, ROUND_TRIP)
UNITS = {DRAIN: "messages/s", ROUND_TRIP: "round trips/s"}

ANCHOR_PREFIX = "bench-modern"


@dataclass
class Settings:
    """Sizes and bounds shared by every implementation, so their figures compare."""

    duration: float = 3.0
    calibration_messages: int = 1000
    min_messages: int = 2000
    max_messages: int = 100_000
    #: Sends in flight at once while pre-filling a channel.
    prefill_concurrency: int = 64
    round_trips: int = 2000
    warmup_round_trips: int = 50
    #: Seconds to wait for an ack or a reply (the first ones wait for a worker to start).
    ack_timeout: float = 120.0
    reply_timeout: float = 10.0
    #: Channel capacity given to the layers: a pre-filled channel must fit.
    capacity: int = 1_000_000


@dataclass
class ClientOps:
    """The client side of a channel layer, seen through a few async calls."""

    send: Callable[[str, Message], Awaitable[object]]
    #: Return the next message of a reply channel, or None after *timeout* seconds.
    receive: Callable[[str, float], Awaitable[Message | None]]
    new_reply_channel: Callable[[], Awaitable[str]]
    #: Empty the layer (and Redis) between measurements.
    reset: Callable[[], Awaitable[object]]
    #: Meters read around timed loops, e.g. the Redis server's CPU seconds.
    meters: dict[str, _support.Meter] = field(default_factory=dict)


class WorkerHandle(Protocol):
    """What a flavour's ``start_worker`` returns: a worker process to read and stop."""

    def cpu_seconds(self) -> float: ...

    def tail(self) -> str: ...

    def stop(self) -> None: ...


@dataclass
class Flavour:
    """One kind of consumer of one stack, and how to start a worker that runs it."""

    impl: str
    label: str
    kind: str
    count_channel: str
    reply_channel: str
    #: Start one worker process listening on the given channels.
    start_worker: Callable[[Sequence[str]], WorkerHandle]


# Drain ---------------------------------------------------------------------------


async def prefill(ops: ClientOps, channel: str, reply: str, count: int, concurrency: int) -> float:
    """Put *count* ``bench.count`` messages on *channel*, the last one marked; return seconds."""
    started = time.perf_counter()
    for start in range(0, count - 1, concurrency):
        await asyncio.gather(
            *(
                ops.send(channel, {"type": "bench.count", "reply_channel": reply, "n": n})
                for n in range(start, min(start + concurrency, count - 1))
            )
        )
    # Sent after every other one has gone, so it is consumed last.
    await ops.send(
        channel, {"type": "bench.count", "reply_channel": reply, "n": count - 1, "last": True}
    )
    return time.perf_counter() - started


async def drain_once(
    ops: ClientOps, flavour: Flavour, count: int, settings: Settings
) -> dict[str, Any]:
    """Pre-fill *count* messages, start a worker, wait for its ack; return the figures."""
    await ops.reset()
    reply = await ops.new_reply_channel()
    prefill_seconds = await prefill(
        ops, flavour.count_channel, reply, count, settings.prefill_concurrency
    )
    started = time.perf_counter()
    worker = await asyncio.to_thread(flavour.start_worker, [flavour.count_channel])
    try:
        ack = await ops.receive(reply, settings.ack_timeout)
    finally:
        await asyncio.to_thread(worker.stop)
    if ack is None:
        raise RuntimeError(
            f"{flavour.label}: no ack within {settings.ack_timeout:.0f} s; worker output:\n"
            + worker.tail()
        )
    seconds = float(ack["seconds"])
    return {
        "messages": count,
        "counted": ack["count"],
        "correct": ack["count"] == count,
        "seconds": round(seconds, 6),
        "rate": (count - 1) / seconds if seconds > 0 else None,
        "worker_cpu_seconds": round(float(ack["cpu_seconds"]), 6),
        "prefill_seconds": round(prefill_seconds, 6),
        "start_to_ack_seconds": round(time.perf_counter() - started, 6),
    }


async def drain(ops: ClientOps, flavour: Flavour, settings: Settings) -> Row:
    """Calibrate N on a small drain, then time a drain of N messages."""
    calibration = await drain_once(ops, flavour, settings.calibration_messages, settings)
    estimate = calibration["rate"] or settings.min_messages
    count = int(
        min(settings.max_messages, max(settings.min_messages, estimate * settings.duration))
    )
    measured = await drain_once(ops, flavour, count, settings)
    row = _row(flavour, DRAIN, measured.pop("rate"))
    row.correct = measured.pop("correct")
    row.figures.update(
        measured,
        worker_cpu_share=report.share(measured["worker_cpu_seconds"], measured["seconds"]),
        calibration=calibration,
    )
    return row


# Round trips ---------------------------------------------------------------------


async def round_trip(ops: ClientOps, flavour: Flavour, settings: Settings) -> Row:
    """Sequential request/reply through one worker; latency percentiles and rate."""
    await ops.reset()
    worker = await asyncio.to_thread(flavour.start_worker, [flavour.reply_channel])
    try:
        reply = await ops.new_reply_channel()

        async def one(n: int) -> None:
            await ops.send(
                flavour.reply_channel, {"type": "bench.request", "reply_channel": reply, "n": n}
            )
            # The first warm-up request may wait for the worker to start.
            timeout = settings.ack_timeout if n == -1 else settings.reply_timeout
            got = await ops.receive(reply, timeout)
            if got is None or got.get("n") != n:
                raise RuntimeError(f"{flavour.label}: expected reply n={n}, got {got!r}")

        measured = await _support.ameasure(
            one,
            duration=settings.duration,
            max_ops=settings.round_trips,
            warmup_ops=settings.warmup_round_trips,
            keep_samples=True,
            meters={**ops.meters, "worker_cpu_seconds": worker.cpu_seconds},
        )
    finally:
        await asyncio.to_thread(worker.stop)
    return round_trip_row(flavour, measured)


def round_trip_row(flavour: Flavour, measured: _support.Measurement) -> Row:
    """The result row of a round-trip measurement (also used for our sync client)."""
    figures = measured.summary()
    row = _row(flavour, ROUND_TRIP, measured.per_second).add_latency(measured.samples)
    row.figures.update(
        seconds=figures["seconds"],
        client_cpu_seconds=figures["client_cpu_seconds"],
        worker_cpu_seconds=figures.get("worker_cpu_seconds"),
        redis_cpu_seconds=figures.get("redis_cpu_seconds"),
        worker_cpu_share=report.share(figures.get("worker_cpu_seconds"), measured.seconds),
    )
    return row


def _row(flavour: Flavour, scenario: str, rate: float | None) -> Row:
    return Row(scenario, flavour.impl, flavour.label, rate, UNITS[scenario], kind=flavour.kind)


async def run_flavour(ops: ClientOps, flavour: Flavour, settings: Settings) -> list[Row]:
    """Both scenarios for one flavour; a failure becomes a row with the error."""
    rows = []
    for scenario, run in ((DRAIN, drain), (ROUND_TRIP, round_trip)):
        try:
            rows.append(await run(ops, flavour, settings))
        except Exception as exc:
            print(f"{scenario} FAILED for {flavour.label}: {exc}", file=sys.stderr, flush=True)
            row = _row(flavour, scenario, None)
            row.error, row.correct = repr(exc), False
            rows.append(row)
    return rows


# The anchor ----------------------------------------------------------------------


class _ModernWorker:
    """Channels 4's ``runworker``, started in this (the anchor) venv."""

    def __init__(self, url: str, settings: Settings, channels: Sequence[str]) -> None:
        env = _harness.modern_env(url, ANCHOR_PREFIX, settings.capacity)
        self.process = _harness.start_modern_worker(
            "channels4-runworker", sys.executable, env, channels
        )

    def cpu_seconds(self) -> float:
        return self.process.cpu_seconds()

    def tail(self) -> str:
        return self.process.tail()

    def stop(self) -> None:
        self.process.stop()


def _modern_ops(url: str, settings: Settings) -> tuple[ClientOps, Callable[[], Awaitable[None]]]:
    import redis
    from channels_redis.core import RedisChannelLayer

    # No socket timeout, as in anchor_projects/modern/settings.py (redis-py 8's is 5 s).
    host = {"address": url, "socket_timeout": None}
    layer = RedisChannelLayer(hosts=[host], prefix=ANCHOR_PREFIX, capacity=settings.capacity)
    probe = redis.Redis.from_url(url)

    async def receive(channel: str, timeout: float) -> Message | None:
        try:
            return await asyncio.wait_for(layer.receive(channel), timeout)
        except TimeoutError:
            return None

    async def reset() -> None:
        await layer.flush()
        probe.flushall()

    async def close() -> None:
        await layer.close_pools()
        probe.close()

    ops = ClientOps(
        send=layer.send,
        receive=receive,
        new_reply_channel=layer.new_channel,
        reset=reset,
        meters={"redis_cpu_seconds": _support.redis_cpu_meter(probe)},
    )
    return ops, close


def modern_flavours(url: str, settings: Settings) -> list[Flavour]:
    """Channels 4 ``AsyncConsumer`` and ``SyncConsumer`` behind ``ChannelNameRouter``."""
    import channels

    def start(channels_: Sequence[str]) -> _ModernWorker:
        return _ModernWorker(url, settings, channels_)

    version = channels.__version__
    return [
        Flavour(
            "anchor-async",
            f"channels {version} runworker, AsyncConsumer",
            "anchor",
            "bench-count",
            "bench-reply",
            start,
        ),
        Flavour(
            "anchor-sync",
            f"channels {version} runworker, SyncConsumer",
            "anchor",
            "bench-count-sync",
            "bench-reply-sync",
            start,
        ),
    ]


async def run_modern(url: str, settings: Settings) -> list[Row]:
    """Every scenario for every Channels 4 flavour."""
    ops, close = _modern_ops(url, settings)
    try:
        rows: list[Row] = []
        for flavour in modern_flavours(url, settings):
            rows += await run_flavour(ops, flavour, settings)
        await ops.reset()
        return rows
    finally:
        await close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Channels 4 runworker (anchor run)")
    parser.add_argument("redis_url")
    parser.add_argument("duration", type=float)
    args = parser.parse_args(argv)
    settings = Settings(duration=args.duration)
    started = time.perf_counter()
    rows = asyncio.run(run_modern(args.redis_url, settings))
    print(
        json.dumps(
            {
                "machine": report.machine_info(["channels", "channels_redis", "django", "redis"]),
                "settings": asdict(settings),
                "cpu_seconds": time.process_time(),
                "wall_seconds": time.perf_counter() - started,
                "results": report.rows_json(rows),
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main()
