"""The consumers of tests/test_group_hygiene.py: sockets that join groups and presence sets.

The path says what a socket joins:

``/member/<group>/<presence>/<key>/``
    the group, and the presence set under *key* (no diffs);
``/observe/<group>/``
    the group only: it hears the diffs of a presence set that notifies it;
``/track/<presence>/<key>/``
    the presence set under *key*, its diffs sent to ``Group(<presence>)``.

Every socket is accepted, then told its reply channel (``{"reply_channel": ...}``),
so the test can tell which members are whose. A disconnect is reported to the
channel ``test.events`` (its path, code and reply channel), and nothing else
is done: leaving the groups and presence sets is the layer's and the
bridge's job, which the tests check.
"""

from __future__ import annotations

import json
from typing import Any

from channels import Channel, Group
from channels.presence import Presence
from channels.routing import route


def ws_connect(message: Any) -> None:
    kind, *names = message["path"].strip("/").split("/")
    reply = message.reply_channel
    meta = {"path": message["path"]}
    if kind == "member":
        group, presence, key = names
        Group(group).add(reply)
        Presence(presence).track(reply, key, meta)
    elif kind == "observe":
        Group(names[0]).add(reply)
    elif kind == "track":
        presence, key = names
        Presence(presence, notify=True).track(reply, key, meta)
    reply.send({"accept": True})
    reply.send({"text": json.dumps({"reply_channel": reply.name})})


def ws_disconnect(message: Any) -> None:
    Channel("test.events").send(
        {
            "disconnected": message["path"],
            "code": message["code"],
            "reply_channel": message.reply_channel.name,
        }
    )


routing = [
    route("websocket.connect", ws_connect),
    route("websocket.disconnect", ws_disconnect),
]
ROUTING = "tests.hygiene_routing.routing"
SETTINGS = "tests.hygiene_settings"
