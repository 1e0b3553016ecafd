"""Every exception channels-classic raises, in one place.

Layer exceptions are also reachable as attributes of every channel layer
(``layer.ChannelFull``, ``layer.MessageTooLarge``), as the ASGI 1 spec asks.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured


class ChannelFull(Exception):
    """The channel is at capacity; the message was not sent.

    What to do next depends on the protocol: an interface server answers 503,
    a worker flushing a consumer's sends retries with a bounded backoff.
    """


class MessageTooLarge(Exception):
    """The encoded message is bigger than the layer's ``max_message_size``.

    Split the payload, or raise ``max_message_size`` in the layer's CONFIG.
    """


class ChannelLayerConnectionError(ConnectionError):
    """The layer's backing store could not be reached.

    Calls in flight fail with this; later calls reconnect by themselves.
    """


class ChannelLayerConfigurationError(ChannelLayerConnectionError):
    """The layer's backing store answers, but refuses the layer as configured.

    A wrong database index, a missing or wrong password: the message names the
    setting to fix. It is a :class:`ChannelLayerConnectionError`, so loops that
    retry an unreachable layer (the worker's receive loop, the interface
    server's reply loop) back off on it too, and pick up again by themselves
    once the server or the settings are put right.
    """


class ChannelLayerAuthenticationError(ChannelLayerConfigurationError):
    """The layer's backing store refused its credentials (a missing or wrong password)."""


class InvalidChannelLayerError(ImproperlyConfigured):
    """A ``CHANNEL_LAYERS`` entry is wrong; the message says which and how to fix it."""


class RoutingImportError(InvalidChannelLayerError):
    """Importing a layer's ``ROUTING`` module raised an exception of its own.

    Unlike a ``ROUTING`` path that names nothing, this is a bug in the module:
    the message names the file and the original exception is the cause.
    ``filename`` is that file, where Django's autoreloader looks for it, so
    ``runserver`` watches the broken module and restarts once it is fixed.
    """

    def __init__(self, message: str, filename: str | None = None) -> None:
        super().__init__(message)
        self.filename = filename


class ConsumeLater(Exception):
    """Raised by a consumer to put the message back at the end of its channel."""


class DenyConnection(Exception):
    """Raised by a ``websocket.connect`` consumer to reject the socket (HTTP 403)."""


class ResponseLater(Exception):
    """Raised by a view to say another consumer will send the HTTP response."""


class RequestTimeout(Exception):
    """Reading the request body from its body channel took too long (HTTP 408)."""


class RequestAborted(Exception):
    """The client went away while the request body was being read."""


class ResponseIncomplete(Exception):
    """The bridge cannot finish a response it started (the worker stopped sending).

    Raised to the ASGI server, where the bridge cannot abort the connection
    itself, so the server drops it: ending it cleanly would make the
    truncated response look complete.
    """


class SendNotAvailableOnDemultiplexer(Exception):
    """A demultiplexer has no stream of its own, so it cannot send to its socket.

    Send from the stream's consumer (``self.send()`` or the ``multiplexer``
    keyword argument), or with ``WebsocketMultiplexer.group_send()``.
    """


#: Close codes an application may choose (RFC 6455 7.4): normal closure, and the
#: registered/private range. daphne refuses any other code from an application.
APPLICATION_CLOSE_CODES = frozenset((1000, *range(3000, 5000)))


class ChannelSocketException(Exception):
    """Raised by a consumer to end its message with an action on the socket.

    The worker catches it, sends what the consumer had queued, and calls
    :meth:`run` with the message, so one ``raise`` both stops the consumer and
    answers the client. Subclass it and implement :meth:`run`.
    """

    def run(self, message: Any) -> None:
        raise NotImplementedError("run() must be implemented by a ChannelSocketException")


class WebsocketCloseException(ChannelSocketException):
    """Raised by a WebSocket consumer to close the socket, with an optional close *code*.

    Without a code the socket closes normally (1000). A code must be 1000 or
    in 3000-4999: the others are reserved for the protocol and servers.
    """

    def __init__(self, code: int | None = None) -> None:
        if code is not None and (
            isinstance(code, bool)
            or not isinstance(code, int)
            or code not in APPLICATION_CLOSE_CODES
        ):
            raise ValueError(
                f"Invalid WebSocket close code {code!r}: use 1000 or a code from 3000 to 4999, "
                "or no code for a normal closure"
            )
        super().__init__(code)
        self.code = code

    def run(self, message: Any) -> None:
        if not message.channel.name.startswith("websocket.") or message.reply_channel is None:
            raise ValueError(
                f"WebsocketCloseException was raised by a consumer of {message.channel.name!r}; "
                "raise it only from websocket.* consumers (use DenyConnection to refuse a socket)"
            )
        message.reply_channel.send({"close": self.code or True}, immediately=True)
