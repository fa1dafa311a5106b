"""Phase-only, amplitude-only and hybrid reconstructions: the executable form of
``spec/fourier.md`` (seed §1).

``F = fft2(x)`` for a real 2-D image ``x`` (any size, float32 or float64). The amplitude spectrum
is ``|F|``, the phase spectrum ``arg F`` in ``(-π, π]`` (the unit phasor ``F / |F|``):

* phase-only:      ``real(ifft2(F / |F|))``  -- unit magnitude, the original phase;
* amplitude-only:  ``real(ifft2(|F|))``      -- the original magnitude, zero phase;
* hybrid(a, b):    ``real(ifft2(|F_b| · F_a / |F_a|))`` -- phase of ``a``, amplitude of ``b``.

Where ``|F|`` is numerically zero -- at most ``ZERO_FRACTION`` of the largest ``|F|`` -- the
phase is undefined and the coefficient is set to 0 (no energy is invented). Source: Oppenheim &
Lim, "The importance of phase in signals", Proc. IEEE 69(5), 1981.
"""

from __future__ import annotations

import numpy as np
from detspec.reference.validation import check_real_array

#: Coefficients with ``|F| <= ZERO_FRACTION * max |F|`` have no phase (clause ``fourier.zero``).
ZERO_FRACTION = 1e-4


def check_image(image, name: str = "image") -> np.ndarray:
    """A finite, real, non-empty 2-D array, kept in float32 or float64."""
    array = np.asarray(image)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name}: expected a non-empty 2-D array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name}: expected real numbers, got dtype {array.dtype}")
    array = array.astype(np.float32 if array.dtype == np.float32 else np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"{name}: NaN or inf at index {tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])}"
        )
    return array


def unit_phase(spectrum: np.ndarray) -> np.ndarray:
    """``F / |F|``, and 0 where ``|F|`` is numerically zero."""
    magnitude = np.abs(spectrum)
    kept = magnitude > ZERO_FRACTION * magnitude.max()
    return np.where(kept, spectrum / np.where(kept, magnitude, 1.0), 0.0)


def fft2(image) -> np.ndarray:
    """``(H, W, 2)``: real and imaginary parts of the 2-D DFT (NumPy's sign and scaling)."""
    spectrum = np.fft.fft2(check_image(image))
    return np.stack([spectrum.real, spectrum.imag], axis=-1)


def amplitude_spectrum(image) -> np.ndarray:
    """``(H, W)`` float64: ``|F|`` (clause ``fourier.amplitude.definition``)."""
    return np.abs(np.fft.fft2(check_image(image).astype(np.float64)))


def phase_spectrum(image) -> np.ndarray:
    """``(H, W)`` float64: ``arg F`` in ``(-π, π]``, and 0 where ``|F|`` is numerically zero, as
    :func:`unit_phase` (clause ``fourier.phase.definition``). A negative real coefficient has
    phase ``π`` (``atan2`` gives ``-π`` when its imaginary part is ``-0.0``)."""
    phase = np.angle(unit_phase(np.fft.fft2(check_image(image).astype(np.float64))))
    return np.where(phase <= -np.pi, np.pi, phase)


def _real_inverse(spectrum: np.ndarray, dtype) -> np.ndarray:
    return np.fft.ifft2(spectrum).real.astype(dtype)


def phase_only(image) -> np.ndarray:
    """The image rebuilt from its phase alone (clause ``fourier.phase-only.*``)."""
    image = check_image(image)
    return _real_inverse(unit_phase(np.fft.fft2(image)), image.dtype)


def amplitude_only(image) -> np.ndarray:
    """The image rebuilt from its amplitude alone (clause ``fourier.amplitude-only.*``)."""
    image = check_image(image)
    return _real_inverse(np.abs(np.fft.fft2(image)), image.dtype)


def hybrid(phase_donor, amplitude_donor) -> np.ndarray:
    """Phase of ``phase_donor`` with the amplitude of ``amplitude_donor`` (clause ``fourier.hybrid``)."""
    phase_donor = check_image(phase_donor, "phase_donor")
    amplitude_donor = check_image(amplitude_donor, "amplitude_donor")
    if phase_donor.shape != amplitude_donor.shape:
        raise ValueError(f"donors differ in shape: {phase_donor.shape} and {amplitude_donor.shape}")
    spectrum = np.abs(np.fft.fft2(amplitude_donor)) * unit_phase(np.fft.fft2(phase_donor))
    return _real_inverse(spectrum, phase_donor.dtype)


def edge_map(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude with circular central differences (the FFT's own boundary)."""
    image = check_image(image).astype(np.float64, copy=False)
    dx = (np.roll(image, -1, axis=1) - np.roll(image, 1, axis=1)) / 2
    dy = (np.roll(image, -1, axis=0) - np.roll(image, 1, axis=0)) / 2
    return np.hypot(dx, dy)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two real arrays of one size; 0 when either side is constant (it
    then says nothing)."""
    a = check_real_array(a, "a").astype(np.float64, copy=False).ravel()
    b = check_real_array(b, "b").astype(np.float64, copy=False).ravel()
    if a.size != b.size:
        raise ValueError(f"a and b must have one size, got {a.size} and {b.size}")
    a, b = a - np.mean(a), b - np.mean(b)
    scale = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.sum(a * b) / scale) if scale > 1e-12 else 0.0


def edge_agreement(image: np.ndarray, reconstruction: np.ndarray) -> float:
    """The edge metric of ``fourier.edges``: correlation of the two edge maps."""
    return correlation(edge_map(image), edge_map(reconstruction))


def shapes_image(rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A natural-looking test image built from shapes (nothing is downloaded): a smooth
    background and a few filled rectangles, discs and triangles of random grey levels."""
    ys, xs = np.mgrid[0:size, 0:size] / size
    image = 0.2 + 0.2 * rng.uniform() * xs + 0.2 * rng.uniform() * ys
    for _ in range(rng.integers(2, 6)):
        kind = rng.integers(3)
        cx, cy, r = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85), rng.uniform(0.08, 0.3)
        if kind == 0:
            mask = (np.abs(xs - cx) < r) & (np.abs(ys - cy) < r * rng.uniform(0.4, 1.0))
        elif kind == 1:
            mask = (xs - cx) ** 2 + (ys - cy) ** 2 < r * r
        else:
            mask = (ys > cy - r) & (ys - (cy - r) > 2 * np.abs(xs - cx))
            mask &= ys < cy + r
        image = np.where(mask, rng.uniform(0.0, 1.0), image)
    return image
