"""Deliberately broken implementations: each property must catch at least one of them.

Each control is the reference with one operation replaced by a plausible bug (an off-by-one, a
swapped argument, a missing guard, a wrong comparison). :data:`CONTROLS` maps every property to
the control that must make it fail; ``tests/test_negative_controls.py`` checks both that the
table is complete and that every control is caught.
"""

from __future__ import annotations

import numpy as np
from detspec.conformance.adapters.reference_adapter import ReferenceAdapter
from detspec.conformance.adapters.torchvision_adapter import TorchvisionAdapter
from detspec.properties.interface import OPERATIONS, Conventions
from detspec.reference import anchors as ref_anchors
from detspec.reference import boxes as ref
from detspec.reference import fourier as ref_fourier
from detspec.reference import proposals as ref_proposals
from detspec.reference import receptive_field as ref_rf
from detspec.reference import roi_pooling as ref_pool
from detspec.reference import roi_targets as ref_roi
from detspec.reference import rpn_targets as ref_rpn
from detspec.reference.boxes import pairwise_iou


def _iou_parts(boxes1, boxes2):
    a, b = np.asarray(boxes1, float).reshape(-1, 4), np.asarray(boxes2, float).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    return area_a[:, None], area_b[None, :], wh[..., 0] * wh[..., 1]


class Control(ReferenceAdapter):
    """The reference, named after the bug it carries."""

    def __init__(self) -> None:
        super().__init__(name=type(self).__name__)


class AreaPlusOne(Control):
    """Legacy ``+1`` widths while declaring the continuous convention."""

    def box_area(self, boxes):
        return ref.box_area(boxes, "legacy")


class IouOverFirstArea(Control):
    """Intersection over the first box's area instead of the union."""

    def box_iou(self, boxes1, boxes2):
        area_a, _, inter = _iou_parts(boxes1, boxes2)
        return np.divide(inter, area_a, out=np.zeros_like(inter), where=area_a > 0)


class IouUnguardedDivision(Control):
    """``inter / union`` with no guard for an empty union (NaN for two zero-area boxes)."""

    def box_iou(self, boxes1, boxes2):
        area_a, area_b, inter = _iou_parts(boxes1, boxes2)
        with np.errstate(invalid="ignore", divide="ignore"):
            return inter / (area_a + area_b - inter)


class IouDoubled(Control):
    """Twice the IoU (a Dice-like normalisation gone wrong): identical boxes give 2."""

    def box_iou(self, boxes1, boxes2):
        return 2 * ref.box_iou(boxes1, boxes2)


class IouUnionWithoutOverlap(Control):
    """Union = area(a) + area(b), forgetting to subtract the intersection: iou(b, b) = 0.5."""

    def box_iou(self, boxes1, boxes2):
        area_a, area_b, inter = _iou_parts(boxes1, boxes2)
        union = area_a + area_b
        return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


class IouAsymmetricUnion(Control):
    """Union computed from the first box's area twice."""

    def box_iou(self, boxes1, boxes2):
        area_a, _, inter = _iou_parts(boxes1, boxes2)
        union = np.broadcast_to(2 * area_a - inter, inter.shape)
        return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


class IouClipsToPositiveQuadrant(Control):
    """Silently clips coordinates at 0 before computing IoU (a hidden clip)."""

    def box_iou(self, boxes1, boxes2):
        return ref.box_iou(np.clip(boxes1, 0, None), np.clip(boxes2, 0, None))


class IouLegacyWidths(Control):
    """Legacy ``+1`` widths while declaring the continuous convention."""

    def box_iou(self, boxes1, boxes2):
        return ref.box_iou(boxes1, boxes2, "legacy")


class ClipSwapsHeightAndWidth(Control):
    """Reads ``image_size`` as ``(width, height)``."""

    def clip_boxes_to_image(self, boxes, image_size):
        return ref.clip_boxes_to_image(boxes, image_size[::-1])


class ClipShrinksBoxes(Control):
    """Clips, then pulls every box in by a quarter pixel "to stay safely inside"."""

    def clip_boxes_to_image(self, boxes, image_size):
        clipped = ref.clip_boxes_to_image(boxes, image_size)
        margin = np.minimum(0.25, (clipped[:, 2:] - clipped[:, :2]) / 4)
        return np.concatenate([clipped[:, :2] + margin, clipped[:, 2:] - margin], axis=1)


class RemoveSmallStrict(Control):
    """Drops sides equal to ``min_size`` while declaring the inclusive bound."""

    def remove_small_boxes(self, boxes, min_size):
        return ref.remove_small_boxes(boxes, min_size, bound="strict")


class EncodeLegacyCentre(Control):
    """Anchor centre at ``x1 + (w - 1) / 2`` (py-faster-rcnn's ``_whctrs``) in the continuous
    convention."""

    def encode_boxes(self, reference_boxes, target_boxes, weights):
        deltas = ref.encode_boxes(reference_boxes, target_boxes, weights)
        anchors = np.asarray(reference_boxes, float).reshape(-1, 4)
        sizes = anchors[:, 2:] - anchors[:, :2]
        return deltas + np.concatenate([0.5 * np.asarray(weights[:2]) / sizes, 0 * sizes], 1)


class EncodeIgnoresSizeWeights(Control):
    """Applies wx, wy but forgets ww, wh."""

    def encode_boxes(self, reference_boxes, target_boxes, weights):
        return ref.encode_boxes(reference_boxes, target_boxes, (*weights[:2], 1.0, 1.0))


class EncodeByStride(Control):
    """Normalises the centre offset by a fixed stride of 16 instead of the anchor size."""

    def encode_boxes(self, reference_boxes, target_boxes, weights):
        deltas = ref.encode_boxes(reference_boxes, target_boxes, weights)
        anchors = np.asarray(reference_boxes, float).reshape(-1, 4)
        deltas[:, :2] *= (anchors[:, 2:] - anchors[:, :2]) / 16.0
        return deltas


class DecodeIgnoresWeights(Control):
    """Decodes as if the weights were all 1."""

    def decode_boxes(self, reference_boxes, deltas, weights, clamp):
        return ref.decode_boxes(reference_boxes, deltas, (1.0, 1.0, 1.0, 1.0), clamp)


class DecodeOnePixelWide(Control):
    """``x2 = cx + w/2 + 1``: py-faster-rcnn's encode/decode mismatch (#852), continuous."""

    def decode_boxes(self, reference_boxes, deltas, weights, clamp):
        return ref.decode_boxes(reference_boxes, deltas, weights, clamp) + np.array([0.0, 0.0, 1.0, 1.0])


class DecodeWithoutClamp(Control):
    """No clamp before ``exp``: overflows to inf for large deltas."""

    def decode_boxes(self, reference_boxes, deltas, weights, clamp):
        with np.errstate(over="ignore"):
            return ref.decode_boxes(reference_boxes, deltas, weights, clamp=np.finfo(float).max)


class DecodeSymmetricClamp(Control):
    """Clamps dw, dh at -C too while declaring the ``upper`` convention."""

    def decode_boxes(self, reference_boxes, deltas, weights, clamp):
        return ref.decode_boxes(reference_boxes, deltas, weights, clamp, clamp_mode="symmetric")


def _greedy(boxes, scores, threshold, suppress):
    """Greedy NMS with a pluggable suppression rule ``suppress(iou, threshold)``."""
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        order = rest[~suppress(pairwise_iou(boxes[best : best + 1], boxes[rest], 0.0)[0], threshold)]
    return np.asarray(keep, dtype=np.int64)


class NmsRepeatsFirst(Control):
    """Returns the best box twice."""

    def nms(self, boxes, scores, iou_threshold):
        keep = ref.nms(boxes, scores, iou_threshold)
        return np.concatenate([keep, keep[:1]])


class NmsSortedByIndex(Control):
    """Returns the kept indices in index order, not score order."""

    def nms(self, boxes, scores, iou_threshold):
        return np.sort(ref.nms(boxes, scores, iou_threshold))


class NmsTooLenient(Control):
    """Suppresses only above ``t + 0.2``: overlapping boxes survive."""

    def nms(self, boxes, scores, iou_threshold):
        return _greedy(boxes, scores, iou_threshold, lambda iou, t: iou > t + 0.2)


class NmsTooEager(Control):
    """Suppresses above ``t - 0.2``: boxes vanish that nothing overlaps enough."""

    def nms(self, boxes, scores, iou_threshold):
        return _greedy(boxes, scores, iou_threshold, lambda iou, t: iou > t - 0.2)


class NmsSuppressesAtThreshold(Control):
    """Suppresses at ``IoU >= t`` (py-faster-rcnn's ``cpu_nms.pyx``)."""

    def nms(self, boxes, scores, iou_threshold):
        return _greedy(boxes, scores, iou_threshold, lambda iou, t: iou >= t)


class NmsDropsLastKept(Control):
    """Drops the lowest-scoring survivor whenever more than one box survives."""

    def nms(self, boxes, scores, iou_threshold):
        keep = ref.nms(boxes, scores, iou_threshold)
        return keep[:-1] if len(keep) > 1 else keep


class BatchedNmsCoordinateTrick(Control):
    """Separates classes by shifting boxes by ``class * (max coordinate + 1)``."""

    def batched_nms(self, boxes, scores, classes, iou_threshold):
        boxes = np.asarray(boxes, float).reshape(-1, 4)
        if boxes.size == 0:
            return np.zeros(0, dtype=np.int64)
        shift = np.asarray(classes, float) * (boxes.max() + 1)
        return ref.nms(boxes + shift[:, None], scores, iou_threshold)


class IouWithoutValidation(Control):
    """Computes IoU of whatever it is given."""

    def box_iou(self, boxes1, boxes2):
        area_a, area_b, inter = _iou_parts(boxes1, boxes2)
        union = area_a + area_b - inter
        return np.divide(inter, union, out=np.zeros_like(inter), where=union != 0)


class NmsSanitisesNaN(Control):
    """Replaces NaN coordinates by 0 instead of rejecting them."""

    def nms(self, boxes, scores, iou_threshold):
        boxes = np.nan_to_num(np.asarray(boxes, float), nan=0.0, posinf=0.0, neginf=0.0)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            return np.arange(len(boxes))
        boxes = np.concatenate(
            [np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], axis=1
        )
        return ref.nms(boxes, scores, iou_threshold)


def _anchors(feature_sizes, strides, sizes, ratios, **conventions):
    return ref_anchors.multilevel_anchors(feature_sizes, strides, sizes, ratios, **conventions)


class AnchorsMissingLastCell(Control):
    """Forgets the last cell of every map (an off-by-one in the grid)."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        shrunk = [[h, max(w - 1, 0)] if h * w else [h, w] for h, w in feature_sizes]
        return super().grid_anchors(shrunk, strides, sizes, ratios)


class AnchorsTransposedShift(Control):
    """Shifts cell (x, y) by stride * (y, x): a transposed meshgrid."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        levels = []
        for (h, w), stride, z, r in zip(feature_sizes, strides, sizes, ratios, strict=True):
            base = ref_anchors.cell_anchors(z, r) + stride / 2
            ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
            shifts = stride * np.stack([ys, xs, ys, xs], -1).reshape(-1, 1, 4)
            levels.append((shifts + base[None]).reshape(-1, 4))
        return np.concatenate(levels)


class AnchorsRatioAsWidthOverHeight(Control):
    """Reads the aspect ratio as w/h."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        inverted = [[1.0 / r for r in level] for level in ratios]
        return super().grid_anchors(feature_sizes, strides, sizes, inverted)


class AnchorsCornerOffset(Control):
    """Centres anchors on the cell's corner while declaring the centre offset."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        return _anchors(feature_sizes, strides, sizes, ratios, offset="corner")


class CornerAnchors(Control):
    """Honestly declares the corner offset (torchvision's placement)."""

    def __init__(self) -> None:
        super().__init__()
        self.conventions = Conventions(anchor_offset="corner")


class AnchorsSizeMajor(Control):
    """Size-major order while declaring ratio-major."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        return _anchors(feature_sizes, strides, sizes, ratios, offset="centre", order="size-major")


class AnchorsLevelsReversed(Control):
    """Concatenates the levels last to first."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        levels = [
            super(AnchorsLevelsReversed, self).grid_anchors([f], [s], [z], [r])
            for f, s, z, r in zip(feature_sizes, strides, sizes, ratios, strict=True)
        ]
        return np.concatenate(levels[::-1])


class AnchorsDoubleStride(Control):
    """Places cells two strides apart: the right and bottom of the image get no anchors."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        anchors = super().grid_anchors(feature_sizes, strides, sizes, ratios)
        first = super().grid_anchors([[1, 1] for _ in feature_sizes], strides, sizes, ratios)
        count = len(sizes[0]) * len(ratios[0])
        cell0 = np.tile(first[:count], (len(anchors) // count, 1))
        return cell0 + 2 * (anchors - cell0)


class LegacyMatlabTable(Control):
    """py-faster-rcnn's rounding, but the 1-based MATLAB numbers of its comment block."""

    def __init__(self) -> None:
        super().__init__()
        self.conventions = Conventions(box_width="legacy", anchor_offset="legacy", anchor_rounding="legacy")

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        return super().grid_anchors(feature_sizes, strides, sizes, ratios) + 1.0


class SupportIgnoresDilation(Control):
    """Treats every dilated convolution as undilated."""

    def receptive_field_support(self, layers, input_size, cells):
        undilated = [[kind, k, s, p, 1] for kind, k, s, p, _ in layers]
        return ref_rf.dependency_support(undilated, input_size, cells)


class SupportIgnoresLastLayer(Control):
    """Measures the stack without its last layer."""

    def receptive_field_support(self, layers, input_size, cells):
        return ref_rf.dependency_support(layers[:-1] or layers, input_size, cells)


class PoolKernelEqualsStride(Control):
    """Models every pooling window as stride x stride (true for VGG-16's 2x2, not ZF's 3x3)."""

    def receptive_field_support(self, layers, input_size, cells):
        fixed = [
            [kind, s if kind == "pool" else k, s, 0 if kind == "pool" else p, d]
            for kind, k, s, p, d in layers
        ]
        return ref_rf.dependency_support(fixed, input_size, cells)


class BackboneWithShortcuts(TorchvisionAdapter):
    """Lists a ResNet's shortcut projections as if they were on the main path."""

    name = "BackboneWithShortcuts"

    def backbone_layers(self, name):
        from detspec.conformance.adapters import torchvision_adapter as tv
        from torch import nn

        layers = []
        for _, module in tv._measurable_backbone(name).named_modules():
            if isinstance(module, nn.Conv2d):
                layers.append(
                    ["conv", module.kernel_size[0], module.stride[0], module.padding[0], module.dilation[0]]
                )
            elif isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
                layers.append(
                    ["pool", tv._int(module.kernel_size), tv._int(module.stride), tv._int(module.padding), 1]
                )
        return layers


def _iou(anchors, gt_boxes):
    return pairwise_iou(np.asarray(anchors, float), np.asarray(gt_boxes, float).reshape(-1, 4), 0.0)


def _labels_from(iou, high, low, best_rule):
    """Threshold labels plus a pluggable best-anchor rule ``best_rule(iou) -> bool mask``."""
    if iou.shape[1] == 0:
        return np.stack([np.zeros(len(iou)), -np.ones(len(iou))], 1)
    best_gt = iou.argmax(1)
    m = iou.max(1)
    labels = np.where(m >= high, 1, np.where(m < low, 0, -1))
    positive = (labels == 1) | best_rule(iou)
    labels[positive] = 1
    return np.stack([labels, np.where(positive, best_gt, -1)], 1)


class MatchStrictHigh(Control):
    """Positive only above ``high`` (the paper's wording read literally)."""

    def match_anchors(self, anchors, gt_boxes, image_size, high, low):
        result = super().match_anchors(anchors, gt_boxes, image_size, high, low)
        iou = _iou(anchors, gt_boxes)
        if iou.shape[1]:
            best = ((iou == iou.max(0)) & (iou.max(0) > 0)).any(1)
            on_threshold = (iou.max(1) == high) & ~best
            result[on_threshold] = -1
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
                result[iou[:, j] == iou[:, j].max(), 1] = j
        return result


class MatchEmptyGtIgnored(Control):
    """Ignores every anchor of an image without GT boxes."""

    def match_anchors(self, anchors, gt_boxes, image_size, high, low):
        result = super().match_anchors(anchors, gt_boxes, image_size, high, low)
        if len(gt_boxes) == 0:
            result[:, 0] = -1
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
        return ref_rpn.match_anchors(anchors, gt_boxes, image_size, high, low, border="ignore")


class TargetsTowardsTheFirstGt(Control):
    """Regresses every positive anchor towards GT 0."""

    def rpn_regression_targets(self, anchors, gt_boxes, image_size, high, low):
        labels = self.match_anchors(anchors, gt_boxes, image_size, high, low)[:, 0]
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
        )


class SampleIgnoresSeed(Control):
    """Always draws with seed 0."""

    def sample_balanced(self, labels, batch_size, positive_fraction, seed):
        return ref_rpn.sample_balanced(labels, batch_size, positive_fraction, 0)


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
        return loss * np.sum(np.asarray(sampled) >= 0) / len(sampled)


class LossNaNWhenEmpty(Control):
    """Averages over an empty sample: NaN."""

    def rpn_loss(self, logits, deltas, sampled, targets, anchor_locations):
        if np.all(np.asarray(sampled) < 0):
            return np.array([np.nan, np.nan])
        return super().rpn_loss(logits, deltas, sampled, targets, anchor_locations)


class GradientRegressesNegatives(Control):
    """Regresses every sampled anchor, negatives included (the seed's open question, answered no)."""

    def rpn_loss_gradient(self, logits, deltas, sampled, targets, anchor_locations):
        sampled = np.asarray(sampled)
        gradient = super().rpn_loss_gradient(logits, deltas, sampled, targets, anchor_locations)
        as_positive = np.where(sampled == 0, 1, sampled)
        regress_all = super().rpn_loss_gradient(logits, deltas, as_positive, targets, anchor_locations)
        gradient[:, 1:] = regress_all[:, 1:]
        return gradient


class FftWithoutMinusSign(Control):
    """The DFT with exp(+2πi ...): the inverse transform's kernel, unscaled."""

    def fft2(self, image):
        spectrum = np.conj(np.fft.fft2(np.asarray(image, float)))
        return np.stack([spectrum.real, spectrum.imag], -1)


class FftWithNoisyImaginaryPart(Control):
    """Adds a small non-Hermitian imaginary part to the spectrum (a complex input treated as real)."""

    def fft2(self, image):
        spectrum = np.fft.fft2(np.asarray(image, float))
        spectrum = spectrum + 1e-3j * np.abs(spectrum).max() * (
            np.arange(spectrum.size).reshape(spectrum.shape) % 3 == 1
        )
        return np.stack([spectrum.real, spectrum.imag], -1)


class PhaseOnlyAddsEnergyAtZeros(Control):
    """Gives coefficients with no phase unit magnitude (phase 0) instead of 0."""

    def phase_only(self, image):
        spectrum = np.fft.fft2(np.asarray(image, float))
        magnitude = np.abs(spectrum)
        unit = np.where(magnitude > 1e-4 * magnitude.max(), spectrum / np.maximum(magnitude, 1e-300), 1.0)
        return np.fft.ifft2(unit).real


class AmplitudeOnlyKeepsSign(Control):
    """Keeps the sign of the real part (a phase of 0 or π): some position survives."""

    def amplitude_only(self, image):
        spectrum = np.fft.fft2(np.asarray(image, float))
        return np.fft.ifft2(np.abs(spectrum) * np.sign(spectrum.real + 1e-300)).real


class PhaseOnlyHalfWhitened(Control):
    """Divides by sqrt(|F|) instead of |F|: a partial whitening, which a second pass changes."""

    def phase_only(self, image):
        spectrum = np.fft.fft2(np.asarray(image, float))
        return np.fft.ifft2(spectrum / np.maximum(np.sqrt(np.abs(spectrum)), 1e-300)).real


class PhaseOnlyAddsMean(Control):
    """Adds back the image's mean (DC) after whitening."""

    def phase_only(self, image):
        return ref_fourier.phase_only(image) + float(np.mean(image))


class PhaseOnlyAnchoredAtOrigin(Control):
    """Replaces pixel (0, 0) of its result by the image's own: a position-dependent leak."""

    def phase_only(self, image):
        result = ref_fourier.phase_only(image)
        result[0, 0] = np.asarray(image)[0, 0]
        return result


class AmplitudeOnlyIsTheImage(Control):
    """Returns the image itself for amplitude-only: position is kept."""

    def amplitude_only(self, image):
        return np.asarray(image, dtype=float)


class PhaseOnlyIsAmplitudeOnly(Control):
    """Returns the amplitude-only reconstruction from phase_only (the two outputs swapped)."""

    def phase_only(self, image):
        return ref_fourier.amplitude_only(image)


class HybridWithDonorsSwapped(Control):
    """Takes the phase from the amplitude donor and the amplitude from the phase donor."""

    def hybrid(self, phase_donor, amplitude_donor):
        return ref_fourier.hybrid(amplitude_donor, phase_donor)


def _proposals(args, **overrides):
    settings = {"pipeline": "per-level", "min_size_stage": "after-top-n", **overrides}
    return ref_proposals.generate_proposals(*args, **settings)


class ProposalsNotClipped(Control):
    """Forgets to clip decoded boxes to the image."""

    def generate_proposals(self, *args):
        anchors, logits, deltas = args[:3]
        result = _proposals(args)
        unclipped = ref.decode_boxes(anchors, deltas)
        scores = 1 / (1 + np.exp(-np.asarray(logits, float)))
        for row in result:  # put back the unclipped box of the anchor it came from
            source = int(
                np.argmin(
                    np.abs(scores - row[4])
                    + np.abs(ref.clip_boxes_to_image(unclipped, args[4]) - row[:4]).sum(1)
                )
            )
            row[:4] = unclipped[source]
        return result


class ProposalsNaiveSigmoid(Control):
    """Scores with e^x / (1 + e^x): NaN for an infinite logit."""

    def generate_proposals(self, *args):
        result = _proposals(args)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            logits = np.log(result[:, 4] / (1 - result[:, 4]))
            result[:, 4] = np.exp(logits) / (1 + np.exp(logits))
        return result


class ProposalsPostNAppliedTwice(Control):
    """Keeps post_nms_top_n + 1 proposals, unsorted (reversed)."""

    def generate_proposals(self, *args):
        result = _proposals((*args[:6], args[6] + 1, *args[7:]))
        return result[::-1]


class ProposalsWithRawLogits(Control):
    """Reports the raw logit as the score instead of sigmoid(logit)."""

    def generate_proposals(self, *args):
        result = _proposals(args)
        with np.errstate(divide="ignore"):
            result[:, 4] = np.log(result[:, 4] / (1 - result[:, 4]))
        return result


class ProposalsMinSizeIgnored(Control):
    """Never removes small boxes."""

    def generate_proposals(self, *args):
        return _proposals((*args[:8], 0.0))


class ProposalsWithoutNms(Control):
    """Skips NMS (threshold 1 keeps everything)."""

    def generate_proposals(self, *args):
        return _proposals((*args[:7], 1.0, *args[8:]))


class ProposalsKeepTheLowestScores(Control):
    """The post-NMS cut keeps the *last* post_n survivors (``[-post_n:]`` for ``[:post_n]``),
    still sorted: each post_n keeps a different tail, so no smaller one is a prefix."""

    def generate_proposals(self, *args):
        everything = _proposals((*args[:6], len(args[0]), *args[7:]))
        return everything[len(everything) - min(int(args[6]), len(everything)) :]


class ProposalsGlobalTopN(Control):
    """Ranks all levels together (py-faster-rcnn's global top-N) while declaring per-level."""

    def generate_proposals(self, *args):
        return _proposals(args, pipeline="global")


# --- RoI head -----------------------------------------------------------------------------------


class _RoiControl(Control):
    """Helpers for the RoI-head controls: the reference sampler with the declared conventions."""

    def _reference_rows(self, args, **changes):
        names = OPERATIONS["sample_rois"].arguments
        candidates = changes.pop("gt_candidates", self.conventions.roi_gt_candidates)
        values = {**dict(zip(names, args, strict=True)), **changes}
        values["num_classes"], values["batch_size"] = int(values["num_classes"]), int(values["batch_size"])
        values["seed"] = int(values["seed"])
        c = self.conventions
        return ref_roi.sample_rois(
            **values,
            gt_candidates=candidates,
            fill=c.roi_fill,
            background_label=c.roi_background_label,
        )


class RoiForegroundWithReplacement(_RoiControl):
    """Foreground RoIs drawn with replacement: the same RoI can be taken twice."""

    def sample_rois(self, *args):
        rows = self._reference_rows(args)
        foreground = np.flatnonzero(rows[:, 4] != 0)
        if len(foreground) >= 2:
            rows[foreground[1]] = rows[foreground[0]]
        return rows


class RoiBackgroundUpToHigh(_RoiControl):
    """Background up to *and including* ``bg_high`` (``<=`` for ``<``)."""

    def sample_rois(self, *args):
        return self._reference_rows(args, bg_high=min(args[7] + 1e-9, args[6]))


class RoiRoundedBudget(_RoiControl):
    """The foreground budget rounded (py-faster-rcnn's ``np.round``) instead of floored."""

    def sample_rois(self, *args):
        budget = int(np.round(args[4] * args[5]))
        fraction = min(1.0, (budget + 0.5) / args[4]) if args[4] else args[5]
        return self._reference_rows(args, positive_fraction=fraction)


class RoiGtNotAdded(_RoiControl):
    """Declares the GT boxes added to the candidates but leaves them out."""

    def sample_rois(self, *args):
        return self._reference_rows(args, gt_candidates="not-added")


class RoiNothingWithoutGt(_RoiControl):
    """Returns no RoI at all for an image without GT boxes (skips background-only images)."""

    def sample_rois(self, *args):
        rows = self._reference_rows(args)
        return rows if len(args[1]) else rows[:0]


class RoiUnseeded(_RoiControl):
    """Draws from an unseeded generator: the seed does not reproduce the sample."""

    def sample_rois(self, *args):
        return self._reference_rows(args, seed=int(np.random.default_rng().integers(2**32)))


class RoiIgnoresSeed(_RoiControl):
    """Always the same sample, whatever the seed."""

    def sample_rois(self, *args):
        return self._reference_rows(args, seed=0)


class RoiIgnoresBackgroundLow(_RoiControl):
    """Accepts ``bg_low`` but samples backgrounds from [0, bg_high) anyway."""

    def sample_rois(self, *args):
        return self._reference_rows(args, bg_low=0.0)


class RoiTargetsUnweighted(_RoiControl):
    """Regression targets without the (10, 10, 5, 5) weights."""

    def sample_rois(self, *args):
        return self._reference_rows(args, weights=(1.0, 1.0, 1.0, 1.0))


class RoiTargetsDividedByWeights(_RoiControl):
    """Weights applied as standard deviations the wrong way round: divided, not multiplied."""

    def sample_rois(self, *args):
        rows = self._reference_rows(args, weights=(1.0, 1.0, 1.0, 1.0))
        foreground = rows[:, 5] >= 0
        rows[foreground, 6:] /= np.asarray(args[9], dtype=float)
        return rows


class RoiBackgroundTargetsAgainstAZeroBox(_RoiControl):
    """Background RoIs encoded against a zero box (as if matched to a missing GT): -inf sizes."""

    def sample_rois(self, *args):
        rows = self._reference_rows(args)
        background = rows[:, 5] < 0
        with np.errstate(divide="ignore", invalid="ignore"):
            widths = np.maximum(rows[background, 2] - rows[background, 0], 0)
            rows[background, 8] = np.log(0.0 / np.where(widths > 0, widths, 1.0))
        return rows


class HeadLossNormalisedByForeground(Control):
    """Box loss divided by the number of foreground RoIs instead of all sampled RoIs."""

    def fast_rcnn_loss(self, class_logits, box_regression, labels, targets):
        loss = super().fast_rcnn_loss(class_logits, box_regression, labels, targets)
        foreground = int(np.sum(np.asarray(labels) != 0))
        return loss * np.array([1.0, len(labels) / foreground if foreground else 1.0])


class HeadGradientRegressesBackground(Control):
    """Background RoIs regressed too (towards their targets, in the background class's columns)."""

    def fast_rcnn_loss_gradient(self, class_logits, box_regression, labels, targets):
        gradient = super().fast_rcnn_loss_gradient(class_logits, box_regression, labels, targets)
        count, classes = np.shape(class_logits)
        background = np.flatnonzero(np.asarray(labels) == 0)
        diff = np.asarray(box_regression)[background, :4] - np.asarray(targets)[background]
        gradient[background, classes : classes + 4] = np.clip(diff * 9, -1, 1) / count
        return gradient


class HeadLossNaNWithoutRoi(Control):
    """0 / 0 for an empty RoI batch."""

    def fast_rcnn_loss(self, class_logits, box_regression, labels, targets):
        if len(labels) == 0:
            return np.array([np.nan, np.nan])
        return super().fast_rcnn_loss(class_logits, box_regression, labels, targets)


class AlignWithFirstRoiSize(Control):
    """Every RoI pooled with the first RoI's width and height (a batching bug)."""

    def roi_align(self, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        rois = np.asarray(rois, dtype=float).copy()
        if len(rois):
            rois[:, 2:] = rois[:, :2] + (rois[0, 2:] - rois[0, :2])
        return super().roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)


class AlignSamplesBinCorners(Control):
    """Samples at the corners of the sub-bins (``g / n``) instead of their centres."""

    def roi_align(self, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        rois = np.asarray(rois, dtype=float).copy()
        for first, size in ((0, output_size[1]), (1, output_size[0])):
            length = rois[:, first + 2] - rois[:, first]
            count = sampling_ratio or np.maximum(np.ceil(length * spatial_scale / size), 1)
            rois[:, [first, first + 2]] -= (length / size / count / 2)[:, None]
        return super().roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)


class AlignIgnoresAligned(Control):
    """``aligned`` accepted and ignored."""

    def roi_align(self, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        return super().roi_align(features, rois, output_size, spatial_scale, sampling_ratio, False)


class AlignClipsRoisToTheMap(Control):
    """RoIs clipped to the feature map first: a RoI wholly outside pools the border cells."""

    def roi_align(self, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        _, height, width = np.shape(features)
        limit = np.array([width, height, width, height]) / spatial_scale
        rois = np.clip(np.asarray(rois, dtype=float), 0, limit)
        return super().roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)


class PoolFloorsCorners(Control):
    """Corners quantised with ``floor`` instead of ``round``."""

    def roi_pool(self, features, rois, output_size, spatial_scale):
        floored = np.floor(np.asarray(rois, dtype=float) * spatial_scale) / spatial_scale
        return super().roi_pool(features, floored, output_size, spatial_scale)


class PoolWithoutQuantisation(Control):
    """Max over bilinear samples (RoIAlign's grid) instead of quantised cells."""

    def roi_pool(self, features, rois, output_size, spatial_scale):
        return ref_pool.roi_align(features, rois, output_size, spatial_scale, 2, False)


class FpnLevelOneTooCoarse(Control):
    """Canonical level 5 instead of 4 (every RoI one level too coarse, where not clamped)."""

    def multiscale_roi_align(self, features, rois, output_size, sampling_ratio, image_size):
        rois = np.asarray(rois, dtype=float)
        levels = [ref_pool.level_of_feature_map(np.shape(f)[1], image_size[0]) for f in features]
        assigned = ref_pool.fpn_levels(
            np.concatenate([rois[:, :2], rois[:, :2] + 2 * (rois[:, 2:] - rois[:, :2])], 1),
            levels[0],
            levels[-1],
        )
        output = np.zeros((len(rois), np.shape(features[0])[0], *(int(v) for v in output_size)))
        for index, level in enumerate(levels):
            chosen = np.flatnonzero(assigned == level)
            if chosen.size:
                output[chosen] = ref_pool.roi_align(
                    features[index], rois[chosen], output_size, 2.0**-level, int(sampling_ratio)
                )
        return output


#: property name -> the broken implementation it must catch.
CONTROLS = {
    "area_is_width_times_height": AreaPlusOne,
    "iou_matches_formula": IouOverFirstArea,
    "iou_of_zero_area_pair_is_zero": IouUnguardedDivision,
    "iou_lies_in_unit_interval": IouDoubled,
    "iou_of_box_with_itself_is_one": IouUnionWithoutOverlap,
    "iou_is_symmetric": IouAsymmetricUnion,
    "iou_is_translation_invariant": IouClipsToPositiveQuadrant,
    "iou_is_scale_invariant": IouLegacyWidths,
    "clip_clamps_each_coordinate": ClipSwapsHeightAndWidth,
    "clip_is_idempotent": ClipShrinksBoxes,
    "remove_small_keeps_sides_at_least_min_size": RemoveSmallStrict,
    "encode_matches_formula": EncodeLegacyCentre,
    "encode_weights_scale_columns": EncodeIgnoresSizeWeights,
    "encode_is_similarity_invariant": EncodeByStride,
    "decode_matches_formula": DecodeIgnoresWeights,
    "decode_inverts_encode": DecodeOnePixelWide,
    "decode_clamps_large_size_deltas": DecodeWithoutClamp,
    "decode_lower_side_follows_convention": DecodeSymmetricClamp,
    "nms_returns_distinct_indices": NmsRepeatsFirst,
    "nms_keeps_score_order": NmsSortedByIndex,
    "nms_kept_boxes_do_not_overlap_above_threshold": NmsTooLenient,
    "nms_suppression_is_explained": NmsTooEager,
    "nms_keeps_both_boxes_at_exact_threshold": NmsSuppressesAtThreshold,
    "nms_is_idempotent": NmsDropsLastKept,
    "batched_nms_is_nms_within_each_class": BatchedNmsCoordinateTrick,
    "iou_rejects_invalid_boxes": IouWithoutValidation,
    "nms_rejects_invalid_boxes": NmsSanitisesNaN,
    "anchor_count_is_cells_times_shapes": AnchorsMissingLastCell,
    "anchors_of_a_cell_are_the_first_cell_shifted": AnchorsTransposedShift,
    "anchors_have_declared_size_and_ratio": AnchorsRatioAsWidthOverHeight,
    "anchors_are_centred_on_their_cell": AnchorsCornerOffset,
    "cell_anchors_follow_declared_order": AnchorsSizeMajor,
    "levels_are_concatenated_in_order": AnchorsLevelsReversed,
    "anchor_centres_cover_the_image": CornerAnchors,
    "some_anchor_reaches_the_guaranteed_iou": AnchorsDoubleStride,
    "legacy_anchors_reproduce_py_faster_rcnn": LegacyMatlabTable,
    "vgg16_anchors_sit_on_receptive_field_centres": CornerAnchors,
    "measured_support_matches_recurrence": SupportIgnoresDilation,
    "three_by_three_conv_adds_two_jumps": SupportIgnoresLastLayer,
    "paper_receptive_fields_are_reproduced": PoolKernelEqualsStride,
    "backbone_receptive_field_matches_its_layers": BackboneWithShortcuts,
    "anchors_are_labelled_by_iou_and_best_anchor_rule": MatchStrictHigh,
    "gt_overlapping_no_anchor_makes_nothing_positive": MatchZeroIouBug,
    "positive_anchor_is_matched_to_its_best_gt": MatchedToTheGtItWasBestFor,
    "no_gt_means_every_anchor_is_negative": MatchEmptyGtIgnored,
    "every_overlapping_gt_has_a_positive_anchor": MatchWithoutBestAnchorRule,
    "labels_do_not_depend_on_gt_order": MatchBestRuleForFirstGtOnly,
    "labels_follow_the_anchors_when_reordered": MatchFirstTieOnly,
    "labels_are_translation_invariant": MatchClipsAnchors,
    "border_anchors_follow_the_declared_policy": MatchUsesTheBorderWhenKeeping,
    "regression_target_encodes_the_matched_gt": TargetsTowardsTheFirstGt,
    "sample_sizes_follow_the_budget": SampleRoundsUp,
    "sampled_anchors_keep_their_labels": SampleIgnoredAsNegative,
    "sampling_is_reproducible_and_varies_with_the_seed": SampleIgnoresSeed,
    "sampling_is_uniform_over_eligible_anchors": SampleFavoursLowIndices,
    "rpn_loss_matches_formula": LossPerAnchorNotPerSample,
    "rpn_loss_of_an_empty_sample_is_zero": LossNaNWhenEmpty,
    "rpn_loss_ignores_unsampled_outputs": LossOverAllAnchors,
    "rpn_loss_gradient_vanishes_off_the_sample": GradientRegressesNegatives,
    "fft_matches_the_dft_sum": FftWithoutMinusSign,
    "circular_shift_multiplies_spectrum_by_a_phase_ramp": FftWithoutMinusSign,
    "spectrum_of_a_real_image_is_hermitian": FftWithNoisyImaginaryPart,
    "phase_only_matches_definition": PhaseOnlyAddsEnergyAtZeros,
    "amplitude_only_matches_definition": AmplitudeOnlyKeepsSign,
    "amplitude_only_forgets_position": AmplitudeOnlyIsTheImage,
    "phase_only_moves_with_the_image": PhaseOnlyAnchoredAtOrigin,
    "phase_only_is_idempotent": PhaseOnlyHalfWhitened,
    "phase_only_ignores_contrast": PhaseOnlyAddsMean,
    "amplitude_only_edges_average_to_nothing": AmplitudeOnlyIsTheImage,
    "phase_only_keeps_edges_on_the_shapes_family": PhaseOnlyIsAmplitudeOnly,
    "hybrid_looks_like_its_phase_donor": HybridWithDonorsSwapped,
    "proposals_are_finite_and_inside_the_image": ProposalsNotClipped,
    "extreme_outputs_still_give_boxes_inside_the_image": ProposalsNaiveSigmoid,
    "at_most_post_n_proposals_sorted_by_score": ProposalsPostNAppliedTwice,
    "every_proposal_is_a_decoded_clipped_anchor": ProposalsWithRawLogits,
    "proposals_satisfy_the_min_size": ProposalsMinSizeIgnored,
    "proposals_of_a_level_do_not_overlap_above_threshold": ProposalsWithoutNms,
    "smaller_post_n_is_a_prefix": ProposalsKeepTheLowestScores,
    "proposals_follow_the_declared_pipeline": ProposalsGlobalTopN,
    "paper_scale_proposals_keep_the_invariants": ProposalsMinSizeIgnored,
    "sampled_rois_are_candidates": RoiForegroundWithReplacement,
    "sampled_rois_are_labelled_by_iou": RoiBackgroundUpToHigh,
    "sample_sizes_follow_the_budget_and_fill_policy": RoiRoundedBudget,
    "gt_boxes_are_sampled_as_their_own_foreground": RoiGtNotAdded,
    "without_gt_every_roi_is_background": RoiNothingWithoutGt,
    "roi_sampling_is_reproducible": RoiUnseeded,
    "roi_sampling_is_uniform": RoiIgnoresSeed,
    "lower_background_threshold_is_honoured": RoiIgnoresBackgroundLow,
    "foreground_target_encodes_the_matched_gt": RoiTargetsUnweighted,
    "weights_are_inverse_standard_deviations": RoiTargetsDividedByWeights,
    "every_sampled_value_is_finite": RoiBackgroundTargetsAgainstAZeroBox,
    "fast_rcnn_loss_matches_formula": HeadLossNormalisedByForeground,
    "background_rois_and_other_classes_get_no_box_gradient": HeadGradientRegressesBackground,
    "fast_rcnn_loss_of_no_roi_is_zero": HeadLossNaNWithoutRoi,
    "each_roi_is_pooled_on_its_own": AlignWithFirstRoiSize,
    "roi_align_is_exact_on_affine_maps": AlignSamplesBinCorners,
    "aligned_is_a_half_cell_shift": AlignIgnoresAligned,
    "samples_off_the_map_read_zero": AlignClipsRoisToTheMap,
    "roi_pool_is_max_over_quantised_bins": PoolFloorsCorners,
    "roi_pool_sees_only_quantised_corners": PoolWithoutQuantisation,
    "rois_are_pooled_from_their_fpn_level": FpnLevelOneTooCoarse,
}
