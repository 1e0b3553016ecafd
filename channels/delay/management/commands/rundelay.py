"""``manage.py rundelay``: send ``asgi.delay`` messages when they are due.

``SIGTERM``/``SIGINT`` stop it after the step in hand. Once its layer
answers it logs ``Ready: ...`` and, with ``--ready-file PATH``, writes PATH
until it exits (:mod:`channels.readiness`).
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from channels.asgi import DEFAULT_CHANNEL_LAYER, channel_layers
from channels.delay.server import DelayServer
from channels.exceptions import InvalidChannelLayerError
from channels.logs import use_default_logging
from channels.readiness import Readiness

logger = logging.getLogger("channels.delay")


class Command(BaseCommand):
    help = "Run the delay server: store asgi.delay messages and send them when due."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--layer", default=DEFAULT_CHANNEL_LAYER, help="Channel layer alias.")
        parser.add_argument(
            "--ready-file",
            metavar="PATH",
            help="Write PATH (holding the pid) once the delay server is ready, and remove it "
            "when it exits: for an orchestrator's readiness check.",
        )

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
        description = f"delay server {os.getpid()} on channel layer {options['layer']!r}"
        try:
            readiness = Readiness(logger, description, options["ready_file"])
        except ValueError as exc:
            raise CommandError(f"--ready-file: {exc}") from exc
        server = DelayServer(layer, on_ready=readiness.announce)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: server.stop())
        with readiness:
            self.stdout.write(f"Delay server running on channel layer {options['layer']!r}")
            if server.check_layer():  # else the first step that works says it
                server.mark_ready()
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
