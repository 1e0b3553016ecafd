"""The 1.x module of the delay server: ``channels.delay.worker.Worker``.

The server is :class:`channels.delay.server.DelayServer`; this name stays so
1.x code that imports or subclasses the old one keeps working.
"""

from .server import DelayServer as Worker

__all__ = ["Worker"]
