"""``channels.utils.name_that_thing`` at its 1.x path, for projects and tests that import it."""

from __future__ import annotations

import inspect
import types

__all__ = ["name_that_thing"]


def name_that_thing(thing: object) -> str:
    """Return a dotted name for *thing*, for log lines and test failure messages.

    A function or class gives ``module.qualified.name``, a bound method
    ``module.Class.method``, and any other object the name of its class, as
    Channels 1.x did on Python 2 (on Python 3 it failed on bound methods).
    """
    if isinstance(thing, types.MethodType):
        owner = thing.__self__ if isinstance(thing.__self__, type) else type(thing.__self__)
        return f"{name_that_thing(owner)}.{thing.__func__.__name__}"
    if isinstance(thing, type) or inspect.isroutine(thing):
        module = getattr(thing, "__module__", None)
        name = getattr(thing, "__qualname__", None) or getattr(thing, "__name__", None)
        if name is not None:
            return f"{module}.{name}" if module else name
    if not isinstance(thing, type):
        return name_that_thing(type(thing))
    return repr(thing)
