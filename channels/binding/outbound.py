"""Outbound binding: from model signals to group sends.

One set of receivers on ``pre_save``/``post_save``/``pre_delete``/
``post_delete`` serves every binding. They are connected, for all senders,
when the first binding class is defined, and look the sender's bindings up
in :data:`registry`; so a binding works whether it is defined before the app
registry is ready (in a ``models.py``) or after (in a test), and no
``AppConfig.ready()`` has to know about bindings. A binding's model (a class
or an ``"app_label.Model"`` string) is resolved on first use.

What clients must hear is worked out per save:

* ``pre_save`` reads the row as the database has it (the instance being
  saved already holds the new values) and records the groups it was in.
  Reading the database, not a copy kept from an earlier save, keeps this
  right when a savepoint rolled an earlier save back.
* ``post_save`` computes the groups the instance is in now; groups that lost
  it get ``delete``, groups in both ``update``, new groups ``create``. The
  messages are serialized now (the instance may change before the commit)
  and sent when the transaction commits (:mod:`channels.binding.commit`).

Several saves of one instance in one transaction are announced one after
the other at the commit, each against the state the previous one left, so
every client ends with the committed state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db.models import Model
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

if TYPE_CHECKING:
    from .base import Binding

__all__ = ["bindings_for", "register", "registry", "unregister"]

#: Every registered binding class, in the order they were defined.
registry: list[type[Binding]] = []
_by_model: dict[type[Model], list[type[Binding]]] | None = None

# Where pre_save/pre_delete leave the groups the instance was in for the
# matching post_ signal: {binding class: group names}.
_BEFORE = "_channels_binding_groups_before"


def register(binding: type[Binding]) -> None:
    """Make *binding* hear the changes of its model (idempotent)."""
    global _by_model
    if binding not in registry:
        registry.append(binding)
        _by_model = None
    _connect()


def unregister(binding: type[Binding]) -> None:
    """Stop *binding* hearing changes (for tests that define short-lived bindings)."""
    global _by_model
    if binding in registry:
        registry.remove(binding)
        _by_model = None


def bindings_for(model: type[Model]) -> list[type[Binding]]:
    """Return the bindings of *model*, resolving ``"app.Model"`` strings on first use."""
    global _by_model
    if not apps.ready:  # no string can be resolved yet; classes can be compared
        return [binding for binding in registry if binding.model is model]
    table = _by_model
    if table is None:
        table = {}
        for binding in list(registry):
            table.setdefault(binding.resolve_model(), []).append(binding)
        _by_model = table
    return table.get(model, [])


def _connect() -> None:
    uid = "channels.binding"
    pre_save.connect(_pre_save, dispatch_uid=f"{uid}.pre_save")
    post_save.connect(_post_save, dispatch_uid=f"{uid}.post_save")
    pre_delete.connect(_pre_delete, dispatch_uid=f"{uid}.pre_delete")
    post_delete.connect(_post_delete, dispatch_uid=f"{uid}.post_delete")


def _stored(sender: type[Model], instance: Model, using: str) -> Model | None:
    if instance.pk is None:
        return None
    stored: Model | None = sender._base_manager.using(using).filter(pk=instance.pk).first()
    return stored


def _pre_save(sender: type[Model], instance: Model, using: str, **kwargs: Any) -> None:
    bindings = bindings_for(sender)
    if not bindings:
        return
    stored = _stored(sender, instance, using)
    instance.__dict__[_BEFORE] = {
        binding: set() if stored is None else set(binding.group_names(stored))
        for binding in bindings
    }


def _pre_delete(sender: type[Model], instance: Model, **kwargs: Any) -> None:
    bindings = bindings_for(sender)
    if bindings:
        instance.__dict__[_BEFORE] = {
            binding: set(binding.group_names(instance)) for binding in bindings
        }


def _post_save(sender: type[Model], instance: Model, created: bool, **kwargs: Any) -> None:
    before: dict[type[Binding], set[str]] = instance.__dict__.pop(_BEFORE, {})
    for binding, old in before.items():
        new = set(binding.group_names(instance))
        binding.announce(instance, old, new, {"sender": sender, **kwargs})


def _post_delete(sender: type[Model], instance: Model, **kwargs: Any) -> None:
    before: dict[type[Binding], set[str]] = instance.__dict__.pop(_BEFORE, {})
    for binding, old in before.items():
        binding.announce(instance, old, set(), {"sender": sender, **kwargs})
