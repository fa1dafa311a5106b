"""Properties of RoI feature extraction: RoIAlign, RoIPool and the FPN level mapping
(``spec/roi_head.md``, "RoI feature extraction").

Feature maps hold small dyadic values (times a power of two) and RoIs lie on a quarter- or
sixteenth-cell grid, so that quantisation (``round``) and max pooling are exact in float32 too,
and "exactly half a cell" occurs.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from detspec.properties.checks import check_close, check_equal, check_shape, fail, tolerance
from detspec.properties.interface import Conventions
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
from detspec.properties.strategies.roi import (
    STRIDES,
    align_value_inputs,
    bin_hazard_inputs,
    float32_bin_edges,
    multiscale_inputs,
    multiscale_value_inputs,
    pooling_inputs,
    pyramid,
)
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


@family
class MultiscaleMaps(Example):
    """Levels [k_min, k_max] of an image with random maps (``strategies.roi.pyramid``: drawn
    from ``map_seed``, ``channels`` of them, times ``magnitude``), RoIs and settings."""

    levels: Plain
    channels: Integer
    map_seed: Integer
    magnitude: Number
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


def _near(points: np.ndarray, edges: tuple[float, float], margin: float) -> np.ndarray:
    """Per bin (row of ``points``), the fraction of its samples within ``margin`` of an edge."""
    if points.shape[1] == 0:
        return np.zeros(len(points))
    return np.mean(np.min([np.abs(points - edge) for edge in edges], axis=0) <= margin, axis=1)


def _align_tolerance(impl, features, rois, output_size, spatial_scale, sampling_ratio, aligned) -> np.ndarray:
    """``(R, 1, ph, pw)``: how far a correct RoIAlign in the declared precision may be from the
    reference, per bin. Round-off moves a sample by ``ε`` times the largest coordinate involved
    (``reach`` cells) and the value by up to twice the map's magnitude ``M`` per cell moved, plus
    the rounding of the sums: ``10 ε M reach``. A sample within ``10 ε reach`` of ``-1`` or of the
    far edge ``H`` (``W``), where RoIAlign jumps between the border cell's value and 0, may fall on
    either side (float noise never decides a verdict): each such sample adds ``M / samples``."""
    eps = tolerance(impl.conventions.dtype)
    _, height, width = np.shape(features)
    magnitude = float(np.max(np.abs(features))) if np.size(features) else 0.0
    tol = np.zeros((len(rois), 1, int(output_size[0]), int(output_size[1])))
    for r, roi in enumerate(rois):
        ys, xs = ref_pool.align_sample_points(roi, output_size, spatial_scale, sampling_ratio, bool(aligned))
        reach = 1.0 + max(height, width, float(np.max(np.abs(roi))) * spatial_scale + 1.0)
        margin = 10 * eps * reach
        near_y = _near(ys, (-1.0, float(height)), margin)
        near_x = _near(xs, (-1.0, float(width)), margin)
        undecided = 1.0 - np.outer(1.0 - near_y, 1.0 - near_x)
        tol[r, 0] = 10 * eps * magnitude * reach + undecided * magnitude
    return tol


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
    "roi.align.value",
    uses=("roi_align",),
    given=lambda _c: align_value_inputs(),
    example=AlignInputs,
    examples=lambda _c: [
        {  # a RoI across the top-left corner of a 3 x 4 map: samples in [-1, 0) read row / column 0
            "features": np.arange(12.0).reshape(1, 3, 4) ** 2 / 4,
            "rois": np.array([[-1.5, -1.25, 2.5, 1.75]]),
            "output_size": (2.0, 3.0),
            "spatial_scale": 1.0,
            "sampling_ratio": 0,
            "aligned": 0,
        }
    ],
)
def roi_align_matches_the_reference(impl, **example):
    """On general inputs -- random maps of any magnitude, RoIs across the border and off the map,
    fractional bins, adaptive and fixed sampling, aligned or not -- every bin is the reference's
    RoIAlign within a tolerance relative to the map's magnitude (samples at the jump at -1 or at the
    far edge may go either way)."""
    actual = _align(impl, **example)
    size = (int(example["output_size"][0]), int(example["output_size"][1]))
    arguments = (
        example["features"],
        example["rois"],
        size,
        example["spatial_scale"],
        int(example["sampling_ratio"]),
        bool(example["aligned"]),
    )
    check_close(
        actual,
        ref_pool.roi_align(*arguments),
        _align_tolerance(impl, *arguments),
        "RoIAlign vs the reference",
        "roi-align.value",
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
    given=lambda _c: st.one_of(pooling_inputs(magnitudes=True).map(_pool_example), bin_hazard_inputs()),
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
    clipped to the map; a bin off the map is 0. Compared exactly with the reference on general
    inputs: random maps of every magnitude (``2**-40`` to ``2**40``), RoIs inside, across the
    border, outside, tiny and empty, and the float32 bin hazards."""
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


def _square(conventions: Conventions) -> bool:
    return conventions.multiscale_output == "square"


def _allowed_levels(roi: np.ndarray, k_min: int, k_max: int, band: float, mapping: str) -> set[int]:
    """The levels the declared mapping allows (``reference.roi_pooling.fpn_level_rule``): exactly
    on a boundary (``w h = scale² · 4**j``) only the upper level; within the band of one, either
    level."""
    base, scale = ref_pool.fpn_level_rule(mapping, k_min)
    area = Fraction(float(roi[2] - roi[0])) * Fraction(float(roi[3] - roi[1]))
    ratio = area / Fraction(scale) ** 2
    on_boundary = ratio > 0 and all(n & (n - 1) == 0 for n in (ratio.numerator, ratio.denominator))
    value = base + 0.5 * np.log2(max(float(area), 1e-300) / scale**2)
    nearest = round(value)
    if on_boundary and (ratio.numerator.bit_length() - ratio.denominator.bit_length()) % 2 == 0:
        levels = {nearest}
    elif abs(value - nearest) <= band:
        levels = {nearest - 1, nearest}
    else:
        levels = {int(np.floor(value))}
    return {min(max(k, k_min), k_max) for k in levels}


def _mapping_name(mapping: str) -> str:
    return "FPN eq. (1)" if mapping == "canonical" else "the finest-56 mapping (mmdetection)"


@prop(
    "roi.multiscale.level",
    uses=("multiscale_roi_align",),
    given=lambda c: multiscale_inputs(square=_square(c)),
    example=MultiscaleInputs,
    examples=lambda _c: [
        {  # on a boundary of both mappings (56 px), zero area, and one level up
            "levels": [2, 4],
            "rois": np.array([[0.0, 0.0, 56.0, 56.0], [4.0, 4.0, 4.0, 12.0], [0.0, 0.0, 64.0, 64.0]]),
            "output_size": (1.0, 1.0),
            "sampling_ratio": 0,
            "image_size": (64.0, 64.0),
        }
    ],
)
def rois_are_pooled_from_their_fpn_level(impl, levels, rois, output_size, sampling_ratio, image_size):
    """Each RoI is pooled from the level of the declared mapping -- ``floor(4 + log2(sqrt(w h) /
    224))`` (canonical) or ``k_min + floor(log2(sqrt(w h) / 56))`` (finest-56) -- clamped to the
    levels given: with every map constant at its own level number, the output names the level
    used (a RoI whose bins get no sample -- a side of 0 under half-pixel alignment and adaptive
    sampling -- pools 0 on any level)."""
    k_min, k_max = int(levels[0]), int(levels[1])
    height, width = int(image_size[0]), int(image_size[1])
    features = [np.full((1, height >> k, width >> k), float(k)) for k in range(k_min, k_max + 1)]
    size = (int(output_size[0]), int(output_size[1]))
    pooled = impl.multiscale_roi_align(features, rois, size, int(sampling_ratio), image_size)
    band = tolerance(impl.conventions.dtype)
    mapping = impl.conventions.fpn_level_mapping
    aligned = impl.conventions.multiscale_alignment == "half-pixel"
    for r, roi in enumerate(rois):
        allowed = _allowed_levels(roi, k_min, k_max, band, mapping)
        values = {float(k) for k in allowed}
        ys, xs = ref_pool.align_sample_points(roi, size, 1.0, int(sampling_ratio), aligned)
        if ys.shape[1] == 0 or xs.shape[1] == 0:  # a side of 0, aligned, adaptive: no sample, 0
            values.add(0.0)
        used = set(np.round(pooled[r].ravel(), 3).tolist())
        if not used <= values:
            side = float(np.sqrt((roi[2] - roi[0]) * (roi[3] - roi[1])))
            fail(
                "multiscale.level",
                f"RoI {r} {roi.tolist()} (sqrt(w h) = {side:.6g}) was pooled from level(s) "
                f"{sorted(used)}; {_mapping_name(mapping)} gives {sorted(allowed)}",
                sorted(allowed),
                sorted(used),
            )


@prop(
    "roi.multiscale.value",
    uses=("multiscale_roi_align",),
    given=lambda c: multiscale_value_inputs(square=_square(c)),
    example=MultiscaleMaps,
    examples=lambda _c: [
        {  # a pyramid from P3: the mappings differ; a zero-area RoI; one across the border
            "levels": [3, 4],
            "channels": 2,
            "map_seed": 16,
            "magnitude": 1.0,
            "rois": np.array([[0.0, 0.0, 112.0, 112.0], [8.0, 8.0, 8.0, 40.0], [-20.0, 100.0, 60.0, 140.0]]),
            "output_size": (2.0, 2.0),
            "sampling_ratio": 0,
            "image_size": (128.0, 128.0),
        }
    ],
)
def multiscale_roi_align_matches_the_reference(
    impl, levels, channels, map_seed, magnitude, rois, output_size, sampling_ratio, image_size
):
    """On random maps, each RoI is the reference's RoIAlign of its level's map at that level's
    scale, with the declared alignment (``corner``: aligned=False, ``half-pixel``: aligned=True),
    within RoIAlign's tolerance; a RoI within the band of a level boundary may take either
    level's values."""
    k_min, k_max = int(levels[0]), int(levels[1])
    maps = pyramid(levels, image_size, channels, map_seed, magnitude)
    size = (int(output_size[0]), int(output_size[1]))
    pooled = impl.multiscale_roi_align(maps, rois, size, int(sampling_ratio), image_size)
    check_shape(pooled, (len(rois), int(channels), *size), "multiscale_roi_align", "multiscale.shape")
    conventions = impl.conventions
    aligned = conventions.multiscale_alignment == "half-pixel"
    band = tolerance(conventions.dtype)
    for r, roi in enumerate(rois):
        allowed = sorted(_allowed_levels(roi, k_min, k_max, band, conventions.fpn_level_mapping))
        candidates = []
        for level in allowed:
            arguments = (maps[level - k_min], roi[None], size, 2.0**-level, int(sampling_ratio), aligned)
            expected = ref_pool.roi_align(*arguments)[0]
            tol = _align_tolerance(impl, *arguments)[0]
            if np.all(np.abs(pooled[r] - expected) <= tol):
                break
            candidates.append((level, expected, tol))
        else:
            level, expected, tol = candidates[0]
            check_close(
                pooled[r],
                expected,
                tol,
                f"RoI {r} {roi.tolist()} vs RoIAlign (aligned={aligned}) of level {level}"
                + (f" (levels {allowed} allowed)" if len(allowed) > 1 else ""),
                "multiscale.value",
            )
