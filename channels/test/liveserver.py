"""``ChannelLiveServerTestCase``: daphne and a worker in child processes, for browser tests."""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test import TransactionTestCase

from ..asgi import DEFAULT_CHANNEL_LAYER, channel_layers

__all__ = ["ChannelLiveServerTestCase"]


def _serve(
    role: str,
    overrides: dict[str, Any],
    alias: str,
    port: int,
    threads: int,
    serve_static: bool,
) -> None:
    """Child process entry point: set Django up like the test process, then serve."""
    import django

    django.setup(set_prefix=False)
    for name, value in overrides.items():
        if name == "DATABASES":
            # In place, as Django's test runner does: the connection handler
            # already holds these dicts.
            for alias, database_name in value.items():
                settings.DATABASES[alias]["NAME"] = database_name
        else:
            setattr(settings, name, value)
    layer = channel_layers.make_backend(alias, "TEST_CONFIG")
    channel_layers.set(alias, layer)
    if role == "daphne":
        from daphne.server import Server

        endpoint = f"tcp:port={port}:interface=127.0.0.1"
        Server(application=layer, endpoints=[endpoint], verbosity=0).run()
    else:
        from django.apps import apps

        from ..handler import ViewConsumer
        from ..routing import Router
        from ..worker import Worker

        static = serve_static and apps.is_installed("django.contrib.staticfiles")
        router = Router(layer.resolve_routing(), http_consumer=ViewConsumer(static))
        Worker(layer, router, threads=threads).run()


class ChannelLiveServerTestCase(TransactionTestCase):
    """Serve the project with daphne and a worker, each in a process of its own.

    The children use the test database, the settings the test case
    overrides (``override_settings`` / ``modify_settings`` on the class), and
    the channel layer's ``TEST_CONFIG`` (else ``CONFIG``), which must reach
    across processes (Redis). Point a browser or a WebSocket client at
    :attr:`live_server_url` / :attr:`live_server_ws_url`.
    """

    #: The layer the servers use.
    channel_alias: str = DEFAULT_CHANNEL_LAYER
    #: Threads of the worker process.
    worker_threads: int = 1
    #: Serve ``STATIC_URL`` from the worker, whatever ``DEBUG`` says (as 1.x did),
    #: when ``django.contrib.staticfiles`` is installed.
    serve_static: bool = True
    #: Seconds the servers get to start listening.
    startup_timeout: float = 30.0
    host: str = "127.0.0.1"

    @property
    def live_server_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def live_server_ws_url(self) -> str:
        return f"ws://{self.host}:{self._port}"

    def run(self, result: Any = None) -> Any:
        with self._live_servers():
            return super().run(result)

    @contextlib.contextmanager
    def _live_servers(self) -> Iterator[None]:
        overrides = self._child_settings()
        layer = channel_layers.make_backend(self.channel_alias, "TEST_CONFIG")
        if layer.local_only():
            raise ImproperlyConfigured(
                "ChannelLiveServerTestCase needs a channel layer that reaches other processes; "
                f"give {self.channel_alias!r} a Redis BACKEND (or TEST_CONFIG)"
            )
        replaced = channel_layers.set(self.channel_alias, layer)
        layer.flush()
        self._port = _free_port(self.host)
        # spawn, not fork: the test process has threads and sockets of its own.
        context = multiprocessing.get_context("spawn")
        processes = [
            context.Process(
                target=_serve,
                args=(
                    role,
                    overrides,
                    self.channel_alias,
                    self._port,
                    self.worker_threads,
                    self.serve_static,
                ),
                daemon=True,
            )
            for role in ("daphne", "worker")
        ]
        try:
            for process in processes:
                process.start()
            # Messages wait in the layer until the worker listens: only daphne must be up.
            self._wait_until_listening(processes)
            yield
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
            for process in processes:
                process.join(10)
                if process.is_alive():
                    process.kill()
                    process.join()
            channel_layers.set(self.channel_alias, replaced)
            layer.flush()
            layer.close()

    def _child_settings(self) -> dict[str, Any]:
        from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteDatabaseWrapper

        databases = {}
        for alias in connections:
            connection = connections[alias]
            if isinstance(connection, SQLiteDatabaseWrapper) and connection.is_in_memory_db():
                raise ImproperlyConfigured(
                    "ChannelLiveServerTestCase cannot share an in-memory SQLite database with "
                    "its server processes; set DATABASES[...]['TEST']['NAME'] to a file"
                )
            databases[alias] = connection.settings_dict["NAME"]
        # The class's override_settings/modify_settings are in force by now
        # (setUpClass ran): hand their current values on.
        changed = set(getattr(self, "_overridden_settings", None) or ())
        changed.update(name for name, _ in getattr(self, "_modified_settings", None) or ())
        inherited = {name: getattr(settings, name) for name in sorted(changed)}
        return {
            **inherited,
            "DATABASES": databases,
            "CHANNEL_LAYERS": channel_layers.configs,
        }

    def _wait_until_listening(self, processes: list[Any]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                socket.create_connection((self.host, self._port), timeout=1).close()
                return
            except OSError:
                if any(p.exitcode is not None for p in processes) or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"The live servers did not start listening on port {self._port}"
                    ) from None
                time.sleep(0.05)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
