"""torchvision behind the implementation interface (``--impl torchvision``).

Computes in float32 on the CPU, as torchvision's detection models do; conversions to and from
NumPy stay here. Operations are looked up at call time, so a patched torchvision is what is tested.
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision
from torchvision.models.detection import _utils as det_utils

from properties.interface import Conventions


class TorchvisionAdapter:
    name = "torchvision"
    conventions = Conventions(
        box_width="continuous", min_size_bound="inclusive", decode_clamp="upper", dtype="float32"
    )

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        self.dtype = dtype
        self.version = f"torchvision {torchvision.__version__}, torch {torch.__version__}, {dtype}"

    def _tensor(self, array) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=self.dtype)

    def box_area(self, boxes):
        return torchvision.ops.box_area(self._tensor(boxes)).numpy()

    def box_iou(self, boxes1, boxes2):
        return torchvision.ops.box_iou(self._tensor(boxes1), self._tensor(boxes2)).numpy()

    def clip_boxes_to_image(self, boxes, image_size):
        height, width = image_size
        return torchvision.ops.clip_boxes_to_image(self._tensor(boxes), (height, width)).numpy()

    def remove_small_boxes(self, boxes, min_size):
        return torchvision.ops.remove_small_boxes(self._tensor(boxes), min_size).numpy()

    def encode_boxes(self, reference_boxes, target_boxes, weights):
        # BoxCoder.encode_single(reference_boxes=targets, proposals=anchors): torchvision calls
        # the *targets* "reference boxes" and encodes them relative to the proposals.
        coder = det_utils.BoxCoder(tuple(weights))
        return coder.encode_single(self._tensor(target_boxes), self._tensor(reference_boxes)).numpy()

    def decode_boxes(self, reference_boxes, deltas, weights, clamp):
        coder = det_utils.BoxCoder(tuple(weights), bbox_xform_clip=clamp)
        return coder.decode_single(self._tensor(deltas), self._tensor(reference_boxes)).numpy()

    def nms(self, boxes, scores, iou_threshold):
        return torchvision.ops.nms(self._tensor(boxes), self._tensor(scores), iou_threshold).numpy()

    def batched_nms(self, boxes, scores, classes, iou_threshold):
        labels = torch.as_tensor(np.asarray(classes), dtype=torch.int64)
        keep = torchvision.ops.batched_nms(self._tensor(boxes), self._tensor(scores), labels, iou_threshold)
        return keep.numpy()


def torchvision_float32() -> TorchvisionAdapter:
    return TorchvisionAdapter(torch.float32)
