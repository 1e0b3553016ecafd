"""1.x module paths that projects import: ``channels.utils``, ``.log``, ``.staticfiles``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channels.asgi import ChannelLayerWrapper
from channels.handler import StaticFilesAsgiHandler, ViewConsumer, view_consumer
from channels.layers.inmemory import InMemoryChannelLayer
from channels.log import setup_logger
from channels.message import Message
from channels.staticfiles import StaticFilesConsumer, StaticFilesHandler
from channels.utils import name_that_thing


def module_function() -> None:
    """A consumer-like function."""


class Consumer:
    def method(self) -> None:
        """A bound method."""

    @classmethod
    def build(cls) -> None:
        """A classmethod."""


@pytest.mark.parametrize(
    ("thing", "name"),
    [
        (module_function, f"{__name__}.module_function"),
        (Consumer, f"{__name__}.Consumer"),
        (Consumer(), f"{__name__}.Consumer"),
        (Consumer().method, f"{__name__}.Consumer.method"),
        (Consumer.build, f"{__name__}.Consumer.build"),
        (view_consumer, "channels.handler.ViewConsumer"),
        (len, "builtins.len"),
        (3, "builtins.int"),
    ],
)
def test_name_that_thing_names_functions_classes_methods_and_instances(
    thing: object, name: str
) -> None:
    assert name_that_thing(thing) == name


@pytest.fixture
def fresh_logger() -> Iterator[str]:
    name = "tests.fidelity.setup_logger"
    yield name
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def test_setup_logger_prints_info_to_stderr_once(
    fresh_logger: str, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = setup_logger(fresh_logger)
    assert setup_logger(fresh_logger) is logger
    assert len(logger.handlers) == 1  # a second call does not print every line twice
    assert logger.level == logging.INFO
    assert logger.propagate is False
    logger.info("worker started")
    logger.debug("not shown at verbosity 1")
    err = capsys.readouterr().err
    assert err.count("worker started") == 1
    assert " - INFO - test_fidelity_aliases - worker started" in err
    assert "not shown" not in err


def test_setup_logger_verbosity_two_shows_debug(fresh_logger: str) -> None:
    assert setup_logger(fresh_logger, verbosity=2).level == logging.DEBUG
    assert setup_logger(fresh_logger, verbosity=1).level == logging.INFO


def test_static_files_consumer_serves_static_url_even_without_debug(
    settings: Any, tmp_path: Path
) -> None:
    (tmp_path / "app.js").write_bytes(b"console.log('hi');")
    settings.DEBUG = False
    settings.STATIC_URL = "/static/"
    settings.STATICFILES_DIRS = [str(tmp_path)]
    layer = ChannelLayerWrapper(InMemoryChannelLayer(), "default", None)
    consumer = StaticFilesConsumer()
    assert isinstance(consumer, ViewConsumer)
    assert StaticFilesHandler is StaticFilesAsgiHandler
    content = {"reply_channel": "test.reply?static", "method": "GET", "path": "/static/app.js"}
    consumer(Message(content, "http.request", layer))
    channel, reply = layer.receive(["test.reply?static"])
    assert channel == "test.reply?static"
    assert reply["status"] == 200
    body = reply["content"]
    while reply.get("more_content"):
        _, reply = layer.receive(["test.reply?static"])
        body += reply["content"]
    assert body == b"console.log('hi');"
