"""The conformance suite: adapters, expectations, the runner and the report."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def suite_version() -> str:
    """The detspec version, from pyproject.toml (the one source of truth)."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["project"]["version"]
