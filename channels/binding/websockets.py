"""Data binding over WebSockets: JSON frames in the demultiplexer's envelope.

Outbound frames are ``{"stream": <stream>, "payload": {"action", "pk",
"data", "model"}}``; inbound payloads are ``{"action", "pk", "data"}``.
Mount :meth:`~channels.binding.base.Binding.consumer` in a
``WebsocketDemultiplexer``::

    class Demultiplexer(WebsocketDemultiplexer):
        consumers = {"intval": IntegerValueBinding.consumer}
        groups = ["intval-updates"]
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Field, Model

from ..generic.websockets import WebsocketMultiplexer
from ..message import Message
from ..sessions import enforce_ordering
from .base import Binding

__all__ = ["WebsocketBinding", "WebsocketBindingWithMembers"]


def _means_all(fields: Any) -> bool:
    return fields == "__all__" or list(fields) == ["__all__"]


class WebsocketBinding(Binding):
    """A binding that speaks JSON over a multiplexed WebSocket stream.

    Set ``model``, ``stream`` and ``fields`` (or ``exclude``); implement
    ``group_names`` and, to accept changes from clients, ``has_permission``.
    Override :meth:`serialize_data`, :meth:`create` or :meth:`update` to
    change how instances become data and back.
    """

    model = None  # abstract

    #: Run inbound requests in the socket's order (when routed without a demultiplexer).
    strict_ordering: ClassVar[bool] = False
    slight_ordering: ClassVar[bool] = False

    # Outbound ----------------------------------------------------------------

    @classmethod
    def encode(cls, stream: str | None, payload: dict[str, Any]) -> dict[str, Any]:
        if stream is None:
            raise ValueError(
                f"Set stream on {cls.__qualname__}: WebSocket bindings send on a stream"
            )
        return WebsocketMultiplexer.encode(stream, payload)

    def serialize(self, instance: Model, action: str) -> dict[str, Any] | None:
        return {
            "action": action,
            "pk": instance.pk,
            "data": self.serialize_data(instance),
            "model": self.model_label,
        }

    def field_names(self, instance: Model) -> list[str] | None:
        """Return the fields to send (None for all of them)."""
        if self.fields is not None:
            return None if _means_all(self.fields) else list(self.fields)
        excluded = set(self.exclude or ())
        return [f.name for f in instance._meta.get_fields() if f.name not in excluded]

    def serialize_data(self, instance: Model) -> dict[str, Any]:
        """Return the instance's fields as JSON-compatible data (Django's serializer)."""
        text = serializers.serialize("json", [instance], fields=self.field_names(instance))
        data: dict[str, Any] = json.loads(text)[0]["fields"]
        return data

    # Inbound -----------------------------------------------------------------

    @classmethod
    def get_handler(cls) -> Any:
        handler = super().get_handler()
        if not (cls.strict_ordering or cls.slight_ordering):
            return handler
        ordered = enforce_ordering(handler, slight=not cls.strict_ordering)

        def run(message: Message, **kwargs: Any) -> Any:
            # A demultiplexer has already put the socket's messages in order.
            return (handler if "multiplexer" in kwargs else ordered)(message, **kwargs)

        return run

    @classmethod
    def trigger_inbound(cls, message: Message, **kwargs: Any) -> None:
        # Connect and disconnect reach every stream; only frames carry requests.
        if message.channel.name == "websocket.receive":
            super().trigger_inbound(message, **kwargs)

    def deserialize(self, message: Message) -> tuple[str, Any, Any]:
        try:
            body = json.loads(message["text"])
        except (KeyError, TypeError, ValueError):
            self.refuse("invalid_json", "Send the request as a JSON text frame")
        if not isinstance(body, dict) or "action" not in body:
            self.refuse("invalid_payload", 'A request looks like {"action", "pk", "data"}')
        return body["action"], body.get("pk"), body.get("data")

    def writable_fields(self) -> set[str]:
        """Return the names a client may set: the bound fields, never the primary key."""
        opts = self.resolve_model()._meta
        names = {f.name for f in [*opts.concrete_fields, *opts.many_to_many] if f.editable}
        names.discard(opts.pk.name)
        if (
            self.fields is not None
            and self.fields != "__all__"
            and list(self.fields) != ["__all__"]
        ):
            names &= set(self.fields)
        return names - set(self.exclude or ())

    def hydrate(self, pk: Any, data: dict[str, Any]) -> Any:
        """Return Django's ``DeserializedObject`` for the writable part of *data*."""
        allowed = self.writable_fields()
        fields = {name: value for name, value in data.items() if name in allowed}
        record = {"model": self.model_label, "pk": pk, "fields": fields}
        return next(serializers.deserialize("python", [record]))

    def create(self, data: dict[str, Any]) -> Model:
        hydrated = self.hydrate(None, data)
        instance: Model = hydrated.object
        instance.save()
        self._set_many(instance, hydrated.m2m_data)
        return instance

    def update(self, pk: Any, data: dict[str, Any]) -> Model:
        instance = self.get_instance(pk)
        hydrated = self.hydrate(instance.pk, data)
        opts = instance._meta
        for name in data:
            if name in hydrated.m2m_data or name not in self.writable_fields():
                continue
            field = opts.get_field(name)
            if isinstance(field, Field):  # always: writable fields are concrete
                setattr(instance, field.attname, getattr(hydrated.object, field.attname))
        instance.save()
        self._set_many(instance, hydrated.m2m_data)
        return instance

    @staticmethod
    def _set_many(instance: Model, m2m_data: dict[str, Any]) -> None:
        for name, values in m2m_data.items():
            getattr(instance, name).set(values)


class WebsocketBindingWithMembers(WebsocketBinding):
    """A :class:`WebsocketBinding` that also sends attributes, properties and methods.

    List them in ``send_members``; dotted names follow attributes
    (``"owner.username"``, sent as ``owner__username``) and callables are
    called with no arguments. Values are encoded with ``DjangoJSONEncoder``.
    """

    model = None  # abstract
    send_members: ClassVar[list[str]] = []
    encoder: ClassVar[json.JSONEncoder] = DjangoJSONEncoder()

    def serialize_data(self, instance: Model) -> dict[str, Any]:
        data = super().serialize_data(instance)
        members: dict[str, Any] = {}
        for name in self.send_members:
            value: Any = instance
            for part in name.split("."):
                value = getattr(value, part)
            members[name.replace(".", "__")] = value() if callable(value) else value
        # A member cannot share a name with a field, so nothing is overwritten.
        data.update(json.loads(self.encoder.encode(members)))
        return data
