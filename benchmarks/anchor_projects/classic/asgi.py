"""The ASGI 1 channel layer daphne 1.4.2 serves (``classic.asgi:channel_layer``)."""

import os

import channels.asgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "classic.settings")
channel_layer = channels.asgi.get_channel_layer()
