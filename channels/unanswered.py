"""What a worker does for a client its consumer left waiting.

* A failed ``http.request`` consumer gets a 500 sent for it. A view's
  exceptions become responses inside Django's handler; a consumer of
  ``http.request`` has no handler around it, so without this its client would
  wait for the interface server's timeout and get a 503 that says nothing.
  The page is the one Django would show: the technical 500 page under
  ``DEBUG``, else ``handler500``'s default (``500.html`` if the project has one).
* A ``websocket.connect`` consumer that returns without accepting or closing
  the socket is warned about, once per consumer (another consumer may accept
  later on purpose, so it is a warning, never an action).
"""

from __future__ import annotations

import logging

from django import http
from django.conf import settings

from .message import Message
from .outbox import Outbox

logger = logging.getLogger("channels.worker")

#: What is sent when even the error page cannot be built.
PLAIN_500 = "<h1>Server Error (500)</h1>"


def error_request(message: Message) -> http.HttpRequest:
    """Build an ``HttpRequest`` for the error page from *message*, never reading its body.

    The failed consumer may have read the body channel already; waiting on it
    again would hold the answer back for the body timeout.
    """
    from .handler import AsgiRequest

    content = {key: value for key, value in message.content.items() if key != "body_channel"}
    return AsgiRequest(Message(content, message.channel.name, message.channel_layer))


def server_error_response(exc: BaseException, message: Message) -> http.HttpResponseBase:
    """Return the 500 response for *exc*, raised by the consumer of *message*."""
    try:
        request = error_request(message)
    except Exception:
        logger.debug("Could not build a request for the error page", exc_info=True)
        return http.HttpResponseServerError(PLAIN_500)
    try:
        if settings.DEBUG:
            from django.views.debug import technical_500_response

            return technical_500_response(request, type(exc), exc, exc.__traceback__)
        from django.views.defaults import server_error

        return server_error(request)
    except Exception:
        logger.debug("Could not render the error page", exc_info=True)
        return http.HttpResponseServerError(PLAIN_500)
    finally:
        request.close()


#: The warning about a ``websocket.connect`` consumer that left its socket waiting.
ACCEPT_HINT = (
    "%s handled websocket.connect without accepting or closing the socket, so its client "
    "waits until the handshake times out. Accept it with "
    "message.reply_channel.send({'accept': True}) (or refuse it with {'close': True}). If "
    "another consumer accepts it later on purpose, ignore this: it is said once per consumer."
)


class ConnectWatch:
    """Warn, once per consumer, about connect consumers that neither accept nor close."""

    def __init__(self) -> None:
        self._warned: set[str] = set()  # set.add is atomic: threads may share a watch

    def check(self, outbox: Outbox, consumer_name: str, message: Message) -> None:
        """Look at what the consumer of *message* sent or queued into *outbox*, before its flush."""
        reply = message.reply_channel
        if reply is None or consumer_name in self._warned:
            return
        targets = outbox.targets()
        # A group send may reach the reply channel (and a text frame accepts): give it the benefit.
        if ("send", reply.name) in targets or any(method == "send_group" for method, _ in targets):
            return
        self._warned.add(consumer_name)
        logger.warning(ACCEPT_HINT, consumer_name)


def replied(outbox: Outbox, message: Message) -> bool:
    """Whether the consumer of *message* sent (not queued) something to its reply channel."""
    reply = message.reply_channel
    return reply is not None and ("send", reply.name) in outbox.sent_now
