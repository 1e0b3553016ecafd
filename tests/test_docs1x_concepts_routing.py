"""concepts.rst and routing.rst of Channels 1.1.8: their samples run as written.

Consumers run through ``channels.test`` clients on the in-memory layer; the
concepts page's Redis liveblog keeps its readers in a real Redis.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from django.db import connection

from channels import Channel
from channels.message import Message
from channels.routing import Router, route
from channels.test import Client, WSClient, apply_routes
from tests.docs1x import sample_project

pytestmark = pytest.mark.django_db(transaction=True)


def reply(client: Client) -> dict | None:
    return Client.receive(client)


def routed(routing: object, channel: str, **content: object) -> tuple | None:
    return Router(routing, defaults=False).match(Message(content, channel, None))


# concepts.rst ----------------------------------------------------------------


def test_a_dict_routing_maps_a_channel_to_a_consumer_by_import_path() -> None:
    with sample_project({"myapp.consumers": "tests.docs1x.concepts.first_consumer"}):
        from tests.docs1x.concepts import first_consumer as sample

        assert "some-channel" in Router(sample.channel_routing).channels
        with apply_routes(sample.channel_routing):
            Client().send_and_consume("some-channel", {"any": "thing"})  # fails unless routed
        assert routed(sample.channel_routing, "some-channel")[0] is sample.my_consumer


def test_a_view_is_merely_another_consumer() -> None:
    """1.x AsgiRequest kept the body in a BytesIO; a request the user builds leaks nothing."""
    from tests.docs1x.concepts import view_consumer as sample

    request = {"path": "/post/", "method": "GET", "query_string": b"a=1", "headers": []}
    with apply_routes([route("http.request", sample.my_consumer)]):
        client = Client()
        client.send_and_consume("http.request", request)
        response = reply(client)
    assert response["status"] == 200
    assert response["content"] == b"GET /post/?a=1"


@pytest.fixture
def blog_table() -> Iterator[None]:
    from tests.docs1x.concepts.models import BlogUpdate

    with connection.schema_editor() as editor:
        editor.create_model(BlogUpdate)
    yield
    with connection.schema_editor() as editor:
        editor.delete_model(BlogUpdate)


def test_a_liveblog_sends_each_saved_update_to_the_readers_in_a_redis_set(
    blog_table: None, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db.models.signals import post_save

    from tests.docs1x.concepts import readers as sample
    from tests.docs1x.concepts.models import BlogUpdate

    # The test's own Redis stands in for the sample's localhost:6379.
    conn = redis.Redis.from_url(redis_url)
    monkeypatch.setattr(sample, "redis_conn", conn)
    conn.delete("readers")
    try:
        with apply_routes([route("websocket.connect", sample.ws_connect)]):
            first, second = WSClient(), WSClient()
            for client in (first, second):
                client.send_and_consume("websocket.connect", path="/", check_accept=False)
            update = BlogUpdate.objects.create(content="first post")
        # smembers gives bytes; Channel(bytes) takes them (1.1.8 channel.py decodes them).
        expected = {"text": json.dumps({"id": update.id, "content": "first post"})}
        assert reply(first) == expected
        assert reply(second) == expected
    finally:
        post_save.disconnect(sample.send_update, sender=BlogUpdate)
        conn.delete("readers")
        conn.close()


def test_a_liveblog_group_reaches_connected_readers_until_they_disconnect(
    blog_table: None,
) -> None:
    from tests.docs1x.concepts import groups as sample
    from tests.docs1x.concepts.models import BlogUpdate

    routes = [
        route("websocket.connect", sample.ws_connect),
        route("websocket.disconnect", sample.ws_disconnect),
    ]
    with apply_routes(routes):
        reader, leaver = WSClient(), WSClient()
        reader.send_and_consume("websocket.connect", path="/")
        leaver.send_and_consume("websocket.connect", path="/")
        update = BlogUpdate.objects.create(content="live")
        expected = {"text": json.dumps({"id": update.id, "content": "live"})}
        assert reply(reader) == reply(leaver) == expected
        leaver.send_and_consume("websocket.disconnect", {"code": 1000})
        BlogUpdate.objects.create(content="again")
        assert reply(reader) is not None
        assert reply(leaver) is None


# routing.rst -----------------------------------------------------------------


def test_a_path_filter_matches_the_whole_path_from_its_first_slash() -> None:
    from tests.docs1x import routing_page as sample

    assert routed([sample.chat], "websocket.connect", path="/chat/") is not None
    assert routed([sample.chat], "websocket.connect", path="chat/") is None
    assert routed([sample.chat], "websocket.connect", path="/chat/more/") is None
    assert routed([sample.chat], "websocket.receive", path="/chat/") is None


def test_multiple_filters_must_all_match() -> None:
    from tests.docs1x import routing_page as sample

    def email(**content: str) -> tuple | None:
        return routed([sample.email], "email.receive", **content)

    assert email(to_address="me@example.com", subject="reply to you") is not None
    assert email(to_address="me@example.org", subject="reply to you") is None
    assert email(to_address="me@example.com", subject="no reply") is None
    assert email(to_address="me@example.com") is None  # a filtered key it lacks


def test_named_groups_of_filters_become_consumer_kwargs() -> None:
    from tests.docs1x import routing_page as sample

    with apply_routes([sample.blog]):
        Client().send_and_consume("websocket.connect", {"path": "/liveblog/my-post/stream/"})
    _, message = Channel("docs.routed").channel_layer.receive(["docs.routed"], block=False)
    assert message == {"consumer": "connect_blog", "kwargs": {"slug": "my-post"}}


@pytest.mark.parametrize("name", ["routing", "blog_includes"])
def test_an_include_strips_the_part_its_filter_matched(name: str) -> None:
    from tests.docs1x import routing_page as sample

    routing = getattr(sample, name)
    routing = routing if isinstance(routing, list) else [routing]
    assert routed(routing, "websocket.connect", path="/liveblog/stream/") is not None
    assert routed(routing, "websocket.connect", path="/stream/") is None
    assert routed(routing, "websocket.connect", path="/liveblog/other/") is None
    with apply_routes(routing):
        client = Client()
        client.send_and_consume("websocket.connect", {"path": "/liveblog/stream/"})
    _, message = Channel("docs.routed").channel_layer.receive(["docs.routed"], block=False)
    assert message == {"consumer": "connect_blog", "kwargs": {}}
