"""Properties of anchor generation (``spec/anchors.md``, anchor clauses)."""

from __future__ import annotations

import math

import numpy as np
from detspec.properties.checks import check_close, check_equal, check_shape, fail, tolerance
from detspec.properties.interface import Conventions
from detspec.properties.registry import Example, Plain, Rows4, family, prop
from detspec.properties.strategies.anchors import PAPER, anchor_levels
from detspec.reference import anchors as ref_anchors
from detspec.reference import boxes as ref_boxes
from detspec.reference.receptive_field import RPN_CONV, VGG16_CONV5_3, receptive_field
from hypothesis import strategies as st


@family
class AnchorLevels(Example):
    """Per level: the map size [H, W], the stride, the sizes and the ratios (h/w)."""

    feature_sizes: Plain
    strides: Plain
    sizes: Plain
    ratios: Plain


@family
class AnchorLevelsAndBoxes(Example):
    feature_sizes: Plain
    strides: Plain
    sizes: Plain
    ratios: Plain
    gt_boxes: Rows4


def per_axis(strides) -> list[list[float]]:
    """Strides as the interface takes them: (along y, along x) per level."""
    return [
        [float(s), float(s)] if not isinstance(s, list | tuple) else [float(v) for v in s] for s in strides
    ]


#: py-faster-rcnn's nine base anchors (``generate_anchors()`` run in Python; its comment block
#: lists the 1-based MATLAB values, one more in every coordinate, which are not the oracle).
PFR_TABLE = np.array(
    [
        [-84, -40, 99, 55],
        [-176, -88, 191, 103],
        [-360, -184, 375, 199],
        [-56, -56, 71, 71],
        [-120, -120, 135, 135],
        [-248, -248, 263, 263],
        [-36, -80, 51, 95],
        [-80, -168, 95, 183],
        [-168, -344, 183, 359],
    ],
    dtype=np.float64,
)


def _given_levels(min_levels=1, max_levels=1, min_cells=0):
    return lambda _c: anchor_levels(min_levels, max_levels, min_cells)


def _paper_example(_conventions: Conventions):
    return [PAPER]


def _levels(impl, feature_sizes, strides, sizes, ratios):
    """The implementation's anchors, split per level as ``(H, W, A, 4)`` arrays."""
    anchors = impl.grid_anchors(feature_sizes, per_axis(strides), sizes, ratios)
    out, start = [], 0
    for (height, width), level_sizes, level_ratios in zip(feature_sizes, sizes, ratios, strict=True):
        count = len(level_sizes) * len(level_ratios)
        stop = start + height * width * count
        out.append(anchors[start:stop].reshape(height, width, count, 4))
        start = stop
    return out


def _shapes(anchors: np.ndarray, width_offset: int) -> np.ndarray:
    return np.stack([anchors[..., 2] - anchors[..., 0], anchors[..., 3] - anchors[..., 1]], -1) + width_offset


def _declared_grid(conventions: Conventions, sizes, ratios):
    """(size, ratio) of each anchor of a cell, in the declared order."""
    pairs = [(s, r) for r in ratios for s in sizes]
    if conventions.anchor_order == "size-major":
        pairs = [(s, r) for s in sizes for r in ratios]
    return pairs


def _coordinate_tolerance(impl, anchors: np.ndarray) -> np.ndarray:
    return tolerance(impl.conventions.dtype) * (1.0 + np.abs(anchors))


@prop(
    "anchors.count",
    uses=("grid_anchors",),
    given=_given_levels(1, 3),
    example=AnchorLevels,
    examples=_paper_example,
)
def anchor_count_is_cells_times_shapes(impl, feature_sizes, strides, sizes, ratios):
    """H * W * A anchors per level (62 x 37 x 9 = 20,646 for the paper's VGG-16 example)."""
    anchors = impl.grid_anchors(feature_sizes, per_axis(strides), sizes, ratios)
    expected = sum(h * w * len(s) * len(r) for (h, w), s, r in zip(feature_sizes, sizes, ratios, strict=True))
    check_shape(anchors, (expected, 4), "grid_anchors", "anchors.count")


@prop(
    "anchors.shift",
    uses=("grid_anchors",),
    given=_given_levels(1, 1, 1),
    example=AnchorLevels,
    examples=_paper_example,
)
def anchors_of_a_cell_are_the_first_cell_shifted(impl, feature_sizes, strides, sizes, ratios):
    """Row (y * W + x) * A + a is anchor a of cell 0 moved by stride * (x, y, x, y)."""
    (grid,) = _levels(impl, feature_sizes, strides, sizes, ratios)
    height, width = grid.shape[:2]
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    shift = strides[0] * np.stack([xs, ys, xs, ys], -1)[:, :, None, :]
    expected = grid[0, 0][None, None] + shift
    check_close(
        grid,
        expected,
        _coordinate_tolerance(impl, expected),
        "anchors vs shifted cell-0 anchors",
        "anchors.shift",
    )


@prop(
    "anchors.shape",
    uses=("grid_anchors",),
    given=_given_levels(1, 1, 1),
    example=AnchorLevels,
    examples=_paper_example,
)
def anchors_have_declared_size_and_ratio(impl, feature_sizes, strides, sizes, ratios):
    """Anchor a has width size/sqrt(ratio) and height size*sqrt(ratio), up to the declared rounding."""
    conventions = impl.conventions
    (grid,) = _levels(impl, feature_sizes, strides, sizes, ratios)
    actual = _shapes(grid[0, 0], conventions.width_offset)
    if conventions.anchor_rounding == "legacy":
        ideal = _shapes(
            ref_anchors.cell_anchors(
                sizes[0], ratios[0], strides[0], "legacy", conventions.anchor_order, conventions.box_width
            ),
            conventions.width_offset,
        )
        check_close(
            actual,
            ideal,
            tolerance(conventions.dtype) * (1 + ideal),
            "legacy anchor sides (py-faster-rcnn rounding)",
            "anchors.shape",
        )
        return
    ideal = np.array(
        [(s / math.sqrt(r), s * math.sqrt(r)) for s, r in _declared_grid(conventions, sizes[0], ratios[0])]
    )
    tol = tolerance(conventions.dtype) * (1 + ideal)
    if conventions.anchor_rounding == "round-corners":
        tol = tol + 1.0  # each of the two corners moves by at most half a pixel
    check_close(
        actual,
        ideal,
        tol,
        f"anchor (width, height) for (size, ratio) in {conventions.anchor_order} order",
        "anchors.shape",
    )


@prop(
    "anchors.centre",
    uses=("grid_anchors",),
    given=_given_levels(1, 1, 1),
    example=AnchorLevels,
    examples=_paper_example,
)
def anchors_are_centred_on_their_cell(impl, feature_sizes, strides, sizes, ratios):
    """Every anchor of cell (x, y) is centred on (x * stride + o, y * stride + o), o as declared."""
    (grid,) = _levels(impl, feature_sizes, strides, sizes, ratios)
    offset = ref_anchors.cell_offset(strides[0], impl.conventions.anchor_offset)
    height, width = grid.shape[:2]
    centres = np.stack([grid[..., 0] + grid[..., 2], grid[..., 1] + grid[..., 3]], -1) / 2
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    expected = np.broadcast_to((np.stack([xs, ys], -1) * strides[0] + offset)[:, :, None, :], centres.shape)
    check_close(
        centres,
        expected,
        _coordinate_tolerance(impl, expected),
        f"anchor centres ({impl.conventions.anchor_offset} offset {offset})",
        "anchors.centre",
    )


def _identifiable_levels(_conventions: Conventions):
    """Anchors of 32 px and more: rounding moves a side by at most 1 px, far less than the 25 %
    between declared sizes and ratios, so every anchor's (size, ratio) can be read off its shape.
    The sizes are scaled up together (raising only the small ones could bring two within 1 px:
    a thorough run found 32 and 33 collapsing to one rounded anchor)."""
    return anchor_levels(1, 1, 1).map(
        lambda level: {
            **level,
            "sizes": [[s * max(1.0, 32.0 / min(level["sizes"][0])) for s in level["sizes"][0]]],
        }
    )


@prop(
    "anchors.order",
    uses=("grid_anchors",),
    given=_identifiable_levels,
    example=AnchorLevels,
    examples=_paper_example,
    applies=lambda c: (
        "the legacy rounding is checked side by side by anchors.shape"
        if c.anchor_rounding == "legacy"
        else None
    ),
)
def cell_anchors_follow_declared_order(impl, feature_sizes, strides, sizes, ratios):
    """Within a cell, anchors come ratio-major (a = ratio index * sizes + size index) or
    size-major, as declared; each anchor is identified by its shape."""
    conventions = impl.conventions
    (grid,) = _levels(impl, feature_sizes, strides, sizes, ratios)
    shapes = _shapes(grid[0, 0], conventions.width_offset)
    log_size = np.log(np.sqrt(np.maximum(shapes[:, 0] * shapes[:, 1], 1e-300)))
    log_ratio = np.log(np.maximum(shapes[:, 1], 1e-300) / np.maximum(shapes[:, 0], 1e-300))
    size_index = np.argmin(np.abs(log_size[:, None] - np.log(sizes[0])[None]), axis=1)
    ratio_index = np.argmin(np.abs(log_ratio[:, None] - np.log(ratios[0])[None]), axis=1)
    found = [(float(sizes[0][s]), float(ratios[0][r])) for s, r in zip(size_index, ratio_index, strict=True)]
    expected = [(float(s), float(r)) for s, r in _declared_grid(conventions, sizes[0], ratios[0])]
    if found != expected:
        fail("anchors.order", f"cell anchors are not in {conventions.anchor_order} order", expected, found)


@prop("anchors.levels", uses=("grid_anchors",), given=_given_levels(2, 3), example=AnchorLevels)
def levels_are_concatenated_in_order(impl, feature_sizes, strides, sizes, ratios):
    """Anchors of several levels are each level's anchors, concatenated in level order."""
    together = impl.grid_anchors(feature_sizes, per_axis(strides), sizes, ratios)
    parts = [
        impl.grid_anchors([f], per_axis([s]), [z], [r])
        for f, s, z, r in zip(feature_sizes, strides, sizes, ratios, strict=True)
    ]
    check_equal(together, np.concatenate(parts), "multi-level anchors vs levels one by one", "anchors.levels")


@prop(
    "anchors.coverage.centres",
    uses=("grid_anchors",),
    given=_given_levels(1, 1, 1),
    example=AnchorLevels,
    examples=_paper_example,
)
def anchor_centres_cover_the_image(impl, feature_sizes, strides, sizes, ratios):
    """Every image point lies within half a stride (per axis) of some anchor centre."""
    (grid,) = _levels(impl, feature_sizes, strides, sizes, ratios)
    stride, offset = strides[0], impl.conventions.width_offset
    for axis, length in ((0, grid.shape[1]), (1, grid.shape[0])):
        low, high = grid[..., axis], grid[..., axis + 2]
        centres = np.unique((low + high) / 2)
        end = length * stride - offset  # the image's far edge along this axis
        gaps = np.concatenate([[centres[0] * 2], np.diff(centres), [(end - centres[-1]) * 2]])
        if np.max(gaps) > stride * (1 + tolerance(impl.conventions.dtype)):
            name = "xy"[axis]
            fail(
                "anchors.uncovered",
                f"an image point is more than half a stride ({stride / 2}) along {name} from every "
                f"anchor centre: centres span [{centres[0]}, {centres[-1]}] in an image [0, {end}]",
                f"<= {stride / 2}",
                float(np.max(gaps) / 2),
            )


@st.composite
def _levels_and_boxes(draw):
    levels = draw(anchor_levels(1, 1, 1))
    height, width = levels["feature_sizes"][0]
    stride = levels["strides"][0]
    boxes = []
    for _ in range(draw(st.integers(1, 5))):
        x1 = draw(st.integers(0, width * stride - 1))
        y1 = draw(st.integers(0, height * stride - 1))
        boxes.append(
            [x1, y1, draw(st.integers(x1 + 1, width * stride)), draw(st.integers(y1 + 1, height * stride))]
        )
    return {**levels, "gt_boxes": np.asarray(boxes, dtype=np.float64)}


@prop(
    "anchors.coverage.iou",
    uses=("grid_anchors",),
    given=lambda _c: _levels_and_boxes(),
    example=AnchorLevelsAndBoxes,
)
def some_anchor_reaches_the_guaranteed_iou(impl, feature_sizes, strides, sizes, ratios, gt_boxes):
    """Every box inside the image has an anchor with IoU >= the bound of ``guaranteed_iou``."""
    conventions = impl.conventions
    (grid,) = _levels(impl, feature_sizes, strides, sizes, ratios)
    shapes = _shapes(grid[0, 0], conventions.width_offset)
    # Rounding can leave an anchor with no extent (legacy rounding at stride 1), and a legacy box
    # is at least one pixel wide: such anchors cover nothing and are left out.
    usable = np.all(shapes >= 1 if conventions.width_offset else shapes > 0, axis=1)
    anchors = grid[:, :, usable].reshape(-1, 4)
    shapes = shapes[usable]
    reach = ref_anchors.max_centre_distance(strides[0], conventions.anchor_offset, conventions.box_width)
    if not len(anchors):
        return
    best = ref_boxes.box_iou(gt_boxes, anchors, conventions.box_width).max(axis=1)
    for row, box in enumerate(gt_boxes):
        w, h = box[2] - box[0] + conventions.width_offset, box[3] - box[1] + conventions.width_offset
        bound = ref_anchors.guaranteed_iou(w, h, shapes, (reach, reach))
        # the anchors come in the declared precision: a float32 anchor equal to the float64 one
        # up to rounding may miss the bound by that rounding
        if best[row] < bound - tolerance(conventions.dtype):
            fail(
                "anchors.iou-below-bound",
                f"box {row} {box.tolist()} overlaps no anchor by the guaranteed IoU {bound:.4f}",
                bound,
                float(best[row]),
            )


@prop(
    "anchors.legacy-table",
    uses=("grid_anchors",),
    given=lambda _c: st.just(
        {"feature_sizes": [[1, 1]], "strides": [16], "sizes": [[128, 256, 512]], "ratios": [[0.5, 1.0, 2.0]]}
    ),
    example=AnchorLevels,
    applies=lambda c: None if c.anchor_rounding == "legacy" else "only for the legacy rounding",
)
def legacy_anchors_reproduce_py_faster_rcnn(impl, feature_sizes, strides, sizes, ratios):
    """Base 16, ratios (0.5, 1, 2), scales (8, 16, 32) give py-faster-rcnn's nine anchors exactly."""
    anchors = impl.grid_anchors(feature_sizes, per_axis(strides), sizes, ratios)
    expected = PFR_TABLE
    if impl.conventions.anchor_order == "size-major":
        expected = expected.reshape(3, 3, 4).transpose(1, 0, 2).reshape(-1, 4)
    check_equal(anchors, expected, "py-faster-rcnn base anchors", "anchors.legacy-table")


@prop(
    "anchors.centre.receptive-field",
    uses=("grid_anchors",),
    given=lambda _c: st.just(
        {"feature_sizes": [[4, 4]], "strides": [16], "sizes": [[128.0]], "ratios": [[1.0]]}
    ),
    example=AnchorLevels,
)
def vgg16_anchors_sit_on_receptive_field_centres(impl, feature_sizes, strides, sizes, ratios):
    """VGG-16 (conv5_3 + RPN conv): anchor centres coincide with their cells' receptive-field centres."""
    field = receptive_field([*VGG16_CONV5_3, RPN_CONV])
    (grid,) = _levels(impl, feature_sizes, strides, sizes, ratios)
    centres = (grid[..., 0] + grid[..., 2]) / 2  # along x
    # pixel-index coordinates (legacy boxes) or continuous ones, where pixel i spans [i, i + 1]
    shift = 0.0 if impl.conventions.box_width == "legacy" else 0.5
    expected = np.broadcast_to(
        (field.start + shift + np.arange(grid.shape[1]) * field.jump)[None, :, None], centres.shape
    )
    check_close(
        centres,
        expected,
        _coordinate_tolerance(impl, expected),
        "anchor centre vs receptive-field centre (VGG-16)",
        "anchors.off-receptive-field-centre",
    )
