"""The hello-world view, the same as the test project's."""

from django.http import HttpRequest, HttpResponse


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"Hello world! You asked for {request.path}")
