"""Anchor generation: the executable form of ``spec/anchors.md``.

An anchor is a reference box pre-placed at every cell of a feature map, at several sizes and
aspect ratios: a multi-scale sliding window without the loop. ``size`` is the square root of the
area and ``ratio`` is height / width, so an anchor of size ``s`` and ratio ``r`` is
``s / sqrt(r)`` wide and ``s * sqrt(r)`` tall (Faster R-CNN §3.1.1; torchvision, detectron2 and
mmdetection agree that the ratio is h/w).

Strides are per axis: ``(along y, along x)``, or one number for both (torchvision infers
``image_h // H`` and ``image_w // W`` separately, and a padded batch makes them differ).

Conventions (``spec/anchors.md``): the centre offset of a cell, the rounding of the cell anchors
and the order of the anchors within a cell. Flat order is always (level, y, x, a), ``a`` fastest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from detspec.reference.validation import (
    check_convention,
    check_finite_array,
    check_nonnegative,
    check_positive,
    check_real_array,
    check_size_pair,
)

ANCHOR_OFFSETS = ("corner", "centre", "legacy")
ANCHOR_ROUNDINGS = ("none", "round-corners", "legacy", "legacy-away")
#: py-faster-rcnn's base-size roundings: half to even (its Python, ``np.round``) or half away
#: from zero (its C++ ports: Caffe's and OpenVINO's Proposal layers, ``roundf``)
LEGACY_ROUNDINGS = ("legacy", "legacy-away")
ANCHOR_ORDERS = ("ratio-major", "size-major")


def _check_positive_numbers(values, name: str) -> list[float]:
    array = check_real_array(values, name)
    if array.ndim != 1 or array.dtype.kind == "b":
        raise ValueError(f"{name}: expected a sequence of numbers, got {values!r}")
    if not array.size or not np.all(np.isfinite(array) & (array > 0)):
        raise ValueError(f"{name}: expected a non-empty sequence of finite numbers > 0, got {values!r}")
    return array.astype(np.float64).tolist()


def stride_pair(stride, name: str = "stride") -> tuple[float, float]:
    """``(along y, along x)`` from a pair, or from one number meaning both axes; each finite and
    > 0."""
    if isinstance(stride, list | tuple) or (isinstance(stride, np.ndarray) and stride.ndim > 0):
        values = list(stride)
        if len(values) != 2:
            raise ValueError(f"{name}: expected one number or a pair (along y, along x), got {stride!r}")
        return check_positive(values[0], name), check_positive(values[1], name)
    along = check_positive(stride, name)
    return along, along


def cell_offset(stride: float, offset: str) -> float:
    """Where the anchors of cell 0 are centred along one axis of stride ``stride`` (clause
    ``anchors.centre``); ``stride`` is finite and > 0."""
    stride = check_positive(stride, "stride")
    if offset not in ANCHOR_OFFSETS:
        raise ValueError(f"unknown anchor offset {offset!r}; expected one of {ANCHOR_OFFSETS}")
    return {"corner": 0.0, "centre": stride / 2, "legacy": (stride - 1) / 2}[offset]


def round_half_away(value: float) -> float:
    """C's ``roundf`` on a number >= 0: halves go up (exact: ``value - floor(value)`` is exact)."""
    low = math.floor(value)
    return float(low + (value - low >= 0.5))


def _legacy_cell_sides(stride: float, sizes: list[float], ratios: list[float], rounding: str) -> np.ndarray:
    """py-faster-rcnn's rounding: a ``stride``-wide base box gets each ratio with integer sides,
    then every side is multiplied by ``size / stride``. ``legacy`` rounds half to even
    (``np.round``), ``legacy-away`` half away from zero (``roundf``): base 32, ratio 0.5 gives
    45 x 22 and 45 x 23. Source: ``lib/rpn/generate_anchors.py`` (``_ratio_enum``,
    ``_scale_enum``); Caffe's ``proposal_layer`` and OpenVINO's ``proposal_imp.cpp``
    (``generate_anchors``) for ``roundf``."""
    round_side = round_half_away if rounding == "legacy-away" else lambda v: float(np.round(v))
    sides = []
    for ratio in ratios:
        base_w = round_side(math.sqrt(stride * stride / ratio))
        base_h = round_side(base_w * ratio)
        sides.extend((base_w * size / stride, base_h * size / stride) for size in sizes)
    return np.asarray(sides)


def cell_anchors(
    sizes: Sequence[float],
    ratios: Sequence[float],
    stride: float = 16.0,
    rounding: str = "none",
    order: str = "ratio-major",
    convention: str = "continuous",
) -> np.ndarray:
    """``(A, 4)`` anchors of one cell, centred on 0 (clauses ``anchors.shape``, ``anchors.order``).

    ``rounding``: ``none`` (detectron2, mmdetection); ``round-corners`` rounds the four
    coordinates to integers, half to even (torchvision); ``legacy`` is py-faster-rcnn's
    (meaningful with ``convention="legacy"``: a box ``w`` pixels wide spans ``w - 1``), and
    ``legacy-away`` the same with halves rounded away from zero (its C++ ports).
    ``order``: ``ratio-major`` (a = ratio index * len(sizes) + size index; py-faster-rcnn,
    torchvision, mmdetection) or ``size-major`` (detectron2). ``stride`` (one number or a pair
    ``(along y, along x)``, each finite and > 0) only shapes the legacy roundings, whose base box
    is ``stride x stride``: they need the two strides equal. It is checked under every rounding.
    """
    along_y, along_x = stride_pair(stride)
    sizes = _check_positive_numbers(sizes, "sizes")
    ratios = _check_positive_numbers(ratios, "ratios")
    if rounding not in ANCHOR_ROUNDINGS:
        raise ValueError(f"unknown anchor rounding {rounding!r}; expected one of {ANCHOR_ROUNDINGS}")
    if order not in ANCHOR_ORDERS:
        raise ValueError(f"unknown anchor order {order!r}; expected one of {ANCHOR_ORDERS}")
    width_offset = check_convention(convention)
    if rounding in LEGACY_ROUNDINGS:
        if along_y != along_x:
            raise ValueError(
                f"stride: the {rounding} rounding rounds a square base box of one stride; got strides "
                f"{along_y!r} (y) and {along_x!r} (x)"
            )
        sides = _legacy_cell_sides(along_x, sizes, ratios, rounding)
    else:
        sides = np.asarray([(s / math.sqrt(r), s * math.sqrt(r)) for r in ratios for s in sizes])
    half = (sides - width_offset) / 2
    anchors = np.concatenate([-half, half], axis=1)
    if rounding == "round-corners":
        anchors = np.round(anchors)
    if order == "size-major":
        anchors = anchors.reshape(len(ratios), len(sizes), 4).transpose(1, 0, 2).reshape(-1, 4)
    return anchors


def grid_anchors(
    feature_size: Sequence[int],
    stride: float | Sequence[float],
    sizes: Sequence[float],
    ratios: Sequence[float],
    offset: str = "corner",
    rounding: str = "none",
    order: str = "ratio-major",
    convention: str = "continuous",
) -> np.ndarray:
    """``(H * W * A, 4)`` anchors of one feature map, row ``(y * W + x) * A + a`` (``anchors.shift``).

    The anchors of cell ``(x, y)`` are the cell anchors moved to ``(x * S_x + o_x, y * S_y + o_y)``
    where ``(S_y, S_x)`` is the stride and ``o`` the declared centre offset along each axis.
    ``feature_size`` is two integers >= 0 (``7.0`` passes, ``7.5`` does not); ``stride`` is a
    pair ``(along y, along x)`` or one number for both, each finite and > 0.
    """
    height, width = check_size_pair(feature_size, "feature_size", minimum=0)
    along_y, along_x = stride_pair(stride)
    base = cell_anchors(sizes, ratios, (along_y, along_x), rounding, order, convention)
    xs = np.arange(width) * along_x + cell_offset(along_x, offset)
    ys = np.arange(height) * along_y + cell_offset(along_y, offset)
    shift_y, shift_x = np.meshgrid(ys, xs, indexing="ij")
    shifts = np.stack([shift_x, shift_y, shift_x, shift_y], axis=-1).reshape(-1, 1, 4)
    return (shifts + base[None]).reshape(-1, 4)


def multilevel_anchors(
    feature_sizes: Sequence[Sequence[int]],
    strides: Sequence[float | Sequence[float]],
    sizes: Sequence[Sequence[float]],
    ratios: Sequence[Sequence[float]],
    **conventions: str,
) -> np.ndarray:
    """Anchors of several levels (an FPN), concatenated in level order (``anchors.levels``);
    each level's stride is a pair ``(along y, along x)`` or one number for both."""
    if not len(feature_sizes) == len(strides) == len(sizes) == len(ratios):
        raise ValueError(
            "feature_sizes, strides, sizes and ratios need one entry per level, got "
            f"{len(feature_sizes)}, {len(strides)}, {len(sizes)}, {len(ratios)}"
        )
    levels = [
        grid_anchors(f, s, z, r, **conventions)
        for f, s, z, r in zip(feature_sizes, strides, sizes, ratios, strict=True)
    ]
    return np.concatenate(levels) if levels else np.zeros((0, 4))


def guaranteed_iou(
    gt_width: float, gt_height: float, shapes: np.ndarray, max_offset: tuple[float, float]
) -> float:
    """The IoU that some anchor is guaranteed to reach with a box of the given size
    (clause ``anchors.coverage.iou``).

    If every box centre lies within ``max_offset = (dx, dy)`` of a cell centre, the anchors of that
    cell (``shapes``: their ``(w, h)``) include one with IoU at least
    ``max over shapes of IoU(box, shape moved by (dx, dy))``: IoU only decreases as the centres
    move apart, so the worst case is the largest offset on both axes. Sizes and offsets are
    finite and >= 0.
    """
    gt_width, gt_height = check_nonnegative(gt_width, "gt_width"), check_nonnegative(gt_height, "gt_height")
    shapes = check_finite_array(shapes, "shapes", ndim=2, last_dim=2)
    if np.any(shapes < 0):
        raise ValueError("shapes: every anchor shape (w, h) must be >= 0")
    try:
        dx, dy = max_offset
    except (TypeError, ValueError):
        raise ValueError(f"max_offset: expected (dx, dy), got {max_offset!r}") from None
    dx, dy = check_nonnegative(dx, "max_offset"), check_nonnegative(dy, "max_offset")
    widths, heights = shapes[:, 0], shapes[:, 1]
    overlap_w = np.clip(np.minimum((gt_width + widths) / 2 - dx, np.minimum(gt_width, widths)), 0, None)
    overlap_h = np.clip(np.minimum((gt_height + heights) / 2 - dy, np.minimum(gt_height, heights)), 0, None)
    inter = overlap_w * overlap_h
    union = gt_width * gt_height + widths * heights - inter
    return float(np.max(np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)))


def max_centre_distance(stride: float, offset: str, convention: str = "continuous") -> float:
    """How far along one axis of stride ``stride`` a point of the image can be from the nearest
    anchor centre, for a feature map covering the image exactly (clauses
    ``anchors.coverage.centres``, ``anchors.coverage.iou``); each axis has its own.

    The image spans ``[0, W * stride]`` (continuous) or the pixel indices ``[0, W * stride - 1]``
    (legacy). The first centre is ``o`` from the start, the last ``stride - o`` (legacy:
    ``stride - 1 - o``) from the end, and centres are ``stride`` apart. ``stride`` is finite and
    > 0.
    """
    stride = check_positive(stride, "stride")
    centre = cell_offset(stride, offset)
    end = stride - check_convention(convention) - centre
    return max(centre, end, stride / 2)
