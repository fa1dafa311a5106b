"""Box primitives: the executable form of ``spec/boxes.md``.

Boxes are ``(N, 4)`` arrays of ``(x1, y1, x2, y2)`` in pixels. Two width conventions exist
(clause ``boxes.convention.width``):

* ``continuous`` -- ``w = x2 - x1`` (torchvision, detectron2, mmdetection 2+);
* ``legacy``     -- ``w = x2 - x1 + 1`` (py-faster-rcnn ``lib/utils/bbox.pyx``, Detectron1), i.e.
  coordinates index pixels and both end pixels belong to the box.

Everything here is float64 NumPy, vectorised, and checks its preconditions up front.
"""

from __future__ import annotations

import math

import numpy as np
from detspec.reference.validation import (
    check_boxes,
    check_convention,
    check_finite_array,
    check_image_size,
    check_labels,
    check_nonnegative,
    check_unit_interval,
    check_vector,
    check_weights,
)

#: ``log(1000 / 16)``: the largest unweighted dw/dh fed to ``exp`` when decoding (clause
#: ``boxes.decode.clamp-upper``); an anchor grows at most 62.5-fold. Source: Detectron's
#: ``BBOX_XFORM_CLIP``, torchvision ``BoxCoder(bbox_xform_clip=...)``.
DEFAULT_DECODE_CLAMP = math.log(1000.0 / 16.0)

DECODE_CLAMP_MODES = ("upper", "symmetric", "none")
MIN_SIZE_BOUNDS = ("inclusive", "strict")


def box_sizes(boxes: np.ndarray, convention: str = "continuous") -> tuple[np.ndarray, np.ndarray]:
    """Widths and heights of validated boxes under ``convention`` (``boxes.convention.width``)."""
    offset = check_convention(convention)
    return boxes[:, 2] - boxes[:, 0] + offset, boxes[:, 3] - boxes[:, 1] + offset


def box_area(boxes, convention: str = "continuous") -> np.ndarray:
    """``(N,)`` areas ``w * h`` (clause ``boxes.area.formula``); finite for every box within
    ``±COORDINATE_LIMIT`` (at most ``4e300``)."""
    boxes = check_boxes(boxes)
    widths, heights = box_sizes(boxes, convention)
    return widths * heights


#: Pairs per block of ``pairwise_iou``: its temporaries stay in the CPU cache (measured 1.8x
#: faster than whole-matrix temporaries at the paper's 100 x 20,646, ``make bench``).
IOU_BLOCK_PAIRS = 1 << 16
#: The smallest positive float64: ``max(union, TINY)`` is ``union`` for every positive union and
#: turns an empty one (whose intersection is 0 too) into a 0 / TINY = 0, without a mask.
TINY = float(np.finfo(np.float64).smallest_subnormal)


def pairwise_iou(boxes1: np.ndarray, boxes2: np.ndarray, offset: float) -> np.ndarray:
    """IoU of already validated boxes; 0 wherever the union is 0 (``boxes.iou.zero-union``).

    ``inter = max(0, min(x2, u2) - max(x1, u1) + o) * max(0, min(y2, v2) - max(y1, v1) + o)``,
    ``union = area1 + area2 - inter``, computed a block of ``boxes1`` rows at a time into the
    result, with two reused scratch arrays (the arithmetic, and so every bit, is the same as
    over the whole matrix at once).
    """
    n, m = len(boxes1), len(boxes2)
    iou = np.empty((n, m))
    if n == 0 or m == 0:
        return iou
    u1, v1, u2, v2 = (np.ascontiguousarray(boxes2[:, k]) for k in range(4))
    area1 = (boxes1[:, 2] - boxes1[:, 0] + offset) * (boxes1[:, 3] - boxes1[:, 1] + offset)
    area2 = (u2 - u1 + offset) * (v2 - v1 + offset)
    rows = max(1, min(n, IOU_BLOCK_PAIRS // m))
    scratch, height = np.empty((rows, m)), np.empty((rows, m))
    for start in range(0, n, rows):
        block = boxes1[start : start + rows]
        k = len(block)
        inter, other, side = iou[start : start + k], scratch[:k], height[:k]
        np.minimum(block[:, 2, None], u2, out=inter)
        inter -= np.maximum(block[:, 0, None], u1, out=other)
        inter += offset
        np.maximum(inter, 0.0, out=inter)
        np.minimum(block[:, 3, None], v2, out=side)
        side -= np.maximum(block[:, 1, None], v1, out=other)
        side += offset
        np.maximum(side, 0.0, out=side)
        inter *= side
        union = np.add(area1[start : start + k, None], area2, out=other)
        union -= inter
        np.maximum(union, TINY, out=union)
        np.divide(inter, union, out=inter)
    return iou


def box_iou(boxes1, boxes2, convention: str = "continuous") -> np.ndarray:
    """``(N, M)`` intersection over union (clauses ``boxes.iou.*``).

    ``iou[i, j] = |b1_i ∩ b2_j| / |b1_i ∪ b2_j|``; a pair whose union is empty (two zero-area
    boxes) has IoU 0, never NaN. Boxes that only touch have IoU 0 in the continuous convention.
    Coordinates up to ``±COORDINATE_LIMIT`` (``1e150``) keep every area and union finite;
    larger ones are rejected.
    """
    offset = check_convention(convention)
    return pairwise_iou(check_boxes(boxes1, "boxes1"), check_boxes(boxes2, "boxes2"), offset)


def clip_boxes_to_image(boxes, image_size, convention: str = "continuous") -> np.ndarray:
    """Clamp every coordinate into the image (clause ``boxes.clip.clamp``).

    ``image_size`` is ``(height, width)``. Continuous: x in [0, W], y in [0, H]. Legacy: x in
    [0, W - 1], y in [0, H - 1] (pixel indices; py-faster-rcnn ``clip_boxes``). A box wholly
    outside the image collapses onto the border (zero width or height).
    """
    boxes = check_boxes(boxes)
    height, width = check_image_size(image_size)
    offset = check_convention(convention)
    upper = np.array([width, height, width, height]) - offset
    return np.clip(boxes, 0.0, upper)


def remove_small_boxes(
    boxes, min_size, convention: str = "continuous", bound: str = "inclusive"
) -> np.ndarray:
    """Indices (increasing) of boxes with both sides at least ``min_size`` (``boxes.remove-small``).

    ``bound="inclusive"`` keeps a side equal to ``min_size`` (py-faster-rcnn, torchvision);
    ``"strict"`` requires it to exceed ``min_size`` (detectron2 ``nonempty``, mmdetection).
    """
    boxes = check_boxes(boxes)
    min_size = check_nonnegative(min_size, "min_size")
    if bound not in MIN_SIZE_BOUNDS:
        raise ValueError(f"unknown min-size bound {bound!r}; expected one of {MIN_SIZE_BOUNDS}")
    widths, heights = box_sizes(boxes, convention)
    if bound == "inclusive":
        keep = (widths >= min_size) & (heights >= min_size)
    else:
        keep = (widths > min_size) & (heights > min_size)
    return np.flatnonzero(keep).astype(np.int64)


def _centres_and_sizes(boxes: np.ndarray, offset: float) -> tuple[np.ndarray, ...]:
    widths = boxes[:, 2] - boxes[:, 0] + offset
    heights = boxes[:, 3] - boxes[:, 1] + offset
    return boxes[:, 0] + 0.5 * widths, boxes[:, 1] + 0.5 * heights, widths, heights


def encode_boxes(
    reference_boxes, target_boxes, weights=(1.0, 1.0, 1.0, 1.0), convention: str = "continuous"
) -> np.ndarray:
    """Regression deltas of ``target_boxes`` relative to ``reference_boxes`` (``boxes.encode``).

    With centres ``c = x1 + w/2`` (R-CNN, Girshick et al. 2014, appendix C)::

        dx = wx (gx - ax) / aw    dy = wy (gy - ay) / ah
        dw = ww log(gw / aw)      dh = wh log(gh / ah)

    Both sets need positive widths and heights (``log(0)`` has no finite value) and coordinates
    within ``±COORDINATE_LIMIT``; a pair whose deltas float64 cannot hold (a target ``1e300``
    widths away from a tiny reference box) is rejected, naming the row.
    """
    offset = check_convention(convention)
    anchors = check_boxes(reference_boxes, "reference_boxes")
    targets = check_boxes(target_boxes, "target_boxes")
    if anchors.shape != targets.shape:
        raise ValueError(
            f"reference_boxes and target_boxes must pair up, got {anchors.shape} and {targets.shape}"
        )
    wx, wy, ww, wh = check_weights(weights)
    ax, ay, aw, ah = _centres_and_sizes(anchors, offset)
    gx, gy, gw, gh = _centres_and_sizes(targets, offset)
    for name, sizes in (("reference_boxes", (aw, ah)), ("target_boxes", (gw, gh))):
        if np.any(sizes[0] <= 0) or np.any(sizes[1] <= 0):
            raise ValueError(f"{name}: every box needs a positive width and height to be encoded")
    with np.errstate(over="ignore", divide="ignore"):
        deltas = np.stack(
            [wx * (gx - ax) / aw, wy * (gy - ay) / ah, ww * np.log(gw / aw), wh * np.log(gh / ah)],
            axis=1,
        )
    _check_representable(deltas, "target_boxes", "its deltas from reference_boxes overflow float64")
    return deltas


def decode_boxes(
    reference_boxes,
    deltas,
    weights=(1.0, 1.0, 1.0, 1.0),
    clamp: float = DEFAULT_DECODE_CLAMP,
    clamp_mode: str = "upper",
    convention: str = "continuous",
    allow_overflow: bool = False,
) -> np.ndarray:
    """Apply ``deltas`` to ``reference_boxes``: the inverse of :func:`encode_boxes` (``boxes.decode``).

    The unweighted ``dw/ww`` and ``dh/wh`` are clamped to at most ``clamp`` before ``exp`` so that
    no box overflows (``boxes.decode.clamp-upper``); ``clamp_mode="symmetric"`` also clamps them
    to at least ``-clamp`` (mmdetection ``wh_ratio_clip``; ``boxes.decode.clamp-lower``);
    ``clamp_mode="none"`` clamps nothing (py-faster-rcnn's ``bbox_transform_inv``): a large
    ``dw`` then overflows to an infinite box, which ``allow_overflow`` lets through (for a caller
    that clips next, as proposal generation does) and which is otherwise rejected.
    Legacy boxes end at ``x2 = x1 + w - 1``, which makes decode the exact inverse of encode
    (py-faster-rcnn's ``bbox_transform_inv`` omits the ``- 1``). Reference boxes within
    ``±COORDINATE_LIMIT`` decode to finite boxes under the default clamp for every delta whose
    ``dx / wx`` is below ``1e150``; a row that overflows float64 anyway (a huge ``dx``, tiny
    weights, ``clamp > 709``) is rejected, naming it.
    """
    offset = check_convention(convention)
    anchors = check_boxes(reference_boxes, "reference_boxes")
    deltas = check_finite_array(deltas, "deltas", ndim=2, last_dim=4)
    if deltas.shape[0] != anchors.shape[0]:
        raise ValueError(
            f"deltas: expected one row per reference box ({anchors.shape[0]}), got {deltas.shape[0]}"
        )
    wx, wy, ww, wh = check_weights(weights)
    clamp = check_nonnegative(clamp, "clamp")
    if clamp_mode not in DECODE_CLAMP_MODES:
        raise ValueError(f"unknown clamp mode {clamp_mode!r}; expected one of {DECODE_CLAMP_MODES}")
    lower = -clamp if clamp_mode == "symmetric" else -np.inf
    upper = np.inf if clamp_mode == "none" else clamp
    ax, ay, aw, ah = _centres_and_sizes(anchors, offset)
    with np.errstate(over="ignore", invalid="ignore"):
        centre_x = deltas[:, 0] / wx * aw + ax
        centre_y = deltas[:, 1] / wy * ah + ay
        width = np.exp(np.clip(deltas[:, 2] / ww, lower, upper)) * aw
        height = np.exp(np.clip(deltas[:, 3] / wh, lower, upper)) * ah
        boxes = np.stack(
            [
                centre_x - 0.5 * width,
                centre_y - 0.5 * height,
                centre_x + 0.5 * width - offset,
                centre_y + 0.5 * height - offset,
            ],
            axis=1,
        )
    if not allow_overflow:
        _check_representable(boxes, "deltas", "the decoded box overflows float64")
    return boxes


def _check_representable(result: np.ndarray, name: str, problem: str) -> None:
    """Reject a result row that overflowed: the inputs were valid, but the answer is no float64."""
    overflowed = ~np.isfinite(result).all(axis=1)
    if overflowed.any():
        row = int(np.flatnonzero(overflowed)[0])
        raise ValueError(f"{name}: row {row}: {problem} ({result[row].tolist()})")


#: Candidates resolved together by :func:`nms` (a speed knob only; the result does not depend on it).
NMS_BLOCK = 64


#: NMS suppression bounds (convention ``nms_bound``): ``strict`` suppresses at IoU > t (the paper's
#: reading, py_cpu_nms.py, torchvision, mmcv, ONNX Runtime), ``inclusive`` at IoU >= t
#: (py-faster-rcnn's cpu_nms.pyx, TensorFlow, OpenVINO's NMS).
NMS_BOUNDS = ("strict", "inclusive")


def _suppresses(iou: np.ndarray, threshold: float, bound: str) -> np.ndarray:
    return iou >= threshold if bound == "inclusive" else iou > threshold


def nms(boxes, scores, iou_threshold, convention: str = "continuous", bound: str = "strict") -> np.ndarray:
    """Greedy non-maximum suppression (clauses ``boxes.nms.*``).

    Visit boxes by decreasing score (ties: lower index first -- any tie order is a valid answer);
    keep a box unless its IoU with an already kept box is **strictly greater** than
    ``iou_threshold`` (``bound="inclusive"``: greater or equal; a zero-union pair has IoU 0, so
    at ``t = 0`` inclusive NMS keeps one box). Returns the kept indices in the order visited,
    i.e. sorted by non-increasing score. Source: py-faster-rcnn ``lib/nms/py_cpu_nms.py``
    (strict) and ``lib/nms/cpu_nms.pyx`` (inclusive).

    Vectorised in blocks of :data:`NMS_BLOCK` candidates in score order: the greedy pass runs
    inside a block on its small IoU matrix, then the block's kept boxes suppress every later
    candidate at once. Equivalent to one candidate at a time, with far fewer NumPy calls.
    """
    offset = check_convention(convention)
    boxes = check_boxes(boxes)
    scores = check_vector(scores, "scores", len(boxes))
    threshold = check_unit_interval(iou_threshold, "iou_threshold")
    if bound not in NMS_BOUNDS:
        raise ValueError(f"unknown NMS bound {bound!r}; expected one of {NMS_BOUNDS}")
    order = np.argsort(-scores, kind="stable")
    ranked = boxes[order]
    alive = np.ones(len(order), dtype=bool)
    keep: list[np.ndarray] = []
    for start in range(0, len(order), NMS_BLOCK):
        stop = start + NMS_BLOCK
        block = np.flatnonzero(alive[start:stop]) + start
        overlaps = _suppresses(pairwise_iou(ranked[block], ranked[block], offset), threshold, bound)
        suppressed = np.zeros(len(block), dtype=bool)
        kept_in_block = []
        for j in range(len(block)):
            if not suppressed[j]:
                kept_in_block.append(j)
                suppressed[j + 1 :] |= overlaps[j, j + 1 :]
        kept = block[kept_in_block]
        keep.append(order[kept])
        later = np.flatnonzero(alive[stop:]) + stop
        if later.size and kept.size:
            hit = _suppresses(pairwise_iou(ranked[kept], ranked[later], offset), threshold, bound).any(axis=0)
            alive[later[hit]] = False
    return np.concatenate(keep).astype(np.int64) if keep else np.zeros(0, dtype=np.int64)


def batched_nms(
    boxes, scores, classes, iou_threshold, convention: str = "continuous", bound: str = "strict"
) -> np.ndarray:
    """Class-aware NMS: :func:`nms` within each class, never across (``boxes.batched-nms``).

    Returns the union of the per-class results sorted by non-increasing score.
    """
    boxes = check_boxes(boxes)
    scores = check_vector(scores, "scores", len(boxes))
    classes = check_labels(classes, "classes", len(boxes))
    check_unit_interval(iou_threshold, "iou_threshold")
    keep = [
        members[nms(boxes[members], scores[members], iou_threshold, convention, bound)]
        for members in (np.flatnonzero(classes == c) for c in np.unique(classes))
    ]
    kept = np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)
    return kept[np.argsort(-scores[kept], kind="stable")].astype(np.int64)
