"""A Channels 4 project: the modern stack the end-to-end benchmarks compare against."""
