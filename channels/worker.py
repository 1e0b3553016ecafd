"""The worker: take messages off the layer and run their consumers.

Each worker thread blocks on one receive over every routed channel (no
polling), matches the message, and hands it to a :class:`~channels.runner.Runner`,
which runs the consumer inside an :class:`~channels.outbox.Outbox`, so its
sends go out only if it succeeds. One raise is an answer, not a failure, and keeps the sends: a
:class:`~channels.exceptions.ChannelSocketException`, whose ``run(message)``
then acts on the socket (1.x sent a consumer's sends even when it failed; we
do so only for this). A ``websocket.connect`` consumer that fails has its
socket refused at once, not left waiting for the handshake timeout, and a
failed ``http.request`` consumer is answered at once as Django would (400
for ``SuspiciousOperation``, else 500, the debug page under ``DEBUG``), not
by the interface server's 503 a minute later. An ``http.request`` that no one
waits for any more (past its ``deadline``, or from an interface server that
is gone) is skipped, not run.
``async def`` consumers run on one event loop shared by the process, so a
worker can have many of them waiting at once. Nothing a consumer does, and no
hiccup of the layer, stops the worker; :meth:`Worker.stop` ends it gracefully.
About once a second a receive loop also runs the layer's housekeeping
(``maintain()``: reaping dead processes' group memberships and presence,
sending presence diffs), so a deployment keeps its groups clean as long as
any worker or interface server lives.

A stop loses nothing taken: each loop ends after the message in hand (one
taken with a consumer's sends included), and :meth:`Worker.run` returns once
every consumer has finished, or after :attr:`Worker.stop_timeout` with what it
cut short. A :class:`~channels.recycle.Recycler` stops it the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fnmatch
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from .layers.names import stats_name
from .layers.outage import OutageReport, check_layer
from .message import Message
from .recycle import Recycler
from .routing import Router
from .runner import Runner, Taken, consumer_name, is_async_consumer, keeps_sends
from .signals import worker_ready

__all__ = ["RunningConsumer", "Worker", "consumer_name", "filter_channels", "keeps_sends"]

logger = logging.getLogger("channels.worker")

Callback = Callable[[str, Message, Any], None]
#: A routed message: the message, its consumer and the consumer's keyword arguments.
Routed = tuple[Message, Any, dict[str, Any]]


class RunningConsumer(NamedTuple):
    """A consumer at work: what a stop waits for, and names if it cuts it short."""

    channel: str
    consumer: Any
    #: ``time.monotonic()`` when it started.
    since: float

    def describe(self) -> str:
        took = time.monotonic() - self.since
        return f"{consumer_name(self.consumer)} on {self.channel} (running for {took:.1f} s)"


def filter_channels(
    channels: Iterable[str],
    only: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
) -> list[str]:
    """Keep the channels matching any ``only`` glob and no ``exclude`` glob, sorted."""
    return sorted(_filtered(channels, list(only or ()), list(exclude or ())))


def _filtered(channels: Iterable[str], only: list[str], exclude: list[str]) -> list[str]:
    return [
        channel
        for channel in channels
        if (not only or any(fnmatch.fnmatchcase(channel, glob) for glob in only))
        and not any(fnmatch.fnmatchcase(channel, glob) for glob in exclude)
    ]


class Worker:
    """Serve a channel layer's routing with *threads* receive loops.

    The worker owns threads, receive loops and the event loop of ``async def``
    consumers; running one message is its :attr:`runner`'s job.
    """

    #: Times ``ConsumeLater`` may put a message back before it is dropped.
    message_retries = 10
    #: What runs each message (signals, outbox, exception policy).
    runner_class: type[Runner] = Runner
    #: Seconds one blocking receive waits; a stop request is seen within this.
    receive_timeout = 1.0
    #: Longest pause between attempts to reach a layer that is down.
    max_reconnect_delay = 2.0
    #: Seconds between two calls of the layer's ``maintain()`` (the layer does at
    #: most one pass per its own ``maintain_interval``, whoever calls).
    maintain_interval = 1.0
    #: Take the next message in the same round trip as a sync consumer's sends
    #: (only a worker that goes on to handle it may do so).
    poll_with_sends = True
    #: Seconds :meth:`run` waits, once stopped, for running consumers (None: no limit).
    stop_timeout: float | None = None

    #: False for a worker that is handed its messages (the test client's) and
    #: never listens, so it may serve a routing with no channels.
    listens = True

    def __init__(
        self,
        channel_layer: Any,
        router: Router | None = None,
        *,
        only_channels: Iterable[str] | None = None,
        exclude_channels: Iterable[str] | None = None,
        threads: int = 1,
        callback: Callback | None = None,
        recycler: Recycler | None = None,
        stop_timeout: float | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError("a worker needs at least one thread")
        if stop_timeout is not None and not stop_timeout > 0:
            raise ValueError(f"stop_timeout must be seconds > 0, or None, not {stop_timeout!r}")
        if stop_timeout is not None:
            self.stop_timeout = stop_timeout
        self.channel_layer = channel_layer
        # The layer's routing with the default consumers, unless told otherwise.
        self.router = router if router is not None else Router(channel_layer.resolve_routing())
        self.only_channels = list(only_channels or ())
        self.exclude_channels = list(exclude_channels or ())
        self.channels = sorted(self.apply_channel_filters(self.router.channels))
        if not self.channels and self.listens:
            raise ValueError(
                "No channels left to listen on: check the routing and the "
                "--only-channels / --exclude-channels globs"
            )
        self.threads = threads
        self.callback = callback
        #: Says when to stop for a fresh process (see :mod:`channels.recycle`).
        self.recycler = recycler
        #: Called once when the worker can take messages (see :meth:`mark_ready`).
        self.on_ready = on_ready
        self._ready = False
        self._ready_lock = threading.Lock()
        self._stopping = threading.Event()
        self._stop_reason: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        self._async_pending: dict[concurrent.futures.Future[None], RunningConsumer] = {}
        # By ident, the threads running a sync consumer now (one dict op each: atomic).
        self._busy: dict[int, RunningConsumer] = {}
        self.runner = self.runner_class(sender=type(self), message_retries=self.message_retries)
        self._poll = self._poll_channels  # bound once: it is asked after every sync consumer
        self.outage = OutageReport(logger, repr(getattr(channel_layer, "alias", channel_layer)))
        # A layer that is not ours may have no housekeeping: then it is never due.
        self._maintain: Callable[[], object] | None = getattr(channel_layer, "maintain", None)
        self._maintain_due = 0.0 if self._maintain is not None else math.inf
        self._maintaining = threading.Lock()  # one thread of the worker runs it at a time

    def apply_channel_filters(self, channels: Iterable[str]) -> list[str]:
        """Return the *channels* this worker's ``only``/``exclude`` globs let through, in order.

        The 1.x name; :func:`filter_channels` is the same filter, sorted.
        """
        return _filtered(channels, self.only_channels, self.exclude_channels)

    # Running and stopping ------------------------------------------------

    def run(self) -> list[RunningConsumer]:
        """Receive and consume until :meth:`stop`; then let running consumers finish.

        The receive loops run on threads of their own; the calling thread
        waits, so it stays free for signal handlers and can give up on a
        consumer that never returns. Return the consumers still running when
        :attr:`stop_timeout` ran out, each logged as cut short (empty after a
        clean stop). Their threads are daemons: the caller should exit soon.
        """
        loops = [
            threading.Thread(target=self._serve, name=f"channels-worker-{n}", daemon=True)
            for n in range(1, self.threads + 1)
        ]
        for thread in loops:
            thread.start()
        # In slices: a signal handler runs in this thread between two of them at the latest.
        while not self._stopping.wait(self.receive_timeout):
            pass
        timeout = self.stop_timeout
        deadline = math.inf if timeout is None else time.monotonic() + timeout

        def left() -> float | None:  # of the stop timeout
            return None if timeout is None else max(0.0, deadline - time.monotonic())

        for thread in loops:
            thread.join(left())
        if not any(thread.is_alive() for thread in loops):  # no loop schedules any more
            concurrent.futures.wait(list(self._async_pending), left())
        cut = self.running()
        for running in cut:
            logger.error(
                "Cut short by the %g s stop timeout: %s; its message is not put back",
                timeout,
                running.describe(),
            )
        if not cut and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join()
            self._loop.close()
        return cut

    def stop(self, reason: str | None = None) -> None:
        """Ask every receive loop to stop after the message in hand; keep the first *reason*."""
        if not self._stopping.is_set():
            self._stop_reason = reason
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def stop_reason(self) -> str | None:
        """Why the worker was stopped, if it was given."""
        return self._stop_reason

    @property
    def running_consumers(self) -> int:
        """How many consumers are running now (what a graceful stop waits for)."""
        return len(self._busy) + len(self._async_pending)

    def running(self) -> list[RunningConsumer]:
        """The consumers running now, sync and async, oldest first."""
        # Copies first (done in one step): other threads add and remove meanwhile.
        pending = [run for future, run in list(self._async_pending.items()) if not future.done()]
        return sorted([*self._busy.values(), *pending], key=lambda run: run.since)

    def mark_ready(self) -> None:
        """Note that the worker can take messages, and call :attr:`on_ready` the first time.

        ``runworker`` calls it once its layer check answered; the receive
        loop calls it after its first receive that works, for a worker that
        started while the layer was down.
        """
        with self._ready_lock:
            if self._ready:
                return
            self._ready = True
        if self.on_ready is not None:
            self.on_ready()

    def _recycle(self, reason: str | None) -> bool:
        """Stop for a fresh process if *reason* says so (once); return whether it did."""
        if reason is None:
            return False
        if not self._stopping.is_set():
            logger.info("Recycling: %s; stopping once the running consumers finish", reason)
            self.stop(f"recycling: {reason}")
        return True

    def check_layer(self) -> bool:
        """Make one harmless call to the layer, reporting a failure as the receive loop would.

        Run at start, so a layer that is down or misconfigured is reported
        before the first message is waited for. Return whether it answered.
        """
        return check_layer(self.channel_layer, self.outage, self.max_reconnect_delay)

    def _serve(self) -> None:
        """Run one receive loop; if it dies (a consumer's ``SystemExit``), stop the worker."""
        try:
            self._receive_loop()
        except BaseException:
            logger.exception("A receive loop of the worker died; stopping the worker")
            self.stop("a receive loop died")

    def _receive_loop(self) -> None:
        worker_ready.send(sender=type(self), worker=self)
        recycler = self.recycler
        delay = 0.1
        # A message taken in the same round trip as the last consumer's sends.
        taken: tuple[str | None, Any] = (None, None)
        while True:
            if time.monotonic() >= self._maintain_due:  # all the hot path pays for it
                self.maintain()
            channel, content = taken
            taken = (None, None)
            if channel is None:
                if self._stopping.is_set():  # never with a taken message in hand
                    break
                try:
                    channel, content = self.channel_layer.receive(
                        self.channels, block=True, timeout=self.receive_timeout
                    )
                except Exception as exc:  # down, misconfigured or broken: back off, say it once
                    self.outage.failed(exc, self.max_reconnect_delay)
                    self._stopping.wait(delay)
                    delay = min(delay * 2, self.max_reconnect_delay)
                    continue
                delay = 0.1
                self.outage.succeeded()
                if not self._ready:
                    self.mark_ready()
            if channel is not None:
                if recycler is not None:
                    self._recycle(recycler.took_one())  # this one is handled all the same
                try:
                    taken = self.handle(channel, content)
                except Exception:  # a worker never dies of one message
                    logger.exception("Failed to handle a message on %s", channel)
                # A next message taken with the sends was checked for before they went.
                if recycler is not None and taken[0] is None and not self._stopping.is_set():
                    self._recycle(recycler.finished_one())

    def maintain(self) -> None:
        """Run the layer's housekeeping now, unless another thread of the worker is at it.

        The receive loops call it about once per :attr:`maintain_interval`
        (an idle loop's receive returns within ``receive_timeout``). It never
        raises: housekeeping that fails is tried again on the next tick, and
        a layer that is down is reported by the receive loop.
        """
        maintain = self._maintain
        if maintain is None or not self._maintaining.acquire(blocking=False):
            return
        try:
            self._maintain_due = time.monotonic() + self.maintain_interval
            maintain()
        except Exception as exc:
            logger.debug("The layer's housekeeping failed (%s); trying again", exc)
        finally:
            self._maintaining.release()

    # Handling one message ------------------------------------------------

    def route(self, channel: str, content: dict[str, Any]) -> Routed | None:
        """Return the message made of *content* with its consumer and kwargs, or None."""
        message = Message(content, channel, self.channel_layer)
        found = self.router.match(message)
        if found is None:
            logger.debug("No route for a message on %s; dropped", channel)
            return None
        return message, found[0], found[1]

    def handle(self, channel: str, content: dict[str, Any]) -> Taken:
        """Route one message and run (or schedule) its consumer.

        Returns the next message when a sync consumer's sends could take it
        in the same round trip, else ``(None, None)``.
        """
        if channel == "http.request" and self.skips_request(content):
            return None, None
        routed = self.route(channel, content)
        if routed is None:
            return None, None
        message, consumer, kwargs = routed
        if self.callback is not None:
            self.callback(channel, message, consumer)
        running = RunningConsumer(channel, consumer, time.monotonic())
        if is_async_consumer(consumer):
            future = asyncio.run_coroutine_threadsafe(
                self.runner.arun(consumer, message, kwargs), self._event_loop()
            )
            self._async_pending[future] = running
            future.add_done_callback(self._async_done)
            return None, None
        thread = threading.get_ident()
        self._busy[thread] = running
        try:
            return self.runner.run(consumer, message, kwargs, self._poll)
        finally:
            del self._busy[thread]

    def skips_request(self, content: dict[str, Any]) -> bool:
        """Return True (and say so) if no one waits for the answer to this ``http.request``.

        A request taken after its ``deadline`` (UNIX time, set by the interface
        server) was already answered with a 503, and one whose interface server
        is gone has no client: running its view would only do the work twice,
        or for no one (a stalled worker that resumes, the backlog of a dead
        server). Its body channel is not read and nothing is sent.
        """
        reply = content.get("reply_channel")
        prefix = stats_name(reply) if isinstance(reply, str) else "-"
        deadline = content.get("deadline")
        if isinstance(deadline, int | float) and time.time() > deadline:
            logger.info(
                "Skipped an http.request to %s %.1f s past its deadline: its client "
                "was already answered (503)",
                prefix,
                time.time() - deadline,
            )
            return True
        alive = getattr(self.channel_layer, "process_alive", None)
        if alive is None or not isinstance(reply, str) or "!" not in reply:
            return False
        try:
            gone = not alive(reply)
        except Exception:  # unsure: better answer twice than never
            logger.debug("Could not tell whether %s is alive", prefix, exc_info=True)
            return False
        if gone:
            logger.info("Skipped an http.request to %s: its interface server is gone", prefix)
        return gone

    def _async_done(self, future: concurrent.futures.Future[None]) -> None:
        self._async_pending.pop(future, None)
        if not future.cancelled() and future.exception() is not None:
            logger.error("Failed to handle a message", exc_info=future.exception())
        if self.recycler is not None and not self._stopping.is_set():
            self._recycle(self.recycler.finished_one())

    def _poll_channels(self) -> list[str] | None:
        """Where a sync consumer's sends may take the next message from (None: nowhere)."""
        if self._stopping.is_set() or not self.poll_with_sends:
            return None
        # A worker that is over its memory limit takes nothing more with the sends.
        if self.recycler is not None and self._recycle(self.recycler.finished_one()):
            return None
        return self.channels

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._loop_thread = threading.Thread(
                    target=self._loop.run_forever, name="channels-worker-async", daemon=True
                )
                self._loop_thread.start()
        return self._loop
