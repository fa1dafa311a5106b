"""Properties of RPN proposal generation (``spec/proposals.md``)."""

from __future__ import annotations

import numpy as np
from detspec.properties.checks import check_close, fail, tolerance
from detspec.properties.exact import ThresholdOverlaps
from detspec.properties.interface import Conventions
from detspec.properties.registry import Example, Integer, Number, PairField, Rows4, Vector, family, prop
from detspec.properties.registry import Labels as LabelsField
from detspec.properties.strategies.boxes import IOU_THRESHOLDS, integer_boxes
from detspec.reference import boxes as ref_boxes
from detspec.reference import proposals as ref_proposals
from hypothesis import strategies as st


@family
class ProposalInputs(Example):
    """One image: anchors grouped by FPN level, their logits and deltas, the pipeline's settings."""

    anchors: Rows4
    logits: Vector
    deltas: Rows4
    levels: LabelsField
    image_size: PairField
    pre_nms_top_n: Integer
    post_nms_top_n: Integer
    nms_threshold: Number
    min_size: Number


ARGUMENTS = tuple(ProposalInputs.KINDS)


def own_grid(draw, conventions: Conventions) -> tuple[list[list[float]], list[int]]:
    """One level of anchors laid out as a layer that makes its own anchors does (py-faster-rcnn's
    proposal layer, OpenVINO's ``Proposal``): an ``H x W`` grid at one stride, sizes multiples
    of the stride, ratios among (0.5, 1, 2), with the declared anchor conventions."""
    from detspec.reference.anchors import grid_anchors

    stride = draw(st.sampled_from([8, 16, 32]))
    sizes = [
        stride * k for k in draw(st.lists(st.sampled_from([1, 2, 4, 8]), min_size=1, max_size=3, unique=True))
    ]
    ratios = draw(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=1, max_size=3, unique=True))
    feature = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    anchors = grid_anchors(
        feature,
        stride,
        sorted(sizes),
        sorted(ratios),
        offset=conventions.anchor_offset,
        rounding=conventions.anchor_rounding,
        order=conventions.anchor_order,
        convention=conventions.box_width,
    )
    return anchors.tolist(), [0] * len(anchors)


@st.composite
def proposal_inputs(draw, conventions: Conventions, extreme: bool = False, distinct: bool = False):
    """Anchors on 1-3 levels (grouped by level), logits, deltas and the pipeline's settings.
    ``extreme``: huge deltas and infinite logits. ``distinct``: distinct scores. An
    implementation that only takes its own anchors (``proposal_anchors = own-grid``) gets one
    level of its own grid instead of arbitrary anchors."""
    rows, levels = [], []
    if conventions.proposal_anchors == "own-grid":
        rows, levels = own_grid(draw, conventions)
    else:
        for level in range(draw(st.integers(1, 3))):
            boxes = draw(integer_boxes(1 if level == 0 else 0, 10, degenerate=False, huge=False))
            rows += boxes
            levels += [level] * len(boxes)
    count = len(rows)
    if distinct:
        # steps of at most 1/4 within [-8, 8]: distinct, and far from float32's sigmoid saturating
        # to 1 (above ~16.6 every logit scores exactly 1.0 there, and ties would reappear)
        step = min(0.25, 16 / max(count, 1))
        logits = (np.asarray(draw(st.permutations(range(count))), dtype=np.float64) - count / 2) * step
    else:
        logits = (
            np.asarray(draw(st.lists(st.integers(-8, 8), min_size=count, max_size=count)), dtype=np.float64)
            / 4
        )
    # small deltas keep near-duplicate anchors overlapping after decoding (what NMS is for);
    # large ones move and resize boxes by up to e^2
    spread = draw(st.sampled_from([0, 4, 64]))
    size = st.integers(-spread, spread).map(lambda k: k / 32)
    deltas = np.asarray([[draw(size) for _ in range(4)] for _ in range(count)]).reshape(-1, 4)
    if extreme:
        deltas[:, 2:] *= draw(st.sampled_from([1e3, 1e6, -1e6]))
        if count:
            logits[draw(st.integers(0, count - 1))] = draw(st.sampled_from([np.inf, -np.inf]))
    return {
        "anchors": np.asarray(rows, dtype=np.float64).reshape(-1, 4),
        "logits": logits,
        "deltas": deltas,
        "levels": np.asarray(levels, dtype=np.int64),
        "image_size": (float(draw(st.integers(16, 600))), float(draw(st.integers(16, 600)))),
        "pre_nms_top_n": draw(st.integers(1, 12)),
        "post_nms_top_n": draw(st.integers(0, 12)),
        "nms_threshold": draw(IOU_THRESHOLDS),
        "min_size": draw(st.sampled_from([0.0, float(np.float32(1e-3)), 1.0, 8.0, 16.0])),
    }


def _run(impl, example: dict) -> np.ndarray:
    """The implementation's proposals as (K, 5) rows x1, y1, x2, y2, score (this module's own
    layout, the reference's too)."""
    result = impl.generate_proposals(**{name: example[name] for name in ARGUMENTS})
    if len(result.boxes) != len(result.scores):
        fail(
            "proposals.shape",
            f"generate_proposals returned {len(result.boxes)} boxes and {len(result.scores)} scores",
            len(result.boxes),
            len(result.scores),
        )
    return np.concatenate([result.boxes, result.scores[:, None]], axis=1)


def _candidates(impl, example: dict) -> list[np.ndarray]:
    """For each proposal, the anchors it can come from: same decoded-and-clipped box and score."""
    conventions = impl.conventions
    decoded = ref_proposals.decode_and_clip(
        example["anchors"],
        example["deltas"],
        example["image_size"],
        conventions.box_width,
        conventions.decode_clamp,
    )
    with np.errstate(over="ignore"):
        scores = 1.0 / (1.0 + np.exp(-example["logits"]))
    proposals = _run(impl, example)
    tol = tolerance(conventions.dtype)
    found = []
    for row in proposals:
        box_error = np.abs(decoded - row[:4]).max(axis=1) / (1.0 + np.abs(decoded).max(axis=1))
        found.append(np.flatnonzero((box_error <= 10 * tol) & (np.abs(scores - row[4]) <= 10 * tol)))
    return found


@prop(
    "proposals.inside",
    uses=("generate_proposals",),
    given=lambda c: proposal_inputs(c),
    example=ProposalInputs,
)
def proposals_are_finite_and_inside_the_image(impl, **example):
    """Every proposal is finite and lies inside the image."""
    proposals = _run(impl, example)
    height, width = example["image_size"]
    offset = impl.conventions.width_offset
    boxes = proposals[:, :4]
    if not np.all(np.isfinite(boxes)):
        fail("proposals.non-finite", "a proposal is not finite", "finite", proposals)
    low_ok = (boxes[:, :2] >= 0).all() and (boxes[:, 2:] >= boxes[:, :2]).all()
    high_ok = (boxes[:, 2] <= width - offset).all() and (boxes[:, 3] <= height - offset).all()
    if not (low_ok and high_ok):
        fail(
            "proposals.outside-image",
            f"a proposal leaves the image (H, W) = {example['image_size']}",
            "inside",
            proposals,
        )


@prop(
    "proposals.extreme",
    uses=("generate_proposals",),
    given=lambda c: proposal_inputs(c, extreme=True),
    example=ProposalInputs,
)
def extreme_outputs_still_give_boxes_inside_the_image(impl, **example):
    """Huge or hugely negative dw, dh and infinite logits give finite proposals inside the image."""
    proposals_are_finite_and_inside_the_image.check(impl, **example)


@prop(
    "proposals.sorted",
    uses=("generate_proposals",),
    given=lambda c: proposal_inputs(c),
    example=ProposalInputs,
)
def at_most_post_n_proposals_sorted_by_score(impl, **example):
    """At most post_nms_top_n proposals, in order of non-increasing score."""
    proposals = _run(impl, example)
    if len(proposals) > example["post_nms_top_n"]:
        fail(
            "proposals.too-many",
            f"{len(proposals)} proposals for post_nms_top_n = {example['post_nms_top_n']}",
            example["post_nms_top_n"],
            len(proposals),
        )
    if np.any(np.diff(proposals[:, 4]) > 0):
        fail(
            "proposals.unsorted",
            "proposals are not sorted by non-increasing score",
            "non-increasing",
            proposals[:, 4],
        )


@prop(
    "proposals.provenance",
    uses=("generate_proposals",),
    given=lambda c: proposal_inputs(c),
    example=ProposalInputs,
)
def every_proposal_is_a_decoded_clipped_anchor(impl, **example):
    """Every proposal is the decoded and clipped box of an input anchor, with that anchor's score."""
    for index, candidates in enumerate(_candidates(impl, example)):
        if not candidates.size:
            fail(
                "proposals.unexplained",
                f"proposal {index} is not the decoded, clipped box of any anchor with its score",
                "an anchor's decoded box",
                _run(impl, example)[index],
            )


def _at_min_size(c: Conventions) -> dict:
    """Two anchors, sides exactly min_size and one below, under the declared box width."""
    o = c.width_offset
    return {
        "anchors": np.array([[0.0, 0.0, 16.0 - o, 16.0 - o], [40.0, 0.0, 55.0 - o, 15.0 - o]]),
        "logits": np.array([1.0, 2.0]),
        "deltas": np.zeros((2, 4)),
        "levels": np.zeros(2, dtype=np.int64),
        "image_size": (100.0, 100.0),
        "pre_nms_top_n": 2,
        "post_nms_top_n": 2,
        "nms_threshold": 0.7,
        "min_size": 16.0,
    }


@prop(
    "proposals.min-size",
    uses=("generate_proposals",),
    given=lambda c: proposal_inputs(c),
    example=ProposalInputs,
    examples=lambda c: [] if c.proposal_anchors == "own-grid" else [_at_min_size(c)],
)
def proposals_satisfy_the_min_size(impl, **example):
    """Every proposal has both sides >= min_size (> for the strict bound)."""
    proposals = _run(impl, example)
    offset = impl.conventions.width_offset
    sides = np.concatenate([proposals[:, 2] - proposals[:, 0], proposals[:, 3] - proposals[:, 1]]) + offset
    strict = impl.conventions.min_size_bound == "strict"
    bad = sides <= example["min_size"] if strict else sides < example["min_size"]
    if np.any(bad):
        fail(
            "proposals.below-min-size",
            f"a proposal has a side of {float(sides[bad][0])} below min_size {example['min_size']}",
            example["min_size"],
            float(sides[bad][0]),
        )


@prop(
    "proposals.nms",
    uses=("generate_proposals",),
    given=lambda c: proposal_inputs(c),
    example=ProposalInputs,
    examples=lambda c: (
        []
        if c.proposal_anchors == "own-grid"
        else [
            {  # two identical anchors, no regression: NMS keeps one of the two identical proposals
                "anchors": np.array([[10.0, 10.0, 50.0, 50.0], [10.0, 10.0, 50.0, 50.0]]),
                "logits": np.array([1.0, 0.5]),
                "deltas": np.zeros((2, 4)),
                "levels": np.zeros(2, dtype=np.int64),
                "image_size": (100.0, 100.0),
                "pre_nms_top_n": 5,
                "post_nms_top_n": 5,
                "nms_threshold": 0.7,
                "min_size": 0.0,
            }
        ]
    ),
)
def proposals_of_a_level_do_not_overlap_above_threshold(impl, **example):
    """No two proposals that surely come from the same level (any two, for the global pipeline)
    overlap above the NMS threshold."""
    proposals = _run(impl, example)
    sources = _candidates(impl, example)
    overlaps = ThresholdOverlaps(
        proposals[:, :4],
        example["nms_threshold"],
        impl.conventions.width_offset,
        tolerance(impl.conventions.dtype),
    )
    level_sets = [set(example["levels"][s].tolist()) for s in sources]
    for i in range(len(proposals)):
        for j in range(i + 1, len(proposals)):
            same = impl.conventions.proposal_pipeline == "global" or (
                len(level_sets[i]) == 1 and level_sets[i] == level_sets[j]
            )
            if same and overlaps.clearly_above(i, j):
                fail(
                    "proposals.kept-overlapping",
                    f"proposals {i} and {j} overlap with IoU {overlaps.approx[i, j]:.4f} above the "
                    f"NMS threshold {example['nms_threshold']}",
                    example["nms_threshold"],
                    float(overlaps.approx[i, j]),
                )


@prop(
    "proposals.post-n-prefix",
    uses=("generate_proposals",),
    given=lambda c: st.tuples(proposal_inputs(c), st.integers(0, 12)).map(
        lambda t: {**t[0], "post_nms_top_n": min(t[0]["post_nms_top_n"], t[1])}
    ),
    example=ProposalInputs,
)
def smaller_post_n_is_a_prefix(impl, **example):
    """The proposals for a smaller post_nms_top_n are the first ones for a larger one."""
    small = _run(impl, example)
    large = _run(impl, {**example, "post_nms_top_n": example["post_nms_top_n"] + 5})
    check_close(
        large[: len(small)],
        small,
        0.0,
        "proposals for post_n vs the first post_n for post_n + 5",
        "proposals.post-n-prefix",
    )


def _reference(impl, example: dict) -> np.ndarray:
    c = impl.conventions
    return ref_proposals.generate_proposals(
        *(example[name] for name in ARGUMENTS),
        c.proposal_pipeline,
        c.proposal_min_size_stage,
        c.min_size_bound,
        c.box_width,
        c.decode_clamp,
    )


@prop(
    "proposals.pipeline",
    uses=("generate_proposals",),
    given=lambda c: proposal_inputs(c, distinct=True),
    example=ProposalInputs,
)
def proposals_follow_the_declared_pipeline(impl, **example):
    """With distinct scores, the proposals are exactly those of the declared pipeline (order of
    top-N, min size and NMS; per-level or global), unless an IoU or a side lies within the
    tolerance of its threshold -- then the example decides nothing."""
    expected = _reference(impl, example)
    actual = _run(impl, example)
    conventions = impl.conventions
    band = tolerance(conventions.dtype)
    decoded = ref_proposals.decode_and_clip(
        example["anchors"],
        example["deltas"],
        example["image_size"],
        conventions.box_width,
        conventions.decode_clamp,
    )
    sides = np.concatenate([decoded[:, 2] - decoded[:, 0], decoded[:, 3] - decoded[:, 1]])
    iou = ref_boxes.pairwise_iou(decoded, decoded, conventions.width_offset)
    if (np.abs(sides + conventions.width_offset - example["min_size"]) <= band * (1 + sides)).any() or (
        np.abs(iou - example["nms_threshold"]) <= band
    ).any():
        return
    if actual.shape != expected.shape:
        fail(
            "proposals.pipeline-count",
            f"{len(actual)} proposals, the declared pipeline gives {len(expected)}",
            expected[:, 4],
            actual[:, 4],
        )
    check_close(
        actual,
        expected,
        10 * band * (1 + np.abs(expected)),
        "proposals vs the declared pipeline",
        "proposals.pipeline",
    )


def paper_scale_example(seed: int = 0, conventions: Conventions | None = None) -> dict:
    """The paper's scale: 62 x 37 x 9 = 20,646 anchors (sizes 128-512, ratios 0.5-2, stride 16),
    random logits and small random deltas, pre-NMS 12,000, post-NMS 2,000, NMS 0.7, min size 16.
    The anchors follow the declared anchor conventions for an implementation that only takes its
    own grid, and are centred otherwise."""
    from detspec.reference.anchors import grid_anchors

    rng = np.random.default_rng(seed)
    own = conventions is not None and conventions.proposal_anchors == "own-grid"
    anchors = grid_anchors(
        (37, 62),
        16,
        (128, 256, 512),
        (0.5, 1.0, 2.0),
        offset=conventions.anchor_offset if own else "centre",
        rounding=conventions.anchor_rounding if own else "none",
        order=conventions.anchor_order if own else "ratio-major",
        convention=conventions.box_width if own else "continuous",
    )
    return {
        "anchors": anchors,
        "logits": rng.normal(size=len(anchors)).astype(np.float32).astype(np.float64),
        "deltas": rng.normal(0, 0.2, size=(len(anchors), 4)).astype(np.float32).astype(np.float64),
        "levels": np.zeros(len(anchors), dtype=np.int64),
        "image_size": (592.0, 992.0),
        "pre_nms_top_n": 12000,
        "post_nms_top_n": 2000,
        "nms_threshold": 0.7,
        "min_size": 16.0,
    }


@prop(
    "proposals.scale",
    uses=("generate_proposals",),
    given=lambda c: st.just(c).map(lambda conventions: paper_scale_example(0, conventions)),
    example=ProposalInputs,
)
def paper_scale_proposals_keep_the_invariants(impl, **example):
    """At the paper's scale (20,646 anchors, 12,000 / 2,000): finite and inside the image, sorted,
    at most 2,000, every side >= 16, and as many proposals as the declared pipeline keeps (+-1 %:
    float32 and float64 may settle a few IoUs at 0.7 differently)."""
    proposals_are_finite_and_inside_the_image.check(impl, **example)
    at_most_post_n_proposals_sorted_by_score.check(impl, **example)
    proposals_satisfy_the_min_size.check(impl, **example)
    count, expected = len(_run(impl, example)), len(_reference(impl, example))
    if abs(count - expected) > 0.01 * expected:
        fail(
            "proposals.scale-count",
            f"{count} proposals at the paper's scale; the declared pipeline keeps {expected}",
            expected,
            count,
        )
