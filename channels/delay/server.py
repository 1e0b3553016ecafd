"""The delay server: store ``asgi.delay`` messages, send each when it is due.

It stops between two steps (a stored batch, a sent message), so nothing it
took is lost, and it says once that it is ready (:meth:`DelayServer.mark_ready`):
when its layer check at start answered, or at the first step that works.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import msgpack
from django.db import transaction
from django.utils import timezone

from ..exceptions import ChannelFull
from ..layers.names import require_valid_channel_name
from ..layers.outage import OutageReport, check_layer
from .models import DelayedMessage

logger = logging.getLogger("channels.delay")

DELAY_CHANNEL = "asgi.delay"


class DelayServer:
    """Receive on ``asgi.delay``; sleep (in the receive) until the next message is due."""

    #: Longest wait in one receive, so a stop request is seen promptly.
    max_wait = 1.0
    #: Seconds a due message waits before it is tried again on a full channel.
    full_retry_delay = 1.0
    #: Longest pause between tries while the database refuses to store messages.
    max_failure_pause = 5.0
    app_label = "channels_delay"

    def __init__(self, channel_layer: Any, *, on_ready: Callable[[], None] | None = None) -> None:
        self.channel_layer = channel_layer
        self._stopping = threading.Event()
        #: Says once that the layer is down (or misconfigured), and once that it is back.
        self.outage = OutageReport(logger, repr(getattr(channel_layer, "alias", channel_layer)))
        #: Called once when the server can take messages (see :meth:`mark_ready`).
        self.on_ready = on_ready
        self._ready = False

    def stop(self) -> None:
        self._stopping.set()

    def check_layer(self) -> bool:
        """Make one harmless call to the layer, reporting a failure; return whether it answered."""
        return check_layer(self.channel_layer, self.outage, self.max_wait)

    def mark_ready(self) -> None:
        """Note that the server can take messages, and call :attr:`on_ready` the first time."""
        if self._ready:
            return
        self._ready = True
        if self.on_ready is not None:
            self.on_ready()

    def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                self.send_due()
                self.receive_and_store()
            except ConnectionError as exc:
                self.outage.failed(exc, self.max_wait)
                self._stopping.wait(self.max_wait)
                continue
            except Exception:  # the loop never stops for one bad message or row
                failures += 1
                if failures == 1:
                    logger.exception("The delay server failed a step; retrying until it works")
                self._stopping.wait(min(self.max_failure_pause, 0.1 * 2 ** min(failures, 6)))
                continue
            self.outage.succeeded()
            if not self._ready:
                self.mark_ready()
            if failures:
                logger.warning("The delay server works again after %d failed steps", failures)
                failures = 0

    def receive_and_store(self) -> None:
        """Take what waits on ``asgi.delay`` and store it; on failure, give it back."""
        channel, message = self.channel_layer.receive(
            [DELAY_CHANNEL], block=True, timeout=self.wait_time()
        )
        # Take everything already waiting too, and store it in one go: each
        # message's delay counts from (about) when it was sent.
        batch = []
        while channel is not None:
            batch.append(message)
            channel, message = self.channel_layer.receive([DELAY_CHANNEL])
        try:
            self.store(batch)
        except Exception:
            # The database is unwell: put the messages back rather than lose them.
            for message in batch:
                self.channel_layer.send(DELAY_CHANNEL, message)
            raise

    def wait_time(self) -> float:
        nxt = DelayedMessage.objects.order_by("due_date").values_list("due_date", flat=True)
        first: datetime | None = nxt.first()
        if first is None:
            return self.max_wait
        return max(0.0, min(self.max_wait, (first - timezone.now()).total_seconds()))

    def store(self, messages: list[dict[str, Any]]) -> None:
        """Keep the valid delay messages; log and drop anything else."""
        now = timezone.now()
        rows = [row for row in (self._row(message, now) for message in messages) if row]
        if rows:
            DelayedMessage.objects.bulk_create(rows)

    @staticmethod
    def _row(message: dict[str, Any], now: Any) -> DelayedMessage | None:
        channel, content, delay = (message.get(k) for k in ("channel", "content", "delay"))
        try:
            require_valid_channel_name(channel)
        except TypeError as exc:
            logger.warning("Dropped a delay message: bad channel (%s)", exc)
            return None
        if not isinstance(content, dict):
            logger.warning("Dropped a delay message for %s: content is not a dict", channel)
            return None
        if not isinstance(delay, int) or isinstance(delay, bool) or delay < 0:
            logger.warning("Dropped a delay message for %s: delay must be ms >= 0", channel)
            return None
        return DelayedMessage(
            channel_name=channel,
            content=msgpack.packb(content, use_bin_type=True),
            due_date=now + timedelta(milliseconds=delay),
        )

    def send_due(self) -> None:
        """Send every due message, oldest due first."""
        while True:
            with transaction.atomic():
                due = DelayedMessage.objects.filter(due_date__lte=timezone.now()).first()
                if due is None:
                    return
                content = msgpack.unpackb(bytes(due.content), raw=False)
                try:
                    self.channel_layer.send(due.channel_name, content)
                except ChannelFull:
                    logger.warning("%s is full; retrying a delayed message", due.channel_name)
                    due.due_date = timezone.now() + timedelta(seconds=self.full_retry_delay)
                    due.save(update_fields=["due_date"])
                    continue
                due.delete()
