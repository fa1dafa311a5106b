"""The Fourier reference: the naive claim's counterexamples, zero coefficients, input checks."""

from __future__ import annotations

import numpy as np
import pytest
from detspec.properties.strategies.images import images
from detspec.reference import fourier as ref
from hypothesis import find, settings


def test_hypothesis_refutes_phase_only_always_keeping_edges_better():
    """The naive clause fails: Hypothesis finds an image where amplitude-only does as well."""
    counterexample = find(
        images(),
        lambda x: ref.edge_agreement(x, ref.phase_only(x)) <= ref.edge_agreement(x, ref.amplitude_only(x)),
        settings=settings(database=None, derandomize=True, max_examples=500),
    )
    assert counterexample.size >= 1


def test_centred_gaussian_is_rebuilt_exactly_by_its_amplitude():
    y, x = np.mgrid[0:16, 0:16]
    gaussian = np.exp(-((np.minimum(x, 16 - x)) ** 2 + (np.minimum(y, 16 - y)) ** 2) / 8)
    assert ref.edge_agreement(gaussian, ref.amplitude_only(gaussian)) > 0.999
    assert ref.edge_agreement(gaussian, ref.phase_only(gaussian)) < 0.7


def test_constant_image_has_a_flat_phase_only_reconstruction():
    np.testing.assert_allclose(ref.phase_only(np.full((3, 5), 7.0)), np.full((3, 5), 1 / 15))


def test_float32_stays_float32():
    image = np.random.default_rng(0).uniform(size=(5, 7)).astype(np.float32)
    assert ref.phase_only(image).dtype == np.float32 and ref.amplitude_only(image).dtype == np.float32


def test_family_rates_stated_in_the_spec():
    rng = np.random.default_rng(0)
    family = [ref.shapes_image(rng) for _ in range(400)]
    wins = sum(
        ref.edge_agreement(x, ref.phase_only(x)) > ref.edge_agreement(x, ref.amplitude_only(x))
        for x in family
    )
    assert wins == 397


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ref.phase_only(np.zeros(4)), r"expected a non-empty 2-D array, got shape \(4,\)"),
        (lambda: ref.phase_only(np.zeros((0, 3))), "non-empty 2-D array"),
        (lambda: ref.amplitude_only(np.array([[1.0, np.nan]])), r"NaN or inf at index \(0, 1\)"),
        (lambda: ref.phase_only(np.array([[1 + 1j]])), "expected real numbers"),
        (lambda: ref.hybrid(np.zeros((2, 2)), np.zeros((3, 3))), "donors differ in shape"),
    ],
)
def test_invalid_images_are_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()
