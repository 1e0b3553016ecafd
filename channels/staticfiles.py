"""``channels.staticfiles``, kept at its 1.x path: serving ``STATIC_URL`` in development.

The worker-side serving is :class:`channels.handler.StaticFilesAsgiHandler`
(these are its 1.x names); :class:`StaticFilesApplication` is the same in
front of the channel layer, in the interface server's process, which is how
``runserver`` serves static files.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from asgiref.typing import ASGIApplication
from django import http
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from .handler import StaticFilesAsgiHandler, ViewConsumer, response_for

__all__ = ["StaticFilesApplication", "StaticFilesConsumer", "StaticFilesHandler"]

#: 1.x name of the handler that serves ``STATIC_URL`` before running views.
StaticFilesHandler = StaticFilesAsgiHandler


class StaticFilesConsumer(ViewConsumer):
    """A :class:`~channels.handler.ViewConsumer` that serves ``STATIC_URL`` whatever ``DEBUG`` says.

    Route ``http.request`` to an instance where 1.x projects did, e.g. in a
    development routing module.
    """

    def __init__(self) -> None:
        super().__init__(serve_static=True)


class StaticFilesApplication(ASGIStaticFilesHandler):
    """Serve ``STATIC_URL`` in front of an ASGI application, answering every failure at once.

    Django's own handler turns only ``Http404`` into a response; anything
    else (``SuspiciousFileOperation`` for ``/static/../../etc/passwd``) would
    escape to the server as an application error. Here it gets the response
    a view raising it would: 400 for a suspicious path, else 500.
    """

    def __init__(self, application: ASGIApplication) -> None:
        super().__init__(application)  # type: ignore[arg-type]  # stubs say ASGIHandler; any app works

    async def get_response_async(self, request: http.HttpRequest) -> http.HttpResponseBase:
        try:
            return await super().get_response_async(request)
        except Exception as exc:
            response = await sync_to_async(response_for, thread_sensitive=False)(request, exc)
            response._resource_closers.append(request.close)  # type: ignore[attr-defined]  # Django's private list, as its handler uses it
            return response
