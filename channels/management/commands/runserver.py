"""``manage.py runserver``: daphne and worker threads in one process.

It extends daphne's own ``runserver`` (itself Django's) through its hooks: the
application is the default channel layer, and before daphne starts, worker
threads begin consuming from that layer, which is why the in-memory layer is
enough in development. It is the ``runserver`` wherever ``"channels"`` is
listed in ``INSTALLED_APPS``, also after ``django.contrib.staticfiles``: see
:mod:`channels.management.precedence`.

Mistakes in the project's code behave as they do under Django's own
``runserver``: the routing is imported in the server thread, so an error in
it prints its traceback and the autoreloader, still watching the broken
file, restarts the server once it is saved again. A port that is taken ends
the command with an error instead of a server that listens nowhere.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import threading
import time
from typing import Any

from daphne.management.commands.runserver import Command as DaphneRunserverCommand
from daphne.server import Server
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError
from django.core.management.commands.runserver import Command as DjangoRunserverCommand
from django.utils import autoreload

from channels.asgi import DEFAULT_CHANNEL_LAYER, channel_layers
from channels.exceptions import InvalidChannelLayerError, RoutingImportError
from channels.handler import ViewConsumer
from channels.logs import use_default_logging
from channels.routing import Router
from channels.staticfiles import StaticFilesApplication
from channels.worker import Worker

#: What the errors of a failed listen mean, as Django's runserver says them.
LISTEN_ERRORS: dict[int | None, str] = {
    errno.EADDRINUSE: "That port is already in use.",
    errno.EACCES: "You don't have permission to access that port.",
    errno.EADDRNOTAVAIL: "That IP address can't be assigned to.",
}


class ListenFailed(Exception):
    """daphne could not listen on the address; ``errno`` says why, when known."""

    def __init__(self, message: str, errno: int | None) -> None:
        super().__init__(message)
        self.errno = errno


class DevelopmentServer(Server):
    """daphne's server, made to raise :exc:`ListenFailed` when it cannot listen.

    daphne logs "Listen failure" and stops its reactor; under the autoreloader
    the process then stays up with nothing listening.
    """

    listen_failure: ListenFailed | None = None

    def listen_error(self, failure: Any) -> None:
        socket_error = getattr(failure.value, "socketError", None)
        self.listen_failure = ListenFailed(
            failure.getErrorMessage(), getattr(socket_error, "errno", None)
        )
        self.stop()

    def run(self) -> None:
        super().run()
        if self.listen_failure is not None:
            raise self.listen_failure


#: Django's access-log logger: its default handler formats and colours these lines.
server_log = logging.getLogger("django.server")
#: How Django's runserver writes the time of an access line.
SERVER_TIME = "%d/%b/%Y %H:%M:%S"
#: daphne's names for what happens to a socket, as the log says them.
WEBSOCKET_ACTIONS = {
    "connected": "CONNECT",
    "disconnected": "DISCONNECT",
    "rejected": "REJECT",
}


class Command(DaphneRunserverCommand):
    help = "Start daphne and worker threads on the default channel layer (development only)."

    #: Worker threads started with the server.
    worker_threads = 4
    worker_class = Worker
    server_cls = DevelopmentServer

    #: Help of inherited options whose meaning is different here.
    option_help = {
        "use_threading": (
            f"Run one worker thread instead of {worker_threads} (daphne itself serves "
            "every connection from one thread either way)."
        ),
        "http_timeout": (
            "daphne's own limit, in seconds, on the life of an HTTP request (default: none). "
            "How long a request waits for a worker is the CHANNELS_HTTP_TIMEOUT setting "
            "(60 seconds by default, then a 503); if you set this too, make it longer."
        ),
        "use_asgi": "Run Django's plain WSGI runserver instead: no channel layer, no workers.",
    }

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--noworker",
            action="store_false",
            dest="run_worker",
            help="Start no worker threads: run 'manage.py runworker' separately.",
        )
        for action in parser._actions:  # argparse has no public way to reword a help
            if action.dest in self.option_help:
                action.help = self.option_help[action.dest]

    def handle(self, *args: Any, **options: Any) -> None:
        use_default_logging(options.get("verbosity", 1))
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
            except InvalidChannelLayerError as exc:
                raise CommandError(str(exc)) from exc
            if not options.get("run_worker", True) and self.channel_layer.local_only():
                raise CommandError(
                    f"runserver --noworker cannot serve channel layer "
                    f"{DEFAULT_CHANNEL_LAYER!r}: it is the in-memory layer, which no "
                    "runworker process can read, so every request would wait for a worker "
                    "that never comes. Drop --noworker, or configure a cross-process layer "
                    "such as 'channels.layers.redis.RedisChannelLayer'."
                )
        DjangoRunserverCommand.handle(self, *args, **options)

    def log_action(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        """Log each request and socket as Django's runserver does (``django.server``)."""
        if protocol == "http" and action == "complete":
            status = details["status"]
            level = (
                logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
            )
            server_log.log(
                level,
                '"%s %s" %s (%.3f s)',
                details["method"],
                details["path"],
                status,
                details["time_taken"],
                # Django's own access lines bring their time, without milliseconds.
                extra={"status_code": status, "server_time": time.strftime(SERVER_TIME)},
            )
        elif protocol == "websocket" and action in WEBSOCKET_ACTIONS:
            server_log.info(
                "WebSocket %s %s",
                WEBSOCKET_ACTIONS[action],
                details["path"],
                extra={"server_time": time.strftime(SERVER_TIME)},
            )

    def serves_static(self, options: dict[str, Any]) -> bool:
        installed = apps.is_installed("django.contrib.staticfiles")
        return bool(
            options.get("use_static_handler", installed)
            and installed
            and (settings.DEBUG or options.get("insecure_serving", False))
        )

    def get_application(self, options: dict[str, Any]) -> Any:
        if self.serves_static(options):
            return StaticFilesApplication(self.channel_layer)
        return self.channel_layer

    def inner_run(self, *args: Any, **options: Any) -> None:
        # As Django's runserver: an error the launcher put off (django.setup()) shows now.
        autoreload.raise_last_exception()
        if options.get("use_asgi", True):
            if not self.load_routing(options):
                return
            if options.get("run_worker", True):
                self.start_workers(options)
        try:
            super().inner_run(*args, **options)
        except ListenFailed as exc:
            self.stderr.write(f"Error: {LISTEN_ERRORS.get(exc.errno, str(exc))}")
            if exc.errno == errno.EADDRINUSE:
                self.stderr.write(
                    f"Port {self.port} is taken by another program: stop it, or choose "
                    f"another port, e.g. 'manage.py runserver {int(self.port) + 1}'."
                )
            sys.stdout.flush()
            sys.stderr.flush()
            # As Django's runserver: under the autoreloader this is a thread, so sys.exit
            # would end only the thread and leave the process serving nothing.
            os._exit(1)

    def load_routing(self, options: dict[str, Any]) -> bool:
        """Import the layer's routing here, in the server thread; False if it is wrong.

        Under the autoreloader an error is reported and the reloader waits for
        a fix: a module that raised is re-raised, so the reloader (whose
        ``check_errors`` reads :attr:`RoutingImportError.filename`) watches
        the broken file even though it was never imported.
        """
        try:
            self.routing = self.channel_layer.resolve_routing()
            self.router = Router(
                self.routing, http_consumer=ViewConsumer(self.serves_static(options))
            )
            return True
        except RoutingImportError:
            if options.get("use_reloader"):
                self.stderr.write(
                    "Error: the routing cannot be imported (traceback below). The server "
                    "restarts when you save a fix."
                )
            raise
        except ImproperlyConfigured as exc:  # a wrong ROUTING path, or a wrong route in it
            if not options.get("use_reloader"):
                raise CommandError(str(exc)) from exc
            self.stderr.write(f"Error: {exc}\nThe server restarts when you save a fix.")
            return False

    def start_workers(self, options: dict[str, Any]) -> None:
        threads = 1 if not options.get("use_threading", True) else self.worker_threads
        worker = self.worker_class(self.channel_layer, self.router, threads=threads)
        thread = threading.Thread(target=worker.run, name="channels-runserver-worker", daemon=True)
        thread.start()
        self.stdout.write(
            f"Worker threads: {threads} on channel layer {self.channel_layer.alias!r} "
            f"({type(self.channel_layer.channel_layer).__name__})"
        )
