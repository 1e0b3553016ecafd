"""The consumers of tests/test_rolling_restart.py and tests/test_worker_recycle.py.

Each takes a little time, as real work does (5 to 20 ms, from the message's
number), so that a worker told to stop under load holds messages in flight.
Every reply names the worker process that made it.

``http.request`` ``/echo/<client>/<n>/``
    a plain consumer: answers ``<client>:<n>:<pid>`` (its reply goes out with
    the worker's next receive: ``poll_with_sends``);
``websocket.receive`` ``<client>:<n>``
    an ``async def`` consumer: echoes ``<client>:<n>:<pid>``;
``recycle.work``
    replies ``{"n": n, "pid": pid}`` to the message's ``reply_channel``;
``recycle.hang``
    says ``{"started": pid}`` at once, then never returns (for the stop timeout).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

from channels.routing import route


def work_seconds(n: int) -> float:
    """5 to 20 ms, different for neighbouring messages."""
    return (5 + n % 16) / 1000


def http_echo(message: Any) -> None:
    _, _, client, n = message["path"].rstrip("/").split("/")
    time.sleep(work_seconds(int(n)))
    body = f"{client}:{n}:{os.getpid()}".encode()
    message.reply_channel.send(
        {"status": 200, "headers": [[b"content-type", b"text/plain"]], "content": body}
    )


def ws_connect(message: Any) -> None:
    message.reply_channel.send({"accept": True})


async def ws_echo(message: Any) -> None:
    text = message["text"]
    await asyncio.sleep(work_seconds(int(text.rsplit(":", 1)[1])))
    await message.reply_channel.asend({"text": f"{text}:{os.getpid()}"})


def ws_disconnect(message: Any) -> None:
    """Nothing to clean up: the test's sockets join no group."""


def recycle_work(message: Any) -> None:
    time.sleep(work_seconds(message["n"]))
    message.reply_channel.send({"n": message["n"], "pid": os.getpid()})


def hang(message: Any) -> None:
    message.reply_channel.send({"started": os.getpid()}, immediately=True)
    threading.Event().wait()  # until the process is ended


routing = [
    route("http.request", http_echo, path=r"^/echo/"),
    route("websocket.connect", ws_connect),
    route("websocket.receive", ws_echo),
    route("websocket.disconnect", ws_disconnect),
    route("recycle.work", recycle_work),
    route("recycle.hang", hang),
]
ROUTING = "tests.restart_routing.routing"
