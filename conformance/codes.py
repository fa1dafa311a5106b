"""The failure codes the properties can report, read off their source (for the documentation,
``spec/INTERPRETING.md``, and for tooling that keys on codes).

A code is the first argument of ``fail`` or the last argument of a ``check_*`` helper; codes built
from an area (``f"{area}.kept-overlapping"``) are expanded with the areas their callers pass.
The harness adds its own: ``impl.*`` (the implementation raised, hung or crashed), ``result.*``
(a result of the wrong type, dtype or shape, or NaN) and ``property.error`` (the property itself
could not finish).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from detspec.properties.checks import CODE_PATTERN
from detspec.properties.registry import PROPERTY_MODULES

HARNESS_CODES = {
    "impl.raised": "the implementation raised an exception",
    "impl.hung": "an operation did not return within the adapter timeout",
    "impl.crashed": "the worker process running the implementation died (exit code or signal)",
    "result.type": "a result of the wrong type (None, not an array, not the named result)",
    "result.dtype": "a result of the wrong dtype (integers or float16 for floats, floats for indices)",
    "result.shape": "a result of the wrong shape",
    "result.nan": "NaN in a result",
    "property.error": "the property itself could not finish (a suite bug, an unsatisfiable search)",
}
#: Helpers whose code is built from an area argument, and the suffixes they add.
AREA_HELPERS = {
    "check_indices": ("shape", "index-range", "index-repeated"),
    "_check_separated": ("kept-overlapping",),
    "_check_suppressions_explained": ("suppressed-without-cause",),
}
#: Helpers whose last argument is the code (a shape mismatch in them reports ``<area>.shape``).
CHECKS = {"check_close", "check_equal", "check_same_indices", "check_shape", "_close"}


def _name(call: ast.Call) -> str:
    return call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")


def codes_in(source: str) -> set[str]:
    codes: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node)
        literal = None
        if name == "fail" and node.args:
            literal = node.args[0]
        elif name in CHECKS and node.args:
            literal = node.args[-1]
        elif name in AREA_HELPERS and node.args and isinstance(node.args[-1], ast.Constant):
            codes |= {f"{node.args[-1].value}.{suffix}" for suffix in AREA_HELPERS[name]}
        if isinstance(literal, ast.Constant) and isinstance(literal.value, str):
            codes.add(literal.value)
            if name in CHECKS:
                codes.add(f"{literal.value.split('.')[0]}.shape")
    return {c for c in codes if CODE_PATTERN.match(c)}


def property_codes() -> dict[str, set[str]]:
    """Per property module, the codes its checks can report."""
    out = {}
    for module_name in PROPERTY_MODULES:
        module = importlib.import_module(module_name)
        out[module_name.rsplit(".", 1)[1]] = codes_in(Path(module.__file__).read_text(encoding="utf-8"))
    return out


def all_codes() -> set[str]:
    return set(HARNESS_CODES).union(*property_codes().values())


if __name__ == "__main__":  # python -m detspec.conformance.codes: the table for INTERPRETING.md
    for area, codes in property_codes().items():
        print(f"| {area} | {', '.join(f'`{c}`' for c in sorted(codes))} |")
