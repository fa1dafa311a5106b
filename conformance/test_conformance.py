"""Run every property against the implementation chosen with ``--impl``.

One test per property. Verdicts: ``pass``; ``fail`` (a counterexample, shrunk); ``deviates``
(a documented deviation whose witness still reproduces: xfail); ``xpass`` (a documented deviation
that no longer reproduces: an error); ``not-provided`` and ``skip`` (not applicable under the
declared conventions): skipped.
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
from detspec.conformance.runner import evaluate
from detspec.properties.registry import all_properties
from hypothesis import settings

PROPERTIES = all_properties()


def _describe(outcome) -> str:
    lines = [f"[{outcome.clause}] {outcome.property}: {outcome.message}"]
    if outcome.minimal_input is not None:
        lines.append(f"minimal input: {json.dumps(outcome.minimal_input)}")
    if outcome.expected is not None or outcome.actual is not None:
        lines.append(f"expected {outcome.expected!r}, actual {outcome.actual!r}")
    if outcome.reason:
        lines.append(f"documented deviation: {outcome.reason}")
    return "\n".join(lines)


@pytest.mark.parametrize("prop", PROPERTIES, ids=[f"{p.clause}:{p.name}" for p in PROPERTIES])
def test_property(prop, conformance, record_outcome):
    impl = conformance.impl
    outcome = evaluate(
        prop,
        impl,
        conformance.expectations.for_property(prop),
        settings.default,
        settings.default.database,
        None if isinstance(conformance.seed, str) else conformance.seed,
    )
    if outcome.status in ("fail", "deviates") and outcome.minimal_input:
        try:
            picture = counterexample_picture(impl, prop.from_jsonable(outcome.minimal_input))
        except Exception as error:  # a picture is a courtesy: never let it change the verdict
            picture = {"title": "Counterexample", "caption": f"not drawn: {error}", "svg": ""}
        if picture:
            outcome.extra["picture"] = picture
    record_outcome(outcome.to_json())
    if outcome.status in ("not-provided", "skip"):
        pytest.skip(f"{outcome.status}: {outcome.message}")
    if outcome.status == "deviates":
        pytest.xfail(_describe(outcome))
    if outcome.status != "pass":
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


def test_expectations_are_consistent(conformance, record_problems):
    """An unknown clause or property, a malformed witness or a duplicate entry is an error."""
    problems = conformance.expectations.problems
    record_problems(problems)
    assert not problems, "expectations file problems:\n" + "\n".join(problems)
