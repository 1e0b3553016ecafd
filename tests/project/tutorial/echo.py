# ruff: noqa
# The echo server of getting-started-1.x, as written there.


def ws_message(message):
    # ASGI WebSocket packet-received and send-packet message types
    # both have a "text" key for their textual data.
    message.reply_channel.send(
        {
            "text": message.content["text"],
        }
    )


# In routing.py
from channels.routing import route

channel_routing = [
    route("websocket.receive", ws_message),
]
