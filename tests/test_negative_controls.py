"""Every property can fail: each one catches its deliberately broken implementation."""

from __future__ import annotations

import pytest
from detspec.conformance.guard import GuardedImplementation
from detspec.conformance.runner import run_property
from detspec.properties.registry import all_properties
from hypothesis import Phase, settings

from tests.negative_controls import CONTROLS

PROPERTIES = {p.name: p for p in all_properties()}
#: Deterministic and database-free: a control must be caught by the search itself, every time.
#: No shrinking: a control only has to be caught, not minimised.
SEARCH = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),
)


def test_every_property_has_a_negative_control():
    missing = sorted(set(PROPERTIES) - set(CONTROLS))
    unknown = sorted(set(CONTROLS) - set(PROPERTIES))
    assert not missing, f"properties without a negative control: {missing}"
    assert not unknown, f"controls for unknown properties: {unknown}"


@pytest.mark.parametrize("name", sorted(CONTROLS))
def test_property_catches_its_broken_implementation(name):
    broken = GuardedImplementation(CONTROLS[name](), timeout_s=10)
    outcome = run_property(PROPERTIES[name], broken, SEARCH)
    assert outcome.status == "fail", (
        f"{name} did not catch {CONTROLS[name].__name__}: {outcome.status}, {outcome.examples} examples"
    )
    assert outcome.minimal_input is not None and outcome.message
    # caught for the reason the property states, not by an incidental crash of the control
    assert outcome.code not in {"impl.raised", "impl.crashed", "impl.hung", "property.error"}, outcome.message
