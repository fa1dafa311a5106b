"""The Fourier reference: the naive claim's counterexamples, zero coefficients, input checks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from detspec.properties import fourier as fourier_properties
from detspec.properties.interface import Conventions
from detspec.properties.strategies.images import images
from detspec.reference import fourier as ref
from hypothesis import find, given, settings
from hypothesis import strategies as st


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


def test_phase_spectrum_is_in_the_half_open_interval_and_zero_without_magnitude():
    checkerboard = (np.add.outer(np.arange(4), np.arange(6)) % 2).astype(np.float64)
    phase = ref.phase_spectrum(checkerboard)
    assert phase[2, 3] == np.pi  # -12 + 0j: a negative real coefficient
    assert np.all((phase > -np.pi) & (phase <= np.pi))
    constant = np.full((3, 5), 0.1)  # round-off coefficients of phase pi
    assert np.any(np.angle(np.fft.fft2(constant)) != 0)
    np.testing.assert_array_equal(ref.phase_spectrum(constant), np.zeros((3, 5)))
    np.testing.assert_allclose(ref.amplitude_spectrum(constant)[0, 0], 1.5)


@settings(database=None, derandomize=True, max_examples=200, deadline=None)
@given(images(), st.integers(0, 2**32 - 1))
def test_the_phase_only_tolerance_covers_every_spectrum_within_the_phase_delta(image, seed):
    """Soundness of fourier.phase-only's tolerance: a float32 implementation whose spectrum is off
    by up to δ_φ = ε max |F| anywhere (here by exactly δ_φ, in random directions) still
    reconstructs within it -- including coefficients that round to the other side of the cutoff."""
    float32 = SimpleNamespace(conventions=Conventions(dtype="float32"))
    spectrum = np.fft.fft2(image)
    delta = fourier_properties._phase_delta(float32, np.abs(spectrum))
    turn = np.exp(2j * np.pi * np.random.default_rng(seed).uniform(size=spectrum.shape))
    noisy = spectrum + delta * turn
    magnitude = np.abs(noisy)
    kept = magnitude > ref.ZERO_FRACTION * magnitude.max()
    reconstruction = np.fft.ifft2(np.where(kept, noisy / np.where(kept, magnitude, 1.0), 0.0)).real
    error = np.abs(reconstruction - ref.phase_only(image)).max()
    assert error <= fourier_properties._reconstruction_tol(float32, image)


def test_a_coefficient_at_the_cutoff_may_be_dropped_by_one_reconstruction_and_kept_by_another():
    """A 5 x 1 crop of a smooth float32 background has two coefficients at 1.00002e-4 of max |F|:
    torch.fft in float32 keeps them for the image and drops them for its roll by 2 (0.38 apart,
    14,000 times the image tolerance). The phase-only tolerance admits both."""
    image = np.array(
        [[0.2], [0.20003806054592133], [0.2000761181116104], [0.2001141756772995], [0.2001522332429886]]
    )
    float32 = SimpleNamespace(conventions=Conventions(dtype="float32"))
    spectrum = np.fft.fft2(image)
    magnitude = np.abs(spectrum)
    near = magnitude / magnitude.max()
    assert np.sum(np.abs(near - ref.ZERO_FRACTION) < 1e-8) == 2
    dropped = np.fft.ifft2(np.where(near > 1.0001e-4, spectrum / magnitude, 0.0)).real
    assert np.abs(dropped - ref.phase_only(image)).max() > 0.3
    assert np.abs(dropped - ref.phase_only(image)).max() <= fourier_properties._reconstruction_tol(
        float32, image, 2
    )
