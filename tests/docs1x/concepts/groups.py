# ruff: noqa
# fmt: off
# concepts.rst, "Groups": the liveblog with a Group instead.

# Context the sample takes for granted:
import json

from django.db.models.signals import post_save
from django.dispatch import receiver

from channels import Group
from .models import BlogUpdate

# The sample:
@receiver(post_save, sender=BlogUpdate)
def send_update(sender, instance, **kwargs):
    Group("liveblog").send({
        "text": json.dumps({
            "id": instance.id,
            "content": instance.content
        })
    })

# Connected to websocket.connect
def ws_connect(message):
    # Add to reader group
    Group("liveblog").add(message.reply_channel)
    # Accept the connection request
    message.reply_channel.send({"accept": True})

# Connected to websocket.disconnect
def ws_disconnect(message):
    # Remove from reader group on clean disconnect
    Group("liveblog").discard(message.reply_channel)
