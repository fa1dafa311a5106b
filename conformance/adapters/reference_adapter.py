"""The reference implementation as an adapter (``--impl reference`` / ``reference-legacy``)."""

from __future__ import annotations

from conformance import suite_version
from properties.interface import Conventions
from reference import boxes as ref


class ReferenceAdapter:
    """``reference/`` behind the implementation interface, under the given conventions."""

    def __init__(self, conventions: Conventions | None = None, name: str = "reference") -> None:
        self.name = name
        self.version = suite_version()
        self.conventions = conventions or Conventions()

    @property
    def _width(self) -> str:
        return self.conventions.box_width

    def box_area(self, boxes):
        return ref.box_area(boxes, self._width)

    def box_iou(self, boxes1, boxes2):
        return ref.box_iou(boxes1, boxes2, self._width)

    def clip_boxes_to_image(self, boxes, image_size):
        return ref.clip_boxes_to_image(boxes, image_size, self._width)

    def remove_small_boxes(self, boxes, min_size):
        return ref.remove_small_boxes(boxes, min_size, self._width, self.conventions.min_size_bound)

    def encode_boxes(self, reference_boxes, target_boxes, weights):
        return ref.encode_boxes(reference_boxes, target_boxes, weights, self._width)

    def decode_boxes(self, reference_boxes, deltas, weights, clamp):
        return ref.decode_boxes(
            reference_boxes, deltas, weights, clamp, self.conventions.decode_clamp, self._width
        )

    def nms(self, boxes, scores, iou_threshold):
        return ref.nms(boxes, scores, iou_threshold, self._width)

    def batched_nms(self, boxes, scores, classes, iou_threshold):
        return ref.batched_nms(boxes, scores, classes, iou_threshold, self._width)


def reference() -> ReferenceAdapter:
    return ReferenceAdapter()


def reference_legacy() -> ReferenceAdapter:
    """The reference in py-faster-rcnn's box convention (``+1`` widths), strict min size and a
    symmetric decode clamp: every convention at its non-default value."""
    return ReferenceAdapter(
        Conventions(box_width="legacy", min_size_bound="strict", decode_clamp="symmetric"),
        name="reference-legacy",
    )
