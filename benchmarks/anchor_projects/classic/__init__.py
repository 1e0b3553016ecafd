"""A Channels 1.1.8 project: the original stack the suite compares against."""
