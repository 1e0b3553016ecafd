"""Every exception channels-classic raises, in one place.

Layer exceptions are also reachable as attributes of every channel layer
(``layer.ChannelFull``, ``layer.MessageTooLarge``), as the ASGI 1 spec asks.
"""

from __future__ import annotations

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


class InvalidChannelLayerError(ImproperlyConfigured):
    """A ``CHANNEL_LAYERS`` entry is wrong; the message says which and how to fix it."""


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
