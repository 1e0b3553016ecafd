"""``manage.py runworker``: run consumers for a cross-process channel layer.

Set-up mistakes (an unknown ``--layer``, a layer without ``ROUTING``, a
routing that cannot be imported) end it at once with the fix. A layer that
is down or misconfigured at run time is reported once and retried until it
works. ``--autoreload`` restarts it when the project's code changes, as
``runserver`` does.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import autoreload

from channels.asgi import DEFAULT_CHANNEL_LAYER, channel_layers
from channels.exceptions import InvalidChannelLayerError, RoutingImportError
from channels.layers.names import stats_name
from channels.logs import use_default_logging
from channels.message import Message
from channels.signals import worker_process_ready
from channels.worker import Worker, consumer_name

logger = logging.getLogger("channels.runworker")


class Command(BaseCommand):
    help = "Run a worker: consume messages from the channel layer with the routed consumers."

    worker_class = Worker

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--layer",
            default=DEFAULT_CHANNEL_LAYER,
            help="Channel layer alias to serve (default: %(default)s).",
        )
        parser.add_argument(
            "--only-channels",
            action="append",
            dest="only_channels",
            metavar="GLOB",
            help="Only listen on channels matching this glob (repeatable).",
        )
        parser.add_argument(
            "--exclude-channels",
            action="append",
            dest="exclude_channels",
            metavar="GLOB",
            help="Do not listen on channels matching this glob (repeatable).",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=1,
            help="Worker threads in this process (default: %(default)s).",
        )
        parser.add_argument(
            "--autoreload",
            action="store_true",
            help="Restart the worker when a Python file changes (for development; off by "
            "default). Running consumers are cut short by a restart.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["layer"]
        try:
            configs = channel_layers.configs
        except InvalidChannelLayerError as exc:
            raise CommandError(str(exc)) from exc
        if alias not in configs:
            defined = ", ".join(map(repr, configs)) or "none"
            raise CommandError(
                f"There is no channel layer {alias!r} in CHANNEL_LAYERS; --layer takes one of "
                f"its aliases: {defined}."
            )
        if options["threads"] < 1:
            raise CommandError("--threads must be at least 1")
        if options["autoreload"]:
            autoreload.run_with_reloader(self.inner_run, **options)
        else:
            self.inner_run(**options)

    def inner_run(self, **options: Any) -> None:
        """Check the layer and its routing, then run the worker until it is stopped."""
        autoreload.raise_last_exception()
        alias = options["layer"]
        try:
            layer = channel_layers[alias]
        except InvalidChannelLayerError as exc:
            raise CommandError(str(exc)) from exc
        if layer.routing is None:
            raise CommandError(
                f"Channel layer {alias!r} has no ROUTING, so a worker would have nothing to "
                f"run: set CHANNEL_LAYERS[{alias!r}]['ROUTING'] to the dotted path of your "
                "routing list, e.g. 'myproject.routing.channel_routing'."
            )
        try:
            router_routing = layer.resolve_routing()
        except RoutingImportError:
            raise  # its traceback is the point; under --autoreload the file is watched
        except InvalidChannelLayerError as exc:
            raise CommandError(str(exc)) from exc
        if layer.local_only():
            raise CommandError(
                f"The channel layer {alias!r} is in-memory and cannot reach other processes: "
                "runworker needs a cross-process layer such as "
                "'channels.layers.redis.RedisChannelLayer'. With the in-memory layer, "
                "runserver runs the workers itself."
            )
        from channels.routing import Router

        self.verbosity = options["verbosity"]
        use_default_logging(self.verbosity)
        try:
            worker = self.worker_class(
                layer,
                Router(router_routing),
                only_channels=options["only_channels"],
                exclude_channels=options["exclude_channels"],
                threads=options["threads"],
                callback=self.log_message if self.verbosity >= 2 else None,
            )
        except (ValueError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        if not options["autoreload"]:  # the reloader's own thread owns the signals then
            self._install_signal_handlers(worker)
        worker.check_layer()
        if self.verbosity >= 1:
            self.stdout.write(
                f"Running {options['threads']} worker thread(s) on channel layer {alias!r} "
                f"({layer.channel_layer!r})\nListening on channels: {', '.join(worker.channels)}"
            )
        worker_process_ready.send(sender=type(worker), worker=worker)
        worker.run()
        logger.info("Worker stopped.")

    def log_message(self, channel: str, message: Message, consumer: Any) -> None:
        # Only the process prefix: the rest of a reply channel name keys its sessions.
        reply = stats_name(message.reply_channel.name) if message.reply_channel else "-"
        logger.debug("%s -> %s (reply to %s)", channel, consumer_name(consumer), reply)

    def _install_signal_handlers(self, worker: Worker) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            running = worker.running_consumers
            if running:
                logger.info(
                    "Stopping: waiting for %d running %s to finish (press Ctrl+C again to "
                    "stop now)",
                    running,
                    "consumer" if running == 1 else "consumers",
                )
            else:
                logger.info("Stopping: no consumer is running")
            worker.stop()
            # A second signal stops at once.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
