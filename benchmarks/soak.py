"""Soak: many WebSocket clients in many rooms chatting through daphne + runworkers + Redis.

Every message a client sends must reach every member of its room exactly once.
Prints messages sent, delivered, lost and duplicated, delivery latency
p50/p99, peak RSS of every server process, and the Redis keys left once all
clients have gone and expiry has passed.

Run it with ``python -m benchmarks.soak`` (1000 clients in 50 rooms for 60 s;
``--clients``, ``--rooms``, ``--duration`` to change that).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import statistics
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
import websockets

from benchmarks import report
from tests.interface import deploy
from tests.processes import rss_kib
from tests.redis_server import RedisServer
from tests.waiting import WaitTimeout, wait_until

ROUTING = "tests.project.rooms.channel_routing"


@dataclass
class SoakResult:
    clients: int
    rooms: int
    duration: float
    sent: int = 0
    expected_deliveries: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    rss_growth_last_half_mb: dict[str, float] = field(default_factory=dict)
    redis_keys_left: list[str] = field(default_factory=list)
    connect_failures: int = 0


def rss_mb(pid: int) -> float:
    """Resident memory of process *pid* in MiB (0.0 once it is gone)."""
    return rss_kib(pid) / 1024


class MemorySampler(threading.Thread):
    """Sample the RSS of the server processes once a second."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            self.samples.append(
                (time.monotonic(), {name: rss_mb(pid) for name, pid in self.pids.items()})
            )


async def client(
    url: str, room: int, index: int, start: float, stop: float, interval: float, log: dict
) -> None:
    """Send a message every *interval* seconds until *stop*; record what arrives."""
    async with websockets.connect(f"{url}/room/r{room}/", open_timeout=60, max_queue=None) as ws:
        received: Counter[str] = log["received"][index]

        async def reader() -> None:
            async for text in ws:
                ident, sent_at = text.split("|")
                received[ident] += 1
                log["latencies"].append(time.time() - float(sent_at))

        reading = asyncio.ensure_future(reader())
        log["ready"].release()
        await asyncio.sleep(max(0.0, start - time.monotonic()) + random.random() * interval)
        n = 0
        while time.monotonic() < stop:
            ident = f"{index}-{n}"
            log["sent"].append((ident, room))
            await ws.send(f"{ident}|{time.time()}")
            n += 1
            await asyncio.sleep(interval)
        await log["finished"].wait()  # every client keeps reading until all are quiet
        reading.cancel()


async def drive(url: str, clients: int, rooms: int, duration: float, interval: float) -> dict:
    log: dict[str, Any] = {
        "sent": [],
        "received": [Counter() for _ in range(clients)],
        "latencies": [],
        "ready": asyncio.Semaphore(0),
        "finished": asyncio.Event(),
    }
    start = time.monotonic() + 10 + clients / 100  # everyone connects before anyone talks
    stop = start + duration
    tasks = []
    for index in range(clients):
        tasks.append(
            asyncio.ensure_future(client(url, index % rooms, index, start, stop, interval, log))
        )
        if index % 50 == 49:
            await asyncio.sleep(0.2)
    await asyncio.sleep(max(0.0, stop - time.monotonic()))
    # Drain: wait until nothing has arrived anywhere for a few seconds (bounded); what is
    # still missing after that is counted as lost.
    seen = [-1]

    def quiet() -> bool:
        total = len(log["latencies"])
        still, seen[0] = total == seen[0], total
        return still

    with contextlib.suppress(WaitTimeout):
        await asyncio.to_thread(wait_until, quiet, 60, "deliveries still arriving", interval=3)
    log["finished"].set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    log["connect_failures"] = sum(isinstance(r, BaseException) for r in results)
    log["members"] = {
        room: [i for i in range(clients) if i % rooms == room] for room in range(rooms)
    }
    return log


def run_soak(
    clients: int = 1000,
    rooms: int = 50,
    duration: float = 60.0,
    interval: float = 5.0,
    workers: int = 2,
) -> SoakResult:
    """Start Redis, daphne and workers; run the chat; check every delivery."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    redis_server = RedisServer().start()
    prefix = "soak:"
    result = SoakResult(clients, rooms, duration)
    deployment = deploy(
        "daphne",
        ROUTING,
        redis_url=redis_server.url,
        prefix=prefix,
        workers=workers,
        CHANNELS_TEST_CAPACITY="1000",
    )
    try:
        pids = {"redis": redis_server.process.pid}
        pids |= {f"process-{i}": p.process.pid for i, p in enumerate(deployment.processes)}
        sampler = MemorySampler(pids)
        sampler.start()
        log = asyncio.run(
            drive(f"ws://127.0.0.1:{deployment.port}", clients, rooms, duration, interval)
        )
        sampler.stopping.set()
        sampler.join(5)
        result.connect_failures = log["connect_failures"]
        for ident, room in log["sent"]:
            for member in log["members"][room]:
                count = log["received"][member][ident]
                result.expected_deliveries += 1
                result.delivered += min(count, 1)
                result.lost += count == 0
                result.duplicated += max(count - 1, 0)
        result.sent = len(log["sent"])
        if log["latencies"]:
            ordered = sorted(log["latencies"])
            result.latency_p50_ms = round(statistics.median(ordered) * 1000, 2)
            result.latency_p99_ms = round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2)
        for name in pids:
            values = [sample[name] for _, sample in sampler.samples]
            if values:
                result.peak_rss_mb[name] = round(max(values), 1)
                half = values[len(values) // 2 :]
                result.rss_growth_last_half_mb[name] = round(half[-1] - half[0], 1)
        # Every client has gone: groups empty, and unread lists expire.
        client = redis.Redis.from_url(redis_server.url)
        keys: list[str] = []

        # The processes still running say so (<prefix>alive:/seen:, their registry
        # hygiene:), and closed sockets are remembered as released a while
        # (presence-released:): all expire by themselves.
        liveness = tuple(
            prefix + name for name in ("alive:", "seen:", "hygiene:", "presence-released:")
        )

        def keys_gone() -> bool:
            found = (k.decode() for k in client.scan_iter(match=prefix + "*"))
            keys[:] = sorted(k for k in found if not k.startswith(liveness))
            return keys in ([], [prefix + "stats"])

        with contextlib.suppress(WaitTimeout):
            wait_until(keys_gone, 30, "Redis keys left", interval=0.5)
        client.close()
        result.redis_keys_left = [k for k in keys if k != prefix + "stats"]
    finally:
        deployment.stop()
        redis_server.cleanup()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between messages")
    args = parser.parse_args(argv)
    started = time.monotonic()
    result = run_soak(args.clients, args.rooms, args.duration, args.interval)
    for key, value in asdict(result).items():
        print(f"{key:26} {value}")
    print(f"wall time {time.monotonic() - started:.1f} s")
    out = report.RESULTS_DIR / "soak.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(asdict(result), indent=1))


if __name__ == "__main__":
    main()
