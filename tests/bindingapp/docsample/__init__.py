"""The sample code of 1.x ``docs/binding.rst`` ("Getting Started"), as written."""
