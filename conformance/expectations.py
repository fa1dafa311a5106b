"""Per-implementation expectations: the documented deviations from the spec.

``conformance/expectations/<impl>.toml`` (one file per implementation; variants such as a GPU
build use conditions, not a copy)::

    models = "detspec.conformance.deviations.torchvision"  # where the deviant models live
    [verified]                              # library versions the file was last checked against
    torchvision = "0.29.1"

    [[deviation]]
    clause = "boxes.iou.zero-union"         # the clause it breaks (must exist in spec/)
    property = "iou_of_zero_area_pair_is_zero"  # the property that shows it
    codes = ["result.nan"]                  # the failure codes of this root cause
    model = "iou_divides_zero_by_zero"      # the deviant model (conformance/deviations)
    reason = "one line: what the implementation does and why"
    upstream = "https://..."                # optional: issue or source line
    when = { device = "cuda" }              # optional: only for adapters with these facts
    witness = { boxes1 = [[0.0, 0.0, 0.0, 0.0]], boxes2 = [[0.0, 0.0, 0.0, 0.0]] }

The witness is replayed on every run and must fail with one of the codes *and* agree with the
model; the property is then searched with exactly the failures the model explains set aside.
Loading never raises: every problem (unreadable file, wrong types, unknown clause or property, a
property that does not check the clause, a malformed witness, an unknown model, duplicates) is
collected with a one-line message, and the run reports it as an error.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from detspec.conformance.deviations import DeviantModel, load_models
from detspec.properties.checks import CODE_PATTERN
from detspec.properties.registry import Property

#: The expectations shipped with detspec for its built-in implementations (package data).
EXPECTATIONS_DIR = Path(str(resources.files("detspec.conformance"))) / "expectations"
REQUIRED = {"clause": str, "property": str, "codes": list, "model": str, "reason": str, "witness": dict}
OPTIONAL = {"upstream": str, "when": dict}
TOP_LEVEL = {"models": str, "verified": dict, "deviation": list}


@dataclass(frozen=True)
class Deviation:
    clause: str
    property: str
    codes: tuple[str, ...]
    model: DeviantModel | None  # None only in a draft (a problem of its own)
    reason: str
    witness: dict[str, Any]
    upstream: str | None = None
    when: dict[str, Any] = field(default_factory=dict)


@dataclass
class Expectations:
    path: Path | None
    deviations: dict[str, Deviation] = field(default_factory=dict)  # by property name
    problems: list[str] = field(default_factory=list)
    verified: dict[str, Any] = field(default_factory=dict)

    def for_property(self, prop: Property) -> Deviation | None:
        return self.deviations.get(prop.name)


def expectations_path(impl_name: str) -> Path:
    return EXPECTATIONS_DIR / f"{impl_name}.toml"


def default_models_module(path: Path) -> str:
    return f"detspec.conformance.deviations.{path.stem.replace('-', '_')}"


def _conditions_hold(when: dict[str, Any], facts: dict[str, Any]) -> bool:
    for key, wanted in when.items():
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if facts.get(key) not in allowed:
            return False
    return True


def load_expectations(
    path: Path | None,
    clauses: set[str],
    properties: dict[str, Property],
    facts: dict[str, Any] | None = None,
) -> Expectations:
    """Read and check an expectations file; a missing file means "no deviations". ``facts``
    (the adapter's, e.g. ``{"device": "cuda"}``) select the entries whose ``when`` holds."""
    result = Expectations(path)
    if path is None or not path.exists():
        return result
    name = path.name
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except IsADirectoryError:
        result.problems.append(f"{name}: is a directory, not an expectations file")
        return result
    except OSError as error:
        result.problems.append(f"{name}: cannot be read ({error.strerror or error})")
        return result
    except UnicodeDecodeError as error:
        result.problems.append(f"{name}: not UTF-8 text (byte {error.start}: {error.reason})")
        return result
    except tomllib.TOMLDecodeError as error:
        result.problems.append(f"{name}: not valid TOML: {error}")
        return result
    for key, value in data.items():
        if key not in TOP_LEVEL:
            result.problems.append(f"{name}: unknown top-level key {key!r}")
        elif not isinstance(value, TOP_LEVEL[key]):
            result.problems.append(f"{name}: {key} must be a {TOP_LEVEL[key].__name__}")
            return result
    result.verified = dict(data.get("verified", {}))
    entries = data.get("deviation", [])
    models: dict[str, DeviantModel] = {}
    if any(isinstance(e, dict) and e.get("model") for e in entries):  # a draft names none yet
        module = data.get("models") or default_models_module(path)
        try:
            models = load_models(module)
        except Exception as error:
            result.problems.append(f"{name}: cannot load the deviant models from {module!r} ({error})")
    for number, entry in enumerate(entries, start=1):
        problem, deviation = _read_entry(entry, clauses, properties, models)
        where = f"{name}: deviation #{number}"
        if problem:
            result.problems.append(f"{where}: {problem}")
        if deviation is None:
            continue
        if not _conditions_hold(deviation.when, facts or {}):
            continue
        if deviation.property in result.deviations:
            result.problems.append(f"{where}: second entry for property {deviation.property}")
            continue
        result.deviations[deviation.property] = deviation
    return result


def _read_entry(
    entry: Any, clauses: set[str], properties: dict[str, Property], models: dict[str, DeviantModel]
) -> tuple[str | None, Deviation | None]:
    """``(problem, deviation)``: a deviation with no problem, a draft with one, or only a problem."""
    if not isinstance(entry, dict):
        return f"expected a table, got {type(entry).__name__}", None
    missing = [key for key in REQUIRED if key not in entry]
    unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
    if missing or unknown:
        return f"missing {missing}, unknown {unknown}", None
    for key, kind in {**REQUIRED, **OPTIONAL}.items():
        if key in entry and not isinstance(entry[key], kind):
            return f"{key} must be a {kind.__name__}, got {type(entry[key]).__name__} {entry[key]!r}", None
    if not entry["reason"].strip():
        return "empty reason", None
    codes = entry["codes"]
    bad_codes = [c for c in codes if not isinstance(c, str) or not CODE_PATTERN.match(c)]
    if not codes or bad_codes:
        return f"codes must be a non-empty list of failure codes, got {codes!r}", None
    if entry["clause"] not in clauses:
        return f"unknown clause ID {entry['clause']!r}", None
    prop = properties.get(entry["property"])
    if prop is None:
        return f"unknown property {entry['property']!r}", None
    if prop.clause != entry["clause"]:
        return f"property {prop.name} checks {prop.clause}, not {entry['clause']}", None
    try:
        prop.from_jsonable(entry["witness"])
    except (ValueError, TypeError) as error:
        return f"malformed witness: {error}", None
    model = models.get(entry["model"])
    problem = None
    if model is None:
        problem = (
            "no deviant model yet (a draft: write one in the models module)"
            if not entry["model"]
            else f"unknown deviant model {entry['model']!r}"
        )
    elif model.operation not in prop.uses:
        problem = f"model {model.name} describes {model.operation}, which {prop.name} does not call"
        model = None
    deviation = Deviation(
        clause=entry["clause"],
        property=entry["property"],
        codes=tuple(codes),
        model=model,
        reason=entry["reason"],
        witness=entry["witness"],
        upstream=entry.get("upstream"),
        when=entry.get("when", {}),
    )
    return problem, deviation
