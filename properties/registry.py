"""Properties: a clause, a strategy for inputs, and a check against an implementation.

A property is written once, as ``check(impl, **example)``; the same object is run by Hypothesis
against any implementation, replayed on a stored witness (``conformance/expectations``), and run
against the negative controls. Examples are dicts whose fields have a declared *kind*, so that a
minimal input can be written to a report or an expectations file and read back exactly.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from detspec.properties.interface import Conventions
from hypothesis import strategies as st

#: Modules that define properties, one per spec area.
PROPERTY_MODULES = (
    "detspec.properties.boxes",
    "detspec.properties.anchors",
    "detspec.properties.receptive_field",
    "detspec.properties.rpn_training",
    "detspec.properties.fourier",
    "detspec.properties.proposals",
    "detspec.properties.roi_head",
    "detspec.properties.roi_pooling",
)

#: Field kinds: how a field of an example is written to JSON/TOML and read back.
FIELD_KINDS = {
    "rows4": lambda v: np.asarray(v, dtype=np.float64).reshape(-1, 4),  # boxes, deltas
    "vector": lambda v: np.asarray(v, dtype=np.float64).reshape(-1),  # scores
    "labels": lambda v: np.asarray(v, dtype=np.int64).reshape(-1),  # class indices, RPN labels
    "integer": int,
    "number": float,
    "pair": lambda v: tuple(float(x) for x in v),  # image size (height, width)
    "weights": lambda v: tuple(float(x) for x in v),
    "matrix": lambda v: np.asarray(v, dtype=np.float64),  # any shape: images, invalid input
    "text": str,
    "json": lambda v: v,  # plain nested lists and numbers (anchor configurations, layer stacks)
}

StrategyFactory = Callable[[Conventions], st.SearchStrategy[dict[str, Any]]]


@dataclass(frozen=True)
class Property:
    name: str
    clause: str
    uses: tuple[str, ...]
    strategy: StrategyFactory
    check: Callable[..., None]
    schema: dict[str, str]
    examples: Callable[[Conventions], list[dict[str, Any]]] = field(default=lambda _c: [])
    applies: Callable[[Conventions], str | None] = field(default=lambda _c: None)
    doc: str = ""

    def to_jsonable(self, example: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in example.items():
            if isinstance(value, np.ndarray):
                out[key] = _finite_or_text(value.tolist())
            elif isinstance(value, tuple):
                out[key] = [float(x) for x in value]
            else:
                out[key] = float(value) if isinstance(value, float | np.floating) else value
        return out

    def from_jsonable(self, data: dict[str, Any]) -> dict[str, Any]:
        unknown = set(data) - set(self.schema)
        missing = set(self.schema) - set(data)
        if unknown or missing:
            raise ValueError(
                f"input for property {self.name}: unknown fields {sorted(unknown)}, "
                f"missing fields {sorted(missing)}"
            )
        return {key: FIELD_KINDS[self.schema[key]](value) for key, value in data.items()}


def _finite_or_text(value: Any) -> Any:
    """Nested lists with NaN/inf spelled as strings (strict JSON has no NaN; NumPy reads them)."""
    if isinstance(value, list):
        return [_finite_or_text(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


REGISTRY: dict[str, Property] = {}


def prop(
    clause: str,
    *,
    uses: tuple[str, ...],
    given: StrategyFactory,
    schema: dict[str, str],
    examples: Callable[[Conventions], list[dict[str, Any]]] | None = None,
    applies: Callable[[Conventions], str | None] | None = None,
):
    """Register ``check(impl, **example)`` as a property of ``clause``."""

    def register(check: Callable[..., None]) -> Property:
        if check.__name__ in REGISTRY:
            raise ValueError(f"property {check.__name__} registered twice")
        if any(kind not in FIELD_KINDS for kind in schema.values()):
            raise ValueError(f"property {check.__name__}: unknown field kind in {schema}")
        registered = Property(
            name=check.__name__,
            clause=clause,
            uses=uses,
            strategy=given,
            check=check,
            schema=schema,
            examples=examples or (lambda _c: []),
            applies=applies or (lambda _c: None),
            doc=(check.__doc__ or "").strip(),
        )
        REGISTRY[registered.name] = registered
        return registered

    return register


def all_properties() -> list[Property]:
    """Every registered property, in definition order."""
    for module in PROPERTY_MODULES:
        importlib.import_module(module)
    return list(REGISTRY.values())
