"""Deviant models of torchvision 0.29.1 (torch 2.14.1, float32): what each documented deviation
in ``conformance/expectations/torchvision.toml`` computes, written from torchvision's source.

Each model reproduces torchvision's arithmetic in NumPy float32 (the operations the source
performs, in its order), so that it equals torchvision's output on every input, not only where
the deviation shows; a different bug in the same property therefore disagrees with the model.
"""

from __future__ import annotations

import itertools

import numpy as np
from detspec.conformance.deviations import deviant_check, deviant_output
from detspec.properties.interface import LossTerms, MatchResult
from detspec.properties.strategies.roi import float32_bin_edges
from detspec.reference import roi_pooling as ref_pool
from detspec.reference import roi_targets as ref_roi
from detspec.reference import rpn_targets as ref_rpn

F32 = np.float32


def _boxes32(boxes) -> np.ndarray:
    return np.asarray(boxes, dtype=F32).reshape(-1, 4)


def iou_float32(boxes1, boxes2) -> np.ndarray:
    """``ops/boxes.py``: ``_box_inter_union`` and ``box_iou`` in float32, with no guard."""
    a, b = _boxes32(boxes1), _boxes32(boxes2)
    with np.errstate(all="ignore"):
        area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
        area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        lt = np.maximum(a[:, None, :2], b[None, :, :2])
        rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
        wh = np.maximum(rb - lt, F32(0))  # clamp(min=0): NaN stays NaN
        inter = wh[..., 0] * wh[..., 1]
        union = area_a[:, None] + area_b[None, :] - inter
        return inter / union


@deviant_output("box_iou")
def iou_without_a_zero_guard(boxes1, boxes2):
    """``box_iou`` divides the intersection by the union with no guard and no validation: two
    zero-area boxes give 0/0 = NaN, a NaN coordinate gives NaN, an inverted box a negative area."""
    if np.shape(boxes1)[-1:] != (4,) or np.shape(boxes2)[-1:] != (4,):
        return None  # torchvision raises on a wrong column count: never the deviant output
    return iou_float32(boxes1, boxes2).astype(np.float64)


def _cmax(a, b):
    """``std::max(a, b)``: ``(a < b) ? b : a`` (with NaN: ``a``)."""
    return b if a < b else a


def _cmin(a, b):
    """``std::min(a, b)``: ``(b < a) ? b : a`` (with NaN: ``a``)."""
    return b if b < a else a


def greedy_nms_float32(boxes, scores, iou_threshold) -> np.ndarray:
    """``csrc/ops/cpu/nms_kernel.cpp``: greedy NMS over the boxes in descending score order (ties
    in index order here), IoU in float32 with ``std::max``/``std::min``, suppression at
    ``ovr > iou_threshold`` (the float IoU compared with the double threshold)."""
    b = np.asarray(boxes, dtype=F32).reshape(-1, 4)
    s = np.asarray(scores, dtype=F32)
    with np.errstate(all="ignore"):
        areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        order = np.argsort(-s, kind="stable")
        suppressed = np.zeros(len(b), dtype=bool)
        keep = []
        for position, i in enumerate(order):
            if suppressed[i]:
                continue
            keep.append(int(i))
            for j in order[position + 1 :]:
                if suppressed[j]:
                    continue
                w = _cmax(F32(0), _cmin(b[i, 2], b[j, 2]) - _cmax(b[i, 0], b[j, 0]))
                h = _cmax(F32(0), _cmin(b[i, 3], b[j, 3]) - _cmax(b[i, 1], b[j, 1]))
                inter = F32(w * h)
                overlap = F32(inter / F32(areas[i] + areas[j] - inter))
                if float(overlap) > iou_threshold:
                    suppressed[j] = True
    return np.asarray(keep, dtype=np.int64)


@deviant_output("nms")
def nms_without_validation(boxes, scores, iou_threshold):
    """``nms`` runs its kernel on whatever it is given: a NaN coordinate makes every comparison
    false, so a NaN box suppresses nothing and is never suppressed."""
    if np.shape(boxes)[-1:] != (4,):
        return None
    return greedy_nms_float32(boxes, scores, iou_threshold)


#: ``batched_nms`` shifts boxes by class on the CPU up to this many coordinates (``numel``),
#: on other devices up to the second (torchvision 0.29 ``ops/boxes.py:84``).
COORDINATE_TRICK_LIMIT = 4000
CUDA_COORDINATE_TRICK_LIMIT = 100_000


@deviant_check("batched_nms", applies=lambda boxes, **_: np.size(boxes) <= COORDINATE_TRICK_LIMIT)
def batched_nms_with_coordinate_offsets(output, boxes, scores, classes, iou_threshold):
    """``_batched_nms_coordinate_trick`` (CPU, at most 4000 coordinates): every box is shifted by
    ``class * (max coordinate + 1)`` in float32 and one NMS runs over all of them; when the
    largest coordinate is near 0 or negative the shifts no longer separate the classes. The
    output must be that NMS (for some order of tied scores)."""
    b = np.asarray(boxes, dtype=F32).reshape(-1, 4)
    if not len(b):
        return None if len(output) == 0 else "boxes given none, indices returned"
    offsets = np.asarray(classes).astype(F32) * (b.max() + F32(1))
    shifted = b + offsets[:, None]
    expected = greedy_nms_float32(shifted, scores, iou_threshold)
    if np.array_equal(output, expected):
        return None
    if len(np.unique(scores)) == len(scores):
        return f"kept {list(output)}; NMS over the class-shifted boxes keeps {list(expected)}"
    return valid_greedy_nms(output, shifted, np.asarray(scores), iou_threshold)


@deviant_check("batched_nms", applies=lambda boxes, **_: np.size(boxes) <= CUDA_COORDINATE_TRICK_LIMIT)
def batched_nms_with_coordinate_offsets_on_cuda(output, boxes, scores, classes, iou_threshold):
    """:func:`batched_nms_with_coordinate_offsets` on a GPU, where torchvision keeps the
    coordinate trick up to 100,000 coordinates (25,000 boxes)."""
    return batched_nms_with_coordinate_offsets.model(output, boxes, scores, classes, iou_threshold)


def valid_greedy_nms(keep, boxes32, scores, iou_threshold) -> str | None:
    """With tied scores: the kept boxes are sorted, mutually below the threshold, and every other
    box overlaps a kept box of higher-or-equal score above it (float32 IoU)."""
    keep = [int(k) for k in keep]
    if any(scores[a] < scores[b] for a, b in itertools.pairwise(keep)):
        return "kept boxes not sorted by score"
    iou = iou_float32(boxes32, boxes32)
    for position, i in enumerate(keep):
        for j in keep[position + 1 :]:
            if iou[i, j] > iou_threshold:
                return f"kept boxes {i} and {j} overlap above the threshold after the shift"
    for j in set(range(len(scores))) - set(keep):
        if not any(scores[i] >= scores[j] and iou[i, j] > iou_threshold for i in keep):
            return f"box {j} was dropped although no kept box overlaps it after the shift"
    return None


def torchvision_anchors(feature_sizes, strides, sizes, ratios) -> np.ndarray:
    """``AnchorGenerator.generate_anchors`` and ``grid_anchors`` in float32: cell anchors
    ``round([-ws, -hs, ws, hs] / 2)`` centred on 0 (half to even), shifted by
    ``(x * stride_x, y * stride_y)``: the anchors of cell (x, y) are centred on its top-left corner."""
    levels = []
    for (height, width), (stride_y, stride_x), level_sizes, level_ratios in zip(
        feature_sizes, strides, sizes, ratios, strict=True
    ):
        scales = np.asarray(level_sizes, dtype=F32)
        h_ratios = np.sqrt(np.asarray(level_ratios, dtype=F32))
        w_ratios = F32(1) / h_ratios
        ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
        base = np.round(np.stack([-ws, -hs, ws, hs], axis=1) / F32(2))
        shift_x = (np.arange(int(width)) * int(stride_x)).astype(F32)
        shift_y = (np.arange(int(height)) * int(stride_y)).astype(F32)
        ys, xs = np.meshgrid(shift_y, shift_x, indexing="ij")
        shifts = np.stack([xs.ravel(), ys.ravel(), xs.ravel(), ys.ravel()], axis=1)
        levels.append((shifts[:, None, :] + base[None, :, :]).reshape(-1, 4))
    return np.concatenate(levels).astype(np.float64) if levels else np.zeros((0, 4))


@deviant_output("grid_anchors")
def anchors_on_cell_corners(feature_sizes, strides, sizes, ratios):
    """``AnchorGenerator`` centres the anchors of cell (x, y) on (x * S, y * S), its top-left
    corner, and has no offset parameter (its declared ``anchor_offset = corner``)."""
    return torchvision_anchors(feature_sizes, strides, sizes, ratios)


@deviant_output("match_anchors")
def matcher_marks_ties_at_zero_iou(anchors, gt_boxes, image_size, high, low):
    """``Matcher(high, low, allow_low_quality_matches=True)``: labels by the thresholds, then
    ``set_low_quality_matches_`` makes positive every anchor whose IoU equals a GT's best IoU,
    ties included -- also when that best IoU is 0, which is every anchor. Each keeps its own
    best GT (argmax, first on ties)."""
    count = len(anchors)
    if len(gt_boxes) == 0:
        return MatchResult(np.zeros(count, np.int64), -np.ones(count, np.int64))
    quality = iou_float32(gt_boxes, anchors)  # (G, N), as torchvision's box_similarity(gt, anchors)
    best = quality.max(axis=0)
    matches = quality.argmax(axis=0).astype(np.int64)
    all_matches = matches.copy()
    matches[best < F32(low)] = -1
    matches[(best >= F32(low)) & (best < F32(high))] = -2
    highest = quality.max(axis=1)
    promoted = np.flatnonzero((quality == highest[:, None]).any(axis=0))
    matches[promoted] = all_matches[promoted]
    labels = np.where(matches >= 0, 1, np.where(matches == -1, 0, -1)).astype(np.int64)
    return MatchResult(labels, np.where(labels == 1, matches, -1).astype(np.int64))


@deviant_output("rpn_loss")
def rpn_loss_averages_an_empty_sample(logits, deltas, sampled, targets, anchor_locations):
    """``compute_loss`` takes the mean BCE over the sampled anchors and divides the box loss by
    their number: with none sampled both are 0/0 = NaN; otherwise the spec's loss (β = 1/9,
    normalised by the number sampled)."""
    if np.all(np.asarray(sampled) < 0):
        return LossTerms(float("nan"), float("nan"))
    return LossTerms(*ref_rpn.rpn_loss(logits, deltas, sampled, targets, 1 / 9, "sampled", anchor_locations))


@deviant_output("fast_rcnn_loss")
def head_loss_averages_no_roi(class_logits, box_regression, labels, targets):
    """``fastrcnn_loss`` takes ``F.cross_entropy``'s mean over the RoIs and divides the box loss by
    ``labels.numel()``: with no RoI both are 0/0 = NaN; otherwise the spec's loss."""
    if len(labels) == 0:
        return LossTerms(float("nan"), float("nan"))
    return LossTerms(*ref_roi.fast_rcnn_loss(class_logits, box_regression, labels, targets, 1 / 9, "zero"))


@deviant_output("roi_pool")
def roi_pool_with_float32_bin_edges(features, rois, output_size, spatial_scale):
    """``roi_pool_kernel.cpp``: bin size ``fl(L / n)`` in float32 and bin end
    ``ceil((p + 1) * bin_size)``; for some extents the product lands just above an integer and
    the bin reads one cell past the RoI."""
    size = (int(output_size[0]), int(output_size[1]))
    return ref_pool.roi_pool(features, rois, size, spatial_scale, bin_edges=float32_bin_edges)


def encode_float32(proposals, matched_gt_boxes, weights) -> np.ndarray:
    """``BoxCoder.encode_single(matched GT, proposals)`` in float32."""
    p, g = np.asarray(proposals, F32).reshape(-1, 4), np.asarray(matched_gt_boxes, F32).reshape(-1, 4)
    wx, wy, ww, wh = (F32(w) for w in weights)
    with np.errstate(all="ignore"):
        ex_w, ex_h = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
        ex_x, ex_y = p[:, 0] + F32(0.5) * ex_w, p[:, 1] + F32(0.5) * ex_h
        gt_w, gt_h = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
        gt_x, gt_y = g[:, 0] + F32(0.5) * gt_w, g[:, 1] + F32(0.5) * gt_h
        return np.stack(
            [
                wx * (gt_x - ex_x) / ex_w,
                wy * (gt_y - ex_y) / ex_h,
                ww * np.log(gt_w / ex_w),
                wh * np.log(gt_h / ex_h),
            ],
            axis=1,
        )


@deviant_check("sample_rois")
def every_roi_encoded_against_its_clamped_match(output, gt_boxes, weights, **_):
    """``select_training_samples`` encodes every sampled RoI, background included, against
    ``gt_boxes[matched.clamp(min=0)]`` -- GT 0 for a background RoI, and a zero box in an image
    without GT boxes (log 0 = -inf); a flat RoI divides by 0. The targets must be exactly that."""
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    if not len(gt):
        gt = np.zeros((1, 4))
    matched = np.clip(np.asarray(output.matched_gt), 0, None)
    expected = encode_float32(output.boxes, gt[matched], weights).astype(np.float64)
    got = np.asarray(output.targets, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        same = (
            (got == expected)
            | (np.isnan(got) & np.isnan(expected))
            | (np.abs(got - expected) <= 1e-5 * (1 + np.abs(expected)))
        )
    if not same.all():
        row, column = (int(v) for v in np.argwhere(~same)[0])
        return (
            f"target [{row}, {column}] is {got[row, column]!r}, the clamped-match encoding gives "
            f"{expected[row, column]!r}"
        )
    return None
