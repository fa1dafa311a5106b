"""The box reference against exact arithmetic and against its own preconditions."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from detspec.properties.exact import exact_iou
from detspec.properties.strategies.boxes import IOU_THRESHOLDS, box_arrays, pair_at_iou, score_vectors
from detspec.reference import boxes as ref
from hypothesis import given
from hypothesis import strategies as st

CONVENTIONS = st.sampled_from(["continuous", "legacy"])


@given(box_arrays(0, 6), box_arrays(0, 6), CONVENTIONS)
def test_iou_matches_exact_rational_iou(boxes1, boxes2, convention):
    offset = 1 if convention == "legacy" else 0
    actual = ref.box_iou(boxes1, boxes2, convention)
    for i, a in enumerate(boxes1):
        for j, b in enumerate(boxes2):
            exact = exact_iou(a, b, offset)
            assert abs(Fraction(float(actual[i, j])) - exact) <= Fraction(1, 2**50), (i, j)


@pytest.mark.parametrize("convention", ["continuous", "legacy"])
@pytest.mark.parametrize("shape", [(300, 500), (1, 70000), (70000, 1), (3, 0), (0, 5)])
def test_iou_blocks_give_the_iou_of_the_whole_matrix(shape, convention, monkeypatch):
    """The blocked IoU, across block boundaries (a last block shorter than the others, blocks of
    one row) and on empty sides, equals the same formula over the whole matrix, bit for bit;
    zero-area and identical boxes included."""
    rng = np.random.default_rng(sum(shape))
    offset = 1 if convention == "legacy" else 0

    def boxes(count):
        corners = rng.integers(-4, 4, (count, 2)).astype(float)
        sides = rng.integers(0, 3, (count, 2)).astype(float)  # many zero-area and equal boxes
        return np.concatenate([corners, corners + sides], axis=1)

    b1, b2 = boxes(shape[0]), boxes(shape[1])
    monkeypatch.setattr(ref, "IOU_BLOCK_PAIRS", 7000)  # several blocks even for the small case
    x1, y1, x2, y2 = (b1[:, k, None] for k in range(4))
    u1, v1, u2, v2 = (b2[None, :, k] for k in range(4))
    inter = np.maximum(np.minimum(x2, u2) - np.maximum(x1, u1) + offset, 0) * np.maximum(
        np.minimum(y2, v2) - np.maximum(y1, v1) + offset, 0
    )
    union = (x2 - x1 + offset) * (y2 - y1 + offset) + (u2 - u1 + offset) * (v2 - v1 + offset) - inter
    whole = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    np.testing.assert_array_equal(ref.box_iou(b1, b2, convention), whole)


@given(box_arrays(0, 6, exponent=0), box_arrays(0, 6, exponent=0))
def test_legacy_iou_is_continuous_iou_of_boxes_one_pixel_larger(boxes1, boxes2):
    grow = np.array([0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(
        ref.box_iou(boxes1, boxes2, "legacy"), ref.box_iou(boxes1 + grow, boxes2 + grow)
    )


@given(pair_at_iou(0))
def test_pair_at_iou_strategy_builds_exactly_that_iou(pair):
    boxes, threshold = pair
    assert exact_iou(boxes[0], boxes[1], 0) == Fraction(threshold)


def _textbook_greedy_nms(boxes, scores, threshold):
    """Greedy NMS straight from the definition, exact IoU, quadratic: a second opinion."""
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    keep: list[int] = []
    for i in order:
        if all(exact_iou(boxes[i], boxes[k], 0) <= Fraction(threshold) for k in keep):
            keep.append(i)
    return keep


@given(st.data())
def test_nms_matches_textbook_greedy_definition(data):
    boxes = data.draw(box_arrays(0, 12, exponent=0))
    scores = data.draw(score_vectors(len(boxes)))
    threshold = data.draw(IOU_THRESHOLDS)
    assert ref.nms(boxes, scores, threshold).tolist() == _textbook_greedy_nms(boxes, scores, threshold)


@given(box_arrays(1, 6, degenerate=False, exponent=0), box_arrays(1, 6, degenerate=False, exponent=0))
def test_legacy_decode_inverts_legacy_encode(anchors, targets):
    count = min(len(anchors), len(targets))
    anchors, targets = anchors[:count], targets[:count]
    deltas = ref.encode_boxes(anchors, targets, convention="legacy")
    decoded = ref.decode_boxes(anchors, deltas, clamp=50.0, convention="legacy")
    np.testing.assert_allclose(decoded, targets, rtol=1e-9, atol=1e-6)


def test_detection_head_weights_equal_dividing_by_normalisation_stds():
    anchors = np.array([[0.0, 0.0, 16.0, 32.0]])
    targets = np.array([[4.0, -8.0, 30.0, 20.0]])
    weighted = ref.encode_boxes(anchors, targets, (10.0, 10.0, 5.0, 5.0))
    normalised = ref.encode_boxes(anchors, targets) / np.array([0.1, 0.1, 0.2, 0.2])
    np.testing.assert_allclose(weighted, normalised, rtol=1e-12)


GOOD = np.array([[0.0, 0.0, 4.0, 4.0]])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ref.box_iou(np.array([[0.0, 0.0, np.nan, 1.0]]), GOOD), r"boxes1: NaN at index \(0, 2\)"),
        (lambda: ref.box_iou(GOOD, np.array([[0.0, 0.0, np.inf, 1.0]])), r"boxes2: inf at index \(0, 2\)"),
        (lambda: ref.box_iou(np.array([[5.0, 0.0, 1.0, 1.0]]), GOOD), r"boxes1: x2 < x1 at row 0"),
        (lambda: ref.box_area(np.array([[0.0, 5.0, 1.0, 1.0]])), r"boxes: y2 < y1 at row 0"),
        (lambda: ref.box_iou(np.zeros((2, 5)), GOOD), r"boxes1: expected shape \(N, 4\), got \(2, 5\)"),
        (lambda: ref.box_area(np.zeros(4)), r"expected shape \(N, 4\), got \(4,\)"),
        (lambda: ref.box_area([["a", "b", "c", "d"]]), r"boxes: not a numeric array"),
        (lambda: ref.box_iou(GOOD, GOOD, "pixel"), r"unknown box convention 'pixel'"),
        (lambda: ref.nms(GOOD, [1.0, 2.0], 0.5), r"scores: expected 1 entries"),
        (lambda: ref.nms(GOOD, [np.nan], 0.5), r"scores: NaN"),
        (lambda: ref.nms(GOOD, [1.0], 1.5), r"iou_threshold: expected a real number in \[0, 1\]"),
        (lambda: ref.batched_nms(GOOD, [1.0], [0.5], 0.5), r"classes: expected integer class indices"),
        (lambda: ref.clip_boxes_to_image(GOOD, (0, 10)), r"image_size: height must be a finite number > 0"),
        (lambda: ref.clip_boxes_to_image(GOOD, 10), r"image_size: expected \(height, width\)"),
        (lambda: ref.remove_small_boxes(GOOD, -1.0), r"min_size: expected a finite number >= 0"),
        (lambda: ref.remove_small_boxes(GOOD, 1.0, bound="open"), r"unknown min-size bound 'open'"),
        (lambda: ref.encode_boxes(GOOD, np.zeros((2, 4))), r"must pair up"),
        (lambda: ref.encode_boxes(GOOD, np.zeros((1, 4))), r"target_boxes: every box needs a positive"),
        (lambda: ref.encode_boxes(GOOD, GOOD, (1.0, 1.0, 0.0, 1.0)), r"weights: expected four positive"),
        (lambda: ref.decode_boxes(GOOD, np.zeros((2, 4))), r"deltas: expected one row per reference box"),
        (lambda: ref.decode_boxes(GOOD, np.zeros((1, 4)), clamp=np.inf), r"clamp: expected a finite"),
        (lambda: ref.decode_boxes(GOOD, np.zeros((1, 4)), clamp_mode="both"), r"unknown clamp mode"),
    ],
)
def test_invalid_input_is_rejected_with_a_message_naming_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_empty_inputs_are_valid():
    empty = np.zeros((0, 4))
    assert ref.box_iou(empty, GOOD).shape == (0, 1)
    assert ref.box_iou([], GOOD).shape == (0, 1)
    assert ref.nms(empty, np.zeros(0), 0.7).shape == (0,)
    assert ref.batched_nms(empty, np.zeros(0), np.zeros(0, int), 0.7).shape == (0,)
    assert ref.remove_small_boxes(empty, 16).shape == (0,)


@given(st.data(), st.integers(1, 4))
def test_nms_result_does_not_depend_on_the_block_size(data, block):
    boxes = data.draw(box_arrays(0, 12, exponent=0))
    scores = data.draw(score_vectors(len(boxes)))
    threshold = data.draw(IOU_THRESHOLDS)
    expected = _textbook_greedy_nms(boxes, scores, threshold)
    original = ref.NMS_BLOCK
    try:
        ref.NMS_BLOCK = block
        assert ref.nms(boxes, scores, threshold).tolist() == expected
    finally:
        ref.NMS_BLOCK = original
