# ruff: noqa
# fmt: off
# getting-started.rst, "Routing": the room taken from the URL rather than the username.

# Context the fragment takes for granted:
from channels import Group
from channels.auth import channel_session_user_from_http

# Connected to websocket.connect
@channel_session_user_from_http
def ws_add(message, room_name):
    # Add them to the right group
    Group("chat-%s" % room_name).add(message.reply_channel)
    # Accept the connection request
    message.reply_channel.send({"accept": True})
