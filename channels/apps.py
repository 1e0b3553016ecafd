from django.apps import AppConfig
from django.core import checks


class ChannelsConfig(AppConfig):
    name = "channels"
    verbose_name = "Channels"

    def ready(self) -> None:
        from django.db import close_old_connections

        from .checks import check_channel_layers, check_session_engine
        from .management.precedence import take_over_runserver
        from .signals import consumer_finished, consumer_started

        checks.register(check_channel_layers, "channels")
        checks.register(check_session_engine, "channels")
        # Consumers get fresh database connections, as views do per request.
        consumer_started.connect(close_old_connections, dispatch_uid="channels.db")
        consumer_finished.connect(close_old_connections, dispatch_uid="channels.db.finished")
        # "channels" may come after staticfiles in INSTALLED_APPS: runserver is still ours.
        take_over_runserver()
