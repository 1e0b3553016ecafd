"""``manage.py rundelay``: send ``asgi.delay`` messages when they are due."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from channels.asgi import DEFAULT_CHANNEL_LAYER, channel_layers
from channels.delay.server import DelayServer
from channels.exceptions import InvalidChannelLayerError
from channels.logs import use_default_logging


class Command(BaseCommand):
    help = "Run the delay server: store asgi.delay messages and send them when due."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--layer", default=DEFAULT_CHANNEL_LAYER, help="Channel layer alias.")

    def handle(self, *args: Any, **options: Any) -> None:
        use_default_logging(options["verbosity"])
        try:
            layer = channel_layers[options["layer"]]
        except InvalidChannelLayerError as exc:
            raise CommandError(str(exc)) from exc
        if layer.local_only():
            raise CommandError(
                "rundelay needs a cross-process channel layer such as Redis; the in-memory "
                "layer cannot reach other processes."
            )
        self.require_migrations()
        server = DelayServer(layer)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: server.stop())
        self.stdout.write(f"Delay server running on channel layer {options['layer']!r}")
        server.run()
        self.stdout.write("Delay server stopped.")

    @staticmethod
    def require_migrations() -> None:
        """Refuse to start before the delay table exists.

        Without it every message taken off ``asgi.delay`` would fail to be
        stored; better to say so once, before taking any.
        """
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        leaves = executor.loader.graph.leaf_nodes(DelayServer.app_label)
        if executor.migration_plan(leaves):
            raise CommandError(
                "The delay server's table is missing or out of date: run "
                "`python manage.py migrate` first."
            )
