"""Delayed messages: the ASGI delay extension, stored in the database until due.

Send ``{"channel": "...", "content": {...}, "delay": milliseconds}`` to the
``asgi.delay`` channel, add ``"channels.delay"`` to ``INSTALLED_APPS``, migrate,
and run ``manage.py rundelay``: the content is sent to the channel when due.
"""
