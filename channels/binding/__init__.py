"""Data binding: model changes out to channel groups, client changes back in.

:class:`~channels.binding.base.Binding` is the protocol-neutral base;
:class:`~channels.binding.websockets.WebsocketBinding` speaks JSON over a
multiplexed WebSocket. See ``docs/binding.rst``.
"""

from .base import CREATE, DELETE, UPDATE, Binding

__all__ = ["CREATE", "DELETE", "UPDATE", "Binding"]
