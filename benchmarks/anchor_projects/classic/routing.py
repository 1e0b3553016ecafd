"""Channel routing: echo under ``/ws/echo/``, group chat under ``/ws/chat/``.

HTTP needs no route: Channels 1.x adds ``http.request`` to Django's views itself.
"""

from channels.routing import route
from classic import consumers

channel_routing = [
    route("websocket.connect", consumers.echo_connect, path=r"^/ws/echo/$"),
    route("websocket.receive", consumers.echo_receive, path=r"^/ws/echo/$"),
    route("websocket.connect", consumers.chat_connect, path=r"^/ws/chat/$"),
    route("websocket.receive", consumers.chat_receive, path=r"^/ws/chat/$"),
    route("websocket.disconnect", consumers.chat_disconnect, path=r"^/ws/chat/$"),
]
