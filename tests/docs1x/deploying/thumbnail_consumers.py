# ruff: noqa
# fmt: off
# Context for deploying.rst, "Run worker servers": a project with a "thumbnail"
# channel (for ``runworker --exclude-channels=thumbnail``) and another channel.

def thumbnail(message):
    message.reply_channel.send({"done": "thumbnail"})


def resize(message):
    message.reply_channel.send({"done": "resize"})
