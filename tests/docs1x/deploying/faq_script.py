# ruff: noqa
# fmt: off
# faqs.rst, "How do I talk to Channels from my non-Django application?"
# (the >>> session, as a script).

from yourproject.asgi import channel_layer
from channels import Channel, Group
Channel("channel_name").send({"text":"channel_text"})
Group("group_name").send({"text":"group_text"})
