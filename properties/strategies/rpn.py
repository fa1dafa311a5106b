"""Strategies for RPN training: anchors, GT boxes, image sizes, thresholds and label vectors.

Coordinates are small integers (no huge boxes), so every intersection and union is an exact
integer in float32 too: ties in IoU stay ties in every implementation, and "exactly at the
threshold" is meaningful.
"""

from __future__ import annotations

import numpy as np
from detspec.properties.strategies.boxes import integer_boxes, pair_at_iou
from hypothesis import strategies as st


def representable_reals(low: float, high: float) -> st.SearchStrategy[float]:
    """Reals that are exactly float32 numbers and not subnormal (so 0 or at least 1.2e-38 in
    magnitude): a float32 implementation receives exactly the value the property reasons about,
    and no input silently becomes 0 (a target of 1e-245 is 0 in float32, and L1's gradient at 0
    is 0, not the reference's sign)."""
    return st.floats(low, high, width=32, allow_subnormal=False)


#: Logits as large as a float32 network really emits: where a loss computed through ``sigmoid``
#: or ``softmax`` (instead of "with logits") saturates or overflows.
EXTREME_LOGITS = st.sampled_from([-100.0, -88.0, -50.0, -30.0, 30.0, 50.0, 88.0, 100.0])


def logit_values(low: float = -8.0, high: float = 8.0) -> st.SearchStrategy[float]:
    return st.one_of(representable_reals(low, high), EXTREME_LOGITS)


#: (low, high) threshold pairs: the paper's, dyadic ones (exact), arbitrary ones (float32
#: numbers, so an implementation's own float32 threshold is the one the property uses), equal ones.
THRESHOLD_PAIRS = st.one_of(
    st.just((0.3, 0.7)),
    st.tuples(st.integers(0, 16), st.integers(0, 16)).map(lambda t: (min(t) / 16, max(t) / 16)),
    st.tuples(representable_reals(0, 1), representable_reals(0, 1)).map(lambda t: (min(t), max(t))),
)


def _overlaps_some(gt: list[int], anchors: list[list[int]]) -> bool:
    return any(min(gt[2], a[2]) > max(gt[0], a[0]) and min(gt[3], a[3]) > max(gt[1], a[1]) for a in anchors)


@st.composite
def matching_inputs(draw, zero_iou_gt: bool = False, min_gt: int = 1, width_offset: int = 0):
    """Anchors, GT boxes, an image size and thresholds. Every GT overlaps some anchor unless
    ``zero_iou_gt``, in which case the GT boxes overlap none (far away or zero area)."""
    anchors = draw(integer_boxes(1, 10, degenerate=False, huge=False))
    if zero_iou_gt:
        far = [
            [x + 5000, y + 5000, x + 5000 + w, y + 5000 + h]
            for x, y, w, h in draw(
                st.lists(
                    st.tuples(*[st.integers(0, 64)] * 2, *[st.integers(1, 64)] * 2), min_size=1, max_size=3
                )
            )
        ]
        flat = [[x, y, x, y + 5] for x, y, *_ in anchors[:1]]  # zero area, on top of an anchor
        # a zero-area box (continuous convention only: a legacy box is at least 1 px wide)
        gt = far + (flat if width_offset == 0 and draw(st.booleans()) else [])
    else:
        candidates = draw(integer_boxes(min_gt, 4, degenerate=False, huge=False))
        gt = [g for g in candidates if _overlaps_some(g, anchors)] or [list(anchors[0])]
    low, high = draw(THRESHOLD_PAIRS)
    if not zero_iou_gt and draw(st.booleans()):  # an anchor exactly at a dyadic threshold
        pair, exact = draw(pair_at_iou(width_offset, scaled=False).filter(lambda p: p[1] > 0))
        anchors.append([int(v) for v in pair[0]])
        gt.append([int(v) for v in pair[1]])
        low, high = (min(low, exact), exact) if draw(st.booleans()) else (exact, max(high, exact))
    width, height = draw(st.integers(1, 800)), draw(st.integers(1, 800))
    return {
        "anchors": np.asarray(anchors, dtype=np.float64),
        "gt_boxes": np.asarray(gt, dtype=np.float64).reshape(-1, 4),
        "image_size": (float(height), float(width)),
        "high": high,
        "low": low,
    }


@st.composite
def label_vectors(draw, max_size: int = 60):
    """RPN labels (1, 0, -1), with the batch size and positive fraction to sample them with."""
    size = draw(st.integers(0, max_size))
    labels = draw(st.lists(st.sampled_from([1, 0, -1]), min_size=size, max_size=size))
    return {
        "labels": np.asarray(labels, dtype=np.int64),
        "batch_size": draw(st.one_of(st.just(256), st.integers(0, 64))),
        "positive_fraction": draw(
            st.one_of(st.just(0.5), st.sampled_from([0.0, 0.25, 1.0]), st.floats(0, 1))
        ),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@st.composite
def loss_inputs(draw, empty_sample: bool = False):
    """Logits, deltas, a sampled label vector (at least one anchor sampled, or none at all with
    ``empty_sample``) and regression targets."""
    size = draw(st.integers(1, 40))
    sampled = np.asarray(draw(st.lists(st.sampled_from([1, 0, -1]), min_size=size, max_size=size)))
    if empty_sample:
        sampled[:] = -1
    elif np.all(sampled == -1):
        sampled[draw(st.integers(0, size - 1))] = draw(st.sampled_from([1, 0]))
    real = representable_reals(-8, 8)
    logits = np.asarray(draw(st.lists(logit_values(), min_size=size, max_size=size)))
    deltas = np.asarray(draw(st.lists(real, min_size=4 * size, max_size=4 * size))).reshape(-1, 4)
    targets = np.asarray(draw(st.lists(real, min_size=4 * size, max_size=4 * size))).reshape(-1, 4)
    return {
        "logits": logits,
        "deltas": deltas,
        "sampled": sampled,
        "targets": targets,
        "anchor_locations": draw(st.integers(1, 2400)),
    }
