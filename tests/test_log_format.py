"""One log format, Django runserver's, for runserver, daphne, runworker and rundelay."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from channels.logs import ChannelsFormatter, use_default_logging
from tests.interface import deployments, http  # noqa: F401 - fixture

ROUTING = "tests.logformat_routing.channel_routing"
#: Django's server time, as ``[01/Dec/2026 20:57:03]``.
STAMP = r"\[\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d\] "


def test_runserver_logs_requests_and_sockets_as_django_does(deployments) -> None:  # noqa: F811
    server = deployments("runserver", ROUTING)
    (runserver,) = server.processes
    assert http(server.url + "/fail/")[0] == 500
    runserver.wait_for(STAMP + r"ERROR channels\.worker: Error in consumer .*fail")
    runserver.wait_for(STAMP + r'"GET /fail/" 500 \(\d+\.\d{3} s\)')
    with connect(server.ws_url + "/echo/", open_timeout=20) as socket:
        socket.send("hi")
        assert socket.recv(timeout=20) == "hi"
    runserver.wait_for(STAMP + "WebSocket CONNECT /echo/")
    runserver.wait_for(STAMP + "WebSocket DISCONNECT /echo/")


def test_daphne_and_runworker_log_in_the_same_format(deployments) -> None:  # noqa: F811
    server = deployments("daphne", ROUTING, workers=1)
    daphne, worker = server.processes
    assert http(server.url + "/fail/")[0] == 500
    worker.wait_for(STAMP + r"ERROR channels\.worker: Error in consumer .*fail")
    with pytest.raises(InvalidStatus):
        connect(server.ws_url + "/forget/", open_timeout=20)
    daphne.wait_for(STAMP + r"WARNING channels\.bridge: .*reply_channel\.send")


@pytest.fixture
def channels_logger() -> Iterator[logging.Logger]:
    """The ``channels`` logger, put back as it was after the test."""
    logger = logging.getLogger("channels")
    saved = logger.handlers[:], logger.level, logger.propagate
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


def test_a_project_that_configures_channels_logging_keeps_its_own(
    channels_logger: logging.Logger, settings: Any
) -> None:
    settings.LOGGING = {"version": 1, "loggers": {"channels.worker": {"level": "ERROR"}}}
    before = channels_logger.handlers[:]
    use_default_logging(2)
    assert channels_logger.handlers == before
    assert channels_logger.propagate


def test_the_default_handler_is_added_once(channels_logger: logging.Logger, settings: Any) -> None:
    settings.LOGGING = {}
    use_default_logging(1)
    use_default_logging(2)
    defaults = [h for h in channels_logger.handlers if isinstance(h.formatter, ChannelsFormatter)]
    assert len(defaults) == 1
    assert channels_logger.level == logging.DEBUG
    assert not channels_logger.propagate  # daphne's root handler would print it twice


def test_warnings_name_their_level_and_logger() -> None:
    record = logging.LogRecord(
        "channels.bridge", logging.WARNING, __file__, 1, "slow %s", ("x",), None
    )
    assert re.fullmatch(
        STAMP + "WARNING channels.bridge: slow x", ChannelsFormatter().format(record)
    )
    record = logging.LogRecord("channels.worker", logging.INFO, __file__, 1, "ready", (), None)
    assert re.fullmatch(STAMP + "ready", ChannelsFormatter().format(record))
