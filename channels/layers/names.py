"""Channel and group name rules from the ASGI 1 channel-layer spec.

* A channel name is ASCII letters, digits, ``-``, ``_`` and ``.``, optionally
  followed by one ``?`` (single-reader channel) or one ``!`` (process-specific
  channel) and a suffix of the same characters.
* A group name is the same characters with no type character.
* Both are ``str`` and shorter than ``MAX_NAME_LENGTH`` characters.

Made-up names (``layer.new_channel("reply?")`` and, for the process that owns
a ``prefix!``, :func:`new_process_channel`) end in 128 random bits.
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache

MAX_NAME_LENGTH = 100

#: Random bytes behind a made-up name's suffix: 128 bits, so no client can guess another's.
RANDOM_NAME_BYTES = 16

_CHANNEL_RE = re.compile(r"[a-zA-Z\d\-_.]+([?!][a-zA-Z\d\-_.]*)?\Z")
_GROUP_RE = re.compile(r"[a-zA-Z\d\-_.]+\Z")


def _check_type_and_length(name: object, kind: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be a str, not {type(name).__name__}: {name!r}")
    if len(name) >= MAX_NAME_LENGTH:
        raise TypeError(
            f"{kind} name {name[:40]!r}... is {len(name)} characters long; "
            f"names must be shorter than {MAX_NAME_LENGTH}"
        )
    return name


def _valid_channel(name: str) -> bool:
    if "!" in name or "?" in name:
        # A made-up name is used by one connection only: caching it would only
        # fill the cache with a name per connection (a worker's memory grew so).
        return _CHANNEL_RE.match(name) is not None
    return _valid_fixed_channel(name)


@lru_cache(maxsize=4096)
def _valid_fixed_channel(name: str) -> bool:
    return _CHANNEL_RE.match(name) is not None


def require_valid_channel_name(name: object, *, receive: bool = False) -> str:
    """Return *name* if it is a valid channel name, else raise ``TypeError``.

    With ``receive=True`` a process-specific name must end at its ``!``: a
    process receives on ``prefix!`` and gets the messages of every local part.
    """
    name = _check_type_and_length(name, "Channel")
    if not _valid_channel(name):
        raise TypeError(
            f"Channel name {name!r} is invalid: use ASCII letters, digits, '-', '_' "
            "and '.', with at most one '?' or '!'"
        )
    if receive and "!" in name and not name.endswith("!"):
        raise TypeError(
            f"Cannot receive on {name!r}: receive on its process prefix "
            f"{name.split('!', 1)[0] + '!'!r} to get the messages of every local part"
        )
    return name


def require_valid_group_name(name: object) -> str:
    """Return *name* if it is a valid group name, else raise ``TypeError``."""
    name = _check_type_and_length(name, "Group")
    if _GROUP_RE.match(name) is None:
        raise TypeError(
            f"Group name {name!r} is invalid: use only ASCII letters, digits, '-', '_' and '.'"
        )
    return name


def non_local_part(name: str) -> str:
    """Return the part of *name* that a layer stores it under.

    ``"daphne.response.ab!cd"`` is stored under ``"daphne.response.ab!"``; any
    other name is stored under itself.
    """
    bang = name.find("!")
    return name if bang == -1 else name[: bang + 1]


def stats_name(name: str) -> str:
    """Return the name statistics are counted under (random suffixes dropped).

    Not cached: the names with a suffix are one per connection, and two
    ``find`` calls cost no more than a cache lookup.
    """
    for mark in "!?":
        index = name.find(mark)
        if index != -1:
            return name[: index + 1]
    return name


def random_name(prefix: str, nbytes: int = RANDOM_NAME_BYTES) -> str:
    """Return *prefix* and *nbytes* random bytes as URL-safe text (all valid name characters)."""
    return prefix + secrets.token_urlsafe(nbytes)


def new_process_channel(prefix: str) -> str:
    """Return a new, unguessable channel name under the process prefix *prefix* (``"name!"``).

    The ASGI 1 spec leaves the local parts of a process-specific channel to
    the one process that receives on its prefix, so this needs no layer; and
    ``new_channel()`` takes only ``?`` patterns, as the conformance suite
    requires. An interface server names each connection's reply channel this way.
    """
    name = require_valid_channel_name(prefix, receive=True)
    if not name.endswith("!"):
        raise TypeError(
            f"new_process_channel() takes a process prefix ending in '!', not {prefix!r}; "
            "use layer.new_channel('name?') for a single-reader channel"
        )
    return require_valid_channel_name(random_name(name))
