"""A project for tests/test_fast_failures.py: handshakes left unanswered, chosen subprotocols."""
