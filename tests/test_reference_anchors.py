"""The anchor and receptive-field reference against the numbers the spec states."""

from __future__ import annotations

import math

import numpy as np
import pytest
from detspec.conformance.adapters.reference_adapter import ReferenceAdapter
from detspec.conformance.guard import GuardedImplementation
from detspec.conformance.runner import run_property
from detspec.properties.anchors import (
    PFR_TABLE,
    anchors_have_declared_size_and_ratio,
    each_axis_follows_its_own_stride,
)
from detspec.reference import anchors as ref
from detspec.reference.boxes import box_iou
from detspec.reference.receptive_field import (
    RPN_CONV,
    VGG16_CONV5_3,
    ZF_CONV5,
    Layer,
    dependency_support,
    receptive_field,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.negative_controls.anchors import AnchorsLegacyAwayRoundsHalfToEven, AnchorsStridesSwapped

PAPER_SIZES, PAPER_RATIOS = (128, 256, 512), (0.5, 1.0, 2.0)


def test_paper_feature_map_has_20646_anchors():
    assert ref.grid_anchors((37, 62), 16, PAPER_SIZES, PAPER_RATIOS).shape == (20646, 4)


def test_legacy_rounding_reproduces_py_faster_rcnn_table():
    anchors = ref.grid_anchors(
        (1, 1), 16, PAPER_SIZES, PAPER_RATIOS, offset="legacy", rounding="legacy", convention="legacy"
    )
    np.testing.assert_array_equal(anchors, PFR_TABLE)


def test_torchvision_style_rounding_gives_182_by_90():
    cell = ref.cell_anchors(PAPER_SIZES, PAPER_RATIOS, rounding="round-corners")
    np.testing.assert_array_equal(cell[0], [-91, -45, 91, 45])


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        (32, 0.06),
        (64, 0.25),
        (96, 0.56),
        (128, 0.78),
        (181, 0.50),
        (256, 0.88),
        (362, 0.50),
        (512, 0.94),
    ],
)
def test_guaranteed_iou_table_of_the_spec(side, expected):
    cell = ref.cell_anchors(PAPER_SIZES, PAPER_RATIOS)
    shapes = np.stack([cell[:, 2] - cell[:, 0], cell[:, 3] - cell[:, 1]], 1)
    assert round(ref.guaranteed_iou(side, side, shapes, (8, 8)), 2) == expected
    assert round(ref.guaranteed_iou(181, 90.5, shapes, (8, 8)), 2) == 0.77


@given(
    st.floats(4, 800),
    st.floats(4, 800),
    st.floats(0, 8),
    st.floats(0, 8),
    st.sampled_from([(64, 128), (128, 256, 512), (32,)]),
)
def test_guaranteed_iou_is_a_lower_bound_at_every_offset(width, height, dx, dy, sizes):
    cell = ref.cell_anchors(sizes, PAPER_RATIOS)
    shapes = np.stack([cell[:, 2] - cell[:, 0], cell[:, 3] - cell[:, 1]], 1)
    box = np.array([[dx - width / 2, dy - height / 2, dx + width / 2, dy + height / 2]])
    best = box_iou(box, cell).max()
    assert best >= ref.guaranteed_iou(width, height, shapes, (8, 8)) - 1e-12


def test_paper_receptive_fields_and_centres():
    rf = receptive_field([*ZF_CONV5, RPN_CONV])
    assert (rf.size, rf.jump, rf.start) == (171, 16, 0.0)
    vgg = receptive_field([*VGG16_CONV5_3, RPN_CONV])
    assert (vgg.size, vgg.jump, vgg.start) == (228, 16, 7.5)
    assert receptive_field(VGG16_CONV5_3).size == 196


def test_anchor_sides_larger_than_the_receptive_field_match_the_spec_table():
    cell = ref.cell_anchors(PAPER_SIZES, PAPER_RATIOS)
    sides = np.stack([cell[:, 2] - cell[:, 0], cell[:, 3] - cell[:, 1]], 1)

    def exceed(field):
        return ["".join(n for n, v in zip("wh", side, strict=True) if v > field) or "-" for side in sides]

    assert exceed(171) == ["w", "wh", "wh", "-", "wh", "wh", "h", "wh", "wh"]
    assert exceed(228) == ["-", "w", "wh", "-", "wh", "wh", "-", "h", "wh"]


def test_dependency_support_sees_gaps_of_dilation_only_as_a_hull():
    assert dependency_support([Layer("conv", 3, 1, 0, 2)], 10, [2]) == [(2, 6)]


def test_corner_offset_leaves_a_full_stride_at_the_far_border():
    assert ref.max_centre_distance(16, "corner") == 16
    assert ref.max_centre_distance(16, "centre") == 8
    assert ref.max_centre_distance(16, "legacy", "legacy") == 8


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ref.cell_anchors([], [1.0]), "sizes: expected a non-empty sequence"),
        (
            lambda: ref.cell_anchors([32], [0.0]),
            "ratios: expected a non-empty sequence of finite numbers > 0",
        ),
        (lambda: ref.cell_anchors([32], [1.0], rounding="floor"), "unknown anchor rounding 'floor'"),
        (lambda: ref.cell_anchors([32], [1.0], order="random"), "unknown anchor order 'random'"),
        (lambda: ref.grid_anchors((2,), 16, [32], [1.0]), r"feature_size: expected \(height, width\)"),
        (lambda: ref.grid_anchors((2, 2), -16, [32], [1.0]), "stride: expected"),
        (lambda: ref.grid_anchors((2, 2), 16, [32], [1.0], offset="middle"), "unknown anchor offset"),
        (lambda: ref.multilevel_anchors([(2, 2)], [16, 32], [[32]], [[1.0]]), "one entry per level"),
        (lambda: Layer("conv", 0), "kernel must be an integer >= 1"),
        (lambda: Layer("dense", 3), "layer kind must be one of"),
        (lambda: dependency_support([Layer("conv", 3)], 10, [8]), "cell 8 is outside the output"),
    ],
)
def test_invalid_anchor_and_layer_input_is_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_size_and_ratio_define_width_and_height():
    (anchor,) = ref.cell_anchors([100], [4.0])
    assert anchor[2] - anchor[0] == pytest.approx(50) and anchor[3] - anchor[1] == pytest.approx(200)
    assert math.isclose((anchor[2] - anchor[0]) * (anchor[3] - anchor[1]), 100**2)


def test_strides_are_per_axis():
    anchors = ref.grid_anchors((2, 3), (4, 64), [8.0], [1.0], offset="centre")
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    np.testing.assert_array_equal(centres[:, 0], [32, 96, 160, 32, 96, 160])  # x: 64 apart, from 32
    np.testing.assert_array_equal(centres[:, 1], [2, 2, 2, 6, 6, 6])  # y: 4 apart, from 2
    np.testing.assert_array_equal(
        ref.grid_anchors((2, 3), 16, [8.0], [1.0]), ref.grid_anchors((2, 3), (16, 16), [8.0], [1.0])
    )


@pytest.mark.parametrize(("rounding", "height"), [("legacy", 22), ("legacy-away", 23)])
def test_legacy_roundings_differ_on_a_half(rounding, height):
    """Base 32, ratio 0.5: 45.25 x 22.5 rounds to 45 x 22 (np.round) or 45 x 23 (C's roundf)."""
    (anchor,) = ref.cell_anchors([32.0], [0.5], 32, rounding=rounding, convention="legacy")
    assert (anchor[2] - anchor[0] + 1, anchor[3] - anchor[1] + 1) == (45, height)


def test_legacy_roundings_agree_on_the_paper_table():
    away = ref.grid_anchors(
        (1, 1), 16, PAPER_SIZES, PAPER_RATIOS, offset="legacy", rounding="legacy-away", convention="legacy"
    )
    np.testing.assert_array_equal(away, PFR_TABLE)


@pytest.mark.parametrize("rounding", ["legacy", "legacy-away"])
def test_legacy_roundings_need_one_stride_for_both_axes(rounding):
    with pytest.raises(ValueError, match=r"^stride: the legacy"):
        ref.grid_anchors((2, 2), (16, 32), [32.0], [1.0], rounding=rounding)


def test_a_stride_is_a_number_or_a_pair():
    with pytest.raises(ValueError, match=r"^stride: expected one number or a pair"):
        ref.grid_anchors((2, 2), (16, 16, 16), [32.0], [1.0])
    with pytest.raises(ValueError, match=r"^stride: expected a finite number > 0"):
        ref.grid_anchors((2, 2), (16, 0), [32.0], [1.0])


def test_swapped_strides_escape_every_property_with_equal_strides_and_fail_the_per_axis_one():
    """The per-axis control is the reference when the strides are equal: only unequal strides show
    it, which the strategies now draw (each_axis_follows_its_own_stride is its control's property)."""
    control = AnchorsStridesSwapped()
    levels = ([[3, 5]], [[8, 8]], [[32.0]], [[0.5, 1.0]])
    np.testing.assert_array_equal(control.grid_anchors(*levels), ReferenceAdapter().grid_anchors(*levels))
    outcome = run_property(
        each_axis_follows_its_own_stride,
        GuardedImplementation(control),
        settings(max_examples=20, database=None, derandomize=True),
    )
    assert outcome.status == "fail" and outcome.code == "anchors.other-axis-stride"


def test_legacy_away_declared_but_rounded_to_even_fails_the_shape_clause():
    outcome = run_property(
        anchors_have_declared_size_and_ratio,
        GuardedImplementation(AnchorsLegacyAwayRoundsHalfToEven()),
        settings(max_examples=5, database=None, derandomize=True),
    )
    assert outcome.status == "fail" and outcome.code == "anchors.shape"
