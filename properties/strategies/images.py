"""Strategies for real 2-D images: any size (odd, even, non-square, down to 1 x 1), values exact
in float32, and the special images where Fourier statements are decided (constant, impulse,
checkerboard, symmetric), plus natural-looking images built from shapes."""

from __future__ import annotations

import numpy as np
from detspec.reference.fourier import shapes_image
from hypothesis import strategies as st

SIDES = st.integers(1, 12)


@st.composite
def images(draw, shape: tuple[int, int] | None = None):
    height, width = shape or (draw(SIDES), draw(SIDES))
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
