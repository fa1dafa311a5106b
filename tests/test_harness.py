"""The conformance machinery in-process: guarded calls, --detspec-impl loading, expectations,
deviant models, replay, search and the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from detspec.conformance.adapters.reference_adapter import ReferenceAdapter, reference, reference_legacy
from detspec.conformance.deviations import deviant_output
from detspec.conformance.expectations import Deviation, load_expectations
from detspec.conformance.guard import GuardedImplementation, check_timeout
from detspec.conformance.loader import ImplementationSpecError, load_adapter
from detspec.conformance.report import build_report, render_html, summary_lines
from detspec.conformance.runner import evaluate, replay_witness, run_property
from detspec.conformance.spec_index import load_clauses
from detspec.conformance.verdicts import Verdict
from detspec.properties.interface import Conventions, ImplementationHung, InvalidResult
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
    assert outcome.status == Verdict.FAIL and outcome.code == "impl.hung"
    assert "did not return within 0.2 s" in outcome.message
    with pytest.raises(ImplementationHung, match="on an earlier call; not called again"):
        impl.box_iou(BOX, BOX)
    # the other operations still work: the run goes on
    assert run_property(PROPERTIES["area_is_width_times_height"], impl, QUICK).status == Verdict.PASS


@pytest.mark.parametrize(
    ("adapter", "operation", "code", "message"),
    [
        (bad.Raises, "box_iou", "impl.raised", "raises.box_iou raised RuntimeError: kernel exploded"),
        (bad.ReturnsNaN, "box_iou", "result.nan", r"returned NaN at index \[0, 0\]"),
        (bad.WrongShape, "box_iou", "result.shape", r"returned shape \(1,\); expected \(1, 1\)"),
        (bad.ReturnsNone, "box_iou", "result.type", "returned None; expected a float array"),
        (bad.ReturnsIntegers, "box_area", "result.dtype", r"dtype int64 \(not a floating-point dtype\)"),
        (bad.ReturnsHalfPrecision, "box_area", "result.dtype", r"dtype float16 \(too imprecise\)"),
    ],
)
def test_misbehaving_operation_fails_with_a_code_and_a_clear_message(adapter, operation, code, message):
    impl = GuardedImplementation(adapter())
    arguments = (BOX, BOX) if operation == "box_iou" else (BOX,)
    with pytest.raises(InvalidResult if code.startswith("result") else Exception, match=message) as info:
        getattr(impl, operation)(*arguments)
    assert info.value.code == code


def test_non_integer_indices_are_a_dtype_problem():
    with pytest.raises(InvalidResult, match="expected an integer dtype") as info:
        GuardedImplementation(bad.FloatIndices()).nms(BOX, np.ones(1), 0.5)
    assert info.value.code == "result.dtype"


def test_adapter_cannot_corrupt_the_property_inputs():
    boxes = BOX.copy()
    GuardedImplementation(bad.MutatesInputs()).box_iou(boxes, BOX)
    np.testing.assert_array_equal(boxes, BOX)


def test_adapter_writing_into_list_arguments_changes_nothing_it_was_given():
    impl = GuardedImplementation(bad.MutatesListArguments())
    sizes, strides = [[32.0, 64.0]], [[16.0, 16.0]]
    impl.grid_anchors([[2, 3]], strides, sizes, [[0.5, 1.0]])
    assert sizes == [[32.0, 64.0]] and strides == [[16.0, 16.0]]
    for name in ("anchor_count_is_cells_times_shapes", "anchors_of_a_cell_are_the_first_cell_shifted"):
        outcome = run_property(PROPERTIES[name], impl, QUICK)
        assert outcome.status == Verdict.PASS, outcome.message


def test_missing_operation_is_not_provided_rather_than_failed():
    impl = GuardedImplementation(bad.only_area())
    assert run_property(PROPERTIES["iou_is_symmetric"], impl, QUICK).status == Verdict.NOT_PROVIDED
    assert run_property(PROPERTIES["area_is_width_times_height"], impl, QUICK).status == Verdict.PASS


def test_property_outside_its_convention_is_skipped():
    outcome = run_property(
        PROPERTIES["iou_is_scale_invariant"], GuardedImplementation(reference_legacy()), QUICK
    )
    assert outcome.status == Verdict.SKIP and "continuous" in outcome.message


def test_a_declared_missing_capability_is_unsupported_not_a_deviation():
    adapter = ReferenceAdapter(Conventions(roi_background_low="zero-only"), name="no-bg-low")
    outcome = run_property(
        PROPERTIES["lower_background_threshold_is_honoured"], GuardedImplementation(adapter), QUICK
    )
    assert outcome.status == Verdict.UNSUPPORTED and "zero-only" in outcome.message


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonsense", r"not a built-in implementation .* not of the form package.module:factory"),
        ("no_such_pkg.mod:factory", r"cannot import module 'no_such_pkg.mod' \(ModuleNotFoundError"),
        ("tests.adapters_for_tests:missing", r"has no attribute 'missing'"),
        ("tests.adapters_for_tests:factory_that_raises", r"factory raised RuntimeError: no GPU here"),
        ("tests.adapters_for_tests:returns_nothing_useful", r"no string attribute 'name'"),
        ("tests.adapters_for_tests:named_with_a_slash", r"adapter name 'vendor/lib' is not a plain name"),
        ("tests.adapters_for_tests:named_with_dots", r"adapter name '\.\./\.\./x' is not a plain name"),
        ("tests.adapters_for_tests:named_torchvision", r"'torchvision' is a built-in implementation's name"),
    ],
)
def test_bad_impl_gives_one_line_error(spec, message):
    with pytest.raises(ImplementationSpecError, match=message) as info:
        load_adapter(spec)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", [0, -1, "nan", math.inf, "soon"])
def test_adapter_timeout_must_be_a_finite_positive_number(value):
    with pytest.raises(ValueError, match="expected a"):
        check_timeout(value)


# --- expectations -----------------------------------------------------------------------------

CLAUSES = set(load_clauses())
WITNESS = "witness = { boxes1 = [[0.0, 0.0, 0.0, 0.0]], boxes2 = [[0.0, 0.0, 0.0, 0.0]] }"
ZERO_UNION_ENTRY = (
    'clause = "boxes.iou.zero-union"\nproperty = "iou_of_zero_area_pair_is_zero"\n'
    'codes = ["result.nan"]\nmodel = "iou_without_a_zero_guard"\nreason = "r"\n'
)


def _expectations(tmp_path, text: str | bytes, facts=None):
    path = tmp_path / "impl.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return load_expectations(path, CLAUSES, PROPERTIES, facts)


def _models_line():
    return 'models = "detspec.conformance.deviations.torchvision"\n'


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (ZERO_UNION_ENTRY.replace("boxes.iou.zero-union", "boxes.iou.nope") + WITNESS, "unknown clause ID"),
        (
            ZERO_UNION_ENTRY.replace('"iou_of_zero_area_pair_is_zero"', '"nope"') + WITNESS,
            "unknown property 'nope'",
        ),
        (
            ZERO_UNION_ENTRY.replace("boxes.iou.zero-union", "boxes.iou.range") + WITNESS,
            "checks boxes.iou.zero-union, not boxes.iou.range",
        ),
        (ZERO_UNION_ENTRY + "witness = { boxes = [] }", "malformed witness"),
        (
            'clause = "boxes.iou.symmetric"\nproperty = "iou_is_symmetric"\n',
            "missing ['codes', 'model', 'reason'",
        ),
        (ZERO_UNION_ENTRY.replace('reason = "r"', "reason = 5") + WITNESS, "reason must be a str, got int 5"),
        (ZERO_UNION_ENTRY.replace('["result.nan"]', '["NaN!"]') + WITNESS, "codes must be a non-empty list"),
        (
            ZERO_UNION_ENTRY.replace("iou_without_a_zero_guard", "no_such_model") + WITNESS,
            "unknown deviant model",
        ),
        (
            ZERO_UNION_ENTRY.replace("iou_without_a_zero_guard", "batched_nms_with_coordinate_offsets")
            + WITNESS,
            "describes batched_nms, which iou_of_zero_area_pair_is_zero does not call",
        ),
    ],
)
def test_expectations_problems_are_reported(tmp_path, entry, problem):
    expectations = _expectations(tmp_path, f"{_models_line()}[[deviation]]\n{entry}\n")
    assert any(problem in p for p in expectations.problems), expectations.problems


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"deviation = 5\n", "deviation must be a list"),
        (b"\xff\xfe not text", "not UTF-8 text"),
        (b"[[deviation]\n", "not valid TOML"),
        (b"colour = 'blue'\n", "unknown top-level key 'colour'"),
        (b"deviation = [5]\n", "expected a table, got int"),
    ],
)
def test_malformed_expectations_files_are_problems_not_crashes(tmp_path, text, problem):
    expectations = _expectations(tmp_path, text)
    assert any(problem in p for p in expectations.problems), expectations.problems
    assert not expectations.deviations


def test_a_directory_is_a_problem_not_a_crash(tmp_path):
    expectations = load_expectations(tmp_path, CLAUSES, PROPERTIES)
    assert expectations.problems == [f"{tmp_path.name}: is a directory, not an expectations file"]


def test_duplicate_expectation_is_a_problem(tmp_path):
    entry = f"[[deviation]]\n{ZERO_UNION_ENTRY}{WITNESS}\n"
    assert any("second entry" in p for p in _expectations(tmp_path, _models_line() + entry * 2).problems)


def test_entries_apply_only_where_their_conditions_hold(tmp_path):
    text = f'{_models_line()}[[deviation]]\n{ZERO_UNION_ENTRY}when = {{ device = "cuda" }}\n{WITNESS}\n'
    assert not _expectations(tmp_path, text, {"device": "cpu"}).deviations
    assert _expectations(tmp_path, text, {"device": "cuda"}).deviations


def test_every_shipped_expectations_file_is_well_formed():
    """CI has no GPU, so entries for CUDA are never replayed there: check every shipped file
    here under every condition it names (known clauses, properties, codes, models, witnesses)."""
    for path in sorted((ROOT / "conformance" / "expectations").glob("*.toml")):
        for device in ("cpu", "cuda"):
            expectations = load_expectations(path, CLAUSES, PROPERTIES, {"device": device})
            assert not expectations.problems, f"{path.name}: {expectations.problems}"
        assert expectations.verified, f"{path.name}: no [verified] versions"


# --- replay and search past a documented deviation ---------------------------------------------

ZERO_UNION = PROPERTIES["iou_of_zero_area_pair_is_zero"]
ZERO_WITNESS = {"boxes1": [[0.0, 0.0, 0.0, 0.0]], "boxes2": [[0.0, 0.0, 0.0, 0.0]]}


@deviant_output("box_iou")
def nan_for_a_zero_union(boxes1, boxes2):
    """0/0 = NaN where the union is empty; the formula elsewhere."""
    expected = ReferenceAdapter().box_iou(boxes1, boxes2)
    a, b = np.asarray(boxes1), np.asarray(boxes2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    empty = (area(a)[:, None] == 0) & (area(b)[None, :] == 0)
    return np.where(empty, np.nan, expected)


def _deviation(model=nan_for_a_zero_union, codes=("result.nan",)):
    return Deviation(ZERO_UNION.clause, ZERO_UNION.name, codes, model, "0/0", ZERO_WITNESS)


def test_witness_that_still_fails_as_the_model_says_is_a_deviation():
    outcome = replay_witness(ZERO_UNION, GuardedImplementation(bad.ReturnsNaN()), _deviation())
    assert outcome.status == Verdict.DEVIATES and outcome.examples == 1 and outcome.code == "result.nan"


def test_witness_that_passes_is_an_unexpected_pass():
    outcome = replay_witness(ZERO_UNION, GuardedImplementation(reference()), _deviation())
    assert outcome.status == Verdict.XPASS and "no longer reproduces" in outcome.message


def test_witness_that_fails_with_another_code_is_a_failure():
    outcome = replay_witness(ZERO_UNION, GuardedImplementation(bad.Raises()), _deviation())
    assert outcome.status == Verdict.FAIL and "fails differently" in outcome.message
    assert "impl.raised is not one of the documented ['result.nan']" in outcome.message


class NaNForIdenticalBoxesElseAQuarter(ReferenceAdapter):
    """Two failures of one property: NaN for zero-area pairs (as the model says) and 0.25 for any
    other pair (a different failure, with the property's own code)."""

    def __init__(self) -> None:
        super().__init__(name="two-bugs")

    def box_iou(self, boxes1, boxes2):
        same = np.all(np.asarray(boxes1)[:, None] == np.asarray(boxes2)[None], axis=2)
        return np.where(same, np.nan, 0.25)


def test_search_goes_on_past_a_documented_deviation():
    impl = GuardedImplementation(NaNForIdenticalBoxesElseAQuarter())
    outcome = evaluate(ZERO_UNION, impl, _deviation(), QUICK)
    assert outcome.status == Verdict.FAIL and outcome.message.startswith("beyond the documented deviation")
    assert "got 0.25" in outcome.message and outcome.code == "iou.zero-union"


def test_documented_deviation_alone_stays_a_deviation_after_the_search():
    outcome = evaluate(ZERO_UNION, GuardedImplementation(bad.ReturnsNaN()), _deviation(), QUICK)
    assert outcome.status == Verdict.DEVIATES and outcome.examples > 1 and outcome.set_aside >= 1


class NaNForEveryPairOfDegenerateBoxes(ReferenceAdapter):
    """NaN for every pair involving a zero-area box, also where the union is not empty: the same
    failure code as the documented 0/0, but not the documented behaviour."""

    def __init__(self) -> None:
        super().__init__(name="nan-for-degenerate")

    def box_iou(self, boxes1, boxes2):
        a, b = np.asarray(boxes1), np.asarray(boxes2)
        flat = lambda x: (x[:, 2] == x[:, 0]) | (x[:, 3] == x[:, 1])  # noqa: E731
        return np.where(flat(a)[:, None] | flat(b)[None, :], np.nan, super().box_iou(a, b))


def test_the_same_code_with_other_outputs_than_the_model_is_not_excused():
    impl = GuardedImplementation(NaNForEveryPairOfDegenerateBoxes())
    outcome = evaluate(PROPERTIES["iou_matches_formula"], impl, None, QUICK)
    assert outcome.status == Verdict.FAIL and outcome.code == "result.nan"
    deviation = Deviation(
        "boxes.iou.formula", "iou_matches_formula", ("result.nan",), nan_for_a_zero_union, "0/0", ZERO_WITNESS
    )
    outcome = evaluate(PROPERTIES["iou_matches_formula"], impl, deviation, QUICK)
    assert outcome.status == Verdict.FAIL
    assert "does not return what nan_for_a_zero_union gives" in outcome.message or "beyond" in outcome.message


# --- the report -------------------------------------------------------------------------------


def _header():
    return {
        "implementation": {"name": "x", "version": "1", "conventions": {}, "facts": {}, "isolated": False},
        "suite_version": "0",
        "generated_at": "now",
        "hypothesis": {"version": "h", "profile": "dev", "seed": 1, "max_examples": 20},
        "expectations": {"path": None, "verified": {}},
    }


def test_report_lists_every_clause_with_a_status_and_the_failure_details():
    outcomes = [
        run_property(PROPERTIES["iou_is_symmetric"], GuardedImplementation(reference()), QUICK).to_json(),
        run_property(ZERO_UNION, GuardedImplementation(bad.ReturnsNaN()), QUICK).to_json(),
    ]
    report = build_report(_header(), load_clauses(), PROPERTIES, outcomes, ["a problem"])
    clauses = load_clauses()
    assert [c["id"] for c in report["clauses"]] == list(clauses)
    by_id = {c["id"]: c for c in report["clauses"]}
    assert by_id["boxes.iou.symmetric"]["status"] == "pass"
    failed = by_id["boxes.iou.zero-union"]
    assert failed["status"] == "fail" and failed["code"] == "result.nan"
    (outcome,) = failed["properties"]
    assert outcome["minimal_input"] == ZERO_WITNESS and outcome["actual"] == "NaN"
    assert "minimal_input" not in failed  # stored once, in the property's outcome
    assert by_id["boxes.iou.formula"]["status"] == "not-run"  # a property that was not run
    json.dumps(report, allow_nan=False)  # strict JSON
    page = render_html(report)
    assert "href='../spec/boxes.md#L" in page and "a problem" in page
    assert any("boxes.iou.zero-union" in line and "fail" in line for line in summary_lines(report))


def test_a_clause_without_a_property_is_untested(tmp_path):
    spec = tmp_path / "area.md"
    spec.write_text("### `area.rule` (SHOULD)\n- **Source:** here\n")
    clauses = load_clauses.__wrapped__(tmp_path)
    report = build_report(_header(), clauses, PROPERTIES, [], [])
    assert report["clauses"][0]["status"] == "untested"


def test_update_expectations_drafts_a_loadable_file_from_a_fresh_report(tmp_path):
    """A report with failures becomes a draft whose entries load, replay their witnesses as
    deviations, and are reported as drafts (no model yet) until a human writes the models."""
    from detspec.conformance.cli import draft_expectations

    broken = GuardedImplementation(bad.ReturnsNaN())
    outcomes = [
        run_property(PROPERTIES[name], broken, QUICK).to_json()
        for name in ("iou_matches_formula", "iou_is_symmetric")
    ]
    report = build_report(_header(), load_clauses(), PROPERTIES, outcomes, [])
    path = tmp_path / "draft.toml"
    path.write_text(draft_expectations(report))
    expectations = load_expectations(path, CLAUSES, PROPERTIES)
    assert set(expectations.deviations) == {"iou_matches_formula", "iou_is_symmetric"}
    assert len(expectations.problems) == 2 and all("no deviant model yet" in p for p in expectations.problems)
    for name, deviation in expectations.deviations.items():
        assert deviation.codes == ("result.nan",)
        assert replay_witness(PROPERTIES[name], broken, deviation).status == Verdict.DEVIATES


def test_thorough_and_dev_keep_their_randomness_when_ci_is_set():
    """Hypothesis makes its own ``ci`` profile the default when CI is set; ours name their parents
    explicitly, so only ``detspec-ci`` is derandomised."""
    import detspec.conformance.plugin  # noqa: F401  (registers the profiles)

    assert not settings.get_profile("detspec-thorough").derandomize
    assert not settings.get_profile("detspec-dev").derandomize
    assert settings.get_profile("detspec-ci").derandomize
    assert settings.get_profile("detspec-thorough").max_examples == 1000


def test_each_implementation_and_property_has_its_own_database_key():
    from detspec.conformance.runner import NamespacedDatabase
    from hypothesis.database import InMemoryExampleDatabase

    base = InMemoryExampleDatabase()
    digest = bytes(48)  # what Hypothesis puts first: a digest of the runner's source
    NamespacedDatabase(base, "reference/iou_is_symmetric").save(digest, b"failure")
    assert list(NamespacedDatabase(base, "reference/iou_is_symmetric").fetch(bytes([1]) * 48)) == [b"failure"]
    assert not list(NamespacedDatabase(base, "reference/iou_matches_formula").fetch(digest))
    assert not list(NamespacedDatabase(base, "torchvision/iou_is_symmetric").fetch(digest))


class DeclaresCornerButCentres(ReferenceAdapter):
    """Declares torchvision's corner anchor offset, computes centred anchors."""

    def __init__(self) -> None:
        super().__init__(Conventions(anchor_offset="corner"), name="declares-corner")

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        return ReferenceAdapter().grid_anchors(feature_sizes, strides, sizes, ratios)


def test_the_fingerprint_flags_a_wrong_declaration_and_agrees_with_honest_ones():
    from detspec.conformance.fingerprint import fingerprint, mismatches

    (wrong,) = mismatches(fingerprint(GuardedImplementation(DeclaresCornerButCentres())))
    assert wrong.startswith("convention anchor_offset: declared 'corner', the fingerprint observes 'centre'")
    for honest in (reference(), reference_legacy()):
        observations = fingerprint(GuardedImplementation(honest))
        assert not mismatches(observations)
        assert all(o.observed for o in observations), [o for o in observations if not o.observed]


# values the reference adapter can declare but does not act on: it computes in float64 whatever
# it declares, and it can do what the two limiting capabilities say it cannot
_NOT_ACTED_ON = {("dtype", "float32"), ("proposal_anchors", "own-grid"), ("roi_background_low", "zero-only")}


@pytest.mark.parametrize(
    ("convention", "value"),
    [
        (name, value)
        for name, values in Conventions.choices().items()
        for value in values
        if (name, value) not in _NOT_ACTED_ON
    ],
)
def test_the_fingerprint_tells_every_value_of_every_convention(convention, value):
    """The reference declaring this one value (every other convention at its default): every
    probe observes exactly what it declares, so each probe can tell each value from the others."""
    from detspec.conformance.fingerprint import fingerprint

    honest = ReferenceAdapter(Conventions(**{convention: value}), name=f"declares-{convention}")
    observed = {o.convention: o for o in fingerprint(GuardedImplementation(honest))}
    assert observed[convention].observed == value, observed[convention].evidence
    assert all(o.observed == o.declared for o in observed.values()), [
        o for o in observed.values() if o.observed != o.declared
    ]


class RaisesForNoBoxes(ReferenceAdapter):
    """box_area raises IndexError for an empty input, and is right otherwise."""

    def __init__(self, error=IndexError) -> None:
        super().__init__(name="raises-for-no-boxes")
        self.error = error

    def box_area(self, boxes):
        if len(boxes) == 0:
            raise self.error("tuple index out of range")
        return super().box_area(boxes)


@deviant_output("box_area")
def area_raises_index_error_without_boxes(boxes):
    """IndexError for no boxes, the area otherwise."""
    if len(boxes) == 0:
        raise IndexError("no boxes")
    return ReferenceAdapter().box_area(boxes)


def test_a_deviation_that_raises_is_documented_by_a_model_that_raises():
    area = PROPERTIES["area_is_width_times_height"]
    deviation = Deviation(
        area.clause,
        area.name,
        ("impl.raised",),
        area_raises_index_error_without_boxes,
        "crash",
        {"boxes": []},
    )
    outcome = evaluate(area, GuardedImplementation(RaisesForNoBoxes()), deviation, QUICK)
    assert outcome.status == Verdict.DEVIATES, outcome.message
    # another exception type, or a raise where the model computes an area, is not excused
    outcome = evaluate(area, GuardedImplementation(RaisesForNoBoxes(KeyError)), deviation, QUICK)
    assert (
        outcome.status == Verdict.FAIL
        and "raised KeyError where the model raises IndexError" in outcome.message
    )


# --- the shipped torchvision entries excuse exactly their root cause ---------------------------


def _torchvision_entries():
    from detspec.conformance.expectations import expectations_path

    return load_expectations(expectations_path("torchvision"), CLAUSES, PROPERTIES, {"device": "cpu"})


def _worse_torchvision(operation: str, replacement):
    """torchvision with one operation replaced by a worse bug of the same property."""
    from detspec.conformance.adapters.torchvision_adapter import TorchvisionAdapter

    adapter = TorchvisionAdapter()
    setattr(adapter, operation, replacement.__get__(adapter))
    return GuardedImplementation(adapter)


def _class_agnostic(self, boxes, scores, classes, iou_threshold):
    """Forgets the classes altogether (one NMS over every box)."""
    return self.nms(boxes, scores, iou_threshold)


def _one_cell_too_far(self, features, rois, output_size, spatial_scale):
    """Reads one cell past every RoI's far corner."""
    from detspec.conformance.adapters.torchvision_adapter import TorchvisionAdapter

    grown = np.asarray(rois, dtype=np.float64) + np.array([0, 0, 1, 1]) / spatial_scale
    return TorchvisionAdapter.roi_pool(self, features, grown, output_size, spatial_scale)


def _nan_for_inverted(self, boxes1, boxes2):
    """NaN wherever a box is inverted (instead of the formula's value)."""
    from detspec.conformance.adapters.torchvision_adapter import TorchvisionAdapter

    result = TorchvisionAdapter.box_iou(self, boxes1, boxes2)
    a = np.asarray(boxes1)
    inverted = (a[:, 2] < a[:, 0]) | (a[:, 3] < a[:, 1])
    return np.where(inverted[:, None], np.nan, result)


@pytest.mark.parametrize(
    ("property_name", "operation", "worse"),
    [
        ("batched_nms_is_nms_within_each_class", "batched_nms", _class_agnostic),
        ("roi_pool_is_max_over_quantised_bins", "roi_pool", _one_cell_too_far),
        ("iou_rejects_invalid_boxes", "box_iou", _nan_for_inverted),
    ],
)
def test_a_worse_bug_in_the_same_property_is_not_excused_by_torchvision_s_entry(
    property_name, operation, worse
):
    pytest.importorskip("torchvision")
    from detspec.conformance.adapters.torchvision_adapter import TorchvisionAdapter

    prop = PROPERTIES[property_name]
    deviation = _torchvision_entries().for_property(prop)
    genuine = evaluate(prop, GuardedImplementation(TorchvisionAdapter()), deviation, QUICK)
    assert genuine.status == Verdict.DEVIATES, genuine.message
    worse_outcome = evaluate(prop, _worse_torchvision(operation, worse), deviation, QUICK)
    assert worse_outcome.status == Verdict.FAIL, worse_outcome.message


def _always_the_coordinate_trick(self, boxes, scores, classes, iou_threshold):
    """torchvision's batched_nms as it runs on a GPU below 100,000 coordinates: always the
    class-offset trick (simulated on the CPU)."""
    import torch
    from torchvision.ops.boxes import _batched_nms_coordinate_trick

    kept = _batched_nms_coordinate_trick(
        torch.as_tensor(boxes, dtype=torch.float32),
        torch.as_tensor(scores, dtype=torch.float32),
        torch.as_tensor(classes),
        float(iou_threshold),
    )
    return kept.numpy()


def test_the_gpu_size_switch_entry_excuses_the_trick_past_1000_boxes_and_the_cpu_entry_does_not():
    """On a GPU torchvision keeps the coordinate trick past the CPU's 4000 coordinates, so the
    1010-box side deviates too: the device=cuda entry's model says so, the CPU entry's does not."""
    pytest.importorskip("torchvision")
    from detspec.conformance.expectations import expectations_path

    prop = PROPERTIES["batched_nms_holds_on_both_sides_of_the_size_switch"]
    gpu_like = _worse_torchvision("batched_nms", _always_the_coordinate_trick)
    for device, expected in (("cuda", Verdict.DEVIATES), ("cpu", Verdict.FAIL)):
        entries = load_expectations(expectations_path("torchvision"), CLAUSES, PROPERTIES, {"device": device})
        outcome = evaluate(prop, gpu_like, entries.for_property(prop), QUICK)
        assert outcome.status == expected, (device, outcome.message)


def test_an_outcome_keeps_an_empty_expectation_and_stays_strict_json():
    """ "Expected no box kept" is an expected ``[]``, not a missing one; an infinite actual value
    is spelled as a string, so the report is still written (``allow_nan=False``)."""
    import json

    from detspec.conformance.runner import Outcome

    outcome = Outcome("p", "c", Verdict.FAIL, expected=[], actual=[1.0, float("inf")], extra={})
    data = json.loads(json.dumps(outcome.to_json(), allow_nan=False))
    assert data["expected"] == [] and data["actual"] == [1.0, "inf"] and "extra" not in data


class DeclaresContinuousButAreaIsOdd(ReferenceAdapter):
    """An area that is neither w h nor (w + 1)(h + 1): its box_width matches no value."""

    def __init__(self) -> None:
        super().__init__(Conventions(), name="odd-area")

    def box_area(self, boxes):
        return ReferenceAdapter.box_area(self, boxes) * 1.5


def test_an_answer_that_matches_no_value_of_a_convention_is_a_problem():
    from detspec.conformance.fingerprint import Observation, fingerprint, mismatches

    observations = fingerprint(GuardedImplementation(DeclaresContinuousButAreaIsOdd()))
    (wrong,) = mismatches(observations)
    assert wrong.startswith("convention box_width: declared 'continuous', the fingerprint observes no value")
    replayed = [Observation.from_json(o.convention, o.to_json()) for o in observations]
    assert mismatches(replayed) == [wrong]
