"""testing.rst of Channels 1.1.8, "Live Server Test Case": the samples against real servers.

The settings sample's ``TEST_CONFIG`` host becomes the test's redis-server
(its ``CONFIG`` host, the "running dev environment", stays unreachable as
written: nothing may use it) and its ``ROUTING`` names our routing module.
The sample test cases run as written, their daphne and worker in child
processes; splinter's ``Browser`` is a real headless Chromium
(tests/docs1x/testing/splinter_browser.py), and ``live_server_ws_url`` is
driven with the ``websockets`` client.
"""

from __future__ import annotations

import re
import unittest
from typing import Any

import pytest
from django.test import override_settings
from websockets.sync.client import connect

from channels.asgi import channel_layers
from tests.docs1x import sample_project
from tests.docs1x.testing import live_server_static, splinter_browser
from tests.interface import http

with sample_project({"splinter": "tests.docs1x.testing.splinter_browser"}):
    from tests.docs1x.testing import live_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

ROUTING = "tests.docs1x.testing.live_routing.channel_routing"
LIVE_SETTINGS = "tests.docs1x.testing.live_settings"


def sample_settings(redis_url: str) -> dict[str, Any]:
    """The sample's CHANNEL_LAYERS, its TEST_CONFIG host being the test's Redis."""
    host, port = re.match(r"redis://([^:/]+):(\d+)", redis_url).groups()
    entry = dict(live_server.CHANNEL_LAYERS["default"])
    assert entry["TEST_CONFIG"] == {"hosts": [("localhost", 6379)]}
    entry["TEST_CONFIG"] = {"hosts": [(host, int(port))]}
    entry["ROUTING"] = ROUTING
    return {"default": entry}


def run(case: type[unittest.TestCase]) -> unittest.TestResult:
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(case).run(result)
    assert result.testsRun >= 1
    return result


@pytest.fixture
def project_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live servers' processes load the project's settings module, as a project's do."""
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", LIVE_SETTINGS)


def test_the_integration_sample_browses_the_site_index(
    redis_url: str, project_settings: None
) -> None:
    """``browser.visit(self.live_server_url)`` gets the project's index page from the worker."""
    pytest.importorskip("selenium")

    @override_settings(CHANNEL_LAYERS=sample_settings(redis_url))
    class IntegrationTest(live_server.IntegrationTest):
        pass

    splinter_browser.visited.clear()
    result = run(IntegrationTest)
    assert result.wasSuccessful(), result.failures + result.errors
    ((url, page),) = splinter_browser.visited
    assert re.fullmatch(r"http://[\w.]+:\d+", url)
    assert "Hello world! You asked for /" in page


def test_live_server_ws_url_reaches_the_projects_consumers(redis_url: str) -> None:
    """The page: "``live_server_ws_url`` ... if you decide to run messaging from Python"."""
    seen: dict[str, Any] = {}

    @override_settings(CHANNEL_LAYERS=sample_settings(redis_url))
    class MessagingTest(live_server.IntegrationTest):
        def test_browse_site_index(self) -> None:  # the sample's browser test: not this one
            pass

        def test_websocket_echo(self) -> None:
            # The test process sees the TEST_CONFIG layer too, not the dev one.
            seen["hosts"] = channel_layers["default"].hosts
            with connect(self.live_server_ws_url + "/chat/", open_timeout=20) as socket:
                socket.send("hello world")
                seen["reply"] = socket.recv(timeout=20)

    result = run(MessagingTest)
    assert result.wasSuccessful(), result.failures + result.errors
    assert seen["reply"] == "hello world"
    assert seen["hosts"] == sample_settings(redis_url)["default"]["TEST_CONFIG"]["hosts"]


def static_file(url: str) -> int:
    """The status of a GET of the project's ``/static/site.css`` at *url*."""
    status, _, _ = http(url + "/static/site.css")
    return status


def test_the_live_servers_serve_static_files_by_default(
    redis_url: str, project_settings: None
) -> None:
    """The page: "By default live server test case will serve static files".

    1.1.8 test/liveserver.py: ``serve_static = True``, and ``WorkerProcess.run``
    routes ``http.request`` to ``StaticFilesConsumer()`` when it is set and
    ``django.contrib.staticfiles`` is installed (``DEBUG`` does not matter).
    """
    statuses: list[int] = []

    @override_settings(CHANNEL_LAYERS=sample_settings(redis_url))
    class Served(live_server.IntegrationTest):
        def test_browse_site_index(self) -> None:
            statuses.append(static_file(self.live_server_url))

    result = run(Served)
    assert result.wasSuccessful(), result.failures + result.errors
    assert statuses == [200]


def test_serve_static_false_leaves_static_files_unserved(
    redis_url: str, project_settings: None
) -> None:
    """The ``serve_static = False`` sample: "JS and CSS are not available in this test"."""
    statuses: list[int] = []

    @override_settings(CHANNEL_LAYERS=sample_settings(redis_url))
    class NotServed(live_server_static.IntegrationTest):
        def test_websocket_message(self) -> None:
            super().test_websocket_message()  # the sample's body
            statuses.append(static_file(self.live_server_url))

    result = run(NotServed)
    assert result.wasSuccessful(), result.failures + result.errors
    assert statuses == [404]


def test_settings_overridden_on_the_test_case_reach_the_live_servers(redis_url: str) -> None:
    """1.x handed the case's ``override_settings``/``modify_settings`` to both processes.

    1.1.8 test/liveserver.py ``_pre_setup``: ``DaphneProcess(..., self._overridden_settings,
    self._modified_settings, ...)``, applied by ``ProcessSetup.override_settings``.
    """
    pages: list[tuple[int, bytes]] = []

    @override_settings(CHANNEL_LAYERS=sample_settings(redis_url), ROOT_URLCONF="tests.project.urls")
    class Overridden(live_server.IntegrationTest):
        def test_browse_site_index(self) -> None:
            status, _, body = http(self.live_server_url + "/hello/")
            pages.append((status, body))

    result = run(Overridden)
    assert result.wasSuccessful(), result.failures + result.errors
    assert pages == [(200, b"Hello world! You asked for /hello/")]
