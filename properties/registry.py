"""Properties: a clause, a strategy for inputs, and a check against an implementation.

A property is written once, as ``check(impl, **fields)``; the same object is run by Hypothesis
against any implementation, replayed on a stored witness (``conformance/expectations``), and run
against the negative controls. Its inputs are an **example family**: a small frozen dataclass
whose fields are declared once, with a kind (``Rows4``, ``Vector``, ...) that says how the field
is written to a report or an expectations file and read back exactly. The strategy builds the
family (a dict with its fields is accepted and converted), the check receives its fields.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

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

#: Field kinds: how a field of an example is read back from JSON/TOML.
FIELD_KINDS: dict[str, Callable[[Any], Any]] = {
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

# The field types of example families: the annotation carries the kind.
Rows4 = Annotated[np.ndarray, "rows4"]
Vector = Annotated[np.ndarray, "vector"]
Labels = Annotated[np.ndarray, "labels"]
Integer = Annotated[int, "integer"]
Number = Annotated[float, "number"]
PairField = Annotated[tuple[float, float], "pair"]
Weights = Annotated[tuple[float, ...], "weights"]
Matrix = Annotated[np.ndarray, "matrix"]
Text = Annotated[str, "text"]
Plain = Annotated[Any, "json"]


class Example:
    """Base of the example families; subclasses are declared with :func:`family`."""

    KINDS: typing.ClassVar[dict[str, str]] = {}

    def fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def coerce(cls, value: Any) -> Example:
        """An instance from an instance or from a dict of exactly its fields."""
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown, missing = set(value) - set(cls.KINDS), set(cls.KINDS) - set(value)
            if unknown or missing:
                raise ValueError(
                    f"input for {cls.__name__}: unknown fields {sorted(unknown)}, "
                    f"missing fields {sorted(missing)}"
                )
            return cls(**value)
        raise TypeError(f"expected a {cls.__name__} or a dict of its fields, got {type(value).__name__}")

    def to_jsonable(self) -> dict[str, Any]:
        out = {}
        for key, value in self.fields().items():
            if isinstance(value, np.ndarray):
                out[key] = finite_or_text(value.tolist())
            elif isinstance(value, tuple):
                out[key] = [float(x) for x in value]
            else:
                out[key] = float(value) if isinstance(value, float | np.floating) else value
        return out

    @classmethod
    def from_jsonable(cls, data: Any) -> Example:
        if not isinstance(data, dict):
            raise ValueError(
                f"input for {cls.__name__}: expected a table of fields, got {type(data).__name__}"
            )
        unknown, missing = set(data) - set(cls.KINDS), set(cls.KINDS) - set(data)
        if unknown or missing:
            raise ValueError(
                f"input for {cls.__name__}: unknown fields {sorted(unknown)}, "
                f"missing fields {sorted(missing)}"
            )
        return cls(**{key: FIELD_KINDS[cls.KINDS[key]](value) for key, value in data.items()})


def family(cls: type) -> type:
    """Declare an example family: a frozen dataclass whose annotations carry the field kinds."""
    declared = dataclass(frozen=True, eq=False)(cls)
    hints = typing.get_type_hints(declared, include_extras=True)
    kinds = {}
    for item in dataclasses.fields(declared):
        metadata = getattr(hints[item.name], "__metadata__", ())
        if not metadata or metadata[0] not in FIELD_KINDS:
            raise TypeError(f"{cls.__name__}.{item.name}: annotate with a field kind (Rows4, Vector, ...)")
        kinds[item.name] = metadata[0]
    declared.KINDS = kinds
    return declared


def finite_or_text(value: Any) -> Any:
    """Nested lists, tuples and tables with NaN/inf spelled as strings (strict JSON has no NaN;
    NumPy reads them back)."""
    if isinstance(value, list | tuple):
        return [finite_or_text(v) for v in value]
    if isinstance(value, dict):
        return {k: finite_or_text(v) for k, v in value.items()}
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return str(float(value))
    return value


StrategyFactory = Callable[[Conventions], st.SearchStrategy[Any]]
Condition = Callable[[Conventions], str | None]


def _always(_conventions: Conventions) -> str | None:
    return None


def _no_examples(_conventions: Conventions) -> list[Any]:
    return []


@dataclass(frozen=True)
class Property:
    name: str
    clause: str
    uses: tuple[str, ...]
    strategy: StrategyFactory
    check: Callable[..., None]
    family: type[Example]
    examples: Callable[[Conventions], list[Any]] = _no_examples
    applies: Condition = _always  # a reason to skip: not applicable under these conventions
    requires: Condition = _always  # a reason it is unsupported: the declared capability is missing
    doc: str = ""

    def inputs(self, conventions: Conventions) -> st.SearchStrategy[Example]:
        return self.strategy(conventions).map(self.family.coerce)

    def explicit_examples(self, conventions: Conventions) -> list[Example]:
        return [self.family.coerce(e) for e in self.examples(conventions)]

    def run(self, impl: Any, example: Example) -> None:
        self.check(impl, **example.fields())

    def to_jsonable(self, example: Example | dict[str, Any]) -> dict[str, Any]:
        return self.family.coerce(example).to_jsonable()

    def from_jsonable(self, data: Any) -> Example:
        return self.family.from_jsonable(data)


REGISTRY: dict[str, Property] = {}


def prop(
    clause: str,
    *,
    uses: tuple[str, ...],
    given: StrategyFactory,
    example: type[Example],
    examples: Callable[[Conventions], list[Any]] | None = None,
    applies: Condition | None = None,
    requires: Condition | None = None,
):
    """Register ``check(impl, **fields)`` as a property of ``clause`` on inputs of ``example``."""

    def register(check: Callable[..., None]) -> Property:
        if check.__name__ in REGISTRY:
            raise ValueError(f"property {check.__name__} registered twice")
        if not (isinstance(example, type) and issubclass(example, Example) and example.KINDS):
            raise TypeError(f"property {check.__name__}: example must be a @family class")
        registered = Property(
            name=check.__name__,
            clause=clause,
            uses=uses,
            strategy=given,
            check=check,
            family=example,
            examples=examples or _no_examples,
            applies=applies or _always,
            requires=requires or _always,
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
