"""Strategies for real 2-D images: any size (odd, even, non-square, one row, one column, down to
1 x 1), values exact in float32, and the special images where Fourier statements are decided
(constant, impulse, checkerboard, symmetric), plus natural-looking images built from shapes."""

from __future__ import annotations

import numpy as np
from detspec.reference.fourier import shapes_image
from hypothesis import strategies as st

SIDES = st.integers(1, 12)
ODD_SIDES = st.integers(0, 5).map(lambda k: 2 * k + 1)
EVEN_SIDES = st.integers(1, 6).map(lambda k: 2 * k)
#: (height, width): any, one row, one column, odd by even and even by odd (a DFT of an even side
#: has a Nyquist row or column of its own, an odd side none).
SHAPES = st.one_of(
    st.tuples(SIDES, SIDES),
    SIDES.map(lambda n: (1, n)),
    SIDES.map(lambda n: (n, 1)),
    st.tuples(ODD_SIDES, EVEN_SIDES),
    st.tuples(EVEN_SIDES, ODD_SIDES),
)


@st.composite
def images(draw, shape: tuple[int, int] | None = None):
    height, width = shape or draw(SHAPES)
    kind = draw(st.sampled_from(["random", "random", "constant", "impulse", "checkerboard", "shapes"]))
    if kind == "random":
        values = draw(st.lists(st.integers(0, 256), min_size=height * width, max_size=height * width))
        return np.asarray(values, dtype=np.float64).reshape(height, width) / 256
    if kind == "constant":
        return np.full((height, width), draw(st.integers(0, 8)) / 8)
    if kind == "impulse":
        image = np.zeros((height, width))
        image[draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))] = 1.0
        return image
    if kind == "checkerboard":
        return (np.add.outer(np.arange(height), np.arange(width)) % 2).astype(np.float64)
    seed = draw(st.integers(0, 2**16))
    return np.asarray(shapes_image(np.random.default_rng(seed), 32), dtype=np.float32).astype(np.float64)[
        :height, :width
    ]


def image_examples() -> list[dict]:
    impulse = np.zeros((4, 6))
    impulse[0, 0] = 1.0
    return [{"image": np.full((3, 5), 0.5)}, {"image": impulse}, {"image": np.ones((1, 1))}]


def spectrum_examples() -> list[dict]:
    """Where the spectra are decided: constant images whose zero coefficients come out of the FFT
    as round-off of phase π (0.1 is not dyadic), a checkerboard (exact zeros and a negative real
    coefficient, phase π), a one-row ramp and a one-column impulse off the origin."""
    impulse = np.zeros((6, 1))
    impulse[1, 0] = 1.0
    return [
        *image_examples(),
        {"image": np.full((3, 5), 0.1)},
        {"image": np.full((1, 7), 0.3)},
        {"image": (np.add.outer(np.arange(4), np.arange(6)) % 2).astype(np.float64)},
        {"image": np.arange(8.0).reshape(1, 8) / 8},
        {"image": impulse},
    ]
