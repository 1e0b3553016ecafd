"""Consumers the routing and worker tests route to."""

from channels import Channel, Group


def echo(message, **kwargs):
    message.reply_channel.send({"text": message["text"], "kwargs": kwargs})


def other(message, **kwargs):
    message.reply_channel.send({"other": True, "kwargs": kwargs})


not_callable = 42


class ClassConsumer:
    @classmethod
    def channel_names(cls):
        return {"class.one", "class.two"}

    def __init__(self, message, **kwargs):
        message.reply_channel.send({"class": message.channel.name, "kwargs": kwargs})


def forward(message):
    Channel("sample.forwarded").send({"text": message["text"]})
    Group("sample.group").send({"group": message["text"]})
