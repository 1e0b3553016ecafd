"""What daphne serves: ``daphne example_project.asgi:channel_layer``."""

import os

from channels.asgi import get_channel_layer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

channel_layer = get_channel_layer()
