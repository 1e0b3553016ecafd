"""CHANNEL_LAYERS, the layer registry, get_channel_layer() and the system checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from channels.asgi import ChannelLayerWrapper, channel_layers, get_channel_layer
from channels.checks import check_channel_layers
from channels.exceptions import InvalidChannelLayerError
from channels.layers.inmemory import InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer

ROOT = Path(__file__).resolve().parent.parent


def test_without_channel_layers_the_default_is_in_memory(settings: object) -> None:
    del settings.CHANNEL_LAYERS  # type: ignore[attr-defined]
    layer = channel_layers["default"]
    assert isinstance(layer, ChannelLayerWrapper)
    assert isinstance(layer.channel_layer, InMemoryChannelLayer)
    assert layer.local_only()
    assert layer.resolve_routing() == []


def test_the_wrapper_exposes_the_layer(settings: object) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "asgiref.inmemory.ChannelLayer"}}  # type: ignore[attr-defined]
    layer = get_channel_layer()
    layer.send("through.wrapper", {"x": 1})
    assert layer.receive(["through.wrapper"]) == ("through.wrapper", {"x": 1})
    assert layer.ChannelFull is layer.channel_layer.ChannelFull
    assert layer.alias == "default"
    assert channel_layers["default"] is layer


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("asgiref.inmemory.ChannelLayer", InMemoryChannelLayer),
        ("asgi_redis.RedisChannelLayer", RedisChannelLayer),
        ("asgi_redis.core.RedisChannelLayer", RedisChannelLayer),
        ("channels_redis.core.RedisChannelLayer", RedisChannelLayer),
        ("channels.layers.InMemoryChannelLayer", InMemoryChannelLayer),
        ("channels.layers.redis.RedisChannelLayer", RedisChannelLayer),
    ],
)
def test_tutorial_backend_paths_resolve_to_our_layers(
    settings: object, backend: str, expected: type
) -> None:
    settings.CHANNEL_LAYERS = {  # type: ignore[attr-defined]
        "default": {"BACKEND": backend, "ROUTING": "tests.routing_fixture.channel_routing"}
    }
    layer = channel_layers["default"]
    assert type(layer.channel_layer) is expected
    assert [r.channels for r in layer.resolve_routing()] == [{"fixture.channel"}]
    layer.close()


def test_changing_settings_rebuilds_layers(settings: object) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "asgiref.inmemory.ChannelLayer"}}  # type: ignore[attr-defined]
    first = channel_layers["default"]
    settings.CHANNEL_LAYERS = {  # type: ignore[attr-defined]
        "default": {"BACKEND": "asgiref.inmemory.ChannelLayer", "CONFIG": {"capacity": 7}}
    }
    second = channel_layers["default"]
    assert second is not first
    assert second.capacity == 7


def test_set_swaps_a_layer_in(settings: object) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "asgiref.inmemory.ChannelLayer"}}  # type: ignore[attr-defined]
    replacement = ChannelLayerWrapper(InMemoryChannelLayer(), "default", None)
    old = channel_layers.set("default", replacement)
    try:
        assert channel_layers["default"] is replacement
    finally:
        channel_layers.set("default", old)


BAD_CONFIGS = [
    ([("default", {})], "must be a dict of"),
    ({"default": "asgiref.inmemory.ChannelLayer"}, "must be a dict with a 'BACKEND' key"),
    ({"default": {"BACKEND": "no.such.Backend"}}, "Cannot import BACKEND 'no.such.Backend'"),
    ({"default": {"BACKEND": "collections.OrderedDict"}}, "is not a channel layer class"),
    (
        {"default": {"BACKEND": "asgiref.inmemory.ChannelLayer", "CONFIG": {"expiri": 5}}},
        r"unknown options \['expiri'\]",
    ),
    (
        {"default": {"BACKEND": "asgiref.inmemory.ChannelLayer", "CONFIG": {"capacity": 0}}},
        "capacity must be a positive number",
    ),
    (
        {"default": {"BACKEND": "asgi_redis.RedisChannelLayer", "CONFIG": {"hosts": "redis://x"}}},
        "even if there is only one",
    ),
    (
        {"default": {"BACKEND": "asgiref.inmemory.ChannelLayer", "CONFIG": ["capacity"]}},
        "must be a dict of options",
    ),
    (
        {"default": {"BACKEND": "asgiref.inmemory.ChannelLayer", "ROUTNG": "x.y"}},
        r"unknown keys \['ROUTNG'\]",
    ),
]


@pytest.mark.parametrize(("config", "error"), BAD_CONFIGS)
def test_bad_configuration_raises_improperly_configured_naming_the_alias(
    settings: object, config: object, error: str
) -> None:
    settings.CHANNEL_LAYERS = config  # type: ignore[attr-defined]
    with pytest.raises(ImproperlyConfigured, match=error) as caught:
        channel_layers["default"]
    if isinstance(config, dict):
        assert "'default'" in str(caught.value)
    (problem,) = check_channel_layers()
    assert problem.id == "channels.E001"
    assert re.search(error, problem.msg)


def test_an_unknown_alias_says_which_ones_exist(settings: object) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "asgiref.inmemory.ChannelLayer"}}  # type: ignore[attr-defined]
    with pytest.raises(InvalidChannelLayerError, match=r"no channel layer 'other'.*'default'"):
        channel_layers["other"]


def test_a_missing_routing_module_is_a_clear_error_and_a_system_check(settings: object) -> None:
    settings.CHANNEL_LAYERS = {  # type: ignore[attr-defined]
        "default": {
            "BACKEND": "asgiref.inmemory.ChannelLayer",
            "ROUTING": "myproject.routing.channel_routing",
        }
    }
    with pytest.raises(InvalidChannelLayerError, match=r"Cannot import ROUTING .* 'default'"):
        channel_layers["default"].resolve_routing()
    (problem,) = check_channel_layers()
    assert problem.id == "channels.E002"
    with pytest.raises(SystemCheckError, match=r"channels\.E002"):
        call_command("check")


def test_a_good_configuration_passes_the_checks(settings: object) -> None:
    settings.CHANNEL_LAYERS = {  # type: ignore[attr-defined]
        "default": {
            "BACKEND": "asgi_redis.RedisChannelLayer",
            "CONFIG": {"hosts": [("localhost", 6379)], "capacity": 50},
            "ROUTING": "tests.routing_fixture.channel_routing",
        }
    }
    assert check_channel_layers() == []


def test_the_tutorials_asgi_module_sets_django_up_itself(tmp_path: Path) -> None:
    """asgi.py imports channels.asgi *before* it sets DJANGO_SETTINGS_MODULE."""
    project = tmp_path / "djchan"
    project.mkdir()
    (project / "__init__.py").write_text("")
    (project / "settings.py").write_text(
        textwrap.dedent(
            """
            SECRET_KEY = "x"
            INSTALLED_APPS = ["channels"]
            CHANNEL_LAYERS = {
                "default": {
                    "BACKEND": "asgiref.inmemory.ChannelLayer",
                    "ROUTING": "djchan.routing.channel_routing",
                },
            }
            """
        )
    )
    (project / "routing.py").write_text("channel_routing = []\n")
    (project / "asgi.py").write_text(
        textwrap.dedent(
            """
            import os
            from channels.asgi import get_channel_layer

            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djchan.settings")

            channel_layer = get_channel_layer()
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from djchan.asgi import channel_layer as c; "
            "c.send('x', {'ok': True}); print(c.receive(['x']), c.alias)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('x', {'ok': True}) default"
