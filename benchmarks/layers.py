"""Channel-layer throughput: our layers against modern Channels and bare redis-py.

Run from the repository root::

    python -m benchmarks.layers [--duration SECONDS] [--skip-anchors]

Scenarios, each bounded by ``--duration`` seconds or a fixed count:

* ``sequential``: send one message, receive it, repeat (round trips/s);
* ``batched``: send 1000 messages to one channel, then receive them (messages/s);
* ``group``: send to a group of 1000 channels (deliveries/s, ms per group send),
  checked once for exactly-once delivery, with the Redis commands one send ran.

Implementations: our in-memory and Redis layers, through their sync API and
their async twins; a bare redis-py floor (RPUSH + BLPOP of the msgpack'd
message, sync and asyncio); and the anchors, Channels 4's in-memory layer and
channels_redis 4, run by ``_anchor_layers.py`` in a virtualenv of their own.
Prints a table and writes ``benchmarks/results/layers.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import msgpack
import redis
import redis.asyncio

from benchmarks import _support, report
from benchmarks._anchor_layers import (
    BATCHED,
    CHANNEL,
    GROUP,
    GROUP_NAME,
    SCENARIOS,
    SEQUENTIAL,
    AsyncOps,
    CommandCounter,
    Message,
    Probes,
    Settings,
    check_number,
    group_check_report,
    make_row,
    message,
    run_async_scenarios,
)
from benchmarks.report import Column, Row

ANCHOR_VENV = _support.AnchorVenv(
    name="anchor-modern",
    requirements=["channels>=4,<5", "channels_redis>=4,<5", "redis>=5", "msgpack"],
    imports=["channels.layers", "channels_redis.core", "redis", "msgpack"],
)
ANCHOR_MODULE = "benchmarks._anchor_layers"
OUR_PREFIX = "bench:"
FLOOR_PREFIX = "floor:"
#: The anchor for each backend's rows, and the floor for Redis rows.
ANCHOR_OF = {"inmemory": "anchor-inmemory", "redis": "anchor-redis"}
FLOOR = "floor-sync"


# The sync scenarios (the async ones live in _anchor_layers) ----------------


@dataclass
class SyncOps:
    """A channel layer seen through a few sync calls; mirrors :class:`AsyncOps`."""

    impl: str
    label: str
    backend: str
    kind: str
    send: Callable[[str, Message], object]
    receive: Callable[[str], Message]
    group_add: Callable[[str, str], object]
    group_send: Callable[[str, Message], object]
    reset: Callable[[], object]
    send_many: Callable[[str, list[Message]], object] | None = None
    probes: Probes = field(default_factory=Probes)


def sequential(ops: SyncOps, settings: Settings) -> Row:
    """Send one message, receive it, again and again."""

    def round_trip(i: int) -> None:
        ops.send(CHANNEL, message(i))
        check_number(ops.receive(CHANNEL), i)

    measured = _support.measure(
        round_trip,
        duration=settings.duration,
        max_ops=settings.max_round_trips,
        warmup_ops=settings.warmup_round_trips,
        meters=ops.probes.meters,
    )
    return make_row(ops, "sync", SEQUENTIAL, measured, measured.per_second)


def batched(ops: SyncOps, settings: Settings) -> Row:
    """Send a batch of messages, then receive them all, again and again."""
    batch = [message(k) for k in range(settings.batch)]

    def one_batch(_: int) -> None:
        if ops.send_many is not None:
            ops.send_many(CHANNEL, batch)
        else:
            for item in batch:
                ops.send(CHANNEL, item)
        for k in range(len(batch)):
            check_number(ops.receive(CHANNEL), k)

    measured = _support.measure(
        one_batch,
        duration=settings.duration,
        max_ops=settings.max_batches,
        warmup_ops=1,
        meters=ops.probes.meters,
    )
    rate = measured.per_second * settings.batch
    return make_row(ops, "sync", BATCHED, measured, rate, batch=settings.batch)


def check_group_send(ops: SyncOps, members: list[str]) -> tuple[list[str], list[dict[str, int]]]:
    """Sync twin of ``_anchor_layers.check_group_send``."""
    counter = CommandCounter(ops.probes.commands)
    for n in (-1, -2):
        with counter:
            ops.group_send(GROUP_NAME, message(n))
    problems: list[str] = []
    for member in members:
        for expected in (-1, -2):
            try:
                got: Message | None = ops.receive(member)
            except LookupError:
                got = None
            if got is None or got.get("n") != expected:
                problems.append(f"{member}: expected n={expected}, got {got!r}")
        if ops.probes.pending is not None and ops.probes.pending(member):
            problems.append(f"{member}: messages left over")
        if len(problems) >= 5:
            break
    return problems, counter.counted


def group(ops: SyncOps, settings: Settings) -> Row:
    """Group-send to ``group_size`` members: check it once, then time it."""
    members = [f"bench.member.{index}" for index in range(settings.group_size)]
    for member in members:
        ops.group_add(GROUP_NAME, member)
    problems, counted = check_group_send(ops, members)
    measured = _support.measure(
        lambda i: ops.group_send(GROUP_NAME, message(i)),
        duration=settings.duration,
        max_ops=settings.max_group_sends,
        keep_samples=True,
        meters=ops.probes.meters,
    )
    rate = measured.per_second * len(members)
    checked = group_check_report(problems, counted, len(members))
    return make_row(ops, "sync", GROUP, measured, rate, **checked)


def run_sync_scenarios(ops: SyncOps, settings: Settings) -> list[Row]:
    """Run every scenario on one layer, emptying it before each."""
    rows = []
    for scenario in (sequential, batched, group):
        ops.reset()
        rows.append(scenario(ops, settings))
    ops.reset()
    return rows


# Our layers ------------------------------------------------------------------


def _first_message(result: tuple[Any, Any], channel: str) -> Message:
    if result[0] is None:
        raise LookupError(f"No message arrived on {channel}")
    return result[1]


def _our_probes(layer: Any, probe: redis.Redis | None) -> Probes:
    def pending(channel: str) -> int:
        return int(layer.channel_statistics(channel)["messages_pending"])

    if probe is None:
        return Probes(pending=pending)
    return Probes(
        meters={"server_cpu_seconds": _support.redis_cpu_meter(probe)},
        commands=lambda: _support.redis_command_calls(probe),
        pending=pending,
    )


def our_sync_ops(layer: Any, impl: str, label: str, probe: redis.Redis | None) -> SyncOps:
    """Adapt one of our layers' sync API (blocking receive, as a worker does)."""

    def receive(channel: str) -> Message:
        return _first_message(layer.receive([channel], block=True, timeout=1), channel)

    def reset() -> None:
        if probe is not None:
            probe.flushall()
        layer.flush()

    return SyncOps(
        impl=impl,
        label=label,
        backend="redis" if probe is not None else "inmemory",
        kind="ours",
        send=layer.send,
        receive=receive,
        group_add=layer.group_add,
        group_send=layer.send_group,
        reset=reset,
        probes=_our_probes(layer, probe),
    )


def our_async_ops(layer: Any, impl: str, label: str, probe: redis.Redis | None) -> AsyncOps:
    """Adapt one of our layers' async twins (asend, areceive, ...)."""

    async def receive(channel: str) -> Message:
        return _first_message(await layer.areceive([channel], block=True, timeout=1), channel)

    async def reset() -> None:
        if probe is not None:
            probe.flushall()
        await layer.aflush()

    return AsyncOps(
        impl=impl,
        label=label,
        backend="redis" if probe is not None else "inmemory",
        kind="ours",
        send=layer.asend,
        receive=receive,
        group_add=layer.agroup_add,
        group_send=layer.asend_group,
        reset=reset,
        probes=_our_probes(layer, probe),
    )


def run_ours_inmemory(settings: Settings) -> list[Row]:
    """Our in-memory layer, sync API then async API (a fresh layer for each)."""
    from channels.layers.inmemory import InMemoryChannelLayer

    sync_layer = InMemoryChannelLayer(capacity=settings.capacity)
    rows = run_sync_scenarios(
        our_sync_ops(sync_layer, "ours-inmemory-sync", "ours in-memory (sync)", None), settings
    )
    async_layer = InMemoryChannelLayer(capacity=settings.capacity)
    ops = our_async_ops(async_layer, "ours-inmemory-async", "ours in-memory (async)", None)
    return rows + asyncio.run(run_async_scenarios(ops, settings))


def run_ours_redis(url: str, probe: redis.Redis, settings: Settings) -> list[Row]:
    """Our Redis layer, sync API then async API (a fresh layer for each)."""
    from channels.layers.redis import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[url], prefix=OUR_PREFIX, capacity=settings.capacity)
    try:
        layer.flush()
        ops = our_sync_ops(layer, "ours-redis-sync", "ours Redis (sync)", probe)
        rows = run_sync_scenarios(ops, settings)
    finally:
        layer.close()

    async def run_async() -> list[Row]:
        layer = RedisChannelLayer(hosts=[url], prefix=OUR_PREFIX, capacity=settings.capacity)
        try:
            await layer.aflush()
            ops = our_async_ops(layer, "ours-redis-async", "ours Redis (async)", probe)
            return await run_async_scenarios(ops, settings)
        finally:
            await layer.aclose()

    return rows + asyncio.run(run_async())


# The redis-py floor ------------------------------------------------------------


def _pack(item: Message) -> bytes:
    return msgpack.packb(item, use_bin_type=True)


def _unpack(popped: Any, key: str) -> Message:
    if popped is None:
        raise LookupError(f"No message arrived on {key}")
    return msgpack.unpackb(popped[1], raw=False)


def floor_sync_ops(url: str, probe: redis.Redis) -> tuple[SyncOps, redis.Redis]:
    """RPUSH + BLPOP with redis-py's sync client: the least a Redis layer can do."""
    client = redis.Redis.from_url(url)

    def send_many(channel: str, items: list[Message]) -> None:
        pipe = client.pipeline(transaction=False)
        for item in items:
            pipe.rpush(FLOOR_PREFIX + channel, _pack(item))
        pipe.execute()

    def group_send(group: str, item: Message) -> None:
        members = client.zrange(FLOOR_PREFIX + "group:" + group, 0, -1)
        data = _pack(item)
        pipe = client.pipeline(transaction=False)
        for member in members:
            pipe.rpush(FLOOR_PREFIX.encode() + member, data)
        pipe.execute()

    ops = SyncOps(
        impl=FLOOR,
        label="redis-py floor (sync)",
        backend="redis",
        kind="floor",
        send=lambda channel, item: client.rpush(FLOOR_PREFIX + channel, _pack(item)),
        receive=lambda channel: _unpack(client.blpop(FLOOR_PREFIX + channel, timeout=1), channel),
        group_add=lambda group, channel: client.zadd(
            FLOOR_PREFIX + "group:" + group, {channel: time.time()}
        ),
        group_send=group_send,
        reset=probe.flushall,
        send_many=send_many,
        probes=Probes(
            meters={"server_cpu_seconds": _support.redis_cpu_meter(probe)},
            commands=lambda: _support.redis_command_calls(probe),
            pending=lambda channel: int(probe.llen(FLOOR_PREFIX + channel)),
        ),
    )
    return ops, client


def floor_async_ops(client: redis.asyncio.Redis, probe: redis.Redis) -> AsyncOps:
    """The floor with redis-py's asyncio client, to set beside the async rows."""

    async def send(channel: str, item: Message) -> None:
        await client.rpush(FLOOR_PREFIX + channel, _pack(item))

    async def receive(channel: str) -> Message:
        return _unpack(await client.blpop(FLOOR_PREFIX + channel, timeout=1), channel)

    async def send_many(channel: str, items: list[Message]) -> None:
        pipe = client.pipeline(transaction=False)
        for item in items:
            pipe.rpush(FLOOR_PREFIX + channel, _pack(item))
        await pipe.execute()

    async def group_add(group: str, channel: str) -> None:
        await client.zadd(FLOOR_PREFIX + "group:" + group, {channel: time.time()})

    async def group_send(group: str, item: Message) -> None:
        members = await client.zrange(FLOOR_PREFIX + "group:" + group, 0, -1)
        data = _pack(item)
        pipe = client.pipeline(transaction=False)
        for member in members:
            pipe.rpush(FLOOR_PREFIX.encode() + member, data)
        await pipe.execute()

    async def reset() -> None:
        probe.flushall()

    return AsyncOps(
        impl="floor-async",
        label="redis-py floor (asyncio)",
        backend="redis",
        kind="floor",
        send=send,
        receive=receive,
        group_add=group_add,
        group_send=group_send,
        reset=reset,
        send_many=send_many,
        probes=Probes(
            meters={"server_cpu_seconds": _support.redis_cpu_meter(probe)},
            commands=lambda: _support.redis_command_calls(probe),
            pending=lambda channel: int(probe.llen(FLOOR_PREFIX + channel)),
        ),
    )


def run_floor(url: str, probe: redis.Redis, settings: Settings) -> list[Row]:
    """The bare redis-py floor, sync client then asyncio client."""
    ops, client = floor_sync_ops(url, probe)
    try:
        rows = run_sync_scenarios(ops, settings)
    finally:
        client.close()

    async def run_async() -> list[Row]:
        client = redis.asyncio.Redis.from_url(url)
        try:
            return await run_async_scenarios(floor_async_ops(client, probe), settings)
        finally:
            await client.aclose()

    return rows + asyncio.run(run_async())


# Anchors -----------------------------------------------------------------------


def run_anchors(url: str, probe: redis.Redis, duration: float) -> tuple[dict[str, Any], list[Row]]:
    """Run ``_anchor_layers`` in the anchor venv; return its report (or the error) and rows."""
    try:
        ANCHOR_VENV.ensure(log=lambda text: print(text, flush=True))
        probe.flushall()
        found = ANCHOR_VENV.run_json(ANCHOR_MODULE, [url, str(duration)], timeout=600)
    except _support.AnchorUnavailable as exc:
        print(f"Anchors skipped: {exc}", flush=True)
        return {"error": str(exc)}, []
    finally:
        probe.flushall()
    rows = [Row.from_json(row) for row in found.pop("results", [])]
    return found, rows


# Report ------------------------------------------------------------------------


def add_ratios(rows: list[Row]) -> None:
    """Set each row's ratio to its backend's anchor and, for Redis, to the sync floor."""
    report.add_ratios(rows, "vs_anchor", lambda row: ANCHOR_OF[row.figures["backend"]])
    report.add_ratios(
        rows, "vs_floor", lambda row: FLOOR if row.figures["backend"] == "redis" else None
    )


def _cpu_column(header: str, name: str) -> Column:
    """CPU seconds *name* as a share of the measurement's wall seconds."""
    return Column(
        header,
        lambda row: report.fmt_percent(report.share(row.figures.get(name), row.figures["seconds"])),
    )


COLUMNS = [
    Column("scenario", lambda row: row.scenario),
    Column("implementation", lambda row: row.label),
    report.figure_column(),
    Column("unit", lambda row: row.unit),
    Column("ms/op", lambda row: report.fmt_number(row.figures["ms_per_op"], 3)),
    report.ratio_column("vs anchor", "vs_anchor"),
    report.ratio_column("vs floor", "vs_floor"),
    _cpu_column("client CPU", "client_cpu_seconds"),
    _cpu_column("redis CPU", "server_cpu_seconds"),
]


def table(rows: list[Row]) -> str:
    """Format the rows, scenario by scenario, as a plain-text table."""
    order = {scenario: index for index, scenario in enumerate(SCENARIOS)}
    return report.table(
        rows, COLUMNS, key=lambda row: (order[row.scenario], row.figures["backend"])
    )


def group_notes(rows: list[Row]) -> list[str]:
    """One line per group row: correctness and the commands one group send ran."""
    notes = []
    for row in rows:
        if row.scenario != GROUP:
            continue
        figures = row.figures
        verdict = "ok" if row.correct else f"WRONG: {figures['problems']}"
        line = f"  {row.label}: delivery {verdict}, median {figures['median_ms']:.2f} ms/send"
        if figures.get("commands_per_group_send") is not None:
            line += (
                f", EVAL/EVALSHA per send: {figures['script_calls_per_group_send']}"
                f" (first, cold send: {figures['script_calls_first_group_send']})"
                f"\n      all commands of one send, incl. inside scripts:"
                f" {figures['commands_per_group_send']}"
            )
        notes.append(line)
    return notes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--skip-anchors", action="store_true", help="do not run modern Channels")
    args = parser.parse_args(argv)
    settings = Settings(duration=args.duration)
    started = time.perf_counter()

    rows = run_ours_inmemory(settings)
    anchors: dict[str, Any] = {"skipped": True}
    with _support.redis_for_benchmarks() as (url, probe, redis_version):
        rows += run_ours_redis(url, probe, settings)
        rows += run_floor(url, probe, settings)
        if not args.skip_anchors:
            anchors, anchor_rows = run_anchors(url, probe, args.duration)
            rows += anchor_rows
    add_ratios(rows)

    client_cpu = time.process_time()
    wall = time.perf_counter() - started
    print()
    print(table(rows))
    print()
    print("Group sends (1000 members):")
    print("\n".join(group_notes(rows)))
    print()
    print(
        "figure: higher is better; vs anchor/floor = figure / the anchor's (or floor's) figure;"
        "\nclient CPU = this process's CPU time / wall time of the measurement (2 cores shared)."
    )
    anchor_cpu = anchors.get("cpu_seconds")
    print(report.cpu_line(client_cpu, anchor_cpu, wall))
    report.record(
        "layers",
        settings=asdict(settings),
        packages=["channels-classic", "redis", "msgpack", "django", "asgiref"],
        redis_version=redis_version,
        anchors={
            "machine": anchors.get("machine"),
            "error": anchors.get("error"),
            "skipped": anchors.get("skipped", False),
            "cpu_seconds": anchor_cpu,
            "wall_seconds": anchors.get("wall_seconds"),
        },
        client_cpu_seconds=client_cpu,
        wall_seconds=wall,
        results=report.rows_json(rows),
    )


if __name__ == "__main__":
    main()
