"""Signals sent by workers around consumers, like Django's request signals.

The runner (:mod:`channels.runner`) sends ``consumer_started`` and
``consumer_finished`` with ``sender=`` the worker's class. Around a ``def``
consumer they run in the worker thread that runs it; around an ``async def``
consumer, in ``sync_to_async``'s thread-sensitive thread, the one whose
database connections that consumer's ``sync_to_async`` calls use (so the
``close_old_connections`` receiver the app connects checks the right ones).
"""

from django.dispatch import Signal

#: Sent before a consumer runs, with ``message=``.
consumer_started = Signal()
#: Sent after a consumer finished (or raised), its sends and callbacks done, with ``message=``.
consumer_finished = Signal()
#: Sent by each worker thread when it starts listening, with ``worker=``.
worker_ready = Signal()
#: Sent once per ``runworker`` process, with ``worker=``.
worker_process_ready = Signal()
