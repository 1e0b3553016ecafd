"""The 1.x module of ``HttpClient``, deprecated there and here: use ``channels.test.WSClient``."""

import warnings

warnings.warn(
    "channels.test.http is deprecated: use channels.test.WSClient (HttpClient is its old name)",
    DeprecationWarning,
    stacklevel=2,
)

from .websocket import HttpClient  # noqa: E402

__all__ = ["HttpClient"]
