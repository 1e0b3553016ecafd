# ruff: noqa
# fmt: off
# delay.rst, "Getting Started with Delay": the apps to install.
# (The page's "..." stands for the project's other apps: added by the test.)

INSTALLED_APPS = (
    'channels',
    'channels.delay'
)
