"""WebSocket clients held open by an event loop on a thread, for sync tests of real servers.

:class:`Fleet` reads every socket all the time (and answers the server's
pings), whatever the test's thread is waiting for; tests/test_group_hygiene.py
and tests/test_drain.py open hundreds of sockets through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

T = TypeVar("T")

#: Sockets opened at once: each handshake waits for its websocket.connect consumer,
#: and the channel holds 100 messages (the test project's capacity).
OPEN_BATCH = 50
#: Seconds one batch of handshakes (and their first frames) may take.
OPEN_TIMEOUT = 60.0


@dataclass
class Client:
    """One open WebSocket, the frames it has received, and how it closed."""

    path: str
    connection: ClientConnection
    reply_channel: str = ""
    frames: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    close_code: int | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class Fleet:
    """WebSocket clients kept open by an event loop on a thread, driven from a sync test.

    The loop reads every socket all the time (and answers the server's pings),
    whatever the test's thread is waiting for.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.clients: list[Client] = []
        self._readers: set[asyncio.Future[None]] = set()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def open(self, port: int, paths: Sequence[str]) -> list[Client]:
        """Open a socket to each of *paths*; return them once each knows its reply channel."""
        opened: list[Client] = []
        for start in range(0, len(paths), OPEN_BATCH):
            batch = paths[start : start + OPEN_BATCH]
            opened += self.run(self._open_all(port, batch), OPEN_TIMEOUT + 5)
        return opened

    async def _open_all(self, port: int, paths: Sequence[str]) -> list[Client]:
        opening = asyncio.gather(*(self._open(port, path) for path in paths))
        return await asyncio.wait_for(opening, OPEN_TIMEOUT)

    async def _open(self, port: int, path: str) -> Client:
        connection = await connect(
            f"ws://127.0.0.1:{port}{path}", open_timeout=OPEN_TIMEOUT, max_queue=None
        )
        client = Client(path, connection)
        self.clients.append(client)
        client.reply_channel = json.loads(await connection.recv())["reply_channel"]
        self._readers.add(asyncio.ensure_future(self._read(client)))
        return client

    @staticmethod
    async def _read(client: Client) -> None:
        try:
            async for frame in client.connection:
                await client.frames.put(str(frame))
        except ConnectionClosed:
            pass
        finally:
            client.close_code = client.connection.close_code
            client.closed.set()

    def frame(self, client: Client, timeout: float = 20) -> str:
        """Return the next frame *client* receives (fail after *timeout*)."""

        async def next_frame() -> str:
            return await asyncio.wait_for(client.frames.get(), timeout)

        return self.run(next_frame(), timeout + 5)

    def close(self, client: Client) -> None:
        """Close *client*'s socket from its side and wait until it is closed."""
        self.run(client.connection.close(), 20)
        self.run(client.closed.wait(), 20)

    def wait_closed(self, clients: Sequence[Client], timeout: float = 20) -> list[int | None]:
        """Wait until every one of *clients* is closed; return their close codes."""

        async def all_closed() -> None:
            await asyncio.wait_for(
                asyncio.gather(*(client.closed.wait() for client in clients)), timeout
            )

        self.run(all_closed(), timeout + 5)
        return [client.close_code for client in clients]

    def stop(self) -> None:
        async def close_all() -> None:
            await asyncio.gather(
                *(client.connection.close() for client in self.clients), return_exceptions=True
            )

        with contextlib.suppress(Exception):
            self.run(close_all(), 30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def counts(layer: Any, names: Sequence[str], method: str) -> list[int]:
    return [getattr(layer, method)(name) for name in names]
