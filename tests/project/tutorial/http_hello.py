# ruff: noqa
# "First Consumers" of getting-started-1.x, as written there.
from django.http import HttpResponse
from channels.handler import AsgiHandler


def http_consumer(message):
    # Make standard HTTP response - access ASGI path attribute directly
    response = HttpResponse("Hello world! You asked for %s" % message.content["path"])
    # Encode that response into message format (ASGI)
    for chunk in AsgiHandler.encode_response(response):
        message.reply_channel.send(chunk)


# In routing.py
from channels.routing import route

channel_routing = [
    route("http.request", "tests.project.tutorial.http_hello.http_consumer"),
]
