# ruff: noqa
# fmt: off
# concepts.rst, "Groups": a liveblog keeping its readers in a Redis set by hand.

# Context the sample takes for granted:
import json

import redis
from django.db.models.signals import post_save
from django.dispatch import receiver

from channels import Channel
from .models import BlogUpdate

# The sample:
redis_conn = redis.Redis("localhost", 6379)

@receiver(post_save, sender=BlogUpdate)
def send_update(sender, instance, **kwargs):
    # Loop through all reply channels and send the update
    for reply_channel in redis_conn.smembers("readers"):
        Channel(reply_channel).send({
            "text": json.dumps({
                "id": instance.id,
                "content": instance.content
            })
        })

# Connected to websocket.connect
def ws_connect(message):
    # Add to reader set
    redis_conn.sadd("readers", message.reply_channel.name)
