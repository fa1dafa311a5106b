"""Properties of RPN training targets (``spec/rpn_training.md``).

Labels are decided in exact arithmetic on the exact inputs, with the declared tolerance band
around the two thresholds (an IoU within the band of a threshold, but not on it, may fall on
either side).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from detspec.properties.checks import check_close, check_equal, fail, tolerance
from detspec.properties.exact import MARGIN, PairwiseIoU
from detspec.properties.registry import Example, Integer, Number, PairField, Rows4, Vector, family, prop
from detspec.properties.registry import Labels as LabelsField
from detspec.properties.strategies.rpn import label_vectors, loss_inputs, matching_inputs
from detspec.reference import rpn_targets as ref_rpn
from hypothesis import strategies as st


@family
class MatchingInputs(Example):
    anchors: Rows4
    gt_boxes: Rows4
    image_size: PairField
    high: Number
    low: Number


@family
class PermutedMatchingInputs(Example):
    anchors: Rows4
    gt_boxes: Rows4
    image_size: PairField
    high: Number
    low: Number
    permutation_seed: Integer


@family
class MovedMatchingInputs(Example):
    anchors: Rows4
    gt_boxes: Rows4
    image_size: PairField
    high: Number
    low: Number
    shift: PairField


@family
class SamplingInputs(Example):
    labels: LabelsField
    batch_size: Integer
    positive_fraction: Number
    seed: Integer


@family
class RpnLossInputs(Example):
    logits: Vector
    deltas: Rows4
    sampled: LabelsField
    targets: Rows4
    anchor_locations: Integer


def _given_matching(zero_iou_gt=False, min_gt=1):
    return lambda c: matching_inputs(zero_iou_gt, min_gt, c.width_offset)


def _considered(impl, anchors, image_size) -> np.ndarray:
    if impl.conventions.rpn_border == "ignore":
        return ref_rpn.inside_image(anchors, image_size, impl.conventions.box_width)
    return np.ones(len(anchors), dtype=bool)


def _floor_applies(best: Fraction, floor: float, band: float) -> set[bool]:
    """Whether a GT with exact best IoU ``best`` promotes its best anchors: ``best > 0`` and
    ``best >= floor`` (``rpn_low_quality_floor``); within the tolerance band of a non-zero floor
    either is allowed (an implementation compares its own rounded IoU with its rounded floor)."""
    if best <= 0:
        return {False}
    if floor == 0 or best >= Fraction(floor) + Fraction(band):
        return {True}
    if best < Fraction(floor) - Fraction(band):
        return {False}
    return {True, False}


def _threshold_label(value: float, high: float, low: float) -> int:
    return 1 if value >= high else (0 if value < low else -1)


def _acceptable_labels(impl, anchors, gt_boxes, image_size, high, low) -> list[set[int]]:
    """For every anchor, the labels the spec allows: one, or two inside a tolerance band."""
    conventions = impl.conventions
    band = tolerance(conventions.dtype)
    considered = _considered(impl, anchors, image_size)
    overlaps = PairwiseIoU(anchors, gt_boxes, conventions.width_offset)
    approx = np.where(considered[:, None], overlaps.approx, -1.0)
    # the exact best IoU of every GT over the considered anchors (0: it overlaps none)
    best_exact = []
    for j in range(len(gt_boxes)):
        top = approx[:, j].max()
        contenders = np.flatnonzero(approx[:, j] >= top - MARGIN) if top > 0 else []
        best_exact.append(max((overlaps.exact(k, j) for k in contenders), default=Fraction(0)))
    accepted = []
    floor = conventions.low_quality_floor
    for i in range(len(anchors)):
        if not considered[i]:
            accepted.append({-1})
            continue
        allowed: set[int] = set()
        required_positive = False
        for j, best in enumerate(best_exact):
            promotes = _floor_applies(best, floor, band)
            if promotes == {False}:
                continue  # a GT overlapping no anchor (or below the floor) makes nothing positive
            gap = float(best) - approx[i, j]
            if gap <= MARGIN and overlaps.exact(i, j) == best and promotes == {True}:
                required_positive = True
            elif gap <= band:
                allowed.add(1)  # a near-tie (rounding may make it a tie), or a GT at the floor
        if required_positive:
            accepted.append({1})
            continue
        if not len(gt_boxes):
            accepted.append({0})
            continue
        top = int(np.argmax(approx[i]))
        value = approx[i, top]
        on_high = overlaps.compare(i, top, high) == 0
        on_low = overlaps.compare(i, top, low) == 0
        exact_label = (
            1
            if on_high or overlaps.compare(i, top, high) > 0
            else (-1 if on_low or overlaps.compare(i, top, low) > 0 else 0)
        )
        allowed.add(exact_label)
        # every label some value within the band reaches: both ends, the thresholds inside it,
        # and the stretch between the thresholds if the band overlaps it
        lowest, highest = value - band, value + band
        nearby = [lowest, highest] + [t for t in (low, high) if lowest <= t <= highest]
        if max(low, lowest) < min(high, highest):
            nearby.append((max(low, lowest) + min(high, highest)) / 2)
        for point in nearby:
            if (on_high and point < high) or (on_low and point < low):
                continue  # exactly on a threshold: only its own side is allowed
            allowed.add(_threshold_label(point, high, low))
        accepted.append(allowed)
    return accepted


@prop(
    "rpn.match.labels",
    uses=("match_anchors",),
    given=_given_matching(),
    example=MatchingInputs,
    examples=lambda _c: [
        {
            "anchors": np.array([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 20.0], [50.0, 0, 60, 10]]),
            "gt_boxes": np.array([[0.0, 0.0, 10.0, 10.0]]),
            "image_size": (100.0, 100.0),
            "high": 0.5,
            "low": 0.25,
        },
    ],
)
def anchors_are_labelled_by_iou_and_best_anchor_rule(impl, anchors, gt_boxes, image_size, high, low):
    """1 if max IoU >= high or best anchor (ties included) of a GT; 0 below low; -1 between."""
    labels = impl.match_anchors(anchors, gt_boxes, image_size, high, low).labels
    accepted = _acceptable_labels(impl, anchors, gt_boxes, image_size, high, low)
    for i, (label, allowed) in enumerate(zip(labels, accepted, strict=True)):
        if int(label) not in allowed:
            fail(
                "match.label",
                f"anchor {i} {anchors[i].tolist()} labelled {int(label)}, the spec allows "
                f"{sorted(allowed)} (thresholds low={low}, high={high})",
                sorted(allowed),
                int(label),
            )


@prop(
    "rpn.match.zero-iou",
    uses=("match_anchors",),
    given=_given_matching(zero_iou_gt=True),
    example=MatchingInputs,
    examples=lambda _c: [
        {
            "anchors": np.array([[0.0, 0, 10, 10], [20.0, 20, 30, 30], [40.0, 40, 50, 50]]),
            "gt_boxes": np.array([[100.0, 100, 110, 110]]),
            "image_size": (200.0, 200.0),
            "high": 0.7,
            "low": 0.3,
        },
    ],
)
def gt_overlapping_no_anchor_makes_nothing_positive(impl, anchors, gt_boxes, image_size, high, low):
    """A GT box with IoU 0 with every anchor (far away, or of zero area) labels no anchor positive
    (unless ``high = 0``, where IoU 0 already reaches the positive threshold)."""
    labels = impl.match_anchors(anchors, gt_boxes, image_size, high, low).labels
    if high > 0 and np.any(labels == 1):
        fail(
            "match.zero-iou-positive",
            f"anchors {np.flatnonzero(labels == 1).tolist()} are positive although no GT box "
            "overlaps any anchor",
            "no positive anchor",
            labels,
        )


@prop("rpn.match.matched-gt", uses=("match_anchors",), given=_given_matching(), example=MatchingInputs)
def positive_anchor_is_matched_to_its_best_gt(impl, anchors, gt_boxes, image_size, high, low):
    """A positive anchor's matched GT attains that anchor's largest IoU (any of tied GTs);
    under ``rpn_low_quality_match = last-gt`` an anchor that is a best anchor of some GT is
    matched to the last GT (in input order) it is a best anchor of."""
    result = impl.match_anchors(anchors, gt_boxes, image_size, high, low)
    conventions = impl.conventions
    overlaps = PairwiseIoU(anchors, gt_boxes, conventions.width_offset)
    band = tolerance(conventions.dtype)
    considered = _considered(impl, anchors, image_size)
    column_best = np.where(considered[:, None], overlaps.approx, -1.0).max(axis=0) if len(gt_boxes) else []
    for i in np.flatnonzero(result.labels == 1):
        j = int(result.matched_gt[i])
        if not 0 <= j < len(gt_boxes):
            fail(
                "match.matched-gt-range",
                f"positive anchor {i} is matched to GT index {j}",
                f"in [0, {len(gt_boxes)})",
                j,
            )
        if conventions.rpn_low_quality_match == "last-gt":
            # GTs this anchor surely / possibly is a best anchor of (float ties within the band)
            surely, possibly = [], []
            for g, best in enumerate(column_best):
                promotes = _floor_applies(Fraction(float(best)), conventions.low_quality_floor, band)
                if best > 0 and overlaps.approx[i, g] >= best - band and True in promotes:
                    possibly.append(g)
                    if overlaps.approx[i, g] >= best - MARGIN and promotes == {True}:
                        surely.append(g)
            if possibly and j in possibly and j >= max(surely, default=-1):
                continue
            if surely:
                fail(
                    "match.matched-gt-not-last",
                    f"positive anchor {i} is a best anchor of GTs {surely} and is matched to GT {j}; "
                    "last-gt matches it to the last of them",
                    max(surely),
                    j,
                )
        best = overlaps.approx[i].max()
        if overlaps.approx[i, j] < best - band:
            fail(
                "match.matched-gt-not-best",
                f"positive anchor {i} is matched to GT {j} (IoU {overlaps.approx[i, j]:.4f}) but "
                f"its best GT has IoU {best:.4f}",
                float(best),
                float(overlaps.approx[i, j]),
            )


@prop(
    "rpn.match.empty-gt",
    uses=("match_anchors",),
    given=lambda c: matching_inputs(False, 1, c.width_offset).map(
        lambda e: {**e, "gt_boxes": np.zeros((0, 4))}
    ),
    example=MatchingInputs,
)
def no_gt_means_every_anchor_is_negative(impl, anchors, gt_boxes, image_size, high, low):
    """Without GT boxes every (considered) anchor is negative, and nothing is raised."""
    labels = impl.match_anchors(anchors, gt_boxes, image_size, high, low).labels
    expected = np.where(_considered(impl, anchors, image_size), 0, -1)
    check_equal(labels, expected, "labels with no GT box", "match.empty-gt")


@prop("rpn.match.every-gt", uses=("match_anchors",), given=_given_matching(), example=MatchingInputs)
def every_overlapping_gt_has_a_positive_anchor(impl, anchors, gt_boxes, image_size, high, low):
    """Before sampling, every GT overlapping some (considered) anchor -- by at least the
    declared floor -- has a positive anchor among those of highest IoU with it."""
    labels = impl.match_anchors(anchors, gt_boxes, image_size, high, low).labels
    considered = _considered(impl, anchors, image_size)
    overlaps = PairwiseIoU(anchors, gt_boxes, impl.conventions.width_offset)
    band = tolerance(impl.conventions.dtype)
    for j in range(len(gt_boxes)):
        column = np.where(considered, overlaps.approx[:, j], -1.0)
        best = column.max()
        floor = impl.conventions.low_quality_floor
        if _floor_applies(Fraction(float(max(best, 0.0))), floor, band) != {True}:
            continue  # overlaps no anchor, or not surely above the declared floor
        if not np.any((labels == 1) & (column >= best - band)):
            fail(
                "match.gt-without-positive",
                f"GT {j} {gt_boxes[j].tolist()} (best IoU {best:.4f}) has no positive anchor",
                "a positive anchor",
                labels.tolist(),
            )


def _permutation(draw_seed: int, size: int) -> np.ndarray:
    return np.random.default_rng(draw_seed).permutation(size)


@prop(
    "rpn.match.gt-order",
    uses=("match_anchors",),
    given=lambda c: st.tuples(matching_inputs(False, 1, c.width_offset), st.integers(0, 2**16)).map(
        lambda t: {**t[0], "permutation_seed": t[1]}
    ),
    example=PermutedMatchingInputs,
)
def labels_do_not_depend_on_gt_order(impl, anchors, gt_boxes, image_size, high, low, permutation_seed):
    """Listing the GT boxes in another order changes no label."""
    order = _permutation(permutation_seed, len(gt_boxes))
    before = impl.match_anchors(anchors, gt_boxes, image_size, high, low).labels
    after = impl.match_anchors(anchors, gt_boxes[order], image_size, high, low).labels
    check_equal(after, before, f"labels after reordering the GT boxes as {order.tolist()}", "match.gt-order")


@prop(
    "rpn.match.anchor-order",
    uses=("match_anchors",),
    given=lambda c: st.tuples(matching_inputs(False, 1, c.width_offset), st.integers(0, 2**16)).map(
        lambda t: {**t[0], "permutation_seed": t[1]}
    ),
    example=PermutedMatchingInputs,
)
def labels_follow_the_anchors_when_reordered(
    impl, anchors, gt_boxes, image_size, high, low, permutation_seed
):
    """Reordering the anchors reorders their labels the same way."""
    order = _permutation(permutation_seed, len(anchors))
    before = impl.match_anchors(anchors, gt_boxes, image_size, high, low).labels
    after = impl.match_anchors(anchors[order], gt_boxes, image_size, high, low).labels
    check_equal(after, before[order], "labels of reordered anchors", "match.anchor-order")


@prop(
    "rpn.match.translation",
    uses=("match_anchors",),
    given=lambda c: st.tuples(
        matching_inputs(False, 1, c.width_offset),
        st.integers(-8, 8),
        st.integers(-8, 8),
        st.sampled_from([4, 8, 16, 32]),
    ).map(lambda t: {**t[0], "shift": (float(t[1] * t[3]), float(t[2] * t[3]))}),
    example=MovedMatchingInputs,
    applies=lambda c: None if c.rpn_border == "keep" else "the border policy is not translation-invariant",
)
def labels_are_translation_invariant(impl, anchors, gt_boxes, image_size, high, low, shift):
    """Moving anchors and GT boxes together by a multiple of the stride changes no label."""
    move = np.array([shift[0], shift[1], shift[0], shift[1]])
    before = impl.match_anchors(anchors, gt_boxes, image_size, high, low).labels
    after = impl.match_anchors(anchors + move, gt_boxes + move, image_size, high, low).labels
    check_equal(after, before, f"labels after moving everything by {shift}", "match.translation")


@prop("rpn.match.border", uses=("match_anchors",), given=_given_matching(), example=MatchingInputs)
def border_anchors_follow_the_declared_policy(impl, anchors, gt_boxes, image_size, high, low):
    """``ignore``: anchors not wholly inside the image are -1 and play no part; ``keep``: they are
    labelled as if the image were unbounded."""
    labels = impl.match_anchors(anchors, gt_boxes, image_size, high, low).labels
    inside = ref_rpn.inside_image(anchors, image_size, impl.conventions.box_width)
    if impl.conventions.rpn_border == "ignore":
        check_equal(
            labels[~inside], -np.ones(int((~inside).sum())), "labels of border anchors", "match.border"
        )
        alone = impl.match_anchors(anchors[inside], gt_boxes, image_size, high, low).labels
        check_equal(
            labels[inside], alone, "labels of inside anchors vs without the border ones", "match.border"
        )
    else:
        unbounded = (1e6, 1e6)
        check_equal(
            labels,
            impl.match_anchors(anchors, gt_boxes, unbounded, high, low).labels,
            "labels vs the same anchors in an unbounded image",
            "match.border",
        )


@prop(
    "rpn.targets",
    uses=("match_anchors", "rpn_regression_targets"),
    given=_given_matching(),
    example=MatchingInputs,
)
def regression_target_encodes_the_matched_gt(impl, anchors, gt_boxes, image_size, high, low):
    """The regression target of a positive anchor is encode(anchor, its matched GT)."""
    result = impl.match_anchors(anchors, gt_boxes, image_size, high, low)
    targets = impl.rpn_regression_targets(anchors, gt_boxes, image_size, high, low)
    positive = result.labels == 1
    expected = ref_rpn.regression_targets(
        anchors, gt_boxes, np.where(positive, result.matched_gt, -1), impl.conventions.box_width
    )
    tol = tolerance(impl.conventions.dtype) * (1 + np.abs(expected))
    check_close(
        targets[positive],
        expected[positive],
        tol[positive],
        "targets of positive anchors",
        "rpn-targets.value",
    )


# --- sampling ---------------------------------------------------------------------------------


def _sample(impl, labels, batch_size, positive_fraction, seed):
    sampled = impl.sample_balanced(labels, batch_size, positive_fraction, seed)
    if not np.all(np.isin(sampled, (1, 0, -1))):
        fail("sample.values", "sample_balanced returned values other than 1, 0, -1", "1, 0, -1", sampled)
    return sampled


@prop(
    "rpn.sample.counts",
    uses=("sample_balanced",),
    given=lambda _c: label_vectors(),
    example=SamplingInputs,
    examples=lambda _c: [
        {"labels": np.array([1] * 10 + [0] * 1000), "batch_size": 256, "positive_fraction": 0.5, "seed": 0},
        {"labels": np.array([1] * 500 + [0] * 20), "batch_size": 256, "positive_fraction": 0.5, "seed": 0},
    ],
)
def sample_sizes_follow_the_budget(impl, labels, batch_size, positive_fraction, seed):
    """min(#pos, floor(B f)) positives, then min(#neg, B - that) negatives."""
    sampled = _sample(impl, labels, batch_size, positive_fraction, seed)
    want_pos = min(int(np.sum(labels == 1)), int(np.floor(batch_size * positive_fraction)))
    want_neg = min(int(np.sum(labels == 0)), batch_size - want_pos)
    got = [int(np.sum(sampled == 1)), int(np.sum(sampled == 0))]
    if got != [want_pos, want_neg]:
        fail(
            "sample.counts",
            f"sampled {got[0]} positives and {got[1]} negatives from {int(np.sum(labels == 1))} "
            f"and {int(np.sum(labels == 0))} with batch {batch_size}, fraction {positive_fraction}",
            [want_pos, want_neg],
            got,
        )


@prop(
    "rpn.sample.subset", uses=("sample_balanced",), given=lambda _c: label_vectors(), example=SamplingInputs
)
def sampled_anchors_keep_their_labels(impl, labels, batch_size, positive_fraction, seed):
    """Sampled positives were labelled 1, sampled negatives 0; ignored anchors are never sampled."""
    sampled = _sample(impl, labels, batch_size, positive_fraction, seed)
    wrong = np.flatnonzero((sampled >= 0) & (sampled != labels))
    if wrong.size:
        fail(
            "sample.relabelled",
            f"anchor {int(wrong[0])} labelled {int(labels[wrong[0]])} was sampled as "
            f"{int(sampled[wrong[0]])}",
            int(labels[wrong[0]]),
            int(sampled[wrong[0]]),
        )


@prop(
    "rpn.sample.seeded",
    uses=("sample_balanced",),
    given=lambda _c: label_vectors().filter(lambda e: e["batch_size"] > 0),
    example=SamplingInputs,
)
def sampling_is_reproducible_and_varies_with_the_seed(impl, labels, batch_size, positive_fraction, seed):
    """The same seed gives the same sample; 20 seeds give more than one sample whenever the
    budget leaves a choice (the chance that a uniform sampler repeats itself 20 times is at most
    2**-19)."""
    first = _sample(impl, labels, batch_size, positive_fraction, seed)
    check_equal(
        _sample(impl, labels, batch_size, positive_fraction, seed),
        first,
        "same seed",
        "sample.not-reproducible",
    )
    counts = [int(np.sum(labels == 1)), int(np.sum(labels == 0))]
    taken = [int(np.sum(first == 1)), int(np.sum(first == 0))]
    if all(t in (0, c) for t, c in zip(taken, counts, strict=True)):
        return  # no choice to make
    samples = {
        tuple(_sample(impl, labels, batch_size, positive_fraction, seed + k).tolist()) for k in range(20)
    }
    if len(samples) == 1:
        fail(
            "sample.ignores-seed",
            "20 different seeds gave the same sample",
            "different samples",
            next(iter(samples)),
        )


@prop(
    "rpn.sample.uniform",
    uses=("sample_balanced",),
    given=lambda _c: st.sampled_from([(12, 40, 8, 0.5), (30, 5, 16, 0.25), (3, 100, 64, 0.5)]).map(
        lambda t: {
            "labels": np.array([1] * t[0] + [0] * t[1] + [-1] * 5),
            "batch_size": t[2],
            "positive_fraction": t[3],
            "seed": 0,
        }
    ),
    example=SamplingInputs,
)
def sampling_is_uniform_over_eligible_anchors(impl, labels, batch_size, positive_fraction, seed):
    """Over 1000 seeds every eligible anchor is drawn about equally often. Each anchor's count is
    binomial; a deviation of t = sqrt(M ln(2n / 1e-6) / 2) from its mean has probability below
    1e-6 / n (Hoeffding), so the whole check raises a false alarm with probability below 1e-6 --
    and with fixed seeds it is deterministic."""
    draws = 1000
    counts = np.zeros(len(labels))
    for k in range(draws):
        counts += _sample(impl, labels, batch_size, positive_fraction, seed + k) >= 0
    for label in (1, 0):
        members = np.flatnonzero(labels == label)
        if members.size == 0:
            continue
        mean = counts[members].mean()
        slack = np.sqrt(draws * np.log(2 * members.size / 1e-6) / 2)
        worst = int(members[np.argmax(np.abs(counts[members] - mean))])
        if abs(counts[worst] - mean) > slack:
            fail(
                "sample.not-uniform",
                f"anchor {worst} (label {label}) was sampled {int(counts[worst])} times in {draws}; "
                f"a uniform sampler gives {mean:.1f} ± {slack:.1f} (false-alarm rate < 1e-6)",
                float(mean),
                float(counts[worst]),
            )


# --- loss -------------------------------------------------------------------------------------


def _reference_loss(impl, logits, deltas, sampled, targets, anchor_locations):
    c = impl.conventions
    return ref_rpn.rpn_loss(logits, deltas, sampled, targets, c.beta, c.rpn_loss_normaliser, anchor_locations)


@prop("rpn.loss.value", uses=("rpn_loss",), given=lambda _c: loss_inputs(), example=RpnLossInputs)
def rpn_loss_matches_formula(impl, logits, deltas, sampled, targets, anchor_locations):
    """BCE over the sampled anchors plus smooth L1 (declared beta) over sampled positives, each
    with the declared normalisation."""
    actual = np.array(impl.rpn_loss(logits, deltas, sampled, targets, anchor_locations))
    expected = _reference_loss(impl, logits, deltas, sampled, targets, anchor_locations)
    check_close(
        actual,
        expected,
        tolerance(impl.conventions.dtype) * (1 + np.abs(expected)) * 10,
        "[classification, regression] loss",
        "rpn-loss.value",
    )


@prop(
    "rpn.loss.empty-sample",
    uses=("rpn_loss",),
    given=lambda _c: loss_inputs(empty_sample=True),
    example=RpnLossInputs,
)
def rpn_loss_of_an_empty_sample_is_zero(impl, logits, deltas, sampled, targets, anchor_locations):
    """With no anchor sampled (every anchor ignored), both terms are 0 -- not NaN."""
    actual = np.array(impl.rpn_loss(logits, deltas, sampled, targets, anchor_locations))
    check_equal(actual, np.zeros(2), "loss of an empty sample", "rpn-loss.empty-sample")


@prop("rpn.loss.sampled-only", uses=("rpn_loss",), given=lambda _c: loss_inputs(), example=RpnLossInputs)
def rpn_loss_ignores_unsampled_outputs(impl, logits, deltas, sampled, targets, anchor_locations):
    """Changing the logits of unsampled anchors, or the deltas of anchors that are not sampled
    positives, changes neither term."""
    before = np.array(impl.rpn_loss(logits, deltas, sampled, targets, anchor_locations))
    noisy_logits = np.where(sampled >= 0, logits, logits + 3.0)
    noisy_deltas = np.where((sampled == 1)[:, None], deltas, -deltas - 1.0)
    after = np.array(impl.rpn_loss(noisy_logits, noisy_deltas, sampled, targets, anchor_locations))
    check_equal(
        after, before, "loss after changing outputs that are not sampled", "rpn-loss.unsampled-outputs"
    )


@prop("rpn.loss.gradient", uses=("rpn_loss_gradient",), given=lambda _c: loss_inputs(), example=RpnLossInputs)
def rpn_loss_gradient_vanishes_off_the_sample(impl, logits, deltas, sampled, targets, anchor_locations):
    """d loss / d output is exactly 0 for unsampled anchors (logit) and for every anchor that is
    not a sampled positive (deltas), and equals the analytic gradient elsewhere."""
    parts = impl.rpn_loss_gradient(logits, deltas, sampled, targets, anchor_locations)
    gradient = np.concatenate([parts.logits[:, None], parts.deltas], axis=1)
    zero = np.zeros_like(gradient, dtype=bool)
    zero[sampled < 0, 0] = True
    zero[sampled != 1, 1:] = True
    check_equal(
        np.where(zero, gradient, 0.0),
        np.zeros_like(gradient),
        "gradient off the sample",
        "rpn-loss.gradient-off-sample",
    )
    c = impl.conventions
    expected = ref_rpn.rpn_loss_gradient(
        logits, deltas, sampled, targets, c.beta, c.rpn_loss_normaliser, anchor_locations
    )
    check_close(
        gradient, expected, tolerance(c.dtype) * (1 + np.abs(expected)) * 10, "gradient", "rpn-loss.gradient"
    )
