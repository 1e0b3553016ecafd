"""Django's view layer over channels: ``http.request`` messages in, response chunks out.

* :class:`AsgiRequest` turns an ``http.request`` message into an ``HttpRequest``
  (it is Django's own ``ASGIRequest``, fed from the message);
  ``AsgiRequest.from_message`` first reads a large body from its ``body_channel``.
* :class:`AsgiHandler` runs the middleware and views and yields the response as
  ``{"status", "headers", "content", "more_content"}`` reply messages;
  ``AsgiHandler.encode_response(response)`` does the last step alone.
* :data:`view_consumer` is what unrouted ``http.request`` messages go to.
"""

from __future__ import annotations

import io
import logging
import tempfile
import time
from collections.abc import Iterator, Mapping
from typing import IO, Any, cast
from urllib.parse import urlparse

from django import http
from django.conf import settings
from django.contrib.staticfiles.views import serve
from django.core import signals
from django.core.handlers import base
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.exception import response_for_exception
from django.urls import set_script_prefix

from .backoff import send_when_room
from .exceptions import RequestAborted, RequestTimeout, ResponseLater
from .unanswered import error_request, server_error_response

logger = logging.getLogger("channels.handler")

Reply = dict[str, Any]


def old_style_headers(headers: Mapping[str | bytes, str | bytes]) -> list[tuple[bytes, bytes]]:
    """Return 1.x "old style" ``{name: value}`` headers as ASGI ``(name, value)`` byte pairs.

    Channels 1.x took a dict of headers "for a transition period", and 1.x
    test suites still build requests that way. Names are lower-cased, as
    ASGI header names are, so ``"Content-Type"`` still sets ``CONTENT_TYPE``.
    """
    pairs = []
    for name, value in headers.items():
        raw_name, raw_value = _header_bytes(name), _header_bytes(value)
        if raw_name is None or raw_value is None:
            raise TypeError(
                f"Header {name!r}: {value!r} is neither bytes nor Latin-1 str; "
                "give each header name and value as bytes"
            )
        pairs.append((raw_name.lower(), raw_value))
    return pairs


def _header_bytes(value: object) -> bytes | None:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        try:
            return value.encode("latin-1")
        except UnicodeEncodeError:
            return None
    return None


class AsgiRequest(ASGIRequest):
    """An ``HttpRequest`` built from an ASGI 1 ``http.request`` message.

    ``headers`` may be the ASGI list of ``(name, value)`` byte pairs or, as
    Channels 1.x also accepted, a ``{name: value}`` dict.

    A body that came whole in the message is kept in memory, as 1.x did, so a
    request built by user code (1.x: "a view is merely another consumer") holds
    no file and ``AsgiRequest(message)`` does no I/O. A body streamed on a
    ``body_channel`` must be read off the layer first: :meth:`from_message`
    (what :class:`AsgiHandler` uses) reads it, then builds the request;
    ``AsgiRequest(message)`` on such a message still reads it, blocking, as
    1.x's constructor did. That body is spooled to a temporary file, which
    :meth:`close` closes; the handler calls it when the response is done, and
    code building such a request itself should too.
    """

    #: 1.x views raise ``request.ResponseLater`` (it is :exc:`~channels.exceptions.ResponseLater`).
    ResponseLater = ResponseLater

    #: Seconds to wait for each chunk of a body sent on a body channel (then 408).
    body_receive_timeout = 60

    def __init__(self, message: Any, body_file: IO[bytes] | None = None) -> None:
        """Build the request of *message*, whose body is *body_file* if it was read already.

        Without *body_file* the body is read here (see the class docstring
        for when that blocks). *body_file* is closed if building fails.
        """
        if body_file is None:
            body_file = self.read_body(message)
        try:
            content = message.content
            self.message = message
            #: The :class:`~channels.Channel` to answer on (None without one), as in 1.x.
            self.reply_channel = message.reply_channel
            scope = {key: value for key, value in content.items() if key != "body"}
            if isinstance(scope.get("headers"), Mapping):
                scope["headers"] = old_style_headers(scope["headers"])
            scope.setdefault("method", "GET")
            scope.setdefault("path", "/")
            super().__init__(scope, body_file)
        except BaseException:
            body_file.close()
            raise

    @classmethod
    def from_message(cls, message: Any) -> AsgiRequest:
        """Read the body of *message* (from its body channel: blocking I/O), then build it."""
        return cls(message, cls.read_body(message))

    @classmethod
    def read_body(cls, message: Any) -> IO[bytes]:
        """Return the whole body of *message* as a file.

        A body that came in the message is wrapped without I/O; one on a
        ``body_channel`` is received chunk by chunk, each within
        :attr:`body_receive_timeout` (else :exc:`~channels.exceptions.RequestTimeout`;
        a client that went away raises :exc:`~channels.exceptions.RequestAborted`).
        """
        body = message.content.get("body") or b""
        body_channel = message.content.get("body_channel")
        if not body_channel:
            return io.BytesIO(body)
        body_file = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - close() closes it
            max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b"
        )
        try:
            body_file.write(body)
            cls._receive_body(message, body_channel, body_file)
        except BaseException:
            body_file.close()
            raise
        body_file.seek(0)
        return body_file

    @classmethod
    def _receive_body(cls, message: Any, body_channel: str, body_file: Any) -> None:
        """Append the chunks sent on *body_channel* to *body_file*, until the last one."""
        while True:
            deadline = time.monotonic() + cls.body_receive_timeout
            channel: str | None = None
            chunk: Any = None
            while channel is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestTimeout("The request body did not arrive in time")
                channel, chunk = message.channel_layer.receive(
                    [body_channel], block=True, timeout=remaining
                )
            if chunk.get("closed"):
                raise RequestAborted("The client went away while sending the body")
            body_file.write(chunk.get("content") or b"")
            if not chunk.get("more_content", False):
                return


def _script_prefix(content: dict[str, Any]) -> str:
    """Return the URL prefix for reversing: ``FORCE_SCRIPT_NAME``, else the message's ``root_path``.

    Django's own helper for this is a module function on 5.x but an
    ``ASGIHandler`` method on 4.2, so we keep these two lines rather than
    depend on where either version puts them.
    """
    return settings.FORCE_SCRIPT_NAME or content.get("root_path", "") or ""


def response_for(request: http.HttpRequest, exc: Exception) -> http.HttpResponseBase:
    """Return the response Django's handler gives a view that raised *exc*, with its logging.

    404 for ``Http404``, 403 for ``PermissionDenied``, 400 for a
    ``SuspiciousOperation`` or ``BadRequest``, else the 500 page (the
    technical one under ``DEBUG``). *exc* is raised again here, because the
    500 page and Django's log take the traceback from ``sys.exc_info()``.
    """
    try:
        raise exc
    except Exception as raised:
        return response_for_exception(request, raised)


def exception_response(exc: Exception, message: Any) -> http.HttpResponseBase:
    """Return Django's response to *exc*, raised while answering *message*, never raising.

    The request is rebuilt without reading the body channel (the failed code
    may have read it already); if even that fails, the plain 500 page is the answer.
    """
    try:
        request = error_request(message)
    except Exception:
        logger.debug("Could not build a request for the error page", exc_info=True)
        return server_error_response(exc, message)
    try:
        return response_for(request, exc)
    except Exception:
        logger.debug("Could not render Django's response to %r", exc, exc_info=True)
        return server_error_response(exc, message)
    finally:
        request.close()


def answer_exception(exc: Exception, message: Any) -> None:
    """Send Django's response to *exc* (400, 403, 404 or 500) to *message*'s reply channel, at once.

    Code outside Django's own exception handling (a consumer, a
    ``request_started`` receiver, reading the body) would otherwise leave
    the client waiting for the interface server's timeout and a 503.
    """
    if message.reply_channel is None:
        return
    for reply in AsgiHandler.encode_response(exception_response(exc, message)):
        message.reply_channel.send(reply, immediately=True)


class HttpResponseLater(http.HttpResponse):
    """Returned (or stood for a raised ``ResponseLater``) when another consumer will reply."""


class AsgiHandler(base.BaseHandler):
    """Run Django's middleware and views for ``http.request`` messages."""

    request_class = AsgiRequest
    #: Largest ``content`` of one reply message; bigger bodies are split.
    chunk_size = 512 * 1024

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware()

    def make_view_atomic(self, view: Any) -> Any:
        """Wrap each view so a raised ``ResponseLater`` means "no response from here"."""
        atomic_view = super().make_view_atomic(view)

        def view_or_later(request: http.HttpRequest, *args: Any, **kwargs: Any) -> Any:
            try:
                return atomic_view(request, *args, **kwargs)
            except ResponseLater:
                return HttpResponseLater()

        return view_or_later

    def __call__(self, message: Any) -> Iterator[Reply]:
        """Yield the reply messages answering *message*."""
        set_script_prefix(_script_prefix(message.content))
        signals.request_started.send(sender=type(self), message=message)
        request = None
        try:
            request = self.request_class.from_message(message)
        except UnicodeDecodeError:
            logger.warning("Bad request: undecodable data in %s", message.content.get("path"))
            response: http.HttpResponseBase = http.HttpResponseBadRequest()
        except RequestTimeout:
            response = http.HttpResponse("Request Timeout (upload too slow)", status=408)
        except RequestAborted:
            signals.request_finished.send(sender=type(self))
            return
        else:
            response = self.get_response(request)
        if isinstance(response, HttpResponseLater):
            # Some other consumer answers on this reply channel (long polling).
            response.close()
            if request is not None:  # it is: only a view returns HttpResponseLater
                request.close()
            return
        try:
            # Closing the response fires request_finished, as Django's handlers do.
            yield from self.encode_response(response)
        finally:
            if request is not None:
                request.close()

    @classmethod
    def encode_response(cls, response: http.HttpResponseBase) -> Iterator[Reply]:
        """Yield *response* as reply messages: a status first, then its body in chunks."""
        headers = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in response.headers.items()
        ]
        headers += [
            (b"Set-Cookie", cookie.output(header="").strip().encode("latin-1"))
            for cookie in response.cookies.values()
        ]
        start: Reply = {"status": response.status_code, "headers": headers}
        try:
            if response.streaming:
                if isinstance(response, http.FileResponse):
                    response.block_size = cls.chunk_size
                yield {**start, "content": b"", "more_content": True}
                # Django's streaming responses are StreamingHttpResponses (FileResponse too).
                # Iterating the response, as Django's WSGI handler does, also serves an
                # async iterator (with Django's warning), where streaming_content would not.
                streaming = cast(http.StreamingHttpResponse, response)
                for part in streaming:
                    for chunk in cls.chunks(part):
                        yield {"content": chunk, "more_content": True}
                yield {"content": b"", "more_content": False}
            else:
                body = cast(http.HttpResponse, response).content
                reply: Reply = start
                for chunk, last in cls.chunk_bytes(body):
                    yield {**reply, "content": chunk, "more_content": not last}
                    reply = {}
        finally:
            response.close()

    @classmethod
    def chunk_bytes(cls, data: bytes | str) -> Iterator[tuple[bytes, bool]]:
        """Yield ``(chunk, is_last)`` pairs of at most ``chunk_size`` bytes (1.x's API).

        Empty *data* still yields one empty, last chunk: a response always
        has a message that ends it.
        """
        chunks = list(cls.chunks(data)) or [b""]
        for index, chunk in enumerate(chunks, start=1):
            yield chunk, index == len(chunks)

    @classmethod
    def chunks(cls, data: bytes | str) -> Iterator[bytes]:
        """Yield *data* in pieces of at most ``chunk_size`` bytes (none if it is empty)."""
        if isinstance(data, str):
            data = data.encode(settings.DEFAULT_CHARSET)
        for start in range(0, len(data), cls.chunk_size):
            yield data[start : start + cls.chunk_size]


class StaticFilesAsgiHandler(AsgiHandler):
    """An :class:`AsgiHandler` that serves ``STATIC_URL`` as ``runserver`` does."""

    def get_response(self, request: http.HttpRequest) -> http.HttpResponseBase:
        static_url = urlparse(settings.STATIC_URL or "")
        if static_url.path and not static_url.netloc and request.path.startswith(static_url.path):
            try:
                return serve(request, request.path[len(static_url.path) :], insecure=True)
            except Exception as exc:
                # As a view's would be: 404 for a missing file, 400 for a path
                # outside the static roots (SuspiciousFileOperation), else 500.
                return response_for(request, exc)
        return super().get_response(request)


class ViewConsumer:
    """Answer ``http.request`` messages with Django's views (the default route).

    Replies go out at once, not at the end of the consumer, so streaming
    responses stream. A reply channel that stays full (its client is slow or
    gone) is given up on after ``full_retry_deadline`` seconds.
    """

    handler_class = AsgiHandler
    static_handler_class = StaticFilesAsgiHandler
    full_retry_deadline = 60.0

    def __init__(self, serve_static: bool | None = None) -> None:
        self.serve_static = serve_static
        self._handler: AsgiHandler | None = None

    @property
    def handler(self) -> AsgiHandler:
        if self._handler is None:
            from django.apps import apps

            serve_static = self.serve_static
            if serve_static is None:
                serve_static = settings.DEBUG and apps.is_installed("django.contrib.staticfiles")
            handler_class = self.static_handler_class if serve_static else self.handler_class
            self._handler = handler_class()
        return self._handler

    def __call__(self, message: Any) -> None:
        # Django turns a view's exceptions into responses; these are the rest
        # (loading middleware, request_started receivers, reading the body):
        # the client gets a 500 now, not the interface server's 503 a minute
        # later, and the exception still goes up to the worker, which logs it.
        try:
            replies = self.handler(message)
        except Exception as exc:
            self._answer_failure(message, exc)
            raise
        answered = False
        while True:
            try:
                reply = next(replies)
            except StopIteration:
                return
            except Exception as exc:
                if not answered:
                    self._answer_failure(message, exc)
                raise
            self._send(message, reply)
            answered = True

    def _answer_failure(self, message: Any, exc: Exception) -> None:
        if message.reply_channel is None:
            return
        for reply in AsgiHandler.encode_response(exception_response(exc, message)):
            self._send(message, reply)

    def _send(self, message: Any, reply: Reply) -> None:
        send_when_room(
            lambda: message.reply_channel.send(reply, immediately=True), self.full_retry_deadline
        )


view_consumer = ViewConsumer()
