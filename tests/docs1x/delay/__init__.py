"""Samples of delay.rst (1.1.8)."""
