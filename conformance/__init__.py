"""The conformance suite: adapters, expectations, the runner, the pytest plugin, the report, the CLI."""
