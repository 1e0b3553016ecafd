# ruff: noqa
"""The tutorial's "Models" consumers, as written there, plus helpers for the tests."""

import os
import time

from channels import Channel, Group
from .models import ChatMessage


# Connected to chat-messages
def msg_consumer(message):
    # Save to model
    room = message.content["room"]
    ChatMessage.objects.create(
        room=room,
        message=message.content["message"],
    )
    # Broadcast to listening sockets
    Group("chat-%s" % room).send(
        {
            "text": message.content["message"],
        }
    )


# Connected to chat-in: a producer consumer, as the tutorial's ws_message is.
def chat_in(message):
    # Stick the message onto the processing queue
    Channel("chat-messages").send(
        {
            "room": message["room"],
            "message": message["text"],
        }
    )


def whoami(message):
    message.reply_channel.send({"pid": os.getpid(), "channel": message.channel.name})


def slow(message):
    message.reply_channel.send({"started": os.getpid()}, immediately=True)
    time.sleep(message["seconds"])
    message.reply_channel.send({"finished": os.getpid()})
