"""Samples of testing.rst (1.1.8), a module per sample: they reuse names."""
