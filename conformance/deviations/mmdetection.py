"""Deviant models of mmdetection 3.3.0 (mmcv 2.1.0 kernels, torch 2.14.1, float32): what each
documented deviation in ``conformance/expectations/mmdetection.toml`` computes, written from the
source (paths relative to ``site-packages/``).

Each model replays mmdetection's arithmetic in NumPy float32, in the source's order, so that it
equals mmdetection's output on every input of the operation, not only where the deviation shows.
Where mmdetection raises, the model raises the same exception type.
"""

from __future__ import annotations

import numpy as np
from detspec.conformance.deviations import deviant_check, deviant_output
from detspec.conformance.deviations.torchvision import valid_greedy_nms
from detspec.properties.interface import Proposals

F32 = np.float32
#: ``batched_nms`` shifts boxes by class below this many boxes and loops over classes from it on
#: (``split_thr``, mmcv/ops/nms.py:300-302).
SPLIT_THRESHOLD = 10000
#: ``DeltaXYWHBBoxCoder``'s default ``wh_ratio_clip`` (delta_xywh_bbox_coder.py:272), which the
#: R50-FPN config's RPN coder keeps.
WH_RATIO_CLIP = 16 / 1000


def _boxes32(boxes) -> np.ndarray:
    return np.asarray(boxes, dtype=F32).reshape(-1, 4)


def bbox_overlaps_float32(boxes1, boxes2) -> np.ndarray:
    """``mmdet/structures/bbox/bbox_overlaps.py:151-191`` (mode "iou", not aligned): areas, the
    intersection clamped at 0, ``union = max(union, 1e-6)`` (``torch.max`` propagates NaN)."""
    a, b = _boxes32(boxes1), _boxes32(boxes2)
    with np.errstate(all="ignore"):
        area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
        area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        lt = np.maximum(a[:, None, :2], b[None, :, :2])
        rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
        wh = rb - lt
        wh = np.where(np.isnan(wh), wh, np.maximum(wh, F32(0)))  # Tensor.clamp(min=0) keeps NaN
        overlap = wh[..., 0] * wh[..., 1]
        union = np.maximum(area_a[:, None] + area_b[None, :] - overlap, F32(1e-6))
        return overlap / union


def _mmdet_iou(boxes1, boxes2):
    """``BboxOverlaps2D`` (models/task_modules/assigners/iou2d_calculator.py:43-62): 4 or 5
    columns (a fifth is a score and is dropped), then ``bbox_overlaps`` in float32; any other
    column count is an ``AssertionError`` (``None`` here: never an output)."""
    columns1, columns2 = np.shape(boxes1)[-1:], np.shape(boxes2)[-1:]
    if columns1 not in ((4,), (5,)) or columns2 not in ((4,), (5,)):
        return None
    a, b = np.asarray(boxes1)[:, :4], np.asarray(boxes2)[:, :4]
    return bbox_overlaps_float32(a, b).astype(np.float64)


@deviant_output("box_iou")
def iou_without_validation(boxes1, boxes2):
    """mmdetection's IoU validates nothing but the column count: a NaN coordinate gives NaN, an
    inverted box a negative area that the ``1e-6`` union floor turns into some number."""
    return _mmdet_iou(boxes1, boxes2)


@deviant_output("box_iou")
def iou_with_a_union_floor(boxes1, boxes2):
    """``union = max(union, eps)`` with ``eps = 1e-6`` (bbox_overlaps.py:189-191) guards 0 / 0 but
    also divides every pair whose union is below 1e-6 px² by 1e-6: two identical boxes of side
    2^-10 (area 2^-20) have IoU 2^-20 / 1e-6 = 0.954, not 1."""
    return _mmdet_iou(boxes1, boxes2)


def nms_cpu_float32(boxes, scores, iou_threshold) -> np.ndarray:
    """``mmcv/ops/csrc/pytorch/cpu/nms.cpp:5-53`` (offset 0): greedy NMS in descending score
    order (``scores.sort``; ties in index order here), float32 IoU with ``std::max``/``std::min``
    (``max(a, b)`` is ``a < b ? b : a``: a NaN operand decides nothing), suppression at
    ``ovr > iou_threshold`` with the threshold passed as a C++ ``float``. One kept box at a time
    against every later one, vectorised."""
    b = _boxes32(boxes)
    order = np.argsort(-np.asarray(scores, dtype=F32).reshape(-1), kind="stable")
    x1, y1, x2, y2 = (b[order, k] for k in range(4))
    threshold = F32(iou_threshold)
    selected = np.ones(len(order), dtype=bool)
    with np.errstate(all="ignore"):
        areas = (x2 - x1) * (y2 - y1)
        for position in range(len(order)):
            if not selected[position]:
                continue
            rest = position + 1 + np.flatnonzero(selected[position + 1 :])
            left = np.where(x1[position] < x1[rest], x1[rest], x1[position])
            top = np.where(y1[position] < y1[rest], y1[rest], y1[position])
            right = np.where(x2[rest] < x2[position], x2[rest], x2[position])
            bottom = np.where(y2[rest] < y2[position], y2[rest], y2[position])
            w, h = right - left, bottom - top
            inter = np.where(F32(0) < w, w, F32(0)) * np.where(F32(0) < h, h, F32(0))
            overlap = inter / (areas[position] + areas[rest] - inter)
            selected[rest[overlap > threshold]] = False
    return order[selected].astype(np.int64)


@deviant_output("nms")
def nms_without_validation(boxes, scores, iou_threshold):
    """``mmcv.ops.nms`` checks only the column count (mmcv/ops/nms.py:124) and runs its kernel on
    whatever it is given: a NaN coordinate makes every comparison false, so a NaN box suppresses
    nothing and is never suppressed; an inverted box gets a negative area."""
    if np.shape(boxes)[-1:] != (4,):
        return None
    return nms_cpu_float32(boxes, scores, iou_threshold)


def _empty_input_raises(boxes, **_) -> str | None:
    """``boxes.max()`` of no boxes (mmcv/ops/nms.py:291): ``RuntimeError``."""
    return "RuntimeError" if len(boxes) == 0 else None


@deviant_check(
    "batched_nms", applies=lambda boxes, **_: len(boxes) < SPLIT_THRESHOLD, raises=_empty_input_raises
)
def batched_nms_with_coordinate_offsets(output, boxes, scores, classes, iou_threshold):
    """``mmcv.ops.batched_nms`` (mmcv/ops/nms.py:290-304) below ``split_thr`` boxes: every box is
    shifted by ``class * (boxes.max() + 1)`` in float32 and one NMS runs over all of them; when
    the largest coordinate is near 0 or negative the shifts no longer separate the classes. The
    output must be that NMS (for some order of tied scores). No box at all: ``boxes.max()``
    raises (L291)."""
    b = _boxes32(boxes)
    offsets = np.asarray(classes).astype(F32) * (b.max() + F32(1))
    shifted = b + offsets[:, None]
    expected = nms_cpu_float32(shifted, scores, iou_threshold)
    if np.array_equal(output, expected):
        return None
    if len(np.unique(scores)) == len(scores):
        return f"kept {list(output)}; NMS over the class-shifted boxes keeps {list(expected)}"
    return valid_greedy_nms(output, shifted, np.asarray(scores, dtype=F32), F32(iou_threshold))


def mmdet_anchors(feature_sizes, strides, sizes, ratios) -> np.ndarray:
    """``AnchorGenerator`` as the adapter configures it (one generator per level; base size
    ``min(stride)``, scales ``size / base``): base anchors ``[-ws/2, -hs/2, ws/2, hs/2]`` around
    ``center_offset * base = 0`` with ``ws = base * w_ratio * scale``, ``w_ratio = 1 / sqrt(ratio)``
    (anchor_generator.py:236-272), shifted by ``(x * stride_x, y * stride_y)``, cells row-major
    (L276-339), all in float32."""
    levels = []
    for (height, width), stride, level_sizes, level_ratios in zip(
        feature_sizes, strides, sizes, ratios, strict=True
    ):
        stride_y, stride_x = (stride, stride) if np.ndim(stride) == 0 else stride
        base = min(float(stride_x), float(stride_y))
        scales = np.asarray([float(s) / base for s in level_sizes], dtype=F32)
        h_ratios = np.sqrt(np.asarray(level_ratios, dtype=F32))
        w_ratios = F32(1) / h_ratios
        ws = (F32(base) * w_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (F32(base) * h_ratios[:, None] * scales[None, :]).reshape(-1)
        cell = np.stack([-F32(0.5) * ws, -F32(0.5) * hs, F32(0.5) * ws, F32(0.5) * hs], axis=1)
        shift_x = np.arange(int(width)).astype(F32) * F32(stride_x)
        shift_y = np.arange(int(height)).astype(F32) * F32(stride_y)
        ys, xs = np.meshgrid(shift_y, shift_x, indexing="ij")
        shifts = np.stack([xs.ravel(), ys.ravel(), xs.ravel(), ys.ravel()], axis=1)
        levels.append((cell[None, :, :] + shifts[:, None, :]).reshape(-1, 4))
    return np.concatenate(levels).astype(np.float64) if levels else np.zeros((0, 4))


@deviant_output("grid_anchors")
def anchors_on_cell_corners(feature_sizes, strides, sizes, ratios):
    """``AnchorGenerator(center_offset=0)`` (the default, anchor_generator.py:78, kept by the
    R50-FPN config) centres the anchors of cell (x, y) on (x * S, y * S), its top-left corner."""
    return mmdet_anchors(feature_sizes, strides, sizes, ratios)


def _sigmoid32(logits) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (F32(1) / (F32(1) + np.exp(-np.asarray(logits, dtype=F32)))).astype(F32)


def _delta2bbox32(anchors, deltas, image_size) -> np.ndarray:
    """``delta2bbox`` (delta_xywh_bbox_coder.py:264-361): means 0, stds 1, ``dw, dh`` clamped to
    ``±|log(wh_ratio_clip)|``, corners clipped to ``[0, W] x [0, H]`` (``clip_border``)."""
    a, d = _boxes32(anchors), np.asarray(deltas, dtype=F32).reshape(-1, 4)
    limit = F32(abs(np.log(WH_RATIO_CLIP)))
    with np.errstate(all="ignore"):
        centre = (a[:, :2] + a[:, 2:]) * F32(0.5)
        size = a[:, 2:] - a[:, :2]
        moved = centre + size * d[:, :2]
        scaled = size * np.exp(np.clip(d[:, 2:], -limit, limit))
        boxes = np.concatenate([moved - scaled * F32(0.5), moved + scaled * F32(0.5)], axis=1)
    height, width = (float(v) for v in image_size)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], F32(0), F32(width))
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], F32(0), F32(height))
    return boxes


@deviant_output("generate_proposals")
def proposals_crash_on_a_single_anchor_level(
    anchors, logits, deltas, levels, image_size, pre_nms_top_n, post_nms_top_n, nms_threshold, min_size
):
    """``RPNHead._predict_by_feat_single`` (rpn_head.py:134-234): per level, sigmoid scores
    ``torch.squeeze``-d (L204), then ``scores.shape[0]`` (L205). A level with one anchor has
    ``(1, 1)`` scores, which ``squeeze`` makes 0-d: ``IndexError: tuple index out of range``.
    Otherwise: the level's top ``nms_pre`` by float32 sigmoid score, decoded and clipped, then
    ``_bbox_post_process`` (L236-302): ``w > min and h > min``, ``batched_nms`` by level,
    the first ``max_per_img``. Tied scores are taken in index order, which is what torch's CPU
    sort does up to 16 elements; beyond that its order among ties is its own."""
    level_of = np.asarray(levels, dtype=np.int64).reshape(-1)
    scores = _sigmoid32(logits).reshape(-1)
    chosen, level_ids = [], []
    for position, level in enumerate(np.unique(level_of)):
        members = np.flatnonzero(level_of == level)
        if len(members) == 1:
            raise IndexError("tuple index out of range")
        if 0 < int(pre_nms_top_n) < len(members):
            members = members[np.argsort(-scores[members], kind="stable")][: int(pre_nms_top_n)]
        chosen.append(members)
        level_ids += [position] * len(members)
    chosen = np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, np.int64)
    boxes = _delta2bbox32(np.asarray(anchors).reshape(-1, 4)[chosen], np.asarray(deltas)[chosen], image_size)
    kept_scores = scores[chosen]
    ids = np.asarray(level_ids, dtype=np.int64)
    sides = boxes[:, 2:] - boxes[:, :2]
    large = (sides[:, 0] > F32(min_size)) & (sides[:, 1] > F32(min_size))
    boxes, kept_scores, ids = boxes[large], kept_scores[large], ids[large]
    if not len(boxes):
        return Proposals(np.zeros((0, 4)), np.zeros(0))
    shifted = boxes + (ids.astype(F32) * (boxes.max() + F32(1)))[:, None]
    keep = nms_cpu_float32(shifted, kept_scores, nms_threshold)[: int(post_nms_top_n)]
    return Proposals(boxes[keep].astype(np.float64), kept_scores[keep].astype(np.float64))
