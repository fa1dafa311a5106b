"""The reference rejects what it cannot compute: a ``ValueError`` naming the argument (and the row,
where there is one), never a crash deep in NumPy, a truncated fraction or a dropped imaginary part."""

from __future__ import annotations

import numpy as np
import pytest
from detspec.reference import anchors as ref_anchors
from detspec.reference import boxes as ref_boxes
from detspec.reference import fourier as ref_fourier
from detspec.reference import proposals as ref_proposals
from detspec.reference import receptive_field as ref_rf
from detspec.reference import roi_pooling as pool
from detspec.reference import roi_targets as ref_roi
from detspec.reference import rpn_targets as ref_rpn
from detspec.reference.validation import COORDINATE_LIMIT

BOX = np.array([[0.0, 0.0, 4.0, 4.0]])
FEATURES = np.arange(16.0).reshape(1, 4, 4)
ROI = np.array([[0.0, 0.0, 2.0, 2.0]])
PYRAMID = [np.zeros((2, 16, 16)), np.zeros((2, 8, 8))]  # levels 2 and 3 of a 64 x 64 image
LOSS = {"logits": [0.0, 1.0], "deltas": np.zeros((2, 4)), "sampled": [1, 0], "targets": np.zeros((2, 4))}
HEAD = {
    "class_logits": np.zeros((2, 3)),
    "box_regression": np.zeros((2, 12)),
    "labels": [1, 0],
    "targets": np.zeros((2, 4)),
}
SAMPLING = {"proposals": BOX, "gt_boxes": BOX, "gt_labels": [1], "num_classes": 2, "batch_size": 4}


def _rejects(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("border", ["keep", "ignore"])
@pytest.mark.parametrize(
    "image_size", [(0, 10), (10, -5), (np.nan, 10), (10, np.inf), None, "ab", "abc", (True, 10), 10]
)
def test_match_anchors_checks_image_size_under_every_border_policy(image_size, border):
    _rejects(lambda: ref_rpn.match_anchors(BOX, BOX, image_size, border=border), "^image_size: ")


INVERTED = {"x": [[5.0, 0.0, 1.0, 4.0]], "y": [[0.0, 5.0, 4.0, 1.0]]}


@pytest.mark.parametrize("axis", ["x", "y"])
@pytest.mark.parametrize(
    "operation",
    [
        lambda rois: pool.roi_align(FEATURES, rois, (2, 2), 1.0),
        lambda rois: pool.roi_pool(FEATURES, rois, (2, 2), 1.0),
        lambda rois: pool.multiscale_roi_align(PYRAMID, rois, (2, 2), 2, (64, 64)),
        lambda rois: pool.fpn_levels(rois, 2, 5),
    ],
    ids=["roi_align", "roi_pool", "multiscale_roi_align", "fpn_levels"],
)
def test_inverted_rois_are_rejected(operation, axis):
    _rejects(lambda: operation(INVERTED[axis]), f"^rois: {axis}2 < {axis}1 at row 0")


@pytest.mark.parametrize("loss", [ref_rpn.rpn_loss, ref_rpn.rpn_loss_gradient], ids=["loss", "gradient"])
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sampled": [2, 0]}, r"^sampled: expected a 1-D array of 1, 0 and -1, got 2 at index 0"),
        ({"sampled": [1, 0.5]}, r"^sampled: .* got 0\.5 at index 1"),
        ({"sampled": [True, False]}, r"^sampled: expected a 1-D array of 1, 0 and -1"),
        ({"sampled": [[1, 0]]}, r"^sampled: expected a 1-D array"),
        ({"beta": -0.1}, r"^beta: expected a finite number >= 0, got -0\.1"),
        ({"beta": np.nan}, r"^beta: expected a finite number >= 0, got nan"),
        ({"beta": np.inf}, r"^beta: "),
        (
            {"anchor_locations": 0, "normaliser": "paper"},
            r"^anchor_locations: expected an integer >= 1, got 0",
        ),
        ({"anchor_locations": -3}, r"^anchor_locations: expected an integer >= 1"),
        ({"anchor_locations": 2.5}, r"^anchor_locations: expected an integer >= 1, got 2\.5"),
        ({"anchor_locations": True}, r"^anchor_locations: "),
        ({"deltas": np.zeros((3, 4))}, r"^deltas: expected 2 rows \(one per anchor of sampled\), got 3"),
        ({"targets": np.zeros((1, 4))}, r"^targets: expected 2 rows"),
    ],
)
def test_rpn_loss_rejects_bad_sampled_beta_and_locations(loss, changes, message):
    _rejects(lambda: loss(**{**LOSS, **changes}), message)


def test_rpn_loss_accepts_integral_anchor_locations_and_none():
    paper = {**LOSS, "normaliser": "paper"}
    assert (
        ref_rpn.rpn_loss(**paper, anchor_locations=4.0).tolist()
        == ref_rpn.rpn_loss(**paper, anchor_locations=4).tolist()
    )
    assert np.isfinite(ref_rpn.rpn_loss(**paper, anchor_locations=None)).all()


@pytest.mark.parametrize(
    "loss", [ref_roi.fast_rcnn_loss, ref_roi.fast_rcnn_loss_gradient], ids=["loss", "gradient"]
)
@pytest.mark.parametrize("beta", [-1.0, np.nan, np.inf, "1", None])
def test_fast_rcnn_loss_rejects_bad_beta(loss, beta):
    _rejects(lambda: loss(**HEAD, beta=beta), "^beta: expected a finite number >= 0")


@pytest.mark.parametrize("classes", [1, 3])
def test_fast_rcnn_gradient_of_no_roi_is_empty_and_the_loss_zero(classes):
    empty = {
        "class_logits": np.zeros((0, classes)),
        "box_regression": np.zeros((0, 4 * classes)),
        "labels": [],
        "targets": np.zeros((0, 4)),
    }
    assert ref_roi.fast_rcnn_loss(**empty).tolist() == [0.0, 0.0]
    gradient = ref_roi.fast_rcnn_loss_gradient(**empty)
    assert gradient.shape == (0, 5 * classes) and gradient.dtype == np.float64


def test_fast_rcnn_loss_needs_a_class_column():
    _rejects(
        lambda: ref_roi.fast_rcnn_loss(np.zeros((1, 0)), np.zeros((1, 0)), [0], np.zeros((1, 4))),
        r"^class_logits: expected at least one class",
    )


ANCHORS = np.array([[0.0, 0.0, 4.0, 4.0], [2.0, 2.0, 6.0, 6.0]])


@pytest.mark.parametrize(
    ("gt_boxes", "matched", "message"),
    [
        (BOX, [0.5, -1], r"^matched: expected integer class indices, got 0\.5 at index 0"),
        (BOX, [0, 1], r"^matched: expected -1 \(not positive\) or a GT index in \[0, 0\], got 1 at index 1"),
        (
            BOX,
            [-2, 0],
            r"^matched: expected -1 \(not positive\) or a GT index in \[0, 0\], got -2 at index 0",
        ),
        (np.zeros((0, 4)), [0, -1], r"^matched: expected -1 for every anchor: there are no GT boxes, got 0"),
        (BOX, [0], r"^matched: expected shape \(2,\), got \(1,\)"),
        (BOX, ["a", "b"], r"^matched: not a numeric array"),
    ],
)
def test_regression_targets_reject_matched_indices_that_are_not_gt_boxes(gt_boxes, matched, message):
    _rejects(lambda: ref_rpn.regression_targets(ANCHORS, gt_boxes, matched), message)


def test_regression_targets_accept_integral_floats_and_no_gt():
    targets = ref_rpn.regression_targets(ANCHORS, BOX, [0.0, -1.0])
    assert targets[1].tolist() == [0, 0, 0, 0] and np.all(np.isfinite(targets))
    assert ref_rpn.regression_targets(ANCHORS, np.zeros((0, 4)), [-1, -1]).tolist() == [[0] * 4] * 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: ref_anchors.grid_anchors((2.5, 2), 16, [32], [1.0]),
            r"^feature_size: height must be an integer >= 0, got 2\.5",
        ),
        (
            lambda: ref_anchors.grid_anchors((2, -1), 16, [32], [1.0]),
            r"^feature_size: width must be an integer >= 0, got -1",
        ),
        (
            lambda: ref_anchors.grid_anchors((2, np.nan), 16, [32], [1.0]),
            r"^feature_size: width must be an integer",
        ),
        (
            lambda: ref_anchors.grid_anchors((True, 2), 16, [32], [1.0]),
            r"^feature_size: height must be an integer",
        ),
        (
            lambda: pool.roi_align(FEATURES, ROI, (7.5, 7), 1.0),
            r"^output_size: height must be an integer >= 1, got 7\.5",
        ),
        (
            lambda: pool.roi_pool(FEATURES, ROI, (2, 1.5), 1.0),
            r"^output_size: width must be an integer >= 1, got 1\.5",
        ),
        (
            lambda: pool.multiscale_roi_align(PYRAMID, ROI, (2.5, 2), 2, (64, 64)),
            r"^output_size: height must be an integer",
        ),
        (
            lambda: pool.roi_align(FEATURES, ROI, (2, 2), 1.0, 1.5),
            r"^sampling_ratio: expected an integer >= 0, got 1\.5",
        ),
        (
            lambda: ref_rf.dependency_support([ref_rf.Layer("conv", 3)], 10, [2.5]),
            r"^cells: expected integer output cells, got 2\.5 at position 0",
        ),
        (lambda: ref_rf.dependency_support([ref_rf.Layer("conv", 3)], 10, 2), r"^cells: expected a sequence"),
        (
            lambda: ref_rf.dependency_support([ref_rf.Layer("conv", 3)], 10.5, [2]),
            r"^input_size: expected an integer >= 1, got 10\.5",
        ),
    ],
)
def test_fractional_sizes_and_cells_are_rejected_not_truncated(call, message):
    _rejects(call, message)


def test_integral_float_sizes_and_cells_are_accepted():
    assert ref_anchors.grid_anchors((2.0, 3.0), 16, [32], [1.0]).shape == (6, 4)
    assert pool.roi_align(FEATURES, ROI, (2.0, 2.0), 1.0, 2.0).shape == (1, 1, 2, 2)
    assert pool.roi_pool(FEATURES, ROI, (np.float64(2), np.int64(2)), 1.0).shape == (1, 1, 2, 2)
    layers = [ref_rf.Layer("conv", 3)]
    assert ref_rf.dependency_support(layers, 10.0, [2.0]) == ref_rf.dependency_support(layers, 10, [2])
    assert ref_rf.output_length(layers, 10.0) == 8


@pytest.mark.parametrize("stride", [0, 0.0, -16, np.nan, np.inf, None, "16", True])
@pytest.mark.parametrize(
    "call",
    [
        lambda stride: ref_anchors.cell_anchors([32], [1.0], stride),
        lambda stride: ref_anchors.cell_anchors([32], [1.0], stride, rounding="legacy"),
        lambda stride: ref_anchors.max_centre_distance(stride, "centre"),
        lambda stride: ref_anchors.grid_anchors((2, 2), stride, [32], [1.0]),
    ],
    ids=["cell_anchors", "cell_anchors-legacy", "max_centre_distance", "grid_anchors"],
)
def test_strides_must_be_finite_and_positive(call, stride):
    _rejects(lambda: call(stride), "^stride: expected a finite number > 0")


@pytest.mark.parametrize("length", [0, -3, 2.5, np.nan, None, True])
def test_output_length_needs_a_positive_integer_input(length):
    _rejects(
        lambda: ref_rf.output_length([ref_rf.Layer("conv", 3)], length),
        "^input_length: expected an integer >= 1",
    )


# --- the coordinate range ---------------------------------------------------------------------

LIMIT = COORDINATE_LIMIT
BEYOND = np.nextafter(LIMIT, np.inf)
HUGE = np.array([[-LIMIT, -LIMIT, LIMIT, LIMIT]])


def test_coordinates_at_the_limit_give_finite_areas_ious_and_deltas():
    assert ref_boxes.box_area(HUGE).tolist() == [4 * LIMIT * LIMIT]
    assert ref_boxes.box_area(HUGE, "legacy")[0] == pytest.approx(4 * LIMIT * LIMIT)
    half = np.array([[-LIMIT, -LIMIT, 0.0, LIMIT]])
    assert ref_boxes.box_iou(HUGE, np.concatenate([HUGE, half]))[0].tolist() == pytest.approx([1.0, 0.5])
    assert ref_boxes.box_iou(HUGE, HUGE, "legacy").tolist() == [[1.0]]
    tiny = np.array([[LIMIT - 2.0**450, LIMIT - 2.0**450, LIMIT, LIMIT]])
    deltas = ref_boxes.encode_boxes(HUGE, tiny)
    assert np.all(np.isfinite(deltas))
    decoded = ref_boxes.decode_boxes(HUGE, np.array([[1.0, -1.0, 5.0, 5.0]]))  # dw clamped at log 62.5
    assert np.all(np.isfinite(decoded)) and decoded[0, 2] - decoded[0, 0] == pytest.approx(125 * LIMIT)
    assert ref_boxes.nms(np.concatenate([HUGE, half]), [1.0, 0.5], 0.4).tolist() == [0]


@pytest.mark.parametrize("value", [BEYOND, -BEYOND, 1e300, np.finfo(np.float64).max])
@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda boxes: ref_boxes.box_area(boxes), "boxes"),
        (lambda boxes: ref_boxes.box_iou(boxes, BOX), "boxes1"),
        (lambda boxes: ref_boxes.box_iou(BOX, boxes), "boxes2"),
        (lambda boxes: ref_boxes.encode_boxes(boxes, BOX), "reference_boxes"),
        (lambda boxes: ref_boxes.encode_boxes(BOX, boxes), "target_boxes"),
        (lambda boxes: ref_boxes.decode_boxes(boxes, np.zeros((1, 4))), "reference_boxes"),
        (lambda boxes: ref_boxes.nms(boxes, [1.0], 0.5), "boxes"),
        (lambda boxes: pool.roi_align(FEATURES, boxes, (2, 2), 1.0), "rois"),
    ],
    ids=["area", "iou-1", "iou-2", "encode-reference", "encode-target", "decode", "nms", "roi_align"],
)
def test_coordinates_beyond_the_limit_are_rejected(call, name, value):
    boxes = np.array([[-LIMIT, -LIMIT, LIMIT, LIMIT]])
    boxes[0, 2 if value > 0 else 0] = value
    column = 2 if value > 0 else 0
    _rejects(lambda: call(boxes), rf"^{name}: .* at index \(0, {column}\) is outside the supported range")


def test_results_that_overflow_float64_are_rejected_naming_the_row():
    speck = np.array([[0.0, 0.0, 1e-300, 1e-300], [0.0, 0.0, 1.0, 1.0]])
    far = np.array([[1e10, 1e10, 1e10 + 1, 1e10 + 1], [1.0, 1.0, 2.0, 2.0]])
    _rejects(lambda: ref_boxes.encode_boxes(speck[::-1], far[::-1]), r"^target_boxes: row 1: its deltas")
    _rejects(
        lambda: ref_boxes.decode_boxes(BOX, np.array([[0.0, 0.0, 800.0, 0.0]]), clamp=800.0),
        r"^deltas: row 0: the decoded box overflows float64",
    )
    _rejects(lambda: ref_boxes.decode_boxes(HUGE, np.array([[1e300, 0.0, 0.0, 0.0]])), r"^deltas: row 0")
    assert np.isfinite(ref_boxes.decode_boxes(BOX, np.array([[0.0, 0.0, 700.0, 0.0]]), clamp=700.0)).all()


def test_scaled_rois_must_stay_in_range():
    _rejects(
        lambda: pool.roi_align(FEATURES, HUGE, (2, 2), 2.0), r"^spatial_scale: rois \* spatial_scale leaves"
    )
    assert pool.roi_align(FEATURES, HUGE, (2, 2), 1.0, 2).shape == (1, 1, 2, 2)


def test_roi_pool_bins_of_a_roi_far_larger_than_the_map_are_exact():
    far = np.array([[-1e20, -1e20, 1e20, 1e20]])
    assert pool.roi_pool(FEATURES, far, (1, 1), 1.0)[0, 0].tolist() == [[15.0]]
    # bin 0 of 2 ends at cell ceil((2e20 + 1) / 2) - 1e20 = 1: row 0 and column 0 only
    assert pool.roi_pool(FEATURES, far, (2, 2), 1.0)[0, 0].tolist() == [[0.0, 3.0], [12.0, 15.0]]


def test_adaptive_sampling_of_an_astronomical_roi_is_rejected_and_a_huge_one_is_cheap():
    rois = np.array([[0.0, 0.0, 1e17, 1e17]])
    _rejects(lambda: pool.roi_align(FEATURES, rois, (7, 7), 1.0, 0), r"^rois: row 0 .* adaptive samples")
    assert np.isfinite(pool.roi_align(FEATURES, rois, (7, 7), 1.0, 2)).all()
    # 1e12 cells: 1.4e11 samples per bin, of which only those near the map are generated
    pooled = pool.roi_align(np.ones((1, 4, 4)), [[0.0, 0.0, 1e12, 1e12]], (2, 2), 1.0, 0)
    assert 0 < pooled[0, 0, 0, 0] < 1e-9 and pooled[0, 0, 1, 1] == 0


# --- complex and non-numeric input ------------------------------------------------------------

Z = 1 + 1j


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: ref_boxes.box_area([[0, 0, Z, 1]]), "boxes"),
        (lambda: ref_boxes.box_iou(BOX, np.array([[0, 0, 1, 1]], dtype=complex)), "boxes2"),
        (lambda: ref_boxes.nms(BOX, np.array([Z]), 0.5), "scores"),
        (lambda: ref_boxes.batched_nms(BOX, [1.0], np.array([Z]), 0.5), "classes"),
        (lambda: ref_boxes.decode_boxes(BOX, np.zeros((1, 4), dtype=complex)), "deltas"),
        (lambda: ref_boxes.encode_boxes(BOX, BOX, np.ones(4, dtype=complex)), "weights"),
        (lambda: ref_anchors.cell_anchors([32 * Z], [1.0]), "sizes"),
        (lambda: ref_anchors.guaranteed_iou(8, 8, np.ones((1, 2), dtype=complex), (1, 1)), "shapes"),
        (lambda: ref_rpn.match_anchors(BOX.astype(complex), BOX, (8, 8)), "anchors"),
        (lambda: ref_rpn.sample_balanced(np.array([1, 0], dtype=complex), 2, 0.5, 0), "labels"),
        (lambda: ref_rpn.rpn_loss(**{**LOSS, "logits": np.zeros(2, dtype=complex)}), "logits"),
        (lambda: ref_rpn.rpn_loss(**{**LOSS, "sampled": np.array([1, 0], dtype=complex)}), "sampled"),
        (lambda: ref_rpn.regression_targets(BOX, BOX, np.array([0], dtype=complex)), "matched"),
        (lambda: ref_roi.sample_rois(**{**SAMPLING, "gt_labels": np.array([Z])}), "gt_labels"),
        (
            lambda: ref_roi.fast_rcnn_loss(**{**HEAD, "class_logits": np.zeros((2, 3), dtype=complex)}),
            "class_logits",
        ),
        (lambda: ref_roi.fast_rcnn_loss(**{**HEAD, "labels": np.array([1, 0], dtype=complex)}), "labels"),
        (lambda: pool.roi_align(FEATURES.astype(complex), ROI, (2, 2), 1.0), "features"),
        (lambda: pool.roi_pool(FEATURES, ROI.astype(complex), (2, 2), 1.0), "rois"),
        (
            lambda: pool.multiscale_roi_align([p.astype(complex) for p in PYRAMID], ROI, (2, 2), 2, (64, 64)),
            r"features\[0\]",
        ),
        (
            lambda: ref_proposals.generate_proposals(
                BOX, np.array([Z]), np.zeros((1, 4)), [0], (8, 8), 1, 1, 0.7, 0.0
            ),
            "logits",
        ),
        (lambda: ref_fourier.phase_only(np.ones((4, 4), dtype=complex)), "image"),
        (lambda: ref_fourier.correlation(np.ones(4, dtype=complex), np.ones(4)), "a"),
    ],
)
def test_complex_input_is_rejected_not_truncated_to_its_real_part(call, name):
    _rejects(call, rf"^{name}: .*complex")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ref_boxes.batched_nms(BOX, [1.0], ["a"], 0.5), r"^classes: not a numeric array"),
        (lambda: ref_boxes.batched_nms(BOX, [1.0], [None], 0.5), r"^classes: expected integer class indices"),
        (lambda: ref_boxes.batched_nms(BOX, [1.0], [True], 0.5), r"^classes: expected integer class indices"),
        (
            lambda: ref_boxes.batched_nms(BOX, [1.0], [np.nan], 0.5),
            r"^classes: expected integer class indices",
        ),
        (lambda: ref_boxes.box_area([[0, 0, "1", 1]]), r"^boxes: not a numeric array"),
        (lambda: ref_boxes.box_area([[0, 0, 1], [0, 0, 1, 1]]), r"^boxes: not a numeric array"),
    ],
)
def test_non_numeric_arrays_are_rejected(call, message):
    _rejects(call, message)


@pytest.mark.parametrize("seed", [1.5, "3", None, True, np.False_, -1, [1, 2]])
@pytest.mark.parametrize(
    "sampler",
    [
        lambda seed: ref_rpn.sample_balanced([1, 0, 0], 2, 0.5, seed),
        lambda seed: ref_roi.sample_rois(**SAMPLING, seed=seed),
    ],
    ids=["sample_balanced", "sample_rois"],
)
def test_samplers_reject_seeds_that_are_not_integers(sampler, seed):
    _rejects(lambda: sampler(seed), "^seed: expected an integer >= 0")


def test_samplers_accept_numpy_and_integral_float_seeds():
    labels = [1, 0, 0, 1, 0]
    same = ref_rpn.sample_balanced(labels, 3, 0.5, 7).tolist()
    assert ref_rpn.sample_balanced(labels, 3, 0.5, np.int64(7)).tolist() == same
    assert ref_rpn.sample_balanced(labels, 3, 0.5, 7.0).tolist() == same
    assert ref_rpn.sample_balanced(labels, 3, 0.5, 2**64 + 1).shape == (5,)


# --- multiscale RoIAlign ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image_size": (0, 64)}, r"^image_size: height must be a finite number > 0, got 0"),
        ({"image_size": (-64, 64)}, r"^image_size: height"),
        ({"image_size": (np.inf, 64)}, r"^image_size: height"),
        ({"image_size": None}, r"^image_size: expected \(height, width\)"),
        ({"image_size": "ab"}, r"^image_size: height"),
        ({"image_size": (1e-310, 64)}, r"^image_size: a 16-row map of a 1e-310-row image has no level"),
        ({"image_size": (1e305, 64)}, r"^image_size: the maps' strides"),
        ({"output_size": (0, 2)}, r"^output_size: height must be an integer >= 1, got 0"),
        ({"output_size": ("a", 2)}, r"^output_size: height must be an integer"),
        ({"output_size": 7}, r"^output_size: expected \(height, width\)"),
        ({"sampling_ratio": -1}, r"^sampling_ratio: expected an integer >= 0"),
        (
            {"features": [np.zeros((2, 16, 16)), np.zeros((3, 8, 8))]},
            r"^features\[1\]: 3 channels, but features\[0\] has 2",
        ),
        ({"features": [np.zeros((2, 0, 16))]}, r"^features\[0\]: the map is empty"),
        ({"features": []}, r"^features: expected a non-empty list"),
        (
            {"features": [np.zeros((2, 16, 16)), np.zeros((2, 16, 16))]},
            r"^features: expected consecutive levels",
        ),
    ],
)
def test_multiscale_roi_align_rejects_bad_sizes_and_mismatched_levels(changes, message):
    arguments = {
        "features": PYRAMID,
        "rois": ROI,
        "output_size": (2, 2),
        "sampling_ratio": 2,
        "image_size": (64, 64),
    }
    _rejects(lambda: pool.multiscale_roi_align(**{**arguments, **changes}), message)


@pytest.mark.parametrize(
    ("k_min", "k_max", "message"),
    [
        (2.5, 5, r"^k_min: expected an integer, got 2\.5"),
        (5, 2, r"^k_min: expected k_min <= k_max"),
        (2, None, "^k_max: "),
    ],
)
def test_fpn_levels_need_integer_bounds_in_order(k_min, k_max, message):
    _rejects(lambda: pool.fpn_levels(ROI, k_min, k_max), message)
