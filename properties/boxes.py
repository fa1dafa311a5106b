"""Properties of the box primitives (``spec/boxes.md``).

Oracles, in order of preference: exact rational arithmetic (``properties.exact``) for anything
decided at a threshold, the float64 reference within the declared tolerance for values, and
metamorphic relations (translation, scaling, permutation, re-application).
"""

from __future__ import annotations

import numpy as np
from detspec.properties.checks import (
    check_close,
    check_equal,
    check_indices,
    check_same_indices,
    fail,
    relative_scale,
    tolerance,
)
from detspec.properties.exact import ThresholdOverlaps
from detspec.properties.interface import Conventions, ImplementationRaised
from detspec.properties.registry import (
    Example,
    Integer,
    Matrix,
    Number,
    PairField,
    Rows4,
    Text,
    Vector,
    Weights,
    family,
    prop,
)
from detspec.properties.registry import Labels as LabelsField
from detspec.properties.strategies.boxes import (
    CODER_WEIGHTS,
    DECODE_CLAMPS,
    DEFAULT_CLAMP,
    IMAGE_SIZES,
    IOU_THRESHOLDS,
    SCALE_EXPONENTS,
    box_arrays,
    degenerate_box_arrays,
    integer_boxes,
    pair_at_iou,
    score_vectors,
    to_array,
)
from detspec.reference import boxes as ref
from hypothesis import strategies as st


@family
class BoxSet(Example):
    boxes: Rows4


@family
class BoxPair(Example):
    boxes1: Rows4
    boxes2: Rows4


@family
class MovedBoxPair(Example):
    boxes1: Rows4
    boxes2: Rows4
    offset: PairField


@family
class ScaledBoxPair(Example):
    boxes1: Rows4
    boxes2: Rows4
    factor: Number


@family
class BoxesInImage(Example):
    boxes: Rows4
    image_size: PairField


@family
class BoxesAndMinSize(Example):
    boxes: Rows4
    min_size: Number


@family
class CoderPairs(Example):
    anchors: Rows4
    targets: Rows4
    weights: Weights


@family
class MovedCoderPairs(Example):
    anchors: Rows4
    targets: Rows4
    weights: Weights
    offset: PairField
    factor: Number


@family
class DecodeInputs(Example):
    anchors: Rows4
    deltas: Rows4
    weights: Weights
    clamp: Number


@family
class NmsInputs(Example):
    boxes: Rows4
    scores: Vector
    iou_threshold: Number


@family
class BatchedNmsInputs(Example):
    boxes: Rows4
    scores: Vector
    classes: LabelsField
    iou_threshold: Number


@family
class InvalidBoxes(Example):
    boxes: Matrix
    corruption: Text


def _continuous_only(conventions: Conventions) -> str | None:
    if conventions.box_width != "continuous":
        return "holds only in the continuous box convention"
    return None


@st.composite
def _two_box_sets(draw, degenerate_first: bool = True):
    """Two box sets on one grid; only the first may hold degenerate boxes (no zero unions)."""
    exponent = draw(SCALE_EXPONENTS)
    return {
        "boxes1": draw(box_arrays(0, 6, degenerate=degenerate_first, exponent=exponent)),
        "boxes2": draw(box_arrays(0, 6, degenerate=False, exponent=exponent)),
    }


def _two_sets(_conventions: Conventions):
    return _two_box_sets()


def _iou_edge_examples(_conventions: Conventions):
    touching = np.array([[0.0, 0.0, 10.0, 10.0]]), np.array([[10.0, 0.0, 20.0, 10.0]])
    nested = np.array([[0.0, 0.0, 10.0, 10.0]]), np.array([[2.0, 2.0, 4.0, 4.0]])
    empty = np.zeros((0, 4)), np.array([[0.0, 0.0, 1.0, 1.0]])
    return [{"boxes1": a, "boxes2": b} for a, b in (touching, nested, empty, empty[::-1])]


# --- area -------------------------------------------------------------------------------------


@prop(
    "boxes.area.formula",
    uses=("box_area",),
    given=lambda _c: box_arrays().map(lambda b: {"boxes": b}),
    example=BoxSet,
    examples=lambda _c: [{"boxes": np.zeros((0, 4))}, {"boxes": np.array([[3.0, 3.0, 3.0, 9.0]])}],
)
def area_is_width_times_height(impl, boxes):
    """box_area equals w * h under the declared width convention."""
    actual = impl.box_area(boxes)
    expected = ref.box_area(boxes, impl.conventions.box_width)
    check_close(actual, expected, tolerance(impl.conventions.dtype) * expected, "box_area", "area.value")


# --- IoU --------------------------------------------------------------------------------------


@prop(
    "boxes.iou.formula",
    uses=("box_iou",),
    given=_two_sets,
    example=BoxPair,
    examples=_iou_edge_examples,
)
def iou_matches_formula(impl, boxes1, boxes2):
    """box_iou equals intersection / union (declared convention), shape (N, M)."""
    actual = impl.box_iou(boxes1, boxes2)
    expected = ref.box_iou(boxes1, boxes2, impl.conventions.box_width)
    check_close(actual, expected, tolerance(impl.conventions.dtype), "box_iou", "iou.value")


@prop(
    "boxes.iou.zero-union",
    uses=("box_iou",),
    given=lambda _c: st.tuples(degenerate_box_arrays(), degenerate_box_arrays()).map(
        lambda ab: {"boxes1": ab[0], "boxes2": ab[1]}
    ),
    example=BoxPair,
    examples=lambda _c: [{"boxes1": np.zeros((1, 4)), "boxes2": np.zeros((1, 4))}],
    applies=_continuous_only,
)
def iou_of_zero_area_pair_is_zero(impl, boxes1, boxes2):
    """Two zero-area boxes have IoU 0, never NaN."""
    actual = impl.box_iou(boxes1, boxes2)
    check_equal(actual, np.zeros((len(boxes1), len(boxes2))), "box_iou of zero-area boxes", "iou.zero-union")


@prop("boxes.iou.range", uses=("box_iou",), given=_two_sets, example=BoxPair)
def iou_lies_in_unit_interval(impl, boxes1, boxes2):
    """Every IoU lies in [0, 1] (within the declared tolerance)."""
    actual = impl.box_iou(boxes1, boxes2)
    tol = tolerance(impl.conventions.dtype)
    if not np.all(np.isfinite(actual)):
        fail("iou.non-finite", "box_iou returned a non-finite value", "finite", actual)
    check_close(actual, np.clip(actual, 0.0, 1.0), tol, "box_iou outside [0, 1]", "iou.range")


@prop(
    "boxes.iou.self",
    uses=("box_iou",),
    given=lambda _c: box_arrays(1, 6, degenerate=False).map(lambda b: {"boxes": b}),
    example=BoxSet,
)
def iou_of_box_with_itself_is_one(impl, boxes):
    """iou(b, b) = 1 for boxes of positive area."""
    diagonal = np.diagonal(impl.box_iou(boxes, boxes))
    check_close(diagonal, np.ones(len(boxes)), tolerance(impl.conventions.dtype), "iou(b, b)", "iou.self")


@prop("boxes.iou.symmetric", uses=("box_iou",), given=_two_sets, example=BoxPair)
def iou_is_symmetric(impl, boxes1, boxes2):
    """box_iou(A, B) equals box_iou(B, A) transposed."""
    forward = impl.box_iou(boxes1, boxes2)
    backward = impl.box_iou(boxes2, boxes1)
    check_close(
        forward, backward.T, tolerance(impl.conventions.dtype), "box_iou(A, B) vs (B, A)ᵀ", "iou.asymmetric"
    )


@st.composite
def _sets_and_offset(draw):
    exponent = draw(SCALE_EXPONENTS)
    return {
        "boxes1": draw(box_arrays(1, 6, exponent=exponent)),
        "boxes2": draw(box_arrays(1, 6, degenerate=False, exponent=exponent)),
        "offset": [draw(st.integers(-1024, 1024)) * 2.0**exponent for _ in range(2)],
    }


@prop(
    "boxes.iou.translation-invariant",
    uses=("box_iou",),
    given=lambda _c: _sets_and_offset(),
    example=MovedBoxPair,
)
def iou_is_translation_invariant(impl, boxes1, boxes2, offset):
    """Translating both sets by the same offset leaves every IoU unchanged."""
    shift = np.array([offset[0], offset[1], offset[0], offset[1]])
    before = impl.box_iou(boxes1, boxes2)
    after = impl.box_iou(boxes1 + shift, boxes2 + shift)
    check_close(after, before, tolerance(impl.conventions.dtype), "IoU after translation", "iou.translation")


@prop(
    "boxes.iou.scale-invariant",
    uses=("box_iou",),
    given=lambda _c: st.tuples(_two_box_sets(), st.integers(-8, 8)).map(
        lambda pair: {**pair[0], "factor": 2.0 ** pair[1]}
    ),
    example=ScaledBoxPair,
    applies=_continuous_only,
)
def iou_is_scale_invariant(impl, boxes1, boxes2, factor):
    """Scaling both sets by a power of two leaves every IoU unchanged (continuous convention)."""
    before = impl.box_iou(boxes1, boxes2)
    after = impl.box_iou(boxes1 * factor, boxes2 * factor)
    check_close(after, before, tolerance(impl.conventions.dtype), "IoU after scaling", "iou.scale")


# --- clipping ---------------------------------------------------------------------------------


def _boxes_and_image(_conventions: Conventions):
    return st.tuples(box_arrays(exponent=0), IMAGE_SIZES).map(
        lambda pair: {"boxes": pair[0], "image_size": pair[1]}
    )


def _clip_examples(_conventions: Conventions):
    outside = np.array([[-50.0, -40.0, -10.0, -5.0], [700.0, 10.0, 900.0, 30.0]])
    return [
        {"boxes": outside, "image_size": (480.0, 640.0)},
        {"boxes": np.array([[-5.0, -5.0, 300.0, 100.0]]), "image_size": (50.0, 200.0)},
        {"boxes": np.zeros((0, 4)), "image_size": (1.0, 1.0)},
    ]


@prop(
    "boxes.clip.clamp",
    uses=("clip_boxes_to_image",),
    given=_boxes_and_image,
    example=BoxesInImage,
    examples=_clip_examples,
)
def clip_clamps_each_coordinate(impl, boxes, image_size):
    """Clipping clamps x to [0, W] and y to [0, H] (legacy: W - 1, H - 1), exactly."""
    actual = impl.clip_boxes_to_image(boxes, image_size)
    expected = ref.clip_boxes_to_image(boxes, image_size, impl.conventions.box_width)
    check_equal(actual, expected, f"clip_boxes_to_image(image_size=(H, W)={image_size})", "clip.value")


@prop(
    "boxes.clip.idempotent",
    uses=("clip_boxes_to_image",),
    given=_boxes_and_image,
    example=BoxesInImage,
)
def clip_is_idempotent(impl, boxes, image_size):
    """Clipping clipped boxes changes nothing."""
    once = impl.clip_boxes_to_image(boxes, image_size)
    twice = impl.clip_boxes_to_image(once, image_size)
    check_equal(twice, once, "clip(clip(boxes))", "clip.not-idempotent")


# --- removing small boxes ---------------------------------------------------------------------


@st.composite
def _boxes_and_min_size(draw):
    boxes = draw(box_arrays(exponent=draw(st.integers(-4, 4))))
    sides = np.concatenate([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]]).tolist()
    fixed = [0.0, 16.0, float(np.float32(1e-3)), 1.0]
    min_size = draw(st.sampled_from(sides + fixed) if sides else st.sampled_from(fixed))
    return {"boxes": boxes, "min_size": float(min_size)}


@prop(
    "boxes.remove-small.bound",
    uses=("remove_small_boxes",),
    given=lambda _c: _boxes_and_min_size(),
    example=BoxesAndMinSize,
    examples=lambda _c: [
        {"boxes": np.array([[0.0, 0.0, 16.0, 20.0], [0.0, 0.0, 15.0, 20.0]]), "min_size": 16.0},
        {"boxes": np.array([[5.0, 5.0, 5.0, 9.0]]), "min_size": 0.0},
    ],
)
def remove_small_keeps_sides_at_least_min_size(impl, boxes, min_size):
    """Exactly the boxes with both sides >= min_size (or > for the strict convention) are kept."""
    actual = impl.remove_small_boxes(boxes, min_size)
    check_indices(actual, len(boxes), "remove_small_boxes", "remove-small")
    conventions = impl.conventions
    expected = ref.remove_small_boxes(boxes, min_size, conventions.box_width, conventions.min_size_bound)
    check_same_indices(
        actual,
        expected,
        f"kept indices (min_size={min_size}, {conventions.min_size_bound})",
        "remove-small.kept",
    )


# --- encoding and decoding --------------------------------------------------------------------


@st.composite
def _anchor_target_pairs(draw, exponent: int | None = None):
    if exponent is None:
        exponent = draw(SCALE_EXPONENTS)
    count = draw(st.integers(0, 6))
    return {
        "anchors": draw(box_arrays(count, count, degenerate=False, exponent=exponent)),
        "targets": draw(box_arrays(count, count, degenerate=False, exponent=exponent)),
        "weights": draw(CODER_WEIGHTS),
    }


def _relative_tolerance(impl, values: np.ndarray) -> np.ndarray:
    return tolerance(impl.conventions.dtype) * (1.0 + np.abs(values))


@prop(
    "boxes.encode.formula",
    uses=("encode_boxes",),
    given=lambda _c: _anchor_target_pairs(),
    example=CoderPairs,
    examples=lambda _c: [
        {
            "anchors": np.array([[0.0, 0.0, 16.0, 8.0]]),
            "targets": np.array([[0.0, 0.0, 16.0, 8.0]]),
            "weights": (10.0, 10.0, 5.0, 5.0),
        },
    ],
)
def encode_matches_formula(impl, anchors, targets, weights):
    """Deltas are (wx dx/aw, wy dy/ah, ww log(gw/aw), wh log(gh/ah))."""
    actual = impl.encode_boxes(anchors, targets, weights)
    expected = ref.encode_boxes(anchors, targets, weights, impl.conventions.box_width)
    check_close(actual, expected, _relative_tolerance(impl, expected), "encode_boxes", "encode.value")


@prop(
    "boxes.encode.weights",
    uses=("encode_boxes",),
    given=lambda _c: _anchor_target_pairs(),
    example=CoderPairs,
)
def encode_weights_scale_columns(impl, anchors, targets, weights):
    """Weighted deltas are the unit-weight deltas times the weights, column by column."""
    weighted = impl.encode_boxes(anchors, targets, weights)
    unit = impl.encode_boxes(anchors, targets, (1.0, 1.0, 1.0, 1.0))
    expected = unit * np.asarray(weights)
    check_close(weighted, expected, _relative_tolerance(impl, expected), "weighted deltas", "encode.weights")


@st.composite
def _pairs_and_move(draw):
    """Anchor/target pairs with an offset on their own grid and a power-of-two factor (exact)."""
    exponent = draw(SCALE_EXPONENTS)
    grid = 2.0**exponent
    return {
        **draw(_anchor_target_pairs(exponent)),
        "offset": (draw(st.integers(-512, 512)) * grid, draw(st.integers(-512, 512)) * grid),
        "factor": 2.0 ** draw(st.integers(-6, 6)),
    }


@prop(
    "boxes.encode.similarity-invariant",
    uses=("encode_boxes",),
    given=lambda _c: _pairs_and_move(),
    example=MovedCoderPairs,
    applies=_continuous_only,
)
def encode_is_similarity_invariant(impl, anchors, targets, weights, offset, factor):
    """Translating and scaling anchor and target together leaves the deltas unchanged."""
    shift = np.array([offset[0], offset[1], offset[0], offset[1]])
    before = impl.encode_boxes(anchors, targets, weights)
    after = impl.encode_boxes((anchors + shift) * factor, (targets + shift) * factor, weights)
    check_close(
        after, before, _relative_tolerance(impl, before), "deltas after moving both", "encode.similarity"
    )


def _sizes(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]


@st.composite
def _anchors_and_deltas(draw, side: str = "any"):
    """Anchors with deltas; ``side`` puts dw/dh above the clamp, below minus it, or anywhere."""
    exponent = draw(SCALE_EXPONENTS)
    count = draw(st.integers(0, 6))
    anchors = draw(box_arrays(count, count, degenerate=False, exponent=exponent))
    weights = draw(CODER_WEIGHTS)
    clamp = draw(DECODE_CLAMPS)
    centre = st.integers(-512, 512).map(lambda k: k / 64)
    if side == "above":
        size = st.one_of(
            st.just(0.0), st.integers(1, 4096).map(lambda k: k / 64), st.sampled_from([1e3, 1e10, 1e30])
        ).map(lambda x: clamp + x)
    elif side == "below":
        size = st.one_of(st.integers(1, 4096).map(lambda k: k / 64), st.sampled_from([1e3, 1e10, 1e30])).map(
            lambda x: -clamp - x
        )
    else:
        size = st.integers(-640, 640).map(lambda k: k / 64)
    rows = [[draw(centre), draw(centre), draw(size), draw(size)] for _ in range(count)]
    deltas = np.asarray(rows, dtype=np.float64).reshape(-1, 4) * np.asarray(weights)
    return {"anchors": anchors, "deltas": deltas, "weights": weights, "clamp": clamp}


def _decode_tolerance(impl, anchors, deltas, weights, expected) -> np.ndarray:
    """Relative tolerance against the magnitudes a decode mixes: centre, offset and size."""
    widths, heights = _sizes(anchors)
    offsets = np.abs(deltas[:, :2] / np.asarray(weights[:2])) * np.stack([widths, heights], 1)
    return tolerance(impl.conventions.dtype) * relative_scale(anchors, expected, offsets)


def _expected_decode(impl, anchors, deltas, weights, clamp):
    return ref.decode_boxes(
        anchors, deltas, weights, clamp, impl.conventions.decode_clamp, impl.conventions.box_width
    )


@prop(
    "boxes.decode.formula",
    uses=("decode_boxes",),
    given=lambda _c: _anchors_and_deltas(),
    example=DecodeInputs,
    examples=lambda _c: [
        {
            "anchors": np.array([[0.0, 0.0, 16.0, 16.0]]),
            "deltas": np.zeros((1, 4)),
            "weights": (1.0, 1.0, 1.0, 1.0),
            "clamp": DEFAULT_CLAMP,
        },
    ],
)
def decode_matches_formula(impl, anchors, deltas, weights, clamp):
    """decode gives centre (dx aw + ax, dy ah + ay) and size (aw e^dw, ah e^dh)."""
    actual = impl.decode_boxes(anchors, deltas, weights, clamp)
    expected = _expected_decode(impl, anchors, deltas, weights, clamp)
    tol = _decode_tolerance(impl, anchors, deltas, weights, expected)
    check_close(actual, expected, tol, "decode_boxes", "decode.value")


@st.composite
def _encodable_pairs(draw):
    """Anchor/target pairs whose size ratios stay below exp(clamp), so decode can invert."""
    pairs = draw(_anchor_target_pairs())
    anchors, targets, weights = pairs["anchors"], pairs["targets"], pairs["weights"]
    ratios = np.abs(np.log(np.stack(_sizes(targets), 1) / np.stack(_sizes(anchors), 1)))
    inside = np.all(ratios < DEFAULT_CLAMP, axis=1)
    return {"anchors": anchors[inside], "targets": targets[inside], "weights": weights}


@prop(
    "boxes.decode.roundtrip",
    uses=("encode_boxes", "decode_boxes"),
    given=lambda _c: _encodable_pairs(),
    example=CoderPairs,
)
def decode_inverts_encode(impl, anchors, targets, weights):
    """decode(a, encode(a, g)) = g when the size ratios are inside the clamp."""
    deltas = impl.encode_boxes(anchors, targets, weights)
    decoded = impl.decode_boxes(anchors, deltas, weights, DEFAULT_CLAMP)
    tol = tolerance(impl.conventions.dtype) * relative_scale(anchors, targets) * 4
    check_close(decoded, targets, tol, "decode(encode(target))", "decode.roundtrip")


@prop(
    "boxes.decode.clamp-upper",
    uses=("decode_boxes",),
    given=lambda _c: _anchors_and_deltas("above"),
    example=DecodeInputs,
)
def decode_clamps_large_size_deltas(impl, anchors, deltas, weights, clamp):
    """Any unweighted dw, dh above the clamp C decodes like dw = dh = C, to a finite box."""
    actual = impl.decode_boxes(anchors, deltas, weights, clamp)
    if not np.all(np.isfinite(actual)):
        fail(
            "decode.non-finite", "decode_boxes returned a non-finite box for finite deltas", "finite", actual
        )
    at_clamp = deltas.copy()
    at_clamp[:, 2:] = clamp * np.asarray(weights[2:])
    expected = ref.decode_boxes(anchors, at_clamp, weights, clamp, "upper", impl.conventions.box_width)
    check_close(
        actual,
        expected,
        _decode_tolerance(impl, anchors, deltas, weights, expected),
        f"decode with dw, dh above the clamp {clamp}",
        "decode.clamp-upper",
    )


@prop(
    "boxes.decode.clamp-lower",
    uses=("decode_boxes",),
    given=lambda _c: _anchors_and_deltas("below"),
    example=DecodeInputs,
)
def decode_lower_side_follows_convention(impl, anchors, deltas, weights, clamp):
    """Below -C: no clamp (``upper`` convention) or clamped to -C (``symmetric``)."""
    actual = impl.decode_boxes(anchors, deltas, weights, clamp)
    expected = _expected_decode(impl, anchors, deltas, weights, clamp)
    check_close(
        actual,
        expected,
        _decode_tolerance(impl, anchors, deltas, weights, expected),
        f"decode with dw, dh below -{clamp} ({impl.conventions.decode_clamp} convention)",
        "decode.clamp-lower",
    )


# --- NMS --------------------------------------------------------------------------------------


@st.composite
def _nms_inputs(draw, max_boxes: int = 16):
    boxes = draw(box_arrays(0, max_boxes))
    return {
        "boxes": boxes,
        "scores": draw(score_vectors(len(boxes))),
        "iou_threshold": draw(IOU_THRESHOLDS),
    }


def _nms_given(_conventions: Conventions):
    return _nms_inputs()


def _nms_examples(_conventions: Conventions):
    same = np.array([[0.0, 0.0, 10.0, 10.0]] * 3)
    return [
        {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "iou_threshold": 0.7},
        {"boxes": same[:1], "scores": np.array([0.5]), "iou_threshold": 0.7},
        {"boxes": same, "scores": np.array([0.5, 0.5, 0.5]), "iou_threshold": 0.7},
        {"boxes": same, "scores": np.array([0.25, 0.5, 0.75]), "iou_threshold": 1.0},
    ]


def _overlaps(impl, boxes, iou_threshold) -> ThresholdOverlaps:
    conventions = impl.conventions
    return ThresholdOverlaps(
        boxes,
        iou_threshold,
        conventions.width_offset,
        tolerance(conventions.dtype),
        inclusive=conventions.nms_bound == "inclusive",
    )


@prop("boxes.nms.output", uses=("nms",), given=_nms_given, example=NmsInputs, examples=_nms_examples)
def nms_returns_distinct_indices(impl, boxes, scores, iou_threshold):
    """NMS returns distinct, in-range indices; [] for no boxes and [0] for one."""
    keep = impl.nms(boxes, scores, iou_threshold)
    check_indices(keep, len(boxes), "nms", "nms")
    if len(boxes) <= 1:
        check_same_indices(keep, np.arange(len(boxes)), "nms of at most one box", "nms.at-most-one-box")


@prop("boxes.nms.sorted", uses=("nms",), given=_nms_given, example=NmsInputs, examples=_nms_examples)
def nms_keeps_score_order(impl, boxes, scores, iou_threshold):
    """Kept indices come in order of non-increasing score."""
    keep = impl.nms(boxes, scores, iou_threshold)
    check_indices(keep, len(boxes), "nms", "nms")
    kept_scores = scores[keep]
    if np.any(np.diff(kept_scores) > 0):
        fail(
            "nms.unsorted",
            "nms: kept boxes are not sorted by non-increasing score",
            "non-increasing",
            kept_scores,
        )


@prop(
    "boxes.nms.separation",
    uses=("nms",),
    given=_nms_given,
    example=NmsInputs,
    examples=_nms_examples,
)
def nms_kept_boxes_do_not_overlap_above_threshold(impl, boxes, scores, iou_threshold):
    """No two kept boxes have IoU above the threshold (exact IoU, tolerance band at t)."""
    keep = impl.nms(boxes, scores, iou_threshold)
    check_indices(keep, len(boxes), "nms", "nms")
    overlaps = _overlaps(impl, boxes, iou_threshold)
    _check_separated(overlaps, keep, np.arange(len(boxes)), "nms", "nms")


def _check_separated(overlaps, keep, names, what, area) -> None:
    """No two kept boxes overlap clearly above the threshold (``<area>.kept-overlapping``);
    ``names`` maps local indices to the indices the caller knows them by."""
    for a, i in enumerate(keep):
        for j in keep[a + 1 :]:
            if overlaps.clearly_above(i, j):
                fail(
                    f"{area}.kept-overlapping",
                    f"{what} kept boxes {names[i]} and {names[j]} whose IoU "
                    f"{float(overlaps.approx[i, j]):.6g} {'reaches' if overlaps.inclusive else 'exceeds'} "
                    f"the threshold {overlaps.threshold}",
                    f"IoU <= {overlaps.threshold}",
                    float(overlaps.approx[i, j]),
                )


def _check_suppressions_explained(overlaps, keep, scores, names, what, area) -> None:
    """Every dropped box overlaps a kept box of higher-or-equal score
    (``<area>.suppressed-without-cause``); ``names`` maps local indices to the indices the caller
    knows them by."""
    kept = set(keep.tolist())
    for j in range(len(scores)):
        if j in kept:
            continue
        if not any(scores[i] >= scores[j] and overlaps.possibly_above(i, j) for i in kept):
            fail(
                f"{area}.suppressed-without-cause",
                f"{what}: box {names[j]} (score {scores[j]}) was dropped but no kept box with a "
                f"higher-or-equal score overlaps it above the threshold {overlaps.threshold}",
                f"box {names[j]} kept",
                sorted(int(names[i]) for i in kept),
            )


@prop(
    "boxes.nms.maximal",
    uses=("nms",),
    given=_nms_given,
    example=NmsInputs,
    examples=_nms_examples,
)
def nms_suppression_is_explained(impl, boxes, scores, iou_threshold):
    """Every dropped box overlaps, above t, a kept box of higher-or-equal score."""
    keep = impl.nms(boxes, scores, iou_threshold)
    check_indices(keep, len(boxes), "nms", "nms")
    overlaps = _overlaps(impl, boxes, iou_threshold)
    _check_suppressions_explained(overlaps, keep, scores, np.arange(len(boxes)), "nms", "nms")


@prop(
    "boxes.nms.at-threshold",
    uses=("nms",),
    given=lambda c: st.tuples(pair_at_iou(c.width_offset), st.permutations([0.75, 0.25])).map(
        lambda t: {"boxes": t[0][0], "scores": np.asarray(t[1]), "iou_threshold": t[0][1]}
    ),
    example=NmsInputs,
    examples=lambda c: [
        {
            "boxes": np.array(
                [
                    [0.0, 0.0, 3.0 - c.width_offset, 1.0 - c.width_offset],
                    [1.0, 0.0, 4.0 - c.width_offset, 1.0 - c.width_offset],
                ]
            ),
            "scores": np.array([0.75, 0.25]),
            "iou_threshold": 0.5,
        },
    ],
)
def nms_keeps_both_boxes_at_exact_threshold(impl, boxes, scores, iou_threshold):
    """Two boxes with IoU exactly t are both kept (suppression is strictly above t); under the
    ``inclusive`` NMS bound the lower-scoring one is suppressed."""
    keep = impl.nms(boxes, scores, iou_threshold)
    check_indices(keep, len(boxes), "nms", "nms")
    if impl.conventions.nms_bound == "inclusive":
        best = int(np.argmax(scores))
        if keep.tolist() != [best]:
            fail(
                "nms.at-threshold",
                f"inclusive nms kept {keep.tolist()} of two boxes whose IoU equals the threshold "
                f"{iou_threshold} exactly; it suppresses the lower-scoring one",
                [best],
                keep,
            )
    elif sorted(keep.tolist()) != [0, 1]:
        fail(
            "nms.at-threshold",
            f"nms dropped a box whose IoU equals the threshold {iou_threshold} exactly",
            [0, 1],
            keep,
        )


@prop("boxes.nms.idempotent", uses=("nms",), given=_nms_given, example=NmsInputs)
def nms_is_idempotent(impl, boxes, scores, iou_threshold):
    """NMS of the kept boxes keeps all of them."""
    keep = impl.nms(boxes, scores, iou_threshold)
    check_indices(keep, len(boxes), "nms", "nms")
    again = impl.nms(boxes[keep], scores[keep], iou_threshold)
    check_indices(again, len(keep), "nms of the kept boxes", "nms")
    if len(again) != len(keep):
        fail("nms.not-idempotent", "nms applied to its own output dropped boxes", len(keep), len(again))


@st.composite
def _batched_inputs(draw):
    rows = draw(integer_boxes(0, 12))
    if rows and draw(st.booleans()):  # the same boxes again in another class
        rows = rows + rows[: draw(st.integers(1, len(rows)))]
    if rows and draw(st.booleans()):
        # Move the set so that its largest coordinate is near 0: boxes left of and above the
        # origin, as unclipped anchors are. Offsets computed from the coordinates (torchvision's
        # class-offset trick) stop separating the classes there.
        shift = max(max(r) for r in rows) + draw(st.integers(-2, 2))
        rows = [[v - shift for v in r] for r in rows]
    boxes = to_array(rows, draw(st.integers(-4, 4)))
    return {
        "boxes": boxes,
        "scores": draw(score_vectors(len(boxes))),
        "classes": np.asarray(
            draw(st.lists(st.integers(0, 3), min_size=len(boxes), max_size=len(boxes))),
            dtype=np.int64,
        ),
        "iou_threshold": draw(IOU_THRESHOLDS),
    }


@prop(
    "boxes.batched-nms.per-class",
    uses=("batched_nms",),
    given=lambda _c: _batched_inputs(),
    example=BatchedNmsInputs,
    examples=lambda _c: [
        {
            "boxes": np.array([[0.0, 0.0, 10.0, 10.0]] * 2),
            "scores": np.array([0.5, 0.25]),
            "classes": np.array([0, 1]),
            "iou_threshold": 0.5,
        },
        {
            "boxes": np.array([[-10.0, -10.0, 0.0, 0.0]] * 2),
            "scores": np.array([0.5, 0.25]),
            "classes": np.array([0, 1]),
            "iou_threshold": 0.5,
        },
        {
            "boxes": np.zeros((0, 4)),
            "scores": np.zeros(0),
            "classes": np.zeros(0, np.int64),
            "iou_threshold": 0.5,
        },
    ],
)
def batched_nms_is_nms_within_each_class(impl, boxes, scores, classes, iou_threshold):
    """Sorted; within a class separated and maximal; no box suppressed across classes."""
    keep = impl.batched_nms(boxes, scores, classes, iou_threshold)
    check_indices(keep, len(boxes), "batched_nms", "batched-nms")
    if np.any(np.diff(scores[keep]) > 0):
        fail(
            "batched-nms.unsorted",
            "batched_nms: kept boxes are not sorted by score",
            "non-increasing",
            scores[keep],
        )
    for label in np.unique(classes):
        members = np.flatnonzero(classes == label)
        kept_here = np.asarray([k for k in keep if classes[k] == label], dtype=np.int64)
        local = {int(m): n for n, m in enumerate(members)}
        overlaps = _overlaps(impl, boxes[members], iou_threshold)
        local_keep = np.asarray([local[int(k)] for k in kept_here], dtype=np.int64)
        _check_separated(overlaps, local_keep, members, f"batched_nms (class {label})", "batched-nms")
        _check_suppressions_explained(
            overlaps, local_keep, scores[members], members, f"batched_nms (class {label})", "batched-nms"
        )


# --- input validation -------------------------------------------------------------------------

_CORRUPTIONS = ("nan", "inf", "inverted-x", "inverted-y", "five-columns")


@st.composite
def _invalid_boxes(draw):
    boxes = draw(box_arrays(1, 4, degenerate=False, exponent=0))
    corruption = draw(st.sampled_from(_CORRUPTIONS))
    row = draw(st.integers(0, len(boxes) - 1))
    bad = boxes.copy()
    if corruption == "nan":
        bad[row, draw(st.integers(0, 3))] = np.nan
    elif corruption == "inf":
        bad[row, draw(st.integers(0, 3))] = np.inf
    elif corruption == "inverted-x":
        bad[row, [0, 2]] = bad[row, [2, 0]]
    elif corruption == "inverted-y":
        bad[row, [1, 3]] = bad[row, [3, 1]]
    else:
        bad = np.concatenate([bad, np.ones((len(bad), 1))], axis=1)
    return {"boxes": bad, "corruption": corruption}


def _expect_rejection(call, what: str, corruption: str) -> None:
    try:
        result = call()
    except ImplementationRaised:
        return
    fail(
        "input.accepted-invalid",
        f"{what} accepted invalid boxes ({corruption}) instead of raising",
        "an error",
        result,
    )


@prop(
    "boxes.input.rejects-invalid",
    uses=("box_iou",),
    given=lambda _c: _invalid_boxes(),
    example=InvalidBoxes,
    examples=lambda _c: [
        {"boxes": np.array([[0.0, 0.0, np.nan, 1.0]]), "corruption": "nan"},
        {"boxes": np.array([[5.0, 0.0, 1.0, 1.0]]), "corruption": "inverted-x"},
    ],
)
def iou_rejects_invalid_boxes(impl, boxes, corruption):
    """box_iou raises on NaN/inf, x2 < x1 or y2 < y1, and a wrong shape."""
    good = np.array([[0.0, 0.0, 4.0, 4.0]])
    _expect_rejection(lambda: impl.box_iou(boxes, good), "box_iou", corruption)


@prop(
    "boxes.input.rejects-invalid",
    uses=("nms",),
    given=lambda _c: _invalid_boxes(),
    example=InvalidBoxes,
    examples=lambda _c: [{"boxes": np.array([[0.0, 0.0, np.nan, 1.0]]), "corruption": "nan"}],
)
def nms_rejects_invalid_boxes(impl, boxes, corruption):
    """nms raises on NaN/inf, x2 < x1 or y2 < y1, and a wrong shape."""
    scores = np.linspace(1.0, 0.5, len(boxes))
    _expect_rejection(lambda: impl.nms(boxes, scores, 0.5), "nms", corruption)


# --- batched NMS on both sides of an implementation's size switch ------------------------------

#: torchvision's CPU ``batched_nms`` shifts boxes by class up to 4000 coordinates (1000 boxes) and
#: loops over the classes above; 990 and 1010 boxes fall on either side.
SIZE_SWITCH_BOXES = (990, 1010)


@family
class SeededBoxCount(Example):
    """A box count; the boxes, scores and classes follow from it (seed = count)."""

    count: Integer


def seeded_batched_input(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """About a thousand boxes left of and above the origin (unclipped anchors: the largest
    coordinate is negative), three classes, distinct scores, threshold 0.5; seeded by ``count``."""
    rng = np.random.default_rng(count)
    corner = rng.integers(-512, -64, size=(count, 2)).astype(np.float64)
    sides = rng.integers(1, 64, size=(count, 2)).astype(np.float64)
    boxes = np.concatenate([corner, corner + sides], axis=1)
    scores = (rng.permutation(count) + 1) / (count + 1)
    return boxes, scores, rng.integers(0, 3, size=count).astype(np.int64), 0.5


@prop(
    "boxes.batched-nms.per-class",
    uses=("batched_nms",),
    given=lambda _c: st.sampled_from(SIZE_SWITCH_BOXES).map(lambda n: {"count": n}),
    example=SeededBoxCount,
    examples=lambda _c: [{"count": n} for n in SIZE_SWITCH_BOXES],
)
def batched_nms_holds_on_both_sides_of_the_size_switch(impl, count):
    """Around a thousand boxes (both sides of torchvision's switch from the coordinate-offset trick
    to a loop over classes), batched NMS keeps exactly what NMS within each class keeps (scores
    are distinct; a pair within the tolerance band of the threshold, but not on it, would make
    the example decide nothing)."""
    boxes, scores, classes, iou_threshold = seeded_batched_input(count)
    keep = impl.batched_nms(boxes, scores, classes, iou_threshold)
    check_indices(keep, len(boxes), "batched_nms", "batched-nms")
    conventions = impl.conventions
    iou = ref.pairwise_iou(boxes, boxes, conventions.width_offset)
    same_class = classes[:, None] == classes[None, :]
    # integer corners: a pair exactly at t is exact in float32 too; one merely near it is not
    near = (np.abs(iou - iou_threshold) <= tolerance(conventions.dtype)) & (iou != iou_threshold)
    if np.any(same_class & near):
        return
    expected = ref.batched_nms(
        boxes, scores, classes, iou_threshold, conventions.box_width, conventions.nms_bound
    )
    if sorted(keep.tolist()) != sorted(expected.tolist()):
        missing = sorted(set(expected.tolist()) - set(keep.tolist()))
        extra = sorted(set(keep.tolist()) - set(expected.tolist()))
        fail(
            "batched-nms.large",
            f"batched_nms of {len(boxes)} boxes in {len(np.unique(classes))} classes: "
            f"{len(missing)} boxes NMS within their class keeps are missing (first {missing[:5]}), "
            f"{len(extra)} boxes it suppresses are kept (first {extra[:5]})",
            len(expected),
            len(keep),
        )
