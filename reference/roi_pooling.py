"""RoI feature extraction: RoIPool, RoIAlign and the FPN level mapping (``spec/roi_head.md``).

Feature maps are ``(C, H, W)``; RoIs are image-coordinate boxes ``(R, 4)`` of one image, mapped
to the feature map by ``spatial_scale`` (1/stride). Sources: Fast R-CNN §2.1 (RoI max pooling);
Caffe ``roi_pooling_layer.cpp``; Mask R-CNN §3 (RoIAlign); Detectron2 ``ROIAlignV2`` (the
half-pixel offset); torchvision ``ops/roi_align.py``, ``ops/roi_pool.py``, ``ops/poolers.py``;
FPN (Lin et al. 2017) eq. (1); mmdetection ``SingleRoIExtractor`` (``finest_scale = 56``).
"""

from __future__ import annotations

import numpy as np
from detspec.reference.validation import (
    COORDINATE_LIMIT,
    check_boxes,
    check_finite_array,
    check_image_size,
    check_integer,
    check_positive,
    check_size_pair,
)

CANONICAL_SCALE, CANONICAL_LEVEL = 224.0, 4
#: mmdetection's ``SingleRoIExtractor``: a RoI of ``sqrt(w h) < 2 * 56`` goes to the first map.
FINEST_SCALE = 56.0
FPN_LEVEL_MAPPINGS = ("canonical", "finest-56")

#: The most samples an adaptive RoIAlign grid (``sampling_ratio = 0``) may put along one side of
#: a bin: beyond ``2**52`` the sample positions ``(k + 0.5) / n`` are no longer exact in float64.
#: Only a RoI side longer than ``2**52`` cells per bin (``3.2e16`` cells for 7 bins) reaches it.
MAX_ADAPTIVE_SAMPLES = 2**52


def _check_feature_map(features, name: str = "features") -> np.ndarray:
    features = check_finite_array(features, name, ndim=3)
    if features.shape[1] == 0 or features.shape[2] == 0:
        raise ValueError(f"{name}: the map is empty, shape {features.shape}")
    return features


def _check_pooling_inputs(features, rois, output_size, spatial_scale):
    """Features ``(C, H, W)``, RoIs (valid boxes: ``x1 <= x2``, ``y1 <= y2``, within
    ``±COORDINATE_LIMIT`` before and after scaling), the output grid (two integers >= 1) and the
    scale (finite, > 0)."""
    features = _check_feature_map(features)
    rois = check_boxes(rois, "rois")
    output_size = check_size_pair(output_size, "output_size", minimum=1)
    scale = check_positive(spatial_scale, "spatial_scale")
    outside = ~(np.abs(rois * scale) <= COORDINATE_LIMIT).all(axis=1)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"spatial_scale: rois * spatial_scale leaves the supported range [-{COORDINATE_LIMIT:g}, "
            f"{COORDINATE_LIMIT:g}] at row {row} ({rois[row].tolist()} * {scale!r})"
        )
    return features, rois, output_size, scale


def round_half_away(values: np.ndarray) -> np.ndarray:
    """C's ``round``: halves go away from zero (NumPy's ``round`` goes to even)."""
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


def roi_pool_bins(start: int, end: int, bins: int, size: int) -> list[tuple[int, int]]:
    """RoI max-pool bins along one axis (``roi.pool.value``): a RoI from cell ``start`` to ``end``
    (inclusive, at least one cell) split into ``bins`` parts with floor/ceil edges, in exact
    integer arithmetic, clipped to ``[0, size)``; an empty bin is ``(k, k)``."""
    length = max(end - start + 1, 1)
    edges = []
    for b in range(bins):
        low = start + (b * length) // bins
        high = start - ((-(b + 1) * length) // bins)  # ceil
        edges.append((min(max(low, 0), size), min(max(high, 0), size)))
    return edges


def roi_pool(features, rois, output_size, spatial_scale: float, bin_edges=roi_pool_bins) -> np.ndarray:
    """``(R, C, ph, pw)``: Fast R-CNN RoI max pooling (``roi.pool.*``). Corners are quantised to
    feature cells by ``round(coordinate · scale)`` (half away from zero), the RoI covers the cells
    from the first to the last corner inclusive, and each bin is the max over its cells; a bin
    that falls outside the map is 0. ``bin_edges`` (default: the spec's exact edges) lets a
    property name a known variant. Preconditions as :func:`roi_align`; corners are converted to
    exact Python integers, so a RoI far larger than the map still gets exact bin edges."""
    features, rois, (ph, pw), scale = _check_pooling_inputs(features, rois, output_size, spatial_scale)
    channels, height, width = features.shape
    corners = round_half_away(rois * scale).tolist()  # exact integers, as Python ints below
    channels_last = np.ascontiguousarray(features.transpose(1, 2, 0))  # (H, W, C): fast maxima
    output = np.zeros((len(rois), ph, pw, channels))
    for r, (x1, y1, x2, y2) in enumerate(corners):
        rows = bin_edges(int(y1), int(y2), ph, height)
        columns = bin_edges(int(x1), int(x2), pw, width)
        # the max over each band of rows (within the RoI's columns), then over each band of
        # columns: ph + pw slices instead of ph * pw
        first, last = columns[0][0], columns[-1][1]
        by_row = np.full((ph, max(last - first, 0), channels), -np.inf)
        for i, (top, bottom) in enumerate(rows):
            if bottom > top:
                by_row[i] = channels_last[top:bottom, first:last].max(axis=0)
        for j, (left, right) in enumerate(columns):
            if right > left:
                output[r, :, j] = by_row[:, left - first : right - first].max(axis=1)
    output[np.isneginf(output)] = 0.0  # an empty bin
    return output.transpose(0, 3, 1, 2)


def sample_grid(start: float, length: float, bins: int, sampling_ratio: int) -> np.ndarray:
    """``(bins, n)`` RoIAlign sample coordinates along one axis: ``n`` evenly spaced points at
    the centres of ``n`` equal sub-bins of each bin; ``n = sampling_ratio``, or
    ``ceil(length / bins)`` when it is 0 (adaptive)."""
    count = sampling_ratio if sampling_ratio > 0 else int(np.ceil(length / bins))
    bin_size = length / bins
    return start + bin_size * (np.arange(bins)[:, None] + (np.arange(count)[None, :] + 0.5) / max(count, 1))


def align_sample_points(roi, output_size, spatial_scale: float, sampling_ratio: int, aligned: bool):
    """``(ys, xs)``: one RoI's sample coordinates on the feature map, ``(ph, n)`` and ``(pw, m)``
    (``roi.align.*``). Feature cell ``(i, j)`` sits at ``(j, i)``; ``aligned`` shifts the RoI by
    -0.5 cell; without it, sides shorter than one cell are widened to one cell."""
    (roi,) = check_boxes([roi], "roi")
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = roi * spatial_scale - offset
    roi_width, roi_height = x2 - x1, y2 - y1
    if not aligned:
        roi_width, roi_height = max(roi_width, 1.0), max(roi_height, 1.0)
    ph, pw = output_size
    return sample_grid(y1, roi_height, ph, sampling_ratio), sample_grid(x1, roi_width, pw, sampling_ratio)


def _product_rows(bins: int) -> int:
    """Rows the weight matrices of ``bins`` bins get: one zero row more where that makes a
    multiple of 4 (7 -> 8), the block OpenBLAS's float64 kernels work in; an 8-row product
    takes less time than a 7-row one."""
    return bins + 1 if bins % 4 == 3 else bins


def _axis_weights(starts: np.ndarray, lengths: np.ndarray, bins: int, sampling_ratio: int, size: int):
    """``(R, B, size)``: per RoI and bin, the mean over the bin's samples along one axis of
    their bilinear weights on the ``size`` cells of that axis; ``B = _product_rows(bins)``, the
    rows past ``bins`` zero. RoIAlign is separable -- a bin is ``rows[i] @ map @ columns[j]``
    with these weights -- so the samples of all RoIs are weighed here at once, at the points of
    :func:`sample_grid` (the same arithmetic, bit for bit).

    A sample below -1 or above ``size`` weighs 0; one in ``[-1, 0)`` reads cell 0; one at or
    beyond the last cell reads the last cell (the kernels' rule, ``roi.align.outside``). Samples
    farther off the map than that are not generated at all, so a RoI much larger than the map
    costs no more than one its size, whatever its adaptive sample count.
    """
    count, rows = len(starts), _product_rows(bins)
    bin_sizes = lengths / bins
    samples = np.full(count, float(sampling_ratio)) if sampling_ratio > 0 else np.ceil(bin_sizes)
    n, start, bin_size = samples[:, None], starts[:, None], bin_sizes[:, None]
    # sample k of bin i sits at start + bin_size (i + (k + 0.5) / n): the k within reach of
    # [-1, size], widened by 2 against rounding (the weights below are exact either way)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        low = n * ((-1.0 - start) / bin_size - np.arange(bins)) - 0.5
        high = n * ((size - start) / bin_size - np.arange(bins)) - 0.5
    flat = bin_size == 0  # a zero-length side: every sample at one point, take them all
    first = np.clip(np.where(flat, 0.0, np.ceil(low) - 2), 0, n)
    last = np.clip(np.where(flat, n - 1, np.floor(high) + 2), -1, n - 1)
    per_bin = np.maximum(last - first + 1, 0).astype(np.int64).ravel()
    owner = np.repeat(np.arange(count * bins), per_bin)  # roi * bins + bin, per sample
    k = np.arange(owner.size) - np.repeat(np.cumsum(per_bin) - per_bin - first.ravel(), per_bin)
    roi, bin_of = np.divmod(owner, bins)
    points = starts[roi] + bin_sizes[roi] * (bin_of + (k + 0.5) / samples[roi])
    inside = (points >= -1.0) & (points <= size)
    clamped = np.clip(points, 0.0, size)
    below = np.floor(clamped)
    at_end = below >= size - 1
    below = np.where(at_end, size - 1, below)
    fraction = np.where(at_end, 0.0, clamped - below)
    above = np.where(at_end, below, below + 1)
    cells = ((roi * rows + bin_of) * size)[:, None] + np.stack([below, above], 1).astype(np.int64)
    weights = np.stack([(1.0 - fraction) * inside, fraction * inside], 1)
    total = np.bincount(cells.ravel(), weights.ravel(), minlength=count * rows * size)
    return total.reshape(count, rows, size) / np.maximum(samples, 1.0)[:, None, None]


def _support(weights: np.ndarray) -> tuple[list[int], list[int]]:
    """Per RoI, the first and one-past-the-last cell with a non-zero weight (``0, 0`` if none)."""
    used = weights.any(axis=1)
    touched = used.any(axis=1)
    first = np.where(touched, used.argmax(axis=1), 0)
    end = np.where(touched, used.shape[1] - used[:, ::-1].argmax(axis=1), 0)
    return first.tolist(), end.tolist()


def roi_align(
    features, rois, output_size, spatial_scale: float, sampling_ratio: int = 2, aligned: bool = False
) -> np.ndarray:
    """``(R, C, ph, pw)``: RoIAlign (``roi.align.*``). Each bin is the mean of bilinear samples
    on a regular grid (:func:`sample_grid`), with no quantisation. Feature cell ``(i, j)`` sits at
    continuous coordinate ``(j, i)``; ``aligned=True`` shifts the RoI by −0.5 cell so that cell
    ``(i, j)`` sits at ``(j + 0.5, i + 0.5)``, the pixel-centre model. Without ``aligned``, RoI
    sides shorter than one cell are widened to one cell (Mask R-CNN's original kernel).

    Preconditions: RoIs are valid boxes (``x1 <= x2``, ``y1 <= y2``) within ``±1e150`` before
    and after scaling; ``output_size`` two integers >= 1; ``sampling_ratio`` an integer >= 0
    (0: ``ceil(side / bins)`` samples per bin side, at most :data:`MAX_ADAPTIVE_SAMPLES`).

    Bilinear interpolation is separable, so bin ``(i, j)`` of RoI ``r`` is ``rows[r, i] @ map @
    columns[r, j]`` with the averaged sample weights of :func:`_axis_weights`; per RoI that is
    two stacks of small matrix products over the window of cells its samples touch, in
    whichever order takes fewer multiplications.
    """
    features, rois, (ph, pw), scale = _check_pooling_inputs(features, rois, output_size, spatial_scale)
    sampling_ratio = check_integer(sampling_ratio, "sampling_ratio")
    channels, height, width = features.shape
    boxes = rois * scale - (0.5 if aligned else 0.0)
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    if not aligned:
        widths, heights = np.maximum(widths, 1.0), np.maximum(heights, 1.0)
    if sampling_ratio == 0:
        samples = np.maximum(np.ceil(widths / pw), np.ceil(heights / ph))
        if np.any(samples > MAX_ADAPTIVE_SAMPLES):
            row = int(np.argmax(samples))
            raise ValueError(
                f"rois: row {row} {rois[row].tolist()} would take {samples[row]:g} adaptive samples "
                f"per bin side (sampling_ratio=0), more than 2**52; pass a sampling_ratio > 0"
            )
    rows = _axis_weights(boxes[:, 1], heights, ph, sampling_ratio, height)  # (R, qh, H)
    columns = _axis_weights(boxes[:, 0], widths, pw, sampling_ratio, width)  # (R, qw, W)
    (tops, bottoms), (lefts, rights) = _support(rows), _support(columns)
    qh, qw = rows.shape[1], columns.shape[1]
    channels_last = np.ascontiguousarray(features.transpose(1, 2, 0))  # (H, W, C)
    output = np.zeros((len(rois), ph, qw, channels))
    for r in range(len(rois)):
        top, bottom, left, right = tops[r], bottoms[r], lefts[r], rights[r]
        if bottom == top or right == left:
            continue  # no sample on the map (or none at all): the bins are 0
        window = channels_last[top:bottom, left:right]  # (h, w, C), a view
        h, w = bottom - top, right - left
        # (bins x cells) @ (cells x C) per row or column of the window: products this small stay
        # single-threaded in OpenBLAS, whose threads cost more than they save here (and stall
        # when the other cores are busy)
        if w * (h + qw) * qh <= h * (w + qh) * qw:  # rows first: (w, qh, C), then (ph, qw, C)
            by_row = np.matmul(rows[r, :, top:bottom], window.transpose(1, 0, 2))
            np.matmul(columns[r, :, left:right], by_row.transpose(1, 0, 2)[:ph], out=output[r])
        else:  # columns first: (h, qw, C), then (pw, ph, C)
            by_column = np.matmul(columns[r, :, left:right], window).transpose(1, 0, 2)[:pw]
            np.matmul(rows[r, :ph, top:bottom], by_column, out=output[r, :, :pw].transpose(1, 0, 2))
    return output[:, :, :pw].transpose(0, 3, 1, 2)


def fpn_level_rule(mapping: str, k_min: int) -> tuple[float, float]:
    """``(base, scale)`` of a level mapping: a RoI of ``sqrt(w h) = s`` belongs to level
    ``floor(base + log2(s / scale))`` before clamping. ``canonical``: FPN eq. (1), ``(4, 224)``;
    ``finest-56``: mmdetection's map index ``floor(log2(s / 56))`` counted from the first map
    given, i.e. ``(k_min, 56)`` -- the same as canonical iff ``k_min = 2`` (stride 4)."""
    if mapping not in FPN_LEVEL_MAPPINGS:
        raise ValueError(f"unknown FPN level mapping {mapping!r}; expected one of {FPN_LEVEL_MAPPINGS}")
    if mapping == "finest-56":
        return float(k_min), FINEST_SCALE
    return float(CANONICAL_LEVEL), CANONICAL_SCALE


def fpn_levels(rois, k_min: int, k_max: int, mapping: str = "canonical") -> np.ndarray:
    """``(R,)`` FPN levels (``roi.multiscale.level``): under ``canonical``
    ``floor(4 + log2(sqrt(w h) / 224))`` (FPN eq. (1)), under ``finest-56``
    ``k_min + floor(log2(sqrt(w h) / 56))`` (mmdetection), clamped to ``[k_min, k_max]``
    (continuous width and height; a boundary goes to the upper level; a RoI of zero area to
    ``k_min``). RoIs are valid boxes; ``k_min <= k_max`` are integers."""
    rois = check_boxes(rois, "rois")
    k_min, k_max = check_integer(k_min, "k_min", minimum=None), check_integer(k_max, "k_max", minimum=None)
    if k_min > k_max:
        raise ValueError(f"k_min: expected k_min <= k_max, got {k_min} and {k_max}")
    base, scale = fpn_level_rule(mapping, k_min)
    side = np.sqrt((rois[:, 2] - rois[:, 0]) * (rois[:, 3] - rois[:, 1]))
    with np.errstate(divide="ignore"):
        level = np.floor(base + np.log2(side / scale))
    return np.clip(level, k_min, k_max).astype(np.int64)


def level_of_feature_map(feature_height: int, image_height: float) -> int:
    """The level ``k`` of a map whose stride is ``2**k``: ``-round(log2(feature / image size))``."""
    ratio = feature_height / image_height
    if not (np.isfinite(ratio) and ratio > 0):
        raise ValueError(
            f"image_size: a {feature_height}-row map of a {image_height!r}-row image has no level"
        )
    return -int(np.round(np.log2(ratio)))


def multiscale_roi_align(
    features,
    rois,
    output_size,
    sampling_ratio: int,
    image_size,
    mapping: str = "canonical",
    aligned: bool = False,
) -> np.ndarray:
    """``(R, C, ph, pw)``: each RoI pooled by :func:`roi_align` from the level :func:`fpn_levels`
    assigns it under ``mapping``, among the given maps (consecutive levels, finest first; each
    level's stride from its size and the image's). ``aligned``: ``False`` as torchvision's
    ``MultiScaleRoIAlign`` (convention ``multiscale_alignment = corner``), ``True`` as
    mmdetection's ``SingleRoIExtractor`` and detectron2's ``ROIAlignV2`` (``half-pixel``).

    Preconditions: non-empty maps with one channel count; RoIs valid boxes; ``output_size`` two
    integers >= 1; ``sampling_ratio`` an integer >= 0; ``image_size`` finite and > 0.
    """
    if not isinstance(features, list | tuple) or not features:
        raise ValueError("features: expected a non-empty list of (C, H, W) maps, finest first")
    maps = [_check_feature_map(f, f"features[{i}]") for i, f in enumerate(features)]
    for index, level_map in enumerate(maps):
        if level_map.shape[0] != maps[0].shape[0]:
            raise ValueError(
                f"features[{index}]: {level_map.shape[0]} channels, but features[0] has "
                f"{maps[0].shape[0]}; every level needs the same channels"
            )
    rois = check_boxes(rois, "rois")
    output_size = check_size_pair(output_size, "output_size", minimum=1)
    sampling_ratio = check_integer(sampling_ratio, "sampling_ratio")
    image_height, _ = check_image_size(image_size)
    levels = [level_of_feature_map(m.shape[1], image_height) for m in maps]
    if levels != list(range(levels[0], levels[0] + len(levels))):
        raise ValueError(f"features: expected consecutive levels finest first, got strides 2**{levels}")
    if levels[0] < -1000 or levels[-1] > 1000:
        raise ValueError(f"image_size: the maps' strides 2**{levels} are not representable in float64")
    assigned = fpn_levels(rois, levels[0], levels[-1], mapping)
    output = np.zeros((len(rois), maps[0].shape[0], *output_size))
    for index, level in enumerate(levels):
        chosen = np.flatnonzero(assigned == level)
        if chosen.size:
            output[chosen] = roi_align(
                maps[index], rois[chosen], output_size, 2.0**-level, sampling_ratio, bool(aligned)
            )
    return output
