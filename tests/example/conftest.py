"""The example's browser test uses the shared ``chromium`` fixture of ``tests/browser.py``.

``tests/conftest.py`` provides it and registers the ``browser`` marker.
"""
