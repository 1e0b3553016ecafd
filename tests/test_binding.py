"""Data binding: outbound diffs after commit, inbound requests and their errors, end to end."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.test import override_settings
from websockets.sync.client import connect

from channels.asgi import ChannelLayerWrapper
from channels.binding import CREATE, DELETE, UPDATE
from channels.binding.outbound import registry
from channels.binding.websockets import WebsocketBinding
from channels.generic.websockets import WebsocketDemultiplexer
from channels.test import ChannelTestCase, WSClient, apply_routes
from tests.bindingapp.bindings import ItemBinding, ItemMembersBinding, TaggedBinding
from tests.bindingapp.docsample.models import IntegerValue
from tests.bindingapp.models import Item, Tagged
from tests.bindingapp.routing import Boards
from tests.interface import http
from tests.processes import django_command, project_env


@pytest.fixture(autouse=True)
def forget_local_bindings() -> Iterator[None]:
    """Bindings a test defines stop listening when it ends."""
    before = list(registry)
    yield
    for binding in [b for b in registry if b not in before]:
        binding.unregister()


class Inbox:
    """A reply channel in some groups on the test's layer; what reaches it, decoded."""

    def __init__(self, layer: ChannelLayerWrapper, name: str, *groups: str) -> None:
        self.layer = layer
        self.channel = f"test.inbox.{name}"
        for group in groups:
            layer.group_add(group, self.channel)

    def frames(self) -> list[Any]:
        found = []
        while True:
            name, message = self.layer.receive([self.channel], block=False)
            if name is None:
                return found
            found.append(json.loads(message["text"]))

    def actions(self) -> list[tuple[str, str]]:
        return [(f["payload"]["action"], f["payload"]["data"]["board"]) for f in self.frames()]


# Definition ---------------------------------------------------------------------


def test_a_binding_without_fields_or_exclude_is_refused_where_it_is_defined() -> None:
    with pytest.raises(ValueError, match="You must set fields or exclude"):

        class NoFields(WebsocketBinding):
            model = Item
            stream = "x"


def test_a_binding_naming_no_installed_model_is_refused() -> None:
    with pytest.raises(ValueError, match="names no installed model"):

        class Typo(WebsocketBinding):
            model = "bindingapp.Nope"
            stream = "x"
            fields = ["__all__"]


def test_model_strings_are_resolved_and_abstract_bindings_are_not_registered() -> None:
    assert ItemBinding.resolve_model() is Item
    assert ItemBinding.model_label == "bindingapp.item"

    class Abstract(WebsocketBinding):
        model = None

    assert Abstract not in registry
    assert ItemBinding in registry


# Outbound -----------------------------------------------------------------------

real_transactions = pytest.mark.django_db(transaction=True)


@real_transactions
def test_create_update_delete_reach_the_instances_group(layer: ChannelLayerWrapper) -> None:
    lobby = Inbox(layer, "lobby", "board-lobby")
    item = Item.objects.create(name="a", board="lobby", value=1, secret="s")
    (frame,) = lobby.frames()
    assert frame == {
        "stream": "items",
        "payload": {
            "action": "create",
            "pk": item.pk,
            "data": {"name": "a", "board": "lobby", "value": 1, "owner": None},
            "model": "bindingapp.item",
        },
    }
    item.value = 2
    item.save()
    pk = item.pk
    item.delete()
    frames = lobby.frames()
    assert [f["payload"]["action"] for f in frames] == [UPDATE, DELETE]
    assert frames[0]["payload"]["data"]["value"] == 2
    assert frames[1]["payload"]["pk"] == pk
    assert frames[1]["payload"]["data"]["name"] == "a"


@real_transactions
def test_groups_are_diffed_delete_then_update_then_create(layer: ChannelLayerWrapper) -> None:
    class Everywhere(WebsocketBinding):
        model = Item
        stream = "every"
        fields = ["board"]

        @classmethod
        def group_names(cls, instance):
            return [f"every-{instance.board}", "every-all"]

    item = Item.objects.create(name="m", board="a")
    left, both, joined = (
        Inbox(layer, "left", "every-a"),
        Inbox(layer, "both", "every-a", "every-all", "every-b"),
        Inbox(layer, "joined", "every-b"),
    )
    item.board = "b"
    item.save()  # the instance holds the new board: the old groups come from the database
    assert left.actions() == [(DELETE, "b")]
    assert both.actions() == [(DELETE, "b"), (UPDATE, "b"), (CREATE, "b")]
    assert joined.actions() == [(CREATE, "b")]


@real_transactions
def test_an_empty_serialization_sends_nothing(layer: ChannelLayerWrapper) -> None:
    class Quiet(WebsocketBinding):
        model = Item
        stream = "quiet"
        fields = ["name"]

        @classmethod
        def group_names(cls, instance):
            return ["quiet"]

        def serialize(self, instance, action):
            return {} if instance.value < 0 else super().serialize(instance, action)

    quiet = Inbox(layer, "quiet", "quiet")
    Item.objects.create(name="hidden", value=-1)
    Item.objects.create(name="shown", value=1)
    assert [f["payload"]["data"]["name"] for f in quiet.frames()] == ["shown"]


@real_transactions
def test_sends_wait_for_the_commit_and_a_rollback_sends_nothing(
    layer: ChannelLayerWrapper,
) -> None:
    lobby = Inbox(layer, "lobby", "board-lobby")
    with transaction.atomic():
        item = Item.objects.create(name="t", board="lobby")
        item.value = 5
        item.save()
        assert lobby.frames() == []  # not committed yet
    # Several saves of one instance: announced in order, the last with the committed data.
    frames = lobby.frames()
    assert [f["payload"]["action"] for f in frames] == [CREATE, UPDATE]
    assert frames[-1]["payload"]["data"]["value"] == 5

    with transaction.atomic():
        item.value = 6
        item.save()
        transaction.set_rollback(True)
    assert lobby.frames() == []
    with pytest.raises(RuntimeError, match="roll back"):
        create_then_fail()
    assert lobby.frames() == []
    assert not Item.objects.filter(name="never").exists()


def create_then_fail() -> None:
    with transaction.atomic():
        Item.objects.create(name="never", board="lobby")
        raise RuntimeError("roll back")


@real_transactions
def test_a_rolled_back_savepoint_drops_only_its_own_change(layer: ChannelLayerWrapper) -> None:
    item = Item.objects.create(name="s", board="a")
    board_a, board_b, board_c = (
        Inbox(layer, "a", "board-a"),
        Inbox(layer, "b", "board-b"),
        Inbox(layer, "c", "board-c"),
    )
    with transaction.atomic():
        item.board = "b"
        item.save()
        try:
            with transaction.atomic():
                item.board = "c"
                item.save()
                raise RuntimeError("undo the move to c")
        except RuntimeError:
            item.board = "b"
        item.value = 9
        item.save()
    assert board_a.actions() == [(DELETE, "b")]
    assert [(f["payload"]["action"], f["payload"]["data"]["value"]) for f in board_b.frames()] == [
        (CREATE, 0),
        (UPDATE, 9),
    ]
    assert board_c.frames() == []


@real_transactions
def test_broadcast_announces_changes_no_signal_reports(layer: ChannelLayerWrapper) -> None:
    item = Item.objects.create(name="q", board="lobby")
    lobby = Inbox(layer, "lobby", "board-lobby")
    with transaction.atomic():
        Item.objects.filter(pk=item.pk).update(value=42)  # no signal: nobody hears it
        item.refresh_from_db()
        ItemBinding.broadcast(item, UPDATE)
        assert lobby.frames() == []
    (frame,) = lobby.frames()
    assert frame["payload"]["action"] == UPDATE
    assert frame["payload"]["data"]["value"] == 42
    with pytest.raises(ValueError, match="Unknown action"):
        ItemBinding.broadcast(item, "upsert")


@real_transactions
def test_non_integer_primary_keys_are_sent_as_strings(layer: ChannelLayerWrapper) -> None:
    tagged = Inbox(layer, "tagged", "tagged")
    instance = Tagged.objects.create(name="u")
    (frame,) = tagged.frames()
    assert frame["payload"]["pk"] == str(instance.pk)
    assert frame["payload"]["model"] == "bindingapp.tagged"
    assert frame["payload"]["data"] == {"name": "u"}


@real_transactions
def test_members_are_sent_with_dotted_names_called_and_json_encoded(
    layer: ChannelLayerWrapper,
) -> None:
    owned = Inbox(layer, "owned", "owned")
    ada = User.objects.create_user("ada")
    item = Item.objects.create(name="mine", value=4, owner=ada, secret="hidden")
    (frame,) = owned.frames()
    data = frame["payload"]["data"]
    assert frame["stream"] == "members"
    assert data["doubled"] == 8
    assert data["shout"] == "MINE"
    assert data["owner__username"] == "ada"
    assert data["created"] == json.loads(DjangoJSONEncoder().encode(item.created))
    assert "secret" not in data
    assert ItemMembersBinding.send_members


class OneXStyleTests(ChannelTestCase):
    """A 1.x project's tests run in a TestCase transaction that never commits."""

    def test_changes_in_a_test_case_are_sent_at_once_as_in_1x(self) -> None:
        client = WSClient()
        client.join_group("board-lobby")
        item = Item.objects.create(name="tc", board="lobby")
        assert client.receive()["payload"]["pk"] == item.pk
        item.delete()  # Django's delete() opens an atomic block of its own
        assert client.receive()["payload"]["action"] == DELETE
        assert client.receive() is None


# Inbound, through the test toolkit ------------------------------------------------


@override_settings(SESSION_ENGINE="django.contrib.sessions.backends.cache")
class InboundTests(ChannelTestCase):
    def socket(self, user: User | None = None) -> WSClient:
        client = WSClient()
        if user is not None:
            client.force_login(user)
        client.send_and_consume("websocket.connect", path="/items/lobby/")
        return client

    def request(self, client: WSClient, **payload: Any) -> Any:
        client.send_and_consume(
            "websocket.receive", path="/items/lobby/", text={"stream": "items", "payload": payload}
        )
        return client.receive()

    def test_create_update_delete_with_permission(self) -> None:
        with apply_routes([Boards.as_route(path=r"^/items/(?P<board>\w+)/$")]):
            anonymous = self.socket()
            created = self.request(
                anonymous, action=CREATE, data={"name": "n", "board": "lobby", "value": 3}
            )
            item = Item.objects.get(name="n")
            assert created["payload"] == {
                "action": CREATE,
                "pk": item.pk,
                "data": {"name": "n", "board": "lobby", "value": 3, "owner": None},
                "model": "bindingapp.item",
            }
            updated = self.request(anonymous, action=UPDATE, pk=item.pk, data={"value": 4})
            assert updated["payload"]["data"]["value"] == 4

            refused = self.request(anonymous, action=DELETE, pk=item.pk)
            assert refused == {
                "stream": "items",
                "payload": {
                    "error": {
                        "code": "permission_denied",
                        "message": "You may not delete this bindingapp.item",
                        "action": DELETE,
                        "pk": item.pk,
                    }
                },
            }
            assert Item.objects.filter(pk=item.pk).exists()

            staff = self.socket(User.objects.create_user("boss", is_staff=True))
            deleted = self.request(staff, action=DELETE, pk=item.pk)
            assert deleted["payload"]["action"] == DELETE
            assert not Item.objects.filter(pk=item.pk).exists()

    def test_fields_outside_the_binding_are_never_written(self) -> None:
        with apply_routes([Boards.as_route(path=r"^/items/(?P<board>\w+)/$")]):
            client = self.socket()
            self.request(client, action=CREATE, data={"name": "w", "secret": "x", "id": 999})
            item = Item.objects.get(name="w")
            assert (item.secret, item.pk != 999) == ("", True)
            self.request(client, action=UPDATE, pk=item.pk, data={"secret": "y", "value": 1})
            item.refresh_from_db()
            assert (item.secret, item.value) == ("", 1)

    def test_bad_requests_are_answered_on_the_stream_and_change_nothing(self) -> None:
        Item.objects.create(name="taken")
        pk = Item.objects.create(name="other").pk
        cases = [
            ({"action": "upsert"}, "unknown_action"),
            ({"data": {}}, "invalid_payload"),
            ({"action": UPDATE, "data": {"value": 1}}, "missing_pk"),
            ({"action": CREATE}, "invalid_data"),
            ({"action": UPDATE, "pk": pk, "data": {"value": "many"}}, "invalid_data"),
            ({"action": CREATE, "data": {"name": "taken"}}, "invalid_data"),
            ({"action": UPDATE, "pk": 10**6, "data": {"value": 1}}, "not_found"),
            ({"action": UPDATE, "pk": "not-a-pk", "data": {"value": 1}}, "not_found"),
        ]
        with apply_routes([Boards.as_route(path=r"^/items/(?P<board>\w+)/$")]):
            client = self.socket()
            for payload, code in cases:
                frame = self.request(client, **payload)
                assert frame["stream"] == "items"
                assert list(frame["payload"]) == ["error"], "no top-level action for 1.x clients"
                assert frame["payload"]["error"]["code"] == code, (payload, frame)
            assert client.receive() is None
        assert sorted(Item.objects.values_list("name", "value")) == [("other", 0), ("taken", 0)]

    def test_has_permission_denies_unless_overridden(self) -> None:
        class Unsure(WebsocketBinding):
            model = Item
            stream = "unsure"
            fields = ["name"]

            @classmethod
            def group_names(cls, instance):
                return []

        class Demux(WebsocketDemultiplexer):
            consumers = {"unsure": Unsure.consumer}

        with apply_routes([Demux.as_route()]), self.assertLogs("channels.binding", "WARNING"):
            client = WSClient()
            client.send_and_consume(
                "websocket.receive",
                text={"stream": "unsure", "payload": {"action": CREATE, "data": {"name": "x"}}},
            )
            error = client.receive()["payload"]["error"]
        assert error["code"] == "permission_denied"
        assert not Item.objects.filter(name="x").exists()

    def test_a_binding_routed_directly_answers_in_its_stream_envelope(self) -> None:
        from channels import route

        with apply_routes([route("websocket.receive", TaggedBinding.consumer)]):
            client = WSClient()
            client.send_and_consume("websocket.receive", text="not json")
            frame = client.receive()
        assert frame["stream"] == "tagged"
        assert frame["payload"]["error"]["code"] == "invalid_json"


# The 1.x docs' sample, as written -------------------------------------------------


@override_settings(SESSION_ENGINE="django.contrib.sessions.backends.cache")
class DocsSampleTests(ChannelTestCase):
    def test_the_1x_getting_started_sample_binds_integer_values(self) -> None:
        with apply_routes("tests.bindingapp.docsample.routing.channel_routing"):
            client = WSClient()
            client.send_and_consume("websocket.connect", path="/binding/")
            request = {"action": "create", "data": {"name": "hits", "value": 1}}
            client.send_and_consume(
                "websocket.receive", path="/binding/", text={"stream": "intval", "payload": request}
            )
            value = IntegerValue.objects.get(name="hits")
            assert client.receive() == {
                "stream": "intval",
                "payload": {
                    "action": "create",
                    "pk": value.pk,
                    "data": {"name": "hits", "value": 1},
                    "model": "bindingapp.integervalue",
                },
            }
            value.value = 2
            value.save()
            assert client.receive()["payload"]["data"] == {"name": "hits", "value": 2}


# Real processes: daphne + 2 runworkers on Redis -------------------------------------

SETTINGS = "tests.bindingapp.settings"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database for the binding project's processes."""
    path = str(tmp_path_factory.mktemp("bindingdb") / "db.sqlite3")
    env = project_env(CHANNELS_TEST_DB=path, DJANGO_SETTINGS_MODULE=SETTINGS)
    subprocess.run(django_command("migrate", "-v", "0"), env=env, check=True, timeout=120)
    return path


def post(url: str, **fields: str) -> tuple[int, Any]:
    status, _, body = http(url, data=urllib.parse.urlencode(fields).encode(), method="POST")
    return status, json.loads(body)


def frame_of(socket: Any) -> Any:
    return json.loads(socket.recv(timeout=20))


def test_a_view_change_reaches_a_connected_socket_and_a_rollback_reaches_nobody(
    deployments: Any, database: str
) -> None:
    server = deployments(
        "daphne",
        "tests.bindingapp.routing.channel_routing",
        DJANGO_SETTINGS_MODULE=SETTINGS,
        CHANNELS_TEST_DB=database,
    )
    with connect(server.ws_url + "/items/lobby/", open_timeout=20) as watcher:
        assert post(f"{server.url}/items/first/", value="1", board="lobby")[0] == 200
        created = frame_of(watcher)
        assert (created["stream"], created["payload"]["action"]) == ("items", CREATE)
        assert created["payload"]["data"]["name"] == "first"

        status, body = post(f"{server.url}/items/first/", value="2", rollback="1")
        assert (status, body) == (409, {"rolled_back": True})
        # A rolled-back change would have been sent before the view answered, so the
        # next frame the socket gets is the committed change that follows, or nothing was.
        assert post(f"{server.url}/items/first/", value="3")[0] == 200
        updated = frame_of(watcher)
        assert (updated["payload"]["action"], updated["payload"]["data"]["value"]) == (UPDATE, 3)

        # Inbound over a real socket: a second client's request reaches the watcher.
        with connect(server.ws_url + "/items/lobby/", open_timeout=20) as editor:
            pk = created["payload"]["pk"]
            editor.send(json.dumps({"stream": "items", "payload": {"action": DELETE, "pk": pk}}))
            refused = frame_of(editor)
            assert refused["payload"]["error"]["code"] == "permission_denied"
            request = {"action": UPDATE, "pk": pk, "data": {"value": 7}}
            editor.send(json.dumps({"stream": "items", "payload": request}))
            for socket in (watcher, editor):
                frame = frame_of(socket)
                assert (frame["payload"]["action"], frame["payload"]["data"]["value"]) == (
                    UPDATE,
                    7,
                )
