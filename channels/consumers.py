"""Consumers that serve standard channels nobody routed."""

from __future__ import annotations

from typing import Any


def accept_connection(message: Any) -> None:
    """Accept a WebSocket whose ``websocket.connect`` has no consumer of its own."""
    message.reply_channel.send({"accept": True})


def ignore(message: Any) -> None:
    """Do nothing: unrouted WebSocket frames and disconnects are dropped."""
