"""testing.rst of Channels 1.1.8: its test cases, as written, pass.

The sample ``TestCase`` classes are subclassed here so pytest runs them
(settings the samples assume, such as their project's ``ROUTING``, are
given to the subclass). A sample broken in 1.x itself is run to show it
fails as it did there, next to its evident intent.
"""

from __future__ import annotations

import unittest

import pytest
from django.test import override_settings

from tests.docs1x import sample_project
from tests.docs1x.testing import (
    apply_routes_sample,
    clients,
    groups,
    inject,
    ordered,
    rooms,
    square,
)

with sample_project({"myapp.consumers": "tests.docs1x.testing.generic_consumer"}):
    from tests.docs1x.testing import generic


def routing(path: str) -> override_settings:
    """The sample's project settings: the in-memory layer routed by *path*."""
    layer = {"BACKEND": "asgiref.inmemory.ChannelLayer", "ROUTING": path}
    return override_settings(CHANNEL_LAYERS={"default": layer})


class TestInjectingAMessage(inject.MyTests):
    """A send inside a ChannelTestCase goes onto its in-memory layer."""


class TestSquareConsumer(square.MyTests):
    """get_next_message(require=True) hands the consumer a Message and reads its result."""


class TestGenericConsumerIntent(generic.IntendedTests):
    """A class-based consumer runs when constructed with a message."""


class TestGroups(groups.MyTests):
    """Group adds and sends work inside a ChannelTestCase."""


@routing("tests.docs1x.testing.clients.channel_routing")
class TestClientSendAndConsume(clients.MyTests):
    """Client.send_and_consume runs the routed consumer; receive() gets its reply."""


class TestOrderedClients(ordered.OrderedTests):
    """HttpClient(ordered=True) numbers messages; hand-given orders run in order."""


class TestApplyRoutes(apply_routes_sample.MyTests):
    """apply_routes serves the given routes inside a test."""


@pytest.mark.django_db
def test_generic_consumer_sample_as_written_fails_for_want_of_a_reply_channel() -> None:
    """1.x too: ``Channel("input").send({"value": 33})`` carries no reply_channel."""
    result = unittest.TestResult()
    unittest.TestSuite([generic.MyTests("test_a_thing")]).run(result)
    assert len(result.errors) == 1, result.errors + result.failures
    assert "AttributeError" in result.errors[0][1]
    # As in 1.x, constructing the consumer runs it, and its reply has nowhere to go.
    assert "'NoneType' object has no attribute 'send'" in result.errors[0][1]


@pytest.mark.django_db
def test_rooms_sample_runs_until_its_receive_reads_an_http_session_of_connect_only() -> None:
    """Connect, groups and ``receive(json=False)`` work; then the sample's own 1.x bug.

    1.1.8 generic/websockets.py ``WebsocketConsumer.get_handler``: ``http_user``
    applies ``channel_session_user_from_http`` on ``websocket.connect`` only.
    """
    result = unittest.TestResult()
    with routing("tests.docs1x.testing.rooms.channel_routing"):
        unittest.TestSuite([rooms.RoomsTests("test_rooms")]).run(result)
    assert not result.failures, result.failures[0][1] if result.failures else ""
    assert len(result.errors) == 1
    assert 'self.message.http_session.get("rooms", [])' in result.errors[0][1]
