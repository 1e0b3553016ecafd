# ruff: noqa
# fmt: off
# getting-started.rst, "Security": allowed_hosts_only on a connect consumer.
#
# Broken in 1.x as written: the import line ends in a stray "." (a SyntaxError),
# and the body is elided ("..."). Kept: the import without the dot, and the
# body of the "Authentication" section's ws_add, which the "..." stands for.

# In consumers.py
from channels import Channel, Group
from channels.sessions import channel_session
from channels.auth import channel_session_user, channel_session_user_from_http
from channels.security.websockets import allowed_hosts_only

# Connected to websocket.connect
@allowed_hosts_only
@channel_session_user_from_http
def ws_add(message):
    # Accept connection
    # (elided in the docs; the "Authentication" section's body:)
    message.reply_channel.send({"accept": True})
    Group("chat-%s" % message.user.username[0]).add(message.reply_channel)
