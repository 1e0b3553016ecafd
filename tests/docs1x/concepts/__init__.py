"""Samples of concepts.rst (1.1.8), a module per sample: they reuse names."""
