"""The Redis layer on a 3-master Redis Cluster beside one Redis: fan-out and round trips.

Run from the repository root::

    python -m benchmarks.cluster [--duration SECONDS] [--broadcasts N]

or as the suite's ``cluster`` scenario (``python -m benchmarks --only cluster``).
Both topologies are measured in the same run, with the same code:

* ``single``: one redis-server, the layer's plain ``hosts``;
* ``cluster``: three cluster masters on loopback, no replicas, assembled by
  the tests' :class:`~tests.redis_cluster.RedisClusterServers`, and the
  layer's ``"cluster": True``.

Scenarios:

* ``round trips (sync)`` / ``(async)``: send one message to a channel,
  receive it, again and again (round trips/s; p50/p99 of one);
* ``fan-out 1000 (10 x 100)``: a group of 1,000 members spread over 10
  interface-server prefixes of 100 sockets each (``daphne.response.<r>!<s>``,
  as 10 daphnes with 100 WebSockets each would have), each prefix read by a
  layer of its own, as each daphne has (all on this process's event loop,
  so the figure is the layer's and Redis's part of a fan-out, not daphne's);
  one ``send_group`` is timed from the call to the last member's message
  received. The headline is deliveries/s over the busy time; p50 is the
  median fan-out, over ``broadcasts`` of them.

Every row's ``vs 1 Redis`` ratio is its figure over the single Redis's in the
same scenario. No test asserts on these figures. The cluster start is the
tests' (imported, as :mod:`benchmarks._support` imports the tests' Redis
server): one way to assemble a cluster, which the tests keep working.
Prints a table and writes ``benchmarks/results/cluster.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from benchmarks import _support, report
from benchmarks.report import Column, Row
from tests.redis_cluster import RedisClusterServers

SINGLE = "ours-single"
CLUSTER = "ours-cluster"
CLUSTER_LABEL = "ours, Redis Cluster (3 masters)"
PREFIX = "bench:"
CHANNEL = "bench.channel"
GROUP = "bench-fanout"
SYNC = "round trips (sync)"
ASYNC = "round trips (async)"
#: Every broadcast's message carries its number; this one tells a reader to stop.
STOP = -1_000_000


@dataclass
class Settings:
    """Sizes and bounds, the same for both topologies."""

    #: Seconds of each round-trip measurement.
    duration: float = 2.5
    warmup_round_trips: int = 200
    max_round_trips: int = 1_000_000
    #: Interface-server prefixes, and sockets (group members) on each.
    prefixes: int = 10
    sockets_per_prefix: int = 100
    #: Timed group sends (the median is over these), after the warm-up ones.
    broadcasts: int = 50
    warmup_broadcasts: int = 3
    #: Seconds one broadcast may take to reach every member before the row fails.
    broadcast_timeout: float = 10.0
    #: Room on each prefix's list for a broadcast's messages to all its sockets.
    capacity: int = 2000

    @property
    def members(self) -> int:
        return self.prefixes * self.sockets_per_prefix

    @property
    def fanout(self) -> str:
        return f"fan-out {self.members} ({self.prefixes} x {self.sockets_per_prefix})"

    @classmethod
    def quick(cls) -> Settings:
        return cls(duration=0.3, broadcasts=5, warmup_broadcasts=1)


# The two topologies ----------------------------------------------------------------


@dataclass
class Topology:
    """Where the layer runs: its hosts, and a client of every master to flush and probe."""

    impl: str
    label: str
    hosts: list[str]
    cluster: bool
    nodes: list[redis.Redis]
    redis_version: str = ""

    def layer(self, settings: Settings) -> Any:
        from channels.layers.redis import RedisChannelLayer

        return RedisChannelLayer(
            hosts=self.hosts, prefix=PREFIX, capacity=settings.capacity, cluster=self.cluster
        )

    def flush(self) -> None:
        for node in self.nodes:
            node.flushall()

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) of every master, summed."""
        return sum(_support.redis_cpu_meter(node)() for node in self.nodes)

    def script_calls(self) -> int:
        """EVAL + EVALSHA calls so far, summed over the masters."""
        total = 0
        for node in self.nodes:
            calls = _support.redis_command_calls(node)
            total += calls.get("evalsha", 0) + calls.get("eval", 0)
        return total


def single(url: str, probe: redis.Redis) -> Topology:
    """The one Redis at *url* (the suite's), probed with *probe*."""
    version = probe.info("server")["redis_version"]
    return Topology(SINGLE, "ours, 1 Redis", [url], False, [probe], version)


@contextmanager
def three_masters() -> Iterator[Topology]:
    """Start a 3-master cluster on loopback; yield it as a topology; stop it."""
    servers = RedisClusterServers(masters=3).start()
    nodes = [servers.client(node) for node in servers.masters]
    try:
        version = nodes[0].info("server")["redis_version"]
        yield Topology(CLUSTER, CLUSTER_LABEL, servers.urls, True, nodes, version)
    finally:
        for node in nodes:
            node.close()
        servers.cleanup()


# Round trips ----------------------------------------------------------------------------


def _message(n: int) -> dict[str, Any]:
    return {"type": "chat.message", "text": "hello", "n": n}


def _check(channel: str | None, got: dict[str, Any] | None, expected: int) -> None:
    if channel is None or got is None or got.get("n") != expected:
        raise RuntimeError(f"Expected message n={expected}, received {got!r} on {channel!r}")


def _round_trip_row(
    where: Topology, scenario: str, measured: _support.Measurement, api: str
) -> Row:
    row = Row(
        scenario,
        where.impl,
        f"{where.label} ({api})",
        measured.per_second,
        "round trips/s",
        figures={"api": api, **measured.summary()},
    )
    return row.add_latency(measured.samples)


def round_trips_sync(where: Topology, settings: Settings) -> Row:
    """Send + blocking receive on one channel through the sync API, as a worker does."""
    layer = where.layer(settings)
    try:

        def round_trip(n: int) -> None:
            layer.send(CHANNEL, _message(n))
            channel, got = layer.receive([CHANNEL], block=True, timeout=1)
            _check(channel, got, n)

        measured = _support.measure(
            round_trip,
            duration=settings.duration,
            max_ops=settings.max_round_trips,
            warmup_ops=settings.warmup_round_trips,
            keep_samples=True,
            meters={"server_cpu_seconds": where.cpu_seconds},
        )
    finally:
        layer.close()
    return _round_trip_row(where, SYNC, measured, "sync")


async def round_trips_async(where: Topology, settings: Settings) -> Row:
    """The async twins (``asend``, ``areceive``), as a consumer on the event loop does."""
    layer = where.layer(settings)
    try:

        async def round_trip(n: int) -> None:
            await layer.asend(CHANNEL, _message(n))
            channel, got = await layer.areceive([CHANNEL], block=True, timeout=1)
            _check(channel, got, n)

        measured = await _support.ameasure(
            round_trip,
            duration=settings.duration,
            max_ops=settings.max_round_trips,
            warmup_ops=settings.warmup_round_trips,
            keep_samples=True,
            meters={"server_cpu_seconds": where.cpu_seconds},
        )
    finally:
        await layer.aclose()
    return _round_trip_row(where, ASYNC, measured, "async")


# Fan-out --------------------------------------------------------------------------------


@dataclass
class Tally:
    """Who has received the broadcast under way; set :attr:`done` when everyone has."""

    members: int
    current: int = 0
    received: set[str] = field(default_factory=set)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    finished_at: float = 0.0
    duplicates: int = 0
    strays: int = 0

    def expect(self, n: int) -> None:
        self.current = n
        self.received = set()
        self.done = asyncio.Event()

    def got(self, channel: str, n: int) -> None:
        if n != self.current:
            self.strays += 1  # a message of an earlier broadcast, after it was complete
        elif channel in self.received:
            self.duplicates += 1
        else:
            self.received.add(channel)
            if len(self.received) == self.members:
                self.finished_at = time.perf_counter()
                self.done.set()


async def _serve(layer: Any, process: str, tally: Tally) -> None:
    """One interface server's receive loop on its ``prefix!``, until it is told to stop."""
    while True:
        channel, message = await layer.areceive([process], block=True, timeout=1)
        if channel is None:
            continue
        if message["n"] == STOP:
            return
        tally.got(channel, message["n"])


async def fanout(where: Topology, settings: Settings) -> Row:
    """Group-send to members on ``prefixes`` interface servers; time each until all received."""
    sender = where.layer(settings)
    servers = [where.layer(settings) for _ in range(settings.prefixes)]
    processes = [f"daphne.response.{secrets.token_hex(6)}!" for _ in servers]
    members = [
        f"{process}{secrets.token_hex(8)}"
        for process in processes
        for _ in range(settings.sockets_per_prefix)
    ]
    tally = Tally(len(members))
    readers: list[asyncio.Future[None]] = []
    try:
        for member in members:
            await sender.agroup_add(GROUP, member)
        readers = [
            asyncio.ensure_future(_serve(layer, process, tally))
            for layer, process in zip(servers, processes, strict=True)
        ]

        async def broadcast(n: int) -> tuple[float, float]:
            tally.expect(n)
            started = time.perf_counter()
            await sender.asend_group(GROUP, _message(n))
            sent = time.perf_counter()
            try:
                await asyncio.wait_for(tally.done.wait(), settings.broadcast_timeout)
            except TimeoutError:
                raise RuntimeError(
                    f"broadcast {n} reached {len(tally.received)} of {len(members)} members "
                    f"within {settings.broadcast_timeout:.0f} s"
                ) from None
            return tally.finished_at - started, sent - started

        for n in range(settings.warmup_broadcasts):
            await broadcast(-1 - n)
        calls_before = where.script_calls()
        await broadcast(0)
        scripts_per_send = where.script_calls() - calls_before
        samples: list[float] = []
        send_samples: list[float] = []
        cpu_before, redis_before = time.process_time(), where.cpu_seconds()
        for n in range(1, settings.broadcasts + 1):
            took, sent = await broadcast(n)
            samples.append(took)
            send_samples.append(sent)
        client_cpu = time.process_time() - cpu_before
        redis_cpu = where.cpu_seconds() - redis_before
    finally:
        for process in processes:
            await sender.asend(process + "stop", _message(STOP))
        await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), 10)
        for layer in (sender, *servers):
            await layer.aclose()
    busy = sum(samples)
    row = Row(
        settings.fanout,
        where.impl,
        where.label,
        len(members) * len(samples) / busy if busy else None,
        "deliveries/s",
        correct=tally.duplicates == 0 and tally.strays == 0,
        figures={
            "members": len(members),
            "prefixes": settings.prefixes,
            "sockets_per_prefix": settings.sockets_per_prefix,
            "broadcasts": len(samples),
            "median_ms": round(1000 * _median(samples), 4),
            "send_group_median_ms": round(1000 * _median(send_samples), 4),
            "script_calls_per_group_send": scripts_per_send,
            "duplicates": tally.duplicates,
            "strays": tally.strays,
            "seconds": round(busy, 6),
            "client_cpu_seconds": round(client_cpu, 6),
            "server_cpu_seconds": round(redis_cpu, 6),
        },
    )
    return row.add_latency(samples)


def _median(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# Running both ---------------------------------------------------------------------------


def run_topology(where: Topology, settings: Settings) -> list[Row]:
    """Every scenario on one topology, emptying it before each; a failure fails its row."""
    rows: list[Row] = []
    scenarios: list[tuple[str, str, Callable[[], Row]]] = [
        (SYNC, "round trips/s", lambda: round_trips_sync(where, settings)),
        (ASYNC, "round trips/s", lambda: asyncio.run(round_trips_async(where, settings))),
        (settings.fanout, "deliveries/s", lambda: asyncio.run(fanout(where, settings))),
    ]
    for scenario, unit, run in scenarios:
        where.flush()
        try:
            rows.append(run())
        except Exception as exc:  # one failed scenario must not lose the others' figures
            print(f"{where.label}: {scenario} FAILED: {exc!r}", flush=True)
            rows.append(Row.failed(scenario, where.impl, where.label, unit, exc))
    where.flush()
    return rows


def add_ratios(rows: Sequence[Row]) -> None:
    """Set every row's ``vs_single``: its figure over the single Redis's, same scenario."""
    report.add_ratios(rows, "vs_single", lambda row: SINGLE)


def run_all(url: str, probe: redis.Redis, settings: Settings) -> dict[str, Any]:
    """Measure the single Redis at *url*, then a 3-master cluster started here; one table."""
    started = time.perf_counter()
    alone = single(url, probe)
    rows = run_topology(alone, settings)
    cluster_version = None
    measured = len(rows)
    try:
        with three_masters() as cluster:
            rows += run_topology(cluster, settings)
            cluster_version = cluster.redis_version
    except Exception as exc:  # the cluster failed as a whole: keep the single Redis's figures
        print(f"The Redis Cluster failed: {exc!r}", flush=True)
        del rows[measured:]
        units = {SYNC: "round trips/s", ASYNC: "round trips/s", settings.fanout: "deliveries/s"}
        rows += [
            Row.failed(name, CLUSTER, CLUSTER_LABEL, unit, exc) for name, unit in units.items()
        ]
    add_ratios(rows)
    print()
    print(table(rows))
    print()
    print("\n".join(notes(rows)))
    return {
        "settings": asdict(settings),
        "topologies": {
            SINGLE: {"servers": 1, "redis_version": alone.redis_version},
            CLUSTER: {
                "masters": 3,
                "replicas": 0,
                "cluster_node_timeout_ms": RedisClusterServers.node_timeout,
                "redis_version": cluster_version,
            },
        },
        "results": rows,
        "wall_seconds": round(time.perf_counter() - started, 3),
    }


def suite_lines(rows: Sequence[Row]) -> list[Row]:
    """The rows as lines of the suite's table: ``cluster: <scenario>``, ratios to come."""
    return [
        Row(
            f"cluster: {row.scenario}",
            row.impl,
            row.label,
            None if row.error else row.rate,
            row.unit,
            p50_ms=row.p50_ms,
            p99_ms=row.p99_ms,
            error=row.error,
            figures={"lower_is_better": False},
        )
        for row in rows
    ]


# Report ---------------------------------------------------------------------------------


def _share(row: Row, name: str) -> str:
    return report.fmt_percent(report.share(row.figures.get(name), row.figures.get("seconds")))


COLUMNS = [
    Column("scenario", lambda row: row.scenario),
    Column("topology", lambda row: row.label),
    report.figure_column(),
    Column("unit", lambda row: row.unit),
    Column("p50 ms", lambda row: report.fmt_number(row.p50_ms, 3)),
    Column("p99 ms", lambda row: report.fmt_number(row.p99_ms, 3)),
    report.ratio_column("vs 1 Redis", "vs_single"),
    Column("client CPU", lambda row: _share(row, "client_cpu_seconds")),
    Column("redis CPU", lambda row: _share(row, "server_cpu_seconds")),
]


def table(rows: Sequence[Row]) -> str:
    """The rows, scenario by scenario, the single Redis first."""
    order = {name: index for index, name in enumerate(dict.fromkeys(row.scenario for row in rows))}
    return report.table(rows, COLUMNS, key=lambda row: (order[row.scenario], row.impl != SINGLE))


def notes(rows: Sequence[Row]) -> list[str]:
    """One line per fan-out row: delivery checked, median, script calls of one group send."""
    lines = ["Fan-out (p50 = the median broadcast, from the send_group call to the last message):"]
    for row in rows:
        if "members" not in row.figures:
            continue
        figures = row.figures
        verdict = (
            "ok"
            if row.correct
            else (f"WRONG: {figures['duplicates']} duplicates, {figures['strays']} strays")
        )
        lines.append(
            f"  {row.label}: delivery {verdict}; median {figures['median_ms']:.2f} ms to the"
            f" last member (the send_group call: {figures['send_group_median_ms']:.2f} ms);"
            f" script calls per group send: {figures['script_calls_per_group_send']}"
        )
    lines += report.failure_notes(rows)
    lines.append(
        "vs 1 Redis = figure / the single Redis's figure in the same scenario; CPU = seconds"
        "\nof this process / of every Redis over the measurement's wall seconds (2 cores shared)."
    )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2.5, help="seconds per round-trip run")
    parser.add_argument("--broadcasts", type=int, default=50, help="timed fan-outs per topology")
    parser.add_argument("--quick", action="store_true", help="short durations, a smoke run")
    args = parser.parse_args(argv)
    settings = (
        Settings.quick() if args.quick else Settings(args.duration, broadcasts=args.broadcasts)
    )
    started = time.perf_counter()
    with _support.redis_for_benchmarks() as (url, probe, redis_version):
        part = run_all(url, probe, settings)
    wall = time.perf_counter() - started
    print(report.cpu_line(time.process_time(), None, wall))
    report.record(
        "cluster",
        settings={**part.pop("settings"), "quick": args.quick},
        packages=["channels-classic", "redis", "hiredis", "msgpack"],
        redis_version=redis_version,
        topologies=part.pop("topologies"),
        wall_seconds=wall,
        results=report.rows_json(part.pop("results")),
    )


if __name__ == "__main__":
    main()
