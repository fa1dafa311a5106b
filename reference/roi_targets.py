"""RoI-head training targets and loss: the executable form of ``spec/roi_head.md``.

Sources: Fast R-CNN §2.3 (mini-batch sampling) and §2.3 eq. (1) (multi-task loss); py-faster-rcnn
``lib/rpn/proposal_target_layer.py``; torchvision ``models/detection/roi_heads.py``
(``select_training_samples``, ``fastrcnn_loss``).
"""

from __future__ import annotations

import math

import numpy as np
from detspec.reference.boxes import encode_boxes, pairwise_iou
from detspec.reference.rpn_targets import smooth_l1, smooth_l1_slope
from detspec.reference.validation import (
    check_boxes,
    check_convention,
    check_finite_array,
    check_integer,
    check_labels,
    check_nonnegative,
    check_unit_interval,
    check_weights,
)

GT_CANDIDATES = ("added", "not-added")
NO_GT_RULES = ("thresholds", "all-background")
FILL_POLICIES = ("shorter", "repeat-negatives")
BACKGROUND_LABELS = ("zero", "num-classes")

#: Columns of a sampled RoI row: the box, its class label, the matched GT (-1 for background)
#: and the four regression targets.
ROI_COLUMNS = ("x1", "y1", "x2", "y2", "label", "matched_gt", "tx", "ty", "tw", "th")
DEFAULT_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def background_class(num_classes: int, background_label: str) -> int:
    """The background's class index: 0 (classes 1..C) or C (classes 0..C-1)."""
    if background_label not in BACKGROUND_LABELS:
        raise ValueError(
            f"unknown background label {background_label!r}; expected one of {BACKGROUND_LABELS}"
        )
    return 0 if background_label == "zero" else int(num_classes)


def object_classes(num_classes: int, background_label: str) -> range:
    """The valid GT class labels under a background-label convention."""
    return range(1, num_classes + 1) if background_label == "zero" else range(0, num_classes)


def check_thresholds(fg_threshold: float, bg_high: float, bg_low: float) -> tuple[float, float, float]:
    """``0 <= bg_low <= bg_high <= fg_threshold <= 1`` and ``fg_threshold > 0`` (clause
    ``roi.sample.labels``)."""
    fg = check_unit_interval(fg_threshold, "fg_threshold")
    high = check_unit_interval(bg_high, "bg_high")
    low = check_unit_interval(bg_low, "bg_low")
    if fg == 0:
        raise ValueError("fg_threshold: must be > 0 (IoU 0 would make every RoI foreground)")
    if not low <= high <= fg:
        raise ValueError(f"thresholds: expected bg_low <= bg_high <= fg_threshold, got {low}, {high}, {fg}")
    return fg, high, low


def roi_candidates(proposals, gt_boxes, gt_candidates: str = "added") -> np.ndarray:
    """The candidate set: the proposals, then the GT boxes if the convention adds them
    (``roi.sample.candidates``)."""
    if gt_candidates not in GT_CANDIDATES:
        raise ValueError(
            f"unknown GT-candidate convention {gt_candidates!r}; expected one of {GT_CANDIDATES}"
        )
    proposals = check_boxes(proposals, "proposals")
    gt_boxes = check_boxes(gt_boxes, "gt_boxes")
    return np.concatenate([proposals, gt_boxes]) if gt_candidates == "added" else proposals


def label_candidates(candidates, gt_boxes, fg_threshold, bg_high, bg_low, convention="continuous"):
    """``(kind, matched)`` per candidate: kind 1 foreground, 0 background, -1 unused; matched is a
    GT of largest IoU (foreground only, else -1). Without GT boxes every IoU is 0."""
    fg, high, low = check_thresholds(fg_threshold, bg_high, bg_low)
    if len(gt_boxes) == 0:
        best = np.zeros(len(candidates))
        matched = np.full(len(candidates), -1)
    else:
        iou = pairwise_iou(candidates, gt_boxes, check_convention(convention))
        matched = iou.argmax(axis=1)
        best = iou[np.arange(len(candidates)), matched]
    foreground = (best >= fg) & (len(gt_boxes) > 0)
    background = (best >= low) & (best < high) & ~foreground
    kind = np.where(foreground, 1, np.where(background, 0, -1))
    return kind, np.where(foreground, matched, -1)


def _draw_background(rng, members: np.ndarray, wanted: int, fill: str) -> np.ndarray:
    """``wanted`` background indices: without replacement while there are enough; with
    ``repeat-negatives`` a scarce set is repeated as evenly as possible (each member
    ``floor(wanted / n)`` or ``ceil(wanted / n)`` times)."""
    if len(members) >= wanted or fill == "shorter" or len(members) == 0:
        return rng.choice(members, min(wanted, len(members)), replace=False)
    copies, rest = divmod(wanted, len(members))
    return np.concatenate([np.tile(members, copies), rng.choice(members, rest, replace=False)])


def sample_rois(
    proposals,
    gt_boxes,
    gt_labels,
    num_classes: int,
    batch_size: int = 128,
    positive_fraction: float = 0.25,
    fg_threshold: float = 0.5,
    bg_high: float = 0.5,
    bg_low: float = 0.0,
    weights=DEFAULT_WEIGHTS,
    seed: int = 0,
    gt_candidates: str = "added",
    fill: str = "shorter",
    background_label: str = "zero",
    convention: str = "continuous",
    no_gt: str = "thresholds",
) -> np.ndarray:
    """The RoIs one image contributes to the head's mini-batch (clauses ``roi.sample.*``,
    ``roi.targets.*``); ``(R, 10)`` rows as :data:`ROI_COLUMNS`, foreground first.

    An image without GT boxes: every candidate has IoU 0, so it is background iff
    ``bg_low = 0 < bg_high`` (``no_gt="thresholds"``, the rule applied as written); or every
    proposal is background whatever the thresholds (``"all-background"``: torchvision,
    detectron2, mmdetection assign before consulting them).

    ``min(#fg, floor(B f))`` foreground RoIs, drawn uniformly without replacement by
    ``numpy.random.default_rng(seed)``; then background RoIs up to ``B`` in total, fewer if they
    are scarce (``fill="shorter"``) or repeated to fill the batch (``"repeat-negatives"``, the
    seed's reading). Foreground label: the matched GT's class; background: 0 or ``num_classes``.
    Targets: ``encode(RoI, matched GT, weights)`` for foreground RoIs, 0 for background.
    """
    if fill not in FILL_POLICIES:
        raise ValueError(f"unknown fill policy {fill!r}; expected one of {FILL_POLICIES}")
    if no_gt not in NO_GT_RULES:
        raise ValueError(f"unknown no-GT rule {no_gt!r}; expected one of {NO_GT_RULES}")
    batch_size = check_integer(batch_size, "batch_size")
    num_classes = check_integer(num_classes, "num_classes", minimum=1)
    seed = check_integer(seed, "seed")
    fraction = check_unit_interval(positive_fraction, "positive_fraction")
    weights = check_weights(weights)
    background = background_class(num_classes, background_label)
    gt_boxes = check_boxes(gt_boxes, "gt_boxes")
    gt_labels = check_labels(gt_labels, "gt_labels", len(gt_boxes))
    allowed = object_classes(num_classes, background_label)
    if np.any((gt_labels < allowed.start) | (gt_labels >= allowed.stop)):
        raise ValueError(
            f"gt_labels: expected object classes in [{allowed.start}, {allowed.stop - 1}] "
            f"(background is {background}), got {gt_labels.tolist()}"
        )
    candidates = roi_candidates(proposals, gt_boxes, gt_candidates)
    kind, matched = label_candidates(candidates, gt_boxes, fg_threshold, bg_high, bg_low, convention)
    if no_gt == "all-background" and len(gt_boxes) == 0:
        kind = np.zeros(len(candidates), dtype=kind.dtype)
    rng = np.random.default_rng(seed)
    foreground = np.flatnonzero(kind == 1)
    chosen_fg = rng.choice(foreground, min(len(foreground), math.floor(batch_size * fraction)), replace=False)
    chosen_bg = _draw_background(rng, np.flatnonzero(kind == 0), batch_size - len(chosen_fg), fill)
    rows = np.zeros((len(chosen_fg) + len(chosen_bg), len(ROI_COLUMNS)))
    rows[:, :4] = candidates[np.concatenate([chosen_fg, chosen_bg]).astype(np.int64)]
    rows[:, 4] = background
    rows[:, 5] = -1
    if len(chosen_fg):
        rois = rows[: len(chosen_fg), :4]
        gts = matched[chosen_fg]
        rows[: len(chosen_fg), 4] = gt_labels[gts]
        rows[: len(chosen_fg), 5] = gts
        rows[: len(chosen_fg), 6:] = encode_boxes(rois, gt_boxes[gts], weights, convention)
    return rows


# --- the Fast R-CNN loss ----------------------------------------------------------------------


def _check_loss_inputs(class_logits, box_regression, labels, targets, beta, background_label):
    logits = check_finite_array(class_logits, "class_logits", ndim=2)
    count, classes = logits.shape
    if classes == 0:
        raise ValueError("class_logits: expected at least one class (column), got shape (R, 0)")
    boxes = check_finite_array(box_regression, "box_regression", ndim=2)
    if boxes.shape != (count, 4 * classes):
        raise ValueError(f"box_regression: expected shape ({count}, {4 * classes}), got {boxes.shape}")
    labels = check_labels(labels, "labels", count)
    if np.any((labels < 0) | (labels >= classes)):
        raise ValueError(f"labels: expected class indices in [0, {classes - 1}], got {labels.tolist()}")
    targets = check_finite_array(targets, "targets", ndim=2, last_dim=4)
    if len(targets) != count:
        raise ValueError(f"targets: expected {count} rows (one per RoI), got {len(targets)}")
    foreground = labels != background_class(classes - 1, background_label)
    beta = check_nonnegative(beta, "beta")
    return logits, boxes.reshape(count, classes, 4), labels, targets, beta, foreground


def fast_rcnn_loss(
    class_logits, box_regression, labels, targets, beta: float = 1 / 9, background_label: str = "zero"
) -> np.ndarray:
    """``(2,)``: ``[classification, regression]`` of the head (clauses ``roi.loss.*``).

    Classification: softmax cross-entropy averaged over all R sampled RoIs, background included.
    Regression: ``Σ_fg Σ_coords smoothL1_β(box_regression[i, class(i)] − target[i]) / R`` —
    only foreground RoIs, only the four columns of their GT class, normalised by R (not by the
    number of foreground RoIs). No RoI: ``[0, 0]``. ``beta`` is finite and ``>= 0``.
    """
    logits, boxes, labels, targets, beta, foreground = _check_loss_inputs(
        class_logits, box_regression, labels, targets, beta, background_label
    )
    count = len(labels)
    if count == 0:
        return np.zeros(2)
    log_normaliser = np.logaddexp.reduce(logits, axis=1)
    classification = np.mean(log_normaliser - logits[np.arange(count), labels])
    chosen = boxes[np.flatnonzero(foreground), labels[foreground]]
    regression = smooth_l1(chosen - targets[foreground], beta).sum() / count
    return np.array([classification, regression])


def fast_rcnn_loss_gradient(
    class_logits, box_regression, labels, targets, beta: float = 1 / 9, background_label: str = "zero"
) -> np.ndarray:
    """``(R, K + 4K)``: d(total loss)/d(class_logits) then d/d(box_regression), analytically
    (``roi.loss.gradient``): ``(softmax − onehot) / R`` for every RoI, and the smooth-L1 slope
    ``/ R`` in the four GT-class columns of foreground RoIs — exactly 0 everywhere else. No RoI:
    a ``(0, 5K)`` array."""
    logits, boxes, labels, targets, beta, foreground = _check_loss_inputs(
        class_logits, box_regression, labels, targets, beta, background_label
    )
    count, classes = logits.shape
    gradient_logits = np.exp(logits - np.logaddexp.reduce(logits, axis=1, keepdims=True))
    gradient_logits[np.arange(count), labels] -= 1.0
    gradient_boxes = np.zeros_like(boxes)
    rows = np.flatnonzero(foreground)
    gradient_boxes[rows, labels[rows]] = smooth_l1_slope(boxes[rows, labels[rows]] - targets[rows], beta)
    gradient_boxes = gradient_boxes.reshape(count, 4 * classes)
    return np.concatenate([gradient_logits, gradient_boxes], axis=1) / max(count, 1)
