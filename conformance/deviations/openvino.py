"""Deviant models of OpenVINO 2026.4.1's CPU plugin (f32): what each documented deviation in
``conformance/expectations/openvino.toml`` computes, written from the plugin's source.

Sources are ``src/plugins/intel_cpu/src/nodes/`` of https://github.com/openvinotoolkit/openvino
(branch ``releases/2026/4``), cited as ``nodes/<file>``. Each model computes the operation's output
on every input, not only where it deviates, so that a different bug in the same property
disagrees with it.
"""

from __future__ import annotations

import numpy as np
from detspec.conformance.deviations import deviant_output
from detspec.reference import roi_pooling as ref_pool

F32 = np.float32


def _x86_min(a, b):
    """``vminps a, b``: ``a < b ? a : b`` (the second operand when either is NaN)."""
    return np.where(a < b, a, b)


def _x86_max(a, b):
    """``vmaxps a, b``: ``a > b ? a : b`` (the second operand when either is NaN)."""
    return np.where(a > b, a, b)


def _ordered(boxes: np.ndarray) -> np.ndarray:
    """The kernel's corner order for corner-encoded boxes: ``vminps``/``vmaxps`` of each pair."""
    return np.stack(
        [
            _x86_min(boxes[:, 0], boxes[:, 2]),
            _x86_min(boxes[:, 1], boxes[:, 3]),
            _x86_max(boxes[:, 0], boxes[:, 2]),
            _x86_max(boxes[:, 1], boxes[:, 3]),
        ],
        1,
    )


def nms9_iou(kept: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """IoU of each kept box with the candidate as the x64 JIT kernel computes it
    (``nodes/kernels/x64/non_max_suppression.cpp``, ``iou``): each box's corners put in order by
    min/max, areas without a guard, the intersection sides clamped at 0 by ``vmaxps(side, 0)``
    (a NaN side becomes 0), ``inter / (area_kept + area_candidate - inter)``, all in float32 with
    the x86 NaN rules of ``vminps``/``vmaxps``."""
    with np.errstate(all="ignore"):
        k, c = _ordered(kept), _ordered(candidate[None])[0]
        areas = (k[:, 2] - k[:, 0]) * (k[:, 3] - k[:, 1]) + (c[2] - c[0]) * (c[3] - c[1])
        first = _x86_max(_x86_min(k[:, 2], c[2]) - _x86_max(k[:, 0], c[0]), F32(0))
        second = _x86_max(_x86_min(k[:, 3], c[3]) - _x86_max(k[:, 1], c[1]), F32(0))
        inter = first * second
        return inter / (areas - inter)


def nms9_cpu(boxes, score_rows, iou_threshold) -> np.ndarray:
    """NonMaxSuppression-9 on the CPU plugin's x64 JIT path, one class per row of ``score_rows``
    (``nodes/non_max_suppression.cpp:nmsWithoutSoftSigma``): the candidates with score ``>
    score_threshold`` (here -inf), sorted by (score descending, index ascending); the first is
    selected, and each further one unless the kernel's IoU with a selected box is ``>=
    iou_threshold`` (``vcmpps ..., 0x0D``, ``_CMP_GE_OS``: ordered, so a NaN IoU never suppresses).
    The output (``sort_result_descending``) is the selected boxes of every class by score, ties by
    class then box index. Returns the box indices."""
    b = np.asarray(boxes, dtype=F32).reshape(-1, 4)
    rows = np.asarray(score_rows, dtype=F32).reshape(-1, len(b))
    t = F32(iou_threshold)
    selected = []
    for label, scores in enumerate(rows):
        candidates = [i for i in range(len(b)) if scores[i] > F32(-np.inf)]
        candidates.sort(key=lambda i: (-scores[i], i))
        kept: list[int] = []
        for i in candidates:
            if kept and np.any(nms9_iou(b[kept], b[i]) >= t):
                continue
            kept.append(i)
        selected += [(-scores[i], label, i) for i in kept]
    return np.asarray([i for _, _, i in sorted(selected)], dtype=np.int64)


@deviant_output("nms")
def nms9_accepts_any_box(boxes, scores, iou_threshold):
    """NonMaxSuppression-9 validates nothing but the shape: a NaN or infinite coordinate goes
    through the kernel's arithmetic (a NaN intersection side becomes 0, a NaN IoU suppresses
    nothing) and an inverted box is put in order by the kernel's min/max -- a result is returned
    where the spec asks for an error. Every other input: the op's NMS (:func:`nms9_cpu`)."""
    if np.shape(boxes)[-1:] != (4,):
        return None  # the op refuses a box that is not 4 numbers: never the deviant output
    return nms9_cpu(boxes, np.asarray(scores, dtype=np.float64).reshape(1, -1), iou_threshold)


def _roi_align_samples(rois, output_size, spatial_scale, sampling_ratio, aligned) -> np.ndarray:
    """Samples per bin side as ``nodes/roi_align.cpp`` counts them, in float32: ``ceil(bin side)``
    when ``sampling_ratio`` is 0 (sides widened to one cell only without ``aligned``)."""
    r = np.asarray(rois, dtype=F32).reshape(-1, 4) * F32(spatial_scale) - F32(0.5 if aligned else 0.0)
    sides = np.stack([r[:, 3] - r[:, 1], r[:, 2] - r[:, 0]], 1)
    if not aligned:
        sides = np.maximum(sides, F32(1))
    if sampling_ratio > 0:
        return np.full(sides.shape, sampling_ratio)
    return np.ceil(sides / np.asarray(output_size, dtype=F32)).astype(np.int64)


@deviant_output("roi_align")
def roi_align9_averages_no_sample(features, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """ROIAlign-9 (``nodes/roi_align.cpp``, ``executeSpecified``) samples like the spec's RoIAlign,
    with ``ceil(bin side)`` samples per side when ``sampling_ratio`` is 0 -- and with
    ``aligned_mode="half_pixel_for_nn"`` a RoI side is not widened, so a zero-width or
    zero-height RoI gets 0 samples and every bin is ``sum of no samples * (1.f / 0)`` = 0 * inf =
    NaN, where the spec's bin is 0. Otherwise the spec's RoIAlign."""
    size = (int(output_size[0]), int(output_size[1]))
    pooled = ref_pool.roi_align(features, rois, size, spatial_scale, int(sampling_ratio), bool(aligned))
    empty = np.any(
        _roi_align_samples(rois, size, spatial_scale, int(sampling_ratio), bool(aligned)) == 0, axis=1
    )
    pooled[empty] = np.nan
    return pooled


def feature_extractor_levels(rois, levels: int) -> np.ndarray:
    """``redistribute_rois`` in ``nodes/experimental_detectron_roifeatureextractor.cpp``, in
    float32: map index ``floor(log2(sqrt(w h) / 224 + 1e-6) + 2)`` clamped to ``[0, L - 1]``, and
    ``L`` (no map: the RoI's output stays 0) when ``w h`` is not positive."""
    r = np.asarray(rois, dtype=F32).reshape(-1, 4)
    area = (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])
    with np.errstate(all="ignore"):
        index = np.floor(np.log2(np.sqrt(area) / F32(224) + F32(1e-6)) + F32(2))
    return np.where(area > 0, np.clip(np.nan_to_num(index), 0, levels - 1), levels).astype(np.int64)


@deviant_output("multiscale_roi_align")
def feature_extractor_counts_levels_from_p2(features, rois, output_size, sampling_ratio, image_size):
    """ExperimentalDetectronROIFeatureExtractor-6 picks the map by its index, with the canonical
    224-px RoI on index 2 (``canonical_level = 2``; its spec: "2 is the pyramid starting level"):
    the maps are taken to be P2, P3, ... whatever their strides, so for a pyramid that starts at
    P_k a RoI is pooled from k - 2 levels too fine (k < 2) or too coarse (k > 2), up to the
    clamp; a RoI of zero area gets no map and pools 0. Each RoI is then RoIAlign (Caffe2's, not
    aligned) of its map at scale ``1 / pyramid_scale``, the spec's RoIAlign."""
    size = (int(output_size[0]), int(output_size[1]))
    rois = np.asarray(rois, dtype=np.float64).reshape(-1, 4)
    maps = [np.asarray(f, dtype=np.float64) for f in features]
    index = feature_extractor_levels(rois, len(maps))
    pooled = np.zeros((len(rois), maps[0].shape[0], *size))
    for level, feature_map in enumerate(maps):
        members = index == level
        if members.any():
            stride = round(float(image_size[0]) / feature_map.shape[1])
            pooled[members] = ref_pool.roi_align(
                feature_map, rois[members], size, 1.0 / stride, sampling_ratio
            )
    return pooled
