"""Top-level pytest configuration of the checkout. The detspec plugin itself is registered through
the ``pytest11`` entry point of the installed package (``pip install -e .``)."""
