"""Run every property against the implementation chosen with ``--detspec-impl``.

One test per property. Verdicts (``conformance/verdicts.py``): ``pass``; ``fail`` (a
counterexample, shrunk) and ``error`` (the property could not finish) and ``xpass`` (a documented
deviation that no longer reproduces) fail the test; ``deviates`` (a documented deviation, and
nothing beyond it) is an xfail; ``not-provided``, ``unsupported`` and ``skip`` are skipped.
"""

from __future__ import annotations

import json

import pytest
from detspec.conformance.figures import (
    anchors_and_receptive_field,
    counterexample_picture,
    fourier_reconstructions,
    proposal_stages,
    roi_align_grid,
)
from detspec.conformance.fingerprint import fingerprint, mismatches
from detspec.conformance.report import clip
from detspec.conformance.repro import repro
from detspec.conformance.runner import UnreadableInput, evaluate, replay_input
from detspec.conformance.verdicts import Verdict
from detspec.properties.registry import all_properties
from hypothesis import settings

PROPERTIES = all_properties()


def _describe(outcome) -> str:
    """What the terminal shows; long messages and inputs are clipped (the report keeps them whole)."""
    lines = [f"[{outcome.clause}] {outcome.property} [{outcome.code or '-'}]: {clip(outcome.message or '')}"]
    if outcome.minimal_input is not None:
        lines.append(f"minimal input: {clip(json.dumps(outcome.minimal_input))}")
    if outcome.expected is not None or outcome.actual is not None:
        lines.append(f"expected {clip(repr(outcome.expected))}, actual {clip(repr(outcome.actual))}")
    if outcome.reason:
        lines.append(f"documented deviation: {outcome.reason}")
    return "\n".join(lines)


@pytest.mark.parametrize("prop", PROPERTIES, ids=[f"{p.clause}:{p.name}" for p in PROPERTIES])
def test_property(prop, conformance, record_outcome):
    impl = conformance.impl
    deviation = conformance.expectations.for_property(prop)
    if conformance.replay_input is not None:  # --detspec-input: this one input, once
        try:
            outcome = replay_input(prop, impl, conformance.replay_input, deviation)
        except UnreadableInput as error:
            pytest.skip(f"--detspec-input is {error}")
    else:
        outcome = evaluate(
            prop,
            impl,
            deviation,
            settings.default,
            settings.default.database,
            None if isinstance(conformance.seed, str) else conformance.seed,
        )
    if outcome.status in (Verdict.FAIL, Verdict.DEVIATES) and outcome.minimal_input:
        example = prop.from_jsonable(outcome.minimal_input)
        try:  # a picture and a snippet are a courtesy: never let them change the verdict
            picture = counterexample_picture(impl, example.fields())
        except Exception as error:
            picture = {"title": "Counterexample", "caption": f"not drawn: {error}", "svg": ""}
        if picture:
            outcome.extra["picture"] = picture
        try:
            operation = deviation.model.operation if deviation and deviation.model else None
            outcome.extra["repro"] = repro(impl, prop, example, operation)
        except Exception as error:
            outcome.extra["repro"] = {"snippet": f"# not written: {type(error).__name__}: {error}"}
    record_outcome(outcome)
    if outcome.status in (Verdict.NOT_PROVIDED, Verdict.UNSUPPORTED, Verdict.SKIP):
        pytest.skip(f"{outcome.status}: {outcome.message}")
    if outcome.status == Verdict.DEVIATES:
        pytest.xfail(_describe(outcome))
    if outcome.status != Verdict.PASS:
        pytest.fail(f"{outcome.status.upper()} {impl.name} {_describe(outcome)}", pytrace=False)


FIGURES = (
    (("grid_anchors",), anchors_and_receptive_field),
    (("generate_proposals",), proposal_stages),
    (("phase_only", "amplitude_only", "hybrid"), fourier_reconstructions),
    (("roi_align", "roi_pool"), roi_align_grid),
)


def test_figures(conformance, record_figure):
    """Pictures for the report, drawn from the implementation's own output where it has one. A
    figure is a courtesy: an adapter that fails while one is drawn gets a note in its place (its
    clauses report the failure), never a failed run."""
    impl = conformance.impl
    drawable = [(ops, draw) for ops, draw in FIGURES if all(impl.provides(op) for op in ops)]
    if not drawable:
        pytest.skip("not-provided: the operations the figures draw")
    for _, draw in drawable:
        try:
            record_figure(draw(impl))
        except Exception as error:
            record_figure(
                {
                    "title": draw.__name__.replace("_", " "),
                    "svg": "",
                    "caption": f"not drawn: {type(error).__name__}: {error}",
                }
            )


def test_declared_conventions_match_the_fingerprint(conformance, record_fingerprint):
    """Each declared convention against the value a few discriminating calls observe
    (``conformance/fingerprint.py``); a mismatch is a problem of the run."""
    observations = fingerprint(conformance.impl)
    record_fingerprint({o.convention: o.to_json() for o in observations})
    wrong = mismatches(observations)
    assert not wrong, "declared conventions the implementation does not follow:\n" + "\n".join(wrong)


def test_expectations_are_consistent(conformance):
    """An unknown clause, property or model, a malformed witness or a duplicate entry is an error
    (the report lists them and fails the run even when this test is deselected)."""
    problems = conformance.expectations.problems
    assert not problems, "expectations file problems:\n" + "\n".join(problems)
