"""Negative controls of RPN training targets (``spec/rpn_training.md``)."""

from __future__ import annotations

import numpy as np
from detspec.properties.interface import LossTerms, MatchResult, RpnLossGradient
from detspec.reference import rpn_targets as ref_rpn
from detspec.reference.boxes import pairwise_iou

from tests.negative_controls.base import Control


def _iou(anchors, gt_boxes):
    return pairwise_iou(np.asarray(anchors, float), np.asarray(gt_boxes, float).reshape(-1, 4), 0.0)


def _labels_from(iou, high, low, best_rule):
    """Threshold labels plus a pluggable best-anchor rule ``best_rule(iou) -> bool mask``."""
    if iou.shape[1] == 0:
        return MatchResult(np.zeros(len(iou), np.int64), -np.ones(len(iou), np.int64))
    best_gt = iou.argmax(1)
    m = iou.max(1)
    labels = np.where(m >= high, 1, np.where(m < low, 0, -1))
    positive = (labels == 1) | best_rule(iou)
    labels[positive] = 1
    return MatchResult(labels.astype(np.int64), np.where(positive, best_gt, -1).astype(np.int64))


class MatchStrictHigh(Control):
    """Positive only above ``high`` (the paper's wording read literally)."""

    def match_anchors(self, anchors, gt_boxes, image_size, high, low):
        result = super().match_anchors(anchors, gt_boxes, image_size, high, low)
        iou = _iou(anchors, gt_boxes)
        if iou.shape[1]:
            best = ((iou == iou.max(0)) & (iou.max(0) > 0)).any(1)
            on_threshold = (iou.max(1) == high) & ~best
            result.labels[on_threshold] = -1
            result.matched_gt[on_threshold] = -1
        return result


class MatchZeroIouBug(Control):
    """The best-anchor rule also fires for a GT whose best IoU is 0 (torchvision's behaviour)."""

    def match_anchors(self, anchors, gt_boxes, image_size, high, low):
        return _labels_from(_iou(anchors, gt_boxes), high, low, lambda q: (q == q.max(0)).any(1))


class MatchWithoutBestAnchorRule(Control):
    """Thresholds only: a GT no anchor reaches ``high`` with gets no positive."""

    def match_anchors(self, anchors, gt_boxes, image_size, high, low):
        return _labels_from(_iou(anchors, gt_boxes), high, low, lambda q: np.zeros(len(q), bool))


class MatchedToTheGtItWasBestFor(Control):
    """A best anchor is matched to the GT it was best for, not to its own best GT (mmdetection)."""

    def match_anchors(self, anchors, gt_boxes, image_size, high, low):
        result = super().match_anchors(anchors, gt_boxes, image_size, high, low)
        iou = _iou(anchors, gt_boxes)
        for j in range(iou.shape[1]):
            if iou[:, j].max() > 0:
                result.matched_gt[iou[:, j] == iou[:, j].max()] = j
        return result


class MatchEmptyGtIgnored(Control):
    """Ignores every anchor of an image without GT boxes."""

    def match_anchors(self, anchors, gt_boxes, image_size, high, low):
        result = super().match_anchors(anchors, gt_boxes, image_size, high, low)
        if len(gt_boxes) == 0:
            result.labels[:] = -1
        return result


class MatchBestRuleForFirstGtOnly(Control):
    """Applies the best-anchor rule to the first GT box only."""

    def match_anchors(self, anchors, gt_boxes, image_size, high, low):
        def first_only(q):
            mask = np.zeros(len(q), bool)
            if q.shape[1] and q[:, 0].max() > 0:
                mask |= q[:, 0] == q[:, 0].max()
            return mask

        return _labels_from(_iou(anchors, gt_boxes), high, low, first_only)


class MatchFirstTieOnly(Control):
    """The best-anchor rule takes one anchor per GT (argmax), not every tied one."""

    def match_anchors(self, anchors, gt_boxes, image_size, high, low):
        def argmax_only(q):
            mask = np.zeros(len(q), bool)
            for j in range(q.shape[1]):
                if q[:, j].max() > 0:
                    mask[q[:, j].argmax()] = True
            return mask

        return _labels_from(_iou(anchors, gt_boxes), high, low, argmax_only)


class MatchClipsAnchors(Control):
    """Clips anchors at the origin before matching (a hidden clip)."""

    def match_anchors(self, anchors, gt_boxes, image_size, high, low):
        return super().match_anchors(np.clip(anchors, 0, None), gt_boxes, image_size, high, low)


class MatchUsesTheBorderWhenKeeping(Control):
    """Declares the ``keep`` border policy but ignores anchors that cross the border."""

    def match_anchors(self, anchors, gt_boxes, image_size, high, low):
        packed = ref_rpn.match_anchors(anchors, gt_boxes, image_size, high, low, border="ignore")
        return MatchResult(packed[:, 0].astype(np.int64), packed[:, 1].astype(np.int64))


class TargetsTowardsTheFirstGt(Control):
    """Regresses every positive anchor towards GT 0."""

    def rpn_regression_targets(self, anchors, gt_boxes, image_size, high, low):
        labels = self.match_anchors(anchors, gt_boxes, image_size, high, low).labels
        return ref_rpn.regression_targets(anchors, gt_boxes, np.where(labels == 1, 0, -1))


class SampleRoundsUp(Control):
    """ceil(B f) positives instead of floor(B f)."""

    def sample_balanced(self, labels, batch_size, positive_fraction, seed):
        labels = np.asarray(labels)
        rng = np.random.default_rng(seed)
        positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
        take_pos = min(len(positives), int(np.ceil(batch_size * positive_fraction)))
        take_neg = min(len(negatives), batch_size - take_pos)
        out = np.full(len(labels), -1)
        out[rng.choice(positives, take_pos, replace=False)] = 1
        out[rng.choice(negatives, take_neg, replace=False)] = 0
        return out


class SampleIgnoredAsNegative(Control):
    """Treats ignored anchors as negatives."""

    def sample_balanced(self, labels, batch_size, positive_fraction, seed):
        return ref_rpn.sample_balanced(
            np.where(np.asarray(labels) < 0, 0, labels), batch_size, positive_fraction, seed
        ).astype(np.int64)


class SampleIgnoresSeed(Control):
    """Always draws with seed 0."""

    def sample_balanced(self, labels, batch_size, positive_fraction, seed):
        return ref_rpn.sample_balanced(labels, batch_size, positive_fraction, 0).astype(np.int64)


class SampleFavoursLowIndices(Control):
    """Draws without replacement but with weights falling with the index."""

    def sample_balanced(self, labels, batch_size, positive_fraction, seed):
        labels = np.asarray(labels)
        rng = np.random.default_rng(seed)
        out = np.full(len(labels), -1)
        budget = {1: min(int(np.sum(labels == 1)), int(batch_size * positive_fraction))}
        budget[0] = min(int(np.sum(labels == 0)), batch_size - budget[1])
        for label, count in budget.items():
            members = np.flatnonzero(labels == label)
            if count:
                weights = 1.0 / (1.0 + np.arange(len(members)))
                out[rng.choice(members, count, replace=False, p=weights / weights.sum())] = label
        return out


class LossOverAllAnchors(Control):
    """Classification loss over every anchor, sampled or not."""

    def rpn_loss(self, logits, deltas, sampled, targets, anchor_locations):
        everything = np.where(np.asarray(sampled) < 0, 0, sampled)
        return super().rpn_loss(logits, deltas, everything, targets, anchor_locations)


class LossPerAnchorNotPerSample(Control):
    """Divides by the number of anchors instead of the number sampled."""

    def rpn_loss(self, logits, deltas, sampled, targets, anchor_locations):
        loss = super().rpn_loss(logits, deltas, sampled, targets, anchor_locations)
        factor = np.sum(np.asarray(sampled) >= 0) / len(sampled)
        return LossTerms(loss.classification * factor, loss.regression * factor)


class LossNaNWhenEmpty(Control):
    """Averages over an empty sample: NaN."""

    def rpn_loss(self, logits, deltas, sampled, targets, anchor_locations):
        if np.all(np.asarray(sampled) < 0):
            return LossTerms(np.nan, np.nan)
        return super().rpn_loss(logits, deltas, sampled, targets, anchor_locations)


class GradientRegressesNegatives(Control):
    """Regresses every sampled anchor, negatives included (the seed's open question, answered no)."""

    def rpn_loss_gradient(self, logits, deltas, sampled, targets, anchor_locations):
        sampled = np.asarray(sampled)
        gradient = super().rpn_loss_gradient(logits, deltas, sampled, targets, anchor_locations)
        as_positive = np.where(sampled == 0, 1, sampled)
        regress_all = super().rpn_loss_gradient(logits, deltas, as_positive, targets, anchor_locations)
        return RpnLossGradient(gradient.logits, regress_all.deltas)
