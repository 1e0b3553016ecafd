"""Group counts, presence sets and their diffs: the layer API, checked against every backend.

Grace periods are short (``presence_grace`` of a fraction of a second) where a
test waits for one to run out, and long where it checks that an entry is still
listed meanwhile, so no test depends on how fast the machine is. Diffs are
sent by ``maintain()``; a test sets ``maintain_interval = 0`` on its layer to
have every call make a pass.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from channels.layers.base import BaseChannelLayer
from channels.layers.inmemory import InMemoryChannelLayer
from tests.layers.factory import MakeLayer
from tests.waiting import wait_until

#: Where a test's notify group delivers: a plain channel, member of the group.
WATCHER = "presence.watcher"
#: Long enough that a released entry is surely still listed while a test looks.
LONG_GRACE = 60.0
#: Short enough that a test waits little for a released entry to go.
SHORT_GRACE = 0.2
#: Long enough that the calls right after a release surely fall within its grace,
#: short enough to wait for.
RECONNECT_GRACE = 1.0
#: How long a test waits, at most, for a grace to run out or a frame to come.
WAIT = 10.0


def watched(layer: BaseChannelLayer, group: str = "room") -> BaseChannelLayer:
    """Have WATCHER receive *group*'s frames, and every ``maintain()`` make a pass."""
    layer.group_add(group, WATCHER)
    layer.maintain_interval = 0
    return layer


def diffs(layer: BaseChannelLayer) -> list[dict[str, Any]]:
    """Run a housekeeping pass and return the diffs it sent to WATCHER, decoded."""
    layer.maintain()
    frames: list[dict[str, Any]] = []
    while True:
        _, message = layer.receive([WATCHER])
        if message is None:
            return frames
        assert set(message) == {"text"}
        frames.append(json.loads(message["text"]))


def frame(
    presence: str, joins: dict[str, Any] | None = None, leaves: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The diff a frame carries, decoded."""
    return {"presence": presence, "joins": joins or {}, "leaves": leaves or {}}


def gone(layer: BaseChannelLayer, presence: str, key: str) -> Callable[[], bool]:
    return lambda: key not in layer.presence_list(presence)


# Extensions and options ----------------------------------------------------------


def test_both_layers_list_the_groups_and_presence_extensions(layer: BaseChannelLayer) -> None:
    assert {"groups", "presence"} <= set(layer.extensions)


def test_presence_grace_defaults_to_five_seconds_and_may_be_zero(make_layer: MakeLayer) -> None:
    assert make_layer().presence_grace == 5.0
    assert make_layer(presence_grace=0).presence_grace == 0
    assert make_layer(presence_grace=0.5).presence_grace == 0.5


@pytest.mark.parametrize("grace", [-1, "5", None, True, float("nan"), float("inf")])
def test_a_bad_presence_grace_is_refused_saying_what_to_pass(
    make_layer: MakeLayer, grace: object
) -> None:
    with pytest.raises(ValueError, match="presence_grace must be a number of seconds"):
        make_layer(presence_grace=grace)


def test_maintain_interval_is_one_second_unless_an_instance_says_otherwise(
    layer: BaseChannelLayer,
) -> None:
    assert type(layer).maintain_interval == 1.0
    layer.maintain_interval = 0
    assert layer.maintain_interval == 0


# Group counts --------------------------------------------------------------------


def test_group_count_counts_live_members_once_each(layer: BaseChannelLayer) -> None:
    assert layer.group_count("counted") == 0
    layer.group_add("counted", "c.one")
    layer.group_add("counted", "c.two")
    layer.group_add("counted", "proc.x!a")
    layer.group_add("counted", "proc.x!b")
    layer.group_add("counted", "c.one")  # a refresh, not a second member
    assert layer.group_count("counted") == 4
    layer.group_discard("counted", "c.two")
    layer.group_discard("counted", "never.added")
    assert layer.group_count("counted") == 3
    assert layer.group_count("other") == 0


async def test_agroup_count_is_the_async_twin(layer: BaseChannelLayer) -> None:
    await layer.agroup_add("acounted", "c.one")
    await layer.agroup_add("acounted", "proc.y!a")
    assert await layer.agroup_count("acounted") == 2
    assert layer.group_count("acounted") == 2


def test_group_count_leaves_out_expired_memberships(make_layer: MakeLayer) -> None:
    layer = make_layer(group_expiry=1)
    layer.group_add("expiring", "old.member")
    wait_until(lambda: layer.group_count("expiring") == 0, WAIT, "the membership to expire")
    layer.group_add("expiring", "fresh.member")
    assert layer.group_count("expiring") == 1
    assert layer.group_channels("expiring") == ["fresh.member"]


@pytest.mark.parametrize("name", ["", "a?b", "a!", "x" * 100, 5])
def test_group_count_checks_the_group_name(layer: BaseChannelLayer, name: object) -> None:
    with pytest.raises(TypeError):
        layer.group_count(name)  # type: ignore[arg-type]


# Tracking and listing --------------------------------------------------------------


def test_list_gives_each_key_the_metas_of_its_channels(layer: BaseChannelLayer) -> None:
    layer.presence_track("lobby", "sock.a!1", "alice", {"tab": 1})
    layer.presence_track("lobby", "sock.a!2", "alice", {"tab": 2})
    layer.presence_track("lobby", "sock.b!1", "bob", {"tab": 1})
    assert layer.presence_list("lobby") == {
        "alice": [{"tab": 1}, {"tab": 2}],
        "bob": [{"tab": 1}],
    }
    assert layer.presence_count("lobby") == 2  # alice's two tabs count once


def test_an_unknown_presence_is_empty(layer: BaseChannelLayer) -> None:
    assert layer.presence_list("nobody.here") == {}
    assert layer.presence_count("nobody.here") == 0


def test_meta_defaults_to_an_empty_dict(layer: BaseChannelLayer) -> None:
    layer.presence_track("lobby", "sock.a!1", "alice")
    assert layer.presence_list("lobby") == {"alice": [{}]}


def test_meta_comes_back_as_json_gives_it(layer: BaseChannelLayer) -> None:
    meta = {
        "name": "Zoë \U0001f600",
        "n": 3,
        "x": 2.5,
        "flags": [True, False, None],
        "nested": {"list": [1, "two", {"three": 3}]},
        "pair": (1, 2),  # JSON has no tuple: a list comes back
    }
    layer.presence_track("lobby", "sock.a!1", "alice", meta)
    assert layer.presence_list("lobby") == {"alice": [json.loads(json.dumps(meta))]}


def test_the_stored_meta_is_a_copy(layer: BaseChannelLayer) -> None:
    meta = {"items": [1]}
    layer.presence_track("lobby", "sock.a!1", "alice", meta)
    meta["items"].append(2)
    listed = layer.presence_list("lobby")
    listed["alice"][0]["items"].append(3)
    assert layer.presence_list("lobby") == {"alice": [{"items": [1]}]}


def test_metas_are_listed_in_track_order(layer: BaseChannelLayer) -> None:
    # Channel names in another order than the tracks: the order is the tracks'.
    for index, channel in enumerate(["sock.z!1", "sock.a!1", "sock.m!1", "sock.b!1"]):
        layer.presence_track("ordered", channel, "alice", {"n": index})
    assert layer.presence_list("ordered") == {"alice": [{"n": n} for n in range(4)]}


def test_tracking_a_channel_again_replaces_its_meta(layer: BaseChannelLayer) -> None:
    layer.presence_track("lobby", "sock.a!1", "alice", {"status": "away"})
    layer.presence_track("lobby", "sock.a!1", "alice", {"status": "here"})
    assert layer.presence_list("lobby") == {"alice": [{"status": "here"}]}
    assert layer.presence_count("lobby") == 1


def test_tracking_a_channel_again_under_another_key_moves_it(layer: BaseChannelLayer) -> None:
    layer.presence_track("lobby", "sock.a!1", "alice", {"n": 1})
    layer.presence_track("lobby", "sock.a!1", "bob", {"n": 2})
    assert layer.presence_list("lobby") == {"bob": [{"n": 2}]}
    assert layer.presence_count("lobby") == 1


def test_presence_sets_are_independent(layer: BaseChannelLayer) -> None:
    layer.presence_track("room-1", "sock.a!1", "alice", {"in": 1})
    layer.presence_track("room-2", "sock.a!1", "alice", {"in": 2})
    layer.presence_untrack("room-1", "sock.a!1")
    assert layer.presence_list("room-1") == {}
    assert layer.presence_list("room-2") == {"alice": [{"in": 2}]}


def test_untrack_removes_at_once_and_is_idempotent(make_layer: MakeLayer) -> None:
    layer = make_layer(presence_grace=LONG_GRACE)  # untrack has no grace
    layer.presence_track("lobby", "sock.a!1", "alice")
    layer.presence_track("lobby", "sock.a!2", "alice")
    layer.presence_track("lobby", "sock.b!1", "bob")
    layer.presence_untrack("lobby", "sock.a!1")
    assert layer.presence_list("lobby") == {"alice": [{}], "bob": [{}]}
    layer.presence_untrack("lobby", "sock.b!1")
    assert layer.presence_list("lobby") == {"alice": [{}]}
    assert layer.presence_count("lobby") == 1
    layer.presence_untrack("lobby", "sock.b!1")
    layer.presence_untrack("lobby", "never.tracked")
    layer.presence_untrack("no.such.presence", "sock.a!2")
    assert layer.presence_count("lobby") == 1


def test_flush_forgets_presence(layer: BaseChannelLayer) -> None:
    layer.presence_track("lobby", "sock.a!1", "alice")
    layer.flush()
    assert layer.presence_list("lobby") == {}
    assert layer.presence_count("lobby") == 0


# Release and grace ---------------------------------------------------------------------


def test_a_released_entry_stays_listed_during_the_grace(make_layer: MakeLayer) -> None:
    layer = make_layer(presence_grace=LONG_GRACE)
    layer.presence_track("lobby", "sock.a!1", "alice", {"n": 1})
    layer.presence_release("sock.a!1")
    layer.maintain()
    assert layer.presence_list("lobby") == {"alice": [{"n": 1}]}
    assert layer.presence_count("lobby") == 1


def test_a_released_entry_leaves_when_the_grace_runs_out(make_layer: MakeLayer) -> None:
    layer = make_layer(presence_grace=SHORT_GRACE)
    layer.presence_track("lobby", "sock.a!1", "alice", {"n": 1})
    layer.presence_track("lobby", "sock.b!1", "bob", {"n": 2})
    layer.presence_release("sock.a!1")
    wait_until(lambda: layer.presence_count("lobby") == 1, WAIT, "alice's grace to run out")
    assert layer.presence_list("lobby") == {"bob": [{"n": 2}]}


def test_release_covers_every_presence_of_the_channel(make_layer: MakeLayer) -> None:
    layer = make_layer(presence_grace=SHORT_GRACE)
    for room in ("room-1", "room-2", "room-3"):
        layer.presence_track(room, "sock.a!1", "alice")
        layer.presence_track(room, "sock.b!1", "bob")
    layer.presence_release("sock.a!1")
    for room in ("room-1", "room-2", "room-3"):
        wait_until(gone(layer, room, "alice"), WAIT, f"alice to leave {room}")
        assert layer.presence_list(room) == {"bob": [{}]}


def test_with_no_grace_a_release_removes_at_once(make_layer: MakeLayer) -> None:
    layer = make_layer(presence_grace=0)
    layer.presence_track("lobby", "sock.a!1", "alice")
    layer.presence_track("lobby", "sock.b!1", "bob")
    layer.presence_release("sock.a!1")
    assert layer.presence_list("lobby") == {"bob": [{}]}


def test_release_is_idempotent(make_layer: MakeLayer) -> None:
    layer = make_layer(presence_grace=SHORT_GRACE)
    layer.presence_track("lobby", "sock.a!1", "alice")
    layer.presence_release("sock.a!1")
    layer.presence_release("sock.a!1")
    layer.presence_release("never.tracked")
    wait_until(gone(layer, "lobby", "alice"), WAIT, "alice to leave")
    layer.presence_release("sock.a!1")  # after it left, too
    assert layer.presence_list("lobby") == {}


def test_a_key_tracked_on_a_new_channel_during_the_grace_stays(make_layer: MakeLayer) -> None:
    """A reconnect: the old socket's entry goes after the grace; the key never leaves."""
    layer = make_layer(presence_grace=SHORT_GRACE)
    layer.presence_track("lobby", "sock.old!1", "alice", {"socket": "old"})
    layer.presence_release("sock.old!1")
    layer.presence_track("lobby", "sock.new!1", "alice", {"socket": "new"})
    wait_until(
        lambda: layer.presence_list("lobby") == {"alice": [{"socket": "new"}]},
        WAIT,
        "the old socket's entry to go",
    )
    assert layer.presence_count("lobby") == 1


def test_tracking_a_released_channel_again_keeps_its_release(make_layer: MakeLayer) -> None:
    """A released channel's socket is gone: a late track of it does not bring it back."""
    layer = make_layer(presence_grace=SHORT_GRACE)
    layer.presence_track("lobby", "sock.a!1", "alice")
    layer.presence_track("lobby", "sock.b!1", "bob")
    layer.presence_release("sock.a!1")
    layer.presence_release("sock.b!1")
    layer.presence_track("lobby", "sock.a!1", "alice", {"back": True})
    # bob was released after alice: once he has gone, alice's grace has run out too.
    wait_until(gone(layer, "lobby", "bob"), WAIT, "bob's grace to run out")
    assert layer.presence_list("lobby") == {}


def test_untrack_during_the_grace_removes_at_once(make_layer: MakeLayer) -> None:
    layer = make_layer(presence_grace=LONG_GRACE)
    layer.presence_track("lobby", "sock.a!1", "alice")
    layer.presence_release("sock.a!1")
    layer.presence_untrack("lobby", "sock.a!1")
    assert layer.presence_list("lobby") == {}


# A socket that closed before it was tracked ------------------------------------------
#
# The interface server releases a socket when it closes; the worker that tracks
# it (its websocket.connect consumer) may run after that, if the client left at
# once. The track must still leave, as the release said.


def test_a_track_after_its_release_is_listed_during_the_grace(make_layer: MakeLayer) -> None:
    layer = watched(make_layer(presence_grace=LONG_GRACE))
    layer.presence_release("sock.a!1")
    layer.presence_track("lobby", "sock.a!1", "alice", {"n": 1}, notify="room")
    assert layer.presence_list("lobby") == {"alice": [{"n": 1}]}
    assert layer.presence_count("lobby") == 1
    assert diffs(layer) == [frame("lobby", joins={"alice": [{"n": 1}]})]


def test_a_track_after_its_release_leaves_when_the_grace_runs_out(make_layer: MakeLayer) -> None:
    """Its join and its leave are sent as usual: in two frames, or neither in one batch."""
    layer = watched(make_layer(presence_grace=SHORT_GRACE))
    layer.presence_release("sock.a!1")
    layer.presence_track("lobby", "sock.a!1", "alice", {"n": 1}, notify="room")
    layer.presence_track("lobby", "sock.b!1", "bob", notify="room")
    sent: list[dict[str, Any]] = []

    def alice_gone() -> bool:
        sent.extend(diffs(layer))
        return "alice" not in layer.presence_list("lobby")

    wait_until(alice_gone, WAIT, "alice's grace to run out")
    sent.extend(diffs(layer))
    assert layer.presence_list("lobby") == {"bob": [{}]}
    alice = [
        change
        for diff in sent
        for change, keys in (("join", diff["joins"]), ("leave", diff["leaves"]))
        if "alice" in keys
    ]
    assert alice in ([], ["join", "leave"])
    assert [diff["joins"].get("bob") for diff in sent if "bob" in diff["joins"]] == [[{}]]
    assert not any("bob" in diff["leaves"] for diff in sent)


def test_a_release_marks_its_own_channel_only(make_layer: MakeLayer) -> None:
    layer = make_layer(presence_grace=SHORT_GRACE)
    layer.presence_release("sock.a!1")
    layer.presence_track("lobby", "sock.a!1", "alice")
    layer.presence_track("lobby", "sock.a!2", "alice", {"tab": 2})  # same process, never released
    layer.presence_track("lobby", "sock.b!1", "bob")
    wait_until(
        lambda: layer.presence_list("lobby") == {"alice": [{"tab": 2}], "bob": [{}]},
        WAIT,
        "the released channel's entry to go",
    )
    assert layer.presence_count("lobby") == 2


def test_a_track_after_its_release_with_no_grace_is_never_listed(make_layer: MakeLayer) -> None:
    layer = watched(make_layer(presence_grace=0))
    layer.presence_release("sock.a!1")
    layer.presence_track("lobby", "sock.a!1", "alice", notify="room")
    assert layer.presence_list("lobby") == {}
    assert layer.presence_count("lobby") == 0
    assert diffs(layer) == []  # it joined and left in one batch


async def test_the_async_twins_release_a_track_that_comes_after_the_release(
    make_layer: MakeLayer,
) -> None:
    layer = make_layer(presence_grace=SHORT_GRACE)
    await layer.apresence_release("sock.a!1")
    await layer.apresence_track("lobby", "sock.a!1", "alice")
    await layer.apresence_track("lobby", "sock.b!1", "bob")
    wait_until(gone(layer, "lobby", "alice"), WAIT, "alice's grace to run out")
    assert await layer.apresence_list("lobby") == {"bob": [{}]}


# Argument checks ------------------------------------------------------------------------

#: Where the contract lets a backend raise either (a value of the right type, but wrong).
EITHER = (TypeError, ValueError)


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        (("bad name", "sock.a!1", "alice"), TypeError, "(?i)presence"),
        (("a?b", "sock.a!1", "alice"), TypeError, "(?i)presence"),
        ((5, "sock.a!1", "alice"), TypeError, "(?i)presence"),
        (("lobby", "bad channel", "alice"), TypeError, "(?i)channel"),
        (("lobby", None, "alice"), TypeError, "(?i)channel"),
        (("lobby", "sock.a!1", 5), TypeError, "(?i)key"),
        (("lobby", "sock.a!1", b"alice"), TypeError, "(?i)key"),
        (("lobby", "sock.a!1", ""), EITHER, "(?i)key"),
        (("lobby", "sock.a!1", "alice", ["not", "a", "dict"]), TypeError, "(?i)meta"),
        (("lobby", "sock.a!1", "alice", {"when": object()}), EITHER, "(?i)json"),
        (("lobby", "sock.a!1", "alice", {"nan": float("nan")}), EITHER, "(?i)json"),
        (("lobby", "sock.a!1", "alice", {"big": "x" * 5000}), ValueError, "4096"),
        (("lobby", "sock.a!1", "alice", None, "bad name"), TypeError, "(?i)notify"),
        (("lobby", "sock.a!1", "alice", None, 5), TypeError, "(?i)notify"),
    ],
)
def test_track_refuses_bad_arguments_saying_what_to_pass_and_records_nothing(
    layer: BaseChannelLayer, arguments: tuple[Any, ...], error: Any, match: str
) -> None:
    with pytest.raises(error, match=match):
        layer.presence_track(*arguments)
    assert layer.presence_list("lobby") == {}


def test_a_meta_within_the_limit_is_accepted(layer: BaseChannelLayer) -> None:
    layer.presence_track("lobby", "sock.a!1", "alice", {"big": "x" * 4000})
    assert layer.presence_list("lobby") == {"alice": [{"big": "x" * 4000}]}


@pytest.mark.parametrize("name", ["bad name", "a?b", 5])
def test_the_other_calls_check_the_presence_name(layer: BaseChannelLayer, name: Any) -> None:
    with pytest.raises(TypeError):
        layer.presence_untrack(name, "sock.a!1")
    with pytest.raises(TypeError):
        layer.presence_list(name)
    with pytest.raises(TypeError):
        layer.presence_count(name)


def test_untrack_and_release_check_the_channel_name(layer: BaseChannelLayer) -> None:
    with pytest.raises(TypeError):
        layer.presence_untrack("lobby", "bad channel")
    with pytest.raises(TypeError):
        layer.presence_release("bad channel")


# Diffs ---------------------------------------------------------------------------------


def test_a_join_is_sent_as_a_compact_json_frame(layer: BaseChannelLayer) -> None:
    watched(layer)
    layer.presence_track("lobby", "sock.a!1", "alice", {"name": "Alice"}, notify="room")
    layer.maintain()
    name, message = layer.receive([WATCHER], block=True, timeout=WAIT)
    assert name == WATCHER
    expected = {"presence": "lobby", "joins": {"alice": [{"name": "Alice"}]}, "leaves": {}}
    assert message == {"text": json.dumps(expected, separators=(",", ":"))}


def test_an_untrack_is_sent_as_a_leave_with_the_meta_it_had(layer: BaseChannelLayer) -> None:
    watched(layer)
    layer.presence_track("lobby", "sock.a!1", "alice", {"n": 1}, notify="room")
    assert diffs(layer) == [frame("lobby", joins={"alice": [{"n": 1}]})]
    layer.presence_untrack("lobby", "sock.a!1")
    assert diffs(layer) == [frame("lobby", leaves={"alice": [{"n": 1}]})]
    assert diffs(layer) == []


def test_changes_are_batched_into_one_frame_per_presence(layer: BaseChannelLayer) -> None:
    watched(layer)
    for n in range(50):
        layer.presence_track("big", f"sock.u{n}!1", f"user{n}", {"n": n}, notify="room")
    layer.presence_track("small", "sock.u0!1", "user0", notify="room")
    sent = diffs(layer)
    assert sorted(diff["presence"] for diff in sent) == ["big", "small"]
    big = next(diff for diff in sent if diff["presence"] == "big")
    assert big == frame("big", joins={f"user{n}": [{"n": n}] for n in range(50)})


def test_a_key_that_joins_and_leaves_in_one_batch_sends_nothing(layer: BaseChannelLayer) -> None:
    watched(layer)
    layer.presence_track("lobby", "sock.a!1", "alice", notify="room")
    layer.presence_untrack("lobby", "sock.a!1")
    assert diffs(layer) == []


def test_a_key_that_leaves_and_comes_back_in_one_batch_sends_nothing(
    layer: BaseChannelLayer,
) -> None:
    watched(layer)
    layer.presence_track("lobby", "sock.a!1", "alice", notify="room")
    assert len(diffs(layer)) == 1
    layer.presence_untrack("lobby", "sock.a!1")
    layer.presence_track("lobby", "sock.a!2", "alice", notify="room")
    assert diffs(layer) == []


def test_only_keys_appearing_or_vanishing_make_diffs(layer: BaseChannelLayer) -> None:
    watched(layer)
    layer.presence_track("lobby", "sock.a!1", "alice", {"tab": 1}, notify="room")
    assert len(diffs(layer)) == 1
    layer.presence_track("lobby", "sock.a!2", "alice", {"tab": 2}, notify="room")  # a second tab
    layer.presence_track("lobby", "sock.a!1", "alice", {"tab": 3}, notify="room")  # new meta
    layer.presence_untrack("lobby", "sock.a!2")  # one of two tabs closes
    assert diffs(layer) == []


def test_moving_a_channel_to_another_key_is_a_leave_and_a_join(layer: BaseChannelLayer) -> None:
    watched(layer)
    layer.presence_track("lobby", "sock.a!1", "alice", {"n": 1}, notify="room")
    assert len(diffs(layer)) == 1
    layer.presence_track("lobby", "sock.a!1", "bob", {"n": 2}, notify="room")
    assert diffs(layer) == [frame("lobby", joins={"bob": [{"n": 2}]}, leaves={"alice": [{"n": 1}]})]


def test_without_notify_no_frames_are_sent(layer: BaseChannelLayer) -> None:
    watched(layer)
    layer.presence_track("lobby", "sock.a!1", "alice")
    layer.presence_untrack("lobby", "sock.a!1")
    layer.presence_track("lobby", "sock.b!1", "bob")
    assert diffs(layer) == []


def test_frames_go_to_the_notify_group_only(layer: BaseChannelLayer) -> None:
    watched(layer, "room-a")
    layer.group_add("room-b", "presence.other")
    layer.presence_track("lobby", "sock.a!1", "alice", notify="room-a")
    assert diffs(layer) == [frame("lobby", joins={"alice": [{}]})]
    assert layer.receive(["presence.other"]) == (None, None)


def test_a_release_is_a_leave_once_the_grace_runs_out(make_layer: MakeLayer) -> None:
    layer = watched(make_layer(presence_grace=SHORT_GRACE))
    layer.presence_track("lobby", "sock.a!1", "alice", {"n": 1}, notify="room")
    assert len(diffs(layer)) == 1
    layer.presence_release("sock.a!1")
    sent: list[dict[str, Any]] = []

    def collected() -> list[dict[str, Any]]:
        sent.extend(diffs(layer))
        return sent

    wait_until(collected, WAIT, "the leave after the grace")
    assert sent == [frame("lobby", leaves={"alice": [{"n": 1}]})]


def test_a_reconnect_within_the_grace_sends_no_leave_nor_join(make_layer: MakeLayer) -> None:
    """A flaky socket drops and reconnects: its page's peers see nothing happen."""
    layer = watched(make_layer(presence_grace=RECONNECT_GRACE))
    layer.presence_track("lobby", "sock.old!1", "alice", {"socket": "old"}, notify="room")
    assert len(diffs(layer)) == 1
    layer.presence_release("sock.old!1")
    assert diffs(layer) == []  # a pass during the grace: alice is still here
    layer.presence_track("lobby", "sock.new!1", "alice", {"socket": "new"}, notify="room")
    assert diffs(layer) == []
    wait_until(
        lambda: layer.presence_list("lobby") == {"alice": [{"socket": "new"}]},
        WAIT,
        "the old socket's entry to go",
    )
    assert diffs(layer) == []


def test_maintain_makes_at_most_one_pass_per_interval(layer: BaseChannelLayer) -> None:
    watched(layer)
    layer.maintain_interval = 3600
    layer.presence_track("lobby", "sock.a!1", "alice", notify="room")
    sent = diffs(layer)
    layer.presence_track("lobby", "sock.b!1", "bob", notify="room")
    sent += diffs(layer)
    sent += diffs(layer)
    assert len(sent) <= 1  # the first call may or may not be a pass; no two are
    layer.maintain_interval = 0
    sent += diffs(layer)
    joined = {key for diff in sent for key in diff["joins"]}
    assert joined == {"alice", "bob"}


def test_a_diff_too_large_for_one_message_is_split_over_several(make_layer: MakeLayer) -> None:
    layer = watched(make_layer(max_message_size=2048))
    metas = {f"user{n}": [{"pad": "x" * 150, "n": n}] for n in range(30)}  # ~5 kB in all
    for key, (meta,) in metas.items():
        layer.presence_track("big", f"sock.{key}!1", key, meta, notify="room")
    sent = diffs(layer)
    assert len(sent) > 1
    assert all(diff["presence"] == "big" and diff["leaves"] == {} for diff in sent)
    joined = [key for diff in sent for key in diff["joins"]]
    assert sorted(joined) == sorted(metas)  # each key once
    assert {key: metas for diff in sent for key, metas in diff["joins"].items()} == metas


def test_maintain_survives_a_key_too_large_for_any_frame(make_layer: MakeLayer) -> None:
    layer = watched(make_layer(max_message_size=2048))
    layer.presence_track("big", "sock.a!1", "alice", {"pad": "x" * 3000}, notify="room")
    assert diffs(layer) == []  # dropped (and logged), not raised
    layer.presence_track("big", "sock.b!1", "bob", notify="room")
    assert diffs(layer) == [frame("big", joins={"bob": [{}]})]


def test_maintain_with_nothing_to_do_sends_nothing(layer: BaseChannelLayer) -> None:
    watched(layer)
    assert diffs(layer) == []
    assert diffs(layer) == []


# Async twins ---------------------------------------------------------------------------


async def test_the_async_twins_do_what_the_plain_methods_do(make_layer: MakeLayer) -> None:
    layer = watched(make_layer(presence_grace=SHORT_GRACE))
    await layer.apresence_track("lobby", "sock.a!1", "alice", {"n": 1}, notify="room")
    await layer.apresence_track("lobby", "sock.a!2", "alice", {"n": 2}, "room")
    await layer.apresence_track("lobby", "sock.b!1", "bob")
    assert await layer.apresence_list("lobby") == {"alice": [{"n": 1}, {"n": 2}], "bob": [{}]}
    assert await layer.apresence_count("lobby") == 2
    await layer.apresence_untrack("lobby", "sock.b!1")
    assert await layer.apresence_count("lobby") == 1
    await layer.amaintain()
    _, message = await layer.areceive([WATCHER], block=True, timeout=WAIT)
    assert message is not None
    assert json.loads(message["text"])["joins"] == {"alice": [{"n": 1}]}
    await layer.apresence_release("sock.a!1")
    await layer.apresence_release("sock.a!2")
    wait_until(gone(layer, "lobby", "alice"), WAIT, "alice's grace to run out")
    assert await layer.apresence_list("lobby") == {}


# Concurrency ---------------------------------------------------------------------------


def two_layers(make_layer: MakeLayer, **options: Any) -> tuple[BaseChannelLayer, BaseChannelLayer]:
    """Two processes' layers on one backend (in memory, one layer: it has no other process)."""
    first = make_layer(**options)
    if isinstance(first, InMemoryChannelLayer):
        return first, first
    return first, make_layer(**options)


def test_a_track_is_seen_by_every_layer_on_the_backend(make_layer: MakeLayer) -> None:
    first, second = two_layers(make_layer)
    first.presence_track("lobby", "sock.a!1", "alice", {"n": 1})
    second.presence_track("lobby", "sock.b!1", "alice", {"n": 2})
    assert first.presence_list("lobby") == second.presence_list("lobby")
    assert second.presence_list("lobby") == {"alice": [{"n": 1}, {"n": 2}]}
    second.presence_untrack("lobby", "sock.a!1")
    assert first.presence_list("lobby") == {"alice": [{"n": 2}]}


def test_concurrent_tracks_and_untracks_lose_nothing_and_count_each_key_once(
    make_layer: MakeLayer,
) -> None:
    layers = two_layers(make_layer)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(index: int) -> None:
        layer = layers[index % 2]
        try:
            start.wait(WAIT)
            for n in range(20):
                channel = f"sock.t{index}!{n}"
                layer.presence_track("busy", channel, f"user{n % 5}", {"t": index, "n": n})
                if n % 2:
                    layer.presence_untrack("busy", channel)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    listed = layers[0].presence_list("busy")
    # The even n stayed: 10 per thread, on users 0, 2, 4, 1, 3 (n % 5 of even n).
    assert sorted(listed) == [f"user{k}" for k in range(5)]
    assert sum(len(metas) for metas in listed.values()) == 80
    assert all(meta["n"] % 2 == 0 for metas in listed.values() for meta in metas)
    assert layers[1].presence_count("busy") == 5


def test_releases_racing_tracks_of_the_same_sockets_leave_nothing_behind(
    make_layer: MakeLayer,
) -> None:
    """Whichever comes first, a track and a release of one socket end with it gone."""
    first, second = two_layers(make_layer, presence_grace=SHORT_GRACE)
    errors: list[BaseException] = []
    start = threading.Barrier(4)
    sockets = [[f"sock.r{pair}!{n}" for n in range(30)] for pair in range(2)]

    def work(index: int) -> None:
        try:
            start.wait(WAIT)
            for n, channel in enumerate(sockets[index // 2]):
                if index % 2:
                    second.presence_release(channel)
                else:
                    first.presence_track("racing", channel, f"user{n % 7}", {"n": n})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    wait_until(lambda: first.presence_count("racing") == 0, WAIT, "every racing entry to go")
    assert second.presence_list("racing") == {}
