"""Routings with the mistakes of a first hour with channels, for tests/test_first_hour.py."""

from __future__ import annotations

import os
import time

from channels import Channel
from channels.routing import route


def whoami(message):
    message.reply_channel.send({"pid": os.getpid()})


def slow(message):
    message.reply_channel.send({"started": os.getpid()}, immediately=True)
    time.sleep(message["seconds"])


def failing_view(message):
    raise ValueError("boom from the http consumer")


def silent_connect(message):
    """Forget to accept: the mistake the worker warns about."""
    Channel("test.events").send({"connected": message["path"]})


def failing(message):
    raise RuntimeError("a consumer failed on purpose")


http_routing = [route("http.request", failing_view, path=r"^/fail/")]

connect_routing = [
    route("websocket.connect", silent_connect),
    route("first.fail", failing),
    route(["whoami.a"], whoami),
]

worker_routing = [route(["whoami.a"], whoami), route("slow", slow)]

typo_routing = [route("websocket.recieve", whoami), route("http.request", whoami)]
