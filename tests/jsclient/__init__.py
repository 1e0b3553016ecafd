"""A tiny app for the JavaScript client's browser tests: pages, urls, routing, consumers.

Served by the test project (``tests/project/urls.py`` includes ``urls`` under
``/jsclient/``; the tests route WebSockets with ``CHANNELS_TEST_ROUTING`` set to
``tests.jsclient.routing.channel_routing``).
"""
