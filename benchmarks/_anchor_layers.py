"""Channel-layer scenarios through an async API, and the anchor run of modern Channels.

Run as a module inside the anchor venv by ``benchmarks.layers`` (through
:meth:`benchmarks._support.AnchorVenv.run_json`, which puts this repository
last on ``sys.path``)::

    python -m benchmarks._anchor_layers REDIS_URL DURATION

it measures Channels 4's ``InMemoryChannelLayer`` and channels_redis 4's
``RedisChannelLayer`` and prints one JSON object on stdout.

``benchmarks.layers`` imports this module too, to run our layers' async API
and the asyncio redis-py floor through the very same loops. So nothing here
imports ``channels`` at module level: the modern one is imported only in
:func:`main`'s code path, inside the anchor venv.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks import _support, report
from benchmarks.report import Row

Message = dict[str, Any]

SEQUENTIAL = "sequential"
BATCHED = "batched"
GROUP = "group"
SCENARIOS = (SEQUENTIAL, BATCHED, GROUP)
UNITS = {SEQUENTIAL: "round trips/s", BATCHED: "messages/s", GROUP: "deliveries/s"}

CHANNEL = "bench.channel"
GROUP_NAME = "bench-group"
#: How long a receive may wait while checking a group send delivered everywhere.
CHECK_TIMEOUT = 2.0


@dataclass
class Settings:
    """Sizes and bounds shared by every implementation, so their figures compare."""

    duration: float = 3.0
    batch: int = 1000
    group_size: int = 1000
    max_round_trips: int = 1_000_000
    max_batches: int = 10_000
    #: Each timed group send leaves a message in every member, so stay under capacity.
    max_group_sends: int = 200
    #: Capacity given to every layer: a batch, or all group sends, must fit in one channel.
    capacity: int = 2000
    warmup_round_trips: int = 200


def message(n: int) -> Message:
    """The benchmark message; ``"type"`` is there because modern Channels needs it."""
    return {"type": "chat.message", "text": "hello", "n": n}


def check_number(got: Message, expected: int) -> None:
    """Raise if a received message is not the one expected."""
    if got.get("n") != expected:
        raise RuntimeError(f"Received message n={got.get('n')!r}, expected {expected}")


@dataclass
class Probes:
    """Optional readings about a layer's server, taken outside the timed loops."""

    #: Meters read around each timed loop (e.g. the Redis server's CPU seconds).
    meters: dict[str, _support.Meter] = field(default_factory=dict)
    #: ``{command: calls}`` of the server, to count what one group send costs.
    commands: Callable[[], dict[str, int]] | None = None
    #: Messages waiting on a channel, to check a group send delivered exactly once.
    pending: Callable[[str], int] | None = None


@dataclass
class AsyncOps:
    """A channel layer seen through a few async calls, so every layer runs the same loops."""

    impl: str
    label: str
    backend: str
    kind: str
    send: Callable[[str, Message], Awaitable[object]]
    #: Return the next message of one channel, raising if none comes in time.
    receive: Callable[[str], Awaitable[Message]]
    group_add: Callable[[str, str], Awaitable[object]]
    group_send: Callable[[str, Message], Awaitable[object]]
    #: Empty the layer between scenarios.
    reset: Callable[[], Awaitable[object]]
    #: Send many messages at once (a pipeline); by default one ``send`` after another.
    send_many: Callable[[str, list[Message]], Awaitable[object]] | None = None
    probes: Probes = field(default_factory=Probes)


def make_row(
    ops: Any,
    api: str,
    scenario: str,
    measured: _support.Measurement,
    rate: float,
    correct: bool | None = None,
    **extra: Any,
) -> Row:
    """Return one result row: who, what, the headline rate and the raw measurement."""
    return Row(
        scenario=scenario,
        impl=ops.impl,
        label=ops.label,
        rate=rate,
        unit=UNITS[scenario],
        kind=ops.kind,
        correct=correct,
        figures={"backend": ops.backend, "api": api, **measured.summary(), **extra},
    )


def script_calls(commands: dict[str, int] | None) -> int | None:
    """EVAL plus EVALSHA calls among *commands*."""
    return None if commands is None else commands.get("evalsha", 0) + commands.get("eval", 0)


def group_check_report(
    problems: list[str], counted: list[dict[str, int]], members: int
) -> dict[str, Any]:
    """Summarise the correctness check of a group send.

    *counted* holds the server commands of the first (cold: scripts may need
    loading) and second (warm) group send, or nothing without a Redis probe.
    """
    cold, warm = counted if counted else (None, None)
    return {
        "members": members,
        "correct": not problems,
        "problems": problems[:5],
        "commands_per_group_send": warm,
        "script_calls_per_group_send": script_calls(warm),
        "commands_first_group_send": cold,
        "script_calls_first_group_send": script_calls(cold),
    }


class CommandCounter:
    """Count the server commands run inside each ``with`` block (INFO itself left out)."""

    def __init__(self, read: Callable[[], dict[str, int]] | None) -> None:
        self.read = read
        self.counted: list[dict[str, int]] = []
        self._before: dict[str, int] = {}

    def __enter__(self) -> None:
        if self.read is not None:
            self._before = self.read()

    def __exit__(self, *exc_info: object) -> None:
        if self.read is not None:
            delta = _support.count_delta(self._before, self.read())
            delta.pop("info", None)
            self.counted.append(delta)


# The async scenarios -------------------------------------------------------


async def sequential(ops: AsyncOps, settings: Settings) -> Row:
    """Send one message, receive it, again and again."""

    async def round_trip(i: int) -> None:
        await ops.send(CHANNEL, message(i))
        check_number(await ops.receive(CHANNEL), i)

    measured = await _support.ameasure(
        round_trip,
        duration=settings.duration,
        max_ops=settings.max_round_trips,
        warmup_ops=settings.warmup_round_trips,
        meters=ops.probes.meters,
    )
    return make_row(ops, "async", SEQUENTIAL, measured, measured.per_second)


async def batched(ops: AsyncOps, settings: Settings) -> Row:
    """Send a batch of messages, then receive them all, again and again."""
    batch = [message(k) for k in range(settings.batch)]

    async def one_batch(_: int) -> None:
        if ops.send_many is not None:
            await ops.send_many(CHANNEL, batch)
        else:
            for item in batch:
                await ops.send(CHANNEL, item)
        for k in range(len(batch)):
            check_number(await ops.receive(CHANNEL), k)

    measured = await _support.ameasure(
        one_batch,
        duration=settings.duration,
        max_ops=settings.max_batches,
        warmup_ops=1,
        meters=ops.probes.meters,
    )
    rate = measured.per_second * settings.batch
    return make_row(ops, "async", BATCHED, measured, rate, batch=settings.batch)


async def _receive_or_none(ops: AsyncOps, channel: str) -> Message | None:
    try:
        return await asyncio.wait_for(ops.receive(channel), CHECK_TIMEOUT)
    except (TimeoutError, LookupError):
        return None


async def check_group_send(
    ops: AsyncOps, members: list[str]
) -> tuple[list[str], list[dict[str, int]]]:
    """Group-send twice; every member must get both messages, once each, in order.

    Returns the problems found and the server commands each send ran.
    """
    counter = CommandCounter(ops.probes.commands)
    for n in (-1, -2):
        with counter:
            await ops.group_send(GROUP_NAME, message(n))
    problems: list[str] = []
    for member in members:
        for expected in (-1, -2):
            got = await _receive_or_none(ops, member)
            if got is None or got.get("n") != expected:
                problems.append(f"{member}: expected n={expected}, got {got!r}")
        if ops.probes.pending is not None and ops.probes.pending(member):
            problems.append(f"{member}: messages left over")
        if len(problems) >= 5:
            break
    return problems, counter.counted


async def group(ops: AsyncOps, settings: Settings) -> Row:
    """Group-send to ``group_size`` members: check it once, then time it."""
    members = [f"bench.member.{index}" for index in range(settings.group_size)]
    for member in members:
        await ops.group_add(GROUP_NAME, member)
    problems, counted = await check_group_send(ops, members)
    measured = await _support.ameasure(
        lambda i: ops.group_send(GROUP_NAME, message(i)),
        duration=settings.duration,
        max_ops=settings.max_group_sends,
        keep_samples=True,
        meters=ops.probes.meters,
    )
    rate = measured.per_second * len(members)
    checked = group_check_report(problems, counted, len(members))
    return make_row(ops, "async", GROUP, measured, rate, **checked)


async def run_async_scenarios(ops: AsyncOps, settings: Settings) -> list[Row]:
    """Run every scenario on one layer, emptying it before each."""
    rows = []
    for scenario in (sequential, batched, group):
        await ops.reset()
        rows.append(await scenario(ops, settings))
    await ops.reset()
    return rows


# The anchors ---------------------------------------------------------------


def _modern_inmemory(settings: Settings) -> AsyncOps:
    import channels
    from channels.layers import InMemoryChannelLayer

    layer = InMemoryChannelLayer(capacity=settings.capacity)

    def pending(channel: str) -> int:
        queue = layer.channels.get(channel)
        return 0 if queue is None else queue.qsize()

    return AsyncOps(
        impl="anchor-inmemory",
        label=f"channels {channels.__version__} InMemoryChannelLayer",
        backend="inmemory",
        kind="anchor",
        send=layer.send,
        receive=layer.receive,
        group_add=layer.group_add,
        group_send=layer.group_send,
        reset=layer.flush,
        probes=Probes(pending=pending),
    )


def _modern_redis(url: str, settings: Settings) -> tuple[AsyncOps, Callable[[], Awaitable[Any]]]:
    import redis
    from channels_redis.core import RedisChannelLayer

    prefix = "bench-anchor:"
    layer = RedisChannelLayer(hosts=[url], prefix=prefix, capacity=settings.capacity)
    probe = redis.Redis.from_url(url)

    async def reset() -> None:
        await layer.flush()
        probe.flushall()

    async def close() -> None:
        await layer.close_pools()
        probe.close()

    ops = AsyncOps(
        impl="anchor-redis",
        label=f"channels_redis {report.package_versions(['channels_redis'])['channels_redis']}",
        backend="redis",
        kind="anchor",
        send=layer.send,
        receive=layer.receive,
        group_add=layer.group_add,
        group_send=layer.group_send,
        reset=reset,
        probes=Probes(
            meters={"server_cpu_seconds": _support.redis_cpu_meter(probe)},
            commands=lambda: _support.redis_command_calls(probe),
            pending=lambda channel: int(probe.zcard(prefix + channel)),
        ),
    )
    return ops, close


def _check_anchor_import() -> None:
    """Refuse to run if ``channels`` is ours (the repository leaked onto sys.path)."""
    import channels

    version = getattr(channels, "__version__", "")
    if not version.startswith("4."):
        raise SystemExit(
            f"Expected modern Channels 4 in the anchor venv, found {version!r} at "
            f"{channels.__file__}"
        )


async def run_anchors(url: str, settings: Settings) -> list[Row]:
    """Measure both modern layers; return their rows."""
    rows = await run_async_scenarios(_modern_inmemory(settings), settings)
    ops, close = _modern_redis(url, settings)
    try:
        rows += await run_async_scenarios(ops, settings)
    finally:
        await close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("redis_url")
    parser.add_argument("duration", type=float)
    args = parser.parse_args(argv)
    _check_anchor_import()
    settings = Settings(duration=args.duration)
    started = time.perf_counter()
    rows = asyncio.run(run_anchors(args.redis_url, settings))
    printed = {
        "settings": asdict(settings),
        "machine": report.machine_info(
            ["channels", "channels_redis", "redis", "msgpack", "django", "asgiref"]
        ),
        "results": report.rows_json(rows),
        "cpu_seconds": time.process_time(),
        "wall_seconds": time.perf_counter() - started,
    }
    json.dump(printed, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
