"""Properties of phase-only and amplitude-only reconstruction (``spec/fourier.md``)."""

from __future__ import annotations

import numpy as np
from detspec.properties.checks import check_close, fail, tolerance
from detspec.properties.registry import Example, Matrix, Number, PairField, family, prop
from detspec.properties.strategies.images import image_examples, images
from detspec.reference import fourier as ref
from hypothesis import strategies as st


@family
class Image(Example):
    image: Matrix


@family
class ShiftedImage(Example):
    image: Matrix
    shift: PairField


@family
class ScaledImage(Example):
    image: Matrix
    factor: Number


@family
class FamilyThreshold(Example):
    """The rate a statistical clause is held to on its declared, seeded family of images."""

    threshold: Number


#: The declared family of the statistical clauses: 400 shape images of 32 x 32, seed 0.
FAMILY_SEED, FAMILY_SIZE = 0, 400


def _given_image(_conventions):
    return images().map(lambda image: {"image": image})


def _tol(impl, *arrays) -> float:
    """FFT round-off grows with the magnitude of the data and (slowly) with its size."""
    scale = max((float(np.max(np.abs(a))) for a in arrays if np.size(a)), default=1.0)
    size = max(np.size(a) for a in arrays)
    return tolerance(impl.conventions.dtype) * (1.0 + scale) * np.sqrt(size)


def _spectrum(impl, image) -> np.ndarray:
    return impl.fft2(image)


@prop(
    "fourier.fft.definition",
    uses=("fft2",),
    given=_given_image,
    example=Image,
    examples=lambda _c: image_examples(),
)
def fft_matches_the_dft_sum(impl, image):
    """fft2 equals the DFT sum F[k, l] = Σ x[m, n] exp(-2πi (km/H + ln/W))."""
    height, width = image.shape
    rows = np.exp(-2j * np.pi * np.outer(np.arange(height), np.arange(height)) / height)
    cols = np.exp(-2j * np.pi * np.outer(np.arange(width), np.arange(width)) / width)
    expected = rows @ image @ cols.T
    actual = _spectrum(impl, image)
    tol = _tol(impl, expected)
    check_close(actual.real, expected.real, tol, "fft2 (real part)", "fft.value")
    check_close(actual.imag, expected.imag, tol, "fft2 (imaginary part)", "fft.value")


@st.composite
def _image_and_shift(draw):
    image = draw(images())
    return {
        "image": image,
        "shift": (
            float(draw(st.integers(0, image.shape[0] - 1))),
            float(draw(st.integers(0, image.shape[1] - 1))),
        ),
    }


def _roll(image, shift):
    return np.roll(image, (int(shift[0]), int(shift[1])), axis=(0, 1))


@prop("fourier.shift.phase-ramp", uses=("fft2",), given=lambda _c: _image_and_shift(), example=ShiftedImage)
def circular_shift_multiplies_spectrum_by_a_phase_ramp(impl, image, shift):
    """Rolling by (dy, dx) multiplies F by exp(-2πi (k dy/H + l dx/W)): the amplitude is unchanged
    and the phase moves by a linear ramp ("where it starts")."""
    height, width = image.shape
    k, m = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    ramp = np.exp(-2j * np.pi * (k * shift[0] / height + m * shift[1] / width))
    before, after = _spectrum(impl, image), _spectrum(impl, _roll(image, shift))
    tol = _tol(impl, before)
    check_close(np.abs(after), np.abs(before), tol, "amplitude after a circular shift", "fft.shift-amplitude")
    expected = before * ramp
    check_close(after.real, expected.real, tol, "spectrum after a shift vs ramp (real)", "fft.shift-ramp")
    check_close(
        after.imag, expected.imag, tol, "spectrum after a shift vs ramp (imaginary)", "fft.shift-ramp"
    )


@prop("fourier.hermitian", uses=("fft2",), given=_given_image, example=Image)
def spectrum_of_a_real_image_is_hermitian(impl, image):
    """F[-k, -l] = conj(F[k, l]): so F/|F| and |F| are Hermitian too and both reconstructions
    are real images (the imaginary part of their inverse transform is zero)."""
    spectrum = _spectrum(impl, image)
    mirrored = np.conj(np.roll(np.flip(spectrum, axis=(0, 1)), (1, 1), axis=(0, 1)))
    tol = _tol(impl, spectrum)
    check_close(mirrored.real, spectrum.real, tol, "conj(F[-k, -l]) vs F[k, l] (real)", "fft.not-hermitian")
    check_close(
        mirrored.imag, spectrum.imag, tol, "conj(F[-k, -l]) vs F[k, l] (imaginary)", "fft.not-hermitian"
    )


@prop(
    "fourier.phase-only.definition",
    uses=("phase_only",),
    given=_given_image,
    example=Image,
    examples=lambda _c: image_examples(),
)
def phase_only_matches_definition(impl, image):
    """real(ifft2(F/|F|)), with numerically zero coefficients set to 0 (a constant image gives
    the constant 1/(H W))."""
    check_close(
        impl.phase_only(image), ref.phase_only(image), _tol(impl, image), "phase_only", "phase-only.value"
    )


@prop(
    "fourier.amplitude-only.definition",
    uses=("amplitude_only",),
    given=_given_image,
    example=Image,
    examples=lambda _c: image_examples(),
)
def amplitude_only_matches_definition(impl, image):
    """real(ifft2(|F|))."""
    expected = ref.amplitude_only(image)
    check_close(
        impl.amplitude_only(image), expected, _tol(impl, expected), "amplitude_only", "amplitude-only.value"
    )


@prop(
    "fourier.amplitude-only.shift-invariant",
    uses=("amplitude_only",),
    given=lambda _c: _image_and_shift(),
    example=ShiftedImage,
)
def amplitude_only_forgets_position(impl, image, shift):
    """Amplitude-only reconstruction does not change when the image is rolled: it cannot know
    where anything is."""
    before = impl.amplitude_only(image)
    after = impl.amplitude_only(_roll(image, shift))
    check_close(
        after, before, _tol(impl, before), "amplitude_only after a circular shift", "amplitude-only.shift"
    )


@prop(
    "fourier.phase-only.equivariant",
    uses=("phase_only",),
    given=lambda _c: _image_and_shift(),
    example=ShiftedImage,
)
def phase_only_moves_with_the_image(impl, image, shift):
    """Phase-only reconstruction of a rolled image is the rolled reconstruction."""
    expected = _roll(impl.phase_only(image), shift)
    check_close(
        impl.phase_only(_roll(image, shift)),
        expected,
        _tol(impl, image),
        "phase_only after a circular shift",
        "phase-only.equivariance",
    )


@prop("fourier.phase-only.idempotent", uses=("phase_only",), given=_given_image, example=Image)
def phase_only_is_idempotent(impl, image):
    """Phase-only of a phase-only reconstruction is itself."""
    once = impl.phase_only(image)
    check_close(
        impl.phase_only(once), once, _tol(impl, image), "phase_only twice", "phase-only.not-idempotent"
    )


@prop(
    "fourier.phase-only.scale-invariant",
    uses=("phase_only",),
    given=lambda _c: st.tuples(images(), st.integers(-6, 6)).map(
        lambda t: {"image": t[0], "factor": 2.0 ** t[1]}
    ),
    example=ScaledImage,
)
def phase_only_ignores_contrast(impl, image, factor):
    """Multiplying the image by c > 0 leaves its phase-only reconstruction unchanged."""
    before = impl.phase_only(image)
    check_close(
        impl.phase_only(image * factor),
        before,
        _tol(impl, image),
        "phase_only of c x image",
        "phase-only.contrast",
    )


@st.composite
def _image_for_edges(draw):
    side = st.integers(2, 8)
    return {"image": draw(images((draw(side), draw(side))))}


@prop(
    "fourier.edges.translation-average",
    uses=("phase_only", "amplitude_only"),
    given=lambda _c: _image_for_edges(),
    example=Image,
)
def amplitude_only_edges_average_to_nothing(impl, image):
    """Over all circular translations of an image, the edge agreement of amplitude-only
    reconstruction averages to exactly 0, while phase-only's is the same for every translation."""
    height, width = image.shape
    amplitude, phase = [], []
    for dy in range(height):
        for dx in range(width):
            moved = _roll(image, (dy, dx))
            amplitude.append(ref.edge_agreement(moved, impl.amplitude_only(moved)))
            phase.append(ref.edge_agreement(moved, impl.phase_only(moved)))
    tol = 1e3 * tolerance(impl.conventions.dtype)
    if abs(np.mean(amplitude)) > tol:
        fail(
            "edges.amplitude-only-average",
            "the mean edge agreement of amplitude-only reconstruction over all translations is "
            f"{np.mean(amplitude):.3g}, not 0",
            0.0,
            float(np.mean(amplitude)),
        )
    check_close(
        np.asarray(phase),
        np.full(len(phase), phase[0]),
        tol,
        "phase-only edge agreement across translations",
        "edges.phase-only-translation",
    )


def _family(count: int = FAMILY_SIZE):
    rng = np.random.default_rng(FAMILY_SEED)
    return [ref.shapes_image(rng) for _ in range(count)]


@prop(
    "fourier.edges.family",
    uses=("phase_only", "amplitude_only"),
    given=lambda _c: st.just({"threshold": 0.95}),
    example=FamilyThreshold,
)
def phase_only_keeps_edges_on_the_shapes_family(impl, threshold):
    """On the declared family (400 shape images, seed 0), phase-only reconstruction agrees with
    the image's edges better than amplitude-only in at least 95 % of the images (the reference
    measures 397 / 400)."""
    wins = [
        ref.edge_agreement(x, impl.phase_only(x)) > ref.edge_agreement(x, impl.amplitude_only(x))
        for x in _family()
    ]
    rate = float(np.mean(wins))
    if rate < threshold:
        fail(
            "edges.family-rate",
            f"phase-only beats amplitude-only on {rate:.1%} of the family, below {threshold:.0%}",
            threshold,
            rate,
        )


@prop(
    "fourier.hybrid",
    uses=("hybrid",),
    given=lambda _c: st.just({"threshold": 0.95}),
    example=FamilyThreshold,
)
def hybrid_looks_like_its_phase_donor(impl, threshold):
    """On the declared family (200 pairs, both ways), the hybrid's edges agree more with its
    phase donor than with its amplitude donor in at least 95 % of cases (reference: 400 / 400)."""
    family = _family()
    wins = []
    for a, b in zip(family[::2], family[1::2], strict=True):
        for phase_donor, amplitude_donor in ((a, b), (b, a)):
            mixed = impl.hybrid(phase_donor, amplitude_donor)
            wins.append(ref.edge_agreement(phase_donor, mixed) > ref.edge_agreement(amplitude_donor, mixed))
    rate = float(np.mean(wins))
    if rate < threshold:
        fail(
            "hybrid.rate",
            f"the hybrid resembles its phase donor in {rate:.1%} of the pairs, below {threshold:.0%}",
            threshold,
            rate,
        )
