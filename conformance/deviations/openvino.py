"""Deviant models of OpenVINO 2026.4.1's CPU plugin (f32): what each documented deviation in
``conformance/expectations/openvino.toml`` computes, written from the plugin's source.

Sources are ``src/plugins/intel_cpu/src/nodes/`` of https://github.com/openvinotoolkit/openvino
(branch ``releases/2026/4``), cited as ``nodes/<file>``. Each model computes the operation's output
on every input, not only where it deviates, so that a different bug in the same property
disagrees with it.
"""

from __future__ import annotations

import numpy as np
from detspec.conformance.deviations import deviant_check, deviant_output
from detspec.properties.checks import tolerance
from detspec.properties.interface import Proposals
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


def align_value_tolerance(features, rois, output_size, spatial_scale, sampling_ratio, aligned) -> np.ndarray:
    """``(R, 1, ph, pw)``: how far a float32 RoIAlign may be from the reference, as
    ``roi.align.value`` allows it: ``10 eps M reach`` (``M`` the map's magnitude, ``reach`` the
    largest coordinate in cells: round-off of the sample positions and of the float32 sums, which
    cancel on random maps), plus ``M`` times the fraction of a bin's samples within ``10 eps
    reach`` of the jumps at -1 and at the far edge, where float noise decides the side."""
    eps = tolerance("float32")
    _, height, width = np.shape(features)
    magnitude = float(np.max(np.abs(features))) if np.size(features) else 0.0
    rois = np.asarray(rois, dtype=np.float64).reshape(-1, 4)
    tol = np.zeros((len(rois), 1, int(output_size[0]), int(output_size[1])))
    for r, roi in enumerate(rois):
        ys, xs = ref_pool.align_sample_points(roi, output_size, spatial_scale, sampling_ratio, aligned)
        reach = 1.0 + max(height, width, float(np.max(np.abs(roi))) * spatial_scale + 1.0)
        margin = 10 * eps * reach

        undecided = 1.0 - np.outer(1.0 - _near_jump(ys, height, margin), 1.0 - _near_jump(xs, width, margin))
        tol[r, 0] = 10 * eps * magnitude * reach + undecided * magnitude
    return tol


def _near_jump(points: np.ndarray, far_edge: float, margin: float) -> np.ndarray:
    """Per bin (row of ``points``), the fraction of its samples within ``margin`` of -1 or of
    ``far_edge``, where RoIAlign jumps between a border cell's value and 0."""
    if points.shape[1] == 0:
        return np.zeros(len(points))
    return np.mean(np.minimum(np.abs(points + 1), np.abs(points - far_edge)) <= margin, axis=1)


def _within(output, expected, tol, what: str) -> str | None:
    """``None`` if ``output`` is ``expected`` within ``tol`` (NaN exactly where it is NaN)."""
    output, expected = np.asarray(output, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if output.shape != expected.shape:
        return f"shape {output.shape}, {what} {expected.shape}"
    nan = np.isnan(expected)
    if not np.array_equal(np.isnan(output), nan):
        index = tuple(int(i) for i in np.argwhere(np.isnan(output) != nan)[0])
        return f"at {list(index)} it is {output[index]}, {what} {expected[index]}"
    with np.errstate(invalid="ignore"):
        bad = ~nan & ~(np.abs(output - expected) <= np.broadcast_to(tol, expected.shape))
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        return f"at {list(index)} it is {output[index]}, {what} {expected[index]}"
    return None


@deviant_check("roi_align")
def roi_align9_nan_without_samples(
    output, features, rois, output_size, spatial_scale, sampling_ratio, aligned
):
    """:func:`roi_align9_averages_no_sample` on random maps of any magnitude: NaN exactly for the
    aligned, adaptive RoIs with a zero side; every other bin the spec's RoIAlign within the
    float32 round-off ``roi.align.value`` allows (:func:`align_value_tolerance`: the sums of
    float32 samples cancel on random maps, so a bit-exact output model cannot be written in
    float64)."""
    size = (int(output_size[0]), int(output_size[1]))
    expected = roi_align9_averages_no_sample.model(
        features, rois, size, spatial_scale, sampling_ratio, aligned
    )
    tol = align_value_tolerance(features, rois, size, spatial_scale, int(sampling_ratio), bool(aligned))
    return _within(output, expected, tol, "ROIAlign-9's")


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
def feature_extractor_pools_empty_rois_from_no_map(features, rois, output_size, sampling_ratio, image_size):
    """ExperimentalDetectronROIFeatureExtractor-6 (``redistribute_rois``): map index
    ``floor(log2(sqrt(w h) / 224 + 1e-6) + 2)`` counted from the first map given (``canonical_level
    = 2``: the first map is taken to be P2 whatever its stride -- the declared ``finest-56``
    mapping), clamped to the maps; a RoI of zero area gets no map and pools 0, where the spec pools
    it from the first level. Each RoI is then RoIAlign (Caffe2's, not aligned) of its map at scale
    ``1 / pyramid_scale``, the spec's RoIAlign."""
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


@deviant_output("batched_nms")
def batched_nms9_accepts_any_box(boxes, scores, classes, iou_threshold):
    """``batched_nms`` as one NonMaxSuppression-9 call with one score row per class (a box's score
    in its class's row, -inf in the others): :func:`nms9_cpu` on those rows. Besides suppressing
    at IoU ``>=`` t (the declared ``nms_bound``), the kernel's IoU has no zero-union guard: two
    coincident zero-area boxes have IoU 0 / 0 = NaN, which never suppresses (``_CMP_GE_OS`` is
    ordered), so at t = 0 both are kept where IoU 0 >= 0 suppresses one."""
    if np.shape(boxes)[-1:] != (4,):
        return None  # the op refuses a box that is not 4 numbers: never the deviant output
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    labels, row = np.unique(classes, return_inverse=True)
    rows = np.full((max(len(labels), 1), len(classes)), -np.inf)
    rows[row, np.arange(len(classes))] = np.asarray(scores, dtype=np.float64).reshape(-1)
    return nms9_cpu(boxes, rows, iou_threshold)


# --- Proposal-4 (openvino-legacy) ------------------------------------------------------------


def _partial_sort(keys: list[float], middle: int) -> list[int]:
    """The order libstdc++'s ``std::partial_sort(first, first + middle, last, comp)`` leaves the
    first ``middle`` elements in, with ``comp(a, b) = a > b`` (``bits/stl_algo.h``
    ``__partial_sort``: ``__heap_select`` then ``__sort_heap``; ``bits/stl_heap.h``): returns the
    original positions. Deterministic, but not stable: ties come out in the heap's order."""
    items = list(range(len(keys)))

    def comp(i: int, j: int) -> bool:
        return keys[i] > keys[j]

    def push_heap(hole: int, top: int, value: int) -> None:
        parent = (hole - 1) // 2
        while hole > top and comp(items[parent], value):
            items[hole] = items[parent]
            hole = parent
            parent = (hole - 1) // 2
        items[hole] = value

    def adjust_heap(hole: int, length: int, value: int) -> None:
        top, child = hole, hole
        while child < (length - 1) // 2:
            child = 2 * (child + 1)
            if comp(items[child], items[child - 1]):
                child -= 1
            items[hole] = items[child]
            hole = child
        if length % 2 == 0 and child == (length - 2) // 2:
            child = 2 * (child + 1)
            items[hole] = items[child - 1]
            hole = child - 1
        push_heap(hole, top, value)

    def pop_heap(last: int, result: int) -> None:
        value = items[result]
        items[result] = items[0]
        adjust_heap(0, last, value)

    if middle >= 2:  # __make_heap
        for parent in range((middle - 2) // 2, -1, -1):
            adjust_heap(parent, middle, items[parent])
    for i in range(middle, len(items)):  # __heap_select
        if comp(items[i], items[0]):
            pop_heap(middle, i)
    for last in range(middle - 1, 0, -1):  # __sort_heap
        pop_heap(last, last)
    return items[:middle]


def proposal4_crashes(anchors, pre_nms_top_n, post_nms_top_n, **_) -> bool:
    """Where the CPU plugin's Proposal-4 crashes (SIGSEGV), and the adapter raises ``ValueError``
    instead: ``min(pre_nms_topn, #anchors) < 8`` and ``post_nms_topn > 1`` (a count of 0 asks for
    no proposal; the adapter answers it without calling the op)."""
    n, pre_n, post_n = len(np.reshape(anchors, (-1, 4))), int(pre_nms_top_n), int(post_nms_top_n)
    return n > 0 and pre_n > 0 and post_n > 1 and min(pre_n, n) < 8


def _proposal4_refuses(anchors, levels) -> bool:
    """The anchors Proposal-4 cannot be given: several levels, or no grid of its own (the
    adapter's ``proposal_grid``; the properties draw only such grids under ``own-grid``)."""
    if len(np.unique(np.asarray(levels))) > 1:
        return True
    from detspec.conformance.adapters.openvino_adapter import proposal_grid

    try:
        proposal_grid(np.asarray(anchors, dtype=np.float64).reshape(-1, 4))
    except ValueError:
        return True
    return False


def proposal4_cpu(
    anchors, logits, deltas, levels, image_size, pre_nms_top_n, post_nms_top_n, nms_threshold, min_size
) -> Proposals:
    """Proposal-4 (``framework=""``) on the CPU plugin as the ``openvino-legacy`` adapter runs it,
    py-faster-rcnn's proposal layer in float32 (``nodes/proposal_imp.cpp``, ``proposal_exec``):

    * ``enumerate_proposals_cpu``: score ``sigmoid(logit)`` (the graph's Sigmoid); ``ww = x2 - x1
      + 1``, ``ctr = x1 + ww / 2``, ``pcx = dx ww + ctr``, ``pw = exp(dw) ww`` with no clamp;
      ``x1' = pcx - pw / 2``, ``x2' = pcx + pw / 2`` -- py-faster-rcnn's ``bbox_transform_inv``,
      one pixel wider than the inverse of its encoding; clipped by ``std::max(0, std::min(v,
      W - 1))``; a box with ``w' + 1 < min_size`` or ``h' + 1 < min_size`` keeps its place with
      score ``0`` (``(min_box_W <= box_w) * (min_box_H <= box_h) * score``);
    * ``std::partial_sort`` of all boxes by score, the first ``min(N, pre_nms_topn)`` kept in its
      (unstable) order;
    * ``nms_cpu``: greedy, legacy IoU (``+1``) in float32, but 0 unless ``x1 <= x2'``, ``y1 <= y2'``
      both ways (boxes less than a pixel apart overlap in the ``+1`` IoU and are not compared), a
      box dead when ``nms_thresh < IoU``; stops at ``post_nms_topn`` kept boxes;
    * ``retrieve_rois_cpu``: the kept boxes with their (possibly zeroed) scores; the adapter
      reads up to the ``-1`` end marker.

    Where the op would crash (:func:`proposal4_crashes`) or cannot be given the anchors, the
    adapter raises ``ValueError``; a count of 0 gives no proposal."""
    f = F32
    a = np.asarray(anchors, dtype=f).reshape(-1, 4)
    pre_n, post_n = int(pre_nms_top_n), int(post_nms_top_n)
    n = len(a)
    if pre_n == 0 or post_n == 0 or n == 0:
        return Proposals(np.zeros((0, 4), f), np.zeros(0, f))
    if proposal4_crashes(anchors, pre_n, post_n) or _proposal4_refuses(anchors, levels):
        raise ValueError("Proposal-4: the CPU plugin crashes on these counts, or the anchors are no grid")
    d = np.asarray(deltas, dtype=f).reshape(-1, 4)
    with np.errstate(all="ignore"):
        score = (1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64).reshape(-1)))).astype(f)
        size = a[:, 2:] - a[:, :2] + f(1)
        centre = a[:, :2] + f(0.5) * size
        moved = d[:, :2] * size + centre
        grown = np.exp(d[:, 2:]) * size
        boxes = np.concatenate([moved - f(0.5) * grown, moved + f(0.5) * grown], axis=1)
    height, width = (f(v) for v in image_size)
    upper = np.array([width, height, width, height], dtype=f) - f(1)
    boxes = np.where(upper < boxes, upper, boxes)  # std::min(v, upper): NaN stays NaN
    boxes = np.where(f(0) < boxes, boxes, f(0))  # std::max(0, v): NaN becomes 0
    sides = boxes[:, 2:] - boxes[:, :2] + f(1)
    big = (f(min_size) <= sides[:, 0]) & (f(min_size) <= sides[:, 1])
    score = np.where(big, score, f(0)).astype(f)
    order = _partial_sort(score.tolist(), min(n, pre_n))
    candidates, keys = boxes[order], score[order]
    dead = np.zeros(len(order), dtype=bool)
    kept: list[int] = []
    threshold = f(nms_threshold)
    for i in range(len(order)):
        if dead[i]:
            continue
        kept.append(i)
        if len(kept) == post_n:
            break
        b, rest = candidates[i], candidates[i + 1 :]
        with np.errstate(all="ignore"):
            overlap = np.all((b[:2] <= rest[:, 2:]) & (rest[:, :2] <= b[2:]), axis=1)
            w = np.maximum(f(0), np.minimum(b[2], rest[:, 2]) - np.maximum(b[0], rest[:, 0]) + f(1))
            h = np.maximum(f(0), np.minimum(b[3], rest[:, 3]) - np.maximum(b[1], rest[:, 1]) + f(1))
            inter = w * h
            area_b = (b[2] - b[0] + f(1)) * (b[3] - b[1] + f(1))
            area_rest = (rest[:, 2] - rest[:, 0] + f(1)) * (rest[:, 3] - rest[:, 1] + f(1))
            iou = np.where(overlap, inter / (area_b + area_rest - inter), f(0))
        dead[i + 1 :] |= threshold < iou
    return Proposals(candidates[kept], keys[kept])


@deviant_output("generate_proposals", applies=proposal4_crashes)
def proposal4_crashes_below_eight_boxes(
    anchors, logits, deltas, levels, image_size, pre_nms_top_n, post_nms_top_n, nms_threshold, min_size
):
    """Proposal-4 crashes the CPU plugin (SIGSEGV) when fewer than 8 boxes enter its NMS
    (``min(pre_nms_topn, #anchors) < 8``) and ``post_nms_topn > 1``: after the first box is kept,
    the 8-wide AVX2 loop of ``nms_cpu`` (``nodes/proposal_imp.cpp``) runs past ``is_dead`` and the
    unpacked boxes (under gdb: a fault on ``vmovdqu`` of ``is_dead + tail`` with ``tail = 1 + 8 k``,
    k = 15620). The adapter raises ``ValueError`` there instead of losing the worker; this model
    raises exactly there (``applies``) and is checked on no other call."""
    return proposal4_cpu(
        anchors, logits, deltas, levels, image_size, pre_nms_top_n, post_nms_top_n, nms_threshold, min_size
    )


@deviant_output("generate_proposals")
def proposal4_layer(
    anchors, logits, deltas, levels, image_size, pre_nms_top_n, post_nms_top_n, nms_threshold, min_size
):
    """Everything Proposal-4 returns (:func:`proposal4_cpu`): py-faster-rcnn's decode ``x2 = ctr +
    w / 2`` (one pixel wider than the inverse of its encoding); a box below the min size kept with
    score 0 (returned when fewer than ``post_nms_topn`` boxes survive the NMS); an NMS that takes
    the IoU of two boxes to be 0 unless ``x1 <= x2'`` and ``y1 <= y2'`` both ways, so boxes less
    than a pixel apart, which overlap in the legacy ``+1`` IoU, never suppress each other; and
    the crash below 8 boxes (``ValueError``)."""
    return proposal4_cpu(
        anchors, logits, deltas, levels, image_size, pre_nms_top_n, post_nms_top_n, nms_threshold, min_size
    )


@deviant_check("multiscale_roi_align")
def feature_extractor_value_of_empty_rois(output, features, rois, output_size, sampling_ratio, image_size):
    """:func:`feature_extractor_pools_empty_rois_from_no_map` on random maps of any magnitude: a
    RoI of zero area pools exactly 0; every other RoI is the spec's RoIAlign (not aligned) of the
    map :func:`feature_extractor_levels` names, at scale ``1 / pyramid_scale``, within the
    float32 round-off of :func:`align_value_tolerance`."""
    size = (int(output_size[0]), int(output_size[1]))
    rois = np.asarray(rois, dtype=np.float64).reshape(-1, 4)
    maps = [np.asarray(f, dtype=np.float64) for f in features]
    expected = feature_extractor_pools_empty_rois_from_no_map.model(
        maps, rois, size, sampling_ratio, image_size
    )
    index = feature_extractor_levels(rois, len(maps))
    tol = np.zeros((len(rois), 1, *size))  # a RoI without a map: exactly 0
    for level, feature_map in enumerate(maps):
        members = index == level
        if members.any():
            stride = round(float(image_size[0]) / feature_map.shape[1])
            tol[members] = align_value_tolerance(
                feature_map, rois[members], size, 1.0 / stride, int(sampling_ratio), False
            )
    return _within(output, expected, tol, "the feature extractor's")
