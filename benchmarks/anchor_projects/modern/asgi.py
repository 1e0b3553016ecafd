"""The ASGI application: Django for HTTP, consumers for WebSocket and worker channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "modern.settings")
django_application = get_asgi_application()

# Imported after Django is set up.
from django.urls import path  # noqa: E402

from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from modern import consumers  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": URLRouter(
            [
                path("ws/echo/", consumers.EchoConsumer.as_asgi()),
                path("ws/chat/", consumers.ChatConsumer.as_asgi()),
            ]
        ),
        "channel": ChannelNameRouter(
            {
                "bench-count": consumers.CountConsumer.as_asgi(),
                "bench-count-sync": consumers.SyncCountConsumer.as_asgi(),
                "bench-reply": consumers.ReplyConsumer.as_asgi(),
                "bench-reply-sync": consumers.SyncReplyConsumer.as_asgi(),
            }
        ),
    }
)
