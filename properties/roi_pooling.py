"""Properties of RoI feature extraction: RoIAlign, RoIPool and the FPN level mapping
(``spec/roi_head.md``, "RoI feature extraction").

Feature maps hold small dyadic values and RoIs lie on a quarter-cell grid, so that quantisation
(``round``) and max pooling are exact in float32 too, and "exactly half a cell" occurs.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from detspec.properties.checks import check_close, check_equal, fail, tolerance
from detspec.properties.registry import (
    Example,
    Integer,
    Matrix,
    Number,
    PairField,
    Plain,
    Rows4,
    family,
    prop,
)
from detspec.properties.strategies.roi import STRIDES, bin_hazard_inputs, float32_bin_edges, pooling_inputs
from detspec.reference import roi_pooling as ref_pool
from hypothesis import strategies as st


@family
class AlignInputs(Example):
    """(C, H, W) features, (R, 4) image-coordinate RoIs and RoIAlign's settings (aligned 0/1)."""

    features: Matrix
    rois: Rows4
    output_size: PairField
    spatial_scale: Number
    sampling_ratio: Integer
    aligned: Integer


@family
class PermutedAlignInputs(Example):
    features: Matrix
    rois: Rows4
    output_size: PairField
    spatial_scale: Number
    sampling_ratio: Integer
    aligned: Integer
    permutation_seed: Integer


@family
class PoolInputs(Example):
    features: Matrix
    rois: Rows4
    output_size: PairField
    spatial_scale: Number


@family
class JitteredPoolInputs(Example):
    features: Matrix
    rois: Rows4
    output_size: PairField
    spatial_scale: Number
    jitter: Rows4


@family
class MultiscaleInputs(Example):
    """Levels [k_min, k_max] (maps built per level by the property), RoIs and settings."""

    levels: Plain
    rois: Rows4
    output_size: PairField
    sampling_ratio: Integer
    image_size: PairField


POOL_FIELDS = tuple(PoolInputs.KINDS)


def _align(impl, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
    size = (int(output_size[0]), int(output_size[1]))
    return impl.roi_align(features, rois, size, spatial_scale, int(sampling_ratio), bool(aligned))


def _close(impl, actual, expected, what: str, code: str) -> None:
    check_close(actual, expected, tolerance(impl.conventions.dtype) * (1 + np.abs(expected)) * 10, what, code)


@prop(
    "roi.align.shape",
    uses=("roi_align",),
    given=lambda _c: st.tuples(pooling_inputs(), st.integers(0, 2**16)).map(
        lambda t: {**t[0], "permutation_seed": t[1]}
    ),
    example=PermutedAlignInputs,
)
def each_roi_is_pooled_on_its_own(impl, permutation_seed, **example):
    """The output is ``(R, C, ph, pw)``, ``R = 0`` included, and row r depends on RoI r only:
    pooling the RoIs in another order, or none of them, permutes (empties) the rows."""
    whole = _align(impl, **example)
    order = np.random.default_rng(permutation_seed).permutation(len(example["rois"]))
    reordered = _align(impl, **{**example, "rois": example["rois"][order]})
    _close(impl, reordered, whole[order], "RoIAlign of reordered RoIs", "roi-align.rois-not-independent")
    empty = _align(impl, **{**example, "rois": np.zeros((0, 4))})
    channels = example["features"].shape[0]
    expected = (0, channels, int(example["output_size"][0]), int(example["output_size"][1]))
    if empty.shape != expected:
        fail(
            "roi-align.empty-shape",
            f"RoIAlign of no RoI has shape {empty.shape}",
            list(expected),
            list(empty.shape),
        )


@st.composite
def _affine_inputs(draw):
    """An affine map ``a x + b y + c`` per channel and RoIs whose every sample lies on the map."""
    channels, height, width = draw(st.integers(1, 2)), draw(st.integers(2, 9)), draw(st.integers(2, 9))
    coefficients = (
        np.asarray(
            draw(st.lists(st.tuples(*[st.integers(-8, 8)] * 3), min_size=channels, max_size=channels)), float
        )
        / 4
    )
    rows, columns = np.mgrid[0:height, 0:width]
    features = np.stack([a * columns + b * rows + c for a, b, c in coefficients])
    stride, aligned = draw(STRIDES), draw(st.booleans())
    shift = 0.5 if aligned else 0.0
    rois = []
    for _ in range(draw(st.integers(1, 4))):
        box = []
        for size in (width, height):  # quarter-cell grid, on the map (index coordinates)
            shortest = 1 if aligned else 4  # unaligned RoIs are widened to >= 1 cell: keep them >= 1
            start = draw(st.integers(0, 4 * (size - 1) - shortest))
            length = draw(st.integers(shortest, 4 * (size - 1) - start))
            box.append((start / 4, (start + length) / 4))
        (x1, x2), (y1, y2) = box
        rois.append([(v + shift) * stride for v in (x1, y1, x2, y2)])
    return {
        "features": features,
        "rois": np.asarray(rois, dtype=np.float64),
        "output_size": (float(draw(st.integers(1, 4))), float(draw(st.integers(1, 4)))),
        "spatial_scale": 1.0 / stride,
        "sampling_ratio": draw(st.integers(0, 4)),
        "aligned": int(aligned),
    }


def _affine_coefficients(features: np.ndarray) -> np.ndarray:
    """``(C, 3)``: the a, b, c of a map built as ``a x + b y + c`` (read back from its corners)."""
    c = features[:, 0, 0]
    return np.stack([features[:, 0, 1] - c, features[:, 1, 0] - c, c], axis=1)


@prop("roi.align.affine", uses=("roi_align",), given=lambda _c: _affine_inputs(), example=AlignInputs)
def roi_align_is_exact_on_affine_maps(impl, **example):
    """On ``f(x, y) = a x + b y + c`` every bin equals f at the bin's centre (bilinear
    interpolation is exact on affine functions and the samples are symmetric about the centre),
    for RoIs whose samples all lie on the map."""
    actual = _align(impl, **example)
    coefficients = _affine_coefficients(example["features"])
    size = (int(example["output_size"][0]), int(example["output_size"][1]))
    expected = np.zeros_like(actual)
    for r, roi in enumerate(example["rois"]):
        ys, xs = ref_pool.align_sample_points(
            roi, size, example["spatial_scale"], example["sampling_ratio"], bool(example["aligned"])
        )
        centre_y, centre_x = ys.mean(axis=1), xs.mean(axis=1)
        for channel, (a, b, c) in enumerate(coefficients):
            expected[r, channel] = a * centre_x[None, :] + b * centre_y[:, None] + c
    _close(
        impl,
        actual,
        expected,
        "RoIAlign of an affine map vs its value at the bin centres",
        "roi-align.affine",
    )


@prop(
    "roi.align.half-pixel",
    uses=("roi_align",),
    given=lambda _c: pooling_inputs().map(
        lambda e: {
            **e,
            "rois": np.concatenate(
                [e["rois"][:, :2], np.maximum(e["rois"][:, 2:], e["rois"][:, :2] + 1 / e["spatial_scale"])], 1
            ),
            "aligned": 1,
        }
    ),
    example=AlignInputs,
)
def aligned_is_a_half_cell_shift(impl, **example):
    """``aligned=True`` on a RoI equals ``aligned=False`` on the RoI moved by -0.5 cell
    (``-0.5 / spatial_scale`` pixels), for RoIs at least one cell wide and high."""
    aligned = _align(impl, **example)
    shifted = example["rois"] - 0.5 / example["spatial_scale"]
    unaligned = _align(impl, **{**example, "rois": shifted, "aligned": 0})
    _close(
        impl,
        aligned,
        unaligned,
        "aligned=True vs aligned=False half a cell up and left",
        "roi-align.half-pixel",
    )


def _in_range_fraction(points: np.ndarray, size: int, margin: float) -> np.ndarray:
    """Per bin, the fraction of sample points in ``[-1, size]`` (``margin`` widens or narrows)."""
    if points.shape[1] == 0:
        return np.zeros(len(points))
    return np.mean((points >= -1 - margin) & (points <= size + margin), axis=1)


@prop(
    "roi.align.outside",
    uses=("roi_align",),
    given=lambda _c: pooling_inputs().map(
        lambda e: {**e, "features": np.broadcast_to(e["features"][:, :1, :1], e["features"].shape).copy()}
    ),
    example=AlignInputs,
)
def samples_off_the_map_read_zero(impl, **example):
    """On a constant map v, a bin is v times the fraction of its samples within one cell of the
    map (``-1 <= y <= H``, ``-1 <= x <= W``; samples there read the nearest border cell), so a
    RoI wholly outside pools 0 and one across the border is diluted -- why proposals are clipped
    to the image first."""
    actual = _align(impl, **example)
    features = example["features"]
    _, height, width = features.shape
    size = (int(example["output_size"][0]), int(example["output_size"][1]))
    for r, roi in enumerate(example["rois"]):
        ys, xs = ref_pool.align_sample_points(
            roi, size, example["spatial_scale"], example["sampling_ratio"], bool(example["aligned"])
        )
        bounds = []
        for margin in (-1e-4, 1e-4):  # a sample within 1e-4 of the edge may fall on either side
            fraction = np.outer(_in_range_fraction(ys, height, margin), _in_range_fraction(xs, width, margin))
            bounds.append(features[:, :1, :1] * fraction[None])
        low, high = np.minimum(*bounds), np.maximum(*bounds)
        band = tolerance(impl.conventions.dtype) * 10 * (1 + np.abs(high))
        bad = (actual[r] < low - band) | (actual[r] > high + band)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            fail(
                "roi-align.outside",
                f"RoI {r} {roi.tolist()} bin {list(index)} pooled {float(actual[r][index])!r} from a "
                f"constant map {float(features[index[0], 0, 0])!r}; the samples in range give "
                f"[{float(low[index])!r}, {float(high[index])!r}]",
                [float(low[index]), float(high[index])],
                float(actual[r][index]),
            )


def _pool(impl, features, rois, output_size, spatial_scale):
    size = (int(output_size[0]), int(output_size[1]))
    return impl.roi_pool(features, rois, size, spatial_scale)


def _pool_example(e: dict) -> dict:
    return {k: e[k] for k in POOL_FIELDS}


@prop(
    "roi.pool.value",
    uses=("roi_pool",),
    given=lambda _c: st.one_of(pooling_inputs().map(_pool_example), bin_hazard_inputs()),
    example=PoolInputs,
    examples=lambda _c: [
        {
            "features": np.arange(16.0).reshape(1, 4, 4),
            "rois": np.array([[8.0, 8.0, 40.0, 24.0], [24.0, 24.0, 24.0, 24.0]]),
            "output_size": (2.0, 2.0),
            "spatial_scale": 1 / 16,
        }
    ],
)
def roi_pool_is_max_over_quantised_bins(impl, **example):
    """Each bin is the max over the feature cells of its quantised bin: corners
    ``round(x · scale)`` (half away from zero), inclusive end, bins with floor/ceil edges,
    clipped to the map; a bin off the map is 0."""
    actual = _pool(impl, **example)
    expected = ref_pool.roi_pool(**example)
    if np.array_equal(actual, expected):
        return
    if np.array_equal(actual, ref_pool.roi_pool(**example, bin_edges=float32_bin_edges)):
        fail(
            "roi-pool.float32-bin-edges",
            "RoI max pooling: the bins follow float32 bin edges (ceil((p + 1) * fl(L / n)) ends a "
            "bin one cell past the exact edge), not the exact integer edges",
            expected,
            actual,
        )
    check_equal(actual, expected, "RoI max pooling", "roi-pool.value")


@prop(
    "roi.pool.quantisation",
    uses=("roi_pool",),
    given=lambda _c: st.tuples(
        pooling_inputs().map(_pool_example), st.lists(st.integers(-7, 7), min_size=40, max_size=40)
    ).map(lambda t: {**t[0], "jitter": np.asarray(t[1][: 4 * len(t[0]["rois"])], float).reshape(-1, 4) / 16}),
    example=JitteredPoolInputs,
)
def roi_pool_sees_only_quantised_corners(impl, jitter, **example):
    """Moving the corners anywhere within their rounding cell (``round(x · scale)`` unchanged)
    changes no output: RoI max pooling is blind to sub-cell positions, which RoIAlign fixes."""
    scale = example["spatial_scale"]
    cells = ref_pool.round_half_away(example["rois"] * scale)
    moved = (cells + jitter) / scale
    moved[:, 2:] = np.maximum(moved[:, 2:], moved[:, :2])  # keep x2 >= x1 (same cell: same rounding)
    before = _pool(impl, **example)
    after = _pool(impl, **{**example, "rois": moved})
    check_equal(
        after, before, f"RoI pooling after moving the corners to {moved.tolist()}", "roi-pool.sub-cell"
    )


# --- FPN levels -------------------------------------------------------------------------------


@st.composite
def _multiscale_inputs(draw):
    """Consecutive levels k_min..k_max, an image divisible by 2**k_max, and RoIs inside it (with
    room for a cell of the coarsest level to their right and below) whose sizes straddle the
    level boundaries 224 · 2**(k - 4), some exactly on one."""
    k_min = draw(st.integers(1, 4))
    k_max = draw(st.integers(k_min, min(k_min + 3, 6)))
    unit = 2**k_max
    height = unit * draw(st.integers(1, max(1, 640 // unit)))
    width = unit * draw(st.integers(1, max(1, 640 // unit)))
    rois = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            side = min(224 * 2.0 ** draw(st.integers(-3, 1)), float(min(height, width)))
            w = h = side
        else:
            w, h = draw(st.integers(1, width)), draw(st.integers(1, height))
        # room for one cell of the coarsest level: an unaligned RoI is widened to one cell
        x1 = draw(st.integers(0, int(max(0, width - max(w, unit)))))
        y1 = draw(st.integers(0, int(max(0, height - max(h, unit)))))
        rois.append([x1, y1, x1 + w, y1 + h])
    return {
        "levels": [k_min, k_max],
        "rois": np.asarray(rois, dtype=np.float64),
        "output_size": (float(draw(st.integers(1, 3))), float(draw(st.integers(1, 3)))),
        "sampling_ratio": draw(st.integers(0, 2)),
        "image_size": (float(height), float(width)),
    }


def _allowed_levels(roi: np.ndarray, k_min: int, k_max: int, band: float) -> set[int]:
    """The levels FPN eq. (1) allows: exactly on a boundary (``w h = 224² · 4**j``) only the
    upper level; within the band of one, either level."""
    area = Fraction(float(roi[2] - roi[0])) * Fraction(float(roi[3] - roi[1]))
    ratio = area / 224**2
    on_boundary = ratio > 0 and all(n & (n - 1) == 0 for n in (ratio.numerator, ratio.denominator))
    value = 4 + 0.5 * np.log2(max(float(area), 1e-300) / 224.0**2)
    nearest = round(value)
    if on_boundary and (ratio.numerator.bit_length() - ratio.denominator.bit_length()) % 2 == 0:
        levels = {nearest}
    elif abs(value - nearest) <= band:
        levels = {nearest - 1, nearest}
    else:
        levels = {int(np.floor(value))}
    return {min(max(k, k_min), k_max) for k in levels}


@prop(
    "roi.multiscale.level",
    uses=("multiscale_roi_align",),
    given=lambda _c: _multiscale_inputs(),
    example=MultiscaleInputs,
)
def rois_are_pooled_from_their_fpn_level(impl, levels, rois, output_size, sampling_ratio, image_size):
    """Each RoI is pooled from level ``floor(4 + log2(sqrt(w h) / 224))`` clamped to the levels
    given (FPN eq. (1)): with every map constant at its own level number, the output names the
    level used."""
    k_min, k_max = int(levels[0]), int(levels[1])
    height, width = int(image_size[0]), int(image_size[1])
    features = [np.full((1, height >> k, width >> k), float(k)) for k in range(k_min, k_max + 1)]
    size = (int(output_size[0]), int(output_size[1]))
    pooled = impl.multiscale_roi_align(features, rois, size, int(sampling_ratio), image_size)
    band = tolerance(impl.conventions.dtype)
    for r, roi in enumerate(rois):
        allowed = _allowed_levels(roi, k_min, k_max, band)
        used = set(np.round(pooled[r].ravel(), 3).tolist())
        if not used <= {float(k) for k in allowed}:
            side = float(np.sqrt((roi[2] - roi[0]) * (roi[3] - roi[1])))
            fail(
                "multiscale.level",
                f"RoI {r} {roi.tolist()} (sqrt(w h) = {side:.6g}) was pooled from level(s) "
                f"{sorted(used)}; FPN eq. (1) gives {sorted(allowed)}",
                sorted(allowed),
                sorted(used),
            )
