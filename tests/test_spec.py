"""The spec and the properties agree: every MUST clause is checked, every citation resolves."""

from __future__ import annotations

import pytest
from detspec.conformance.spec_index import load_clauses, parse_spec_file
from detspec.properties.registry import all_properties

CLAUSES = load_clauses()
PROPERTIES = all_properties()


def test_spec_has_clauses_in_every_area_file():
    assert {c.path.name for c in CLAUSES.values()} >= {
        "boxes.md",
        "anchors.md",
        "rpn_training.md",
        "fourier.md",
        "proposals.md",
        "roi_head.md",
    }


def test_every_must_clause_has_a_property():
    checked = {p.clause for p in PROPERTIES}
    unchecked = [c.id for c in CLAUSES.values() if c.level == "MUST" and c.id not in checked]
    assert not unchecked, f"MUST clauses without a property: {unchecked}"


def test_every_property_cites_a_known_clause():
    unknown = [(p.name, p.clause) for p in PROPERTIES if p.clause not in CLAUSES]
    assert not unknown, f"properties citing unknown clauses: {unknown}"


@pytest.mark.parametrize("clause", CLAUSES.values(), ids=list(CLAUSES))
def test_clause_states_its_source(clause):
    assert "**Source:**" in clause.text, f"{clause.id} does not state its source"


def test_every_property_has_a_docstring():
    assert not [p.name for p in PROPERTIES if not p.doc]


def test_malformed_clause_heading_is_an_error(tmp_path):
    spec = tmp_path / "area.md"
    spec.write_text("### `area.rule` (MUST NOT)\ntext\n")
    with pytest.raises(ValueError, match="malformed clause heading"):
        parse_spec_file(spec)


def test_duplicate_clause_ids_are_an_error(tmp_path):
    (tmp_path / "a.md").write_text("### `a.rule` (MUST)\n- **Source:** x\n")
    (tmp_path / "b.md").write_text("### `a.rule` (MAY)\n- **Source:** y\n")
    with pytest.raises(ValueError, match=r"duplicate clause ID a\.rule"):
        load_clauses.__wrapped__(tmp_path)


def test_every_failure_code_is_documented():
    """The codes table of spec/INTERPRETING.md lists every code the properties and the harness
    can report (regenerate it with ``python -m detspec.conformance.codes``)."""
    from detspec.conformance.codes import all_codes
    from detspec.conformance.spec_index import SPEC_DIR

    text = (SPEC_DIR / "INTERPRETING.md").read_text(encoding="utf-8")
    missing = sorted(code for code in all_codes() if f"`{code}`" not in text)
    assert not missing, f"failure codes missing from spec/INTERPRETING.md: {missing}"


def test_every_convention_is_documented():
    """Each convention is named in spec/INTERPRETING.md, and it and every one of its values
    appear in the spec files (the area that defines it lists it under "Conventions")."""
    from detspec.conformance.spec_index import SPEC_DIR

    from detspec import Conventions

    interpreting = (SPEC_DIR / "INTERPRETING.md").read_text(encoding="utf-8")
    areas = "\n".join(
        path.read_text(encoding="utf-8") for path in SPEC_DIR.glob("*.md") if path.name != "INTERPRETING.md"
    )
    missing = [
        f"{name}={value}" if value else name
        for name, values in Conventions.choices().items()
        for value in ("", *values)
        if (f"`{name}`" not in interpreting if not value else f"`{name}`" not in areas or value not in areas)
    ]
    assert not missing, f"conventions missing from the spec: {missing}"
