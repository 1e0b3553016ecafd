"""The channel layer registry: ``CHANNEL_LAYERS`` read lazily through one manager.

Importing this module reads no settings, so a project's ``asgi.py`` may import
it before it sets ``DJANGO_SETTINGS_MODULE``::

    import os
    from channels.asgi import get_channel_layer

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")
    channel_layer = get_channel_layer()
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import logging
import sys
import threading
import traceback
import types
from typing import Any

from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .exceptions import InvalidChannelLayerError, RoutingImportError
from .layers.base import BaseChannelLayer
from .layers.outage import OutageReport, check_layer
from .routing import Router

DEFAULT_CHANNEL_LAYER = "default"

INMEMORY_BACKEND = "channels.layers.inmemory.InMemoryChannelLayer"
REDIS_BACKEND = "channels.layers.redis.RedisChannelLayer"
SENTINEL_BACKEND = "channels.layers.redis.RedisSentinelChannelLayer"

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
    "asgi_redis.RedisSentinelChannelLayer": SENTINEL_BACKEND,
    "asgi_redis.sentinel.RedisSentinelChannelLayer": SENTINEL_BACKEND,
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

    @functools.cached_property
    def outage(self) -> OutageReport:
        """What an interface server says once when this layer is down, and when it is back."""
        return OutageReport(logging.getLogger("channels.bridge"), repr(self.alias))

    def __init__(self, channel_layer: BaseChannelLayer, alias: str, routing: Any) -> None:
        self.channel_layer = channel_layer
        self.alias = alias
        self.routing = routing
        self._bridge: Any = None
        # (the routing it was built from, the router): rebuilt when routing is replaced.
        self._router: tuple[Any, Router] | None = None
        # Before daphne listens (its command line and runserver load it first).
        from .bridge.guards import guard_daphne

        guard_daphne()

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

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Serve one connection as an ASGI 3 application (what daphne calls)."""
        if self._bridge is None:
            from .bridge import Bridge
            from .bridge.guards import guard_daphne

            guard_daphne()  # a daphne loaded after this wrapper was made
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
        """Return the routing (importing a dotted ``ROUTING`` path), or ``[]`` if unset.

        A path that names nothing is an :exc:`InvalidChannelLayerError` with
        the fix; a module that raises while it is imported is a
        :exc:`RoutingImportError` naming the file, with the module's own
        exception as its cause (its traceback is the useful part).
        """
        routing = self.routing
        if routing is None:
            return []
        if isinstance(routing, str):
            routing = self._import_routing(routing)
        if isinstance(routing, types.ModuleType):
            lists = [
                name
                for name, value in vars(routing).items()
                if not name.startswith("_") and isinstance(value, list | tuple | dict)
            ]
            example = f"{routing.__name__}.{lists[0] if lists else 'channel_routing'}"
            raise InvalidChannelLayerError(
                f"ROUTING of channel layer {self.alias!r} is the module {routing.__name__!r}, "
                f"not a list of routes: point it at the list in the module, e.g. {example!r}"
            )
        return routing

    def _import_routing(self, path: str) -> Any:
        module_path, _, name = path.rpartition(".")
        hint = "Point ROUTING at a list in a module, e.g. 'myproject.routing.channel_routing'"
        if not module_path:
            raise InvalidChannelLayerError(
                f"ROUTING {path!r} of channel layer {self.alias!r} is not a dotted path. {hint}"
            )
        try:
            module = _import_module(module_path)
        except _NotFound as missing:
            try:  # "myproject.routing": the module itself, which resolve_routing explains
                return _import_module(path)
            except _NotFound:
                pass
            raise InvalidChannelLayerError(
                f"Cannot import ROUTING {path!r} of channel layer {self.alias!r}: there is no "
                f"module {missing.name!r}. {hint}"
            ) from None
        try:
            return getattr(module, name)
        except AttributeError:
            try:
                return _import_module(path)  # a submodule not imported yet
            except _NotFound:
                pass
            raise InvalidChannelLayerError(
                f"Cannot import ROUTING {path!r} of channel layer {self.alias!r}: the module "
                f"{module_path!r} ({getattr(module, '__file__', '?')}) has no {name!r}. {hint}"
            ) from None


class _NotFound(Exception):
    """The module asked for, or one of its packages, does not exist."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _import_module(path: str) -> Any:
    """Import *path*; :exc:`_NotFound` if it does not exist, :exc:`RoutingImportError` if it fails.

    A ``ModuleNotFoundError`` for *path* or one of its parents means the
    path is wrong; any other exception (a ``SyntaxError``, a failed import
    inside the module...) is a bug in the module.
    """
    try:
        _check_syntax(path)
        return importlib.import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (path == exc.name or path.startswith(exc.name + ".")):
            raise _NotFound(exc.name) from None
        raise _routing_error(path, exc) from exc
    except Exception as exc:
        raise _routing_error(path, exc) from exc


def _check_syntax(path: str) -> None:
    """Raise the ``SyntaxError`` of module *path*'s source, if any, without importing it.

    A module that fails to import is put in ``sys.modules`` and taken out
    again; Django's autoreloader, listing ``sys.modules`` from its own thread
    meanwhile, can die of the key that vanished (a ``KeyError`` that stops
    ``runserver``). A syntax error, the usual mistake while editing, is
    found here first, without touching ``sys.modules``.
    """
    if path in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(path)
    except (ImportError, ValueError):
        return  # the import itself says what is wrong
    origin = getattr(spec, "origin", None)
    if spec is None or not isinstance(origin, str) or not origin.endswith(".py"):
        return
    try:
        with open(origin, "rb") as source:
            compile(source.read(), origin, "exec")
    except OSError:
        return


def _routing_error(path: str, exc: Exception) -> RoutingImportError:
    filename = getattr(exc, "filename", None) if isinstance(exc, SyntaxError) else None
    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    if filename is None and exc.__traceback__ is not None:
        frames = [
            frame
            for frame in traceback.extract_tb(exc.__traceback__)
            if "<frozen importlib" not in frame.filename
        ]
        if frames:
            filename, line = frames[-1].filename, frames[-1].lineno
    where = f"{filename}, line {line}" if filename else path
    return RoutingImportError(
        f"Importing the routing module {path!r} raised {type(exc).__name__}: {exc} "
        f"({where}). Fix the error in that file.",
        filename=filename,
    )


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
    def _import_backend(alias: str, path: Any) -> type[BaseChannelLayer]:
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
    def _construct(alias: str, backend: type[BaseChannelLayer], options: Any) -> BaseChannelLayer:
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
    from .logs import daphne_verbosity, served_by_daphne, use_default_logging

    layer = channel_layers[alias]
    if served_by_daphne():  # the bridge's lines in the format of the other processes
        use_default_logging(daphne_verbosity())
        # Say now if the layer is down, not at the first request; daphne starts anyway
        # and answers 503 until it is back.
        check_layer(layer, layer.outage, retry_in=2.0)
    return layer
