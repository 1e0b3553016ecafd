"""An encrypted Redis layer refuses what someone with Redis access replays, moves or rewrites.

Each test plays the attacker on a real Redis: it reads entries the layer
stored, and pushes copies or changed versions of them back with a plain
Redis client, as anyone with write access to Redis could. Receivers are
separate layer objects, as separate worker processes would be, or a real
``runworker``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest
import redis

from channels import Channel
from channels.layers.redis import RedisChannelLayer
from channels.layers.redis.seal import SEAL_LENGTH as SEAL
from channels.routing import route
from tests.processes import project_env, start_runworker

KEYS = ["the first secret"]
SECRET = "the password is swordfish"

MakeLayer = Callable[..., RedisChannelLayer]


def run_job(message: Any) -> None:
    Channel("job.done").send({"n": message.content["n"]})


#: What the real runworker serves: each job says it ran.
routing = [route("job.run", run_job)]


@pytest.fixture
def make_layer(redis_layers: MakeLayer) -> MakeLayer:
    return redis_layers


@pytest.fixture
def attacker(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def refusals(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING, logger="channels.layers.redis"):
        yield caplog
    assert SECRET not in caplog.text  # refusals are logged without the content


def test_a_replayed_entry_is_delivered_once(
    make_layer: MakeLayer,
    attacker: redis.Redis,
    unique_prefix: str,
    refusals: pytest.LogCaptureFixture,
) -> None:
    """A captured job pushed again, to any receiver and any number of times, does not run again."""
    sender, worker_1, worker_2 = (make_layer(symmetric_encryption_keys=KEYS) for _ in range(3))
    sender.send("job.run", {"text": SECRET})
    (captured,) = attacker.lrange(unique_prefix + "job.run", 0, -1)
    assert worker_1.receive(["job.run"]) == ("job.run", {"text": SECRET})
    attacker.rpush(unique_prefix + "job.run", captured, captured)
    assert worker_1.receive(["job.run"]) == (None, None)
    assert worker_2.receive(["job.run"], block=True, timeout=1) == (None, None)
    assert attacker.llen(unique_prefix + "job.run") == 0
    assert "replayed" in refusals.text


async def test_a_replayed_reply_is_delivered_once_on_a_process_channel(
    make_layer: MakeLayer,
    attacker: redis.Redis,
    unique_prefix: str,
    refusals: pytest.LogCaptureFixture,
) -> None:
    """An interface server's async receive of its ``prefix!`` channel refuses a replayed reply."""
    worker = make_layer(symmetric_encryption_keys=KEYS)
    daphne = make_layer(symmetric_encryption_keys=KEYS)
    worker.send("daphne.response.p1!sock", {"text": SECRET})
    key = unique_prefix + "daphne.response.p1!"
    (captured,) = attacker.lrange(key, 0, -1)
    try:
        reply = await daphne.areceive(["daphne.response.p1!"], block=True, timeout=1)
        assert reply == ("daphne.response.p1!sock", {"text": SECRET})
        attacker.rpush(key, captured)
        assert await daphne.areceive(["daphne.response.p1!"], block=True, timeout=1) == (
            None,
            None,
        )
    finally:
        await daphne.aclose()
    assert "replayed" in refusals.text


def test_an_entry_moved_to_another_channel_is_refused(
    make_layer: MakeLayer,
    attacker: redis.Redis,
    unique_prefix: str,
    refusals: pytest.LogCaptureFixture,
) -> None:
    """A message for one channel, moved to another channel's list, is not accepted there."""
    layer = make_layer(symmetric_encryption_keys=KEYS)
    layer.send("payments.refund", {"text": SECRET})
    entry = attacker.lpop(unique_prefix + "payments.refund")
    attacker.rpush(unique_prefix + "payments.approve", entry)
    assert layer.receive(["payments.approve"]) == (None, None)
    assert "does not verify" in refusals.text


@pytest.mark.parametrize("members", [["one"], ["one", "two"]])
def test_rewritten_local_parts_are_refused(
    make_layer: MakeLayer,
    attacker: redis.Redis,
    unique_prefix: str,
    refusals: pytest.LogCaptureFixture,
    members: list[str],
) -> None:
    """Redirecting an entry of a process's list to another of its sockets is refused."""
    layer = make_layer(symmetric_encryption_keys=KEYS)
    for member in members:
        layer.group_add("room", "daphne.response.p1!" + member)
    layer.send_group("room", {"text": SECRET})
    key = unique_prefix + "daphne.response.p1!"
    entry = attacker.lpop(key)
    assert entry is not None
    deadline, local_parts, body = entry.split(b"|", 2)
    assert local_parts == b",".join(m.encode() for m in members)
    attacker.rpush(key, b"%s|%s|%s" % (deadline, b"victim", body))
    attacker.rpush(key, b"%s|%s|%s" % (deadline, local_parts + b",victim", body))
    assert layer.receive(["daphne.response.p1!"]) == (None, None)
    assert refusals.text.count("does not verify") == 2


def test_a_rewritten_deadline_is_refused(
    make_layer: MakeLayer, attacker: redis.Redis, unique_prefix: str, refusals: Any
) -> None:
    """Nobody can make an entry live longer than the layer's expiry."""
    layer = make_layer(symmetric_encryption_keys=KEYS)
    layer.send("job.run", {"text": SECRET})
    entry = attacker.lpop(unique_prefix + "job.run")
    deadline, rest = entry.split(b"|", 1)
    attacker.rpush(unique_prefix + "job.run", b"%d|%s" % (int(deadline) + 3_600_000, rest))
    assert layer.receive(["job.run"]) == (None, None)
    assert "does not verify" in refusals.text


def test_a_group_send_stores_one_ciphertext_for_every_list_and_reaches_every_member(
    make_layer: MakeLayer, attacker: redis.Redis, unique_prefix: str
) -> None:
    """One token serves a whole group send; each list's entry is sealed to that list."""
    layer = make_layer(symmetric_encryption_keys=KEYS)
    members = ["daphne.response.p1!a", "daphne.response.p1!b", "daphne.response.p2!c", "solo"]
    for member in members:
        layer.group_add("room", member)
    layer.send_group("room", {"text": SECRET})
    stored = [
        attacker.lrange(unique_prefix + key, 0, -1)
        for key in ("daphne.response.p1!", "daphne.response.p2!", "solo")
    ]
    assert [len(entries) for entries in stored] == [1, 1, 1]
    bodies = {entries[0].split(b"|", 2)[2] for entries in stored}
    tags, tokens = {body[:SEAL] for body in bodies}, {body[SEAL:] for body in bodies}
    assert len(tags) == 3
    assert len(tokens) == 1
    received = [layer.receive(["daphne.response.p1!"]) for _ in range(2)]
    received += [layer.receive(["daphne.response.p2!"]), layer.receive(["solo"])]
    assert sorted(name for name, _ in received) == sorted(members)
    assert all(message == {"text": SECRET} for _, message in received)


def test_encryption_keys_still_rotate(
    make_layer: MakeLayer, refusals: pytest.LogCaptureFixture
) -> None:
    """The first key seals and encrypts; any key in the list opens, so keys can be rotated."""
    old = make_layer(symmetric_encryption_keys=["old key"])
    both = make_layer(symmetric_encryption_keys=["old key", "new key"])
    rotated = make_layer(symmetric_encryption_keys=["new key", "old key"])
    new = make_layer(symmetric_encryption_keys=["new key"])
    old.send("rotate", {"n": 1})
    assert rotated.receive(["rotate"]) == ("rotate", {"n": 1})
    rotated.send("rotate", {"n": 2})
    assert both.receive(["rotate"]) == ("rotate", {"n": 2})
    both.send("rotate", {"n": 3})
    assert new.receive(["rotate"]) == (None, None)  # sealed with the old key only
    rotated.send("rotate", {"n": 4})
    assert new.receive(["rotate"]) == ("rotate", {"n": 4})
    new.send("rotate", {"n": 5})
    assert old.receive(["rotate"]) == (None, None)


def test_a_plain_layer_stores_and_reads_entries_as_before(
    make_layer: MakeLayer, attacker: redis.Redis, unique_prefix: str
) -> None:
    """Without keys, an entry is deadline, local parts and the msgpack: no seal, no claims."""
    layer = make_layer()
    layer.send("plain", {"text": "hello"})
    layer.send("daphne.response.p1!a", {"text": "hi"})
    (entry,) = attacker.lrange(unique_prefix + "plain", 0, -1)
    deadline, local_parts, body = entry.split(b"|", 2)
    assert deadline.isdigit()
    assert local_parts == b""
    assert body == msgpack.packb({"text": "hello"}, use_bin_type=True)
    (entry,) = attacker.lrange(unique_prefix + "daphne.response.p1!", 0, -1)
    assert entry.split(b"|", 2)[1:] == [b"a", msgpack.packb({"text": "hi"}, use_bin_type=True)]
    assert layer.receive(["plain"]) == ("plain", {"text": "hello"})
    assert layer.receive(["daphne.response.p1!"]) == ("daphne.response.p1!a", {"text": "hi"})
    assert attacker.keys(unique_prefix + "claimed:*") == []


def test_a_worker_runs_a_job_once_however_often_its_entry_is_pushed(
    make_layer: MakeLayer, attacker: redis.Redis, redis_url: str, unique_prefix: str
) -> None:
    """A real runworker on the encrypted layer: one send, replayed twice, runs once."""
    layer = make_layer(symmetric_encryption_keys=KEYS)
    layer.send("job.run", {"n": 1})
    (captured,) = attacker.lrange(unique_prefix + "job.run", 0, -1)
    env = project_env(
        CHANNELS_TEST_REDIS_URL=redis_url,
        CHANNELS_TEST_PREFIX=unique_prefix,
        CHANNELS_TEST_ROUTING="tests.test_hardening_crypto.routing",
        CHANNELS_TEST_ENCRYPTION_KEY=KEYS[0],
    )
    worker = start_runworker(env)
    try:
        assert layer.receive(["job.done"], block=True, timeout=20) == ("job.done", {"n": 1})
        attacker.rpush(unique_prefix + "job.run", captured, captured)
        layer.send("job.run", {"n": 2})  # queued after the replays: its run comes after theirs
        ran = []
        while not ran or ran[-1] != 2:
            name, message = layer.receive(["job.done"], block=True, timeout=20)
            assert name == "job.done", f"the worker stopped answering after {ran}"
            ran.append(message["n"])
        assert ran == [2]
    finally:
        worker.stop()
    assert layer.receive(["job.done"]) == (None, None)
