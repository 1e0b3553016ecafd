"""Run a binding's sends once the change they announce is committed.

A model change is announced with ``transaction.on_commit``: inside a
transaction it goes out when the transaction commits and never if it rolls
back (Channels 1.x sent at save time, so clients saw changes that were then
rolled back). Outside a transaction (autocommit) it goes out at once. The
callback is *robust*: the change is committed, so a failed send is logged
and does not fail the code that made the change.

Under Django's ``TestCase`` every test runs inside a transaction that never
commits, so ``on_commit`` callbacks would never run there, and Django itself
opens atomic blocks around ``delete()`` and ``get_or_create()``. Inside a
test case's transaction the change counts as committed and is sent at once,
as 1.x did, so 1.x tests keep working. Test rollbacks with a
``TransactionTestCase`` (``TransactionChannelTestCase``), whose transactions
are real. A test case's blocks are recognised the way Django's own
``atomic(durable=True)`` check does (``Atomic._from_testcase``); this module
is the only place that reads that internal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, transaction

__all__ = ["after_commit"]

logger = logging.getLogger("channels.binding")


def _run(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:
        logger.exception("Sending a data binding update failed")


def after_commit(callback: Callable[[], None], using: str | None = None) -> None:
    """Run *callback* when the change just made on database *using* is committed."""
    using = using or DEFAULT_DB_ALIAS
    blocks = transaction.get_connection(using).atomic_blocks
    if blocks and getattr(blocks[0], "_from_testcase", False):
        _run(callback)
    else:
        transaction.on_commit(callback, using=using, robust=True)
