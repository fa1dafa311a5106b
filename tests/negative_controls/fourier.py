"""Negative controls of the Fourier area (``spec/fourier.md``)."""

from __future__ import annotations

import numpy as np
from detspec.reference import fourier as ref_fourier

from tests.negative_controls.base import Control


class FftWithoutMinusSign(Control):
    """The DFT with exp(+2πi ...): the inverse transform's kernel, unscaled."""

    def fft2(self, image):
        return np.conj(np.fft.fft2(np.asarray(image, float)))


class FftWithNoisyImaginaryPart(Control):
    """Adds a small non-Hermitian imaginary part to the spectrum (a complex input treated as real)."""

    def fft2(self, image):
        spectrum = np.fft.fft2(np.asarray(image, float))
        spectrum = spectrum + 1e-3j * np.abs(spectrum).max() * (
            np.arange(spectrum.size).reshape(spectrum.shape) % 3 == 1
        )
        return spectrum


class PhaseOnlyAddsEnergyAtZeros(Control):
    """Gives coefficients with no phase unit magnitude (phase 0) instead of 0."""

    def phase_only(self, image):
        spectrum = np.fft.fft2(np.asarray(image, float))
        magnitude = np.abs(spectrum)
        unit = np.where(magnitude > 1e-4 * magnitude.max(), spectrum / np.maximum(magnitude, 1e-300), 1.0)
        return np.fft.ifft2(unit).real


class AmplitudeOnlyKeepsSign(Control):
    """Keeps the sign of the real part (a phase of 0 or π): some position survives."""

    def amplitude_only(self, image):
        spectrum = np.fft.fft2(np.asarray(image, float))
        return np.fft.ifft2(np.abs(spectrum) * np.sign(spectrum.real + 1e-300)).real


class PhaseOnlyHalfWhitened(Control):
    """Divides by sqrt(|F|) instead of |F|: a partial whitening, which a second pass changes."""

    def phase_only(self, image):
        spectrum = np.fft.fft2(np.asarray(image, float))
        return np.fft.ifft2(spectrum / np.maximum(np.sqrt(np.abs(spectrum)), 1e-300)).real


class PhaseOnlyAddsMean(Control):
    """Adds back the image's mean (DC) after whitening."""

    def phase_only(self, image):
        return ref_fourier.phase_only(image) + float(np.mean(image))


class PhaseOnlyAnchoredAtOrigin(Control):
    """Replaces pixel (0, 0) of its result by the image's own: a position-dependent leak."""

    def phase_only(self, image):
        result = ref_fourier.phase_only(image)
        result[0, 0] = np.asarray(image)[0, 0]
        return result


class AmplitudeOnlyIsTheImage(Control):
    """Returns the image itself for amplitude-only: position is kept."""

    def amplitude_only(self, image):
        return np.asarray(image, dtype=float)


class PhaseOnlyIsAmplitudeOnly(Control):
    """Returns the amplitude-only reconstruction from phase_only (the two outputs swapped)."""

    def phase_only(self, image):
        return ref_fourier.amplitude_only(image)


class HybridWithDonorsSwapped(Control):
    """Takes the phase from the amplitude donor and the amplitude from the phase donor."""

    def hybrid(self, phase_donor, amplitude_donor):
        return ref_fourier.hybrid(amplitude_donor, phase_donor)


class AmplitudeSpectrumCentred(Control):
    """Returns the amplitude spectrum fftshift-ed, zero frequency in the middle, as it is shown."""

    def amplitude_spectrum(self, image):
        return np.fft.fftshift(ref_fourier.amplitude_spectrum(image))


class PhaseSpectrumWithoutZeroRule(Control):
    """Returns arg F everywhere: a coefficient that is round-off gets the round-off's phase (π for
    a constant 0.1 image) instead of 0."""

    def phase_spectrum(self, image):
        return np.angle(np.fft.fft2(np.asarray(image, dtype=float)))


class SpectraOfTheWindowedImage(Control):
    """Multiplies the image by a (periodic) Hann window before the transform, as spectral
    estimation does: the spectra then depend on where the content sits."""

    @staticmethod
    def _windowed(image):
        image = np.asarray(image, dtype=float)
        height, width = image.shape
        window = np.outer(
            0.5 - 0.5 * np.cos(2 * np.pi * np.arange(height) / height),
            0.5 - 0.5 * np.cos(2 * np.pi * np.arange(width) / width),
        )
        return image * window

    def amplitude_spectrum(self, image):
        return ref_fourier.amplitude_spectrum(self._windowed(image))

    def phase_spectrum(self, image):
        return ref_fourier.phase_spectrum(self._windowed(image))
