"""Make ``manage.py runserver`` ours wherever ``"channels"`` is in ``INSTALLED_APPS``.

Django finds a command by name with ``get_commands()``, which maps the name to
the *first* installed app that has ``management/commands/<name>.py``; then
``load_command_class()`` imports that module and instantiates its ``Command``
attribute. ``django.contrib.staticfiles`` (and ``daphne``, when installed as an
app) ship a ``runserver`` too, so with ``"channels"`` listed after them, as
appending it to ``startproject``'s list does, Django would run their server:
plain WSGI (or daphne without a channel layer), with no workers.

Channels 1.x fixed this by rewriting the ``__bases__`` of staticfiles'
command class at start-up. We change no class: :func:`take_over_runserver`
points the ``Command`` attribute of those apps' ``runserver`` modules at our
command, which is a subclass of daphne's and serves static files the way
staticfiles' does, with the same ``--nostatic`` and ``--insecure`` options.
Only the modules of apps listed *before* ``"channels"`` are touched, and only
in this process; an app of the project's own that ships a ``runserver`` and
comes first still wins, as Django intends. Code that extends "the next
runserver" by importing one of those modules' ``Command`` (whitenoise's
``runserver_nostatic`` does) then extends ours, which is what it means.
"""

from __future__ import annotations

import importlib

#: Apps whose ``runserver`` ours replaces when they are listed before ``"channels"``.
SUPERSEDED_APPS = ("django.contrib.staticfiles", "daphne")


def apps_listed_before_channels() -> list[str]:
    """Return the superseded apps installed ahead of ``"channels"``, in list order."""
    from django.apps import apps

    names = [config.name for config in apps.get_app_configs()]
    ahead = names[: names.index("channels")] if "channels" in names else []
    return [name for name in ahead if name in SUPERSEDED_APPS]


def take_over_runserver() -> list[str]:
    """Serve ``runserver`` with our command whatever the app order; return the apps taken over.

    Called from ``ChannelsConfig.ready()``. It imports our command (and with
    it daphne's server, as daphne's own app does) only when there is
    something to take over.
    """
    taken = apps_listed_before_channels()
    if not taken:
        return []
    from channels.management.commands.runserver import Command

    for app in taken:
        module = importlib.import_module(f"{app}.management.commands.runserver")
        module.Command = Command  # type: ignore[attr-defined]  # a module's attribute, replaced
    return taken
