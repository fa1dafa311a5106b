"""Convention fingerprint: which value of each convention an implementation actually follows.

For every field of :class:`~detspec.properties.interface.Conventions`, a probe makes a few
discriminating calls (inputs on which the convention's values give different answers) and names
the value the answers match, with the evidence. ``None`` means it cannot be told: the operation
is not provided, it failed, or the answer matches no value (itself a finding: a problem of the run,
as a mismatch is).
The report shows declared against observed; a mismatch is a problem of the run, because a wrong
declaration otherwise shows up only as scattered failures. ``detspec fingerprint --impl X``
prints it for a new adapter, with a ``Conventions(...)`` line to start from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from detspec.properties.interface import Conventions, ImplementationFailure, NotProvided


@dataclass(frozen=True)
class Observation:
    convention: str
    declared: str
    observed: str | None  # None: could not be told
    evidence: str
    undecided: bool = False  # the answers matched no value of the convention: a finding

    @property
    def agrees(self) -> bool:
        """Observed as declared, or not observable; an answer that matches no value disagrees."""
        return self.observed == self.declared or (self.observed is None and not self.undecided)

    def to_json(self) -> dict[str, Any]:
        return {
            "declared": self.declared,
            "observed": self.observed,
            "evidence": self.evidence,
            "agrees": self.agrees,
        }

    @classmethod
    def from_json(cls, convention: str, data: dict[str, Any]) -> Observation:
        undecided = data["observed"] is None and not data.get("agrees", True)
        return cls(convention, data["declared"], data["observed"], data["evidence"], undecided)


class Undecided(Exception):
    """The answers match no value of the convention (the message says what came back)."""


class Unobservable(Exception):
    """The convention cannot be seen through this implementation's operations (the message says
    why), e.g. a proposal layer that takes one anchor grid cannot show a per-level pipeline."""


Probe = Callable[[Any], tuple[str, str]]  # impl -> (value, evidence)
PROBES: dict[str, Probe] = {}


def probe(convention: str):
    def register(function: Probe) -> Probe:
        PROBES[convention] = function
        return function

    return register


def _closest(value: float, candidates: dict[str, float], what: str, tolerance: float = 1e-3) -> str:
    for name, expected in candidates.items():
        if math.isclose(value, expected, rel_tol=tolerance, abs_tol=tolerance):
            return name
    raise Undecided(f"{what} = {value:.6g}, none of {candidates}")


@probe("box_width")
def _box_width(impl) -> tuple[str, str]:
    area = float(impl.box_area(np.array([[0.0, 0.0, 10.0, 10.0]]))[0])
    return _closest(area, {"continuous": 100.0, "legacy": 121.0}, "area of [0, 0, 10, 10]"), f"area {area:g}"


@probe("dtype")
def _dtype(impl) -> tuple[str, str]:
    """IoU 1/3 of two 2 x 2 boxes overlapping by half: float32 and float64 round it differently."""
    o = impl.conventions.width_offset  # two boxes 2 wide and high under the declared box width
    value = float(
        impl.box_iou(np.array([[0.0, 0.0, 2.0 - o, 2.0 - o]]), np.array([[1.0, 0.0, 3.0 - o, 2.0 - o]]))[0, 0]
    )
    exact = 1 / 3
    if value == exact:
        return "float64", f"IoU {value!r} (float64)"
    if value == float(np.float32(2.0) / np.float32(6.0)):
        return "float32", f"IoU {value!r} (float32)"
    raise Undecided(f"IoU of two boxes sharing half their area is {value!r}")


@probe("min_size_bound")
def _min_size(impl) -> tuple[str, str]:
    """A box whose sides are exactly min_size under the declared box width (the box_width probe
    checks that declaration): kept by ``>=``, dropped by ``>``."""
    side = 16.0 - impl.conventions.width_offset
    kept = impl.remove_small_boxes(np.array([[0.0, 0.0, side, side]]), 16.0).tolist()
    return (
        "inclusive" if kept == [0] else "strict"
    ), f"a box with sides of exactly min_size 16 is {'kept' if kept else 'dropped'}"


@probe("decode_clamp")
def _decode_clamp(impl) -> tuple[str, str]:
    """dw = -10 and dw = +6 on either side of C = log(1000/16): clamped below or not, above or not."""
    clamp = math.log(1000.0 / 16)
    o = impl.conventions.width_offset
    anchors = np.array([[0.0, 0.0, 64.0 - o, 64.0 - o]] * 2)
    box = impl.decode_boxes(
        anchors, np.array([[0.0, 0.0, -10.0, -10.0], [0.0, 0.0, 6.0, 6.0]]), (1, 1, 1, 1), clamp
    )
    low, high = (float(box[k, 2] - box[k, 0]) + o for k in (0, 1))
    lower = "symmetric" if math.isclose(low, 64 * math.exp(-clamp), rel_tol=1e-2) else "unclamped"
    upper = "clamped" if math.isclose(high, 64 * math.exp(clamp), rel_tol=1e-2) else "unclamped"
    value = {("unclamped", "clamped"): "upper", ("symmetric", "clamped"): "symmetric"}.get(
        (lower, upper), "none" if (lower, upper) == ("unclamped", "unclamped") else None
    )
    if value is None:
        raise Undecided(f"dw = -10 gives width {low:.3g}, dw = 6 gives {high:.3g}")
    return value, f"a 64-wide box decodes {low:.3g} wide at dw = -10 and {high:.4g} at dw = 6"


@probe("nms_bound")
def _nms_bound(impl) -> tuple[str, str]:
    o = impl.conventions.width_offset  # two 3 x 1 boxes overlapping by 2: IoU exactly 1/2
    boxes = np.array([[0.0, 0.0, 3.0 - o, 1.0 - o], [1.0, 0.0, 4.0 - o, 1.0 - o]])
    kept = impl.nms(boxes, np.array([0.75, 0.25]), 0.5).tolist()
    value = {2: "strict", 1: "inclusive"}.get(len(kept))
    if value is None:
        raise Undecided(f"nms kept {kept} of two boxes")
    return value, f"two boxes of IoU exactly 0.5 at t = 0.5: kept {kept}"


def _one_cell(impl, sizes, ratios, stride=16.0) -> np.ndarray:
    return impl.grid_anchors([[1, 1]], [[stride, stride]], [list(sizes)], [list(ratios)])


@probe("anchor_offset")
def _anchor_offset(impl) -> tuple[str, str]:
    anchor = _one_cell(impl, [32.0], [1.0])[0]
    centre = float(anchor[0] + anchor[2]) / 2
    value = _closest(centre, {"corner": 0.0, "centre": 8.0, "legacy": 7.5}, "centre of cell 0 at stride 16")
    return value, f"cell 0's anchor is centred at x = {centre:g}"


@probe("anchor_rounding")
def _anchor_rounding(impl) -> tuple[str, str]:
    """The width of size 128, ratio 0.5 (under the declared box width): 128 / sqrt(0.5), rounded
    corners (torchvision), or py-faster-rcnn's rounded base sides scaled by 8."""
    o = impl.conventions.width_offset
    anchor = _one_cell(impl, [128.0], [0.5])[0]
    width = float(anchor[2] - anchor[0]) + o
    candidates = {"none": 128 / math.sqrt(0.5), "round-corners": 182.0, "legacy": 184.0}
    value = _closest(width, candidates, "the width of size 128, ratio 0.5", 1e-4)
    if value != "legacy":
        return value, f"width {width:g}"
    # py-faster-rcnn's rounding, half to even or away: a 32-stride base of ratio 0.5 is 45 x 22.5
    tall = _one_cell(impl, [32.0], [0.5], stride=32.0)[0]
    height = float(tall[3] - tall[1]) + o
    value = {22.0: "legacy", 23.0: "legacy-away"}.get(height)
    if value is None:
        raise Undecided(f"a legacy 32-stride anchor of ratio 0.5 is {height:g} high")
    return value, f"width {width:g} at stride 16; height {height:g} for 22.5 at stride 32"


@probe("anchor_order")
def _anchor_order(impl) -> tuple[str, str]:
    anchors = _one_cell(impl, [32.0, 128.0], [0.25, 4.0])
    widths = (anchors[:, 2] - anchors[:, 0]).tolist()
    # ratio-major: (0.25, 32), (0.25, 128), (4, 32), (4, 128): widths 64, 256, 16, 64
    first_two_same_ratio = widths[1] > widths[0] * 2
    order = "ratio-major" if first_two_same_ratio else "size-major"
    return order, f"widths {[round(w) for w in widths]} for sizes (32, 128) x ratios (0.25, 4)"


@probe("rpn_border")
def _rpn_border(impl) -> tuple[str, str]:
    anchors = np.array([[-8.0, 0.0, 24.0, 32.0], [100.0, 100.0, 132.0, 132.0]])
    gt = np.array([[-8.0, 0.0, 24.0, 32.0]])
    labels = impl.match_anchors(anchors, gt, (200.0, 200.0), 0.7, 0.3).labels.tolist()
    value = {1: "keep", -1: "ignore"}.get(int(labels[0]))
    if value is None:
        raise Undecided(f"an anchor crossing the border equal to a GT box is labelled {labels[0]}")
    return value, f"an anchor crossing the left border, equal to the GT, is labelled {labels[0]}"


def _loss_terms(result) -> tuple[float, float]:
    return float(result.classification), float(result.regression)


@probe("rpn_loss_normaliser")
def _rpn_normaliser(impl) -> tuple[str, str]:
    """One sampled positive and no negative: BCE ln 2 over 1, over max(1, 1) + max(0, 1), or 256."""
    logits, sampled = np.zeros(4), np.array([1, -1, -1, -1])
    deltas = targets = np.zeros((4, 4))
    classification, _ = _loss_terms(impl.rpn_loss(logits, deltas, sampled, targets, 4))
    candidates = {"sampled": math.log(2), "sampled-clamped": math.log(2) / 2, "paper": math.log(2) / 256}
    return _closest(classification, candidates, "classification loss"), f"classification {classification:.6g}"


@probe("rpn_smooth_l1_beta")
def _rpn_beta(impl) -> tuple[str, str]:
    sampled = np.array([1])
    _, regression = _loss_terms(
        impl.rpn_loss(np.zeros(1), np.array([[0.05, 0, 0, 0]]), sampled, np.zeros((1, 4)), 1)
    )
    scale = _rpn_regression_scale(impl)
    candidates = {"1/9": 0.5 * 0.05**2 * 9 * scale, "1": 0.5 * 0.05**2 * scale, "0": 0.05 * scale}
    return _closest(
        regression, candidates, "regression loss of one 0.05 error", 1e-3
    ), f"regression {regression:.6g}"


def _rpn_regression_scale(impl) -> float:
    """The regression term's normaliser for one sampled positive at one location, by declaration."""
    return {"paper": 10.0, "sampled-clamped": 0.5}.get(impl.conventions.rpn_loss_normaliser, 1.0)


@probe("rpn_low_quality_floor")
def _rpn_floor(impl) -> tuple[str, str]:
    """A GT whose best anchor has IoU 0.25: promoted by the best-anchor rule, or not (floor 0.3)."""
    labels = impl.match_anchors(
        np.array([[0.0, 0.0, 10.0, 10.0]]), np.array([[0.0, 0.0, 10.0, 40.0]]), (100.0, 100.0), 0.7, 0.3
    ).labels
    value = {1: "0", 0: "0.3"}.get(int(labels[0]))
    if value is None:
        raise Undecided(f"the only anchor of a GT at IoU 0.25 is labelled {labels[0]}")
    return value, f"the best anchor of a GT it overlaps by IoU 0.25 is labelled {labels[0]}"


@probe("rpn_low_quality_match")
def _rpn_low_quality_match(impl) -> tuple[str, str]:
    """An anchor with IoU 0.8 with GT 0 and 0.5 with GT 1, the best anchor of both."""
    result = impl.match_anchors(
        np.array([[0.0, 0.0, 10.0, 10.0], [100.0, 100.0, 110.0, 110.0]]),
        np.array([[0.0, 0.0, 10.0, 8.0], [0.0, 0.0, 10.0, 5.0]]),
        (200.0, 200.0),
        0.9,
        0.3,
    )
    value = {0: "own-best", 1: "last-gt"}.get(int(result.matched_gt[0]))
    if value is None:
        raise Undecided(f"the anchor is matched to {result.matched_gt[0]}")
    return value, f"the best anchor of both GTs (IoU 0.8 and 0.5) is matched to GT {result.matched_gt[0]}"


@probe("proposal_pipeline")
def _proposal_pipeline(impl) -> tuple[str, str]:
    """Two anchors on each of two levels, pre-NMS top 1: one proposal per level, or one in all."""
    if impl.conventions.proposal_anchors == "own-grid":
        raise Unobservable("an implementation that makes its own anchors takes one grid, not two levels")
    anchors = np.array([[0.0, 0.0, 16.0, 16.0], [40.0, 0.0, 56.0, 16.0], [100.0, 100.0, 116.0, 116.0]])
    anchors = np.concatenate([anchors, [[140.0, 100.0, 156.0, 116.0]]])
    result = impl.generate_proposals(
        anchors, np.array([4.0, 3.0, 2.0, 1.0]), np.zeros((4, 4)), np.array([0, 0, 1, 1]), (200.0, 200.0), 1,
        10, 0.7, 0.0,
    )  # fmt: skip
    count = len(result.scores)
    value = {2: "per-level", 1: "global"}.get(count)
    if value is None:
        raise Undecided(f"{count} proposals from two levels with pre-NMS top 1")
    return value, f"{count} proposals from two anchors on each of two levels, pre-NMS top 1"


@probe("proposal_min_size_stage")
def _proposal_min_size_stage(impl) -> tuple[str, str]:
    """The best-scoring anchor decodes below the min size, pre- and post-NMS top 1: no proposal
    (min size after the top-n cut), or the next anchor's (before it). Nine anchors of a 3 x 3
    grid at stride 16 (an own-grid implementation's own anchors)."""
    from detspec.reference.anchors import grid_anchors

    c = impl.conventions
    anchors = grid_anchors(
        (3, 3), 16, [16.0], [1.0], offset=c.anchor_offset, rounding=c.anchor_rounding,
        order=c.anchor_order, convention=c.box_width,
    )  # fmt: skip
    deltas = np.zeros((9, 4))
    deltas[4, 2:] = math.log(0.1)  # the centre anchor, best scored, shrinks to a tenth
    logits = np.where(np.arange(9) == 4, 3.0, 1.0)
    result = impl.generate_proposals(
        anchors, logits, deltas, np.zeros(9, np.int64), (48.0, 48.0), 1, 1, 0.7, 8.0
    )
    count = int(np.sum(np.asarray(result.scores) > 0))
    value = {0: "after-top-n", 1: "before-top-n"}.get(count)
    if value is None:
        raise Undecided(f"{count} proposals")
    return value, f"{count} proposal(s) with a positive score when the best anchor is below min size, top 1"


_SAMPLE = dict(
    num_classes=2, positive_fraction=0.25, fg_threshold=0.5, bg_high=0.5, bg_low=0.0, weights=(1, 1, 1, 1)
)


@probe("roi_gt_candidates")
def _roi_gt_candidates(impl) -> tuple[str, str]:
    sample = impl.sample_rois(
        proposals=np.zeros((0, 4)), gt_boxes=np.array([[10.0, 10.0, 50.0, 50.0]]), gt_labels=_gt_label(impl),
        batch_size=8, seed=0, **_SAMPLE,
    )  # fmt: skip
    count = len(sample.boxes)
    return ("added" if count else "not-added"), f"{count} RoIs from no proposal and one GT box"


def _gt_label(impl) -> np.ndarray:
    return np.array([1 if impl.conventions.roi_background_label == "zero" else 0])


@probe("roi_fill")
def _roi_fill(impl) -> tuple[str, str]:
    proposals = np.array([[100.0, 100.0, 140.0, 140.0]])  # one background candidate
    sample = impl.sample_rois(
        proposals=proposals, gt_boxes=np.array([[10.0, 10.0, 50.0, 50.0]]), gt_labels=_gt_label(impl),
        batch_size=8, seed=0, **_SAMPLE,
    )  # fmt: skip
    count = len(sample.boxes)
    return (
        "repeat-negatives" if count == 8 else "shorter"
    ), f"{count} RoIs with batch 8 from 1 GT and 1 background"


@probe("roi_background_label")
def _roi_background_label(impl) -> tuple[str, str]:
    sample = impl.sample_rois(
        proposals=np.array([[100.0, 100.0, 140.0, 140.0]]), gt_boxes=np.array([[10.0, 10.0, 50.0, 50.0]]),
        gt_labels=_gt_label(impl), batch_size=8, seed=0, **_SAMPLE,
    )  # fmt: skip
    far = [int(label) for box, label in zip(sample.boxes, sample.labels, strict=True) if box[0] >= 100]
    if not far:
        raise Undecided("the background proposal was not sampled")
    value = {0: "zero", 2: "num-classes"}.get(far[0])
    if value is None:
        raise Undecided(f"a background RoI labelled {far[0]} with 2 classes")
    return value, f"a background RoI is labelled {far[0]} (2 object classes)"


@probe("roi_background_low")
def _roi_background_low(impl) -> tuple[str, str]:
    proposals = np.array([[11.0, 10.0, 51.0, 50.0], [45.0, 10.0, 85.0, 50.0]])  # IoU 0.95 and ~0.07
    try:
        sample = impl.sample_rois(
            proposals=proposals, gt_boxes=np.array([[10.0, 10.0, 50.0, 50.0]]), gt_labels=_gt_label(impl),
            batch_size=8, seed=0, **{**_SAMPLE, "bg_low": 0.1},
        )  # fmt: skip
    except ImplementationFailure as error:
        return "zero-only", f"bg_low = 0.1 refused: {error.message[:120]}"
    low = [box for box in sample.boxes.tolist() if box[0] == 45.0]
    return (
        "zero-only" if low else "parameter"
    ), f"a RoI of IoU 0.07 is {'' if low else 'not '}sampled with bg_low 0.1"


@probe("roi_no_gt")
def _roi_no_gt(impl) -> tuple[str, str]:
    """No GT box, one proposal, background band [0.1, 0.5) (an implementation without a lower
    threshold: an empty band [0, 0)): by the thresholds nothing is sampled."""
    low, high = (0.0, 0.0) if impl.conventions.roi_background_low == "zero-only" else (0.1, 0.5)
    sample = impl.sample_rois(
        proposals=np.array([[10.0, 10.0, 50.0, 50.0]]), gt_boxes=np.zeros((0, 4)),
        gt_labels=np.zeros(0, np.int64), batch_size=8, seed=0, **{**_SAMPLE, "bg_low": low, "bg_high": high},
    )  # fmt: skip
    count = len(sample.boxes)
    return ("all-background" if count else "thresholds"), f"{count} RoIs from one proposal and no GT box"


@probe("proposal_anchors")
def _proposal_anchors(impl) -> tuple[str, str]:
    """Two unrelated anchors, not any layer's own grid: taken, or refused."""
    anchors = np.array([[3.0, 5.0, 17.0, 9.0], [50.0, 40.0, 61.0, 77.0]])
    try:
        impl.generate_proposals(
            anchors,
            np.array([1.0, 0.0]),
            np.zeros((2, 4)),
            np.zeros(2, np.int64),
            (100.0, 100.0),
            10,
            10,
            0.7,
            0.0,
        )
    except ImplementationFailure as error:
        return "own-grid", f"anchors that are no grid refused: {error.message[:100]}"
    return "given", "anchors that are no grid are taken"


@probe("roi_smooth_l1_beta")
def _roi_beta(impl) -> tuple[str, str]:
    label = int(_gt_label(impl)[0])
    logits = np.zeros((1, 3))
    boxes = np.zeros((1, 12))
    boxes[0, 4 * label] = 0.05
    _, regression = _loss_terms(impl.fast_rcnn_loss(logits, boxes, np.array([label]), np.zeros((1, 4))))
    candidates = {"1/9": 0.5 * 0.05**2 * 9, "1": 0.5 * 0.05**2, "0": 0.05}
    return _closest(regression, candidates, "box loss of one 0.05 error"), f"box loss {regression:.6g}"


def _pool_one(impl, features, roi, output_size=(1.0, 1.0)) -> np.ndarray:
    return np.asarray(
        impl.multiscale_roi_align(features, np.array([roi]), output_size, 2, (128.0, 128.0)), float
    )


@probe("fpn_level_mapping")
def _fpn_level_mapping(impl) -> tuple[str, str]:
    """A pyramid from P3 (maps constant at their level number): a 112 x 112 RoI is level 3 by
    FPN's eq. (1), and the first map's next level (4) by mmdetection's 56 rule."""
    features = [np.full((1, 128 >> k, 128 >> k), float(k)) for k in (3, 4)]
    value = float(_pool_one(impl, features, [0.0, 0.0, 112.0, 112.0]).ravel()[0])
    return _closest(value, {"canonical": 3.0, "finest-56": 4.0}, "level pooled"), (
        f"a 112 x 112 RoI on maps P3, P4 is pooled from level {value:g}"
    )


@probe("multiscale_alignment")
def _multiscale_alignment(impl) -> tuple[str, str]:
    """One stride-4 map that is its column index: RoI [16, 16, 32, 32] pooled to one cell with two
    samples per side averages columns 5 and 7 (aligned=False) or 4.5 and 6.5 (aligned=True)."""
    ramp = np.broadcast_to(np.arange(32.0), (1, 32, 32)).copy()
    value = float(_pool_one(impl, [ramp], [16.0, 16.0, 32.0, 32.0]).ravel()[0])
    return _closest(value, {"corner": 6.0, "half-pixel": 5.5}, "pooled ramp"), (
        f"the ramp averaged over RoI [16, 16, 32, 32] at stride 4 is {value:g}"
    )


@probe("multiscale_output")
def _multiscale_output(impl) -> tuple[str, str]:
    """A 1 x 2 output: made, or refused."""
    try:
        pooled = _pool_one(impl, [np.ones((1, 32, 32))], [16.0, 16.0, 32.0, 32.0], (1.0, 2.0))
    except ImplementationFailure as error:
        return "square", f"a 1 x 2 output refused: {error.message[:100]}"
    return "any", f"a 1 x 2 output pooled, shape {tuple(pooled.shape)}"


def fingerprint(impl) -> list[Observation]:
    """Every convention, declared against observed."""
    observations = []
    for item in fields(Conventions):
        declared = getattr(impl.conventions, item.name)
        function = PROBES.get(item.name)
        if function is None:
            observations.append(Observation(item.name, declared, None, "no probe"))
            continue
        try:
            value, evidence = function(impl)
        except NotProvided as missing:
            observations.append(Observation(item.name, declared, None, f"not provided: {missing}"))
            continue
        except Unobservable as reason:
            observations.append(Observation(item.name, declared, None, f"cannot be observed: {reason}"))
            continue
        except Undecided as error:
            observations.append(Observation(item.name, declared, None, f"matches no value: {error}", True))
            continue
        except ImplementationFailure as error:
            observations.append(
                Observation(item.name, declared, None, f"the probe failed: {error.message[:160]}")
            )
            continue
        observations.append(Observation(item.name, declared, value, evidence))
    return observations


def mismatches(observations: list[Observation]) -> list[str]:
    """One line per convention whose declaration the fingerprint contradicts (a problem of the run)."""
    return [
        f"convention {o.convention}: declared {o.declared!r}, the fingerprint observes "
        f"{'no value of it' if o.undecided else repr(o.observed)} ({o.evidence})"
        for o in observations
        if not o.agrees
    ]


def suggested_conventions(observations: list[Observation]) -> str:
    """A ``Conventions(...)`` line with every observed value, for a new adapter to start from."""
    values = [f"{o.convention}={o.observed!r}" for o in observations if o.observed is not None]
    return "Conventions(" + ", ".join(values) + ")"
