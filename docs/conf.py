"""Sphinx configuration for the channels-classic documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html``. Besides Sphinx
itself, only our own extension in ``_ext/`` is used (the command reference
prints each command's ``--help``), and nothing is fetched from the network.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "channels-classic"
author = "The channels-classic contributors"
copyright = "channels-classic contributors"
version = "1.0"
release = "1.0.0.dev0"

extensions = ["sphinx.ext.autodoc", "commandhelp"]

# autodoc imports the package, which needs Django configured (no database is opened).
import commandhelp  # noqa: E402

commandhelp.setup_django()
autodoc_member_order = "bysource"
autodoc_typehints = "description"

root_doc = "index"
exclude_patterns = ["_build"]

# Furo: the theme of many Django packages' docs (django-debug-toolbar, pip...),
# readable on phones, with a light and a dark scheme.
html_theme = "furo"
html_title = "channels-classic"
