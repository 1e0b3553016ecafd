"""One HTTP request: ``http.request`` (and its body channel) out, the response chunks back."""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import cast

from ..backoff import asend_when_room
from ..exceptions import ChannelFull, MessageTooLarge, ResponseIncomplete
from ..typing import HttpDisconnect, HttpRequest, HttpRequestBodyChunk, HttpResponse
from . import daphne
from .connection import Connection, Receive, Scope, Send
from .dispatcher import BridgeLayer, ReplyDispatcher
from .events import ControlEvent, Reply
from .flow import Write
from .settings import BridgeSettings

logger = logging.getLogger("channels.bridge")

HTTP_REPLY_KEYS = frozenset(("status", "headers", "content", "more_content"))


def _to_bytes(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


class HttpConnection(Connection):
    """One HTTP request: send ``http.request``, relay the response chunks.

    A body larger than ``body_chunk_size`` streams to a body channel from a
    task of its own while the response is relayed; once the body is sent the
    task watches for the client's disconnect. What that task has to report
    (disconnected, body too large, body could not be sent) reaches the relay
    as a :class:`ControlEvent` in the reply queue.

    Body chunks go out through a :class:`~channels.bridge.flow.SendFlow`, so a
    client that does not read holds up at most ``send_buffer_limit`` bytes
    before its response is aborted. A response that cannot be finished once
    started (the worker stopped sending, the body failed, the server stopped
    past its drain timeout) is aborted too, never ended cleanly: a clean end
    would make it look complete. While the server drains, a request counts as
    in flight from its first event to its last (:mod:`channels.bridge.drain`).
    """

    def __init__(
        self,
        layer: BridgeLayer,
        settings: BridgeSettings,
        dispatcher: ReplyDispatcher,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        super().__init__(layer, settings, dispatcher, scope, receive, send)
        self.replies: asyncio.Queue[Reply | ControlEvent] = asyncio.Queue()

    def deliver(self, reply: Reply) -> None:
        self.replies.put_nowait(reply)

    def control(self, event: ControlEvent) -> None:
        self.replies.put_nowait(event)

    async def serve(self) -> None:
        drain = self.dispatcher.drain
        drain.track(self.reply_channel, self.control, self.protocol)
        try:
            await self._serve()
        finally:
            drain.forget(self.reply_channel)

    async def _serve(self) -> None:
        body, more_body, disconnected = await self._read_first_part(self.settings.body_chunk_size)
        if disconnected:
            return
        message: HttpRequest = {
            **self.common_keys(),
            "http_version": self.scope.get("http_version", "1.1"),
            "method": self.scope["method"],
            "body": body,
            # Workers skip a request nobody waits for any more (it was answered 503).
            "deadline": time.time() + self.settings.http_timeout,
        }
        body_channel = None
        if more_body:
            body_channel = self.layer.new_channel("http.request.body?")
            message["body_channel"] = body_channel
        try:
            await self.layer.asend("http.request", {**message})
        except ChannelFull:
            await self.error(503, "Request queue full.")
            return
        except MessageTooLarge:
            await self.error(413, "Request headers too large.")
            return
        except ConnectionError:
            logger.warning("Channel layer unreachable: answered 503")
            await self.error(503, "Service unavailable.")
            return
        client = asyncio.ensure_future(
            self._stream_body(body_channel, len(body)) if body_channel else self._wait_disconnect()
        )
        try:
            await self._relay()
            if self.flow.held:  # held chunks still go out to a slow client, unless it leaves
                drained = asyncio.ensure_future(self.flow.drain())
                await asyncio.wait({drained, client}, return_when=asyncio.FIRST_COMPLETED)
                drained.cancel()
        finally:
            client.cancel()

    async def _read_first_part(self, limit: int) -> tuple[bytes, bool, bool]:
        parts: list[bytes] = []
        size = 0
        while True:
            event = await self.receive()
            if event["type"] == "http.disconnect":
                return b"", False, True
            chunk = event.get("body", b"")
            parts.append(chunk)
            size += len(chunk)
            more = event.get("more_body", False)
            if not more or size >= limit:
                return b"".join(parts), more, False

    async def _stream_body(self, body_channel: str, sent: int) -> None:
        """Send the rest of the body to *body_channel*, then watch for a disconnect.

        A chunk that cannot be sent (the channel stayed full, the layer went
        away) is logged and answered with 503 at once: the worker would
        otherwise wait for the rest of a body that never comes, and the
        client for a response.
        """
        limit = self.settings.max_body_size
        while True:
            event = await self.receive()
            if event["type"] == "http.disconnect":
                await self._close_body(body_channel)
                await self._disconnected()
                return
            chunk = event.get("body", b"")
            sent += len(chunk)
            if limit is not None and sent > limit:
                await self._close_body(body_channel)
                self.replies.put_nowait(ControlEvent.TOO_LARGE)
                return
            more = event.get("more_body", False)
            try:
                await self._send_chunk(body_channel, {"content": chunk, "more_content": more})
            except Exception as exc:
                self._log_body_failure(exc)
                await self._close_body(body_channel)
                self.replies.put_nowait(ControlEvent.BODY_FAILED)
                return
            if not more:
                break
        await self._wait_disconnect()

    def _log_body_failure(self, exc: Exception) -> None:
        if isinstance(exc, ChannelFull):
            why = (
                f"no worker read its body channel for {self.settings.http_timeout:g} s "
                "(CHANNELS_HTTP_TIMEOUT): start more workers, or raise the timeout"
            )
        elif isinstance(exc, MessageTooLarge):
            why = (
                f"a chunk of it was too large for the channel layer ({exc}): raise the "
                "layer's max_message_size"
            )
        elif isinstance(exc, ConnectionError):
            why = f"the channel layer is unreachable ({exc})"
        else:
            logger.exception("Could not stream the request body of %s; answered 503", self.label)
            return
        logger.error("Could not stream the request body of %s: %s; answered 503", self.label, why)

    async def _close_body(self, body_channel: str) -> None:
        """Tell the worker reading *body_channel* that no more of the body will come."""
        try:
            await self._send_chunk(body_channel, {"closed": True})
        except Exception as exc:  # the worker gives up on the body after its own timeout
            logger.debug("Could not close the body channel of %s (%s)", self.label, exc)

    async def _send_chunk(self, body_channel: str, chunk: HttpRequestBodyChunk) -> None:
        # A body channel is read by one worker at its own pace: wait while it is full.
        await asend_when_room(
            lambda: self.layer.asend(body_channel, {**chunk}), self.settings.http_timeout
        )

    async def _wait_disconnect(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        await self._disconnected()

    async def _disconnected(self) -> None:
        self.replies.put_nowait(ControlEvent.DISCONNECTED)
        message: HttpDisconnect = {"reply_channel": self.reply_channel, "path": self.scope["path"]}
        try:
            await self.layer.asend("http.disconnect", {**message})
        except Exception:  # the client is gone; nothing else to tell
            logger.debug("Could not send http.disconnect for %s", self.label)

    async def _relay(self) -> None:
        started = False
        timeout = self.settings.http_timeout
        while True:
            try:
                reply = await asyncio.wait_for(self.replies.get(), timeout)
            except asyncio.TimeoutError:
                if started:
                    logger.warning(
                        "The response to %s stalled for %g s (CHANNELS_HTTP_TIMEOUT); aborted "
                        "the connection so the client sees it incomplete",
                        self.label,
                        timeout,
                    )
                    self.abort()
                else:
                    await self.error(503, "Worker server failed to respond within time limit.")
                return
            if isinstance(reply, ControlEvent):
                await self._stop(reply, started)
                return
            self.warn_unknown_keys(reply, HTTP_REPLY_KEYS)
            # A consumer wrote it: the shape is the documented one, the values are coerced.
            response = cast(HttpResponse, reply)
            if not started:
                if "status" not in response:
                    logger.error("The first reply to %s has no status", self.label)
                    await self.error(500, "Internal server error.")
                    return
                await self._start_response(
                    int(response["status"]),
                    [
                        [_to_bytes(name), _to_bytes(value)]
                        for name, value in response.get("headers", [])
                    ],
                )
                started = True
            more = bool(response.get("more_content", False))
            content = response.get("content", b"")
            if not await self.flow.write(*self._body_write(content, more)):
                return  # the client stopped reading: the connection was aborted
            if not more:
                return

    async def _stop(self, event: ControlEvent, started: bool) -> None:
        """End the response because of *event*: with an error page if none has started."""
        if event is ControlEvent.DISCONNECTED:
            return
        if started:  # a clean end would make what was started look complete
            logger.warning("Aborted the response to %s: %s", self.label, event.value)
            self.abort()
        elif event is ControlEvent.TOO_LARGE:
            await self.error(413, "Request body too large.")
        else:
            await self.error(503, "Service unavailable.")

    def _body_write(self, content: bytes, more: bool) -> tuple[Write, int]:
        """Return the write of one body part and the bytes it holds in memory while it waits.

        A part that would take the memory held for a slow client past
        ``send_buffer_limit`` waits in the spool instead, if it has room.
        """
        size = len(content)
        if self.spools(size):
            self.spool.store(content)
            return partial(self._send_spooled, size, more), 0
        return partial(self._send_body, content, more), size

    async def _send_spooled(self, size: int, more: bool) -> None:
        await self._send_body(self.spool.load(size), more)

    async def _send_body(self, body: bytes, more: bool = False) -> None:
        if not more:
            self.unwatch()  # before daphne finishes the request on it (see Connection.unwatch)
        await self.send({"type": "http.response.body", "body": body, "more_body": more})

    def abort(self) -> None:
        """Drop the connection of a response that cannot be finished.

        Under another server than daphne, raise :exc:`ResponseIncomplete` so
        that the server drops it.
        """
        self.flow.stop()
        if not daphne.abort_connection(self.protocol):
            raise ResponseIncomplete(f"The response to {self.label} could not be finished")

    def overflowed(self, held: int) -> None:
        logger.warning(
            "Aborted the response to %s: its client stopped reading, and %d bytes of it were "
            "waiting in memory and %d in a file (CHANNELS_SEND_BUFFER_LIMIT is %s, "
            "CHANNELS_SEND_SPOOL_LIMIT %s)",
            self.label,
            held,
            self.spool.waiting,
            self.settings.send_buffer_limit,
            self.settings.send_spool_limit,
        )
        daphne.abort_connection(self.protocol)

    async def error(self, status: int, text: str) -> None:
        """Answer with *status* and a short HTML page saying *text*."""
        body = f"<html><body><h1>{status}</h1><p>{text}</p></body></html>".encode()
        await self._start_response(status, [[b"content-type", b"text/html; charset=utf-8"]])
        await self._send_body(body)

    async def _start_response(self, status: int, headers: list[list[bytes]]) -> None:
        """Send the response's status and headers; while draining, say the connection closes.

        So that a client or proxy keeping the connection alive sends its next
        request to another server.
        """
        if (
            self.dispatcher.drain.draining
            and not daphne.close_after_response(self.protocol)
            and not any(name.lower() == b"connection" for name, _ in headers)
        ):
            headers = [*headers, [b"connection", b"close"]]
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
