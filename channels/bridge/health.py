"""The health check a load balancer asks an interface server, answered without a worker.

With ``CHANNELS_HEALTH_PATH`` set (say ``"/healthz"``), a request for that
path never reaches the channel layer: the bridge answers it from what the
process knows of itself, so the answer says whether *this* process should get
new connections, whatever the workers are doing.

* ``200 ok`` while it serves;
* ``503 draining`` from the moment it starts to drain (``SIGTERM``, see
  :mod:`channels.bridge.drain`), so the balancer stops sending it
  connections before they would be refused;
* ``503 channel layer unreachable`` while its reply loop cannot read the
  layer: every request would get a 503 there anyway.

A health check also starts the process's reply loop and takes its
``SIGTERM`` over, as a first real connection would: the first requests a
balancer sends are usually its checks.
"""

from __future__ import annotations

from . import daphne
from .connection import Scope, Send
from .dispatcher import ReplyDispatcher

#: The headers of every answer: plain text, never cached by a proxy.
HEADERS = [[b"content-type", b"text/plain; charset=utf-8"], [b"cache-control", b"no-store"]]


def health(dispatcher: ReplyDispatcher) -> tuple[int, bytes]:
    """Return the status and body of the health check of *dispatcher*'s process."""
    if dispatcher.drain.draining:
        return 503, b"draining\n"
    if dispatcher.outage.down:
        return 503, b"channel layer unreachable\n"
    return 200, b"ok\n"


async def answer_health_check(dispatcher: ReplyDispatcher, scope: Scope, send: Send) -> None:
    """Answer the health check request of *scope* (its body, if any, is not read)."""
    protocol = daphne.daphne_protocol(send)
    dispatcher.drain.watch(protocol)
    dispatcher.start()
    status, body = health(dispatcher)
    headers = [*HEADERS, [b"content-length", str(len(body)).encode()]]
    if dispatcher.drain.draining and not daphne.close_after_response(protocol):
        headers.append([b"connection", b"close"])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if scope.get("method") == "HEAD":
        body = b""
    await send({"type": "http.response.body", "body": body, "more_body": False})
