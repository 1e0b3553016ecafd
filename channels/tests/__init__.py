"""The 1.x name of :mod:`channels.test`, deprecated there and here: import ``channels.test``.

Channels 1.x kept this alias with a ``DeprecationWarning`` on import; so do we,
so a 1.x test suite runs unchanged and is told what to change.
"""

import warnings

warnings.warn(
    "channels.tests is deprecated: import from channels.test instead",
    DeprecationWarning,
    stacklevel=2,
)

from channels.test import *  # noqa: E402, F403
from channels.test import __all__  # noqa: E402, F401
