"""Samples of getting-started.rst (1.1.8), a module per section: its sections reuse names."""
