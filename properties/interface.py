"""The implementation interface the properties are written against.

An implementation (an *adapter*) is any object with ``name``, ``version``, ``conventions`` (a
:class:`Conventions`) and one method per operation in :data:`OPERATIONS` that it provides,
taking and returning NumPy arrays. Arguments are passed positionally, in the order listed here.
An operation the adapter lacks is *not provided*, which is reported, not failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
from detspec.properties.checks import PropertyFailure


@dataclass(frozen=True)
class Conventions:
    """Choices where implementations legitimately differ (``spec/boxes.md``, "Conventions")."""

    box_width: str = "continuous"  # or "legacy" (x2 - x1 + 1)
    min_size_bound: str = "inclusive"  # or "strict"
    decode_clamp: str = "upper"  # or "symmetric"
    dtype: str = "float64"  # precision the implementation computes in: "float32" or "float64"
    anchor_offset: str = "centre"  # centre of cell 0: "corner" (0), "centre" (s/2), "legacy" ((s-1)/2)
    anchor_rounding: str = "none"  # or "round-corners" (torchvision), "legacy" (py-faster-rcnn)
    anchor_order: str = "ratio-major"  # or "size-major" (detectron2)
    rpn_border: str = "keep"  # or "ignore": anchors crossing the image border left out
    rpn_loss_normaliser: str = "sampled"  # or "paper": 1/256 and lambda / #anchor locations
    rpn_smooth_l1_beta: str = "1/9"  # or "1", "0" (pure L1)
    proposal_pipeline: str = "per-level"  # or "global" (py-faster-rcnn)
    proposal_min_size_stage: str = "after-top-n"  # or "before-top-n" (py-faster-rcnn)
    roi_gt_candidates: str = "added"  # or "not-added": GT boxes join the RoI candidates
    roi_fill: str = "shorter"  # or "repeat-negatives": scarce backgrounds repeated to fill the batch
    roi_background_label: str = "zero"  # or "num-classes" (detectron2, mmdetection)
    roi_background_low: str = "parameter"  # or "zero-only": no lower background IoU threshold
    roi_smooth_l1_beta: str = "1/9"  # or "1" (Fast R-CNN, py-faster-rcnn), "0" (L1)

    ALLOWED: ClassVar[dict[str, tuple[str, ...]]] = {
        "box_width": ("continuous", "legacy"),
        "min_size_bound": ("inclusive", "strict"),
        "decode_clamp": ("upper", "symmetric"),
        "dtype": ("float32", "float64"),
        "anchor_offset": ("corner", "centre", "legacy"),
        "anchor_rounding": ("none", "round-corners", "legacy"),
        "anchor_order": ("ratio-major", "size-major"),
        "rpn_border": ("keep", "ignore"),
        "rpn_loss_normaliser": ("sampled", "paper"),
        "rpn_smooth_l1_beta": ("1/9", "1", "0"),
        "proposal_pipeline": ("per-level", "global"),
        "proposal_min_size_stage": ("after-top-n", "before-top-n"),
        "roi_gt_candidates": ("added", "not-added"),
        "roi_fill": ("shorter", "repeat-negatives"),
        "roi_background_label": ("zero", "num-classes"),
        "roi_background_low": ("parameter", "zero-only"),
        "roi_smooth_l1_beta": ("1/9", "1", "0"),
    }

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value not in self.ALLOWED[field.name]:
                raise ValueError(
                    f"convention {field.name}={value!r} is not one of {self.ALLOWED[field.name]}"
                )

    @property
    def beta(self) -> float:
        return {"1/9": 1 / 9, "1": 1.0, "0": 0.0}[self.rpn_smooth_l1_beta]

    @property
    def roi_beta(self) -> float:
        return {"1/9": 1 / 9, "1": 1.0, "0": 0.0}[self.roi_smooth_l1_beta]

    @property
    def width_offset(self) -> int:
        return 1 if self.box_width == "legacy" else 0


@dataclass(frozen=True)
class Operation:
    """An operation: its arguments, and how the shape of a valid result follows from them.

    ``result`` is ``"array"`` (a float array of shape ``shape(*args)``), ``"indices"`` (a 1-D
    integer array of indices into the first argument) or ``"json"`` (plain lists and numbers).
    """

    name: str
    arguments: tuple[str, ...]
    result: str
    shape: Callable[..., tuple[int, ...]] | None = None


def _rows(argument: Any) -> int:
    return len(argument)


def _pooled(features, rois, output_size, *_) -> tuple[int, ...]:
    channels = len(features[0]) if isinstance(features, list | tuple) else np.shape(features)[0]
    return (_rows(rois), channels, int(output_size[0]), int(output_size[1]))


def _anchor_count(feature_sizes, _strides, sizes, ratios) -> tuple[int, int]:
    cells = sum(
        int(h) * int(w) * len(s) * len(r) for (h, w), s, r in zip(feature_sizes, sizes, ratios, strict=False)
    )
    return cells, 4


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("box_area", ("boxes",), "array", lambda b: (_rows(b),)),
        Operation("box_iou", ("boxes1", "boxes2"), "array", lambda a, b: (_rows(a), _rows(b))),
        Operation("clip_boxes_to_image", ("boxes", "image_size"), "array", lambda b, _: (_rows(b), 4)),
        Operation("remove_small_boxes", ("boxes", "min_size"), "indices"),
        Operation(
            "encode_boxes",
            ("reference_boxes", "target_boxes", "weights"),
            "array",
            lambda a, _g, _w: (_rows(a), 4),
        ),
        Operation(
            "decode_boxes",
            ("reference_boxes", "deltas", "weights", "clamp"),
            "array",
            lambda a, _d, _w, _c: (_rows(a), 4),
        ),
        Operation("nms", ("boxes", "scores", "iou_threshold"), "indices"),
        Operation("batched_nms", ("boxes", "scores", "classes", "iou_threshold"), "indices"),
        # anchors (spec/anchors.md): one entry per level in every argument
        Operation("grid_anchors", ("feature_sizes", "strides", "sizes", "ratios"), "array", _anchor_count),
        # receptive fields: layers are [kind, kernel, stride, padding, dilation] lists; the result
        # is, per output cell c (along both axes, square input), the first and last input pixel
        # index on which the cell depends
        Operation(
            "receptive_field_support",
            ("layers", "input_size", "cells"),
            "array",
            lambda _l, _n, cells: (len(cells), 2),
        ),
        Operation("backbone_layers", ("name",), "json"),
        # RPN proposals (spec/proposals.md): (K, 5) rows x1, y1, x2, y2, score
        Operation(
            "generate_proposals",
            (
                "anchors",
                "logits",
                "deltas",
                "levels",
                "image_size",
                "pre_nms_top_n",
                "post_nms_top_n",
                "nms_threshold",
                "min_size",
            ),
            "array",
            lambda anchors, *_: (None, 5),
        ),
        # Fourier (spec/fourier.md): real 2-D images
        Operation("fft2", ("image",), "array", lambda image: (*np.shape(image), 2)),
        Operation("phase_only", ("image",), "array", lambda image: np.shape(image)),
        Operation("amplitude_only", ("image",), "array", lambda image: np.shape(image)),
        Operation("hybrid", ("phase_donor", "amplitude_donor"), "array", lambda a, _b: np.shape(a)),
        # RPN training (spec/rpn_training.md)
        Operation(
            "match_anchors",
            ("anchors", "gt_boxes", "image_size", "high", "low"),
            "array",
            lambda a, *_: (_rows(a), 2),
        ),
        Operation(
            "rpn_regression_targets",
            ("anchors", "gt_boxes", "image_size", "high", "low"),
            "array",
            lambda a, *_: (_rows(a), 4),
        ),
        Operation(
            "sample_balanced",
            ("labels", "batch_size", "positive_fraction", "seed"),
            "array",
            lambda labels, *_: (_rows(labels),),
        ),
        Operation(
            "rpn_loss",
            ("logits", "deltas", "sampled", "targets", "anchor_locations"),
            "array",
            lambda *_: (2,),
        ),
        Operation(
            "rpn_loss_gradient",
            ("logits", "deltas", "sampled", "targets", "anchor_locations"),
            "array",
            lambda logits, *_: (_rows(logits), 5),
        ),
        # RoI-head training (spec/roi_head.md): rows x1, y1, x2, y2, label, matched GT, 4 targets
        Operation(
            "sample_rois",
            (
                "proposals",
                "gt_boxes",
                "gt_labels",
                "num_classes",
                "batch_size",
                "positive_fraction",
                "fg_threshold",
                "bg_high",
                "bg_low",
                "weights",
                "seed",
            ),
            "array",
            lambda *_: (None, 10),
        ),
        Operation(
            "fast_rcnn_loss",
            ("class_logits", "box_regression", "labels", "targets"),
            "array",
            lambda *_: (2,),
        ),
        Operation(
            "fast_rcnn_loss_gradient",
            ("class_logits", "box_regression", "labels", "targets"),
            "array",
            lambda logits, *_: (_rows(logits), 5 * np.shape(logits)[1]),
        ),
        # RoI feature extraction: features (C, H, W) of one image, RoIs (R, 4) in image coordinates
        Operation(
            "roi_align",
            ("features", "rois", "output_size", "spatial_scale", "sampling_ratio", "aligned"),
            "array",
            _pooled,
        ),
        Operation("roi_pool", ("features", "rois", "output_size", "spatial_scale"), "array", _pooled),
        # features: a list of (C, H, W) maps, finest first
        Operation(
            "multiscale_roi_align",
            ("features", "rois", "output_size", "sampling_ratio", "image_size"),
            "array",
            _pooled,
        ),
        Operation(
            "backbone_receptive_field_support",
            ("name", "input_size", "cells"),
            "array",
            lambda _b, _n, cells: (len(cells), 2),
        ),
    )
}


class NotProvided(Exception):
    """The implementation does not provide an operation a property needs."""


class ImplementationFailure(PropertyFailure):
    """The implementation misbehaved while a property called it (raised, hung, bad result)."""


class ImplementationRaised(ImplementationFailure):
    """The implementation raised; ``error`` is the original exception."""

    def __init__(self, message: str, error: BaseException) -> None:
        super().__init__(message)
        self.error = error


class ImplementationHung(ImplementationFailure):
    """The implementation did not return within the time limit."""


class InvalidResult(ImplementationFailure):
    """The implementation returned something of the wrong shape or type, or NaN."""
