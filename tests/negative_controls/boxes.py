"""Negative controls of the box primitives (``spec/boxes.md``)."""

from __future__ import annotations

import numpy as np
from detspec.reference import boxes as ref
from detspec.reference.boxes import pairwise_iou

from tests.negative_controls.base import Control


def _iou_parts(boxes1, boxes2):
    a, b = np.asarray(boxes1, float).reshape(-1, 4), np.asarray(boxes2, float).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    return area_a[:, None], area_b[None, :], wh[..., 0] * wh[..., 1]


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


class BatchedNmsClassAgnosticPastAThousand(Control):
    """A "fast path" above 1000 boxes that runs one class-agnostic NMS (the classes forgotten)."""

    def batched_nms(self, boxes, scores, classes, iou_threshold):
        if len(boxes) > 1000:
            return ref.nms(boxes, scores, iou_threshold)
        return super().batched_nms(boxes, scores, classes, iou_threshold)
