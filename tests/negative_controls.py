"""Deliberately broken implementations: each property must catch at least one of them.

Each control is the reference with one operation replaced by a plausible bug (an off-by-one, a
swapped argument, a missing guard, a wrong comparison). :data:`CONTROLS` maps every property to
the control that must make it fail; ``tests/test_negative_controls.py`` checks both that the
table is complete and that every control is caught.
"""

from __future__ import annotations

import numpy as np

from conformance.adapters.reference_adapter import ReferenceAdapter
from conformance.adapters.torchvision_adapter import TorchvisionAdapter
from properties.interface import Conventions
from reference import anchors as ref_anchors
from reference import boxes as ref
from reference import receptive_field as ref_rf
from reference.boxes import pairwise_iou


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
        from torch import nn

        from conformance.adapters import torchvision_adapter as tv

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
}
