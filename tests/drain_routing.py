"""The consumers of tests/test_drain.py: a response the test finishes, and sockets in groups.

``http.request`` to ``/slow/`` answers with its status and a first part, then
reports ``{"slow": True, "reply_channel": ...}`` on ``test.events`` and
returns: the response stays in flight until the test itself sends the rest
to that reply channel (no worker thread waits meanwhile). Any other path is
answered ``fast`` at once. The sockets are :mod:`tests.hygiene_routing`'s:
``/member/<group>/<presence>/<key>/`` joins both, and a disconnect is
reported on ``test.events`` with its code.
"""

from __future__ import annotations

from typing import Any

from channels import Channel
from channels.routing import route
from tests.hygiene_routing import ws_connect, ws_disconnect

#: The first part of ``/slow/``'s body; the test sends the rest.
FIRST_PART = b"first part, "


def http_request(message: Any) -> None:
    reply = message.reply_channel
    if message["path"] != "/slow/":
        reply.send({"status": 200, "content": b"fast"})
        return
    headers = [[b"content-type", b"text/plain"]]
    reply.send({"status": 200, "headers": headers, "content": FIRST_PART, "more_content": True})
    Channel("test.events").send({"slow": True, "reply_channel": reply.name})


routing = [
    route("http.request", http_request),
    route("websocket.connect", ws_connect),
    route("websocket.disconnect", ws_disconnect),
]
ROUTING = "tests.drain_routing.routing"
SETTINGS = "tests.drain_settings"
