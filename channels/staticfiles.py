"""``channels.staticfiles``, kept at its 1.x path: the consumer that also serves static files.

The serving itself is :class:`channels.handler.StaticFilesAsgiHandler`; these
are its 1.x names.
"""

from __future__ import annotations

from .handler import StaticFilesAsgiHandler, ViewConsumer

__all__ = ["StaticFilesConsumer", "StaticFilesHandler"]

#: 1.x name of the handler that serves ``STATIC_URL`` before running views.
StaticFilesHandler = StaticFilesAsgiHandler


class StaticFilesConsumer(ViewConsumer):
    """A :class:`~channels.handler.ViewConsumer` that serves ``STATIC_URL`` whatever ``DEBUG`` says.

    Route ``http.request`` to an instance where 1.x projects did, e.g. in a
    development routing module.
    """

    def __init__(self) -> None:
        super().__init__(serve_static=True)
