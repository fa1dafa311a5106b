"""Strategies for the RoI head: proposals and GT boxes to sample from, thresholds, losses, and
feature maps with RoIs to pool.

Sampling inputs use small integer coordinates (every IoU is an exact ratio of integers in
float32 too) and steer towards the corners: RoIs identical to a GT, exactly at a threshold,
touching, far from every GT; no GT, no proposal, only foreground, only background.
"""

from __future__ import annotations

import numpy as np
from detspec.properties.interface import Conventions
from detspec.properties.strategies.boxes import CODER_WEIGHTS, integer_boxes, pair_at_iou
from detspec.properties.strategies.rpn import logit_values, representable_reals
from detspec.reference.roi_pooling import roi_pool_bins
from detspec.reference.roi_targets import object_classes
from hypothesis import strategies as st

#: Batch sizes: the seed's 128, torchvision's 512, and small ones that make every budget bind.
ROI_BATCH_SIZES = st.one_of(st.sampled_from([128, 512]), st.integers(0, 24))
#: Foreground fractions: the paper's 1/4, the endpoints, a half, arbitrary reals.
ROI_FRACTIONS = st.one_of(st.just(0.25), st.sampled_from([0.0, 0.5, 1.0]), st.floats(0, 1))
_DYADIC = st.integers(0, 16).map(lambda k: k / 16)


def _related_proposal(draw, gt: list[int]) -> list[int]:
    """A proposal near a GT box: a copy, a shift, a crop, an enlargement, or far away."""
    x1, y1, x2, y2 = gt
    kind = draw(st.sampled_from(["copy", "shift", "crop", "grow", "far"]))
    if kind == "copy":
        return list(gt)
    if kind == "shift":
        dx, dy = draw(st.integers(-16, 16)), draw(st.integers(-16, 16))
        return [x1 + dx, y1 + dy, x2 + dx, y2 + dy]
    if kind == "crop":
        nx1, ny1 = draw(st.integers(x1, x2 - 1)), draw(st.integers(y1, y2 - 1))
        return [nx1, ny1, draw(st.integers(nx1 + 1, x2)), draw(st.integers(ny1 + 1, y2))]
    if kind == "grow":
        return [
            x1 - draw(st.integers(0, 16)),
            y1 - draw(st.integers(0, 16)),
            x2 + draw(st.integers(0, 16)),
            y2,
        ]
    return [x1 + 4000, y1 + 4000, x2 + 4000, y2 + 4000]


def _thresholds(draw, conventions: Conventions, exact: float | None) -> tuple[float, float, float]:
    """``(fg, bg_high, bg_low)`` with ``0 <= bg_low <= bg_high <= fg``, ``fg > 0``; one of them at
    ``exact`` (an IoU that occurs) when given. ``bg_low`` is 0 for a zero-only implementation."""
    fg = draw(st.one_of(st.just(0.5), _DYADIC.filter(bool), st.floats(0.01, 1)))
    bg_high = draw(st.one_of(st.just(min(fg, 0.5)), st.floats(0, 1).map(lambda v: v * fg)))
    bg_low = draw(
        st.one_of(st.just(0.0), st.just(min(0.1, bg_high)), st.floats(0, 1).map(lambda v: v * bg_high))
    )
    if exact is not None and exact > 0:
        which = draw(st.sampled_from(["fg", "bg_high", "bg_low"]))
        if which == "fg":
            fg, bg_high, bg_low = exact, min(bg_high, exact), min(bg_low, exact)
        elif which == "bg_high":
            fg, bg_high, bg_low = max(fg, exact), exact, min(bg_low, exact)
        else:
            fg, bg_high, bg_low = max(fg, exact), max(bg_high, exact), exact
    if conventions.roi_background_low == "zero-only":
        bg_low = 0.0
    return fg, bg_high, bg_low


@st.composite
def sampling_inputs(draw, conventions: Conventions, min_gt: int = 0, degenerate: bool = False):
    """Proposals, at least ``min_gt`` GT boxes with class labels, the class count and every
    sampling parameter; ``degenerate`` admits proposals of zero width or height (what clipping
    to the image makes of a box outside it)."""
    num_classes = draw(st.integers(1, 5))
    classes = object_classes(num_classes, conventions.roi_background_label)
    gt = draw(integer_boxes(min_gt, 4, degenerate=False, huge=False))
    proposals = draw(integer_boxes(0, 6, degenerate=degenerate, huge=False))
    if gt:
        for _ in range(draw(st.integers(0, 8))):
            proposals.append(_related_proposal(draw, gt[draw(st.integers(0, len(gt) - 1))]))
    exact = None
    if draw(st.booleans()):  # a proposal exactly at a dyadic IoU with a GT box
        pair, exact = draw(pair_at_iou(conventions.width_offset, scaled=False).filter(lambda p: p[1] > 0))
        proposals.append([int(v) for v in pair[0]])
        gt.append([int(v) for v in pair[1]])
    fg, bg_high, bg_low = _thresholds(draw, conventions, exact)
    labels = draw(st.lists(st.sampled_from(classes), min_size=len(gt), max_size=len(gt)))
    return {
        "proposals": np.asarray(proposals, dtype=np.float64).reshape(-1, 4),
        "gt_boxes": np.asarray(gt, dtype=np.float64).reshape(-1, 4),
        "gt_labels": np.asarray(labels, dtype=np.int64),
        "num_classes": num_classes,
        "batch_size": draw(ROI_BATCH_SIZES),
        "positive_fraction": draw(ROI_FRACTIONS),
        "fg_threshold": fg,
        "bg_high": bg_high,
        "bg_low": bg_low,
        "weights": draw(CODER_WEIGHTS),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


@st.composite
def fast_rcnn_loss_inputs(draw, conventions: Conventions, empty: bool = False):
    """Class logits ``(R, K)``, box outputs ``(R, 4K)``, labels (background included) and
    targets; ``R = 0`` with ``empty``."""
    num_classes = draw(st.integers(1, 4))
    count = 0 if empty else draw(st.integers(1, 12))
    classes = num_classes + 1
    labels = draw(st.lists(st.integers(0, num_classes), min_size=count, max_size=count))

    def matrix(rows: int, columns: int, real: st.SearchStrategy[float] | None = None) -> np.ndarray:
        real = real if real is not None else representable_reals(-6, 6)
        values = draw(st.lists(real, min_size=rows * columns, max_size=rows * columns))
        return np.asarray(values, dtype=np.float64).reshape(rows, columns)

    return {
        "num_classes": num_classes,
        "class_logits": matrix(count, classes, logit_values(-6, 6)),
        "box_regression": matrix(count, 4 * classes),
        "labels": np.asarray(labels, dtype=np.int64),
        "targets": matrix(count, 4),
    }


# --- pooling ----------------------------------------------------------------------------------

#: Strides of a feature map (spatial scale 1/stride): exact in float32.
STRIDES = st.sampled_from([1, 2, 4, 8, 16])
#: Magnitudes of a feature map: ``2**k`` from tiny (``2**-40``) to large (``2**40``), times small
#: dyadic values, so still exact in float32; 1 and the extremes the most common.
MAGNITUDES = st.one_of(st.just(0), st.sampled_from([-40, 40]), st.integers(-40, 40)).map(lambda k: 2.0**k)


@st.composite
def feature_maps(draw, channels=(1, 3), side=(1, 10), magnitudes: bool = False):
    """A ``(C, H, W)`` map of small dyadic values (exact in float32; ties for max pooling), each
    side drawn on its own; ``magnitudes``: scaled by one of :data:`MAGNITUDES`."""
    c = draw(st.integers(*channels))
    h, w = draw(st.integers(*side)), draw(st.integers(*side))
    values = draw(st.lists(st.integers(-16, 16), min_size=c * h * w, max_size=c * h * w))
    scale = draw(MAGNITUDES) if magnitudes else 1.0
    return np.asarray(values, dtype=np.float64).reshape(c, h, w) / 4 * scale


@st.composite
def rois_on(draw, height: int, width: int, stride: int, count=(0, 5), unit: float = 0.25):
    """RoIs in image coordinates on a grid of ``unit`` cells (times the stride), around a
    ``height`` x ``width`` map: inside it, across its border, wholly outside, tiny (narrower than
    a cell) and empty."""
    rows = []
    margin = 4
    cells = st.integers(int(-margin / unit), int((width + margin) / unit))
    cells_y = st.integers(int(-margin / unit), int((height + margin) / unit))
    for _ in range(draw(st.integers(*count))):
        x1, y1 = draw(cells), draw(cells_y)
        size = st.integers(0, int(max(width, height) / unit) + 4)
        kind = draw(st.sampled_from(["free", "free", "tiny", "empty"]))
        if kind == "free":
            w, h = draw(size), draw(size)
        elif kind == "tiny":
            w, h = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        else:
            w, h = 0, draw(size)
        rows.append([x1, y1, x1 + w, y1 + h])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4) * unit * stride


@st.composite
def pooling_inputs(draw, magnitudes: bool = False):
    """A map, RoIs, an output size, a spatial scale, a sampling ratio and the aligned flag;
    ``magnitudes``: maps of every magnitude (:data:`MAGNITUDES`)."""
    features = draw(feature_maps(magnitudes=magnitudes))
    _, height, width = features.shape
    stride = draw(STRIDES)
    return {
        "features": features,
        "rois": draw(rois_on(height, width, stride)),
        "output_size": (float(draw(st.integers(1, 4))), float(draw(st.integers(1, 4)))),
        "spatial_scale": 1.0 / stride,
        "sampling_ratio": draw(st.integers(0, 4)),
        "aligned": int(draw(st.booleans())),
    }


@st.composite
def align_value_inputs(draw):
    """RoIAlign on general inputs: random (not affine) maps of every magnitude, 1-3 channels, RoIs
    on a grid of 1/4 or 1/16 cell inside the map, across its border, wholly outside, tiny and
    empty, 1-5 bins per side (fractional bins), adaptive (0) and fixed (1-4) sampling, aligned or
    not."""
    features = draw(feature_maps(magnitudes=True))
    _, height, width = features.shape
    stride = draw(STRIDES)
    return {
        "features": features,
        "rois": draw(rois_on(height, width, stride, (1, 5), draw(st.sampled_from([0.25, 0.0625])))),
        "output_size": (float(draw(st.integers(1, 5))), float(draw(st.integers(1, 5)))),
        "spatial_scale": 1.0 / stride,
        "sampling_ratio": draw(st.integers(0, 4)),
        "aligned": int(draw(st.booleans())),
    }


def _output_sizes(draw, square: bool) -> tuple[float, float]:
    """``(ph, pw)`` of 1-3 each; the same under the ``square`` capability."""
    height = draw(st.integers(1, 3))
    return (float(height), float(height if square else draw(st.integers(1, 3))))


@st.composite
def multiscale_inputs(draw, square: bool = False, max_side: int = 640, across: bool = False):
    """Consecutive levels ``[k_min, k_max]`` (strides ``2**k``), an image divisible by
    ``2**k_max``, RoIs whose sizes straddle the level boundaries (sides ``224 · 2**j``, some exactly
    on one: also those of the ``finest-56`` mapping) or have zero area, and the pooling settings.
    RoIs lie inside the image with room for a cell of the coarsest level to their right and below
    (an unaligned RoI is widened to one cell); with ``across`` some also cross the image's border."""
    k_min = draw(st.integers(1, 4))
    k_max = draw(st.integers(k_min, min(k_min + 3, 6)))
    unit = 2**k_max
    height = unit * draw(st.integers(1, max(1, max_side // unit)))
    width = unit * draw(st.integers(1, max(1, max_side // unit)))
    rois = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["boundary", "boundary", "free", "free", "flat"]))
        if kind == "boundary":
            side = min(224 * 2.0 ** draw(st.integers(-3, 1)), float(min(height, width)))
            w = h = side
        elif kind == "free":
            w, h = draw(st.integers(1, width)), draw(st.integers(1, height))
        elif draw(st.booleans()):  # zero area (a proposal clipped to a line): the first level
            w, h = 0, draw(st.integers(0, height))
        else:
            w, h = draw(st.integers(0, width)), 0
        if across and draw(st.booleans()):  # anywhere from half off the left/top to off the right/bottom
            x1 = draw(st.integers(-int(w) // 2 - unit, width))
            y1 = draw(st.integers(-int(h) // 2 - unit, height))
        else:  # room for one cell of the coarsest level: an unaligned RoI is widened to one cell
            x1 = draw(st.integers(0, int(max(0, width - max(w, unit)))))
            y1 = draw(st.integers(0, int(max(0, height - max(h, unit)))))
        rois.append([x1, y1, x1 + w, y1 + h])
    return {
        "levels": [k_min, k_max],
        "rois": np.asarray(rois, dtype=np.float64),
        "output_size": _output_sizes(draw, square),
        "sampling_ratio": draw(st.integers(0, 2)),
        "image_size": (float(height), float(width)),
    }


@st.composite
def multiscale_value_inputs(draw, square: bool = False):
    """:func:`multiscale_inputs` (images up to 256 px, RoIs across the border too) with random
    per-level maps: ``channels`` and a ``map_seed`` from which every level's values are drawn
    (``pyramid``), and their ``magnitude``."""
    return {
        **draw(multiscale_inputs(square, max_side=256, across=True)),
        "channels": draw(st.integers(1, 2)),
        "map_seed": draw(st.integers(0, 2**32 - 1)),
        "magnitude": draw(MAGNITUDES),
    }


def pyramid(levels, image_size, channels: int, map_seed: int, magnitude: float) -> list[np.ndarray]:
    """The maps of levels ``k_min..k_max`` of an image, finest first: ``(C, H >> k, W >> k)`` of
    dyadic values ``j / 4``, ``-16 <= j <= 16``, drawn from ``numpy.random.default_rng(map_seed)``,
    times ``magnitude``."""
    rng = np.random.default_rng(int(map_seed))
    height, width = int(image_size[0]), int(image_size[1])
    return [
        rng.integers(-16, 17, size=(int(channels), height >> k, width >> k)).astype(np.float64)
        / 4
        * magnitude
        for k in range(int(levels[0]), int(levels[1]) + 1)
    ]


def float32_bin_edges(start: int, end: int, bins: int, size: int) -> list[tuple[int, int]]:
    """RoI-pool bin edges as Caffe's and torchvision's kernels compute them: ``floor(p · step)``
    and ``ceil((p + 1) · step)`` with ``step = fl32(L / n)``; the same signature as the exact
    :func:`reference.roi_pooling.roi_pool_bins`."""
    length = max(end - start + 1, 1)
    step = np.float32(length) / np.float32(bins)
    edges = []
    for b in range(bins):
        low = start + int(np.floor(np.float32(b) * step))
        high = start + int(np.ceil(np.float32(b + 1) * step))
        edges.append((min(max(low, 0), size), min(max(high, 0), size)))
    return edges


def _float32_bin_hazards(max_bins: int = 14, max_extent: int = 64) -> dict[int, list[int]]:
    """For each bin count n, the RoI extents L (in cells) whose float32 bin edges
    (:func:`float32_bin_edges`) differ from the exact ones. With the paper's 7 x 7 output the
    first is L = 57 (a 912-pixel RoI at stride 16)."""
    hazards: dict[int, list[int]] = {}
    for bins in range(1, max_bins + 1):
        for extent in range(1, max_extent + 1):
            exact = roi_pool_bins(0, extent - 1, bins, extent + 1)
            if float32_bin_edges(0, extent - 1, bins, extent + 1) != exact:
                hazards.setdefault(bins, []).append(extent)
    return hazards


FLOAT32_BIN_HAZARDS = _float32_bin_hazards()


@st.composite
def bin_hazard_inputs(draw):
    """RoI max-pool inputs whose exact bin edges and float32 bin edges differ: a RoI of a hazard
    extent along one axis (see :func:`_float32_bin_hazards`), on a map with a cell of larger
    values just past the RoI, where a float32 edge reaches."""
    bins = draw(st.sampled_from(sorted(FLOAT32_BIN_HAZARDS)))
    extent = draw(st.sampled_from(FLOAT32_BIN_HAZARDS[bins]))
    stride = draw(STRIDES)
    start = draw(st.integers(0, 2))
    length = start + extent + 1 + draw(st.integers(0, 2))
    across = draw(st.integers(1, 3))
    features = np.zeros((1, length, across))
    features[0, start + extent :] = 1.0  # beyond the RoI: a larger value
    rois = [[0.0, start * stride, (across - 1) * stride, (start + extent - 1) * stride]]
    output = (float(bins), float(draw(st.integers(1, across))))
    if draw(st.booleans()):  # along x instead of y
        features = features.transpose(0, 2, 1).copy()
        rois = [[r[1], r[0], r[3], r[2]] for r in rois]
        output = output[::-1]
    return {
        "features": features,
        "rois": np.asarray(rois, dtype=np.float64),
        "output_size": output,
        "spatial_scale": 1.0 / stride,
    }
