"""Waiting for room on a full channel: a bounded wait with a growing pause, never a spin."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from .exceptions import ChannelFull

#: The first pause after a ``ChannelFull``; each later one doubles, up to ``MAX_PAUSE``.
FIRST_PAUSE = 0.005
MAX_PAUSE = 0.25


def send_when_room(send: Callable[[], object], timeout: float) -> None:
    """Call *send* until it stops raising ``ChannelFull``; after *timeout* s, let it raise."""
    deadline = time.monotonic() + timeout
    pause = FIRST_PAUSE
    while True:
        try:
            send()
            return
        except ChannelFull:
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)


async def asend_when_room(send: Callable[[], Awaitable[object]], timeout: float) -> None:
    """Async twin of :func:`send_when_room`."""
    deadline = time.monotonic() + timeout
    pause = FIRST_PAUSE
    while True:
        try:
            await send()
            return
        except ChannelFull:
            if time.monotonic() + pause > deadline:
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)
