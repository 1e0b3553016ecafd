"""Samples of deploying.rst (1.1.8) and faqs.rst, for real daphne and runworker processes."""
