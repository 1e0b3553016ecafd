"""``manage.py runserver``: daphne and worker threads in one process.

It extends daphne's own ``runserver`` (itself Django's) through its hooks: the
application is the default channel layer, and before daphne starts, worker
threads begin consuming from that layer, which is why the in-memory layer is
enough in development. It is the ``runserver`` wherever ``"channels"`` is
listed in ``INSTALLED_APPS``, also after ``django.contrib.staticfiles``: see
:mod:`channels.management.precedence`.
"""

from __future__ import annotations

import threading
from typing import Any

from daphne.management.commands.runserver import Command as DaphneRunserverCommand
from django.apps import apps
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.management import CommandError
from django.core.management.commands.runserver import Command as DjangoRunserverCommand

from channels.asgi import DEFAULT_CHANNEL_LAYER, channel_layers
from channels.exceptions import InvalidChannelLayerError
from channels.handler import ViewConsumer
from channels.routing import Router
from channels.worker import Worker


class Command(DaphneRunserverCommand):
    help = "Start daphne and worker threads on the default channel layer (development only)."

    #: Worker threads started with the server.
    worker_threads = 4
    worker_class = Worker

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--noworker",
            action="store_false",
            dest="run_worker",
            help="Start no worker threads: run 'manage.py runworker' separately.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # daphne's handle() insists on ASGI_APPLICATION; ours serves the channel layer.
        self.http_timeout = options.get("http_timeout")
        self.websocket_handshake_timeout = options.get("websocket_handshake_timeout", 5)
        for name in ("websocket_max_message_size", "websocket_max_frame_size"):
            value = options.get(name)
            if value is None:
                value = getattr(settings, "DAPHNE_" + name.upper(), 1024 * 1024)
            setattr(self, name, value)
        if options.get("use_asgi", True):
            try:
                self.channel_layer = channel_layers[DEFAULT_CHANNEL_LAYER]
                self.routing = self.channel_layer.resolve_routing()
            except InvalidChannelLayerError as exc:
                raise CommandError(str(exc)) from exc
        DjangoRunserverCommand.handle(self, *args, **options)

    def serves_static(self, options: dict[str, Any]) -> bool:
        installed = apps.is_installed("django.contrib.staticfiles")
        return bool(
            options.get("use_static_handler", installed)
            and installed
            and (settings.DEBUG or options.get("insecure_serving", False))
        )

    def get_application(self, options: dict[str, Any]) -> Any:
        if self.serves_static(options):
            return ASGIStaticFilesHandler(self.channel_layer)
        return self.channel_layer

    def inner_run(self, *args: Any, **options: Any) -> None:
        if options.get("use_asgi", True) and options.get("run_worker", True):
            self.start_workers(options)
        super().inner_run(*args, **options)

    def start_workers(self, options: dict[str, Any]) -> None:
        threads = 1 if not options.get("use_threading", True) else self.worker_threads
        router = Router(self.routing, http_consumer=ViewConsumer(self.serves_static(options)))
        worker = self.worker_class(self.channel_layer, router, threads=threads)
        thread = threading.Thread(target=worker.run, name="channels-runserver-worker", daemon=True)
        thread.start()
        self.stdout.write(
            f"Worker threads: {threads} on channel layer {self.channel_layer.alias!r} "
            f"({type(self.channel_layer.channel_layer).__name__})"
        )
