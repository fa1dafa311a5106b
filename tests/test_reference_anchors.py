"""The anchor and receptive-field reference against the numbers the spec states."""

from __future__ import annotations

import math

import numpy as np
import pytest
from detspec.properties.anchors import PFR_TABLE
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
from hypothesis import given
from hypothesis import strategies as st

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
