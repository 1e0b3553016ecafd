"""The hello-world view, the same text as ours and Channels 4's."""

from django.http import HttpResponse


def hello(request):
    return HttpResponse(f"Hello world! You asked for {request.path}")
