"""Run every property against the implementation chosen with ``--impl``.

One test per property. Verdicts: ``pass``; ``fail`` (a counterexample, shrunk); ``deviates``
(a documented deviation whose witness still reproduces: xfail); ``xpass`` (a documented deviation
that no longer reproduces: an error); ``not-provided`` and ``skip`` (not applicable under the
declared conventions): skipped.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import settings

from conformance.figures import (
    anchors_and_receptive_field,
    fourier_reconstructions,
    matching_counterexample,
    proposal_stages,
)
from conformance.runner import evaluate
from properties.registry import all_properties

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
    if outcome.status in ("fail", "deviates") and outcome.minimal_input and impl.provides("match_anchors"):
        try:
            picture = matching_counterexample(impl, prop.from_jsonable(outcome.minimal_input))
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


def test_figures(conformance, record_figure):
    """Pictures for the report, drawn from the implementation's own output where it has one."""
    impl = conformance.impl
    drawn = 0
    if impl.provides("grid_anchors"):
        record_figure(anchors_and_receptive_field(impl))
        drawn += 1
    if impl.provides("generate_proposals"):
        record_figure(proposal_stages(impl))
        drawn += 1
    if all(impl.provides(op) for op in ("phase_only", "amplitude_only", "hybrid")):
        record_figure(fourier_reconstructions(impl))
        drawn += 1
    if not drawn:
        pytest.skip("not-provided: the operations the figures draw")


def test_expectations_are_consistent(conformance, record_problems):
    """An unknown clause or property, a malformed witness or a duplicate entry is an error."""
    problems = conformance.expectations.problems
    record_problems(problems)
    assert not problems, "expectations file problems:\n" + "\n".join(problems)
