from channels.routing import route

from . import consumers

ROOM_PATH = r"^/chat/(?P<room>[-\w]+)/$"
#: The room list page is "/", and so is its socket.
ROOM_LIST_PATH = r"^/$"

channel_routing = [
    route("websocket.connect", consumers.ws_connect, path=ROOM_PATH),
    route("websocket.receive", consumers.ws_receive, path=ROOM_PATH),
    route("websocket.disconnect", consumers.ws_disconnect, path=ROOM_PATH),
    consumers.RoomList.as_route(path=ROOM_LIST_PATH),
    route("chat-messages", consumers.save_message),
]
