# ruff: noqa
# fmt: off
# deploying.rst, "Run interface servers": the project's asgi.py.

import os
from channels.asgi import get_channel_layer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "my_project.settings")

channel_layer = get_channel_layer()
