"""The implementation interface the properties are written against.

An implementation (an *adapter*) is any object with ``name``, ``version``, ``conventions`` (a
:class:`Conventions`) and one method per operation it provides. Operations are called with
**keyword arguments** named as below, take NumPy arrays (float64 boxes, images and maps; int64
labels and classes; plain numbers and lists for sizes) and return NumPy arrays, or a *named
result* (:class:`MatchResult`, :class:`RoiSample`, ...) where an operation has several outputs.
An operation the adapter lacks is *not provided*, which is reported, not failed.

Each operation is a small :class:`typing.Protocol`; an adapter that subclasses the protocols of
the operations it provides gets its signatures checked by a type checker::

    class MyLib(Implementation, BoxIou, Nms): ...

:data:`OPERATIONS` is derived from the same protocols (argument names) plus what a valid result
looks like (shapes and dtypes), which the conformance guard checks on every call.
"""

from __future__ import annotations

import inspect
import math
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np
from detspec.properties.checks import PropertyFailure

# --- conventions ------------------------------------------------------------------------------

BoxWidth = Literal["continuous", "legacy"]  # x2 - x1, or py-faster-rcnn's x2 - x1 + 1
MinSizeBound = Literal["inclusive", "strict"]  # keep sides >= min_size, or > min_size
DecodeClamp = Literal["upper", "symmetric", "none"]  # clamp dw, dh at +C only, at ±C, or never
NmsBound = Literal["strict", "inclusive"]  # suppress at IoU > t, or at IoU >= t
Precision = Literal["float32", "float64"]  # what the implementation computes in
AnchorOffset = Literal["corner", "centre", "legacy"]  # centre of cell 0: 0, s/2, (s - 1)/2
# torchvision rounds corners; py-faster-rcnn rounds its base sides half to even (np.round),
# its C++ ports (Caffe, OpenVINO's Proposal) half away from zero (roundf)
AnchorRounding = Literal["none", "round-corners", "legacy", "legacy-away"]
AnchorOrder = Literal["ratio-major", "size-major"]  # detectron2 is size-major
RpnBorder = Literal["keep", "ignore"]  # anchors crossing the image border left out
# 1/#sampled; 1/(max(#pos, 1) + max(#neg, 1)) (mmdetection); or 1/256 and λ/#locations (the paper)
RpnLossNormaliser = Literal["sampled", "sampled-clamped", "paper"]
RpnLowQualityFloor = Literal["0", "0.3"]  # the best-anchor rule applies to GTs with b(g) > 0 / >= 0.3
RpnLowQualityMatch = Literal[
    "own-best", "last-gt"
]  # a promoted anchor regresses to its own best GT / the last GT it is best for
SmoothL1Beta = Literal["1/9", "1", "0"]  # β of smooth L1; 0 is pure L1
ProposalPipeline = Literal["per-level", "global"]  # top-n per FPN level, or over all anchors
ProposalMinSizeStage = Literal["after-top-n", "before-top-n"]
ProposalAnchors = Literal["given", "own-grid"]  # a capability: takes any anchors, or only its own grid
RoiGtCandidates = Literal["added", "not-added"]  # GT boxes join the RoI candidates
RoiFill = Literal["shorter", "repeat-negatives"]  # scarce backgrounds: shorter batch, or repeated
RoiBackgroundLabel = Literal["zero", "num-classes"]
RoiBackgroundLow = Literal["parameter", "zero-only"]  # a capability: lower background threshold
RoiNoGt = Literal[
    "thresholds", "all-background"
]  # an image without GT: labels by the thresholds, or all background
FpnLevelMapping = Literal[
    "canonical", "finest-56"
]  # FPN eq. (1) (224 -> level 4), or mmdetection's 56 -> first map
MultiscaleAlignment = Literal["corner", "half-pixel"]  # the FPN pooler's RoIAlign: aligned=False / True
MultiscaleOutput = Literal["any", "square"]  # a capability: any (h, w) output, or square only


@dataclass(frozen=True)
class Conventions:
    """Choices where implementations legitimately differ; each spec file lists its own under
    "Conventions". Values are checked against their ``Literal`` type when constructed."""

    box_width: BoxWidth = "continuous"
    min_size_bound: MinSizeBound = "inclusive"
    decode_clamp: DecodeClamp = "upper"
    nms_bound: NmsBound = "strict"
    dtype: Precision = "float64"
    anchor_offset: AnchorOffset = "centre"
    anchor_rounding: AnchorRounding = "none"
    anchor_order: AnchorOrder = "ratio-major"
    rpn_border: RpnBorder = "keep"
    rpn_loss_normaliser: RpnLossNormaliser = "sampled"
    rpn_smooth_l1_beta: SmoothL1Beta = "1/9"
    rpn_low_quality_floor: RpnLowQualityFloor = "0"
    rpn_low_quality_match: RpnLowQualityMatch = "own-best"
    proposal_pipeline: ProposalPipeline = "per-level"
    proposal_min_size_stage: ProposalMinSizeStage = "after-top-n"
    proposal_anchors: ProposalAnchors = "given"
    roi_gt_candidates: RoiGtCandidates = "added"
    roi_fill: RoiFill = "shorter"
    roi_background_label: RoiBackgroundLabel = "zero"
    roi_background_low: RoiBackgroundLow = "parameter"
    roi_no_gt: RoiNoGt = "thresholds"
    roi_smooth_l1_beta: SmoothL1Beta = "1/9"
    fpn_level_mapping: FpnLevelMapping = "canonical"
    multiscale_alignment: MultiscaleAlignment = "corner"
    multiscale_output: MultiscaleOutput = "any"

    CAPABILITIES: ClassVar[dict[str, str]] = {
        # values that say what an implementation cannot do, not a choice of behaviour: the
        # properties then draw only inputs it can take (or report the clause unsupported)
        "roi_background_low": "zero-only",
        "proposal_anchors": "own-grid",
        "multiscale_output": "square",
    }

    def __post_init__(self) -> None:
        for name, allowed in self.choices().items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"convention {name}={value!r} is not one of {allowed}")

    @classmethod
    def choices(cls) -> dict[str, tuple[str, ...]]:
        """Every convention and its allowed values, read off the ``Literal`` annotations."""
        hints = typing.get_type_hints(cls)
        return {f.name: typing.get_args(hints[f.name]) for f in fields(cls)}

    @property
    def beta(self) -> float:
        return _BETAS[self.rpn_smooth_l1_beta]

    @property
    def roi_beta(self) -> float:
        return _BETAS[self.roi_smooth_l1_beta]

    @property
    def width_offset(self) -> int:
        return 1 if self.box_width == "legacy" else 0

    @property
    def low_quality_floor(self) -> float:
        return float(self.rpn_low_quality_floor)


_BETAS = {"1/9": 1 / 9, "1": 1.0, "0": 0.0}

# --- named results ----------------------------------------------------------------------------


class MatchResult(NamedTuple):
    """RPN anchor labelling: ``labels`` (N,) 1 positive, 0 negative, -1 ignored; ``matched_gt``
    (N,) the GT box each positive anchor regresses to, -1 for every other anchor."""

    labels: np.ndarray
    matched_gt: np.ndarray


class LossTerms(NamedTuple):
    """A two-term detection loss: ``classification`` and the (weighted) box ``regression``."""

    classification: float
    regression: float


class RpnLossGradient(NamedTuple):
    """d loss / d input: ``logits`` (N,) and ``deltas`` (N, 4)."""

    logits: np.ndarray
    deltas: np.ndarray


class Proposals(NamedTuple):
    """RPN proposals: ``boxes`` (K, 4) in image coordinates and their ``scores`` (K,), by score."""

    boxes: np.ndarray
    scores: np.ndarray


class RoiSample(NamedTuple):
    """RoI-head training sample: ``boxes`` (R, 4), ``labels`` (R,) class or background,
    ``matched_gt`` (R,) GT index of a foreground RoI (-1 for background), ``targets`` (R, 4)."""

    boxes: np.ndarray
    labels: np.ndarray
    matched_gt: np.ndarray
    targets: np.ndarray


class HeadLossGradient(NamedTuple):
    """d loss / d input: ``class_logits`` (R, C) and ``box_regression`` (R, 4C)."""

    class_logits: np.ndarray
    box_regression: np.ndarray


class SupportInterval(NamedTuple):
    """Per output cell, the ``first`` and ``last`` input pixel index it depends on (K,) each."""

    first: np.ndarray
    last: np.ndarray


# --- the adapter and its operations -----------------------------------------------------------

FloatArray = np.ndarray  # float64 on the way in; float32 or float64 on the way out
IntArray = np.ndarray
Pair = Sequence[float]  # (height, width), or (y, x)


@runtime_checkable
class Implementation(Protocol):
    """What every adapter has, besides the operations it provides."""

    name: str
    version: str
    conventions: Conventions


class BoxArea(Protocol):
    def box_area(self, *, boxes: FloatArray) -> FloatArray:
        """(N,) areas of (N, 4) x1, y1, x2, y2 boxes (``boxes.area``)."""
        ...


class BoxIou(Protocol):
    def box_iou(self, *, boxes1: FloatArray, boxes2: FloatArray) -> FloatArray:
        """(N, M) IoU matrix (``boxes.iou``)."""
        ...


class ClipBoxes(Protocol):
    def clip_boxes_to_image(self, *, boxes: FloatArray, image_size: Pair) -> FloatArray:
        """(N, 4) boxes clamped to an image of size (height, width) (``boxes.clip``)."""
        ...


class RemoveSmallBoxes(Protocol):
    def remove_small_boxes(self, *, boxes: FloatArray, min_size: float) -> IntArray:
        """Indices of the boxes whose sides are both at least ``min_size``."""
        ...


class EncodeBoxes(Protocol):
    def encode_boxes(
        self, *, reference_boxes: FloatArray, target_boxes: FloatArray, weights: Sequence[float]
    ) -> FloatArray:
        """(N, 4) deltas of each target relative to its reference box (``boxes.encode``)."""
        ...


class DecodeBoxes(Protocol):
    def decode_boxes(
        self, *, reference_boxes: FloatArray, deltas: FloatArray, weights: Sequence[float], clamp: float
    ) -> FloatArray:
        """(N, 4) boxes: deltas applied to the reference boxes (``boxes.decode``)."""
        ...


class Nms(Protocol):
    def nms(self, *, boxes: FloatArray, scores: FloatArray, iou_threshold: float) -> IntArray:
        """Indices of the kept boxes, by decreasing score (``boxes.nms``)."""
        ...


class BatchedNms(Protocol):
    def batched_nms(
        self, *, boxes: FloatArray, scores: FloatArray, classes: IntArray, iou_threshold: float
    ) -> IntArray:
        """NMS within each class; indices of the kept boxes, by decreasing score."""
        ...


class GridAnchors(Protocol):
    def grid_anchors(
        self,
        *,
        feature_sizes: Sequence[Pair],
        strides: Sequence[Pair],
        sizes: Sequence[Sequence[float]],
        ratios: Sequence[Sequence[float]],
    ) -> FloatArray:
        """(sum of H·W·A, 4) anchors of every level, in (level, y, x, a) order. Per level: the
        map size (H, W), the stride (along y, along x), the sizes and the ratios (h/w)."""
        ...


class ReceptiveFieldSupport(Protocol):
    def receptive_field_support(
        self, *, layers: list[list], input_size: int, cells: Sequence[int]
    ) -> SupportInterval:
        """For a layer stack ([kind, kernel, stride, padding, dilation] rows) on a square input,
        the input pixels each output cell depends on (``anchors.receptive-field``)."""
        ...


class BackboneLayers(Protocol):
    def backbone_layers(self, *, name: str) -> list[list]:
        """The layer stack of a named backbone ("vgg16", "resnet50"), as receptive-field rows."""
        ...


class BackboneReceptiveFieldSupport(Protocol):
    def backbone_receptive_field_support(
        self, *, name: str, input_size: int, cells: Sequence[int]
    ) -> SupportInterval:
        """The measured support of a named backbone's output cells."""
        ...


class GenerateProposals(Protocol):
    def generate_proposals(
        self,
        *,
        anchors: FloatArray,
        logits: FloatArray,
        deltas: FloatArray,
        levels: IntArray,
        image_size: Pair,
        pre_nms_top_n: int,
        post_nms_top_n: int,
        nms_threshold: float,
        min_size: float,
    ) -> Proposals:
        """RPN proposals of one image from per-anchor objectness logits and deltas
        (``spec/proposals.md``); ``levels`` gives each anchor's FPN level."""
        ...


class Fft2(Protocol):
    def fft2(self, *, image: FloatArray) -> np.ndarray:
        """(H, W) complex 2-D DFT of a real image (``fourier.dft``)."""
        ...


class AmplitudeSpectrum(Protocol):
    def amplitude_spectrum(self, *, image: FloatArray) -> FloatArray:
        """(H, W) |F| of a real image."""
        ...


class PhaseSpectrum(Protocol):
    def phase_spectrum(self, *, image: FloatArray) -> FloatArray:
        """(H, W) arg F in (-π, π] of a real image (0 where F = 0)."""
        ...


class PhaseOnly(Protocol):
    def phase_only(self, *, image: FloatArray) -> FloatArray:
        """(H, W) real part of the inverse DFT of F / |F| (``fourier.phase-only``)."""
        ...


class AmplitudeOnly(Protocol):
    def amplitude_only(self, *, image: FloatArray) -> FloatArray:
        """(H, W) real part of the inverse DFT of |F| (``fourier.amplitude-only``)."""
        ...


class Hybrid(Protocol):
    def hybrid(self, *, phase_donor: FloatArray, amplitude_donor: FloatArray) -> FloatArray:
        """(H, W) the phase of one image with the amplitude of another (``fourier.hybrid``)."""
        ...


class MatchAnchors(Protocol):
    def match_anchors(
        self, *, anchors: FloatArray, gt_boxes: FloatArray, image_size: Pair, high: float, low: float
    ) -> MatchResult:
        """RPN labels and matched GT boxes (``rpn.match``)."""
        ...


class RpnRegressionTargets(Protocol):
    def rpn_regression_targets(
        self, *, anchors: FloatArray, gt_boxes: FloatArray, image_size: Pair, high: float, low: float
    ) -> FloatArray:
        """(N, 4) targets: each anchor encoded against its matched GT (rows of non-positive
        anchors are unspecified)."""
        ...


class SampleBalanced(Protocol):
    def sample_balanced(
        self, *, labels: IntArray, batch_size: int, positive_fraction: float, seed: int
    ) -> IntArray:
        """(N,) labels with the anchors left out of the sample set to -1 (``rpn.sample``)."""
        ...


class RpnLoss(Protocol):
    def rpn_loss(
        self,
        *,
        logits: FloatArray,
        deltas: FloatArray,
        sampled: IntArray,
        targets: FloatArray,
        anchor_locations: int,
    ) -> LossTerms:
        """The RPN loss of one image (``rpn.loss``); ``sampled`` is 1 / 0 / -1 per anchor."""
        ...


class RpnLossGradientOp(Protocol):
    def rpn_loss_gradient(
        self,
        *,
        logits: FloatArray,
        deltas: FloatArray,
        sampled: IntArray,
        targets: FloatArray,
        anchor_locations: int,
    ) -> RpnLossGradient:
        """The gradient of :meth:`RpnLoss.rpn_loss` (classification + regression)."""
        ...


class SampleRois(Protocol):
    def sample_rois(
        self,
        *,
        proposals: FloatArray,
        gt_boxes: FloatArray,
        gt_labels: IntArray,
        num_classes: int,
        batch_size: int,
        positive_fraction: float,
        fg_threshold: float,
        bg_high: float,
        bg_low: float,
        weights: Sequence[float],
        seed: int,
    ) -> RoiSample:
        """The RoI-head training sample of one image (``roi.sample``, ``roi.targets``)."""
        ...


class FastRcnnLoss(Protocol):
    def fast_rcnn_loss(
        self, *, class_logits: FloatArray, box_regression: FloatArray, labels: IntArray, targets: FloatArray
    ) -> LossTerms:
        """The Fast R-CNN loss (``roi.loss``): logits (R, C), class-specific boxes (R, 4C)."""
        ...


class FastRcnnLossGradient(Protocol):
    def fast_rcnn_loss_gradient(
        self, *, class_logits: FloatArray, box_regression: FloatArray, labels: IntArray, targets: FloatArray
    ) -> HeadLossGradient:
        """The gradient of :meth:`FastRcnnLoss.fast_rcnn_loss` (classification + regression)."""
        ...


class RoiAlign(Protocol):
    def roi_align(
        self,
        *,
        features: FloatArray,
        rois: FloatArray,
        output_size: Pair,
        spatial_scale: float,
        sampling_ratio: int,
        aligned: bool,
    ) -> FloatArray:
        """(R, C, h, w) RoIAlign of (C, H, W) features over (R, 4) image-coordinate RoIs."""
        ...


class RoiPool(Protocol):
    def roi_pool(
        self, *, features: FloatArray, rois: FloatArray, output_size: Pair, spatial_scale: float
    ) -> FloatArray:
        """(R, C, h, w) RoI max pooling (``roi.pool``)."""
        ...


class MultiscaleRoiAlign(Protocol):
    def multiscale_roi_align(
        self,
        *,
        features: list[FloatArray],
        rois: FloatArray,
        output_size: Pair,
        sampling_ratio: int,
        image_size: Pair,
    ) -> FloatArray:
        """(R, C, h, w) RoIAlign of each RoI on its FPN level (maps finest first)."""
        ...


# --- what a valid result looks like -----------------------------------------------------------

Shape = Callable[[SimpleNamespace], tuple[int | None, ...]]


@dataclass(frozen=True)
class Result:
    """One array of a result: its ``kind`` and its ``shape`` as a function of the arguments
    (``None`` marks a dimension the implementation chooses, e.g. the number of proposals).

    Kinds: ``float`` (float32 or float64), ``complex``, ``int`` (an integer dtype), ``indices``
    (1-D integers into the first argument), ``scalar`` (one finite-or-not number) and ``json``
    (plain nested lists)."""

    kind: str
    shape: Shape | None = None


@dataclass(frozen=True)
class Operation:
    """An operation: its name, its keyword arguments (read off its protocol) and its result,
    either one :class:`Result` or a named tuple with one :class:`Result` per field."""

    name: str
    arguments: tuple[str, ...]
    result: Result | dict[str, Result]
    named: type | None = None  # the NamedTuple of a multi-output operation

    @property
    def protocol_method(self) -> str:
        return self.name


def _rows(value: Any) -> int:
    return len(value)


def _pooled(a: SimpleNamespace) -> tuple[int, ...]:
    channels = len(a.features[0]) if isinstance(a.features, list | tuple) else np.shape(a.features)[0]
    return (_rows(a.rois), channels, int(a.output_size[0]), int(a.output_size[1]))


def _anchor_count(a: SimpleNamespace) -> tuple[int, int]:
    cells = sum(
        int(h) * int(w) * len(s) * len(r)
        for (h, w), s, r in zip(a.feature_sizes, a.sizes, a.ratios, strict=False)
    )
    return cells, 4


def _image(a: SimpleNamespace) -> tuple[int, ...]:
    return tuple(np.shape(a.image))


def _operation(protocol: type, result: Result | dict[str, Result], named: type | None = None) -> Operation:
    (name,) = [n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")]
    arguments = tuple(list(inspect.signature(getattr(protocol, name)).parameters)[1:])
    if named is not None and tuple(named._fields) != tuple(result):  # type: ignore[attr-defined]
        raise TypeError(f"{name}: result fields {tuple(result)} differ from {named.__name__}")
    return Operation(name, arguments, result, named)


def _rows_of(argument: str, *tail: int) -> Shape:
    return lambda a: (_rows(getattr(a, argument)), *tail)


_LOSS = {"classification": Result("scalar"), "regression": Result("scalar")}
_CELLS = {"first": Result("int", lambda a: (len(a.cells),)), "last": Result("int", lambda a: (len(a.cells),))}

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        _operation(BoxArea, Result("float", _rows_of("boxes"))),
        _operation(BoxIou, Result("float", lambda a: (_rows(a.boxes1), _rows(a.boxes2)))),
        _operation(ClipBoxes, Result("float", _rows_of("boxes", 4))),
        _operation(RemoveSmallBoxes, Result("indices")),
        _operation(EncodeBoxes, Result("float", _rows_of("reference_boxes", 4))),
        _operation(DecodeBoxes, Result("float", _rows_of("reference_boxes", 4))),
        _operation(Nms, Result("indices")),
        _operation(BatchedNms, Result("indices")),
        _operation(GridAnchors, Result("float", _anchor_count)),
        _operation(ReceptiveFieldSupport, _CELLS, SupportInterval),
        _operation(BackboneLayers, Result("json")),
        _operation(BackboneReceptiveFieldSupport, _CELLS, SupportInterval),
        _operation(
            GenerateProposals,
            {"boxes": Result("float", lambda a: (None, 4)), "scores": Result("float", lambda a: (None,))},
            Proposals,
        ),
        _operation(Fft2, Result("complex", _image)),
        _operation(AmplitudeSpectrum, Result("float", _image)),
        _operation(PhaseSpectrum, Result("float", _image)),
        _operation(PhaseOnly, Result("float", _image)),
        _operation(AmplitudeOnly, Result("float", _image)),
        _operation(Hybrid, Result("float", lambda a: tuple(np.shape(a.phase_donor)))),
        _operation(
            MatchAnchors,
            {"labels": Result("int", _rows_of("anchors")), "matched_gt": Result("int", _rows_of("anchors"))},
            MatchResult,
        ),
        _operation(RpnRegressionTargets, Result("float", _rows_of("anchors", 4))),
        _operation(SampleBalanced, Result("int", _rows_of("labels"))),
        _operation(RpnLoss, _LOSS, LossTerms),
        _operation(
            RpnLossGradientOp,
            {"logits": Result("float", _rows_of("logits")), "deltas": Result("float", _rows_of("logits", 4))},
            RpnLossGradient,
        ),
        _operation(
            SampleRois,
            {
                "boxes": Result("float", lambda a: (None, 4)),
                "labels": Result("int", lambda a: (None,)),
                "matched_gt": Result("int", lambda a: (None,)),
                "targets": Result("float", lambda a: (None, 4)),
            },
            RoiSample,
        ),
        _operation(FastRcnnLoss, _LOSS, LossTerms),
        _operation(
            FastRcnnLossGradient,
            {
                "class_logits": Result("float", lambda a: tuple(np.shape(a.class_logits))),
                "box_regression": Result("float", lambda a: tuple(np.shape(a.box_regression))),
            },
            HeadLossGradient,
        ),
        _operation(RoiAlign, Result("float", _pooled)),
        _operation(RoiPool, Result("float", _pooled)),
        _operation(MultiscaleRoiAlign, Result("float", _pooled)),
    )
}


def is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and math.isfinite(float(value))


# --- how an implementation can fail a property ------------------------------------------------


class NotProvided(Exception):
    """The implementation does not provide an operation a property needs."""


class ImplementationUnavailable(Exception):
    """Raised by an adapter's factory when the implementation cannot run on this machine (no GPU,
    a device missing): the run stops and the matrix lists it as "not available". Any other
    exception of a factory is a broken adapter."""


class Unsupported(Exception):
    """The implementation declares that it lacks a capability the property needs."""


class ImplementationFailure(PropertyFailure):
    """The implementation misbehaved while a property called it (raised, hung, crashed, bad result)."""


class ImplementationRaised(ImplementationFailure):
    """The implementation raised; ``error`` is the original exception (``None`` when it was
    raised in a worker process and only its type and message came back)."""

    def __init__(self, message: str, error: BaseException | None, error_type: str = "") -> None:
        super().__init__("impl.raised", message)
        self.error = error
        self.error_type = error_type or (type(error).__name__ if error is not None else "Exception")


class ImplementationHung(ImplementationFailure):
    """The implementation did not return within the time limit. ``again``: the operation was not
    called at all, because it hung before (the input is not one that made it hang)."""

    def __init__(self, message: str, again: bool = False) -> None:
        super().__init__("impl.hung", message)
        self.again = again


class ImplementationCrashed(ImplementationFailure):
    """The process running the implementation died (a crash, an abort, an exit). ``again``: the
    operation was not called, because it crashed too often before."""

    def __init__(self, message: str, again: bool = False) -> None:
        super().__init__("impl.crashed", message)
        self.again = again


class InvalidResult(ImplementationFailure):
    """The implementation returned something of the wrong shape or type, or NaN."""
