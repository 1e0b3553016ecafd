"""Behaviours of asgi_redis 1.4.3's test suite that both our layers must match.

A group send leaves out a member it finds dead (asgi_redis listed this as a
wanted, expected-failure test; the in-memory layer of asgiref did it), and
statistics have asgi_redis's shape: whole seconds for ``messages_max_age``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from channels.layers.redis import RedisChannelLayer
from tests.layers.factory import MakeLayer, layers_of
from tests.redis_server import command_calls

# Redis has two group-send paths: one script call for the whole group, and,
# with capacity rules (or several servers), members first and then pushes.
BACKENDS = ["inmemory", "redis", "redis-with-capacity-rules"]


@pytest.fixture(params=BACKENDS)
async def make_layer(request: pytest.FixtureRequest) -> AsyncIterator[MakeLayer]:
    """Build layers of the parametrized backend; each test gets its own key space."""
    async for make in layers_of(request):
        yield make


@pytest.mark.parametrize("dead", ["tgme_test", "tgme.server!sock"])
def test_group_send_does_not_deliver_to_a_member_it_finds_dead(
    make_layer: MakeLayer, dead: str
) -> None:
    layer = make_layer(expiry=0.3, group_expiry=60)
    receive_on = dead.split("!")[0] + "!" if "!" in dead else dead
    layer.group_add("tgme_group", "tgme_alive")
    layer.group_add("tgme_group", dead)
    layer.send_group("tgme_group", {"value": "first"})
    assert layer.receive(["tgme_alive"]) == ("tgme_alive", {"value": "first"})
    time.sleep(0.4)  # the dead member's message expires unread: its lifetime is under test
    layer.send_group("tgme_group", {"value": "second"})
    assert layer.receive([receive_on]) == (None, None)
    assert layer.receive(["tgme_alive"]) == ("tgme_alive", {"value": "second"})
    assert layer.group_channels("tgme_group") == ["tgme_alive"]


def test_a_plain_send_to_a_channel_whose_message_expired_is_delivered(
    make_layer: MakeLayer,
) -> None:
    """Only group sends leave dead members out; a direct send is always queued."""
    layer = make_layer(expiry=0.3)
    layer.send("revived", {"n": 1})
    time.sleep(0.4)  # let the first message expire unread
    layer.send("revived", {"n": 2})
    assert layer.receive(["revived"]) == ("revived", {"n": 2})


def test_statistics_have_the_asgi_redis_shape(make_layer: MakeLayer) -> None:
    layer = make_layer()
    layer.send("first_channel", {"pay": "load"})
    layer.send("first_channel", {"pay": "load"})
    layer.send("second_channel", {"pay": "load"})
    assert layer.global_statistics() == {"messages_count": 3, "channel_full_count": 0}
    assert layer.channel_statistics("first_channel") == {
        "messages_count": 2,
        "messages_pending": 2,
        "messages_max_age": 0,
        "channel_full_count": 0,
    }
    assert layer.channel_statistics("second_channel") == {
        "messages_count": 1,
        "messages_pending": 1,
        "messages_max_age": 0,
        "channel_full_count": 0,
    }


def test_messages_max_age_counts_whole_seconds(make_layer: MakeLayer) -> None:
    layer = make_layer()
    layer.send("aging", {})
    time.sleep(1.1)  # how long the message has waited is what is measured
    age = layer.channel_statistics("aging")["messages_max_age"]
    assert type(age) is int
    assert age == 1


def test_the_one_call_group_send_still_takes_one_round_trip(
    redis_url: str, unique_prefix: str
) -> None:
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix, expiry=0.3)
    try:
        layer.group_add("rt", "rt.dead")
        layer.group_add("rt", "rt.alive")
        layer.send_group("rt", {})
        layer.receive(["rt.alive"])
        time.sleep(0.4)  # rt.dead's message expires unread
        before = command_calls(redis_url, "EVALSHA")
        layer.send_group("rt", {})  # finds rt.dead, drops it, sends to rt.alive
        assert command_calls(redis_url, "EVALSHA") - before == 1
        assert layer.group_channels("rt") == ["rt.alive"]
    finally:
        layer.flush()
        layer.close()
