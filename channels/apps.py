from django.apps import AppConfig
from django.core import checks


class ChannelsConfig(AppConfig):
    name = "channels"
    verbose_name = "Channels"

    def ready(self) -> None:
        from .checks import check_channel_layers

        checks.register(check_channel_layers, "channels")
