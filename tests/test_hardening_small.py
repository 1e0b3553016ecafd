"""Small hardening fixes: exact capacity on group sends, bad reply entries, reply names in logs."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable

import pytest
import redis

from channels.layers.base import BaseChannelLayer
from channels.layers.names import new_process_channel
from channels.layers.redis import RedisChannelLayer
from channels.outbox import Outbox
from tests.layers.factory import MakeLayer, layers_of

#: A whole process-specific name: its prefix, ``!`` and a local part.
WHOLE_REPLY_NAME = re.compile(r"daphne\.response\.[\w.-]*![\w-]+")


@pytest.fixture(params=["redis", "inmemory"])
async def make_layer(request: pytest.FixtureRequest) -> AsyncIterator[MakeLayer]:
    async for make in layers_of(request):
        yield make


def drain(layer: BaseChannelLayer, channel: str) -> int:
    received = 0
    while layer.receive([channel], block=False)[0] is not None:
        received += 1
    return received


@pytest.mark.parametrize("kind", ["plain", "reply"])
def test_group_send_to_a_full_channel_delivers_capacity_and_counts_every_drop(
    make_layer: Callable[..., BaseChannelLayer], kind: str
) -> None:
    """150 group sends to a capacity-100 channel: exactly 100 arrive, exactly 50 count as full."""
    layer = make_layer(capacity=100)
    channel = new_process_channel("daphne.response.cap!") if kind == "reply" else "test.cap"
    layer.group_add("everyone", channel)
    for index in range(150):
        layer.send_group("everyone", {"index": index})
    read_on = "daphne.response.cap!" if kind == "reply" else channel
    assert drain(layer, read_on) == 100
    assert layer.channel_statistics(channel)["channel_full_count"] == 50
    assert layer.global_statistics()["channel_full_count"] == 50


def test_a_malformed_reply_entry_is_dropped_and_other_replies_still_arrive(
    redis_url: str, unique_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-ASCII local part in a process's list is skipped with one warning, not raised."""
    layer = RedisChannelLayer(hosts=[redis_url], prefix=unique_prefix)
    prefix = "daphne.response.bad!"
    sockets = [new_process_channel(prefix) for _ in range(3)]
    try:
        layer.send(sockets[0], {"n": 0})
        client = redis.Redis.from_url(redis_url)
        try:
            (key,) = client.scan_iter(match=unique_prefix + "*!")
            assert key.decode() == unique_prefix + prefix
            client.rpush(key, b"99999999999999|\xff\xfe|garbage")
        finally:
            client.close()
        for index, name in enumerate(sockets[1:], start=1):
            layer.send(name, {"n": index})

        async def receive_all() -> set[str]:
            got = set()
            for _ in range(3):
                channel, _message = await asyncio.wait_for(layer.areceive([prefix]), 5)
                if channel is not None:
                    got.add(channel)
            await layer.aclose()
            return got

        with caplog.at_level(logging.WARNING, logger="channels.layers.redis"):
            got = asyncio.run(receive_all())
        assert got == set(sockets)
        warnings = [r for r in caplog.records if "undecodable local parts" in r.getMessage()]
        assert len(warnings) == 1
        assert not WHOLE_REPLY_NAME.search(warnings[0].getMessage())
    finally:
        layer.flush()
        layer.close()


def test_a_dropped_message_to_a_full_reply_channel_logs_only_its_prefix(
    make_layer: Callable[..., BaseChannelLayer], caplog: pytest.LogCaptureFixture
) -> None:
    """Reply channel names key sessions: the drop is logged under the process prefix only."""
    layer = make_layer(capacity=1)
    reply = new_process_channel("daphne.response.gone!")
    layer.send(reply, {"text": "fills it"})
    outbox = Outbox()
    outbox.full_retry_deadline = 0.05
    with outbox:
        outbox.add(layer, "send", reply, {"text": "dropped"})
    with caplog.at_level(logging.DEBUG):
        outbox.send_pending()
    dropped = [r for r in caplog.records if "Dropped a message" in r.getMessage()]
    assert len(dropped) == 1
    assert "daphne.response.gone!" in dropped[0].getMessage()
    for record in caplog.records:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        assert not WHOLE_REPLY_NAME.search(text), text
