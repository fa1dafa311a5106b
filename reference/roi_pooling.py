"""RoI feature extraction: RoIPool, RoIAlign and the FPN level mapping (``spec/roi_head.md``).

Feature maps are ``(C, H, W)``; RoIs are image-coordinate boxes ``(R, 4)`` of one image, mapped
to the feature map by ``spatial_scale`` (1/stride). Sources: Fast R-CNN §2.1 (RoI max pooling);
Caffe ``roi_pooling_layer.cpp``; Mask R-CNN §3 (RoIAlign); Detectron2 ``ROIAlignV2`` (the
half-pixel offset); torchvision ``ops/roi_align.py``, ``ops/roi_pool.py``, ``ops/poolers.py``;
FPN (Lin et al. 2017) eq. (1).
"""

from __future__ import annotations

import numbers

import numpy as np
from detspec.reference.validation import check_finite_array

CANONICAL_SCALE, CANONICAL_LEVEL = 224.0, 4


def _check_pooling_inputs(features, rois, output_size, spatial_scale):
    features = check_finite_array(features, "features", ndim=3)
    rois = check_finite_array(rois, "rois", ndim=2, last_dim=4)
    try:
        height, width = (int(v) for v in output_size)
    except (TypeError, ValueError):
        raise ValueError(f"output_size: expected (height, width), got {output_size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"output_size: both sides must be >= 1, got {output_size!r}")
    if not isinstance(spatial_scale, numbers.Real) or not np.isfinite(spatial_scale) or spatial_scale <= 0:
        raise ValueError(f"spatial_scale: expected a finite number > 0, got {spatial_scale!r}")
    if features.shape[1] == 0 or features.shape[2] == 0:
        raise ValueError(f"features: the map is empty, shape {features.shape}")
    return features, rois, (height, width), float(spatial_scale)


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
    property name a known variant."""
    features, rois, (ph, pw), scale = _check_pooling_inputs(features, rois, output_size, spatial_scale)
    channels, height, width = features.shape
    corners = round_half_away(rois * scale).astype(np.int64)
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


def bilinear_weights(points: np.ndarray, size: int) -> np.ndarray:
    """``(n, size)`` interpolation weights of 1-D sample points over ``size`` cells, as the
    RoIAlign kernels do it: a point below -1 or above ``size`` reads 0; a point in ``[-1, 0)``
    reads cell 0; a point at or beyond the last cell reads the last cell."""
    points = np.asarray(points, dtype=np.float64)
    inside = ((points >= -1.0) & (points <= size)).astype(np.float64)
    clamped = np.maximum(points, 0.0)
    low = np.floor(clamped).astype(np.int64)
    at_end = low >= size - 1
    low = np.where(at_end, size - 1, low)
    high = np.where(at_end, size - 1, low + 1)
    fraction = np.where(at_end, 0.0, clamped - low)
    weights = np.zeros((len(points), size))
    rows = np.arange(len(points))
    np.add.at(weights, (rows, low), (1.0 - fraction) * inside)
    np.add.at(weights, (rows, high), fraction * inside)
    return weights


def align_sample_points(roi, output_size, spatial_scale: float, sampling_ratio: int, aligned: bool):
    """``(ys, xs)``: one RoI's sample coordinates on the feature map, ``(ph, n)`` and ``(pw, m)``
    (``roi.align.*``). Feature cell ``(i, j)`` sits at ``(j, i)``; ``aligned`` shifts the RoI by
    -0.5 cell; without it, sides shorter than one cell are widened to one cell."""
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = np.asarray(roi, dtype=np.float64) * spatial_scale - offset
    roi_width, roi_height = x2 - x1, y2 - y1
    if not aligned:
        roi_width, roi_height = max(roi_width, 1.0), max(roi_height, 1.0)
    ph, pw = output_size
    return sample_grid(y1, roi_height, ph, sampling_ratio), sample_grid(x1, roi_width, pw, sampling_ratio)


def roi_align(
    features, rois, output_size, spatial_scale: float, sampling_ratio: int = 2, aligned: bool = False
) -> np.ndarray:
    """``(R, C, ph, pw)``: RoIAlign (``roi.align.*``). Each bin is the mean of bilinear samples
    on a regular grid (:func:`sample_grid`), with no quantisation. Feature cell ``(i, j)`` sits at
    continuous coordinate ``(j, i)``; ``aligned=True`` shifts the RoI by −0.5 cell so that cell
    ``(i, j)`` sits at ``(j + 0.5, i + 0.5)``, the pixel-centre model. Without ``aligned``, RoI
    sides shorter than one cell are widened to one cell (Mask R-CNN's original kernel)."""
    features, rois, (ph, pw), scale = _check_pooling_inputs(features, rois, output_size, spatial_scale)
    if not isinstance(sampling_ratio, numbers.Integral) or sampling_ratio < 0:
        raise ValueError(f"sampling_ratio: expected an integer >= 0, got {sampling_ratio!r}")
    channels, height, width = features.shape
    channels_last = np.ascontiguousarray(features.transpose(1, 2, 0))  # (H, W, C): large GEMMs
    output = np.zeros((len(rois), channels, ph, pw))
    for r, roi in enumerate(rois):
        ys, xs = align_sample_points(roi, (ph, pw), scale, sampling_ratio, aligned)
        if ys.shape[1] == 0 or xs.shape[1] == 0:
            continue  # an adaptive grid of a zero-size RoI has no sample: the bins are 0
        # bilinear interpolation is separable: average the row and the column weights per bin
        row_weights = bilinear_weights(ys.ravel(), height).reshape(ph, -1, height).mean(axis=1)
        column_weights = bilinear_weights(xs.ravel(), width).reshape(pw, -1, width).mean(axis=1)
        # only the rows and columns some sample touches: (ph, h) x (h, w, C) x (w, pw)
        used_rows = np.flatnonzero(row_weights.any(axis=0))
        used_columns = np.flatnonzero(column_weights.any(axis=0))
        if used_rows.size and used_columns.size:
            top, bottom = used_rows[0], used_rows[-1] + 1
            left, right = used_columns[0], used_columns[-1] + 1
            window = channels_last[top:bottom, left:right]  # (h, w, C)
            by_row = np.tensordot(row_weights[:, top:bottom], window, axes=1)  # (ph, w, C)
            pooled = np.tensordot(column_weights[:, left:right], by_row, axes=([1], [1]))  # (pw, ph, C)
            output[r] = pooled.transpose(2, 1, 0)
    return output


def fpn_levels(rois, k_min: int, k_max: int) -> np.ndarray:
    """``(R,)`` FPN levels (``roi.multiscale.level``): ``floor(4 + log2(sqrt(w h) / 224))``
    clamped to ``[k_min, k_max]`` (FPN eq. (1); continuous width and height)."""
    rois = check_finite_array(rois, "rois", ndim=2, last_dim=4)
    side = np.sqrt(np.maximum(rois[:, 2] - rois[:, 0], 0) * np.maximum(rois[:, 3] - rois[:, 1], 0))
    with np.errstate(divide="ignore"):
        level = np.floor(CANONICAL_LEVEL + np.log2(side / CANONICAL_SCALE))
    return np.clip(level, k_min, k_max).astype(np.int64)


def level_of_feature_map(feature_height: int, image_height: float) -> int:
    """The level ``k`` of a map whose stride is ``2**k``: ``-round(log2(feature / image size))``."""
    return -int(np.round(np.log2(feature_height / image_height)))


def multiscale_roi_align(features, rois, output_size, sampling_ratio: int, image_size) -> np.ndarray:
    """``(R, C, ph, pw)``: each RoI pooled by :func:`roi_align` (not aligned, as torchvision's
    ``MultiScaleRoIAlign``) from the level :func:`fpn_levels` assigns it, among the given maps
    (consecutive levels, finest first; each level's stride from its size and the image's)."""
    if not isinstance(features, list | tuple) or not features:
        raise ValueError("features: expected a non-empty list of (C, H, W) maps, finest first")
    maps = [check_finite_array(f, f"features[{i}]", ndim=3) for i, f in enumerate(features)]
    rois = check_finite_array(rois, "rois", ndim=2, last_dim=4)
    levels = [level_of_feature_map(m.shape[1], float(image_size[0])) for m in maps]
    if levels != list(range(levels[0], levels[0] + len(levels))):
        raise ValueError(f"features: expected consecutive levels finest first, got strides 2**{levels}")
    assigned = fpn_levels(rois, levels[0], levels[-1])
    output = np.zeros((len(rois), maps[0].shape[0], *(int(v) for v in output_size)))
    for index, level in enumerate(levels):
        chosen = np.flatnonzero(assigned == level)
        if chosen.size:
            output[chosen] = roi_align(maps[index], rois[chosen], output_size, 2.0**-level, sampling_ratio)
    return output
