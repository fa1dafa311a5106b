"""RPN proposal generation: the executable form of ``spec/proposals.md`` (seed §3.3).

decode the regression at every anchor -> choose the top ``pre_nms_top_n`` by objectness -> clip to
the image -> drop boxes with a side below ``min_size`` -> NMS -> keep the top ``post_nms_top_n``.
Where implementations differ in that order, the spec names conventions:

* ``pipeline``: ``per-level`` (top-N and NMS within each FPN level; torchvision, detectron2,
  mmdetection) or ``global`` (one ranking and one NMS; py-faster-rcnn);
* ``min_size_stage``: ``after-top-n`` (torchvision) or ``before-top-n`` (py-faster-rcnn filters
  small boxes before ranking, so a small box never takes a top-N place).

Proposals are ``(K, 5)``: ``x1, y1, x2, y2, score`` with ``score = sigmoid(logit)``, sorted by
non-increasing score.
"""

from __future__ import annotations

import numpy as np
from detspec.reference.boxes import (
    DEFAULT_DECODE_CLAMP,
    batched_nms,
    clip_boxes_to_image,
    decode_boxes,
    nms,
)
from detspec.reference.boxes import remove_small_boxes as small_box_filter
from detspec.reference.validation import (
    COORDINATE_LIMIT,
    check_boxes,
    check_finite_array,
    check_image_size,
    check_integer,
    check_labels,
    check_real_array,
)

PIPELINES = ("per-level", "global")
MIN_SIZE_STAGES = ("after-top-n", "before-top-n")


def decode_and_clip(
    anchors, deltas, image_size, convention: str = "continuous", clamp_mode: str = "upper"
) -> np.ndarray:
    """Every anchor's proposal box before any selection (``proposals.provenance``): decoded with
    the declared clamp (``decode_clamp``; without one a huge ``dw`` overflows, and the clip then
    gives the image border), then clipped to the image. Legacy boxes narrower than one pixel
    decode to ``x2 < x1``; they become one pixel wide (``x2 = x1``), the narrowest box the
    convention has."""
    boxes = decode_boxes(
        anchors,
        deltas,
        clamp=DEFAULT_DECODE_CLAMP,
        clamp_mode=clamp_mode,
        convention=convention,
        allow_overflow=True,
    )
    boxes = np.clip(boxes, -COORDINATE_LIMIT, COORDINATE_LIMIT)  # an overflowed side: the border
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
    return clip_boxes_to_image(boxes, image_size, convention)


def _top(scores: np.ndarray, members: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` members with the highest scores (ties: lower index first)."""
    order = members[np.argsort(-scores[members], kind="stable")]
    return order[:count]


def generate_proposals(
    anchors,
    logits,
    deltas,
    levels,
    image_size,
    pre_nms_top_n: int,
    post_nms_top_n: int,
    nms_threshold: float,
    min_size: float,
    pipeline: str = "per-level",
    min_size_stage: str = "after-top-n",
    min_size_bound: str = "inclusive",
    convention: str = "continuous",
    clamp_mode: str = "upper",
) -> np.ndarray:
    """Proposals from anchors, objectness logits and regression deltas (clauses ``proposals.*``).

    ``levels`` gives each anchor's level (anchors grouped by level, as the RPN lays them out).
    Decoding clamps dw, dh at ``log(1000/16)`` as ``clamp_mode`` says (``decode_clamp``); logits must be
    finite or +-inf (NaN is rejected).
    """
    anchors = check_boxes(anchors, "anchors")
    logits = check_real_array(logits, "logits").astype(np.float64, copy=False)
    if logits.shape != (len(anchors),) or np.any(np.isnan(logits)):
        raise ValueError(f"logits: expected {len(anchors)} numbers without NaN, got shape {logits.shape}")
    deltas = check_finite_array(deltas, "deltas", ndim=2, last_dim=4)
    levels = check_labels(levels, "levels", len(anchors))
    image_size = check_image_size(image_size)
    pre_nms_top_n = check_integer(pre_nms_top_n, "pre_nms_top_n")
    post_nms_top_n = check_integer(post_nms_top_n, "post_nms_top_n")
    if pipeline not in PIPELINES or min_size_stage not in MIN_SIZE_STAGES:
        raise ValueError(f"unknown pipeline {pipeline!r} or min-size stage {min_size_stage!r}")
    scores = 1.0 / (1.0 + np.exp(-logits))
    boxes = decode_and_clip(anchors, deltas, image_size, convention, clamp_mode)
    candidates = np.arange(len(anchors))
    if min_size_stage == "before-top-n":
        candidates = small_box_filter(boxes, min_size, convention, min_size_bound)
    groups = (
        [candidates]
        if pipeline == "global"
        else [candidates[levels[candidates] == level] for level in np.unique(levels)]
    )
    chosen = np.concatenate([_top(logits, g, pre_nms_top_n) for g in groups] or [np.zeros(0, int)])
    chosen = chosen.astype(np.int64)
    clipped = boxes[chosen]
    if min_size_stage == "after-top-n":
        keep = small_box_filter(clipped, min_size, convention, min_size_bound)
        chosen, clipped = chosen[keep], clipped[keep]
    if pipeline == "global":
        keep = nms(clipped, scores[chosen], nms_threshold, convention)
    else:
        keep = batched_nms(clipped, scores[chosen], levels[chosen], nms_threshold, convention)
    keep = keep[:post_nms_top_n]
    return np.concatenate([clipped[keep], scores[chosen][keep][:, None]], axis=1).reshape(-1, 5)
