"""Per-implementation expectations: the documented deviations from the spec.

``conformance/expectations/<impl>.toml`` holds one ``[[deviation]]`` table per deviating
property::

    [[deviation]]
    clause = "boxes.iou.zero-union"        # the clause it breaks (must exist in spec/)
    property = "iou_of_zero_area_pair_is_zero"  # the property whose witness replays it
    reason = "one line: what the implementation does and why"
    upstream = "https://..."               # optional: issue or source line
    match = "NaN"                          # optional: regex the failure message must match
    witness = { boxes1 = [[0.0, 0.0, 0.0, 0.0]], boxes2 = [[0.0, 0.0, 0.0, 0.0]] }

The witness is the minimal input that shows the deviation; it is replayed on every run instead of
searching again. Problems with the file (unknown clause or property, a property that does not
belong to the clause, a malformed witness, duplicates) are collected, not raised, so that the run
reports them as an error and still goes on.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from detspec.properties.registry import Property

#: The expectations shipped with detspec for its built-in implementations (package data).
EXPECTATIONS_DIR = Path(str(resources.files("detspec.conformance"))) / "expectations"
REQUIRED = ("clause", "property", "reason", "witness")
OPTIONAL = ("upstream", "match")


@dataclass(frozen=True)
class Deviation:
    clause: str
    property: str
    reason: str
    witness: dict[str, Any]
    upstream: str | None = None
    match: str | None = None


@dataclass
class Expectations:
    path: Path | None
    deviations: dict[str, Deviation] = field(default_factory=dict)  # by property name
    problems: list[str] = field(default_factory=list)

    def for_property(self, prop: Property) -> Deviation | None:
        return self.deviations.get(prop.name)


def expectations_path(impl_name: str) -> Path:
    return EXPECTATIONS_DIR / f"{impl_name}.toml"


def load_expectations(path: Path | None, clauses: set[str], properties: dict[str, Property]) -> Expectations:
    """Read and check an expectations file; a missing file means "no deviations"."""
    result = Expectations(path)
    if path is None or not path.exists():
        return result
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        result.problems.append(f"{path.name}: not valid TOML: {error}")
        return result
    unknown_tables = set(data) - {"deviation"}
    if unknown_tables:
        result.problems.append(f"{path.name}: unknown top-level keys {sorted(unknown_tables)}")
    for number, entry in enumerate(data.get("deviation", []), start=1):
        where = f"{path.name}: deviation #{number}"
        missing = [key for key in REQUIRED if key not in entry]
        extra = set(entry) - set(REQUIRED) - set(OPTIONAL)
        if missing or extra:
            result.problems.append(f"{where}: missing {missing}, unknown {sorted(extra)}")
            continue
        deviation = Deviation(**entry)
        if deviation.clause not in clauses:
            result.problems.append(f"{where}: unknown clause ID {deviation.clause!r}")
            continue
        prop = properties.get(deviation.property)
        if prop is None:
            result.problems.append(f"{where}: unknown property {deviation.property!r}")
            continue
        if prop.clause != deviation.clause:
            result.problems.append(
                f"{where}: property {prop.name} checks {prop.clause}, not {deviation.clause}"
            )
            continue
        try:
            prop.from_jsonable(deviation.witness)
        except (ValueError, TypeError) as error:
            result.problems.append(f"{where}: malformed witness: {error}")
            continue
        if deviation.property in result.deviations:
            result.problems.append(f"{where}: second entry for property {deviation.property}")
            continue
        if not deviation.reason.strip():
            result.problems.append(f"{where}: empty reason")
            continue
        result.deviations[deviation.property] = deviation
    return result
