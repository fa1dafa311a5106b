"""Top-level pytest configuration: the detspec plugin (``--impl``, profiles, report)."""

pytest_plugins = ("conformance.plugin",)
