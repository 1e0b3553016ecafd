from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A binding sends changes only once its class is defined: define it in
        # every process that may save a Room (workers, runserver, manage.py shell).
        from . import bindings  # noqa: F401
