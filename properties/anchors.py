"""Properties of anchor generation (``spec/anchors.md``, anchor clauses)."""

from __future__ import annotations

import math

import numpy as np
from detspec.properties.checks import check_close, check_equal, check_shape, fail, tolerance
from detspec.properties.interface import Conventions
from detspec.properties.registry import Example, Plain, Rows4, family, prop
from detspec.properties.strategies.anchors import PAPER, STRIDES, anchor_levels
from detspec.reference import anchors as ref_anchors
from detspec.reference import boxes as ref_boxes
from detspec.reference.receptive_field import RPN_CONV, VGG16_CONV5_3, receptive_field
from hypothesis import strategies as st


def _strides_per_axis(strides) -> list[list]:
    """``[along y, along x]`` per level. A level given one number (a witness stored before strides
    were per axis, or :data:`PAPER`) means that stride along both axes."""
    return [list(s) if isinstance(s, list | tuple | np.ndarray) else [s, s] for s in strides]


class _PerAxisStrides:
    """Example families with ``strides``: every level's stride is read as ``[along y, along x]``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "strides", _strides_per_axis(self.strides))


@family
class AnchorLevels(_PerAxisStrides, Example):
    """Per level: the map size [H, W], the stride [along y, along x], the sizes and the ratios
    (h/w)."""

    feature_sizes: Plain
    strides: Plain
    sizes: Plain
    ratios: Plain


@family
class AnchorLevelsAndBoxes(_PerAxisStrides, Example):
    feature_sizes: Plain
    strides: Plain
    sizes: Plain
    ratios: Plain
    gt_boxes: Rows4


@family
class AnchorLevelsAndOtherStrides(_PerAxisStrides, Example):
    """One level, and another stride [along y, along x] that differs from it on both axes."""

    feature_sizes: Plain
    strides: Plain
    sizes: Plain
    ratios: Plain
    other_strides: Plain


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


def _legacy(conventions: Conventions) -> bool:
    """py-faster-rcnn's roundings: a square base box of one stride, so equal strides only."""
    return conventions.anchor_rounding in ref_anchors.LEGACY_ROUNDINGS


def _given_levels(min_levels=1, max_levels=1, min_cells=0):
    return lambda c: anchor_levels(min_levels, max_levels, min_cells, equal_strides=_legacy(c))


def _paper_example(_conventions: Conventions):
    return [PAPER]


#: Base 32 with ratio 0.5: py-faster-rcnn's base box 45 x 22.5 rounds to 45 x 22 (half to even,
#: ``legacy``) or 45 x 23 (half away from zero, ``legacy-away``).
HALF_SIDE = {
    "feature_sizes": [[1, 2]],
    "strides": [[32, 32]],
    "sizes": [[64.0, 256.0]],
    "ratios": [[0.5, 2.0]],
}


def _levels(impl, feature_sizes, strides, sizes, ratios):
    """The implementation's anchors, split per level as ``(H, W, A, 4)`` arrays."""
    anchors = impl.grid_anchors(feature_sizes, strides, sizes, ratios)
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
    """Per anchor of ``(..., 4)`` anchors, ``ε (1 + largest |coordinate|)`` (shape ``(..., 1)``): a
    corner mixes the cell's centre and the anchor's half side and rounds at their magnitude, even
    where the two nearly cancel."""
    return tolerance(impl.conventions.dtype) * (1.0 + np.max(np.abs(anchors), axis=-1, keepdims=True))


@prop(
    "anchors.count",
    uses=("grid_anchors",),
    given=_given_levels(1, 3),
    example=AnchorLevels,
    examples=_paper_example,
)
def anchor_count_is_cells_times_shapes(impl, feature_sizes, strides, sizes, ratios):
    """H * W * A anchors per level (62 x 37 x 9 = 20,646 for the paper's VGG-16 example)."""
    anchors = impl.grid_anchors(feature_sizes, strides, sizes, ratios)
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
    """Row (y * W + x) * A + a is anchor a of cell 0 moved by (x S_x, y S_y, x S_x, y S_y), each
    axis by its own stride."""
    (grid,) = _levels(impl, feature_sizes, strides, sizes, ratios)
    height, width = grid.shape[:2]
    along_y, along_x = strides[0]
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    shift = np.stack([xs * along_x, ys * along_y, xs * along_x, ys * along_y], -1)[:, :, None, :]
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
    examples=lambda _c: [PAPER, HALF_SIDE],
)
def anchors_have_declared_size_and_ratio(impl, feature_sizes, strides, sizes, ratios):
    """Anchor a has width size/sqrt(ratio) and height size*sqrt(ratio), up to the declared rounding
    (the legacy roundings: py-faster-rcnn's sides at base size = stride, halves to even or away
    from zero)."""
    conventions = impl.conventions
    (grid,) = _levels(impl, feature_sizes, strides, sizes, ratios)
    actual = _shapes(grid[0, 0], conventions.width_offset)
    if _legacy(conventions):
        rounding = conventions.anchor_rounding
        ideal = _shapes(
            ref_anchors.cell_anchors(
                sizes[0], ratios[0], strides[0], rounding, conventions.anchor_order, conventions.box_width
            ),
            conventions.width_offset,
        )
        halves = "half away from zero" if rounding == "legacy-away" else "half to even"
        check_close(
            actual,
            ideal,
            tolerance(conventions.dtype) * (1 + ideal),
            f"legacy anchor sides (py-faster-rcnn rounding, {halves})",
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
    """Every anchor of cell (x, y) is centred on (x S_x + o_x, y S_y + o_y): each axis its own
    stride and the declared offset of that stride."""
    (grid,) = _levels(impl, feature_sizes, strides, sizes, ratios)
    along_y, along_x = strides[0]
    offset = impl.conventions.anchor_offset
    offset_x, offset_y = ref_anchors.cell_offset(along_x, offset), ref_anchors.cell_offset(along_y, offset)
    height, width = grid.shape[:2]
    centres = np.stack([grid[..., 0] + grid[..., 2], grid[..., 1] + grid[..., 3]], -1) / 2
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    cell_centres = np.stack([xs * along_x + offset_x, ys * along_y + offset_y], -1)
    expected = np.broadcast_to(cell_centres[:, :, None, :], centres.shape)
    check_close(
        centres,
        expected,
        _coordinate_tolerance(impl, grid),
        f"anchor centres ({offset} offset: {offset_x} along x, {offset_y} along y)",
        "anchors.centre",
    )


def _identifiable_levels(conventions: Conventions):
    """Anchors of 32 px and more: rounding moves a side by at most 1 px, far less than the 25 %
    between declared sizes and ratios, so every anchor's (size, ratio) can be read off its shape.
    The sizes are scaled up together (raising only the small ones could bring two within 1 px:
    a thorough run found 32 and 33 collapsing to one rounded anchor)."""
    return anchor_levels(1, 1, 1, equal_strides=_legacy(conventions)).map(
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
        "the legacy roundings are checked side by side by anchors.shape" if _legacy(c) else None
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
    together = impl.grid_anchors(feature_sizes, strides, sizes, ratios)
    parts = [
        impl.grid_anchors([f], [s], [z], [r])
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
    """Every image point lies within half a stride of some anchor centre, along each axis with
    that axis' stride."""
    (grid,) = _levels(impl, feature_sizes, strides, sizes, ratios)
    along_y, along_x = strides[0]
    offset = impl.conventions.width_offset
    for axis, length, stride in ((0, grid.shape[1], along_x), (1, grid.shape[0], along_y)):
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
def _levels_and_boxes(draw, equal_strides: bool):
    levels = draw(anchor_levels(1, 1, 1, equal_strides))
    height, width = levels["feature_sizes"][0]
    along_y, along_x = levels["strides"][0]
    right, bottom = width * along_x, height * along_y  # the image the map covers
    boxes = []
    for _ in range(draw(st.integers(1, 5))):
        x1 = draw(st.integers(0, right - 1))
        y1 = draw(st.integers(0, bottom - 1))
        boxes.append([x1, y1, draw(st.integers(x1 + 1, right)), draw(st.integers(y1 + 1, bottom))])
    return {**levels, "gt_boxes": np.asarray(boxes, dtype=np.float64)}


@prop(
    "anchors.coverage.iou",
    uses=("grid_anchors",),
    given=lambda c: _levels_and_boxes(_legacy(c)),
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
    along_y, along_x = strides[0]
    reach = tuple(
        ref_anchors.max_centre_distance(stride, conventions.anchor_offset, conventions.box_width)
        for stride in (along_x, along_y)
    )
    if not len(anchors):
        return
    best = ref_boxes.box_iou(gt_boxes, anchors, conventions.box_width).max(axis=1)
    for row, box in enumerate(gt_boxes):
        w, h = box[2] - box[0] + conventions.width_offset, box[3] - box[1] + conventions.width_offset
        bound = ref_anchors.guaranteed_iou(w, h, shapes, reach)
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
        {
            "feature_sizes": [[1, 1]],
            "strides": [[16, 16]],
            "sizes": [[128, 256, 512]],
            "ratios": [[0.5, 1.0, 2.0]],
        }
    ),
    example=AnchorLevels,
    applies=lambda c: None if _legacy(c) else "only for the legacy roundings",
)
def legacy_anchors_reproduce_py_faster_rcnn(impl, feature_sizes, strides, sizes, ratios):
    """Base 16, ratios (0.5, 1, 2), scales (8, 16, 32) give py-faster-rcnn's nine anchors exactly
    (no side of base 16 ends in a half, so both legacy roundings give them)."""
    anchors = impl.grid_anchors(feature_sizes, strides, sizes, ratios)
    expected = PFR_TABLE
    if impl.conventions.anchor_order == "size-major":
        expected = expected.reshape(3, 3, 4).transpose(1, 0, 2).reshape(-1, 4)
    check_equal(anchors, expected, "py-faster-rcnn base anchors", "anchors.legacy-table")


@prop(
    "anchors.centre.receptive-field",
    uses=("grid_anchors",),
    given=lambda _c: st.just(
        {"feature_sizes": [[4, 4]], "strides": [[16, 16]], "sizes": [[128.0]], "ratios": [[1.0]]}
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
        _coordinate_tolerance(impl, grid)[..., 0],
        "anchor centre vs receptive-field centre (VGG-16)",
        "anchors.off-receptive-field-centre",
    )


@st.composite
def _levels_and_other_strides(draw):
    """One level with at least one cell, and a stride that differs from its own on both axes."""
    level = draw(anchor_levels(1, 1, 1))
    other = []
    for along in level["strides"][0]:
        candidate = draw(STRIDES)
        other.append(candidate if candidate != along else 2 * along)
    return {**level, "other_strides": [other]}


@prop(
    "anchors.stride.per-axis",
    uses=("grid_anchors",),
    given=lambda _c: _levels_and_other_strides(),
    example=AnchorLevelsAndOtherStrides,
    examples=lambda _c: [{**PAPER, "strides": [[4, 64]], "other_strides": [[64, 4]]}],
    applies=lambda c: "the legacy roundings take one stride for both axes" if _legacy(c) else None,
)
def each_axis_follows_its_own_stride(impl, feature_sizes, strides, sizes, ratios, other_strides):
    """Changing only the stride along x leaves every y coordinate as it was, and changing only the
    stride along y every x coordinate: each axis is placed by its own stride."""
    (along_y, along_x), (other_y, other_x) = strides[0], other_strides[0]
    anchors = impl.grid_anchors(feature_sizes, strides, sizes, ratios)
    for changed, kept, columns, name in (
        ([[along_y, other_x]], "y", [1, 3], "x"),
        ([[other_y, along_x]], "x", [0, 2], "y"),
    ):
        moved = impl.grid_anchors(feature_sizes, changed, sizes, ratios)
        check_shape(moved, anchors.shape, f"anchors with strides {changed}", "anchors.count")
        check_close(
            moved[:, columns],
            anchors[:, columns],
            _coordinate_tolerance(impl, anchors),
            f"{kept} coordinates with strides {changed[0]} instead of {strides[0]} (only the {name} "
            "stride changed)",
            "anchors.other-axis-stride",
        )
