"""Consumers, routings and a bare ASGI app that our benchmarks deploy.

They run with the test project's settings (``tests.project.settings``),
pointed here by ``CHANNELS_TEST_ROUTING``.
"""
