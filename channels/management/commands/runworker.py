"""``manage.py runworker``: run consumers for a cross-process channel layer.

Set-up mistakes (an unknown ``--layer``, a layer without ``ROUTING``, a
routing that cannot be imported) end it at once with the fix. A layer that
is down or misconfigured at run time is reported once and retried until it
works. ``--autoreload`` restarts it when the project's code changes, as
``runserver`` does.

``SIGTERM`` or ``SIGINT`` stops it gracefully: every message it took is
finished, and it exits with status 0, or, if consumers are still running
after ``--stop-timeout``, logs them and exits with status 1 at once.
``--max-messages`` and ``--max-memory`` stop it the same way for a fresh
process (:mod:`channels.recycle`); ``--ready-file`` tells an orchestrator it
is ready (:mod:`channels.readiness`). See the operations guide.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
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
from channels.readiness import Readiness
from channels.recycle import Recycler
from channels.signals import worker_process_ready
from channels.worker import Worker, consumer_name

logger = logging.getLogger("channels.runworker")


class Command(BaseCommand):
    help = "Run a worker: consume messages from the channel layer with the routed consumers."

    worker_class = Worker
    #: Seconds a stopping worker waits for its running consumers, unless told otherwise.
    default_stop_timeout = 30.0
    #: Exit status of a stop that had to cut consumers short.
    cut_exit_status = 1

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
        parser.add_argument(
            "--stop-timeout",
            type=float,
            default=self.default_stop_timeout,
            metavar="SECONDS",
            help="On SIGTERM/SIGINT (or when recycling), wait this long for running consumers "
            "to finish, then log the ones still running and exit with status 1 "
            "(default: %(default)g).",
        )
        parser.add_argument(
            "--max-messages",
            type=int,
            metavar="N",
            help="Stop gracefully and exit with status 0 after about N messages (moved by up "
            "to 10%% per process), so the process manager starts a fresh worker.",
        )
        parser.add_argument(
            "--max-memory",
            type=float,
            metavar="MB",
            help="Stop gracefully and exit with status 0 when, after a message, the process's "
            "resident memory is above MB mebibytes.",
        )
        parser.add_argument(
            "--ready-file",
            metavar="PATH",
            help="Write PATH (holding the pid) once the worker is ready to take messages, and "
            "remove it when the worker exits: for an orchestrator's readiness check.",
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
        if not options["stop_timeout"] > 0:
            raise CommandError("--stop-timeout must be a number of seconds above 0")
        if options["max_messages"] is not None and options["max_messages"] < 1:
            raise CommandError("--max-messages must be at least 1 (or left out: no limit)")
        if options["max_memory"] is not None and not options["max_memory"] > 0:
            raise CommandError("--max-memory must be a number of MB above 0 (or left out)")
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
        recycler = None
        if options["max_messages"] is not None or options["max_memory"] is not None:
            recycler = Recycler(options["max_messages"], options["max_memory"])
        try:
            worker = self.worker_class(
                layer,
                Router(router_routing),
                only_channels=options["only_channels"],
                exclude_channels=options["exclude_channels"],
                threads=options["threads"],
                callback=self.log_message if self.verbosity >= 2 else None,
                recycler=recycler,
                stop_timeout=options["stop_timeout"],
            )
        except (ValueError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        description = (
            f"worker {os.getpid()} listening on {len(worker.channels)} channels of "
            f"channel layer {alias!r}"
        )
        try:
            readiness = Readiness(logger, description, options["ready_file"])
        except ValueError as exc:
            raise CommandError(f"--ready-file: {exc}") from exc
        worker.on_ready = readiness.announce
        with readiness:
            self.run_worker(worker, readiness, options)
        logger.info("Worker stopped.")

    def run_worker(self, worker: Worker, readiness: Readiness, options: dict[str, Any]) -> None:
        """Start the worker, say when it is ready, run it until it stops; close the layer.

        A stop that had to cut consumers short ends the process here, at once
        (their threads could hold it up for ever), with :attr:`cut_exit_status`.
        """
        layer = worker.channel_layer
        if not options["autoreload"]:  # the reloader's own thread owns the signals then
            self._install_signal_handlers(worker)
        answered = worker.check_layer()
        if self.verbosity >= 1:
            self.stdout.write(
                f"Running {options['threads']} worker thread(s) on channel layer "
                f"{options['layer']!r} ({layer.channel_layer!r})\n"
                f"Listening on channels: {', '.join(worker.channels)}"
            )
        if worker.recycler is not None:
            self.describe_recycling(worker.recycler)
        if answered:  # else the first receive that works says it
            worker.mark_ready()
        worker_process_ready.send(sender=type(worker), worker=worker)
        cut = worker.run()
        try:  # put back what a receive read ahead (several Redis servers), disconnect
            layer.close()
        except Exception as exc:
            logger.warning("Could not close the channel layer cleanly: %s", exc)
        if cut:
            readiness.withdraw()
            logger.error(
                "Worker stopped, %d %s cut short; exiting with status %d",
                len(cut),
                "consumer" if len(cut) == 1 else "consumers",
                self.cut_exit_status,
            )
            logging.shutdown()  # flush the handlers: os._exit skips it
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(self.cut_exit_status)

    def describe_recycling(self, recycler: Recycler) -> None:
        """Log when this worker will stop for a fresh one."""
        when = []
        if recycler.limit is not None:
            when.append(
                f"after {recycler.limit} messages (--max-messages {recycler.max_messages} "
                f"± {recycler.jitter:.0%})"
            )
        if recycler.max_memory_mb is not None:
            when.append(
                f"once its resident memory is above {recycler.max_memory_mb:g} MiB (--max-memory)"
            )
        logger.info("Recycling: this worker stops %s", " or ".join(when))

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
                    "stop now); giving up after %g s",
                    running,
                    "consumer" if running == 1 else "consumers",
                    worker.stop_timeout,
                )
            else:
                logger.info("Stopping: no consumer is running")
            worker.stop(signal.Signals(signum).name)
            # A second signal stops at once.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
