"""``Binding``: a two-way binding between a Django model and channel groups.

Outbound, each change of the model (through ``save()`` and ``delete()``) is
sent to the groups :meth:`Binding.group_names` names, once the change is
committed. Inbound, :meth:`Binding.consumer` takes ``create``/``update``/
``delete`` requests from clients, checks :meth:`Binding.has_permission` and
applies them. Subclass :class:`channels.binding.websockets.WebsocketBinding`
for the JSON/WebSocket format; subclass :class:`Binding` for another one.

A subclass registers itself when it is defined (see
:mod:`channels.binding.outbound`): define it in a module Django imports,
such as the app's ``models.py`` or ``bindings.py`` imported from ``ready()``.
A subclass that sets ``model = None`` in its body is abstract.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, ClassVar, NoReturn, cast

from django.apps import apps
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist, ValidationError
from django.core.serializers.base import DeserializationError
from django.db import IntegrityError, transaction
from django.db.models import Model

from ..asgi import DEFAULT_CHANNEL_LAYER
from ..auth import channel_session_user
from ..channel import Group
from ..message import Message
from ..sessions import channel_session
from . import outbound
from .commit import after_commit

__all__ = ["CREATE", "DELETE", "UPDATE", "Binding", "BindingMetaclass"]

logger = logging.getLogger("channels.binding")

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
ACTIONS = (CREATE, UPDATE, DELETE)

Messages = list[tuple[str, dict[str, Any]]]


class BindingMetaclass(type):
    """Register every concrete :class:`Binding` subclass when it is defined."""

    def __init__(cls, name: str, bases: tuple[type, ...], body: dict[str, Any]) -> None:
        super().__init__(name, bases, body)
        if not bases or (body.get("model", ...) is None):
            return  # Binding itself, or an abstract base (model = None in its body)
        binding = cast("type[Binding]", cls)  # this metaclass makes nothing else
        binding._check_definition()
        if apps.ready:  # defined late (e.g. in a test): resolve now, so mistakes show here
            binding.resolve_model()
        outbound.register(binding)


class Refusal(Exception):
    """An inbound request is refused; the client is told why (internal to bindings)."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class Binding(metaclass=BindingMetaclass):
    """A two-way data binding between a model and channel groups.

    Outbound: implement :meth:`group_names` and :meth:`serialize` (and
    :meth:`encode` with a ``stream``). Inbound: implement :meth:`deserialize`,
    :meth:`has_permission` (it denies everything unless overridden),
    :meth:`create` and :meth:`update`; route :meth:`consumer`, usually as a
    stream of a ``WebsocketDemultiplexer``.
    """

    #: The model, as a class or an ``"app_label.ModelName"`` string.
    model: ClassVar[type[Model] | str | None] = None
    #: Fields to send and accept (``["__all__"]`` for every field); or use ``exclude``.
    fields: ClassVar[list[str] | tuple[str, ...] | str | None] = None
    #: Fields never to send nor accept; the alternative to ``fields``.
    exclude: ClassVar[list[str] | tuple[str, ...] | None] = None
    #: The stream name the messages are sent on, for multiplexed protocols.
    stream: ClassVar[str | None] = None
    #: ``"app_label.modelname"``, set when the model is resolved.
    model_label: ClassVar[str]
    #: Give the inbound consumer ``message.user`` from the channel session.
    channel_session_user: ClassVar[bool] = True
    #: Give the inbound consumer ``message.channel_session``.
    channel_session: ClassVar[bool] = False
    #: The layer outbound messages are sent through.
    channel_layer_alias: ClassVar[str] = DEFAULT_CHANNEL_LAYER
    #: Answer refused inbound requests with an error frame (else only log them).
    error_frames: ClassVar[bool] = True

    def __init__(self) -> None:
        #: The keyword arguments of the signal that triggered an outbound send
        #: (``sender``, ``using``, ``raw``, ``update_fields``...), or None.
        self.signal_kwargs: dict[str, Any] | None = None
        self.instance: Model | None = None
        self.message: Message | None = None
        self.kwargs: dict[str, Any] = {}
        self.user: Any = None
        #: The inbound request being handled, as :meth:`deserialize` returned it.
        self.action: Any = None
        self.pk: Any = None
        self.data: Any = None

    # Definition and registration ------------------------------------------------

    @classmethod
    def _check_definition(cls) -> None:
        if cls.model is None:
            raise ValueError(
                f"You must set the model attribute on binding {cls.__qualname__} (a model class "
                'or "app_label.ModelName"), or set model = None to make it abstract'
            )
        if cls.fields is None and cls.exclude is None:
            raise ValueError(
                f"You must set fields or exclude on binding {cls.__qualname__}: list the fields "
                'to send (fields = ["__all__"] sends them all) or the ones to hold back'
            )

    @classmethod
    def resolve_model(cls) -> type[Model]:
        """Return the model class, resolving an ``"app.Model"`` string once."""
        model = cls.model
        if isinstance(model, str):
            try:
                model = apps.get_model(model)
            except (LookupError, ValueError) as exc:
                raise ValueError(
                    f"Binding {cls.__qualname__}: model = {cls.model!r} names no installed "
                    f'model ({exc}); use "app_label.ModelName" or the model class'
                ) from exc
            cls.model = model
        if not (isinstance(model, type) and issubclass(model, Model)):
            raise ValueError(f"Binding {cls.__qualname__}: model must be a model class")
        # object_name is the class's name, set for every model class.
        cls.model_label = f"{model._meta.app_label.lower()}.{model.__name__.lower()}"
        return model

    @classmethod
    def get_registered_models(cls) -> list[type[Model]]:
        """Return the models this binding listens to (the 1.x name)."""
        return [cls.resolve_model()]

    @classmethod
    def register(cls) -> None:
        """Listen to the model's changes again after :meth:`unregister`."""
        outbound.register(cls)

    @classmethod
    def unregister(cls) -> None:
        """Stop sending this model's changes (bindings stay registered otherwise)."""
        outbound.unregister(cls)

    # Outbound ----------------------------------------------------------------

    @classmethod
    def group_names(cls, instance: Model) -> Iterable[str]:
        """Return the groups that see *instance* (called before and after each change)."""
        raise NotImplementedError("group_names() must be implemented by a binding")

    def serialize(self, instance: Model, action: str) -> dict[str, Any] | None:
        """Return the payload announcing *action* on *instance*; empty sends nothing."""
        raise NotImplementedError("serialize() must be implemented by a binding")

    @classmethod
    def encode(cls, stream: str | None, payload: dict[str, Any]) -> dict[str, Any]:
        """Return the channel message that carries *payload* (on *stream*)."""
        raise NotImplementedError("encode() must be implemented by a binding")

    @classmethod
    def announce(
        cls,
        instance: Model,
        old_groups: set[str],
        new_groups: set[str],
        signal_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Tell the groups about a change once it commits: delete, update, then create."""
        self = cls()
        self.instance = instance
        self.signal_kwargs = signal_kwargs or {}
        messages = [
            *self.messages_for(instance, old_groups - new_groups, DELETE),
            *self.messages_for(instance, old_groups & new_groups, UPDATE),
            *self.messages_for(instance, new_groups - old_groups, CREATE),
        ]
        if messages:
            after_commit(lambda: cls.send(messages), using=self.signal_kwargs.get("using"))

    def messages_for(self, instance: Model, group_names: set[str], action: str) -> Messages:
        """Return ``(group, message)`` pairs announcing *action* to *group_names*."""
        if not group_names:
            return []
        payload = self.serialize(instance, action)
        if not payload:
            return []
        message = self.encode(self.stream, payload)
        return [(name, message) for name in sorted(group_names)]

    @classmethod
    def send(cls, messages: Messages) -> None:
        """Send *messages* now, bypassing a running consumer's outbox.

        The change is committed, so clients must hear of it even if the
        consumer that made it fails later.
        """
        for name, message in messages:
            Group(name, alias=cls.channel_layer_alias).send(message, immediately=True)

    @classmethod
    def broadcast(
        cls, instance: Model, action: str, group_names: Iterable[str] | None = None
    ) -> None:
        """Announce *action* on *instance* yourself, for changes no signal reports.

        ``QuerySet.update()``, ``bulk_create()`` and raw SQL send no model
        signals; call this after them (it waits for the transaction to
        commit, as signal-driven sends do). *group_names* defaults to
        :meth:`group_names` of *instance*.
        """
        if action not in ACTIONS:
            raise ValueError(f"Unknown action {action!r}: use create, update or delete")
        cls.resolve_model()
        self = cls()
        self.instance = instance
        self.signal_kwargs = {"sender": type(instance), "using": instance._state.db}
        names = set(cls.group_names(instance) if group_names is None else group_names)
        messages = self.messages_for(instance, names, action)
        if messages:
            after_commit(lambda: cls.send(messages), using=instance._state.db)

    # Inbound -----------------------------------------------------------------

    @classmethod
    def consumer(cls, message: Message, **kwargs: Any) -> None:
        """The inbound consumer: route it, or name it in a demultiplexer's ``consumers``."""
        cls.get_handler()(message, **kwargs)

    @classmethod
    def get_handler(cls) -> Any:
        """Return :meth:`trigger_inbound` wrapped in the session decorators."""
        handler: Any = cls.trigger_inbound
        if cls.channel_session_user:
            handler = channel_session_user(handler)
        elif cls.channel_session:
            handler = channel_session(handler)
        return handler

    @classmethod
    def trigger_inbound(cls, message: Message, **kwargs: Any) -> None:
        """Decode the client's request, check it and apply it; answer what went wrong."""
        cls.resolve_model()
        self = cls()
        self.message = message
        self.kwargs = kwargs
        self.user = getattr(message, "user", None) or AnonymousUser()
        try:
            self.action, self.pk, self.data = self.deserialize(message)
            self.run_action(self.action, self.pk, self.data)
        except Refusal as refusal:
            self.refused(refusal)

    def deserialize(self, message: Message) -> tuple[str, Any, Any]:
        """Return ``(action, pk, data)`` from *message*."""
        raise NotImplementedError("deserialize() must be implemented by a binding")

    def has_permission(self, user: Any, action: str, pk: Any) -> bool:
        """Return True if *user* may do *action* on *pk* (None for create).

        The default denies everything: inbound changes are opt-in. *user* is
        ``AnonymousUser`` for sockets with nobody logged in.
        """
        logger.warning(
            "%s.has_permission() is not overridden, so every inbound %s was denied; "
            "override it to allow clients to change %s",
            type(self).__qualname__,
            action,
            self.model_label,
        )
        return False

    def run_action(self, action: Any, pk: Any, data: Any) -> None:
        """Check the request and permission, then run :meth:`create`/:meth:`update`/:meth:`delete`.

        It runs in a transaction of its own; a validation error is sent back
        to the client and nothing is changed.
        """
        if action not in ACTIONS:
            self.refuse(
                "unknown_action", f"Unknown action {action!r}: use create, update or delete"
            )
        if action != CREATE and pk is None:
            self.refuse("missing_pk", f'"{action}" needs the "pk" of the object')
        if action != DELETE and not isinstance(data, dict):
            self.refuse("invalid_data", f'"{action}" needs "data": an object of field values')
        if not self.has_permission(self.user, action, pk):
            self.refuse("permission_denied", f"You may not {action} this {self.model_label}")
        model = self.resolve_model()
        try:
            with transaction.atomic(using=model._default_manager.db):
                if action == CREATE:
                    self.create(data)
                elif action == UPDATE:
                    self.update(pk, data)
                else:
                    self.delete(pk)
        except ObjectDoesNotExist:
            self.refuse("not_found", f"There is no {self.model_label} with pk {pk!r}")
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
            self.refuse("invalid_data", "The data is not valid", fields=errors)
        except (DeserializationError, FieldDoesNotExist, IntegrityError) as exc:
            self.refuse("invalid_data", str(exc))

    def create(self, data: dict[str, Any]) -> Any:
        """Create an instance of the model from *data*."""
        raise NotImplementedError("create() must be implemented by a binding")

    def update(self, pk: Any, data: dict[str, Any]) -> Any:
        """Apply *data* to the instance with primary key *pk*."""
        raise NotImplementedError("update() must be implemented by a binding")

    def delete(self, pk: Any) -> None:
        """Delete the instance with primary key *pk*."""
        self.get_instance(pk).delete()

    def get_instance(self, pk: Any) -> Model:
        """Return the instance with primary key *pk*; a malformed pk is "not found"."""
        model = self.resolve_model()
        try:
            instance: Model = model._default_manager.get(pk=pk)
            return instance
        except (ValueError, TypeError, ValidationError):
            raise model.DoesNotExist(f"{pk!r} is not a valid pk") from None

    # Telling the client ---------------------------------------------------------

    def refuse(self, code: str, message: str, **details: Any) -> NoReturn:
        """Stop this request and answer the client with an error frame.

        Call it from :meth:`has_permission`, :meth:`create` or :meth:`update`
        to refuse with your own *code* and *message*.
        """
        raise Refusal(code, message, **details)

    def refused(self, refusal: Refusal) -> None:
        """Answer a refused request: ``{"error": {"code", "message", "action", "pk", ...}}``.

        The payload has no top-level ``action``, so 1.x clients that act on
        ``payload.action`` ignore it.
        """
        logger.info(
            "%s refused %r on pk %r: %s", type(self).__qualname__, self.action, self.pk, refusal
        )
        if not self.error_frames or self.message is None:
            return
        error = {
            "code": refusal.code,
            "message": refusal.message,
            "action": self.action if isinstance(self.action, str) else None,
            "pk": self.pk,
            **refusal.details,
        }
        self.reply({"error": error})

    def reply(self, payload: dict[str, Any]) -> None:
        """Send *payload* to the socket the request came from, on this binding's stream."""
        multiplexer = self.kwargs.get("multiplexer")
        if multiplexer is not None:
            multiplexer.send(payload)
        elif self.message is not None and self.message.reply_channel is not None:
            self.message.reply_channel.send(self.encode(self.stream, payload))
