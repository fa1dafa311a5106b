"""Deviant models of ONNX Runtime 1.32.0 (CPU, float32): what each documented deviation in
``conformance/expectations/onnxruntime.toml`` computes, written from ORT's kernels.

Each model transcribes the kernel's arithmetic in NumPy float32, in its order, so that it equals
ORT's output on every input of the operation (not only where it deviates). Sources, in
https://github.com/microsoft/onnxruntime (the stored versions cited; ORT 1.32.0 behaves as
transcribed, checked bit for bit in ``tests/test_onnxruntime_adapter.py``):

* ``core/providers/cpu/object_detection/non_max_suppression.cc`` @ 99abe218 (NonMaxSuppression);
* ``core/providers/cpu/nn/roi_pool.cc`` @ 3f94c2c8 (MaxRoiPool);
* ``core/providers/cpu/signal/dft.cc`` @ 8ee54c42 (DFT: radix-2 and Bluestein's z-chirp).

Where an exported graph is torchvision's own arithmetic (``box_iou``; ``batched_nms``'s coordinate
offsets), the models are torchvision's (``detspec.conformance.deviations.torchvision``), imported
here, not copied.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np
from detspec.conformance.deviations import deviant_check, deviant_output
from detspec.conformance.deviations import torchvision as torchvision_models
from detspec.conformance.deviations.torchvision import iou_without_a_zero_guard
from detspec.reference.fourier import ZERO_FRACTION


class Fail(Exception):
    """Stands for ``onnxruntime.capi.onnxruntime_pybind11_state.Fail``: a deviant model raises
    what ORT raises, matched by the exception's type name (the models import no runtime)."""


__all__ = [
    "clip_fails_on_no_boxes",
    "iou_without_a_zero_guard",
    "max_roi_pool_with_float32_bin_edges",
    "nms_normalises_corners_and_keeps_nan",
    "phase_only_with_float32_bluestein",
    "traced_batched_nms_with_coordinate_offsets",
]

F32 = np.float32


# --- NonMaxSuppression ------------------------------------------------------------------------


def _std_max(a, b):
    """``std::max(a, b)``: ``(a < b) ? b : a``."""
    return b if a < b else a


def _std_min(a, b):
    """``std::min(a, b)``: ``(b < a) ? b : a``."""
    return b if b < a else a


def _max_min(lhs, rhs):
    """``nms_helpers::MaxMin`` (``non_max_suppression_helper.h``): ``(min, max)``, and with a NaN
    ``(lhs, rhs)`` as they are."""
    return (rhs, lhs) if lhs >= rhs else (lhs, rhs)


def onnx_nms_float32(boxes, scores, iou_threshold) -> np.ndarray:
    """NonMaxSuppression-11 on one batch and class, ``center_point_box = 0``, no score threshold
    (``non_max_suppression.cc`` L135-183 ``BoxInfo``, L211-233 the selection loop): each box's
    corners are put in order (``MaxMin``: an inverted box is silently repaired), its area is
    ``(y2 - y1) * (x2 - x1)`` in float32; boxes are taken by decreasing score (a max-heap whose
    ties go to the lower index) and one is kept unless ``SuppressByIOU`` with an already kept box
    is true: an empty intersection along x or y, or an intersection area <= 0, is never a
    suppression; otherwise ``inter / (area + area_kept - inter) > iou_threshold`` (float32). A NaN
    coordinate makes every comparison false: such a box suppresses nothing and is never suppressed.
    (Scores must not be NaN: a NaN score breaks the heap's ordering, which this model does not
    describe.)"""
    b = np.asarray(boxes, dtype=F32).reshape(-1, 4)
    s = np.asarray(scores, dtype=F32).reshape(-1)
    t = F32(iou_threshold)
    ordered = []
    with np.errstate(all="ignore"):
        for x1, y1, x2, y2 in b:
            x_min, x_max = _max_min(x1, x2)
            y_min, y_max = _max_min(y1, y2)
            ordered.append((x_min, x_max, y_min, y_max, F32((y_max - y_min) * (x_max - x_min))))
        keep: list[int] = []
        for i in np.argsort(-s, kind="stable"):
            cx0, cx1, cy0, cy1, c_area = ordered[i]
            suppressed = False
            for k in keep:
                kx0, kx1, ky0, ky1, k_area = ordered[k]
                ix0, ix1 = _std_max(cx0, kx0), _std_min(cx1, kx1)
                if ix1 <= ix0:
                    continue
                iy0, iy1 = _std_max(cy0, ky0), _std_min(cy1, ky1)
                if iy1 <= iy0:
                    continue
                inter = F32(F32(ix1 - ix0) * F32(iy1 - iy0))
                if inter <= 0:
                    continue
                union = F32(F32(c_area + k_area) - inter)
                if F32(inter / union) > t:
                    suppressed = True
                    break
            if not suppressed:
                keep.append(int(i))
    return np.asarray(keep, dtype=np.int64)


def _finite_scores(boxes, scores, **_) -> bool:
    return bool(np.all(np.isfinite(np.asarray(scores, dtype=np.float64))))


@deviant_output("nms", applies=_finite_scores)
def nms_normalises_corners_and_keeps_nan(boxes, scores, iou_threshold):
    """NonMaxSuppression validates nothing: inverted corners are put in order (the ONNX operator
    accepts "any diagonal pair of corners"), and a box with a NaN coordinate is kept, never
    suppressing or suppressed. A wrong column count is the one thing it rejects (``boxes`` must be
    ``[B, N, 4]``)."""
    if np.shape(boxes)[-1:] != (4,):
        return None  # the operator raises: never the deviant output
    return onnx_nms_float32(boxes, scores, iou_threshold)


# --- MaxRoiPool -------------------------------------------------------------------------------


def _round_half_away(values: np.ndarray) -> np.ndarray:
    """``std::round`` on floats: half away from zero (the + 0.5 in float64, exact for float32)."""
    values = np.asarray(values, dtype=np.float64)
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


def max_roi_pool_float32(features, rois, output_size, spatial_scale) -> np.ndarray:
    """MaxRoiPool-1 (``roi_pool.cc`` L36-88, Caffe's ROIPooling): corners
    ``std::round(x * spatial_scale)`` in float32; ``roi_height = max(end - start + 1, 1)``;
    ``bin_size = float(roi_height) / pooled`` (L49-52); bin ``p`` covers
    ``floor(p * bin_size) .. ceil((p + 1) * bin_size)`` (float32, L62-65) shifted by the start
    and clipped to the map; an empty bin is 0, any other the max over its cells."""
    x = np.asarray(features, dtype=F32)
    boxes = np.asarray(rois, dtype=F32).reshape(-1, 4)
    ph, pw = int(output_size[0]), int(output_size[1])
    channels, height, width = x.shape
    scale = F32(spatial_scale)
    out = np.zeros((len(boxes), channels, ph, pw), F32)
    for r, roi in enumerate(boxes):
        start_w, start_h, end_w, end_h = (int(v) for v in _round_half_away(roi * scale))
        bin_h = F32(F32(max(end_h - start_h + 1, 1)) / F32(ph))
        bin_w = F32(F32(max(end_w - start_w + 1, 1)) / F32(pw))
        for i in range(ph):
            h0 = min(max(int(np.floor(F32(i) * bin_h)) + start_h, 0), height)
            h1 = min(max(int(np.ceil(F32(i + 1) * bin_h)) + start_h, 0), height)
            for j in range(pw):
                w0 = min(max(int(np.floor(F32(j) * bin_w)) + start_w, 0), width)
                w1 = min(max(int(np.ceil(F32(j + 1) * bin_w)) + start_w, 0), width)
                if h1 > h0 and w1 > w0:
                    out[r, :, i, j] = x[:, h0:h1, w0:w1].reshape(channels, -1).max(axis=1)
    return out


@deviant_output("roi_pool")
def max_roi_pool_with_float32_bin_edges(features, rois, output_size, spatial_scale):
    """MaxRoiPool computes the bin size ``fl(L / n)`` in float32 and the bin end
    ``ceil((p + 1) * bin_size)``: for some extents (57 cells in 7 bins) the product lands just
    above an integer and the last bin reads one cell past the RoI (Caffe's arithmetic, as
    torchvision's ``roi_pool``)."""
    return max_roi_pool_float32(features, rois, output_size, spatial_scale)


# --- DFT (float32) ----------------------------------------------------------------------------

_LIBM = ctypes.CDLL(ctypes.util.find_library("m"))
for _name in ("cosf", "sinf"):
    getattr(_LIBM, _name).restype = ctypes.c_float
    getattr(_LIBM, _name).argtypes = [ctypes.c_float]


def _exp_i(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``std::complex<float>(cos(a), sin(a))``: the C library's ``cosf``/``sinf``, as the kernel
    calls them (NumPy's float32 cos and sin differ from them by an ulp now and then)."""
    flat = [float(a) for a in np.ravel(angles)]
    cos = np.array([_LIBM.cosf(a) for a in flat], F32).reshape(np.shape(angles))
    sin = np.array([_LIBM.sinf(a) for a in flat], F32).reshape(np.shape(angles))
    return cos, sin


def _bit_reverse(number: int, bits: int) -> int:
    return int(f"{number:032b}"[::-1], 2) >> (32 - bits) if bits else 0


def _cmul(a_re, a_im, b_re, b_im):
    """``std::complex<float>`` product: ``(ac - bd, ad + bc)``, each rounded to float32."""
    return a_re * b_re - a_im * b_im, a_re * b_im + a_im * b_re


@functools.cache
def _vandermonde(n: int, inverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """``fft_radix2``'s table ``V`` (dft.cc L133-142): ``V[bitrev(i)] = exp(i * i * w)`` with
    ``w = (±1 * 2 * float(M_PI)) / n`` (``compute_angular_velocity``, L87-95) and the angle
    ``float(i) * w`` (``compute_exponential``, L97-101)."""
    bits = n.bit_length() - 1
    velocity = F32(F32(F32(1.0 if inverse else -1.0) * F32(2) * F32(np.pi)) / F32(n))
    angles = np.arange(n, dtype=F32) * velocity
    cos, sin = _exp_i(angles)
    order = np.array([_bit_reverse(i, bits) for i in range(n)], dtype=np.int64)
    re, im = np.empty(n, F32), np.empty(n, F32)
    re[order], im[order] = cos, sin
    return re, im


def _radix2(re, im, n: int, inverse: bool, table) -> tuple[np.ndarray, np.ndarray]:
    """``fft_radix2`` (dft.cc L103-190) along the last axis: bit-reversed load, butterflies
    ``even + V[bitrev(k)] * odd`` and ``even + V[bitrev(mid + k)] * odd``, then ``/= n`` if
    ``inverse``."""
    bits = n.bit_length() - 1
    order = np.array([_bit_reverse(i, bits) for i in range(n)], dtype=np.int64)
    y_re, y_im = re[..., order].copy(), im[..., order].copy()
    v_re, v_im = table
    size, current = 2, 0
    while size <= n:
        middle = size // 2
        current += 1
        for k in range(middle):
            first, second = _bit_reverse(k, current), _bit_reverse(middle + k, current)
            even = np.arange(k, n, size)
            odd = even + middle
            e_re, e_im, o_re, o_im = y_re[..., even], y_im[..., even], y_re[..., odd], y_im[..., odd]
            p_re, p_im = _cmul(v_re[first], v_im[first], o_re, o_im)
            q_re, q_im = _cmul(v_re[second], v_im[second], o_re, o_im)
            y_re[..., even], y_im[..., even] = e_re + p_re, e_im + p_im
            y_re[..., odd], y_im[..., odd] = e_re + q_re, e_im + q_im
        size <<= 1
    if inverse:
        y_re, y_im = y_re / F32(n), y_im / F32(n)
    return y_re, y_im


@functools.cache
def _chirp(n: int, inverse: bool):
    """``dft_bluestein_z_chirp``'s chirp and the FFT of ``b`` (dft.cc L212-246): the exponent
    ``direction * pi * n * n / N`` is evaluated left to right in float32 -- an angle up to
    ``pi (N - 1)^2 / N`` with no reduction, which is where the float32 transform loses its
    accuracy."""
    m = 1 << (2 * n - 2).bit_length()  # next power of two >= 2N - 1
    direction = F32(1.0 if inverse else -1.0)
    k = np.arange(n, dtype=F32)
    c_re, c_im = _exp_i((((direction * F32(np.pi)) * k) * k) / F32(n))
    b_re, b_im = np.zeros(m, F32), np.zeros(m, F32)
    b_re[:n], b_im[:n] = c_re, -c_im
    tail = np.arange(m - n + 1, m)
    b_re[tail], b_im[tail] = b_re[m - tail], b_im[m - tail]
    table = _vandermonde(m, False)  # V is built by the first (forward) FFT and reused
    return m, c_re, c_im, _radix2(b_re, b_im, m, False, table), table


def _dft(re, im, inverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """ORT's float32 DFT along the last axis (``onesided = 0``): radix-2 for a power-of-two
    length, else Bluestein (dft.cc L202-300): ``a = x * chirp``, ``A = FFT(a) * FFT(b)``, the
    "inverse" FFT run with the forward table and ``/ M`` (hence the reversed read-out
    ``a[M - i]``), times the chirp, times ``scale = 1.f / N`` when inverse."""
    n = re.shape[-1]
    if n & (n - 1) == 0:
        return _radix2(re, im, n, inverse, _vandermonde(n, inverse))
    m, c_re, c_im, (bf_re, bf_im), table = _chirp(n, inverse)
    a_re, a_im = np.zeros((*re.shape[:-1], m), F32), np.zeros((*re.shape[:-1], m), F32)
    a_re[..., :n], a_im[..., :n] = _cmul(re, im, c_re, c_im)
    a_re, a_im = _radix2(a_re, a_im, m, False, table)
    a_re, a_im = _cmul(a_re, a_im, bf_re, bf_im)
    a_re, a_im = _radix2(a_re, a_im, m, True, table)
    read = np.concatenate([[0], m - np.arange(1, n)])
    out_re, out_im = _cmul(a_re[..., read], a_im[..., read], c_re, c_im)
    scale = F32(F32(1) / F32(n)) if inverse else F32(1)
    return out_re * scale, out_im * scale


def ort_dft2(re, im, inverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The adapter's two DFT-20 nodes on an (H, W) signal: along H (axis 1), then W (axis 2)."""
    re, im = np.asarray(re, F32), np.asarray(im, F32)
    re, im = _dft(re.T.copy(), im.T.copy(), inverse)
    return _dft(re.T.copy(), im.T.copy(), inverse)


def _spectrum(image):
    image = np.asarray(image, dtype=F32)
    re, im = ort_dft2(image, np.zeros_like(image))
    return re, im, np.sqrt(re * re + im * im)


def _unit(re, im, magnitude):
    """The graph's unit phase: ``|F| > ZERO_FRACTION * max |F|`` (float32), ``F / |F|``, else 0."""
    kept = magnitude > magnitude.max() * F32(ZERO_FRACTION)
    den = np.where(kept, magnitude, F32(1))
    return np.where(kept, re / den, F32(0)).astype(F32), np.where(kept, im / den, F32(0)).astype(F32)


def ort_phase_only(image) -> np.ndarray:
    """The adapter's phase-only graph: DFT, ``Sqrt(re * re + im * im)``, the unit phase, DFT
    with ``inverse = 1``, real part -- all in float32."""
    return ort_dft2(*_unit(*_spectrum(image)), inverse=True)[0]


@deviant_output("phase_only")
def phase_only_with_float32_bluestein(image):
    """ORT's float32 DFT is Bluestein's z-chirp for lengths that are not powers of two, with the
    chirp angle ``pi n^2 / N`` computed in float32 without reduction: 4-40 ulp of max |F| off
    (numpy.fft and torch.fft: about 1). Phase-only divides by |F| down to 1e-4 max |F|, which
    amplifies that error beyond the float32 tolerance on images with weak coefficients."""
    return ort_phase_only(image)


# --- exported torchvision ---------------------------------------------------------------------


@deviant_check("batched_nms")
def traced_batched_nms_with_coordinate_offsets(output, boxes, scores, classes, iou_threshold):
    """torchvision's ``batched_nms`` takes ``_batched_nms_coordinate_trick`` whenever it is traced
    (``torchvision._is_tracing()``, ``ops/boxes.py`` L86-L90), so the exported graph shifts every
    box by ``class * (max coordinate + 1)`` and runs one NonMaxSuppression at *every* input size
    (eager torchvision only up to 4000 coordinates): torchvision's model
    ``batched_nms_with_coordinate_offsets`` without its size limit."""
    return torchvision_models.batched_nms_with_coordinate_offsets.model(
        output, boxes=boxes, scores=scores, classes=classes, iou_threshold=iou_threshold
    )


@deviant_output("clip_boxes_to_image")
def clip_fails_on_no_boxes(boxes, image_size):
    """The exported ``clip_boxes_to_image`` (its traced branch: ``torch.max(x, 0)``, then
    ``torch.min(x, width)``, in float32) ends in ``Reshape(stacked, [N, 4])`` with the shape built
    from ``Shape(boxes)``; ORT's ReshapeFusion (``core/optimizer/reshape_fusion.cc``, a basic
    graph optimisation, on by default) folds that shape into the constant ``[0, -1]``, from which
    ``-1`` cannot be inferred when there are no boxes: ORT raises ``Fail``
    (``reshape_helper.h:84``)."""
    array = np.asarray(boxes, dtype=F32)
    if array.size == 0:
        raise Fail("The input tensor cannot be reshaped to the requested shape: {0,2,2} to {0,-1}")
    height, width = (F32(v) for v in image_size)
    array = array.reshape(-1, 4)
    limits = np.array([width, height, width, height], F32)
    return np.minimum(np.maximum(array, F32(0)), limits)
