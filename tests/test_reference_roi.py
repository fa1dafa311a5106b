"""The RoI-head reference against the spec's statements and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from detspec.conformance.adapters.reference_adapter import ReferenceAdapter
from detspec.conformance.guard import GuardedImplementation
from detspec.conformance.runner import run_property
from detspec.properties.interface import Conventions
from detspec.properties.roi_pooling import (
    multiscale_roi_align_matches_the_reference,
    rois_are_pooled_from_their_fpn_level,
)
from detspec.properties.strategies.roi import align_value_inputs
from detspec.reference import roi_pooling as pool
from detspec.reference import roi_targets as ref
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.negative_controls.roi import MultiscaleHalfPixelDeclaredCorner, kernel_roi_align

GT = np.array([[0.0, 0.0, 100.0, 100.0]])


def _proposals(foreground: int, background: int) -> np.ndarray:
    """``foreground`` RoIs shifted 1, 2, ... px from GT (IoU >= 0.5 up to 33 px) and
    ``background`` RoIs far from it."""
    fg = [[k, 0, 100 + k, 100] for k in range(1, foreground + 1)]
    bg = [[1000 + 20 * k, 1000, 1010 + 20 * k, 1010] for k in range(background)]
    return np.array(fg + bg, dtype=np.float64).reshape(-1, 4)


def test_seed_budget_is_32_foreground_and_96_background():
    rows = ref.sample_rois(_proposals(33, 2000), GT, [1], 20, 128, 0.25, seed=3)
    assert (rows[:, 4] != 0).sum() == 32 and (rows[:, 4] == 0).sum() == 96  # of 33 + the GT box


def test_scarce_backgrounds_give_a_shorter_batch_or_are_repeated_evenly():
    proposals = _proposals(10, 5)
    short = ref.sample_rois(proposals, GT, [1], 1, 128, 0.25)
    assert len(short) == 11 + 5
    filled = ref.sample_rois(proposals, GT, [1], 1, 128, 0.25, fill="repeat-negatives")
    assert len(filled) == 128
    _, counts = np.unique(filled[filled[:, 4] == 0, :4], axis=0, return_counts=True)
    assert sorted(set(counts.tolist())) == [23, 24]  # 117 places over 5 backgrounds


def test_only_foreground_candidates_give_at_most_the_foreground_budget():
    for fill in ref.FILL_POLICIES:
        rows = ref.sample_rois(_proposals(33, 0), GT, [2], 2, 128, 0.25, fill=fill)
        assert len(rows) == 32 and np.all(rows[:, 4] == 2)


def test_background_band_excludes_rois_below_bg_low():
    near = np.array([[60.0, 0, 160, 100]])  # IoU 40/160 = 0.25
    far = np.array([[95.0, 0, 195, 100]])  # IoU 5/195 ~ 0.026
    both = np.concatenate([near, far])
    rows = ref.sample_rois(both, GT, [1], 1, 8, 0.25, bg_low=0.1, gt_candidates="not-added")
    assert rows[:, :4].tolist() == near.tolist()


def test_foreground_threshold_is_inclusive():
    at_half = np.array([[0.0, 0, 100, 50]])  # IoU exactly 0.5
    rows = ref.sample_rois(at_half, GT, [3], 3, 8, 1.0, gt_candidates="not-added")
    assert rows[:, 4].tolist() == [3] and rows[0, 5] == 0


def test_background_label_convention():
    rows = ref.sample_rois(_proposals(1, 1), GT, [0], 4, 8, 0.5, background_label="num-classes")
    assert sorted(rows[:, 4].tolist()) == [0, 0, 4]


def test_targets_are_weighted_encodings_and_zero_for_background():
    rows = ref.sample_rois(np.array([[10.0, 0, 110, 100], [500.0, 500, 510, 510]]), GT, [1], 1, 8, 0.5)
    shifted = rows[(rows[:, 4] == 1) & (rows[:, 0] == 10)]
    assert np.allclose(shifted[0, 6:], [-1.0, 0, 0, 0])  # 10 * (50 - 60) / 100
    assert np.all(rows[rows[:, 4] == 0, 6:] == 0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"proposals": [[5.0, 0, 1, 1]]}, "proposals: x2 < x1"),
        ({"gt_labels": [0]}, "gt_labels: expected object classes in \\[1, 3\\]"),
        ({"bg_high": 0.7}, "bg_low <= bg_high <= fg_threshold"),
        ({"fg_threshold": 0.0, "bg_high": 0.0}, "fg_threshold: must be > 0"),
        ({"batch_size": -1}, "batch_size"),
        ({"fill": "replace"}, "unknown fill policy"),
        ({"gt_boxes": [[0.0, 0, np.nan, 1]]}, "gt_boxes: NaN"),
    ],
)
def test_bad_sampling_input_is_named(changes, message):
    arguments = {
        "proposals": _proposals(2, 2),
        "gt_boxes": GT,
        "gt_labels": [1],
        "num_classes": 3,
        "batch_size": 8,
        **changes,
    }
    with pytest.raises(ValueError, match=message):
        ref.sample_rois(**arguments)


def test_loss_regresses_foreground_only_in_the_gt_class_columns():
    logits = np.zeros((2, 3))
    boxes = np.arange(24.0).reshape(2, 12) / 10
    gradient = ref.fast_rcnn_loss_gradient(logits, boxes, [2, 0], np.zeros((2, 4)), beta=1.0)
    box = gradient[:, 3:].reshape(2, 3, 4)
    assert np.count_nonzero(box[1]) == 0  # the background RoI
    assert np.count_nonzero(box[0, :2]) == 0 and np.all(box[0, 2] != 0)
    assert np.all(gradient[:, :3].sum(axis=1) == pytest.approx(0))  # softmax - onehot, both RoIs


def test_loss_divides_the_box_term_by_all_rois():
    boxes = np.zeros((4, 8))
    boxes[0, 4:] = 2.0  # foreground RoI 0 of class 1: |2 - 0| - 0.5 per coordinate (beta 1)
    loss = ref.fast_rcnn_loss(np.zeros((4, 2)), boxes, [1, 0, 0, 0], np.zeros((4, 4)), beta=1.0)
    assert loss.tolist() == pytest.approx([np.log(2), 4 * 1.5 / 4])


def test_loss_of_no_roi_is_zero():
    assert ref.fast_rcnn_loss(np.zeros((0, 3)), np.zeros((0, 12)), [], np.zeros((0, 4))).tolist() == [0, 0]


FEATURES = np.arange(16.0).reshape(1, 4, 4)


def test_roi_pool_by_hand():
    # the whole map in 2x2 bins: the max of each quadrant
    out = pool.roi_pool(FEATURES, [[0.0, 0, 48, 48]], (2, 2), 1 / 16)
    assert out[0, 0].tolist() == [[5.0, 7.0], [13.0, 15.0]]


def test_roi_pool_rounds_halves_away_from_zero():
    # 8 / 16 = 0.5 rounds to cell 1 (NumPy's round would give 0)
    out = pool.roi_pool(FEATURES, [[8.0, 0, 8, 0]], (1, 1), 1 / 16)
    assert out[0, 0, 0, 0] == 1.0


def test_roi_align_by_hand():
    features = np.array([[[0.0, 1.0], [2.0, 3.0]]])
    # one sample at (0.5, 0.5): the mean of the four cells
    assert pool.roi_align(features, [[0.0, 0, 1, 1]], (1, 1), 1.0, 1, False)[0, 0, 0, 0] == 1.5
    # aligned: the RoI (0.5, 0.5)-(1.5, 1.5) is the same sample
    assert pool.roi_align(features, [[0.5, 0.5, 1.5, 1.5]], (1, 1), 1.0, 1, True)[0, 0, 0, 0] == 1.5
    # wholly outside the map: 0
    assert pool.roi_align(features, [[10.0, 10, 12, 12]], (1, 1), 1.0, 2, False)[0, 0, 0, 0] == 0


def _sample_weights(points: np.ndarray, size: int) -> np.ndarray:
    """``(n, size)`` bilinear weights of 1-D sample points, one row per point, the kernels' rule:
    below -1 or above ``size`` reads 0, ``[-1, 0)`` reads cell 0, the last cell and beyond read
    the last cell."""
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


def _roi_align_one_roi_at_a_time(features, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """The previous reference: per RoI, the sample points of :func:`pool.align_sample_points`,
    one dense weight row per sample, averaged per bin, contracted with the map. Slow and plain:
    the oracle of the vectorised :func:`pool.roi_align`."""
    channels, height, width = features.shape
    ph, pw = output_size
    output = np.zeros((len(rois), channels, ph, pw))
    for r, roi in enumerate(rois):
        ys, xs = pool.align_sample_points(roi, (ph, pw), spatial_scale, sampling_ratio, aligned)
        if ys.shape[1] == 0 or xs.shape[1] == 0:
            continue
        row_weights = _sample_weights(ys.ravel(), height).reshape(ph, -1, height).mean(axis=1)
        column_weights = _sample_weights(xs.ravel(), width).reshape(pw, -1, width).mean(axis=1)
        output[r] = np.einsum("ih,chw,jw->cij", row_weights, features, column_weights)
    return output


@st.composite
def _align_inputs(draw):
    """A random map and RoIs of every kind, in cells: inside, across the border, wholly outside,
    narrower than a cell, empty, and many times larger than the map."""
    channels, height, width = draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    rois = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["inside", "border", "outside", "tiny", "empty", "huge"]))
        x1, y1 = rng.uniform(-2, width + 1), rng.uniform(-2, height + 1)
        side = {"tiny": 0.3, "empty": 0.0, "huge": 400.0}.get(kind, max(height, width))
        w, h = rng.uniform(0, side), rng.uniform(0, side)
        if kind == "empty":
            h = rng.uniform(0, max(height, width))
        if kind == "outside":
            x1 += (width + 3) * draw(st.sampled_from([-1, 1]))
        if kind == "huge":
            x1, y1 = -rng.uniform(0, 300), -rng.uniform(0, 300)
        rois.append([x1, y1, x1 + w, y1 + h])
    stride = draw(st.sampled_from([1.0, 4.0, 16.0, 0.5]))
    grid = draw(st.booleans())  # quarter cells: samples land exactly on cell borders
    cells = np.asarray(rois, dtype=np.float64).reshape(-1, 4)
    if grid:
        cells = np.round(cells * 4) / 4
    return {
        "features": rng.normal(size=(channels, height, width)),
        "rois": cells * stride,
        "output_size": (draw(st.integers(1, 8)), draw(st.integers(1, 8))),
        "spatial_scale": 1 / stride,
        "sampling_ratio": draw(st.integers(0, 3)),
        "aligned": draw(st.booleans()),
    }


@given(_align_inputs())
@example(
    {
        "features": np.arange(12.0).reshape(1, 3, 4),
        "rois": np.array([[-1.0, -1, 5, 4], [3.0, 2, 3, 2], [-20.0, -20, -10, -10], [0.0, 0, 1000, 1000]]),
        "output_size": (7, 7),
        "spatial_scale": 1.0,
        "sampling_ratio": 0,
        "aligned": False,
    }
)
def test_vectorised_roi_align_equals_the_per_roi_computation(inputs):
    expected = _roi_align_one_roi_at_a_time(**inputs)
    actual = pool.roi_align(**inputs)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12 * (1 + np.abs(inputs["features"]).max()))


def test_roi_align_at_the_paper_scale_equals_the_per_roi_computation():
    """512 RoIs of every size on a 37 x 62 map (the benchmark's scale), both alignments."""
    rng = np.random.default_rng(5)
    features = rng.normal(size=(4, 37, 62))
    corners = rng.uniform(-200, 1100, size=(512, 2))
    sizes = np.exp(rng.uniform(np.log(1), np.log(1200), size=(512, 2)))
    rois = np.concatenate([corners, corners + sizes], axis=1)
    for aligned, ratio in ((False, 2), (True, 0)):
        expected = _roi_align_one_roi_at_a_time(features, rois, (7, 7), 1 / 16, ratio, aligned)
        np.testing.assert_allclose(
            pool.roi_align(features, rois, (7, 7), 1 / 16, ratio, aligned), expected, atol=1e-12
        )


def test_fpn_levels_at_and_around_the_boundaries():
    sides = np.array([224.0, 223.0, 112.0, 448.0, 447.0, 1.0, 4000.0])
    rois = np.stack([np.zeros(7), np.zeros(7), sides, sides], axis=1)
    assert pool.fpn_levels(rois, 2, 5).tolist() == [4, 3, 3, 5, 4, 2, 5]


def test_finest_56_counts_from_the_first_map_and_is_canonical_from_p2():
    sides = np.array([64.0, 55.0, 56.0, 112.0, 224.0, 0.0, 4000.0])
    rois = np.stack([np.zeros(7), np.zeros(7), sides, sides], axis=1)
    # levels 1..4: a 64-px RoI goes to the first map (level 1) under finest-56, to level 2 under
    # canonical; a zero-area RoI to the first map under both
    assert pool.fpn_levels(rois, 1, 4, "finest-56").tolist() == [1, 1, 1, 2, 3, 1, 4]
    assert pool.fpn_levels(rois, 1, 4).tolist() == [2, 1, 2, 3, 4, 1, 4]
    for k_min in (1, 2, 3):
        same = pool.fpn_levels(rois, k_min, 6, "finest-56") == pool.fpn_levels(rois, k_min, 6)
        assert same.all() == (k_min == 2)
    with pytest.raises(ValueError, match="unknown FPN level mapping 'mmdet'"):
        pool.fpn_levels(rois, 2, 5, "mmdet")


def test_multiscale_alignment_pools_each_level_with_its_roi_align():
    rng = np.random.default_rng(0)
    maps = [rng.normal(size=(2, 128 >> k, 128 >> k)) for k in (2, 3, 4, 5)]
    rois = np.array([[3.0, 5.0, 40.0, 60.0]])  # sqrt(w h) = 45: level 2 under both mappings
    for aligned in (False, True):
        pooled = pool.multiscale_roi_align(maps, rois, (2, 3), 2, (128, 128), aligned=aligned)
        np.testing.assert_array_equal(pooled, pool.roi_align(maps[0], rois, (2, 3), 1 / 4, 2, aligned))


@settings(database=None, derandomize=True, max_examples=150, deadline=None)
@given(align_value_inputs())
def test_the_kernel_transcription_of_the_control_is_the_reference_when_it_clamps(example):
    """AlignExtrapolatesBelowZero is torchvision's kernel without one line: with the line, the
    same transcription is the reference (so its control differs from it by that line only)."""
    size = (int(example["output_size"][0]), int(example["output_size"][1]))
    arguments = (example["features"], example["rois"], size, example["spatial_scale"])
    ratio, aligned = example["sampling_ratio"], bool(example["aligned"])
    transcribed = kernel_roi_align(*arguments, ratio, aligned)
    magnitude = np.abs(example["features"]).max()
    np.testing.assert_allclose(
        transcribed, pool.roi_align(*arguments, ratio, aligned), atol=1e-12 * magnitude
    )


class _Finest56DeclaredButCanonical(ReferenceAdapter):
    def __init__(self) -> None:
        super().__init__(Conventions(fpn_level_mapping="finest-56"))

    def multiscale_roi_align(self, features, rois, output_size, sampling_ratio, image_size):
        return pool.multiscale_roi_align(features, rois, output_size, int(sampling_ratio), image_size)


def test_the_level_clause_follows_the_declared_mapping():
    search = settings(max_examples=40, database=None, derandomize=True)
    finest = ReferenceAdapter(Conventions(fpn_level_mapping="finest-56", multiscale_alignment="half-pixel"))
    for prop in (rois_are_pooled_from_their_fpn_level, multiscale_roi_align_matches_the_reference):
        assert run_property(prop, GuardedImplementation(finest), search).status == "pass"
    wrong = run_property(
        rois_are_pooled_from_their_fpn_level, GuardedImplementation(_Finest56DeclaredButCanonical()), search
    )
    assert wrong.status == "fail" and wrong.code == "multiscale.level"


def test_a_square_only_pooler_is_given_square_outputs():
    square = ReferenceAdapter(Conventions(multiscale_output="square"))
    with pytest.raises(ValueError, match="not square"):
        square.multiscale_roi_align([np.zeros((1, 4, 4))], np.zeros((1, 4)), (1, 2), 0, (8.0, 8.0))
    search = settings(max_examples=40, database=None, derandomize=True)
    for prop in (rois_are_pooled_from_their_fpn_level, multiscale_roi_align_matches_the_reference):
        assert run_property(prop, GuardedImplementation(square), search).status == "pass"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pool.roi_align(np.zeros((4, 4)), [[0.0, 0, 1, 1]], (2, 2), 1.0), "features: expected shape"),
        (lambda: pool.roi_align(FEATURES, [[0.0, 0, 1]], (2, 2), 1.0), "rois: expected shape"),
        (lambda: pool.roi_align(FEATURES, [[0.0, 0, 1, 1]], (0, 2), 1.0), "output_size"),
        (lambda: pool.roi_pool(FEATURES, [[0.0, 0, 1, 1]], (2, 2), 0.0), "spatial_scale"),
        (lambda: pool.roi_align(FEATURES, [[0.0, 0, 1, 1]], (2, 2), 1.0, -1), "sampling_ratio"),
    ],
)
def test_bad_pooling_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_float32_bin_edges_first_go_wrong_at_57_cells_for_7_bins():
    """The strategy's hazard table: the extents where float32 RoI-pool bin edges differ from the
    exact ones (``roi.pool.value``, "Float bin edges")."""
    from detspec.properties.strategies.roi import FLOAT32_BIN_HAZARDS

    assert FLOAT32_BIN_HAZARDS[7] == [57] and FLOAT32_BIN_HAZARDS[14] == [57, 62]
    assert 6 not in FLOAT32_BIN_HAZARDS and 12 not in FLOAT32_BIN_HAZARDS  # none up to 64 cells
    # the exact edges of 57 cells in 7 bins end at 57; fl32(57/7) * 7 rounds up past it
    assert pool.roi_pool_bins(0, 56, 7, 100)[-1] == (48, 57)


def test_a_pooler_declared_corner_that_pools_half_pixel_fails_the_value_clause():
    """mmdetection's alignment under torchvision's declaration: the constant maps of
    roi.multiscale.level see it only through zero-area RoIs; every random map shows it."""
    search = settings(max_examples=40, database=None, derandomize=True)
    outcome = run_property(
        multiscale_roi_align_matches_the_reference,
        GuardedImplementation(MultiscaleHalfPixelDeclaredCorner()),
        search,
    )
    assert outcome.status == "fail" and outcome.code == "multiscale.value"
