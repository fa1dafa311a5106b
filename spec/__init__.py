"""The spec text (``*.md``), shipped as package data and read with ``importlib.resources``."""
