# ruff: noqa
# fmt: off
# concepts.rst, "How do we use channels?": a view is merely another consumer.

# Context the sample takes for granted: the classes it uses, and a view.
from django.http import HttpResponse
from channels.handler import AsgiHandler, AsgiRequest


def view(request):
    return HttpResponse("%s %s?%s" % (request.method, request.path, request.GET.urlencode()))


# Listens on http.request
def my_consumer(message):
    # Decode the request from message format to a Request object
    django_request = AsgiRequest(message)
    # Run view
    django_response = view(django_request)
    # Encode the response into message format
    for chunk in AsgiHandler.encode_response(django_response):
        message.reply_channel.send(chunk)
