"""Presence on Redis: one round trip per call, diffs batched in Redis, concurrent workers.

The rules every layer shares are in tests/layers/test_presence.py (which runs
on Redis, Sentinel and a cluster too); this file holds what only Redis has.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from channels.layers.names import new_process_channel
from channels.layers.redis import RedisChannelLayer
from channels.layers.redis.scripts import Command, Script
from channels.layers.redis.shard import Shard
from tests.waiting import wait_until

WATCHER = "presence.watcher"


class CountingShard(Shard):
    """A shard that counts its round trips (each of these methods is one)."""

    def __init__(self, host: Any, connection_kwargs: dict[str, Any]) -> None:
        super().__init__(host, connection_kwargs)
        self.round_trips = 0

    def run(self, commands: Sequence[Command], retry: int | None = None) -> list[Any]:
        self.round_trips += 1
        return super().run(commands, retry)

    def eval(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        self.round_trips += 1
        return super().eval(script, keys, args)

    async def acall(self, command: Command) -> Any:
        self.round_trips += 1
        return await super().acall(command)

    async def aeval(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        self.round_trips += 1
        return await super().aeval(script, keys, args)

    async def aexchange(self, name: str, commands: Sequence[Command]) -> list[Any]:
        self.round_trips += 1
        return await super().aexchange(name, commands)


class CountingLayer(RedisChannelLayer):
    shard_class = CountingShard


@pytest.fixture
def layers(redis_layers: Callable[..., RedisChannelLayer]) -> Callable[..., RedisChannelLayer]:
    """Redis layers (on the test's Redis and prefix) whose every call does housekeeping."""

    def make(**options: Any) -> RedisChannelLayer:
        layer = redis_layers(**options)
        layer.maintain_interval = 0
        return layer

    return make


def frames(layer: RedisChannelLayer) -> list[dict[str, Any]]:
    """Return the diffs waiting for the watcher, decoded."""
    got: list[dict[str, Any]] = []
    while True:
        _, message = layer.receive([WATCHER])
        if message is None:
            return got
        got.append(json.loads(message["text"]))


def round_trips(layer: RedisChannelLayer) -> int:
    return sum(shard.round_trips for shard in layer._shards)  # type: ignore[attr-defined]


def test_track_untrack_list_and_count_are_one_round_trip_each(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    layer = layers(layer_class=CountingLayer)
    channel = new_process_channel("daphne.response.rt!")
    calls: list[tuple[str, Callable[[], object]]] = [
        ("track", lambda: layer.presence_track("room", channel, "ann", {"tab": 1}, "room")),
        ("list", lambda: layer.presence_list("room")),
        ("count", lambda: layer.presence_count("room")),
        ("untrack", lambda: layer.presence_untrack("room", channel)),
        ("group_add", lambda: layer.group_add("room", channel)),
        ("group_count", lambda: layer.group_count("room")),
        ("group_discard", lambda: layer.group_discard("room", channel)),
    ]
    for _, call in calls:  # the first calls load the scripts
        call()
    for name, call in calls:
        before = round_trips(layer)
        call()
        assert (name, round_trips(layer) - before) == (name, 1)
    layer.presence_track("room", channel, "ann")
    before = round_trips(layer)
    layer.presence_release(channel)  # read the channel's index, then release there
    assert round_trips(layer) - before == 2


def test_a_track_after_its_release_costs_one_more_round_trip_and_only_then(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    layer = layers(layer_class=CountingLayer)
    early, usual = (new_process_channel("daphne.response.early!") for _ in range(2))
    layer.presence_track("room", usual, "bob")  # loads the scripts
    before = round_trips(layer)
    layer.presence_release(early)  # marks it, finds nothing to release
    assert round_trips(layer) - before == 1
    before = round_trips(layer)
    layer.presence_track("room", early, "ann")  # sees the mark, releases its entry
    assert round_trips(layer) - before == 2
    before = round_trips(layer)
    layer.presence_track("room", usual, "bob", {"tab": 2})
    assert round_trips(layer) - before == 1


async def test_an_async_track_after_its_release_costs_one_more_round_trip(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    layer = layers(layer_class=CountingLayer, presence_grace=60)
    early = new_process_channel("daphne.response.aearly!")
    await layer.apresence_track("room", new_process_channel("daphne.response.x!"), "bob")
    before = round_trips(layer)
    await layer.apresence_release(early)
    await layer.apresence_track("room", early, "ann")
    assert round_trips(layer) - before == 3
    grace = layer._presence._set("room")[0][0] + ":grace"
    (score,) = layer._shards[0].execute(("ZSCORE", grace, early))
    assert score is not None  # released, leaving after the grace
    await layer.aclose()


def test_a_release_marks_its_channel_for_twice_the_expiry(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    layer = layers(expiry=7)
    channel = new_process_channel("daphne.response.mark!")
    layer.presence_release(channel)
    (left,) = layer._shards[0].execute(("PTTL", layer._presence.marker_key(channel)))
    assert 0 < left <= 14_000


def test_a_release_that_reaches_the_set_before_the_track_script_still_releases_it(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    """The release reads the index after the track wrote it, but beats its set script.

    (On several servers the two run on different shards, in either order; here
    the steps of one track are run apart by hand.)
    """
    layer = layers(presence_grace=0.2)
    channel = new_process_channel("daphne.response.between!")
    track = layer._presence.track_plan("room", channel, "ann", {"n": 1}, None)
    ((shard, commands),) = track.plan.items()
    index = [command for command in commands if command[0] != "EVALSHA"]
    (script,) = [command for command in commands if command[0] == "EVALSHA"]
    replies = shard.execute(*index)
    assert commands[2][0] == "EXISTS"
    assert replies[2] == 0  # the track's index step came first: no mark yet
    layer.presence_release(channel)  # finds the set in the index: no entry there yet
    shard.execute(script)
    assert layer.presence_list("room") == {"ann": [{"n": 1}]}
    wait_until(lambda: layer.presence_list("room") == {}, 5, "the entry to leave after the grace")


def test_a_track_after_its_release_on_several_servers_is_released_on_each(
    redis_layers: Callable[..., RedisChannelLayer], redis_shard_urls: list[str]
) -> None:
    layer = redis_layers(hosts=redis_shard_urls, presence_grace=0.2)
    sets = [f"late{n}" for n in range(12)]  # spread over the three servers
    channel = new_process_channel("daphne.response.late!")
    layer.presence_release(channel)
    for name in sets:
        layer.presence_track(name, channel, "ann")
    layer.presence_track(sets[0], new_process_channel("daphne.response.stays!"), "bob")
    wait_until(
        lambda: all(layer.presence_count(name) == (name == sets[0]) for name in sets),
        5,
        "every set's entry of the released channel to leave",
    )
    assert layer.presence_list(sets[0]) == {"bob": [{}]}


def test_a_housekeeping_pass_with_nothing_to_reap_is_one_round_trip(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    layer = layers(layer_class=CountingLayer)
    layer.maintain()  # loads the scripts
    before = round_trips(layer)
    layer.maintain()
    assert round_trips(layer) - before == 1


async def test_the_async_twins_are_one_round_trip_each(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    layer = layers(layer_class=CountingLayer)
    channel = new_process_channel("daphne.response.art!")
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("track", lambda: layer.apresence_track("room", channel, "ann", {"tab": 1}, "room")),
        ("list", lambda: layer.apresence_list("room")),
        ("count", lambda: layer.apresence_count("room")),
        ("untrack", lambda: layer.apresence_untrack("room", channel)),
        ("group_add", lambda: layer.agroup_add("room", channel)),
        ("group_count", lambda: layer.agroup_count("room")),
    ]
    for _, call in calls:
        await call()
    for name, call in calls:
        before = round_trips(layer)
        await call()
        assert (name, round_trips(layer) - before) == (name, 1)
    await layer.aclose()


def test_500_tracks_then_one_pass_make_one_frame_with_500_joins(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    layer = layers()
    layer.group_add("hall-watch", WATCHER)
    for n in range(500):
        channel = new_process_channel("daphne.response.many!")
        layer.presence_track("hall", channel, f"user{n}", {"n": n}, notify="hall-watch")
    layer.maintain()
    (frame,) = frames(layer)
    assert frame["presence"] == "hall"
    assert frame["leaves"] == {}
    assert len(frame["joins"]) == 500
    assert frame["joins"]["user7"] == [{"n": 7}]
    layer.maintain()
    assert frames(layer) == []


def test_a_release_then_a_new_track_of_the_key_within_the_grace_makes_no_frame(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    layer = layers(presence_grace=0.5)
    layer.group_add("room-watch", WATCHER)
    first, second = (new_process_channel("daphne.response.flaky!") for _ in range(2))
    layer.presence_track("room", first, "ann", {"tab": 1}, notify="room-watch")
    layer.maintain()
    assert [frame["joins"] for frame in frames(layer)] == [{"ann": [{"tab": 1}]}]
    layer.presence_release(first)  # the socket dropped...
    layer.presence_track("room", second, "ann", {"tab": 2}, notify="room-watch")  # ...and is back
    layer.maintain()
    assert frames(layer) == []
    wait_until(
        lambda: layer.presence_list("room") == {"ann": [{"tab": 2}]},
        0.5 + 5,
        "the released channel to leave after its grace",
    )
    layer.maintain()
    assert frames(layer) == []
    assert layer.presence_count("room") == 1


def test_a_key_that_leaves_for_good_makes_a_leave_frame_after_the_grace(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    layer = layers(presence_grace=0.2)
    layer.group_add("room-watch", WATCHER)
    channel = new_process_channel("daphne.response.gone!")
    layer.presence_track("room", channel, "bob", {"id": 9}, notify="room-watch")
    layer.maintain()
    frames(layer)
    layer.presence_release(channel)
    layer.maintain()
    assert frames(layer) == []  # still listed, in its grace

    def left() -> list[dict[str, Any]]:
        layer.maintain()
        return frames(layer)

    got = wait_until(left, 0.2 + 5, "a leave frame once the grace ran out")
    assert got == [{"presence": "room", "joins": {}, "leaves": {"bob": [{"id": 9}]}}]


def test_concurrent_workers_keep_one_count_per_key(
    layers: Callable[..., RedisChannelLayer],
) -> None:
    workers = [layers() for _ in range(4)]
    start = threading.Barrier(len(workers))
    tracked: list[list[str]] = [[] for _ in workers]

    def work(index: int) -> None:
        layer = workers[index]
        start.wait(timeout=10)
        for n in range(40):
            channel = new_process_channel(f"daphne.response.w{index}!")
            layer.presence_track("busy", channel, f"user{n % 10}", {"w": index})
            tracked[index].append(channel)
        for channel in tracked[index][:20]:  # the first tab of each key closes
            layer.presence_untrack("busy", channel)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    listing = workers[0].presence_list("busy")
    assert workers[0].presence_count("busy") == 10
    assert sorted(listing) == [f"user{n}" for n in range(10)]
    assert sum(len(metas) for metas in listing.values()) == 4 * 20
    for layer, channels in zip(workers, tracked, strict=True):
        for channel in channels[20:]:
            layer.presence_untrack("busy", channel)
    assert workers[0].presence_count("busy") == 0


def test_presence_spread_over_several_servers_is_released_and_swept_on_each(
    redis_layers: Callable[..., RedisChannelLayer], redis_shard_urls: list[str]
) -> None:
    layer = redis_layers(hosts=redis_shard_urls, presence_grace=0)
    layer.maintain_interval = 0
    layer.group_add("spread-watch", WATCHER)
    sets = [f"room{n}" for n in range(12)]  # spread over the three servers
    channel = new_process_channel("daphne.response.spread!")
    for name in sets:
        layer.presence_track(name, channel, "ann", notify="spread-watch")
    layer.maintain()
    assert sorted(frame["presence"] for frame in frames(layer)) == sorted(sets)
    layer.presence_release(channel)
    assert all(layer.presence_count(name) == 0 for name in sets)
    layer.maintain()
    assert sorted(frame["presence"] for frame in frames(layer)) == sorted(sets)


def test_presence_on_a_cluster_keeps_every_script_in_one_slot(
    redis_cluster_urls: list[str], unique_prefix: str
) -> None:
    layer = RedisChannelLayer(hosts=redis_cluster_urls[:1], prefix=unique_prefix, cluster=True)
    layer.maintain_interval = 0
    try:
        layer.group_add("c-watch", WATCHER)
        channels = [new_process_channel(f"daphne.response.c{n}!") for n in range(6)]
        for n, channel in enumerate(channels):
            layer.presence_track(f"set{n % 3}", channel, f"k{n}", {"n": n}, notify="c-watch")
        assert layer.presence_count("set0") == 2
        layer.maintain()
        assert len(frames(layer)) == 3
        for channel in channels:
            layer.presence_release(channel)
        assert {layer.presence_count(f"set{n}") for n in range(3)} == {2}  # in their grace
    finally:
        layer.flush()
        layer.close()
