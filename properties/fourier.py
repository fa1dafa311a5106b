"""Properties of the spectra and of phase-only and amplitude-only reconstruction
(``spec/fourier.md``)."""

from __future__ import annotations

import numpy as np
from detspec.properties.checks import check_close, check_shape, fail, tolerance
from detspec.properties.registry import Example, Matrix, Number, PairField, family, prop
from detspec.properties.strategies.images import image_examples, images, spectrum_examples
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


def _phase_delta(impl, magnitude: np.ndarray) -> float:
    """``δ_φ = ε max |F|``: how far an FFT in the declared precision may move a coefficient, as far
    as its phase is concerned -- the normwise accuracy of an FFT (float32 ``ε`` is some 170 ulp of
    ``max |F|``; numpy.fft and torch.fft are within 1 ulp, ONNX Runtime's float32 Bluestein within
    40). The values' tolerance :func:`_tol` is coarser by ``√(H W)``: with it, every coefficient
    below ``10⁻⁵ √(H W) max |F|`` -- most of a float32 spectrum -- would have no phase to check."""
    return tolerance(impl.conventions.dtype) * float(np.max(magnitude, initial=0.0))


def _reconstruction_tol(impl, image, sides: int = 1) -> float:
    """The tolerance of a phase-only reconstruction: the round-off of :func:`_tol`, plus what an
    FFT error of ``δ_φ`` (:func:`_phase_delta`) does to the unit phasors ``F / |F|`` -- the phase
    of a weak coefficient is ill-conditioned. A coefficient of magnitude ``m`` may turn its phasor
    by up to ``min(2, 2 δ_φ / m)``; one within ``2 δ_φ`` of the zero cutoff may be kept or dropped
    (1); each reaches every pixel with weight ``1 / (H W)``. ``sides``: how many of the compared
    reconstructions carry that error (2 for two outputs of the implementation)."""
    magnitude = ref.amplitude_spectrum(image)
    delta = _phase_delta(impl, magnitude)
    cutoff = ref.ZERO_FRACTION * magnitude.max()
    undecided = np.abs(magnitude - cutoff) <= 2 * delta
    kept = (magnitude > cutoff) & ~undecided
    turned = np.minimum(2.0, 2 * delta / np.where(kept, magnitude, 1.0))[kept].sum()
    return _tol(impl, image) + sides * float(turned + undecided.sum()) / magnitude.size


def _phase_classes(impl, magnitude: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``(zero, kept, δ_φ)``: the coefficients clearly below and clearly above the zero cutoff
    ``10⁻⁴ max |F|`` when the implementation's ``|F|`` may be off by ``δ_φ`` (which moves its
    cutoff by ``10⁻⁴ δ_φ``); those within ``2 δ_φ`` of the cutoff may be taken either way."""
    delta = _phase_delta(impl, magnitude)
    cutoff = ref.ZERO_FRACTION * magnitude.max()
    return magnitude < cutoff - 2 * delta, magnitude > cutoff + 2 * delta, delta


def _wrapped(angle: np.ndarray) -> np.ndarray:
    """An angle difference on the circle, in ``[-π, π)``: ``π`` and ``-π`` are one angle."""
    return np.remainder(angle + np.pi, 2 * np.pi) - np.pi


def _phase_mismatch(actual, expected, error, magnitude, allowed) -> tuple[str, float, float] | None:
    """Where ``|F| · |Δφ| > allowed`` first (``allowed`` infinite: anything goes): the phase error
    weighted by the magnitude, i.e. the distance the coefficient moved, which is what round-off
    bounds. ``(description, expected, actual)``, or ``None``."""
    with np.errstate(invalid="ignore"):
        bad = magnitude * np.abs(error) > allowed
    if not bad.any():
        return None
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    text = (
        f"first mismatch at index {list(index)}: got {float(actual[index])!r}, expected "
        f"{float(expected[index])!r} (|F| = {float(magnitude[index]):.3g}; |F| x phase error "
        f"{float(magnitude[index] * abs(error[index])):.3g} > {float(allowed[index]):.3g})"
    )
    return text, float(expected[index]), float(actual[index])


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
    "fourier.amplitude.definition",
    uses=("amplitude_spectrum",),
    given=_given_image,
    example=Image,
    examples=lambda _c: spectrum_examples(),
)
def amplitude_spectrum_matches_definition(impl, image):
    """The amplitude spectrum is |F|, within the spectrum's tolerance (that of fft2)."""
    expected = ref.amplitude_spectrum(image)
    check_close(
        impl.amplitude_spectrum(image),
        expected,
        _tol(impl, expected),
        "amplitude_spectrum",
        "amplitude-spectrum.value",
    )


@prop(
    "fourier.phase.definition",
    uses=("phase_spectrum",),
    given=_given_image,
    example=Image,
    examples=lambda _c: spectrum_examples(),
)
def phase_spectrum_matches_definition(impl, image):
    """The phase spectrum is arg F in (-π, π] (-π is accepted: the same angle), and exactly 0 where
    |F| <= 10⁻⁴ max |F|. A coefficient's phase is held to its magnitude: moved by δ_φ = ε max |F|,
    F turns by at most (π/2) δ_φ / |F|, so |F| times the phase error must stay below (π/2) δ_φ;
    within 2 δ_φ of the cutoff either answer goes."""
    actual = np.asarray(impl.phase_spectrum(image), dtype=np.float64)
    expected = ref.phase_spectrum(image)
    check_shape(actual, expected.shape, "phase_spectrum", "phase-spectrum.shape")
    eps = tolerance(impl.conventions.dtype)
    outside = ~(np.abs(actual) <= np.pi * (1 + eps))
    if outside.any():
        index = tuple(int(i) for i in np.argwhere(outside)[0])
        fail(
            "phase-spectrum.range",
            f"phase_spectrum: {float(actual[index])!r} at index {list(index)} is not an angle in (-π, π]",
            "(-π, π]",
            float(actual[index]),
        )
    magnitude = ref.amplitude_spectrum(image)
    zero, kept, delta = _phase_classes(impl, magnitude)
    check_close(
        np.where(zero, actual, 0.0),
        np.zeros_like(actual),
        eps * np.pi,
        "phase_spectrum where |F| is numerically zero (<= 1e-4 max |F|)",
        "phase-spectrum.zero",
    )
    # where the implementation keeps a coefficient its phase is arg F, near the cutoff too
    error = _wrapped(actual - np.angle(np.fft.fft2(image)))
    either = ~zero & ~kept & (np.abs(actual) <= eps * np.pi)  # near the cutoff: dropped, phase 0
    allowed = np.where(kept | ~either, np.pi / 2 * delta + eps * np.pi * magnitude, np.inf)
    allowed[zero] = np.inf
    mismatch = _phase_mismatch(actual, expected, error, magnitude, allowed)
    if mismatch:
        fail("phase-spectrum.value", f"phase_spectrum: {mismatch[0]}", *mismatch[1:])


@prop(
    "fourier.spectra.shift",
    uses=("amplitude_spectrum", "phase_spectrum"),
    given=lambda _c: _image_and_shift(),
    example=ShiftedImage,
    examples=lambda _c: [{"image": np.arange(12.0).reshape(3, 4) / 16, "shift": (1.0, 3.0)}],
)
def spectra_follow_a_circular_shift(impl, image, shift):
    """Rolling the image by (dy, dx) leaves the amplitude spectrum unchanged and moves the phase
    by the ramp -2π (k dy/H + l dx/W) (mod 2π), wherever the phase is defined."""
    rolled = _roll(image, shift)
    magnitude = ref.amplitude_spectrum(image)
    _, kept, delta = _phase_classes(impl, magnitude)
    check_close(
        impl.amplitude_spectrum(rolled),
        impl.amplitude_spectrum(image),
        2 * _tol(impl, magnitude),
        "amplitude_spectrum after a circular shift",
        "amplitude-spectrum.shift",
    )
    before = np.asarray(impl.phase_spectrum(image), dtype=np.float64)
    after = np.asarray(impl.phase_spectrum(rolled), dtype=np.float64)
    height, width = image.shape
    k, m = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    expected = before - 2 * np.pi * (k * shift[0] / height + m * shift[1] / width)
    eps = tolerance(impl.conventions.dtype)
    allowed = np.where(kept, np.pi * delta + 2 * eps * np.pi * magnitude, np.inf)
    mismatch = _phase_mismatch(after, _wrapped(expected), _wrapped(after - expected), magnitude, allowed)
    if mismatch:
        fail(
            "phase-spectrum.shift-ramp",
            f"phase_spectrum after a circular shift vs the phase before plus the ramp: {mismatch[0]}",
            *mismatch[1:],
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
        impl.phase_only(image),
        ref.phase_only(image),
        _reconstruction_tol(impl, image),
        "phase_only",
        "phase-only.value",
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
    """Phase-only reconstruction of a rolled image is the rolled reconstruction (both within the
    reconstruction's tolerance, which grows where a weak coefficient's phase is ill-conditioned)."""
    expected = _roll(impl.phase_only(image), shift)
    check_close(
        impl.phase_only(_roll(image, shift)),
        expected,
        _reconstruction_tol(impl, image, sides=2),
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
        _reconstruction_tol(impl, image, sides=2),
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
