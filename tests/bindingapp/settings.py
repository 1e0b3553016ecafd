"""The test project's settings with the binding app, for real daphne and worker processes."""

from tests.project.settings import *  # noqa: F403
from tests.project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.bindingapp"]
ROOT_URLCONF = "tests.bindingapp.urls"
