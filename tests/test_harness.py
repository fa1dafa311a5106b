"""The conformance machinery: guarded calls, --impl loading, expectations, replay, report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from detspec.conformance.adapters.reference_adapter import reference
from detspec.conformance.expectations import Deviation, load_expectations
from detspec.conformance.guard import GuardedImplementation
from detspec.conformance.loader import ImplementationSpecError, load_adapter
from detspec.conformance.report import build_report, render_html, summary_lines
from detspec.conformance.runner import evaluate, replay_witness, run_property
from detspec.conformance.spec_index import load_clauses
from detspec.properties.interface import ImplementationHung, ImplementationRaised, InvalidResult
from detspec.properties.registry import all_properties
from hypothesis import settings

from tests import ROOT
from tests import adapters_for_tests as bad

PROPERTIES = {p.name: p for p in all_properties()}
QUICK = settings(max_examples=20, derandomize=True, database=None, deadline=None)
BOX = np.array([[0.0, 0.0, 4.0, 4.0]])


def test_hanging_operation_fails_its_property_and_is_not_called_again():
    impl = GuardedImplementation(bad.Hangs(), timeout_s=0.2)
    outcome = run_property(PROPERTIES["iou_is_symmetric"], impl, QUICK)
    assert outcome.status == "fail"
    assert "did not return within 0.2 s" in outcome.message
    with pytest.raises(ImplementationHung, match="on an earlier call; not called again"):
        impl.box_iou(BOX, BOX)
    # the other operations still work: the run goes on
    assert run_property(PROPERTIES["area_is_width_times_height"], impl, QUICK).status == "pass"


@pytest.mark.parametrize(
    ("adapter", "error", "message"),
    [
        (bad.Raises, ImplementationRaised, "reference.box_iou raised RuntimeError: kernel exploded"),
        (bad.ReturnsNaN, InvalidResult, r"returned NaN at index \[0, 0\]"),
        (bad.WrongShape, InvalidResult, r"returned shape \(1,\); expected \(1, 1\)"),
    ],
)
def test_misbehaving_operation_raises_a_clear_failure(adapter, error, message):
    with pytest.raises(error, match=message):
        GuardedImplementation(adapter()).box_iou(BOX, BOX)


def test_non_integer_indices_are_rejected():
    with pytest.raises(InvalidResult, match="expected a 1-D integer index array"):
        GuardedImplementation(bad.FloatIndices()).nms(BOX, np.ones(1), 0.5)


def test_adapter_cannot_corrupt_the_property_inputs():
    boxes = BOX.copy()
    GuardedImplementation(bad.MutatesInputs()).box_iou(boxes, BOX)
    np.testing.assert_array_equal(boxes, BOX)


def test_missing_operation_is_not_provided_rather_than_failed():
    impl = GuardedImplementation(bad.only_area())
    assert run_property(PROPERTIES["iou_is_symmetric"], impl, QUICK).status == "not-provided"
    assert run_property(PROPERTIES["area_is_width_times_height"], impl, QUICK).status == "pass"


def test_property_outside_its_convention_is_skipped():
    from detspec.conformance.adapters.reference_adapter import reference_legacy

    outcome = run_property(
        PROPERTIES["iou_is_scale_invariant"], GuardedImplementation(reference_legacy()), QUICK
    )
    assert outcome.status == "skip" and "continuous" in outcome.message


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonsense", r"not a built-in implementation .* not of the form package.module:factory"),
        ("no_such_pkg.mod:factory", r"cannot import module 'no_such_pkg.mod' \(ModuleNotFoundError"),
        ("tests.adapters_for_tests:missing", r"has no attribute 'missing'"),
        ("tests.adapters_for_tests:factory_that_raises", r"factory raised RuntimeError: no GPU here"),
        ("tests.adapters_for_tests:returns_nothing_useful", r"no string attribute 'name'"),
    ],
)
def test_bad_impl_gives_one_line_error(spec, message):
    with pytest.raises(ImplementationSpecError, match=message) as info:
        load_adapter(spec)
    assert "\n" not in str(info.value)


def _expectations(tmp_path, text):
    path = tmp_path / "impl.toml"
    path.write_text(text)
    return load_expectations(path, set(load_clauses()), PROPERTIES)


WITNESS = "witness = { boxes1 = [[0.0, 0.0, 0.0, 0.0]], boxes2 = [[0.0, 0.0, 0.0, 0.0]] }"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (
            f'clause = "boxes.iou.nope"\nproperty = "iou_is_symmetric"\nreason = "r"\n{WITNESS}',
            "unknown clause ID 'boxes.iou.nope'",
        ),
        (
            f'clause = "boxes.iou.symmetric"\nproperty = "nope"\nreason = "r"\n{WITNESS}',
            "unknown property 'nope'",
        ),
        (
            f'clause = "boxes.iou.range"\nproperty = "iou_is_symmetric"\nreason = "r"\n{WITNESS}',
            "checks boxes.iou.symmetric, not boxes.iou.range",
        ),
        (
            'clause = "boxes.iou.symmetric"\nproperty = "iou_is_symmetric"\nreason = "r"\n'
            "witness = { boxes = [] }",
            "malformed witness",
        ),
        ('clause = "boxes.iou.symmetric"\nproperty = "iou_is_symmetric"\n', "missing ['reason', 'witness']"),
    ],
)
def test_expectations_problems_are_reported(tmp_path, entry, problem):
    expectations = _expectations(tmp_path, f"[[deviation]]\n{entry}\n")
    assert any(problem in p for p in expectations.problems), expectations.problems
    assert not expectations.deviations


def test_duplicate_expectation_is_a_problem(tmp_path):
    entry = (
        f'[[deviation]]\nclause = "boxes.iou.zero-union"\n'
        f'property = "iou_of_zero_area_pair_is_zero"\nreason = "r"\n{WITNESS}\n'
    )
    assert any("second entry" in p for p in _expectations(tmp_path, entry * 2).problems)


ZERO_UNION = PROPERTIES["iou_of_zero_area_pair_is_zero"]
ZERO_WITNESS = {"boxes1": [[0.0, 0.0, 0.0, 0.0]], "boxes2": [[0.0, 0.0, 0.0, 0.0]]}


def test_witness_that_still_fails_is_a_deviation():
    deviation = Deviation(ZERO_UNION.clause, ZERO_UNION.name, "0/0", ZERO_WITNESS, match="NaN")
    outcome = replay_witness(ZERO_UNION, GuardedImplementation(bad.ReturnsNaN()), deviation)
    assert outcome.status == "deviates" and outcome.examples == 1


def test_witness_that_passes_is_an_unexpected_pass():
    deviation = Deviation(ZERO_UNION.clause, ZERO_UNION.name, "0/0", ZERO_WITNESS)
    outcome = replay_witness(ZERO_UNION, GuardedImplementation(reference()), deviation)
    assert outcome.status == "xpass" and "no longer reproduces" in outcome.message


def test_witness_that_fails_differently_is_a_failure():
    deviation = Deviation(ZERO_UNION.clause, ZERO_UNION.name, "0/0", ZERO_WITNESS, match="NaN")
    outcome = replay_witness(ZERO_UNION, GuardedImplementation(bad.Raises()), deviation)
    assert outcome.status == "fail" and "fails differently" in outcome.message


class NaNForIdenticalBoxesElseAQuarter:
    """Two failures of one property: NaN for a pair of identical zero-area boxes (the documented
    one) and 0.25 for any other pair (a different one)."""

    name, version, conventions = "two-bugs", "0", reference().conventions

    def box_iou(self, boxes1, boxes2):
        same = np.all(np.asarray(boxes1)[:, None] == np.asarray(boxes2)[None], axis=2)
        return np.where(same, np.nan, 0.25)


def test_search_goes_on_past_a_documented_deviation():
    deviation = Deviation(ZERO_UNION.clause, ZERO_UNION.name, "0/0", ZERO_WITNESS, match="NaN")
    impl = GuardedImplementation(NaNForIdenticalBoxesElseAQuarter())
    outcome = evaluate(ZERO_UNION, impl, deviation, QUICK)
    assert outcome.status == "fail" and outcome.message.startswith("beyond the documented deviation")
    assert "got 0.25" in outcome.message


def test_documented_deviation_alone_stays_a_deviation_after_the_search():
    deviation = Deviation(ZERO_UNION.clause, ZERO_UNION.name, "0/0", ZERO_WITNESS, match="NaN")
    outcome = evaluate(ZERO_UNION, GuardedImplementation(bad.ReturnsNaN()), deviation, QUICK)
    assert outcome.status == "deviates" and outcome.examples > 1


def test_report_lists_every_clause_with_a_status_and_the_failure_details():
    clauses = load_clauses()
    outcomes = [
        run_property(PROPERTIES["iou_is_symmetric"], GuardedImplementation(reference()), QUICK).to_json(),
        run_property(ZERO_UNION, GuardedImplementation(bad.ReturnsNaN()), QUICK).to_json(),
    ]
    header = {
        "implementation": {"name": "x", "version": "1", "conventions": {}},
        "suite_version": "0",
        "generated_at": "now",
        "hypothesis": {"version": "h", "profile": "dev", "seed": 1, "max_examples": 20},
    }
    report = build_report(header, clauses, outcomes, ["a problem"])
    assert [c["id"] for c in report["clauses"]] == list(clauses)
    by_id = {c["id"]: c for c in report["clauses"]}
    assert by_id["boxes.iou.symmetric"]["status"] == "pass"
    failed = by_id["boxes.iou.zero-union"]
    assert failed["status"] == "fail" and failed["minimal_input"] == ZERO_WITNESS
    assert failed["expected"] == "a number" and failed["actual"] == "NaN"
    json.dumps(report, allow_nan=False)  # strict JSON
    page = render_html(report)
    assert "href='../spec/boxes.md#L" in page and "a problem" in page
    assert any("boxes.iou.zero-union" in line and "fail" in line for line in summary_lines(report))


def test_every_shipped_expectations_file_is_well_formed():
    """CI runs no GPU, so ``torchvision-cuda.toml`` is never loaded by a conformance run there:
    check every shipped file here (known clauses and properties, well-formed witnesses)."""
    for path in sorted((ROOT / "conformance" / "expectations").glob("*.toml")):
        expectations = load_expectations(path, set(load_clauses()), PROPERTIES)
        assert not expectations.problems, f"{path.name}: {expectations.problems}"
        assert expectations.deviations, f"{path.name}: no deviation read"
