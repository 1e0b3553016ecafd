"""The channel layer registry: ``CHANNEL_LAYERS`` read lazily through one manager.

Importing this module reads no settings, so a project's ``asgi.py`` may import
it before it sets ``DJANGO_SETTINGS_MODULE``::

    import os
    from channels.asgi import get_channel_layer

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")
    channel_layer = get_channel_layer()
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .exceptions import InvalidChannelLayerError
from .layers.base import BaseChannelLayer
from .routing import Router

DEFAULT_CHANNEL_LAYER = "default"

INMEMORY_BACKEND = "channels.layers.inmemory.InMemoryChannelLayer"
REDIS_BACKEND = "channels.layers.redis.RedisChannelLayer"

#: Backend paths from the Channels 1.x (and 2+) documentation, served by our layers.
#: asgi_redis' RedisLocalChannelLayer sent normal channels over machine-local
#: shared memory (asgi_ipc); here everything goes through Redis, which is
#: correct (any worker may take any message), only not machine-local.
BACKEND_ALIASES = {
    "asgiref.inmemory.ChannelLayer": INMEMORY_BACKEND,
    "asgi_redis.RedisChannelLayer": REDIS_BACKEND,
    "asgi_redis.core.RedisChannelLayer": REDIS_BACKEND,
    "asgi_redis.RedisLocalChannelLayer": REDIS_BACKEND,
    "asgi_redis.local.RedisLocalChannelLayer": REDIS_BACKEND,
    "channels_redis.core.RedisChannelLayer": REDIS_BACKEND,
}

#: What ``CHANNEL_LAYERS`` means when a project does not set it.
DEFAULT_CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
    DEFAULT_CHANNEL_LAYER: {"BACKEND": INMEMORY_BACKEND},
}

_ENTRY_KEYS = {"BACKEND", "CONFIG", "ROUTING", "TEST_CONFIG"}


def _accepted_options(backend: type) -> set[str] | None:
    """Return the CONFIG keys *backend* accepts, or None if it takes any."""
    accepted: set[str] = set()
    for klass in backend.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = list(inspect.signature(init).parameters.values())[1:]
        accepted.update(
            p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return accepted
    return None


class ChannelLayerWrapper:
    """A channel layer together with its alias, routing and router.

    Every attribute of the layer is reachable on the wrapper, so code written
    against the raw ASGI layer (``wrapper.send(...)``) keeps working.
    """

    def __init__(self, channel_layer: BaseChannelLayer, alias: str, routing: Any) -> None:
        self.channel_layer = channel_layer
        self.alias = alias
        self.routing = routing
        self._bridge: Any = None
        # (the routing it was built from, the router): rebuilt when routing is replaced.
        self._router: tuple[Any, Router] | None = None

    @property
    def router(self) -> Router:
        """The :class:`~channels.routing.Router` of this layer's ``ROUTING``, as in 1.x.

        It holds the project's routes only, so ``router.channels`` lists what
        the project routes and the test client finds no consumer for a
        message nothing routes; a worker adds the default consumers of the
        standard channels on top (1.x's ``check_default()``). Built on first
        use and kept until :attr:`routing` is replaced, e.g. by
        ``apply_routes``; a change of ``CHANNEL_LAYERS`` builds new wrappers,
        hence new routers.
        """
        cached = self._router
        if cached is None or cached[0] is not self.routing:
            router = Router(self.resolve_routing(), defaults=False)
            cached = self._router = (self.routing, router)
        return cached[1]

    @router.setter
    def router(self, router: Router) -> None:
        # 1.x code assigned routers directly; keep one until the routing changes.
        self._router = (self.routing, router)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one connection as an ASGI 3 application (what daphne calls)."""
        if self._bridge is None:
            from .bridge import Bridge

            self._bridge = Bridge(self)
        await self._bridge(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.channel_layer, name)

    def __repr__(self) -> str:
        return f"<ChannelLayerWrapper alias={self.alias!r} layer={self.channel_layer!r}>"

    def local_only(self) -> bool:
        """Return True if the layer cannot carry messages between processes."""
        from .layers.inmemory import InMemoryChannelLayer

        return isinstance(self.channel_layer, InMemoryChannelLayer)

    def resolve_routing(self) -> Any:
        """Return the routing (importing a dotted ``ROUTING`` path), or ``[]`` if unset."""
        routing = self.routing
        if routing is None:
            return []
        if isinstance(routing, str):
            try:
                return import_string(routing)
            except ImportError as exc:
                raise InvalidChannelLayerError(
                    f"Cannot import ROUTING {routing!r} of channel layer {self.alias!r}: {exc}. "
                    "Point ROUTING at a list in a module, e.g. 'myproject.routing.channel_routing'",
                ) from exc
        return routing


class ChannelLayerManager:
    """Build each configured layer once, on first use; forget them when settings change."""

    def __init__(self) -> None:
        self._layers: dict[str, ChannelLayerWrapper] = {}
        self._lock = threading.Lock()
        setting_changed.connect(self._on_setting_changed)

    def _on_setting_changed(self, setting: str, **kwargs: Any) -> None:
        if setting == "CHANNEL_LAYERS":
            self.reset()

    @property
    def configs(self) -> dict[str, Any]:
        from django.conf import settings

        configs = getattr(settings, "CHANNEL_LAYERS", None)
        if configs is None:
            return DEFAULT_CHANNEL_LAYERS
        if not isinstance(configs, dict):
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS must be a dict of {{alias: {{'BACKEND': ...}}}}, not "
                f"{type(configs).__name__}"
            )
        return configs

    def __contains__(self, alias: str) -> bool:
        return alias in self.configs

    def __getitem__(self, alias: str) -> ChannelLayerWrapper:
        layer = self._layers.get(alias)
        if layer is None:
            with self._lock:
                layer = self._layers.get(alias)
                if layer is None:
                    layer = self._layers[alias] = self.make_backend(alias)
        return layer

    def make_backend(self, alias: str, config_key: str = "CONFIG") -> ChannelLayerWrapper:
        """Build a new layer for *alias* from its ``CONFIG`` (or ``TEST_CONFIG``)."""
        configs = self.configs
        if alias not in configs:
            raise InvalidChannelLayerError(
                f"There is no channel layer {alias!r} in CHANNEL_LAYERS (it defines "
                f"{', '.join(map(repr, configs)) or 'none'}). Add it, or use another alias."
            )
        entry = configs[alias]
        if not isinstance(entry, dict) or "BACKEND" not in entry:
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS[{alias!r}] must be a dict with a 'BACKEND' key, e.g. "
                f"{{'BACKEND': {INMEMORY_BACKEND!r}}}"
            )
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS[{alias!r}] has unknown keys {sorted(unknown)}; "
                f"use {sorted(_ENTRY_KEYS)} (backend options go in 'CONFIG')"
            )
        backend = self._import_backend(alias, entry["BACKEND"])
        options = entry.get(config_key, entry.get("CONFIG")) or {}
        return ChannelLayerWrapper(
            self._construct(alias, backend, options), alias, entry.get("ROUTING")
        )

    def make_test_backend(self, alias: str) -> ChannelLayerWrapper:
        """Build a new layer for *alias* from its ``TEST_CONFIG``, which it must have.

        This is what test servers in other processes connect to; unlike
        ``make_backend(alias, "TEST_CONFIG")`` it does not fall back to ``CONFIG``.
        """
        entry = self.configs.get(alias)
        if isinstance(entry, dict) and "BACKEND" in entry and "TEST_CONFIG" not in entry:
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS[{alias!r}] has no TEST_CONFIG: add one with the options "
                "the test servers use (it may equal CONFIG)"
            )
        return self.make_backend(alias, "TEST_CONFIG")

    @staticmethod
    def _import_backend(alias: str, path: Any) -> type:
        if not isinstance(path, str):
            raise InvalidChannelLayerError(
                f"BACKEND of channel layer {alias!r} must be a dotted path, not {path!r}"
            )
        try:
            backend = import_string(BACKEND_ALIASES.get(path, path))
        except ImportError as exc:
            raise InvalidChannelLayerError(
                f"Cannot import BACKEND {path!r} of channel layer {alias!r}: {exc}. Use "
                f"{INMEMORY_BACKEND!r} or {REDIS_BACKEND!r}."
            ) from exc
        if not (isinstance(backend, type) and issubclass(backend, BaseChannelLayer)):
            raise InvalidChannelLayerError(
                f"BACKEND {path!r} of channel layer {alias!r} is not a channel layer class"
            )
        return backend

    @staticmethod
    def _construct(alias: str, backend: type, options: Any) -> BaseChannelLayer:
        if not isinstance(options, dict):
            raise InvalidChannelLayerError(
                f"CONFIG of channel layer {alias!r} must be a dict of options, not {options!r}"
            )
        accepted = _accepted_options(backend)
        unknown = set(options) - accepted if accepted is not None else set()
        if unknown:
            raise InvalidChannelLayerError(
                f"CONFIG of channel layer {alias!r} has unknown options {sorted(unknown)}; "
                f"{backend.__name__} accepts {sorted(accepted or ())}"
            )
        try:
            return backend(**options)
        except (TypeError, ValueError) as exc:
            raise InvalidChannelLayerError(
                f"CONFIG of channel layer {alias!r} is invalid: {exc}"
            ) from exc

    def set(self, alias: str, layer: ChannelLayerWrapper | None) -> ChannelLayerWrapper | None:
        """Install *layer* under *alias* (None: build it from settings again).

        Return the layer it replaces, so tests can put it back.
        """
        with self._lock:
            old = self._layers.pop(alias, None)
            if layer is not None:
                self._layers[alias] = layer
        return old

    def reset(self) -> None:
        """Forget every built layer, closing them; the next use builds them anew."""
        with self._lock:
            layers, self._layers = self._layers, {}
        for layer in layers.values():
            layer.close()


channel_layers = ChannelLayerManager()


def get_channel_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> ChannelLayerWrapper:
    """Set Django up if needed and return the channel layer *alias*.

    This is what a project's ``asgi.py`` exposes to ``daphne``.
    """
    from django.apps import apps

    if not apps.ready and not apps.loading:
        import django

        django.setup(set_prefix=False)
    return channel_layers[alias]
