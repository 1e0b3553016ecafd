"""Sphinx configuration for the channels-classic documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html``. Only Sphinx's
built-in features are used, and nothing is fetched from the network.
"""

project = "channels-classic"
author = "The channels-classic contributors"
copyright = "channels-classic contributors"
version = "1.0"
release = "1.0.0.dev0"

extensions: list[str] = []

root_doc = "index"
exclude_patterns = ["_build"]
pygments_style = "sphinx"

html_theme = "alabaster"
html_theme_options = {
    "description": "The Channels 1.x programming model on today's Django",
    "fixed_sidebar": True,
}
html_title = "channels-classic documentation"
