"""detspec: an executable specification of the Faster R-CNN box, anchor, proposal and RoI
machinery, with a Hypothesis conformance suite.

The repository's top-level directories install as one namespace: ``detspec.reference`` (the
NumPy reference), ``detspec.properties`` (strategies, properties and the adapter interface),
``detspec.conformance`` (adapters, expectations, runner, pytest plugin, report, CLI) and
``detspec.spec`` (the spec text, as package data).

Adapters import what they need from here::

    from detspec import Conventions

and a factory raises ``ImplementationUnavailable`` when the implementation cannot run here.
"""

from __future__ import annotations

from importlib import metadata

from detspec.properties.interface import Conventions, ImplementationUnavailable


def suite_version() -> str:
    """The installed detspec version (package metadata is the one source of truth)."""
    try:
        return metadata.version("detspec")
    except metadata.PackageNotFoundError:  # imported from a checkout that was never installed
        return "0+unknown"


__version__ = suite_version()
__all__ = ["Conventions", "ImplementationUnavailable", "__version__", "suite_version"]
