"""route(), route_class(), include(), the dict form and the Router."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from channels.consumers import accept_connection, ignore
from channels.layers.inmemory import InMemoryChannelLayer
from channels.message import Message
from channels.routing import Router, include, route, route_class
from tests.sample.consumers import ClassConsumer, echo, other

LAYER = InMemoryChannelLayer()


def msg(channel: str, **content: object) -> Message:
    return Message(dict(content), channel, LAYER)


def test_route_matches_its_channel_only() -> None:
    router = Router([route("websocket.receive", echo)])
    assert router.match(msg("websocket.receive", text="x")) == (echo, {})
    assert router.match(msg("other.channel")) is None


def test_consumer_as_a_dotted_path() -> None:
    router = Router([route("websocket.receive", "tests.sample.consumers.echo")])
    assert router.match(msg("websocket.receive"))[0] is echo


def test_filters_are_anchored_regexes_and_named_groups_become_kwargs() -> None:
    router = Router(
        [
            route("websocket.connect", echo, path=r"^/chat/(?P<room>[a-z]+)/$", method="GET"),
            route("websocket.connect", other),
        ]
    )
    assert router.match(msg("websocket.connect", path="/chat/lobby/", method="GET")) == (
        echo,
        {"room": "lobby"},
    )
    # re.match anchors at the start only; every filter must match.
    assert router.match(msg("websocket.connect", path="x/chat/lobby/", method="GET"))[0] is other
    assert router.match(msg("websocket.connect", path="/chat/lobby/", method="POST"))[0] is other
    # A missing key or a non-string value is no match.
    assert router.match(msg("websocket.connect", method="GET"))[0] is other
    assert router.match(msg("websocket.connect", path=5, method="GET"))[0] is other


def test_bytes_values_are_decoded_before_matching() -> None:
    router = Router([route("http.request", echo, path=r"^/caf\u00e9/(?P<n>\d+)$")])
    found = router.match(msg("http.request", path="/café/12".encode()))
    assert found == (echo, {"n": "12"})


def test_several_channels_in_one_route() -> None:
    router = Router([route(["a.one", "a.two"], echo)])
    assert router.match(msg("a.two")) == (echo, {})
    assert {"a.one", "a.two"} <= router.channels


def test_route_class_uses_channel_names() -> None:
    router = Router([route_class(ClassConsumer, path=r"^/(?P<x>\w+)")])
    assert router.match(msg("class.two", path="/abc")) == (ClassConsumer, {"x": "abc"})
    assert {"class.one", "class.two"} <= router.channels


def test_include_cuts_the_matched_prefix_and_merges_kwargs() -> None:
    chat = [
        route("websocket.connect", echo, path=r"^/(?P<room>[a-z]+)/$"),
        route("websocket.disconnect", other),
    ]
    router = Router(
        [
            include(chat, path=r"^/chat(?P<version>/v\d)?"),
            include("tests.test_routing.HTTP_ROUTING"),
        ]
    )
    message = msg("websocket.connect", path="/chat/v2/lobby/")
    assert router.match(message) == (echo, {"room": "lobby", "version": "/v2"})
    assert message["path"] == "/chat/v2/lobby/"  # the consumer sees the original message
    assert router.match(msg("websocket.connect", path="/lobby/"))[0] is accept_connection
    assert router.match(msg("http.request", path="/poll/", method="POST")) == (other, {})


HTTP_ROUTING = [route("http.request", other, path=r"^/poll/$", method=r"^POST$")]


def test_include_inner_kwargs_win() -> None:
    inner = [route("x.y", echo, path=r"^/(?P<name>\w+)$")]
    router = Router([include(inner, path=r"^/(?P<name>outer)")])
    assert router.match(msg("x.y", path="/outer/inner")) == (echo, {"name": "inner"})


def test_the_same_routing_under_two_prefixes() -> None:
    inner = [route("x.y", echo, path=r"^/item/$")]
    router = Router([include(inner, path=r"^/a"), include(inner, path=r"^/b")])
    assert router.match(msg("x.y", path="/b/item/"))[0] is echo
    assert router.match(msg("x.y", path="/c/item/")) is None


def test_the_old_dict_form_works_anywhere_a_list_does() -> None:
    router = Router({"websocket.receive": echo, "http.request": "tests.sample.consumers.other"})
    assert router.match(msg("websocket.receive"))[0] is echo
    assert router.match(msg("http.request"))[0] is other
    nested = Router([include({"websocket.receive": echo}, path=r"^/ws")])
    assert nested.match(msg("websocket.receive", path="/ws/x"))[0] is echo


def test_first_match_wins() -> None:
    router = Router([route("a.b", echo), route("a.b", other)])
    assert router.match(msg("a.b"))[0] is echo


def test_defaults_for_unrouted_websocket_channels() -> None:
    router = Router([])
    assert router.match(msg("websocket.connect"))[0] is accept_connection
    assert router.match(msg("websocket.receive"))[0] is ignore
    assert router.match(msg("websocket.disconnect"))[0] is ignore
    assert {"websocket.connect", "websocket.receive", "websocket.disconnect"} <= router.channels
    assert Router([], defaults=False).channels == set()


def test_custom_routing_objects_are_accepted() -> None:
    class Custom:
        def match(self, message):
            return (echo, {"custom": True}) if message.channel.name == "c.c" else None

        def channel_names(self):
            return {"c.c"}

    router = Router([Custom()])
    assert router.match(msg("c.c")) == (echo, {"custom": True})
    assert "c.c" in router.channels


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: route("a.b", "tests.sample.consumers.missing"), "cannot import the consumer"),
        (lambda: route("a.b", "no.such.module.consumer"), "cannot import the consumer"),
        (lambda: route("a.b", "tests.sample.consumers.not_callable"), "not callable"),
        (lambda: route("a.b", echo, path=r"^/(\d+)$"), "positional groups"),
        (lambda: route("a.b", echo, path=r"^/(?P<x>"), "invalid regex"),
        (lambda: route("bad name", echo), "invalid"),
        (lambda: route_class(echo), "no channel_names"),
        (lambda: include("tests.sample.nowhere.routing"), "cannot import"),
        (lambda: Router([route("a.b", echo), "not a route"]), "is not a route"),
        (lambda: Router(42), "must be a list of routes"),
    ],
)
def test_routing_mistakes_fail_when_the_routing_is_built(build, error: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=error):
        build()


def test_errors_name_the_route() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"route\('websocket.receive', 'x.y.z'\)"):
        route("websocket.receive", "x.y.z")
