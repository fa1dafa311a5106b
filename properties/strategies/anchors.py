"""Strategies for anchor configurations and layer stacks.

Anchor configurations: strides and feature-map sizes drawn per axis (empty maps included; strides
equal, independent or very unequal such as 4 along y and 64 along x), anchor sizes and aspect
ratios, generated rather than fixed to the paper's values; sizes and ratios are distinct and at
least 25 % apart so that each anchor can be told apart by its shape.
"""

from __future__ import annotations

import itertools

from detspec.reference.receptive_field import Layer, receptive_field
from hypothesis import strategies as st

STRIDES = st.one_of(st.sampled_from([4, 8, 16, 32, 64]), st.integers(1, 64))
#: Strides ``[along y, along x]`` of one level: equal (the usual square case), independent, or
#: very unequal (a padded batch of wide images: torchvision infers ``image_h // H`` and
#: ``image_w // W`` separately).
STRIDE_PAIRS = st.one_of(
    STRIDES.map(lambda s: [s, s]),
    st.tuples(STRIDES, STRIDES).map(list),
    st.sampled_from([[4, 64], [64, 4], [1, 64], [64, 1], [8, 32], [16, 4]]),
)
#: The paper's VGG-16 configuration: one level, stride 16 (a number: both axes).
PAPER = {
    "feature_sizes": [[37, 62]],
    "strides": [16],
    "sizes": [[128, 256, 512]],
    "ratios": [[0.5, 1.0, 2.0]],
}


def _spread(values: list[float]) -> bool:
    ordered = sorted(values)
    return all(b >= 1.25 * a for a, b in itertools.pairwise(ordered))


ANCHOR_SIZES = st.lists(
    st.one_of(st.sampled_from([32, 64, 128, 256, 512]), st.integers(2, 700)),
    min_size=1,
    max_size=4,
    unique=True,
).filter(_spread)
ASPECT_RATIOS = st.lists(
    st.one_of(st.sampled_from([0.5, 1.0, 2.0]), st.sampled_from([0.25, 1 / 3, 3.0, 4.0, 0.7, 1.6])),
    min_size=1,
    max_size=4,
    unique=True,
).filter(_spread)


@st.composite
def anchor_levels(
    draw, min_levels: int = 1, max_levels: int = 1, min_cells: int = 0, equal_strides: bool = False
):
    """One or more levels: ``feature_sizes`` ``[H, W]``, ``strides`` ``[along y, along x]``,
    ``sizes``, ``ratios`` (lists). ``equal_strides``: one stride for both axes (the legacy
    roundings round a square base box of one stride)."""
    count = draw(st.integers(min_levels, max_levels))
    sides = st.integers(min_cells, 9)
    strides = STRIDES.map(lambda s: [s, s]) if equal_strides else STRIDE_PAIRS
    return {
        "feature_sizes": [[draw(sides), draw(sides)] for _ in range(count)],
        "strides": [draw(strides) for _ in range(count)],
        "sizes": [[float(s) for s in draw(ANCHOR_SIZES)] for _ in range(count)],
        "ratios": [draw(ASPECT_RATIOS) for _ in range(count)],
    }


@st.composite
def layer_stacks(draw, max_field: int = 120):
    """Sequential conv/pool stacks (kernel, stride, padding, dilation all generated) whose
    receptive field stays below ``max_field`` pixels, so that a measurement stays cheap."""
    layers: list[Layer] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv", "pool"]))
        kernel = draw(st.integers(1, 7))
        dilation = draw(st.integers(1, 3)) if kind == "conv" else 1
        stride = draw(st.integers(1, 3))
        effective = dilation * (kernel - 1) + 1
        padding = draw(st.integers(0, (effective - 1) // 2 if kind == "conv" else kernel // 2))
        candidate = Layer(kind, kernel, stride, padding, dilation)
        if receptive_field([*layers, candidate]).size > max_field:
            break
        layers.append(candidate)
    return [layer.as_list() for layer in layers]
