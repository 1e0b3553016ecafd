"""Signals sent by workers around consumers, like Django's request signals."""

from django.dispatch import Signal

#: Sent before a consumer runs, with ``message=``.
consumer_started = Signal()
#: Sent after a consumer finished (or raised), with ``message=``.
consumer_finished = Signal()
#: Sent by each worker thread when it starts listening, with ``worker=``.
worker_ready = Signal()
#: Sent once per ``runworker`` process, with ``worker=``.
worker_process_ready = Signal()
