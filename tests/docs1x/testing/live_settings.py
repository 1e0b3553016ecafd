"""Context for testing.rst, "Live Server Test Case": the project settings module.

The live servers run in child processes, which load ``DJANGO_SETTINGS_MODULE``
as a project's would: the test suite's settings plus what a project has and
they lack (a URLconf, static files).
"""

import os

from tests.settings import *  # noqa: F403 - the rest of the settings

ROOT_URLCONF = "tests.project.urls"
INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.staticfiles"]  # noqa: F405
STATIC_URL = "/static/"
STATICFILES_DIRS = [os.path.join(os.path.dirname(__file__), "..", "..", "project", "static")]
