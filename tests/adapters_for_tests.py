"""Adapters used by the harness tests: misbehaving ones, and factories for ``--impl`` errors."""

from __future__ import annotations

import time

import numpy as np
import torchvision
from detspec.conformance.adapters.reference_adapter import ReferenceAdapter
from detspec.conformance.adapters.torchvision_adapter import TorchvisionAdapter


class Hangs(ReferenceAdapter):
    def box_iou(self, boxes1, boxes2):
        time.sleep(3600)


class Raises(ReferenceAdapter):
    def box_iou(self, boxes1, boxes2):
        raise RuntimeError("kernel exploded")


class ReturnsNaN(ReferenceAdapter):
    def box_iou(self, boxes1, boxes2):
        return np.full((len(boxes1), len(boxes2)), np.nan)


class WrongShape(ReferenceAdapter):
    def box_iou(self, boxes1, boxes2):
        return np.zeros(len(boxes1))


class FloatIndices(ReferenceAdapter):
    def nms(self, boxes, scores, iou_threshold):
        return np.zeros(len(boxes), dtype=np.float64)


class MutatesInputs(ReferenceAdapter):
    def box_iou(self, boxes1, boxes2):
        result = super().box_iou(boxes1, boxes2)
        boxes1[:] = -1.0
        return result


class OnlyArea:
    """Provides a single operation: everything else is "not provided"."""

    name = "only-area"
    version = "1"

    def __init__(self) -> None:
        from detspec.properties.interface import Conventions

        self.conventions = Conventions()

    def box_area(self, boxes):
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def only_area() -> OnlyArea:
    return OnlyArea()


def factory_that_raises():
    raise RuntimeError("no GPU here")


def returns_nothing_useful():
    return object()


def broken_torchvision() -> TorchvisionAdapter:
    """torchvision with two box ops swapped for broken variants: nms returns its kept indices in
    index order, box_iou computes with legacy ``+1`` widths."""
    original_nms = torchvision.ops.nms

    def nms_in_index_order(boxes, scores, iou_threshold):
        return original_nms(boxes, scores, iou_threshold).sort().values

    def iou_plus_one(boxes1, boxes2):
        grow = boxes1.new_tensor([0.0, 0.0, 1.0, 1.0])
        return torchvision.ops.boxes.box_iou(boxes1 + grow, boxes2 + grow)

    torchvision.ops.nms = nms_in_index_order
    torchvision.ops.box_iou = iou_plus_one
    return TorchvisionAdapter()


class AnchorsRaise(ReferenceAdapter):
    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        raise RuntimeError("anchor kernel missing")


def anchors_raise() -> AnchorsRaise:
    return AnchorsRaise()
