"""The RPN-training reference against the spec's statements."""

from __future__ import annotations

import numpy as np
import pytest
from detspec.properties.strategies.rpn import loss_inputs
from detspec.reference import rpn_targets as ref
from hypothesis import given
from hypothesis import strategies as st


def test_zero_iou_gt_makes_nothing_positive_but_the_overlapping_gt_still_gets_its_anchor():
    anchors = np.array([[0.0, 0, 10, 10], [20.0, 20, 30, 30], [40.0, 40, 50, 50]])
    gt = np.array([[100.0, 100, 110, 110], [21.0, 21, 29, 40]])
    labels = ref.match_anchors(anchors, gt, (200, 200))
    assert labels[:, 0].tolist() == [0, 1, 0] and labels[1, 1] == 1


def test_all_tied_best_anchors_are_positive():
    gt = np.array([[10.0, 10, 20, 20]])
    anchors = gt + np.array([[-6.0, 0, -6, 0], [6.0, 0, 6, 0], [0.0, -6, 0, -6], [0.0, 6, 0, 6]])
    assert ref.match_anchors(anchors, gt, (100, 100))[:, 0].tolist() == [1, 1, 1, 1]


def test_ignore_policy_leaves_border_anchors_out_of_the_best_anchor_rule():
    anchors = np.array([[-5.0, 0, 5, 10], [20.0, 0, 30, 10]])
    gt = np.array([[-4.0, 0, 4, 10]])
    labels = ref.match_anchors(anchors, gt, (50, 50), border="ignore")[:, 0]
    assert labels.tolist() == [-1, 0]  # the GT's only overlapping anchor crosses the border


def test_every_gt_can_lose_its_positive_in_sampling():
    """`rpn.match.every-gt` holds before sampling only: 300 positives for GT 0 and a single best
    anchor for GT 1, sampled down to 128 positives, leaves GT 1 without a positive for most seeds."""
    labels = np.array([1] * 301 + [0] * 500)
    dropped = [seed for seed in range(20) if ref.sample_balanced(labels, 256, 0.5, seed)[300] != 1]
    assert dropped


def test_paper_lambda_equals_sampled_normalisation_when_lambda_is_n_reg_over_n():
    rng = np.random.default_rng(0)
    sampled = np.array([1] * 40 + [0] * 216 + [-1] * 100)
    logits, deltas, targets = rng.normal(size=356), rng.normal(size=(356, 4)), rng.normal(size=(356, 4))
    locations = 2400
    sampled_reg = ref.rpn_loss(logits, deltas, sampled, targets, normaliser="sampled")[1]
    paper_reg = ref.rpn_loss(
        logits, deltas, sampled, targets, normaliser="paper", anchor_locations=locations
    )[1]
    lam = locations / 256  # = N_reg / N: 9.375, the paper rounds to 10
    assert paper_reg * lam / 10 == pytest.approx(sampled_reg, rel=1e-12)


@pytest.mark.parametrize("sigma", [1.0, 3.0])
def test_caffe_sigma_smooth_l1_is_beta_one_over_sigma_squared(sigma):
    x = np.linspace(-2, 2, 401)
    caffe = np.where(np.abs(x) < 1 / sigma**2, 0.5 * sigma**2 * x * x, np.abs(x) - 0.5 / sigma**2)
    np.testing.assert_allclose(ref.smooth_l1(x, 1 / sigma**2), caffe, rtol=1e-12, atol=1e-15)


@given(loss_inputs(), st.sampled_from([1 / 9, 1.0]), st.sampled_from(["sampled", "paper"]))
def test_analytic_gradient_matches_finite_differences(inputs, beta, normaliser):
    args = (inputs["logits"], inputs["deltas"], inputs["sampled"], inputs["targets"])
    kwargs = {"beta": beta, "normaliser": normaliser, "anchor_locations": inputs["anchor_locations"]}
    gradient = ref.rpn_loss_gradient(*args, **kwargs)
    step = 1e-6
    for row in range(min(len(args[0]), 3)):
        bumped = args[0].copy()
        bumped[row] += step
        numeric = (
            ref.rpn_loss(bumped, *args[1:], **kwargs).sum() - ref.rpn_loss(*args, **kwargs).sum()
        ) / step
        assert numeric == pytest.approx(gradient[row, 0], abs=1e-4)
        for column in range(4):
            moved = args[1].copy()
            moved[row, column] += step
            diff = moved[row, column] - args[3][row, column]
            if abs(abs(diff) - beta) < 1e-5:
                continue  # the kink of smooth L1
            numeric = (
                ref.rpn_loss(args[0], moved, *args[2:], **kwargs).sum() - ref.rpn_loss(*args, **kwargs).sum()
            ) / step
            assert numeric == pytest.approx(gradient[row, 1 + column], abs=1e-4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: ref.match_anchors(np.zeros((1, 4)), np.zeros((0, 4)), (5, 5), 0.3, 0.7),
            "low threshold 0.7 is above",
        ),
        (
            lambda: ref.match_anchors(np.zeros((1, 4)), np.zeros((0, 4)), (5, 5), border="drop"),
            "unknown border policy",
        ),
        (lambda: ref.sample_balanced([1, 2], 4, 0.5, 0), "expected a 1-D array of 1, 0 and -1"),
        (lambda: ref.sample_balanced([1, 0], -1, 0.5, 0), "batch_size: expected an integer >= 0"),
        (
            lambda: ref.sample_balanced([1, 0], 4, 1.5, 0),
            r"positive_fraction: expected a real number in \[0, 1\]",
        ),
        (
            lambda: ref.rpn_loss([0.0], np.zeros((1, 4)), [1], np.zeros((1, 4)), normaliser="mean"),
            "unknown loss normaliser",
        ),
        (lambda: ref.rpn_loss([np.nan], np.zeros((1, 4)), [1], np.zeros((1, 4))), "logits: NaN"),
    ],
)
def test_invalid_rpn_input_is_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call()
