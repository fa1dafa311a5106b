"""Properties of RoI-head training: sampling, regression targets, the Fast R-CNN loss
(``spec/roi_head.md``).

Inside this module a sampled RoI is a row ``x1, y1, x2, y2, label, matched GT, 4 targets`` (the
implementation returns a :class:`~detspec.properties.interface.RoiSample`; ``_sample`` packs it).
Foreground and background are decided in exact arithmetic on the exact inputs, with the declared
tolerance band around each threshold (an IoU within the band of a threshold, but not on it, may fall on either
side).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from fractions import Fraction

import numpy as np
from detspec.properties.checks import check_close, check_equal, fail, tolerance
from detspec.properties.exact import MARGIN, PairwiseIoU
from detspec.properties.interface import OPERATIONS
from detspec.properties.registry import Example, Integer, Matrix, Number, Rows4, Weights, family, prop
from detspec.properties.registry import Labels as LabelsField
from detspec.properties.strategies.roi import fast_rcnn_loss_inputs, sampling_inputs
from detspec.reference import roi_targets as ref_roi
from detspec.reference.boxes import encode_boxes
from hypothesis import strategies as st


@family
class RoiSamplingInputs(Example):
    """One image's proposals and GT boxes, and the sampler's settings."""

    proposals: Rows4
    gt_boxes: Rows4
    gt_labels: LabelsField
    num_classes: Integer
    batch_size: Integer
    positive_fraction: Number
    fg_threshold: Number
    bg_high: Number
    bg_low: Number
    weights: Weights
    seed: Integer


@family
class HeadLossInputs(Example):
    """Class logits (R, C + 1), class-specific boxes (R, 4 (C + 1)), labels and targets."""

    num_classes: Integer
    class_logits: Matrix
    box_regression: Matrix
    labels: LabelsField
    targets: Rows4


ARGUMENTS = OPERATIONS["sample_rois"].arguments


def _sample(impl, example: dict) -> np.ndarray:
    """Call ``sample_rois``; its :class:`RoiSample` packed as this module's rows."""
    sample = impl.sample_rois(**{k: example[k] for k in ARGUMENTS})
    counts = {len(sample.boxes), len(sample.labels), len(sample.matched_gt), len(sample.targets)}
    if len(counts) != 1:
        fail(
            "roi-sample.shape",
            f"sample_rois returned fields of different lengths {sorted(counts)}",
            "equal lengths",
            sorted(counts),
        )
    count = len(sample.boxes)
    columns = [(sample.boxes, 4), (sample.labels, 1), (sample.matched_gt, 1), (sample.targets, 4)]
    return np.concatenate([np.asarray(c, dtype=np.float64).reshape(count, w) for c, w in columns], axis=1)


def _background(impl, num_classes: int) -> int:
    return ref_roi.background_class(num_classes, impl.conventions.roi_background_label)


def _candidates(impl, proposals, gt_boxes) -> np.ndarray:
    return ref_roi.roi_candidates(proposals, gt_boxes, impl.conventions.roi_gt_candidates)


def _at_least(best: tuple[float, Fraction], threshold: float, band: float) -> set[bool]:
    """The truth values ``IoU >= threshold`` may take for an IoU known as ``(float, exact)``:
    exactly on the threshold it is true; within the band it may be either; elsewhere it is what
    the value says."""
    approx, exact = best
    if exact == Fraction(threshold):
        return {True}
    if abs(approx - threshold) <= band:
        return {True, False}
    return {approx > threshold}


def _best_iou(overlaps: PairwiseIoU, i: int) -> tuple[float, Fraction]:
    """RoI ``i``'s largest IoU with any GT box: float64 and exact (0 without GT boxes)."""
    if overlaps.approx.shape[1] == 0:
        return 0.0, Fraction(0)
    row = overlaps.approx[i]
    top = row.max()
    contenders = np.flatnonzero(row >= top - MARGIN)
    return float(top), max(overlaps.exact(i, int(j)) for j in contenders)


def _allowed_kinds(impl, boxes, gt_boxes, fg_threshold, bg_high, bg_low) -> list[set[int]]:
    """Per box, the kinds the spec allows: 1 foreground, 0 background, -1 unused."""
    if len(gt_boxes) == 0 and impl.conventions.roi_no_gt == "all-background":
        return [{0} for _ in range(len(boxes))]
    overlaps = PairwiseIoU(boxes, gt_boxes, impl.conventions.width_offset)
    band = tolerance(impl.conventions.dtype)
    kinds = []
    for i in range(len(boxes)):
        best = _best_iou(overlaps, i)
        allowed = set()
        for is_fg in _at_least(best, fg_threshold, band):
            if is_fg and len(gt_boxes):
                allowed.add(1)
                continue
            for above_low in _at_least(best, bg_low, band):
                for above_high in _at_least(best, bg_high, band):
                    allowed.add(0 if above_low and not above_high and not is_fg else -1)
        kinds.append(allowed)
    return kinds


def _given(transform=None, min_gt: int = 0):
    def factory(c):
        base = sampling_inputs(c, min_gt)
        return base.map(transform) if transform else base

    return factory


def _no_gt(example: dict) -> dict:
    return {**example, "gt_boxes": np.zeros((0, 4)), "gt_labels": np.zeros(0, dtype=np.int64)}


def _no_proposals(example: dict) -> dict:
    return {**example, "proposals": np.zeros((0, 4))}


PAPER_EXAMPLE = {
    "proposals": np.array(
        [[0.0, 0, 100, 100], [10.0, 0, 110, 100], [40.0, 0, 140, 100], [300.0, 0, 400, 50]]
    ),
    "gt_boxes": np.array([[0.0, 0, 100, 100]]),
    "gt_labels": np.array([1]),
    "num_classes": 3,
    "batch_size": 128,
    "positive_fraction": 0.25,
    "fg_threshold": 0.5,
    "bg_high": 0.5,
    "bg_low": 0.0,
    "weights": (10.0, 10.0, 5.0, 5.0),
    "seed": 0,
}


def _paper_example(c) -> list[dict]:
    labels = np.array([1 if c.roi_background_label == "zero" else 0])
    return [{**PAPER_EXAMPLE, "gt_labels": labels}]


@prop(
    "roi.sample.candidates",
    uses=("sample_rois",),
    given=_given(),
    example=RoiSamplingInputs,
    examples=_paper_example,
)
def sampled_rois_are_candidates(impl, **example):
    """Every sampled RoI is a proposal, or a GT box when the convention adds them; no candidate
    is taken twice, except backgrounds repeated to fill the batch (``repeat-negatives``)."""
    rows = _sample(impl, example)
    candidates = Counter(map(tuple, _candidates(impl, example["proposals"], example["gt_boxes"]).tolist()))
    background = _background(impl, example["num_classes"])
    repeats = impl.conventions.roi_fill == "repeat-negatives"
    taken = Counter(tuple(r[:4]) for r in rows.tolist() if not (repeats and r[4] == background))
    for box, count in taken.items():
        if count > candidates.get(box, 0):
            fail(
                "roi-sample.repeated",
                f"RoI {list(box)} sampled {count} times; it is {candidates.get(box, 0)} times among "
                f"the candidates ({impl.conventions.roi_gt_candidates} GT boxes)",
                candidates.get(box, 0),
                count,
            )
    if repeats:
        for r in rows.tolist():
            if r[4] == background and tuple(r[:4]) not in candidates:
                fail(
                    "roi-sample.not-a-candidate",
                    f"background RoI {r[:4]} is not a candidate",
                    "a candidate",
                    r[:4],
                )


def _check_labels(impl, rows, example) -> None:
    gt_boxes, gt_labels = example["gt_boxes"], example["gt_labels"]
    background = _background(impl, example["num_classes"])
    kinds = _allowed_kinds(
        impl, rows[:, :4], gt_boxes, example["fg_threshold"], example["bg_high"], example["bg_low"]
    )
    overlaps = PairwiseIoU(rows[:, :4], gt_boxes, impl.conventions.width_offset)
    band = tolerance(impl.conventions.dtype)
    thresholds = f"fg >= {example['fg_threshold']}, background in [{example['bg_low']}, {example['bg_high']})"
    for i, row in enumerate(rows):
        kind = 0 if int(row[4]) == background else 1
        if kind not in kinds[i]:
            best = _best_iou(overlaps, i)[0]
            fail(
                "roi-sample.label",
                f"RoI {i} {row[:4].tolist()} (largest IoU {best:.6g}) sampled as "
                f"{'foreground' if kind else 'background'}; {thresholds} allows "
                f"{sorted(kinds[i])} (1 fg, 0 bg, -1 unused)",
                sorted(kinds[i]),
                kind,
            )
        if kind == 0:
            continue
        j = int(row[5])
        if not 0 <= j < len(gt_boxes):
            fail(
                "roi-sample.matched-gt-range",
                f"foreground RoI {i} is matched to GT index {j}",
                f"in [0, {len(gt_boxes)})",
                j,
            )
        best = overlaps.approx[i].max()
        if overlaps.approx[i, j] < best - band:
            fail(
                "roi-sample.matched-gt-not-best",
                f"foreground RoI {i} is matched to GT {j} (IoU {overlaps.approx[i, j]:.6g}); its "
                f"best GT has IoU {best:.6g}",
                float(best),
                float(overlaps.approx[i, j]),
            )
        if int(row[4]) != int(gt_labels[j]):
            fail(
                "roi-sample.class",
                f"foreground RoI {i} matched to GT {j} has label {int(row[4])}, the GT's class is "
                f"{int(gt_labels[j])}",
                int(gt_labels[j]),
                int(row[4]),
            )


@prop(
    "roi.sample.labels",
    uses=("sample_rois",),
    given=_given(min_gt=1),
    example=RoiSamplingInputs,
    examples=_paper_example,
)
def sampled_rois_are_labelled_by_iou(impl, **example):
    """Foreground iff the largest IoU with a GT is >= fg_threshold, labelled with the class of a
    GT attaining it; background iff it lies in [bg_low, bg_high), labelled background; RoIs
    between bg_high and fg_threshold, or below bg_low, are never sampled. (Images without GT
    boxes: ``roi.sample.no-gt``.)"""
    _check_labels(impl, _sample(impl, example), example)


def _count_range(kinds: list[set[int]], kind: int) -> tuple[int, int]:
    return sum(k == {kind} for k in kinds), sum(kind in k for k in kinds)


@prop(
    "roi.sample.counts",
    uses=("sample_rois",),
    given=_given(min_gt=1),
    example=RoiSamplingInputs,
    examples=_paper_example,
)
def sample_sizes_follow_the_budget_and_fill_policy(impl, **example):
    """``min(#fg, floor(B f))`` foreground RoIs; then ``min(#bg, B - #fg_sampled)`` backgrounds
    (``shorter``) or exactly ``B - #fg_sampled`` when any background exists
    (``repeat-negatives``). (Images without GT boxes: ``roi.sample.no-gt``.)"""
    rows = _sample(impl, example)
    background = _background(impl, example["num_classes"])
    candidates = _candidates(impl, example["proposals"], example["gt_boxes"])
    kinds = _allowed_kinds(
        impl, candidates, example["gt_boxes"], example["fg_threshold"], example["bg_high"], example["bg_low"]
    )
    batch, budget = example["batch_size"], int(np.floor(example["batch_size"] * example["positive_fraction"]))
    got_fg, got_bg = int(np.sum(rows[:, 4] != background)), int(np.sum(rows[:, 4] == background))
    # candidate counts: the surely-foreground ones and the possibly-foreground ones (tolerance band)
    fg_fewest, fg_most = _count_range(kinds, 1)
    bg_fewest, bg_most = _count_range(kinds, 0)
    if not min(fg_fewest, budget) <= got_fg <= min(fg_most, budget):
        fail(
            "roi-sample.foreground-count",
            f"{got_fg} foreground RoIs from {fg_fewest} candidates with budget floor({batch} x "
            f"{example['positive_fraction']}) = {budget}",
            min(fg_fewest, budget),
            got_fg,
        )
    room = batch - got_fg
    if impl.conventions.roi_fill == "shorter":
        wanted = (min(bg_fewest, room), min(bg_most, room))
    else:
        wanted = (room if bg_fewest else 0, room if bg_most else 0)
    if not wanted[0] <= got_bg <= wanted[1]:
        fail(
            "roi-sample.background-count",
            f"{got_bg} background RoIs from {bg_fewest} candidates with room for {room} "
            f"(fill policy {impl.conventions.roi_fill})",
            wanted[0],
            got_bg,
        )


@prop(
    "roi.sample.gt-added",
    uses=("sample_rois",),
    given=_given(_no_proposals),
    example=RoiSamplingInputs,
)
def gt_boxes_are_sampled_as_their_own_foreground(impl, **example):
    """With no proposal at all: if the GT boxes are added, the foreground sample is the GT boxes
    themselves whenever the budget has room for all of them; otherwise nothing is sampled."""
    rows = _sample(impl, example)
    gt_boxes = example["gt_boxes"]
    if impl.conventions.roi_gt_candidates == "not-added":
        if len(rows):
            fail(
                "roi-sample.gt-not-added",
                f"{len(rows)} RoIs sampled from no proposal without GT candidates",
                0,
                len(rows),
            )
        return
    budget = int(np.floor(example["batch_size"] * example["positive_fraction"]))
    if budget < len(gt_boxes):
        return  # the budget chooses among the GT boxes: roi.sample.counts covers it
    foreground = rows[rows[:, 4] != _background(impl, example["num_classes"])]
    got = sorted(map(tuple, foreground[:, :4].tolist()))
    expected = sorted(map(tuple, gt_boxes.tolist()))
    if got != expected:
        fail("roi-sample.gt-added", "the foreground RoIs are not the GT boxes", expected, got)


@prop("roi.sample.no-gt", uses=("sample_rois",), given=_given(_no_gt), example=RoiSamplingInputs)
def without_gt_every_roi_is_background(impl, **example):
    """With no GT box every RoI has IoU 0: no foreground; backgrounds only if ``bg_low = 0 <
    bg_high`` (``roi_no_gt = all-background``: whatever the thresholds), ``min(#proposals, B)``
    of them (or ``B`` with ``repeat-negatives``). No proposal and no GT: an empty sample, and
    nothing is raised."""
    rows = _sample(impl, example)
    background = _background(impl, example["num_classes"])
    if np.any(rows[:, 4] != background):
        fail(
            "roi-sample.no-gt-foreground",
            "a foreground RoI without any GT box",
            "background only",
            rows[:, 4],
        )
    by_thresholds = example["bg_low"] == 0 < example["bg_high"]
    every_proposal = impl.conventions.roi_no_gt == "all-background"
    available = len(example["proposals"]) if by_thresholds or every_proposal else 0
    batch = example["batch_size"]
    expected = (
        batch if available and impl.conventions.roi_fill == "repeat-negatives" else min(available, batch)
    )
    if len(rows) != expected:
        fail(
            "roi-sample.no-gt-count",
            f"{len(rows)} background RoIs from {len(example['proposals'])} proposals and no GT "
            f"(batch {batch}, bg in [{example['bg_low']}, {example['bg_high']}))",
            expected,
            len(rows),
        )


def _sorted_rows(rows: np.ndarray) -> list:
    return sorted(map(tuple, rows.tolist()))


@prop("roi.sample.seeded", uses=("sample_rois",), given=_given(), example=RoiSamplingInputs)
def roi_sampling_is_reproducible(impl, **example):
    """The same seed gives the same sample (as a set of rows: the order is not specified)."""
    first = _sorted_rows(_sample(impl, example))
    second = _sorted_rows(_sample(impl, example))
    if first != second:
        fail(
            "roi-sample.not-reproducible",
            "two calls with the same seed gave different samples",
            first,
            second,
        )


def _uniform_example():
    """One GT box, 12 distinct foreground proposals (shifted 1..12 px: IoU >= 0.78) and 30
    distinct far-away backgrounds."""
    foreground = [[k, 0, 100 + k, 100] for k in range(1, 13)]
    background = [[1000 + 20 * k, 1000, 1010 + 20 * k, 1010] for k in range(30)]
    return {
        **PAPER_EXAMPLE,
        "proposals": np.array(foreground + background, dtype=np.float64),
        "batch_size": 16,
        "positive_fraction": 0.25,
    }


@prop(
    "roi.sample.uniform",
    uses=("sample_rois",),
    given=lambda c: st.just(
        {**_uniform_example(), "gt_labels": np.array([1 if c.roi_background_label == "zero" else 0])}
    ),
    example=RoiSamplingInputs,
)
def roi_sampling_is_uniform(impl, **example):
    """Over 500 seeds each foreground (background) candidate is drawn about ``M p`` times, p the
    sampled fraction of its kind. A count farther than ``t = sqrt(M ln(2n / 1e-6) / 2)`` from
    its expectation has probability below ``1e-6 / n`` (Hoeffding, n candidates): the whole
    check raises a false alarm with probability below 1e-6, and with fixed seeds it is
    deterministic. A sampler ignoring its seed fails it."""
    draws = 500
    candidates = _candidates(impl, example["proposals"], example["gt_boxes"])
    index = {tuple(box): i for i, box in enumerate(candidates.tolist())}
    counts = np.zeros(len(candidates))
    for k in range(draws):
        rows = _sample(impl, {**example, "seed": example["seed"] + k})
        for row in rows.tolist():
            i = index.get(tuple(row[:4]))
            if i is None:
                fail(
                    "roi-sample.not-a-candidate", f"RoI {row[:4]} is not a candidate", "a candidate", row[:4]
                )
            counts[i] += 1
    kinds = _allowed_kinds(
        impl, candidates, example["gt_boxes"], example["fg_threshold"], example["bg_high"], example["bg_low"]
    )
    slack = np.sqrt(draws * np.log(2 * len(candidates) / 1e-6) / 2)
    for kind, name in ((1, "foreground"), (0, "background")):
        members = np.flatnonzero([k == {kind} for k in kinds])
        # each draw takes a fixed number of this kind, so this is the exact expectation
        expected = counts[members].sum() / members.size
        worst = int(members[np.argmax(np.abs(counts[members] - expected))])
        if abs(counts[worst] - expected) > slack:
            fail(
                "roi-sample.not-uniform",
                f"{name} candidate {worst} {candidates[worst].tolist()} was drawn {int(counts[worst])} "
                f"times in {draws} seeds; uniform sampling gives {expected:.1f} ± {slack:.1f} "
                "(false-alarm rate < 1e-6)",
                float(expected),
                float(counts[worst]),
            )


@prop(
    "roi.sample.background-low",
    uses=("sample_rois",),
    given=lambda c: st.tuples(
        # images with GT boxes: an image without them is roi.sample.no-gt's (and roi_no_gt's)
        sampling_inputs(replace(c, roi_background_low="parameter"), min_gt=1).filter(
            lambda e: e["bg_high"] > 0
        ),
        st.integers(1, 16),
    ).map(lambda t: {**t[0], "bg_low": t[0]["bg_high"] * t[1] / 16}),
    example=RoiSamplingInputs,
    examples=lambda c: [{**_paper_example(c)[0], "bg_low": 0.1}],
    requires=lambda c: (
        "the implementation declares no lower background IoU threshold (roi_background_low = zero-only)"
        if c.roi_background_low == "zero-only"
        else None
    ),
)
def lower_background_threshold_is_honoured(impl, **example):
    """With ``bg_low > 0`` (the seed's [0.1, 0.5)), no RoI below ``bg_low`` is sampled as
    background and every other labelling rule still holds."""
    _check_labels(impl, _sample(impl, example), example)


# --- regression targets -----------------------------------------------------------------------


@prop(
    "roi.targets.encode",
    uses=("sample_rois",),
    given=_given(),
    example=RoiSamplingInputs,
    examples=_paper_example,
)
def foreground_target_encodes_the_matched_gt(impl, **example):
    """A foreground RoI's target is encode(RoI, its matched GT) with the given weights."""
    rows = _sample(impl, example)
    foreground = rows[:, 4] != _background(impl, example["num_classes"])
    if not foreground.any():
        return
    fg = rows[foreground]
    matched = fg[:, 5].astype(np.int64)
    if np.any((matched < 0) | (matched >= len(example["gt_boxes"]))):
        fail(
            "roi-targets.matched-gt-range",
            "a foreground RoI without a valid matched GT",
            "valid indices",
            matched,
        )
    expected = encode_boxes(
        fg[:, :4], example["gt_boxes"][matched], example["weights"], impl.conventions.box_width
    )
    tol = tolerance(impl.conventions.dtype) * (1 + np.abs(expected)) * 10
    check_close(fg[:, 6:], expected, tol, "targets of foreground RoIs", "roi-targets.value")


@prop(
    "roi.targets.stds",
    uses=("sample_rois",),
    given=lambda c: sampling_inputs(c).map(lambda e: {**e, "weights": (10.0, 10.0, 5.0, 5.0)}),
    example=RoiSamplingInputs,
    examples=_paper_example,
)
def weights_are_inverse_standard_deviations(impl, **example):
    """Targets with weights (10, 10, 5, 5) equal the unit-weight targets normalised by the
    standard deviations (0.1, 0.1, 0.2, 0.2) with means 0 (same seed, same RoIs)."""
    weighted = _sample(impl, example)
    unit = _sample(impl, {**example, "weights": (1.0, 1.0, 1.0, 1.0)})
    check_equal(unit[:, :6], weighted[:, :6], "RoIs sampled with the same seed", "roi-targets.sample-changed")
    foreground = weighted[:, 4] != _background(impl, example["num_classes"])
    normalised = (unit[foreground, 6:] - 0.0) / np.array([0.1, 0.1, 0.2, 0.2])
    tol = tolerance(impl.conventions.dtype) * (1 + np.abs(normalised)) * 10
    check_close(
        weighted[foreground, 6:],
        normalised,
        tol,
        "weighted targets vs (unit targets - 0) / stds",
        "roi-targets.weights",
    )


@prop(
    "roi.targets.finite",
    uses=("sample_rois",),
    given=lambda c: sampling_inputs(c, degenerate=True),
    example=RoiSamplingInputs,
    examples=lambda c: [
        {**_paper_example(c)[0], "gt_boxes": np.zeros((0, 4)), "gt_labels": np.zeros(0, int)}
    ],
)
def every_sampled_value_is_finite(impl, **example):
    """Every returned value is finite -- the (unspecified) targets of background RoIs included --
    also for images without GT boxes and for flat proposals (zero width or height)."""
    rows = _sample(impl, example)
    bad = ~np.isfinite(rows)
    if bad.any():
        row, column = (int(v) for v in np.argwhere(bad)[0])
        fail(
            "roi-targets.non-finite",
            f"RoI {row} {rows[row, :4].tolist()} (label {rows[row, 4]:g}) has a non-finite "
            f"{ref_roi.ROI_COLUMNS[column]} = {float(rows[row, column])!r}",
            "finite",
            str(rows[row, column]),
        )


# --- the Fast R-CNN loss ----------------------------------------------------------------------


def _loss_arguments(example: dict) -> tuple[np.ndarray, ...]:
    """``(class_logits, box_regression, labels, targets)`` in their shapes (an empty JSON matrix
    loses its column count, hence ``num_classes``)."""
    labels = example["labels"]
    columns = int(example["num_classes"]) + 1
    return (
        np.asarray(example["class_logits"], dtype=np.float64).reshape(len(labels), columns),
        np.asarray(example["box_regression"], dtype=np.float64).reshape(len(labels), 4 * columns),
        labels,
        np.asarray(example["targets"], dtype=np.float64).reshape(len(labels), 4),
    )


def _reference_head(impl, function, arguments) -> np.ndarray:
    c = impl.conventions
    return function(*arguments, c.roi_beta, c.roi_background_label)


@prop("roi.loss.value", uses=("fast_rcnn_loss",), given=fast_rcnn_loss_inputs, example=HeadLossInputs)
def fast_rcnn_loss_matches_formula(impl, **example):
    """Cross-entropy averaged over every sampled RoI (background included) and smooth L1 (the
    declared beta) over the GT-class columns of foreground RoIs, divided by the number of RoIs."""
    arguments = _loss_arguments(example)
    actual = np.array(impl.fast_rcnn_loss(*arguments))
    expected = _reference_head(impl, ref_roi.fast_rcnn_loss, arguments)
    tol = tolerance(impl.conventions.dtype) * (1 + np.abs(expected)) * 10
    check_close(actual, expected, tol, "[classification, box]", "head-loss.value")


@prop(
    "roi.loss.gradient",
    uses=("fast_rcnn_loss_gradient",),
    given=fast_rcnn_loss_inputs,
    example=HeadLossInputs,
)
def background_rois_and_other_classes_get_no_box_gradient(impl, **example):
    """d loss / d box output is exactly 0 for background RoIs and for every column of a class
    other than the RoI's GT class; every RoI, background included, gets a classification
    gradient; both equal the analytic gradient."""
    arguments = _loss_arguments(example)
    class_logits, _, labels, _ = arguments
    parts = impl.fast_rcnn_loss_gradient(*arguments)
    gradient = np.concatenate([parts.class_logits, parts.box_regression], axis=1)
    count, classes = class_logits.shape
    background = ref_roi.background_class(classes - 1, impl.conventions.roi_background_label)
    box = gradient[:, classes:].reshape(count, classes, 4)
    allowed = np.zeros((count, classes), dtype=bool)
    foreground = np.flatnonzero(labels != background)
    allowed[foreground, labels[foreground]] = True
    off = np.where(allowed[:, :, None], 0.0, box)
    check_equal(
        off,
        np.zeros_like(off),
        "box gradient of background RoIs and non-GT classes",
        "head-loss.gradient-off-target",
    )
    expected = _reference_head(impl, ref_roi.fast_rcnn_loss_gradient, arguments)
    tol = tolerance(impl.conventions.dtype) * (1 + np.abs(expected)) * 10
    check_close(gradient, expected, tol, "gradient", "head-loss.gradient")


@prop(
    "roi.loss.empty",
    uses=("fast_rcnn_loss",),
    given=lambda c: fast_rcnn_loss_inputs(c, empty=True),
    example=HeadLossInputs,
)
def fast_rcnn_loss_of_no_roi_is_zero(impl, **example):
    """With no RoI sampled, both terms are 0 -- not NaN."""
    actual = np.array(impl.fast_rcnn_loss(*_loss_arguments(example)))
    check_equal(actual, np.zeros(2), "loss of an empty RoI batch", "head-loss.empty")
