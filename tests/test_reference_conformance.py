"""The reference satisfies every property, under the default and the legacy conventions.

The same searches run in full in the main job (``make matrix``: the reference and
reference-legacy reports); here each property gets a quick search (25 examples) unless the
profile is the nightly ``thorough`` one."""

from __future__ import annotations

import pytest
from detspec.conformance.adapters.reference_adapter import reference, reference_legacy
from detspec.conformance.guard import GuardedImplementation
from detspec.conformance.runner import run_property
from detspec.properties.registry import all_properties
from hypothesis import settings

PROPERTIES = all_properties()


def _quick() -> settings:
    profile = settings.default
    return profile if profile.max_examples > 100 else settings(profile, max_examples=25)


@pytest.mark.parametrize("factory", [reference, reference_legacy], ids=["continuous", "legacy"])
@pytest.mark.parametrize("prop", PROPERTIES, ids=[p.name for p in PROPERTIES])
def test_reference_satisfies_property(prop, factory):
    outcome = run_property(prop, GuardedImplementation(factory()), _quick())
    backbones_only = set(prop.uses) <= {"backbone_layers", "backbone_receptive_field_support"}
    expected = ("pass", "skip", "not-provided") if backbones_only else ("pass", "skip")
    assert outcome.status in expected, (
        f"{outcome.status}: {outcome.message}\nminimal input: {outcome.minimal_input}"
    )
