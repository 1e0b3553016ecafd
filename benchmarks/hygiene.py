"""Group hygiene on the Redis layer: fan-out past dead members, the reap, the hot paths' cost.

Run from the repository root::

    python -m benchmarks.hygiene [--quick] [--no-cluster] [--baseline CHECKOUT]

or as the suite's ``hygiene`` scenario (``python -m benchmarks --only hygiene``).

Scenarios, on one Redis and on a 3-master Redis Cluster (the topologies of
:mod:`benchmarks.cluster`):

* ``fan-out 500 dead + 200 live``: a group of 700 interface-server sockets
  (``daphne.response.<r>!<s>``). 500 belong to a process that announced itself
  (one receive on its ``prefix!``, with ``process_ttl`` 2 s) and was then
  killed with SIGKILL: a daphne that died with 500 WebSockets open. 200 belong
  to 2 live layers reading their prefixes, 100 sockets each, on this process's
  event loop, as in :mod:`benchmarks.cluster`. *Before*: the dead members are
  still in the group, as without a reaper they stay until a message to them
  has waited ``expiry`` (60 s) unread, or ``group_expiry`` (a day) in a group
  nobody sends to; each send pushes them one more entry. Then, once the dead
  process's deadline has passed, one ``amaintain()`` pass reaps them, timed.
  *After*: the same broadcasts reach the 200 live members only. In each phase
  the broadcasts take turns with broadcasts to a group of the 200 live members
  alone, which never had dead ones (the control: what "after" should cost,
  under the same load). One broadcast is timed from the ``send_group`` call to
  the last live member's message; the figure is deliveries to live members
  per second at the median broadcast, p50/p99 of one.
* ``reap 500 sockets in 10 groups``: a killed process's 500 sockets, 50 in
  each of 10 groups; one ``maintain()`` pass that removes every membership
  (ms), once per round with a new process; and a pass with nothing to reap.

The hot paths the hygiene touches, on one Redis: ``group_add`` and
``group_discard`` of a socket (the ownership index), and an interface
server's receive on its ``prefix!`` (the announce, which now also writes the
process registry): once as daphne runs it (it announces once a second at
most), once announcing on every receive (the announce's own cost, made
visible). Each runs in a fresh child process; with ``--baseline CHECKOUT``
(e.g. ``git worktree add /tmp/wt_base HEAD``) the same code runs against that
checkout's ``channels``, installed in a virtualenv of its own (the anchors'
:class:`~benchmarks._support.AnchorVenv`), the two alternating round by round.

Every figure is at the median (members, or 1, over the median broadcast's or
operation's seconds): other work on a shared machine disturbs it least; the
JSON has the throughputs over busy time too. ``vs before`` is the after row's
figure over the before row's (fan-out), or ours over the baseline's (hot
paths: medians of the rounds); ``vs live only`` a fan-out row's over its
control's. No test asserts on these figures.
Prints a table and writes ``benchmarks/results/hygiene.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from benchmarks import _support, cluster, report
from benchmarks.cluster import STOP, Tally, Topology
from benchmarks.report import Column, Row
from tests.processes import ROOT, ManagedProcess

MODULE = "benchmarks.hygiene"
PREFIX = "hygiene:"
GROUP = "hygiene-fanout"
LIVE_GROUP = "hygiene-live-only"
#: The dead interface server's only line: its process channel is announced.
ANNOUNCED = "announced"
BEFORE, AFTER = "before", "after"
#: The impl suffix of a fan-out row of the live-only group.
CONTROL = "-live-only"
BASE, OURS = "ours-baseline", "ours"
#: Headline figures are at the median (members / the median broadcast's seconds,
#: 1 / the median operation's): what other work on a shared machine disturbs least.
FANOUT_UNIT = "deliveries/s"
OPS = "ops/s"
MS = "ms (lower is better)"
IDLE_PASS = "maintain pass, nothing to reap"


@dataclass
class Settings:
    """Sizes and bounds of every scenario."""

    dead_sockets: int = 500
    live_prefixes: int = 2
    live_sockets: int = 100
    broadcasts: int = 50
    warmup_broadcasts: int = 3
    broadcast_timeout: float = 10.0
    #: Room on each prefix's list: the dead one keeps every broadcast's entry.
    capacity: int = 2000
    #: The dead process's ``process_ttl`` (the least the layer accepts).
    dead_ttl: float = 2.0
    reap_groups: int = 10
    reap_rounds: int = 3
    idle_passes: int = 20
    #: Seconds of each hot-path measurement, and rounds (each side once a round).
    duration: float = 1.5
    warmup_ops: int = 200
    hot_rounds: int = 7

    @property
    def live(self) -> int:
        return self.live_prefixes * self.live_sockets

    @property
    def fanout(self) -> str:
        return f"fan-out {self.dead_sockets} dead + {self.live} live"

    @property
    def reap(self) -> str:
        return f"reap {self.dead_sockets} sockets in {self.reap_groups} groups"

    @classmethod
    def quick(cls) -> Settings:
        return cls(broadcasts=5, warmup_broadcasts=1, reap_rounds=1, duration=0.3, hot_rounds=1)


def make_layer(where: Topology, settings: Settings, **options: Any) -> Any:
    from channels.layers.redis import RedisChannelLayer

    return RedisChannelLayer(
        hosts=where.hosts,
        prefix=PREFIX,
        capacity=settings.capacity,
        cluster=where.cluster,
        **options,
    )


def _process() -> str:
    return f"daphne.response.{secrets.token_hex(6)}!"


# The dead interface server ------------------------------------------------------------


def dead_server(config: dict[str, Any]) -> None:
    """Announce *config*'s process channel with one receive, say so, then hang until killed."""
    where = Topology("", "", config["hosts"], config["cluster"], [])
    layer = make_layer(where, Settings(), process_ttl=config["ttl"])
    layer.receive([config["process"]], block=True, timeout=0.05)
    print(ANNOUNCED, flush=True)
    time.sleep(120)  # bounded: the parent kills it within seconds


_DEAD_SERVER = (
    "import json, sys; from benchmarks import hygiene; hygiene.dead_server(json.loads(sys.argv[1]))"
)


class DeadServer:
    """A child process that announced *process*, to be killed with SIGKILL."""

    def __init__(self, where: Topology, settings: Settings) -> None:
        self.process = _process()
        self.ttl = settings.dead_ttl
        config = {
            "hosts": where.hosts,
            "cluster": where.cluster,
            "process": self.process,
            "ttl": self.ttl,
        }
        self.child = ManagedProcess(
            [sys.executable, "-c", _DEAD_SERVER, json.dumps(config)], os.environ, ROOT, "daphne"
        )
        try:
            self.child.wait_for(f"^{ANNOUNCED}$", timeout=30)
        except BaseException:
            self.child.stop()
            raise
        #: The announce ran before the line: the process's deadline is before this + ttl.
        self.announced = time.monotonic()

    def members(self, count: int) -> list[str]:
        return [f"{self.process}{n:04x}{secrets.token_hex(4)}" for n in range(count)]

    def kill(self) -> None:
        if self.child.process.poll() is None:
            self.child.signal(signal.SIGKILL)
        self.child.wait(10)

    def until_dead(self) -> float:
        """Seconds left until the process's deadline has surely passed."""
        return max(0.0, self.announced + self.ttl + 0.1 - time.monotonic())


# Fan-out past dead members --------------------------------------------------------------


async def _serve(layer: Any, process: str, tally: Tally) -> None:
    """One live interface server's receive loop on its ``prefix!``, until told to stop."""
    while True:
        channel, message = await layer.areceive([process], block=True, timeout=1)
        if channel is None:
            continue
        if message["n"] == STOP:
            return
        tally.got(channel, message["n"])


async def _count(layer: Any, group: str) -> int:
    if hasattr(layer, "agroup_count"):
        return int(await layer.agroup_count(group))
    return len(await layer.agroup_channels(group))


@dataclass
class Broadcaster:
    """Group sends from *sender*, each timed until every live member has its message."""

    where: Topology
    settings: Settings
    sender: Any
    live: int
    tally: Tally
    sent: int = 0

    async def broadcast(self, group: str) -> tuple[float, float]:
        """Return the seconds to the last live member's message, and of the call itself."""
        self.sent += 1
        n, tally, timeout = self.sent, self.tally, self.settings.broadcast_timeout
        tally.expect(n)
        started = time.perf_counter()
        await self.sender.asend_group(group, {"type": "chat.message", "text": "hello", "n": n})
        called = time.perf_counter()
        try:
            await asyncio.wait_for(tally.done.wait(), timeout)
        except TimeoutError:
            raise RuntimeError(
                f"broadcast {n} reached {len(tally.received)} of {self.live} live members "
                f"within {timeout:.0f} s"
            ) from None
        return tally.finished_at - started, called - started

    async def phase(self, name: str) -> list[Row]:
        """Time sends to the group and to the live-only one, taking turns: two rows.

        Taking turns, the two see the same machine: their ratio holds while
        other work on it comes and goes.
        """
        groups = {name: GROUP, f"{name}{CONTROL}": LIVE_GROUP}
        for _ in range(self.settings.warmup_broadcasts):
            for group in groups.values():
                await self.broadcast(group)
        members = {impl: await _count(self.sender, group) for impl, group in groups.items()}
        timed: dict[str, list[tuple[float, float]]] = {impl: [] for impl in groups}
        for _ in range(self.settings.broadcasts):
            for impl, group in groups.items():
                timed[impl].append(await self.broadcast(group))
        return [self._row(impl, members[impl], timed[impl]) for impl in groups]

    def _row(self, name: str, members: int, timed: list[tuple[float, float]]) -> Row:
        samples = [took for took, _ in timed]
        busy = sum(samples)
        control = name.endswith(CONTROL)
        label = f"{name.removesuffix(CONTROL)} the reap, " + (
            f"{self.live} live only" if control else "the group"
        )
        return Row(
            self.settings.fanout,
            f"{self.where.impl}-{name}",
            f"{self.where.label}, {label}",
            self.live / statistics.median(samples),
            FANOUT_UNIT,
            correct=self.tally.duplicates == 0 and self.tally.strays == 0,
            figures={
                "members": members,
                "broadcasts": len(samples),
                "throughput": self.live * len(samples) / busy if busy else None,
                "send_group_p50_ms": round(1000 * statistics.median(s for _, s in timed), 4),
                "duplicates": self.tally.duplicates,
                "strays": self.tally.strays,
                "seconds": round(busy, 6),
            },
        ).add_latency(samples)


async def fanout(where: Topology, settings: Settings) -> list[Row]:
    """Broadcast with the dead members in, reap them with one pass, broadcast again.

    Each phase takes turns with a group of the live members alone, which
    never had dead ones: the figure the group should match after the reap.
    """
    sender = make_layer(where, settings)
    sender.maintain_interval = 0
    servers = [make_layer(where, settings) for _ in range(settings.live_prefixes)]
    processes = [_process() for _ in servers]
    live = [f"{p}{secrets.token_hex(8)}" for p in processes for _ in range(settings.live_sockets)]
    tally = Tally(len(live))
    readers: list[asyncio.Future[None]] = []
    dead = DeadServer(where, settings)
    try:
        for member in live:
            await sender.agroup_add(LIVE_GROUP, member)
        for member in [*live, *dead.members(settings.dead_sockets)]:
            await sender.agroup_add(GROUP, member)
        if hasattr(sender, "amaintain"):
            # A live process runs it every second: its connections and scripts are warm.
            await sender.amaintain()
        dead.kill()
        readers = [
            asyncio.ensure_future(_serve(layer, process, tally))
            for layer, process in zip(servers, processes, strict=True)
        ]
        sends = Broadcaster(where, settings, sender, len(live), tally)
        rows = await sends.phase(BEFORE)
        try:
            rows += await _reap_then(sends, dead)
        except Exception as exc:  # the before figures stand on their own
            rows += [
                Row.failed(settings.fanout, impl, label, FANOUT_UNIT, exc)
                for impl, label in fanout_rows(where, settings)[2:]
            ]
        return rows
    finally:
        dead.kill()
        for process in processes:
            await sender.asend(process + "stop", {"n": STOP})
        await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), 10)
        for layer in (sender, *servers):
            await layer.aclose()


def fanout_rows(where: Topology, settings: Settings) -> list[tuple[str, str]]:
    """The (impl, label) of the fan-out's rows, for those that failed."""
    return [
        (f"{where.impl}-{name}{suffix}", f"{where.label}, {name} the reap, {what}")
        for name in (BEFORE, AFTER)
        for suffix, what in (("", "the group"), (CONTROL, f"{settings.live} live only"))
    ]


async def _reap_then(sends: Broadcaster, dead: DeadServer) -> list[Row]:
    """Once *dead*'s deadline has passed, reap it with one timed pass; then broadcast again."""
    sender, live = sends.sender, sends.live
    if not hasattr(sender, "amaintain"):
        raise RuntimeError("this layer has no amaintain(): nothing reaps dead members here")
    await asyncio.sleep(dead.until_dead())
    started = time.perf_counter()
    await sender.amaintain()
    reap_ms = 1000 * (time.perf_counter() - started)
    left = await _count(sender, GROUP)
    if left != live:
        raise RuntimeError(
            f"one amaintain() pass left {left} members of {live} live + "
            f"{sends.settings.dead_sockets} dead, not {live}"
        )
    rows = await sends.phase(AFTER)
    rows[0].figures["reap_ms"] = round(reap_ms, 3)
    return rows


# The reap itself --------------------------------------------------------------------------


def reap(where: Topology, settings: Settings) -> list[Row]:
    """Time one ``maintain()`` pass reaping a killed process's sockets, round after round."""
    layer = make_layer(where, settings)
    if not hasattr(layer, "maintain"):
        layer.close()
        raise RuntimeError("this layer has no maintain(): nothing reaps dead members here")
    layer.maintain_interval = 0
    reaps: list[float] = []
    idle: list[float] = []
    try:
        layer.maintain()  # warm, as a live process's is: it runs one every second
        for round_ in range(settings.reap_rounds):
            groups = [f"reap-{round_}-{g}" for g in range(settings.reap_groups)]
            dead = DeadServer(where, settings)
            try:
                for n, member in enumerate(dead.members(settings.dead_sockets)):
                    layer.group_add(groups[n % len(groups)], member)
            finally:
                dead.kill()
            time.sleep(dead.until_dead())
            started = time.perf_counter()
            layer.maintain()
            reaps.append(time.perf_counter() - started)
            left = sum(layer.group_count(group) for group in groups)
            if left:
                raise RuntimeError(f"one maintain() pass left {left} of the dead memberships")
            for _ in range(settings.idle_passes):
                started = time.perf_counter()
                layer.maintain()
                idle.append(time.perf_counter() - started)
    finally:
        layer.close()
    rows = []
    for scenario, samples in ((settings.reap, reaps), (IDLE_PASS, idle)):
        row = Row(scenario, where.impl, where.label, 1000 * statistics.median(samples), MS)
        rows.append(row.add_latency(samples))
    rows[0].figures["memberships"] = settings.dead_sockets
    return rows


# The hot paths, against a baseline checkout --------------------------------------------


HOT_PATHS = (
    "group_add (process channel)",
    "group_discard (process channel)",
    "process receive (as daphne)",
    "process receive, announcing each",
)


def hot_paths(url: str, settings: Settings) -> list[Row]:
    """Time each hot path with whatever ``channels`` this interpreter imports."""
    where = Topology(OURS, "", [url], False, [])
    layer = make_layer(where, settings)
    process = _process()
    groups = [f"hot-{n}" for n in range(10)]
    added: list[str] = []  # socket k is in group k % 10

    def add(n: int) -> None:
        member = f"{process}{len(added):x}"
        layer.group_add(groups[len(added) % 10], member)
        added.append(member)

    def discard(n: int) -> None:
        k = n % len(added)  # the warm-up's n are negative: the last sockets added
        layer.group_discard(groups[k % 10], added[k])

    duration, warmup = settings.duration, settings.warmup_ops
    try:
        adds = _support.measure(
            add, duration=duration, max_ops=10**7, warmup_ops=warmup, keep_samples=True
        )
        discards = _support.measure(
            discard,
            duration=duration,
            max_ops=len(added) - warmup,
            warmup_ops=warmup,
            keep_samples=True,
        )
    finally:
        layer.close()
    measured = [(HOT_PATHS[0], adds), (HOT_PATHS[1], discards)]
    measured += asyncio.run(_receives(where, settings))
    return [
        Row(
            name, OURS, "", 1 / statistics.median(run.samples), OPS, figures=run.summary()
        ).add_latency(run.samples)
        for name, run in measured
    ]


async def _receives(where: Topology, settings: Settings) -> list[tuple[str, _support.Measurement]]:
    layer = make_layer(where, settings)
    process = _process()
    channel = process + "socket"
    message = {"type": "websocket.send", "text": "hello"}

    async def round_trip(n: int) -> None:
        await layer.asend(channel, message)
        got, _ = await layer.areceive([process], block=True, timeout=1)
        if got != channel:
            raise RuntimeError(f"the receive on {process!r} returned {got!r}")

    measured = []
    try:
        for name in HOT_PATHS[2:]:
            if name == HOT_PATHS[3]:
                layer._liveness.refresh_interval = 0.0  # every receive announces
            run = await _support.ameasure(
                round_trip,
                duration=settings.duration,
                max_ops=10**7,
                warmup_ops=settings.warmup_ops,
                keep_samples=True,
            )
            measured.append((name, run))
    finally:
        await layer.aclose()
    return measured


def _hot_paths_child(url: str, settings: Settings) -> None:
    import channels

    rows = hot_paths(url, settings)
    print(json.dumps({"channels": channels.__file__, "rows": report.rows_json(rows)}))


def _baseline_venv(checkout: Path) -> tuple[_support.AnchorVenv, str]:
    """A virtualenv with *checkout*'s channels installed (one per commit), and the commit."""
    commit = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return _support.AnchorVenv(f"hygiene-base-{commit}", [str(checkout)], ["channels"]), commit


def _child_args(url: str, settings: Settings) -> list[str]:
    return ["--hot-paths-json", url, "--duration", str(settings.duration)]


def compare_hot_paths(
    probe: redis.Redis, url: str, settings: Settings, baseline: Path | None
) -> tuple[list[Row], dict[str, Any]]:
    """Run the hot paths in fresh children, ours and (if given) the baseline's, alternating."""
    venv, commit = _baseline_venv(baseline) if baseline else (None, None)
    python = venv.ensure() if venv else None
    args = _child_args(url, settings)
    sides = [OURS, BASE] if venv else [OURS]
    runs: dict[str, list[list[Row]]] = {side: [] for side in sides}
    imported: dict[str, str] = {}
    for round_ in range(settings.hot_rounds):
        for side in sides[:: 1 if round_ % 2 else -1]:  # who goes first alternates
            probe.flushall()
            done = venv.run_json(MODULE, args, 600) if venv and side == BASE else _run_ours(args)
            imported[side] = done["channels"]
            runs[side].append([Row.from_json(row) for row in done["rows"]])
    probe.flushall()
    labels = {OURS: "this tree", BASE: f"baseline {commit} ({baseline})"}
    rows = [
        _median_row(side, labels[side], name, runs[side]) for side in sides for name in HOT_PATHS
    ]
    info = {"imported": imported, "baseline_commit": commit, "baseline_python": str(python)}
    return rows, info


def _run_ours(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", MODULE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the hot-path child exited {done.returncode}:\n{done.stderr[-2000:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def _median_row(side: str, label: str, name: str, rounds: Sequence[list[Row]]) -> Row:
    """One hot path's row over *rounds*: the median of each figure."""
    mine = [row for rows in rounds for row in rows if row.scenario == name]
    rates = [row.rate or 0.0 for row in mine]

    def median(values: Sequence[float | None]) -> float | None:
        present = [value for value in values if value is not None]
        return statistics.median(present) if present else None

    return Row(
        name,
        side,
        label,
        median(rates),
        OPS,
        p50_ms=median([row.p50_ms for row in mine]),
        p99_ms=median([row.p99_ms for row in mine]),
        figures={"rounds": len(mine), "rates": [round(r) for r in rates], "best": max(rates)},
    )


# Running it all -----------------------------------------------------------------------------


def run_topology(where: Topology, settings: Settings) -> list[Row]:
    """The fan-out and the reap on one topology; a failure fails its rows only."""
    rows: list[Row] = []
    passes = [settings.reap, IDLE_PASS]
    scenarios: list[tuple[list[tuple[str, str, str, str]], Callable[[], list[Row]]]] = [
        (
            [(settings.fanout, *row, FANOUT_UNIT) for row in fanout_rows(where, settings)],
            lambda: asyncio.run(fanout(where, settings)),
        ),
        (
            [(name, where.impl, where.label, MS) for name in passes],
            lambda: reap(where, settings),
        ),
    ]
    for shape, run in scenarios:
        where.flush()
        try:
            rows += run()
        except Exception as exc:  # one failed scenario must not lose the others' figures
            print(f"{where.label}: {shape[0][0]} FAILED: {exc!r}", flush=True)
            rows += [Row.failed(name, impl, label, unit, exc) for name, impl, label, unit in shape]
    where.flush()
    return rows


def add_ratios(rows: Sequence[Row]) -> None:
    """Set ``vs_before`` and ``vs_live_only`` (see the module's docstring)."""

    def before(row: Row) -> str | None:
        if row.impl.endswith("-" + AFTER):
            return row.impl.removesuffix(AFTER) + BEFORE
        return BASE if row.impl == OURS else None

    def live_only(row: Row) -> str | None:
        return row.impl + CONTROL if row.impl.endswith((BEFORE, AFTER)) else None

    report.add_ratios(rows, "vs_before", before)
    report.add_ratios(rows, "vs_live_only", live_only)
    report.add_ratios(rows, "best_vs_before", before, lambda row: row.figures.get("best"))


def run_all(
    url: str,
    probe: redis.Redis,
    settings: Settings,
    *,
    baseline: Path | None = None,
    with_cluster: bool = True,
) -> dict[str, Any]:
    """Every scenario on the one Redis at *url*, then (if asked) on a 3-master cluster."""
    started = time.perf_counter()
    rows = run_topology(cluster.single(url, probe), settings)
    if with_cluster:
        try:
            with cluster.three_masters() as masters:
                rows += run_topology(masters, settings)
        except Exception as exc:  # the cluster failed as a whole: keep the single Redis's figures
            print(f"The Redis Cluster failed: {exc!r}", flush=True)
    hot_info: dict[str, Any] = {}
    try:
        hot, hot_info = compare_hot_paths(probe, url, settings, baseline)
        rows += hot
    except Exception as exc:  # keep the fan-out and reap figures
        print(f"The hot paths FAILED: {exc!r}", flush=True)
        rows += [Row.failed(name, OURS, "this tree", OPS, exc) for name in HOT_PATHS]
    add_ratios(rows)
    print()
    print(table(rows))
    print()
    print("\n".join(notes(rows)))
    return {
        "settings": asdict(settings),
        "hot_paths": {**hot_info, "baseline": str(baseline) if baseline else None},
        "results": rows,
        "wall_seconds": round(time.perf_counter() - started, 3),
    }


def suite_lines(rows: Sequence[Row]) -> list[Row]:
    """The rows as lines of the suite's table: ``hygiene: <scenario>``."""
    return [
        Row(
            f"hygiene: {row.scenario}",
            row.impl if row.impl.startswith("ours") else f"ours-{row.impl}",
            row.label,
            None if row.error else row.rate,
            row.unit,
            p50_ms=row.p50_ms,
            p99_ms=row.p99_ms,
            error=row.error,
            figures={"lower_is_better": row.unit == MS},
        )
        for row in rows
    ]


# Report ---------------------------------------------------------------------------------


COLUMNS = [
    Column("scenario", lambda row: row.scenario),
    Column("measured", lambda row: row.label),
    Column(
        "figure",
        lambda row: (
            "FAILED" if row.error else report.fmt_number(row.rate, 2 if row.unit == MS else 0)
        ),
    ),
    Column("unit", lambda row: row.unit),
    Column("p50 ms", lambda row: report.fmt_number(row.p50_ms, 3)),
    Column("p99 ms", lambda row: report.fmt_number(row.p99_ms, 3)),
    report.ratio_column("vs before", "vs_before"),
    report.ratio_column("vs live only", "vs_live_only"),
]


def table(rows: Sequence[Row]) -> str:
    return report.table(rows, COLUMNS)


def notes(rows: Sequence[Row]) -> list[str]:
    """Members in each fan-out group, the reap inside it, delivery checks, hot-path rounds."""
    lines = ["Fan-out (deliveries to live members; p50 = one broadcast, send_group to the last):"]
    for row in rows:
        figures = row.figures
        if "members" not in figures or row.error:
            continue
        verdict = (
            "ok"
            if row.correct
            else f"WRONG: {figures['duplicates']} dup., {figures['strays']} strays"
        )
        reaped = f"; the reap before it {figures['reap_ms']:.1f} ms" if "reap_ms" in figures else ""
        lines.append(
            f"  {row.label}: {figures['members']} members; delivery {verdict};"
            f" send_group call p50 {figures['send_group_p50_ms']:.2f} ms{reaped}"
        )
    hot = [row for row in rows if "rates" in row.figures]
    if hot:
        lines.append("Hot paths, ops/s of each round (the best rounds': ours / the baseline):")
    for row in hot:
        best = row.ratios.get("best_vs_before")
        ratio = f" ({report.fmt_ratio(best)})" if best else ""
        lines.append(f"  {row.scenario}, {row.label}: {row.figures['rates']}{ratio}")
    lines += report.failure_notes(rows)
    lines.append(
        "vs before = after / before the reap (fan-out), this tree / the baseline (hot paths:"
        "\nmedians of the rounds, one fresh child process per side and round, sides alternating);"
        "\nvs live only = the group / the live-only group, their broadcasts taking turns."
    )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short durations, a smoke run")
    parser.add_argument("--broadcasts", type=int, default=50, help="timed fan-outs per phase")
    parser.add_argument("--duration", type=float, default=1.5, help="seconds per hot-path run")
    parser.add_argument("--no-cluster", action="store_true", help="one Redis only")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout (git worktree add /tmp/wt_base HEAD) to time the hot paths against",
    )
    parser.add_argument("--hot-paths-json", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings(broadcasts=args.broadcasts)
    if not args.quick:
        settings.duration = args.duration
    if args.hot_paths_json:
        settings.duration = args.duration
        _hot_paths_child(args.hot_paths_json, settings)
        return
    started = time.perf_counter()
    with _support.redis_for_benchmarks() as (url, probe, redis_version):
        part = run_all(
            url, probe, settings, baseline=args.baseline, with_cluster=not args.no_cluster
        )
    wall = time.perf_counter() - started
    print(report.cpu_line(time.process_time(), None, wall))
    report.record(
        "hygiene",
        settings={**part.pop("settings"), "quick": args.quick},
        packages=["channels-classic", "redis", "hiredis"],
        redis_version=redis_version,
        hot_paths=part.pop("hot_paths"),
        wall_seconds=wall,
        results=report.rows_json(part.pop("results")),
    )


if __name__ == "__main__":
    main()
