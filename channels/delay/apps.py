from django.apps import AppConfig


class DelayConfig(AppConfig):
    name = "channels.delay"
    label = "channels_delay"
    verbose_name = "Channels delay server"
    default_auto_field = "django.db.models.BigAutoField"
