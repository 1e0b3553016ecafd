"""Worker-benchmark consumers: count a pre-filled channel, answer requests.

A ``bench.count`` message is only counted; the one marked ``last`` gets an
ack on its ``reply_channel`` with the count, and the wall and CPU seconds of
the worker process from the first message to it. A ``bench.request`` is
answered with ``{"n": ...}`` on its ``reply_channel``. Each comes as a plain and an
``async def`` consumer; ``anchor_projects/modern/consumers.py`` mirrors them.
"""

from __future__ import annotations

import time
from typing import Any

from channels.message import Message


class _Counter:
    """Counts ``bench.count`` messages; returns the ack for the last one."""

    def __init__(self) -> None:
        self.count = 0
        self.first = 0.0
        self.first_cpu = 0.0

    def tick(self, message: Message) -> dict[str, Any] | None:
        now = time.perf_counter()
        if self.count == 0:
            self.first, self.first_cpu = now, time.process_time()
        self.count += 1
        if not message.get("last"):
            return None
        ack = {
            "type": "bench.ack",
            "count": self.count,
            "seconds": now - self.first,
            "cpu_seconds": time.process_time() - self.first_cpu,
        }
        self.count = 0
        return ack


_counter = _Counter()
_async_counter = _Counter()


def count(message: Message) -> None:
    """Count the message; ack the last one."""
    ack = _counter.tick(message)
    if ack is not None and message.reply_channel is not None:
        message.reply_channel.send(ack)


async def count_async(message: Message) -> None:
    """``async def`` twin of :func:`count`."""
    ack = _async_counter.tick(message)
    if ack is not None and message.reply_channel is not None:
        await message.reply_channel.asend(ack)


def reply(message: Message) -> None:
    """Answer a request on its reply channel."""
    if message.reply_channel is not None:
        message.reply_channel.send({"type": "bench.reply", "n": message["n"]})


async def reply_async(message: Message) -> None:
    """``async def`` twin of :func:`reply`."""
    if message.reply_channel is not None:
        await message.reply_channel.asend({"type": "bench.reply", "n": message["n"]})
