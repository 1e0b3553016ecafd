"""``.. command-help:: runworker``: a command's ``--help``, as the command prints it.

The management-command reference is built from the commands themselves, so it
cannot drift from them: a renamed option changes the page at the next build.
Django is set up with a minimal in-memory configuration, enough to load the
commands' parsers; nothing is run.
"""

from __future__ import annotations

import os
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx

#: Where each command lives, by the name a user types.
COMMAND_APPS = {"runserver": "channels", "runworker": "channels", "rundelay": "channels.delay"}


def setup_django() -> None:
    """Configure Django minimally, once, so commands and modules can be imported."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=[
                "django.contrib.contenttypes",
                "django.contrib.auth",
                "django.contrib.staticfiles",
                "channels",
                "channels.delay",
            ],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            STATIC_URL="/static/",
        )
        django.setup()


def command_help(name: str) -> str:
    """Return ``manage.py <name> --help`` as it prints, at a fixed width."""
    from django.core.management import load_command_class

    setup_django()
    os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal; keep the page stable
    command = load_command_class(COMMAND_APPS[name], name)
    return command.create_parser("manage.py", name).format_help()


class CommandHelp(Directive):
    required_arguments = 1

    def run(self) -> list[Any]:
        name = self.arguments[0]
        if name not in COMMAND_APPS:
            raise self.error(f"unknown command {name!r}; known: {sorted(COMMAND_APPS)}")
        text = command_help(name)
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("command-help", CommandHelp)
    return {"parallel_read_safe": True, "version": "1"}
