"""HTTP load generation: ``wrk`` if installed, else a small asyncio keep-alive client.

Both report requests/s, latency percentiles, errors and the load generator's
own CPU seconds (it shares the machine's cores with the servers). The
fallback client runs in a subprocess, like wrk, so its CPU time is measured
the same way::

    python -m benchmarks._loadgen URL --connections 32 --duration 10

prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import shutil
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from benchmarks import _harness, _support, report

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
#: A duration as wrk prints it, e.g. ``15.67ms``: (number, unit).
_TIME = r"([\d.]+)(us|ms|s|m|h)"


def wrk_path() -> str | None:
    """Return the ``wrk`` executable, or None."""
    return shutil.which("wrk")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(args: list[str], timeout: float) -> tuple[str, float, float]:
    """Run a load generator; return (stdout, wall seconds, its CPU seconds)."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=_support.REPO_ROOT,
        env={**_harness.clean_environ(), "PYTHONPATH": str(_support.REPO_ROOT)},
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout, wall, _children_cpu() - cpu_before


# wrk -------------------------------------------------------------------------------


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    """Pull requests, requests/s, latency percentiles and errors out of wrk's report."""
    result: dict[str, Any] = {}
    for label, key in (("50%", "p50_ms"), ("90%", "p90_ms"), ("99%", "p99_ms")):
        found = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M)
        result[key] = _to_ms(*found.groups()) if found else None
    found = re.search(rf"^\s*Latency\s+{_TIME}\s+{_TIME}\s+{_TIME}", output, re.M)
    if found:
        result["mean_ms"] = _to_ms(found[1], found[2])
        result["max_ms"] = _to_ms(found[5], found[6])
    found = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output)
    if found:
        result["requests"] = int(found[1])
        result["seconds"] = _to_ms(found[2], found[3]) / 1000
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    result["rps"] = float(found[1]) if found else None
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    result["socket_errors"] = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True))
        if errors
        else {}
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(non_2xx[1]) if non_2xx else 0
    return result


def run_wrk(url: str, connections: int, duration: float, threads: int = 2) -> dict[str, Any]:
    """Run ``wrk -t<threads> -c<connections> -d<duration>s --latency URL``."""
    wrk = wrk_path()
    assert wrk is not None
    args = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s"]
    args += ["--latency", url]
    output, wall, cpu = run_child(args, timeout=duration + 60)
    return {
        "tool": "wrk",
        "command": " ".join(["wrk", *args[1:]]),
        **parse_wrk(output),
        "loadgen_cpu_seconds": round(cpu, 3),
        "loadgen_wall_seconds": round(wall, 3),
        "raw": output,
    }


# The asyncio fallback --------------------------------------------------------------


class _Client:
    """One keep-alive connection sending GET requests one after another."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port = host, port
        self.request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None

    async def get(self) -> int:
        """Send one request and read its response; return the status."""
        if self.writer is None:
            await self._connect()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        }
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            await self._read_chunks()
        else:  # the body ends with the connection
            await self.reader.read()
            await self.close()
            return status
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status

    async def _read_chunks(self) -> None:
        assert self.reader is not None
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await self.reader.readexactly(size + 2)
            if size == 0:
                return


async def http_load(url: str, connections: int, duration: float) -> dict[str, Any]:
    """Keep *connections* clients busy for *duration* seconds; return the figures."""
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    samples: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    stop_at = time.perf_counter() + duration

    async def run_one() -> None:
        client = _Client(host, port, path)
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                try:
                    status = await asyncio.wait_for(client.get(), 10)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    errors.append(type(exc).__name__)
                    await client.close()
                    continue
                samples.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(run_one() for _ in range(connections)))
    seconds = time.perf_counter() - started
    non_2xx = sum(count for status, count in statuses.items() if not 200 <= status < 400)
    latency = report.latency_summary(samples)
    return {
        "requests": len(samples),
        "seconds": seconds,
        "rps": len(samples) / seconds,
        "p50_ms": latency["p50_ms"],
        "p90_ms": latency["p90_ms"],
        "p99_ms": latency["p99_ms"],
        "max_ms": latency["max_ms"],
        "non_2xx": non_2xx,
        "socket_errors": {name: errors.count(name) for name in set(errors)},
    }


def run_fallback(url: str, connections: int, duration: float) -> dict[str, Any]:
    """Run :func:`http_load` in a subprocess (``python -m benchmarks._loadgen``)."""
    args = [sys.executable, "-m", "benchmarks._loadgen", url]
    args += ["--connections", str(connections), "--duration", str(duration)]
    output, wall, cpu = run_child(args, timeout=duration + 60)
    return {
        "tool": "asyncio keep-alive client",
        "command": "python -m benchmarks._loadgen " + " ".join(args[3:]),
        **json.loads(output.strip().splitlines()[-1]),
        "loadgen_cpu_seconds": round(cpu, 3),
        "loadgen_wall_seconds": round(wall, 3),
    }


def load(
    url: str, connections: int, duration: float, force_fallback: bool = False
) -> dict[str, Any]:
    """Load *url* with wrk, or with the asyncio client if wrk is missing (or asked)."""
    if wrk_path() is not None and not force_fallback:
        return run_wrk(url, connections, duration)
    return run_fallback(url, connections, duration)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="asyncio HTTP/1.1 keep-alive load generator")
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(http_load(args.url, args.connections, args.duration))))


if __name__ == "__main__":
    main()
