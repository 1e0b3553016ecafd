"""The code samples of the Channels 1.1.8 documentation, as written, for the tests to run.

Each module holds samples of one 1.x doc page (a package per page where the
page's sections reuse names, a module per section then), copied verbatim
with a comment naming page and section. Where a sample is a fragment, the
module adds the least context that makes it run (imports, the names the
sample takes for granted), marked as such; where a sample is broken in 1.x
itself, the module says so and keeps the evident intent.

The samples import from ``myapp.consumers`` and name ``myproject.routing``
in settings; :func:`sample_project` makes those names import the modules
here for as long as a test needs them, so the samples run unchanged.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path

__all__ = ["sample_project", "write_project"]

SAMPLES = Path(__file__).resolve().parent


@contextlib.contextmanager
def sample_project(names: dict[str, str]) -> Iterator[None]:
    """Make each module name the docs use (``myapp.consumers``) import a module of ours.

    *names* maps a doc's name to the dotted path of the module standing in
    for it; they are imported in order, so a routing module that imports
    ``myapp.consumers`` comes after it. ``sys.modules`` is put back after.
    """
    saved: dict[str, types.ModuleType | None] = {}

    def keep(name: str) -> None:
        if name not in saved:
            saved[name] = sys.modules.get(name)

    try:
        for alias, target in names.items():
            parent_name, _, child = alias.rpartition(".")
            if parent_name:
                keep(parent_name)
                parent = sys.modules.get(parent_name)
                if parent is None:
                    parent = types.ModuleType(parent_name)
                    parent.__path__ = []  # a package, so "parent.child" can be imported
                    sys.modules[parent_name] = parent
            keep(alias)
            module = importlib.import_module(target)
            sys.modules[alias] = module
            if parent_name:
                setattr(parent, child, module)
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def write_project(root: Path, package: str, settings: str, routing: str = "") -> Path:
    """Write a project package *package* under *root*, for real processes to run.

    Its ``settings.py`` is the test project's settings (``tests.project.settings``,
    the rest of a project's settings) followed by *settings*, a settings sample
    as written (with only its Redis addresses replaced by the caller); its
    ``routing.py`` is *routing*. Return the package directory.
    """
    directory = root / package
    directory.mkdir()
    (directory / "__init__.py").write_text("")
    (directory / "settings.py").write_text(
        "from tests.project.settings import *  # the rest of a project's settings\n\n"
        "# The sample:\n" + settings
    )
    (directory / "routing.py").write_text(routing)
    return directory
