"""Channels 1.x consumers: WebSocket echo and a group chat (``[user] <text>``)."""

from channels import Group

CHAT_GROUP = "chat"


def echo_connect(message):
    message.reply_channel.send({"accept": True})


def echo_receive(message):
    message.reply_channel.send({"text": message.content["text"]})


def chat_connect(message):
    Group(CHAT_GROUP).add(message.reply_channel)
    message.reply_channel.send({"accept": True})


def chat_receive(message):
    Group(CHAT_GROUP).send({"text": "[user] " + message.content["text"]})


def chat_disconnect(message):
    Group(CHAT_GROUP).discard(message.reply_channel)
