"""WebSocket echo latency and throughput, and group fan-out: ours against Channels 4.

Run from the repository root::

    python -m benchmarks.websocket [--duration SECONDS] [--skip-anchors]

Scenarios, each bounded by ``--duration`` seconds (clients: the ``websockets``
asyncio client, in this process, without compression):

* ``echo_latency``: one client, sequential text round trips (p50/p99);
* ``echo_50``: 50 clients, each doing sequential round trips (round trips/s);
* ``fanout``: 200 sockets in one chat group; one of them sends a text and the
  server broadcasts ``[user] <text>`` to all 200; the time from the send to the
  last socket receiving it, repeated (deliveries/s = 200 / that time, on average).

Ours: daphne + two ``runworker`` on a throwaway Redis, with
``bench_project.routing.websocket_routing`` (the test project's ``/ws/echo/``
socket routing and its tutorial group chat under ``/ws/chat/``). The anchor:
Channels 4's daphne with an ``AsyncWebsocketConsumer`` echo and a group chat
consumer (``group_add`` / ``group_send``) on channels_redis
(``anchor_projects/modern``). Writes ``benchmarks/results/websocket.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from benchmarks import _harness, _support, report
from benchmarks.report import Column, Row

ECHO_LATENCY = "echo_latency"
ECHO_MANY = "echo_50"
FANOUT = "fanout"
SCENARIOS = (ECHO_LATENCY, ECHO_MANY, FANOUT)
UNITS = {ECHO_LATENCY: "round trips/s", ECHO_MANY: "round trips/s", FANOUT: "deliveries/s"}

ECHO_PATH = "/ws/echo/"
CHAT_PATH = "/ws/chat/"
OUR_ROUTING = "benchmarks.bench_project.routing.websocket_routing"
OUR_PREFIX = "bench-ws:"
ANCHOR_PREFIX = "bench-ws-modern"


@dataclass
class Settings:
    """Sizes and bounds shared by both stacks."""

    duration: float = 5.0
    max_round_trips: int = 5000
    warmup_round_trips: int = 100
    echo_clients: int = 50
    warmup_seconds: float = 1.0
    group_size: int = 200
    max_broadcasts: int = 200
    warmup_broadcasts: int = 3
    #: Seconds to wait for one reply or one broadcast to reach everyone.
    timeout: float = 30.0
    #: Handshakes in flight at once while opening many sockets.
    connect_concurrency: int = 20


# Clients ---------------------------------------------------------------------------


async def open_socket(url: str, timeout: float) -> ClientConnection:
    """Open one client WebSocket (no compression, no keep-alive pings, no proxy)."""
    return await connect(
        url, compression=None, ping_interval=None, proxy=None, open_timeout=timeout
    )


async def open_sockets(url: str, count: int, settings: Settings) -> list[ClientConnection]:
    """Open *count* sockets, a few handshakes at a time."""
    gate = asyncio.Semaphore(settings.connect_concurrency)

    async def one() -> ClientConnection:
        async with gate:
            return await open_socket(url, settings.timeout)

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    sockets = [result for result in results if isinstance(result, ClientConnection)]
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        await close_sockets(sockets)
        raise RuntimeError(f"{len(failures)} of {count} handshakes failed: {failures[0]!r}")
    return sockets


async def close_sockets(sockets: Sequence[ClientConnection]) -> None:
    """Close the sockets, ignoring those already gone."""
    await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)


async def round_trip(socket: ClientConnection, text: str, timeout: float) -> None:
    """Send *text*; wait for it to come back."""
    await socket.send(text)
    got = await asyncio.wait_for(socket.recv(), timeout)
    if got != text:
        raise RuntimeError(f"echo sent {text!r}, got {got!r}")


# CPU meters ------------------------------------------------------------------------


class CpuWindow:
    """CPU seconds of the servers, Redis and this client over one measurement."""

    def __init__(self, stack: _harness.Stack, probe: redis.Redis) -> None:
        self.stack = stack
        self.redis_cpu = _support.redis_cpu_meter(probe)

    def __enter__(self) -> CpuWindow:
        self.servers = self.stack.cpu_seconds()
        self.redis = self.redis_cpu()
        self.client = time.process_time()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server_seconds = _harness.cpu_delta(self.servers, self.stack.cpu_seconds())
        self.redis_seconds = self.redis_cpu() - self.redis
        self.client_seconds = time.process_time() - self.client

    def shares(self, seconds: float) -> dict[str, Any]:
        """CPU seconds and their share of *seconds* of wall time."""
        server = sum(self.server_seconds.values())
        return {
            "server_cpu_seconds": self.server_seconds,
            "server_cpu_share": round(server / seconds, 4) if seconds else None,
            "redis_cpu_share": round(self.redis_seconds / seconds, 4) if seconds else None,
            "client_cpu_share": round(self.client_seconds / seconds, 4) if seconds else None,
        }


# Scenarios -------------------------------------------------------------------------


async def echo_latency(stack: _harness.Stack, probe: redis.Redis, settings: Settings) -> Row:
    """One client, sequential round trips: latency percentiles."""
    socket = await open_socket(stack.ws_url + ECHO_PATH, settings.timeout)
    try:
        with CpuWindow(stack, probe) as cpu:
            measured = await _support.ameasure(
                lambda n: round_trip(socket, f"hello {n}", settings.timeout),
                duration=settings.duration,
                max_ops=settings.max_round_trips,
                warmup_ops=settings.warmup_round_trips,
                keep_samples=True,
            )
    finally:
        await close_sockets([socket])
    row = _row(stack, ECHO_LATENCY, measured.per_second).add_latency(measured.samples)
    row.figures.update(
        round_trips=measured.ops, seconds=round(measured.seconds, 4), **cpu.shares(measured.seconds)
    )
    return row


async def _echo_until(
    sockets: Sequence[ClientConnection], stop_at: float, timeout: float, samples: list[float]
) -> None:
    async def client(index: int, socket: ClientConnection) -> None:
        n = 0
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await round_trip(socket, f"client {index} message {n}", timeout)
            samples.append(time.perf_counter() - started)
            n += 1

    await asyncio.gather(*(client(index, socket) for index, socket in enumerate(sockets)))


async def echo_many(stack: _harness.Stack, probe: redis.Redis, settings: Settings) -> Row:
    """``echo_clients`` clients at once, each doing sequential round trips."""
    sockets = await open_sockets(stack.ws_url + ECHO_PATH, settings.echo_clients, settings)
    try:
        warmup: list[float] = []
        await _echo_until(
            sockets, time.perf_counter() + settings.warmup_seconds, settings.timeout, warmup
        )
        samples: list[float] = []
        with CpuWindow(stack, probe) as cpu:
            started = time.perf_counter()
            await _echo_until(sockets, started + settings.duration, settings.timeout, samples)
            seconds = time.perf_counter() - started
    finally:
        await close_sockets(sockets)
    row = _row(stack, ECHO_MANY, len(samples) / seconds).add_latency(samples)
    row.figures.update(
        clients=len(sockets),
        round_trips=len(samples),
        seconds=round(seconds, 4),
        **cpu.shares(seconds),
    )
    return row


class Broadcast:
    """Collects one broadcast's deliveries to every socket of the group."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.expected: str | None = None
        self.received = [False] * size
        self.count = 0
        self.duplicates = 0
        self.finished_at = 0.0
        self.done = asyncio.Event()

    def expect(self, text: str) -> None:
        """Start waiting for *text* on every socket."""
        self.expected = text
        self.received = [False] * self.size
        self.count = 0
        self.done.clear()

    def deliver(self, index: int, text: str) -> None:
        """Socket *index* received *text* (stale broadcasts are ignored)."""
        if text != self.expected:
            return
        if self.received[index]:
            self.duplicates += 1
            return
        self.received[index] = True
        self.count += 1
        if self.count == self.size:
            self.finished_at = time.perf_counter()
            self.done.set()


async def _read_into(index: int, socket: ClientConnection, broadcast: Broadcast) -> None:
    try:
        async for text in socket:
            broadcast.deliver(index, str(text))
    except ConnectionClosed:
        pass


async def _broadcast(
    sender: ClientConnection, broadcast: Broadcast, token: str, timeout: float
) -> float | None:
    """Send *token*; return seconds until every socket got it, or None on timeout."""
    broadcast.expect(f"[user] {token}")
    started = time.perf_counter()
    await sender.send(token)
    try:
        await asyncio.wait_for(broadcast.done.wait(), timeout)
    except TimeoutError:
        return None
    return broadcast.finished_at - started


async def fanout(stack: _harness.Stack, probe: redis.Redis, settings: Settings) -> Row:
    """``group_size`` sockets in one group; time broadcasts from send to the last delivery."""
    sockets = await open_sockets(stack.ws_url + CHAT_PATH, settings.group_size, settings)
    broadcast = Broadcast(len(sockets))
    readers = [
        asyncio.ensure_future(_read_into(index, socket, broadcast))
        for index, socket in enumerate(sockets)
    ]
    try:
        for n in range(settings.warmup_broadcasts):
            if await _broadcast(sockets[0], broadcast, f"warm-up {n}", settings.timeout) is None:
                raise RuntimeError(
                    f"{stack.label}: warm-up broadcast reached {broadcast.count}"
                    f" of {len(sockets)} sockets within {settings.timeout:.0f} s"
                )
        samples: list[float] = []
        timeouts = 0
        with CpuWindow(stack, probe) as cpu:
            started = time.perf_counter()
            stop_at = started + settings.duration
            while len(samples) < settings.max_broadcasts and time.perf_counter() < stop_at:
                took = await _broadcast(sockets[0], broadcast, f"b{len(samples)}", settings.timeout)
                if took is None:
                    timeouts += 1
                    break
                samples.append(took)
            seconds = time.perf_counter() - started
    finally:
        await close_sockets(sockets)
        await asyncio.gather(*readers, return_exceptions=True)
    busy = sum(samples)
    row = _row(stack, FANOUT, len(sockets) * len(samples) / busy if busy else None)
    row.add_latency(samples)
    row.correct = timeouts == 0 and broadcast.duplicates == 0
    row.figures.update(
        group_size=len(sockets),
        broadcasts=len(samples),
        timeouts=timeouts,
        duplicates=broadcast.duplicates,
        seconds=round(seconds, 4),
        **cpu.shares(seconds),
    )
    return row


def _row(stack: _harness.Stack, scenario: str, rate: float | None) -> Row:
    return Row(scenario, stack.impl, stack.label, rate, UNITS[scenario])


Scenario = Callable[[_harness.Stack, redis.Redis, Settings], Awaitable[Row]]


def run_stack(
    start: Callable[[], _harness.Stack], probe: redis.Redis, settings: Settings
) -> list[Row]:
    """Start a stack, run every scenario on it, stop it (and empty Redis)."""
    probe.flushall()
    stack = start()
    rows = []
    try:
        print(f"Measuring {stack.label} on port {stack.port}...", flush=True)
        scenarios: list[Scenario] = [echo_latency, echo_many, fanout]
        for scenario in scenarios:
            rows.append(run_scenario(scenario, stack, probe, settings))
        problems = stack.log_problems()
    finally:
        stack.stop()
        probe.flushall()
    for row in rows:
        row.figures["server_log_problems"] = problems
    return rows


def run_scenario(
    scenario: Scenario, stack: _harness.Stack, probe: redis.Redis, settings: Settings
) -> Row:
    """Run one scenario; a failure becomes a row with the error and the servers' output."""
    try:
        return asyncio.run(scenario(stack, probe, settings))
    except Exception as exc:
        name = scenario.__name__.replace("echo_many", ECHO_MANY)
        print(f"  {name} FAILED on {stack.label}: {exc!r}", flush=True)
        row = Row.failed(
            name, stack.impl, stack.label, UNITS[name], exc, server_output=stack.tails()
        )
        row.correct = False
        return row


def run_all(url: str, probe: redis.Redis, args: argparse.Namespace) -> dict[str, Any]:
    """Ours, then the anchor unless skipped or unavailable."""
    settings = Settings(duration=args.duration)
    rows = run_stack(
        lambda: _harness.start_our_stack(url, OUR_PREFIX, OUR_ROUTING), probe, settings
    )
    anchor: dict[str, Any] = {"skipped": args.skip_anchors}
    if not args.skip_anchors:
        try:
            python = _harness.MODERN_VENV.ensure(log=lambda text: print(text, flush=True))
        except _support.AnchorUnavailable as exc:
            print(f"Anchor skipped: {exc}", flush=True)
            anchor["error"] = str(exc)
        else:
            versions = _harness.anchor_versions(
                python, ["channels", "channels_redis", "daphne", "django"]
            )
            anchor["packages"] = versions
            label = f"channels {versions['channels']}: daphne + AsyncWebsocketConsumer"
            rows += run_stack(
                lambda: _harness.start_modern_stack(python, url, ANCHOR_PREFIX, label),
                probe,
                settings,
            )
    return {"settings": asdict(settings), "anchor": anchor, "results": rows}


# Report ----------------------------------------------------------------------------


def add_ratios(rows: list[Row]) -> None:
    """Figures and p50 latencies relative to the anchor's in the same scenario."""
    report.add_ratios(rows, "vs_anchor", lambda row: "anchor")
    report.add_ratios(rows, "p50_vs_anchor", lambda row: "anchor", lambda row: row.p50_ms)


COLUMNS = [
    Column("scenario", lambda row: row.scenario),
    Column("implementation", lambda row: row.label),
    report.figure_column(),
    Column("unit", lambda row: row.unit),
    Column("p50 ms", lambda row: report.fmt_number(row.p50_ms, 3)),
    Column("p99 ms", lambda row: report.fmt_number(row.p99_ms, 3)),
    report.ratio_column("vs C4", "vs_anchor"),
    report.ratio_column("p50 vs C4", "p50_vs_anchor"),
    report.share_column("server_cpu_share"),
    report.share_column("redis_cpu_share"),
    report.share_column("client_cpu_share"),
    Column("ok", report.fmt_ok),
]


def table(rows: list[Row]) -> str:
    """Format the rows, scenario by scenario, as a plain-text table."""
    order = {scenario: index for index, scenario in enumerate(SCENARIOS)}
    return report.table(rows, COLUMNS, key=lambda row: (order[row.scenario], row.impl != "ours"))


def _note(row: Row) -> str:
    if row.error:
        return f"FAILED: {row.error}"
    extra = (
        f"{row.figures['broadcasts']} broadcasts to {row.figures['group_size']} sockets"
        if row.scenario == FANOUT
        else f"{row.figures['round_trips']:,} round trips"
    )
    return f"{extra}; server CPU: {report.server_cpu_note(row)}"


def print_report(rows: list[Row], wall: float) -> None:
    """Print the table, per-scenario notes and the legend."""
    print()
    print(table(rows))
    print()
    for row in rows:
        print(f"  {row.scenario} / {row.label}: {_note(row)}")
    print("Server log lines that look like errors or warnings:")
    print("\n".join(report.log_problem_notes(rows)))
    print(
        "figure: higher is better; vs C4 = figure / Channels 4's; p50 vs C4 = p50 / Channels"
        " 4's\n(lower is better); fan-out p50/p99 = ms from the send to the last delivery;"
        "\nCPU columns = CPU time / wall time (100% = one core; the machine's cores are shared)."
    )
    print(f"Wall time {wall:.1f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    parser.add_argument("--skip-anchors", action="store_true", help="do not run Channels 4")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with _support.redis_for_benchmarks() as (url, probe, redis_version):
        found = run_all(url, probe, args)
    rows = found["results"]
    add_ratios(rows)
    wall = time.perf_counter() - started
    print_report(rows, wall)
    report.record(
        "websocket",
        settings=found["settings"],
        packages=["channels-classic", "daphne", "websockets", "redis"],
        redis_version=redis_version,
        anchor=found["anchor"],
        wall_seconds=wall,
        results=report.rows_json(rows),
    )


if __name__ == "__main__":
    main()
