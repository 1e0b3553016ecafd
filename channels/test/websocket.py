"""``WSClient``: a test client that behaves like a browser's WebSocket."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.test import Client as DjangoClient

from ..asgi import DEFAULT_CHANNEL_LAYER
from ..sessions import sessions
from .client import Client

__all__ = ["HttpClient", "WSClient"]


class WSClient(Client):
    """A :class:`Client` that sends WebSocket messages with a path, headers and cookies.

    ``login()``/``force_login()`` create a real Django session (through
    Django's own test client) and send its cookie, so ``http_user``
    consumers see the user. With ``ordered=True`` each message gets the next
    ``order``, as an interface server numbers a socket's messages.
    """

    def __init__(self, alias: str = DEFAULT_CHANNEL_LAYER, ordered: bool = False) -> None:
        super().__init__(alias)
        self.ordered = ordered
        self.order = 0
        self._headers: dict[str, str] = {}
        self._cookies: dict[str, str] = {}

    # Headers and cookies --------------------------------------------------

    def set_header(self, name: str, value: str) -> None:
        """Send header *name* with every message (use :meth:`set_cookie` for cookies)."""
        if name.lower() == "cookie":
            raise ValueError("Set cookies with set_cookie(name, value), not as a header")
        self._headers[name.lower()] = value

    def set_cookie(self, name: str, value: str) -> None:
        self._cookies[name] = value

    def get_headers(self) -> list[list[bytes]]:
        """Return the headers as an interface server sends them: ``[[name, value], ...]``."""
        headers = [
            [name.encode("latin-1"), value.encode("latin-1")]
            for name, value in self._headers.items()
        ]
        if self._cookies:
            cookie = "; ".join(f"{name}={value}" for name, value in self._cookies.items())
            headers.append([b"cookie", cookie.encode("latin-1")])
        return headers

    # Logging in -----------------------------------------------------------

    def login(self, **credentials: Any) -> bool:
        """Log in like ``django.test.Client.login``; return False if the credentials fail."""
        client = DjangoClient()
        if not client.login(**credentials):
            return False
        self._adopt_session(client)
        return True

    def force_login(self, user: Any, backend: str | None = None) -> None:
        """Log *user* in without credentials, like ``django.test.Client.force_login``."""
        client = DjangoClient()
        client.force_login(user, backend)
        self._adopt_session(client)

    def _adopt_session(self, client: DjangoClient) -> None:
        self.set_cookie(
            settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value
        )

    @property
    def session(self) -> Any:
        """The channel session of this client's socket."""
        return sessions.channel_session(self.reply_channel)

    # Messages ---------------------------------------------------------------

    def send(
        self,
        to: str,
        content: dict[str, Any] | None = None,
        text: Any = None,
        path: str = "/",
    ) -> None:
        """Send a message to *to* as this socket: path, headers, order.

        As from an interface server, only ``websocket.connect`` carries the
        ``query_string`` (the part of *path* after ``?``); the other messages
        get the path without it. A *text* that is not a str is sent as its JSON.
        """
        message = dict(content or {})
        path, _, query = path.partition("?")
        message.setdefault("path", path)
        if to == "websocket.connect":
            message.setdefault("query_string", query.encode("latin-1"))
        message.setdefault("headers", self.get_headers())
        if text is not None:
            message["text"] = text if isinstance(text, str) else json.dumps(text)
        if self.ordered and "order" not in message:
            message["order"] = self.order
            self.order += 1
        super().send(to, message)

    def receive(self, json: bool = True) -> Any:
        """Return the next reply's frame: its text decoded as JSON, or with ``json=False`` as is.

        A reply without text (``{"accept": True}``, ``{"close": True}``,
        ``{"bytes": ...}``) comes back whole; None if nothing was sent.
        """
        content = super().receive()
        if content is None:
            return None
        if json and isinstance(content.get("text"), str):
            return _json_loads(content["text"])
        return content.get("text", content)

    def consume(self, channel: str, fail_on_none: bool = True, check_accept: bool = True) -> Any:
        """Run the consumer of the next message on *channel*; return what it returned.

        After ``websocket.connect`` with *check_accept*, take the reply and
        fail unless it accepted the socket.
        """
        ran, result = self._consume(channel, fail_on_none)
        if check_accept and channel == "websocket.connect" and ran:
            reply = super().receive()
            if reply != {"accept": True}:
                raise AssertionError(f"The connect consumer did not accept the socket: {reply!r}")
        return result

    def send_and_consume(  # type: ignore[override]  # 1.x order: text and path before fail_on_none
        self,
        channel: str,
        content: dict[str, Any] | None = None,
        text: Any = None,
        path: str = "/",
        fail_on_none: bool = True,
        check_accept: bool = True,
    ) -> Any:
        """:meth:`send` then :meth:`consume`."""
        self.send(channel, content, text=text, path=path)
        return self.consume(channel, fail_on_none=fail_on_none, check_accept=check_accept)


def _json_loads(text: str) -> Any:
    return json.loads(text)


#: The 1.x name of :class:`WSClient`.
HttpClient = WSClient
