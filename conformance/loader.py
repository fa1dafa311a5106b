"""Resolve ``--impl``: a built-in name or ``package.module:factory``.

Every way this can go wrong raises :class:`ImplementationSpecError` with one line saying what
failed, which the pytest plugin turns into a usage error (exit code 4) before any test runs.
"""

from __future__ import annotations

import importlib
from typing import Any

from detspec.properties.interface import OPERATIONS, Conventions

BUILTIN = {
    "reference": "detspec.conformance.adapters.reference_adapter:reference",
    "reference-legacy": "detspec.conformance.adapters.reference_adapter:reference_legacy",
    "torchvision": "detspec.conformance.adapters.torchvision_adapter:torchvision_float32",
    "torchvision-cuda": "detspec.conformance.adapters.torchvision_adapter:torchvision_cuda",
}


class ImplementationSpecError(Exception):
    """``--impl`` does not name a usable implementation."""


def load_adapter(spec: str) -> Any:
    target = BUILTIN.get(spec, spec)
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise ImplementationSpecError(
            f"--impl {spec!r}: not a built-in implementation ({', '.join(BUILTIN)}) "
            "and not of the form package.module:factory"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise ImplementationSpecError(
            f"--impl {spec!r}: cannot import module {module_name!r} ({type(error).__name__}: {error})"
        ) from None
    factory = getattr(module, attribute, None)
    if factory is None:
        raise ImplementationSpecError(
            f"--impl {spec!r}: module {module_name!r} has no attribute {attribute!r}"
        )
    if not callable(factory):
        raise ImplementationSpecError(f"--impl {spec!r}: {target} is not callable")
    try:
        adapter = factory()
    except Exception as error:
        raise ImplementationSpecError(
            f"--impl {spec!r}: the factory raised {type(error).__name__}: {error}"
        ) from None
    for attribute_name in ("name", "version"):
        if not isinstance(getattr(adapter, attribute_name, None), str):
            raise ImplementationSpecError(
                f"--impl {spec!r}: the adapter has no string attribute {attribute_name!r}"
            )
    if not isinstance(getattr(adapter, "conventions", None), Conventions):
        raise ImplementationSpecError(
            f"--impl {spec!r}: the adapter's 'conventions' is not a properties.interface.Conventions"
        )
    if not any(callable(getattr(adapter, op, None)) for op in OPERATIONS):
        raise ImplementationSpecError(
            f"--impl {spec!r}: the adapter provides none of the operations {', '.join(OPERATIONS)}"
        )
    return adapter
