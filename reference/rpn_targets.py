"""RPN training targets: the executable form of ``spec/rpn_training.md``.

Labels are 1 (object), 0 (background) and -1 (ignored). Sources: Faster R-CNN §3.1.2-3.1.3;
py-faster-rcnn ``lib/rpn/anchor_target_layer.py``; torchvision ``models/detection/rpn.py``.
"""

from __future__ import annotations

import math

import numpy as np
from detspec.reference.boxes import encode_boxes, pairwise_iou
from detspec.reference.validation import (
    check_boxes,
    check_convention,
    check_finite_array,
    check_image_size,
    check_integer,
    check_labels,
    check_nonnegative,
    check_ternary_labels,
    check_unit_interval,
    check_vector,
)

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1
BORDER_POLICIES = ("keep", "ignore")
LOSS_NORMALISERS = ("sampled", "sampled-clamped", "paper")
LOW_QUALITY_MATCHES = ("own-best", "last-gt")


def inside_image(anchors: np.ndarray, image_size, convention: str = "continuous") -> np.ndarray:
    """Anchors wholly inside the image (py-faster-rcnn ``allowed_border = 0``): x1, y1 >= 0 and
    x2 <= W, y2 <= H (legacy, pixel indices: x2 <= W - 1, y2 <= H - 1)."""
    height, width = check_image_size(image_size)
    offset = check_convention(convention)
    return (
        (anchors[:, 0] >= 0)
        & (anchors[:, 1] >= 0)
        & (anchors[:, 2] <= width - offset)
        & (anchors[:, 3] <= height - offset)
    )


def match_anchors(
    anchors,
    gt_boxes,
    image_size,
    high: float = 0.7,
    low: float = 0.3,
    border: str = "keep",
    convention: str = "continuous",
    floor: float = 0.0,
    low_quality_match: str = "own-best",
) -> np.ndarray:
    """Label anchors for RPN training (clauses ``rpn.match.*``); ``(N, 2)``: label, matched GT.

    For each anchor, ``m`` = its largest IoU with any GT box and ``g`` a GT attaining it:

    1. ``m >= high`` -> positive, matched to ``g``;
    2. for every GT whose largest IoU with any anchor is ``b > 0`` and ``b >= floor`` (the
       convention ``rpn_low_quality_floor``: 0 in the paper, 0.3 in mmdetection's RPN), every
       anchor with IoU exactly ``b`` with it (all ties) is positive, matched to its own ``g``
       (``low_quality_match="own-best"``; ``g`` may be another GT with an equal or higher IoU)
       or to the last GT, in input order, it is such a best anchor of (``"last-gt"``,
       mmdetection's ``MaxIoUAssigner``, which overwrites the match GT by GT);
    3. otherwise ``m < low`` -> negative; else ignored.

    A GT that overlaps no anchor (``b = 0``) makes nothing positive. With no GT every anchor is
    negative. ``border="ignore"`` leaves anchors not wholly inside the image out of the matching
    altogether (they are ignored and cannot be any GT's best anchor). Matched index -1 for
    anchors that are not positive. ``image_size`` must be a valid ``(height, width)`` under
    either border policy, though only ``ignore`` reads it.
    """
    offset = check_convention(convention)
    anchors = check_boxes(anchors, "anchors")
    gt_boxes = check_boxes(gt_boxes, "gt_boxes")
    check_image_size(image_size)  # whatever the border policy: a bad size is a bad call
    high = check_unit_interval(high, "high")
    low = check_unit_interval(low, "low")
    if low > high:
        raise ValueError(f"low threshold {low} is above the high threshold {high}")
    if border not in BORDER_POLICIES:
        raise ValueError(f"unknown border policy {border!r}; expected one of {BORDER_POLICIES}")
    floor = check_unit_interval(floor, "floor")
    if low_quality_match not in LOW_QUALITY_MATCHES:
        raise ValueError(
            f"unknown low-quality match {low_quality_match!r}; expected one of {LOW_QUALITY_MATCHES}"
        )
    considered = (
        inside_image(anchors, image_size, convention) if border == "ignore" else np.ones(len(anchors), bool)
    )
    labels = np.where(considered, NEGATIVE, IGNORED)
    matched = np.full(len(anchors), -1)
    if len(gt_boxes) == 0 or not considered.any():
        return np.stack([labels, matched], axis=1)
    iou = pairwise_iou(anchors, gt_boxes, offset)
    iou[~considered] = -1.0  # never a best anchor, never above a threshold
    best_gt = iou.argmax(axis=1)
    best_iou = iou[np.arange(len(anchors)), best_gt]
    labels[considered & (best_iou >= low)] = IGNORED
    positive = considered & (best_iou >= high)
    best_per_gt = iou.max(axis=0)
    eligible = (best_per_gt > 0) & (best_per_gt >= floor)
    is_best = (iou == best_per_gt[None, :]) & eligible[None, :]
    promoted = is_best.any(axis=1)
    positive |= promoted
    labels[positive] = POSITIVE
    matched[positive] = best_gt[positive]
    if low_quality_match == "last-gt":  # the highest-index GT each promoted anchor is best for
        last = len(gt_boxes) - 1 - np.argmax(is_best[:, ::-1], axis=1)
        matched[promoted] = last[promoted]
    return np.stack([labels, matched], axis=1)


def sample_balanced(labels, batch_size: int, positive_fraction: float, seed: int) -> np.ndarray:
    """Pick the anchors that enter the loss (clauses ``rpn.sample.*``); ``(N,)``: 1 for a sampled
    positive, 0 for a sampled negative, -1 otherwise.

    ``floor(batch_size * positive_fraction)`` positives at most, then negatives up to
    ``batch_size`` in total; each drawn uniformly without replacement by
    ``numpy.random.default_rng(seed)``. Fewer candidates than wanted: all are taken.
    """
    labels = check_ternary_labels(labels, "labels")
    batch_size = check_integer(batch_size, "batch_size")
    fraction = check_unit_interval(positive_fraction, "positive_fraction")
    rng = np.random.default_rng(check_integer(seed, "seed"))
    positives = np.flatnonzero(labels == POSITIVE)
    negatives = np.flatnonzero(labels == NEGATIVE)
    wanted_pos = min(len(positives), math.floor(batch_size * fraction))
    wanted_neg = min(len(negatives), batch_size - wanted_pos)
    sampled = np.full(len(labels), IGNORED)
    sampled[rng.choice(positives, wanted_pos, replace=False)] = POSITIVE
    sampled[rng.choice(negatives, wanted_neg, replace=False)] = NEGATIVE
    return sampled


def regression_targets(anchors, gt_boxes, matched, convention: str = "continuous") -> np.ndarray:
    """``(N, 4)``: encode(anchor, its matched GT) for positives, 0 elsewhere (``rpn.targets``).

    ``matched`` has one integer per anchor: the index of its GT box in ``[0, len(gt_boxes))``,
    or -1 for an anchor that is not positive (column 1 of :func:`match_anchors`). Without GT
    boxes every entry must be -1.
    """
    anchors = check_boxes(anchors, "anchors")
    gt_boxes = check_boxes(gt_boxes, "gt_boxes")
    matched = check_labels(matched, "matched", len(anchors))
    invalid = (matched < -1) | (matched >= len(gt_boxes))
    if invalid.any():
        row = int(np.flatnonzero(invalid)[0])
        valid = (
            f"-1 (not positive) or a GT index in [0, {len(gt_boxes) - 1}]"
            if len(gt_boxes)
            else "-1 for every anchor: there are no GT boxes"
        )
        raise ValueError(f"matched: expected {valid}, got {int(matched[row])} at index {row}")
    targets = np.zeros((len(anchors), 4))
    positive = matched >= 0
    if positive.any():
        targets[positive] = encode_boxes(
            anchors[positive], gt_boxes[matched[positive]], convention=convention
        )
    return targets


def smooth_l1(x: np.ndarray, beta: float) -> np.ndarray:
    """``0.5 x² / β`` for ``|x| < β``, else ``|x| − β/2``; β = 0 is the L1 loss. Caffe's σ form is
    the same function with ``β = 1/σ²`` (py-faster-rcnn's RPN: σ = 3, β = 1/9)."""
    absolute = np.abs(x)
    if beta == 0:
        return absolute
    return np.where(absolute < beta, 0.5 * x * x / beta, absolute - 0.5 * beta)


def smooth_l1_slope(x: np.ndarray, beta: float) -> np.ndarray:
    """The derivative of :func:`smooth_l1`: ``x / β`` inside ``|x| < β``, ``sign(x)`` outside
    (and for β = 0)."""
    if beta == 0:
        return np.sign(x)
    return np.where(np.abs(x) < beta, x / beta, np.sign(x))


def _check_rpn_loss_inputs(logits, deltas, sampled, targets, beta, normaliser, anchor_locations):
    """The checked arrays, β, and the (classification, regression) weights of the normaliser."""
    sampled = check_ternary_labels(sampled, "sampled")
    count = len(sampled)
    logits = check_vector(logits, "logits", count)
    deltas = check_finite_array(deltas, "deltas", ndim=2, last_dim=4)
    targets = check_finite_array(targets, "targets", ndim=2, last_dim=4)
    for name, rows in (("deltas", deltas), ("targets", targets)):
        if len(rows) != count:
            raise ValueError(f"{name}: expected {count} rows (one per anchor of sampled), got {len(rows)}")
    beta = check_nonnegative(beta, "beta")
    if anchor_locations is not None:
        anchor_locations = check_integer(anchor_locations, "anchor_locations", minimum=1)
    weights = _loss_weights(sampled, normaliser, anchor_locations)
    return logits, deltas, sampled, targets, beta, weights


def _loss_weights(sampled: np.ndarray, normaliser: str, anchor_locations: int | None):
    """(cls weight per sampled anchor, reg weight per positive): the two normalisations. The
    paper's ``N_reg`` is ``anchor_locations``, or ``max(N // 9, 1)`` (9 anchors per location)
    when it is not given."""
    count = int(np.sum(sampled >= 0))
    if normaliser not in LOSS_NORMALISERS:
        raise ValueError(f"unknown loss normaliser {normaliser!r}; expected one of {LOSS_NORMALISERS}")
    if normaliser == "sampled":  # torchvision: mean over the sampled anchors, lambda = 1
        return (1.0 / count if count else 0.0), (1.0 / count if count else 0.0)
    if normaliser == "sampled-clamped":  # mmdetection: max(#pos, 1) + max(#neg, 1), lambda = 1
        clamped = max(int(np.sum(sampled == POSITIVE)), 1) + max(int(np.sum(sampled == NEGATIVE)), 1)
        return 1.0 / clamped, 1.0 / clamped
    locations = anchor_locations if anchor_locations is not None else max(len(sampled) // 9, 1)
    return 1.0 / 256, 10.0 / locations  # the paper: N_cls = 256, lambda = 10, N_reg = #locations


def rpn_loss(
    logits,
    deltas,
    sampled,
    targets,
    beta: float = 1 / 9,
    normaliser: str = "sampled",
    anchor_locations: int | None = None,
) -> np.ndarray:
    """``(2,)``: the RPN's classification and regression terms (``rpn.loss.*``).

    ``L = w_cls Σ_sampled BCE(logit, label) + w_reg Σ_positive Σ_coords smoothL1(d − t)``, with
    ``w_cls = w_reg = 1 / #sampled`` (``normaliser="sampled"``, torchvision) or the paper's
    ``w_cls = 1/256``, ``w_reg = λ / N_reg = 10 / #anchor locations``. ``sampled``: 1/0/-1 from
    :func:`sample_balanced`. Returns ``[classification, regression]`` (the second weighted).
    ``beta`` is finite and ``>= 0``; ``anchor_locations`` (paper normaliser) an integer ``>= 1``,
    or ``None`` for ``max(N // 9, 1)``.
    """
    logits, deltas, sampled, targets, beta, (w_cls, w_reg) = _check_rpn_loss_inputs(
        logits, deltas, sampled, targets, beta, normaliser, anchor_locations
    )
    chosen = sampled >= 0
    labels = (sampled == POSITIVE).astype(np.float64)
    # log(1 + e^x) - y x, written to stay finite for large |x|
    bce = np.logaddexp(0.0, logits) - labels * logits
    positive = sampled == POSITIVE
    regression = smooth_l1(deltas[positive] - targets[positive], beta).sum()
    return np.array([w_cls * bce[chosen].sum(), w_reg * regression])


def rpn_loss_gradient(
    logits,
    deltas,
    sampled,
    targets,
    beta: float = 1 / 9,
    normaliser: str = "sampled",
    anchor_locations: int | None = None,
) -> np.ndarray:
    """``(N, 5)``: d(total loss)/d(logit) and d/d(deltas), analytically (``rpn.loss.gradient``).
    Exactly zero for anchors that are not sampled, and zero in the delta columns of every anchor
    that is not a sampled positive. Preconditions as :func:`rpn_loss`."""
    logits, deltas, sampled, targets, beta, (w_cls, w_reg) = _check_rpn_loss_inputs(
        logits, deltas, sampled, targets, beta, normaliser, anchor_locations
    )
    labels = (sampled == POSITIVE).astype(np.float64)
    gradient = np.zeros((len(sampled), 5))
    chosen = sampled >= 0
    gradient[chosen, 0] = w_cls * (1.0 / (1.0 + np.exp(-logits[chosen])) - labels[chosen])
    positive = sampled == POSITIVE
    gradient[positive, 1:] = w_reg * smooth_l1_slope(deltas[positive] - targets[positive], beta)
    return gradient
