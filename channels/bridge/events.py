"""What reaches a connection besides its worker's replies: the bridge's own control events.

A worker's reply is a ``dict`` a consumer built; it may carry any key. What
the bridge itself has to tell a connection (the client went away, its body is
too large, the layer cannot be read, the body could not be streamed, the
server stops) is a :class:`ControlEvent`, a type no reply can be, so no reply
is ever mistaken for one whatever keys it carries.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Any

#: One message a worker sent to a reply channel, as the layer decoded it.
Reply = dict[str, Any]


class ControlEvent(enum.Enum):
    """Something the bridge itself tells a connection, never a worker's reply."""

    #: The client disconnected (HTTP): stop waiting for a response.
    DISCONNECTED = "disconnected"
    #: The request body passed ``CHANNELS_MAX_BODY_SIZE``: answer 413.
    TOO_LARGE = "too large"
    #: The dispatcher cannot read replies from the channel layer: answer 503 / close 1011.
    LAYER_DOWN = "layer down"
    #: Streaming the request body to its body channel failed: answer 503.
    BODY_FAILED = "body failed"
    #: The server is stopping and the drain timeout ran out before this response
    #: finished (``CHANNELS_DRAIN_TIMEOUT``): abort it, or answer 503 if it has not begun.
    SHUTDOWN = "the server stopped before it was complete (CHANNELS_DRAIN_TIMEOUT)"


#: Takes one reply for a connection; the dispatcher awaits what it returns, if anything.
Deliver = Callable[[Reply], Awaitable[None] | None]
#: Takes one control event for a connection, as :data:`Deliver` takes replies.
Control = Callable[[ControlEvent], Awaitable[None] | None]
