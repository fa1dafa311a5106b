"""OpenVINO's CPU plugin behind the implementation interface (``--impl openvino``, ``openvino-legacy``).

Each operation is one small OpenVINO model built from the runtime's own operations, compiled once
per *shape-independent configuration* (the op's static attributes; every shape is dynamic) and
cached, with ``INFERENCE_PRECISION_HINT = f32``: on CPUs with AVX512-BF16 or AMX the plugin's
default is bf16, and ROIPooling then returns bf16-rounded values. Conversions to and from NumPy,
layouts (box order, NCHW, one score row per class) and the choice of attributes stay here; every
decode, clip, sort, NMS, interpolation and transform is OpenVINO's. The adapter neither validates
inputs the operations accept nor adjusts a threshold: what OpenVINO does is what is tested.

* ``openvino``: NonMaxSuppression-9 (``nms``, ``batched_nms``),
  ExperimentalDetectronPriorGridGenerator-6 (``grid_anchors``), GenerateProposals-9 one per
  level + TopK (``generate_proposals``), ROIAlign-9 (``roi_align``), ROIPooling-2
  (``roi_pool``), ExperimentalDetectronROIFeatureExtractor-6 (``multiscale_roi_align``), DFT-7 /
  IDFT-7 graphs (the Fourier operations).
* ``openvino-legacy``: Proposal-4, py-faster-rcnn's proposal layer; see :class:`OpenVINOLegacyAdapter`.

Both write repro snippets in OpenVINO's own API (``repro_snippet``: :func:`openvino_snippet`,
:func:`proposal4_snippet`): the model of the failing call, built with ``openvino.opset16`` (or
its one-operation IR) and run on the call's inputs. Suite (dev profile, 2 cores): ``openvino``
~15 s, ``openvino-legacy`` ~5 s; most of it is compiling one model per configuration.

ExperimentalDetectron* operations have no Python factory in openvino 2026.4: they are built from
a one-operation IR (:func:`_single_op_model`). Sources cited as ``nodes/<file>`` are
``src/plugins/intel_cpu/src/nodes/`` of https://github.com/openvinotoolkit/openvino (releases/2026/4).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import openvino as ov
import openvino.opset16 as ops
from detspec.properties.interface import Conventions, Proposals
from detspec.reference.fourier import ZERO_FRACTION
from openvino.utils.node_factory import NodeFactory

#: Every model is compiled for f32 (the plugin's default is bf16 on CPUs that have it).
COMPILE_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


class _Models:
    """Compiled models by configuration key; built on first use."""

    def __init__(self) -> None:
        self.core = ov.Core()
        self.cache: dict[tuple, ov.CompiledModel] = {}

    def get(self, key: tuple, build: Callable[[], ov.Model | str]) -> ov.CompiledModel:
        if key not in self.cache:
            model = build()
            if isinstance(model, str):  # IR XML of a one-operation model (no weights)
                model = self.core.read_model(model=model.encode(), weights=ov.Tensor(np.zeros(1, np.uint8)))
            self.cache[key] = self.core.compile_model(model, "CPU", COMPILE_CONFIG)
        return self.cache[key]


def _run(compiled: ov.CompiledModel, *inputs: Any) -> list[np.ndarray]:
    # np.require keeps a 0-d scalar 0-d (np.ascontiguousarray would make it (1,))
    result = compiled([np.require(np.asarray(x), requirements="C") for x in inputs])
    return [np.array(result[out]) for out in compiled.outputs]


def _f32(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _single_op_model(op_type: str, attrs: dict, inputs: list[tuple[str, list[int]]], outputs: list) -> str:
    """IR v11 of Parameters -> one opset6 operation -> Results (f32; -1 is a dynamic dimension)."""

    def port(pid: int, dims: list[int]) -> str:
        return f'<port id="{pid}" precision="FP32">' + "".join(f"<dim>{d}</dim>" for d in dims) + "</port>"

    layers, edges, n = [], [], len(inputs)
    for i, (name, dims) in enumerate(inputs):
        shape = ",".join("?" if d == -1 else str(d) for d in dims)
        layers.append(
            f'<layer id="{i}" name="{name}" type="Parameter" version="opset1">'
            f'<data shape="{shape}" element_type="f32"/><output>{port(0, dims)}</output></layer>'
        )
        edges.append(f'<edge from-layer="{i}" from-port="0" to-layer="{n}" to-port="{i}"/>')
    data = " ".join(f'{k}="{v}"' for k, v in attrs.items())
    layers.append(
        f'<layer id="{n}" name="op" type="{op_type}" version="opset6"><data {data}/>'
        f"<input>{''.join(port(i, d) for i, (_, d) in enumerate(inputs))}</input>"
        f"<output>{''.join(port(n + j, d) for j, d in enumerate(outputs))}</output></layer>"
    )
    for j, dims in enumerate(outputs):
        layers.append(
            f'<layer id="{n + 1 + j}" name="out{j}" type="Result" version="opset1">'
            f"<input>{port(0, dims)}</input></layer>"
        )
        edges.append(f'<edge from-layer="{n}" from-port="{n + j}" to-layer="{n + 1 + j}" to-port="0"/>')
    return (
        f'<?xml version="1.0"?><net name="{op_type}" version="11"><layers>{"".join(layers)}</layers>'
        f"<edges>{''.join(edges)}</edges></net>"
    )


def prior_grid_ir(stride_x: float, stride_y: float) -> str:
    """ExperimentalDetectronPriorGridGenerator-6 with explicit strides, flattened output."""
    return _single_op_model(
        "ExperimentalDetectronPriorGridGenerator",
        {"flatten": "true", "h": 0, "w": 0, "stride_x": stride_x, "stride_y": stride_y},
        [("priors", [-1, 4]), ("feature_map", [1, 1, -1, -1]), ("im_data", [1, 3, -1, -1])],
        [[-1, 4]],
    )


def centred_priors(sizes, ratios) -> np.ndarray:
    """``(A, 4)`` priors centred on 0, ``(w, h) = (s / sqrt(r), s sqrt(r))``, ratio-major."""
    sides = np.array([(s / math.sqrt(r), s * math.sqrt(r)) for r in ratios for s in sizes])
    return np.concatenate([-sides / 2, sides / 2], axis=1).reshape(-1, 4)


def feature_extractor_ir(strides: list[int], size: int, sampling_ratio: int) -> str:
    """ExperimentalDetectronROIFeatureExtractor-6 (``aligned="false"``) over one map per stride."""
    return _single_op_model(
        "ExperimentalDetectronROIFeatureExtractor",
        {
            "output_size": size,
            "sampling_ratio": sampling_ratio,
            "pyramid_scales": ",".join(str(s) for s in strides),
            "aligned": "false",
        },
        [("rois", [-1, 4])] + [(f"level{i}", [1, -1, -1, -1]) for i in range(len(strides))],
        [[-1, -1, size, size], [-1, 4]],
    )


def pyramid_scales(maps, image_size) -> list[int]:
    """Each map's stride, image height / map height (the op's ``pyramid_scales``)."""
    return [round(float(image_size[0]) / np.shape(m)[1]) for m in maps]


def _version(what: str) -> str:
    return f"openvino {ov.__version__} (CPU plugin, INFERENCE_PRECISION_HINT f32), {what}"


class OpenVINOAdapter:
    """OpenVINO operations (see the module docstring). Conventions besides detspec's defaults:
    NMS-9 suppresses at IoU ``>=`` t (``nms_bound = inclusive``, ``_CMP_GE_OS`` in
    ``nodes/kernels/x64/non_max_suppression.cpp``); the feature extractor counts levels from the
    first map (``finest-56``) and pools square outputs only (``multiscale_output = square``)."""

    name = "openvino"
    expectations_name = "openvino"
    conventions = Conventions(
        box_width="continuous",
        min_size_bound="inclusive",
        decode_clamp="upper",
        nms_bound="inclusive",
        dtype="float32",
        anchor_offset="centre",
        anchor_rounding="none",
        anchor_order="ratio-major",
        proposal_pipeline="per-level",
        proposal_min_size_stage="after-top-n",
        fpn_level_mapping="finest-56",
        multiscale_output="square",
    )

    def __init__(self) -> None:
        self.version = _version(
            "NMS-9, GenerateProposals-9, ROIAlign-9, ROIPooling-2, ExperimentalDetectron*-6, DFT-7"
        )
        self.facts = {"variant": "default", "device": "cpu"}
        self._models = _Models()

    # --- NMS ---------------------------------------------------------------------------------

    def _nms9(self) -> ov.CompiledModel:
        def build() -> ov.Model:
            boxes = ops.parameter([1, -1, 4], np.float32, name="boxes")
            scores = ops.parameter([1, -1, -1], np.float32, name="scores")
            max_out = ops.parameter([], np.int64, name="max_output_boxes_per_class")
            iou = ops.parameter([], np.float32, name="iou_threshold")
            score_threshold = ops.parameter([], np.float32, name="score_threshold")
            node = ops.non_max_suppression(
                boxes,
                scores,
                max_out,
                iou,
                score_threshold,
                ops.constant(np.float32(0)),  # soft_nms_sigma 0: hard NMS
                box_encoding="corner",
                sort_result_descending=True,
                output_type="i64",
            )
            return ov.Model([node.output(0), node.output(2)], [boxes, scores, max_out, iou, score_threshold])

        return self._models.get(("nms9",), build)

    def _nms_rows(self, boxes: Any, score_rows: np.ndarray, iou_threshold: float) -> np.ndarray:
        """NonMaxSuppression-9 over a ``(C, N)`` score matrix; the box index of every selected row.

        Corner boxes are ``(y1, x1, y2, x2)`` for NMS-9; IoU is symmetric in the two axes (and the
        kernel orders each box's corners by min/max), so ``(x1, y1, x2, y2)`` is passed as it is.
        The score threshold is -inf (the op keeps scores ``> threshold``, ``nodes/
        non_max_suppression.cpp:nmsWithoutSoftSigma``); the IoU threshold is passed unchanged."""
        b = _f32(boxes)
        if b.ndim == 2 and b.shape[0] == 0:
            b = b.reshape(0, 4)
        selected, valid = _run(
            self._nms9(),
            b[None],
            _f32(score_rows)[None],
            np.int64(max(score_rows.shape[-1], 1)),
            np.float32(iou_threshold),
            np.float32(-np.inf),
        )
        return selected[: int(valid[0]), 2].astype(np.int64)

    def nms(self, boxes, scores, iou_threshold):
        return self._nms_rows(boxes, _f32(scores).reshape(1, -1), iou_threshold)

    def batched_nms(self, boxes, scores, classes, iou_threshold):
        """One NMS-9 call with one score row per class: a box's score in its own class's row,
        -inf in the others (below the score threshold, so never a candidate there). The output is
        sorted by score across classes (``sort_result_descending``)."""
        classes = np.asarray(classes, dtype=np.int64).reshape(-1)
        labels, row = np.unique(classes, return_inverse=True)
        rows = np.full((max(len(labels), 1), len(classes)), -np.inf, np.float32)
        rows[row, np.arange(len(classes))] = _f32(scores).reshape(-1)
        return self._nms_rows(boxes, rows, iou_threshold)

    # --- anchors -----------------------------------------------------------------------------

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        """ExperimentalDetectronPriorGridGenerator-6 per level: the priors of cell (x, y) shifted by
        ``((x + 0.5) stride_x, (y + 0.5) stride_y)``, rows ``(y, x, a)``
        (``nodes/experimental_detectron_priorgridgenerator.cpp``). The priors themselves are an
        input of the op -- in a deployed model a constant: here ``(w, h) = (s / sqrt(r), s sqrt(r))``
        centred on 0, ratio-major."""
        levels = []
        for (height, width), stride, level_sizes, level_ratios in zip(
            feature_sizes, strides, sizes, ratios, strict=True
        ):
            stride_y, stride_x = (
                float(v) for v in (stride if isinstance(stride, list | tuple) else (stride, stride))
            )
            priors = centred_priors(level_sizes, level_ratios)

            compiled = self._models.get(
                ("prior_grid", stride_x, stride_y), lambda sx=stride_x, sy=stride_y: prior_grid_ir(sx, sy)
            )
            (grid,) = _run(
                compiled,
                _f32(priors),
                np.zeros((1, 1, int(height), int(width)), np.float32),
                np.zeros((1, 3, 1, 1), np.float32),  # image size: unused when the strides are given
            )
            levels.append(grid)
        return np.concatenate(levels) if levels else np.zeros((0, 4), np.float32)

    # --- proposals ---------------------------------------------------------------------------

    def _proposals_model(self, levels: int, pre_n: int, post_n: int, threshold: float, min_size: float):
        """GenerateProposals-9 (``normalized``: continuous widths) on each level's anchors, the
        levels' proposals concatenated, the top ``post_n`` taken by a stable TopK (ties: the lower
        level first), and Sigmoid of the logits they carry."""

        def build() -> ov.Model:
            im_info = ops.parameter([1, 3], np.float32, name="im_info")
            params, rois, scores = [im_info], [], []
            for level in range(levels):
                anchors = ops.parameter([1, 1, -1, 4], np.float32, name=f"anchors{level}")
                deltas = ops.parameter([1, -1, 1, 1], np.float32, name=f"deltas{level}")
                logits = ops.parameter([1, -1, 1, 1], np.float32, name=f"logits{level}")
                node = ops.generate_proposals(
                    im_info,
                    anchors,
                    deltas,
                    logits,
                    min_size=min_size,
                    nms_threshold=threshold,
                    pre_nms_count=pre_n,
                    post_nms_count=post_n,
                    normalized=True,
                    roi_num_type="i64",
                )
                params += [anchors, deltas, logits]
                rois.append(node.output(0))
                scores.append(node.output(1))
            all_rois = ops.concat(rois, 0) if levels > 1 else rois[0]
            all_scores = ops.concat(scores, 0) if levels > 1 else scores[0]
            count = ops.shape_of(all_scores, "i64")
            k = ops.minimum(count, ops.constant(np.array([post_n], np.int64)))
            top = ops.topk(all_scores, ops.squeeze(k, ops.constant(0)), 0, "max", "value", "i64", stable=True)
            boxes = ops.gather(all_rois, top.output(1), ops.constant(np.int64(0)))
            return ov.Model([boxes, ops.sigmoid(top.output(0))], params)

        key = ("gp9", levels, pre_n, post_n, float(threshold), float(min_size))
        return self._models.get(key, build)

    def generate_proposals(
        self,
        anchors,
        logits,
        deltas,
        levels,
        image_size,
        pre_nms_top_n,
        post_nms_top_n,
        nms_threshold,
        min_size,
    ):
        """GenerateProposals-9 per FPN level (``nodes/generate_proposals.cpp``): decode with dw, dh
        clamped at log(1000/16), clip to [0, W] x [0, H], top ``pre_nms_top_n`` by logit (an
        unstable ``partial_sort``: ties in any order), boxes with a side < min_size marked dead
        after that cut, greedy NMS at IoU > t, at most ``post_nms_top_n`` -- then a stable TopK
        over the levels: the per-level pipeline. Anchors, deltas and logits of a level go in as a
        1 x 1 map with N anchors. GenerateProposals-9 refuses counts of 0 (``pre_nms_count > 0``,
        ``post_nms_count > 0`` in ``src/core/src/op/generate_proposals.cpp``): a count of 0 asks
        for no proposal, and the adapter returns none without building a model."""
        pre_n, post_n = int(pre_nms_top_n), int(post_nms_top_n)
        anchors = _f32(anchors).reshape(-1, 4)
        logits = _f32(logits).reshape(-1)
        deltas = _f32(deltas).reshape(-1, 4)
        levels = np.asarray(levels, dtype=np.int64).reshape(-1)
        present = np.unique(levels)
        if pre_n == 0 or post_n == 0 or len(present) == 0:
            return Proposals(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
        compiled = self._proposals_model(len(present), pre_n, post_n, float(nms_threshold), float(min_size))
        height, width = (float(v) for v in image_size)
        inputs: list[np.ndarray] = [np.array([[height, width, 1.0]], np.float32)]
        for level in present:
            members = levels == level
            n = int(members.sum())
            inputs += [
                anchors[members].reshape(1, 1, n, 4),
                deltas[members].reshape(1, 4 * n, 1, 1),
                logits[members].reshape(1, n, 1, 1),
            ]
        boxes, scores = _run(compiled, *inputs)
        return Proposals(boxes, scores)

    # --- RoI pooling -------------------------------------------------------------------------

    def roi_align(self, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        """ROIAlign-9, mode ``avg`` (``nodes/roi_align.cpp``). ``aligned=False`` is
        ``aligned_mode="asymmetric"`` (x * scale; sides under one cell widened to one cell);
        ``aligned=True`` is ``"half_pixel_for_nn"`` (x * scale - 0.5, no widening), the mapping
        OpenVINO's ONNX frontend gives ONNX RoiAlign-16 ``half_pixel`` (torchvision's aligned).
        (``"half_pixel"`` is (x + 0.5) * scale - 0.5, another coordinate model.)"""
        ph, pw = (int(v) for v in output_size)
        mode = "half_pixel_for_nn" if aligned else "asymmetric"
        key = ("roi_align9", ph, pw, int(sampling_ratio), float(spatial_scale), mode)

        def build() -> ov.Model:
            data = ops.parameter([1, -1, -1, -1], np.float32)
            boxes = ops.parameter([-1, 4], np.float32)
            index = ops.parameter([-1], np.int32)
            node = ops.roi_align(
                data,
                boxes,
                index,
                pooled_h=ph,
                pooled_w=pw,
                sampling_ratio=int(sampling_ratio),
                spatial_scale=float(spatial_scale),
                mode="avg",
                aligned_mode=mode,
            )
            return ov.Model([node], [data, boxes, index])

        r = _f32(rois).reshape(-1, 4)
        (out,) = _run(self._models.get(key, build), _f32(features)[None], r, np.zeros(len(r), np.int32))
        return out

    def roi_pool(self, features, rois, output_size, spatial_scale):
        """ROIPooling-2, method ``max`` (``nodes/roi_pooling.cpp``): RoIs ``[batch, x1, y1, x2, y2]``
        in image coordinates, ``round(x * scale)``, ``+1`` cell, integer floor/ceil bin edges."""
        ph, pw = (int(v) for v in output_size)
        key = ("roi_pool", ph, pw, float(spatial_scale))

        def build() -> ov.Model:
            data = ops.parameter([1, -1, -1, -1], np.float32)
            boxes = ops.parameter([-1, 5], np.float32)
            node = ops.roi_pooling(
                data, boxes, output_roi=[ph, pw], spatial_scale=float(spatial_scale), method="max"
            )
            return ov.Model([node], [data, boxes])

        r = _f32(rois).reshape(-1, 4)
        batch_rois = np.concatenate([np.zeros((len(r), 1), np.float32), r], axis=1)
        (out,) = _run(self._models.get(key, build), _f32(features)[None], batch_rois)
        return out

    def multiscale_roi_align(self, features, rois, output_size, sampling_ratio, image_size):
        """ExperimentalDetectronROIFeatureExtractor-6 (``aligned="false"``,
        ``nodes/experimental_detectron_roifeatureextractor.cpp``): RoIAlign of each RoI on the map
        ``clamp(floor(2 + log2(sqrt(w h) / 224 + 1e-6)), 0, L - 1)`` counted from the first map
        (the declared ``finest-56`` mapping), with ``pyramid_scales`` the maps' strides (image
        height / map height). Its ``output_size`` is one number (``multiscale_output = square``:
        the properties ask for square outputs only); a non-square one cannot be expressed and
        raises."""
        oh, ow = (int(v) for v in output_size)
        if oh != ow:
            raise ValueError(
                f"ExperimentalDetectronROIFeatureExtractor-6 pools to output_size x output_size only; "
                f"({oh}, {ow}) cannot be expressed"
            )
        maps = [_f32(f) for f in features]
        strides = pyramid_scales(maps, image_size)
        key = ("roi_feature_extractor", tuple(strides), oh, int(sampling_ratio))

        def build() -> str:
            return feature_extractor_ir(strides, oh, int(sampling_ratio))

        pooled, _ = _run(self._models.get(key, build), _f32(rois).reshape(-1, 4), *[m[None] for m in maps])
        return pooled

    # --- Fourier -----------------------------------------------------------------------------

    def _fourier(self, kind: str) -> ov.CompiledModel:
        """DFT-7 over axes (0, 1) of (H, W, 2) = (image, 0): NumPy's fft2 (sign, no scaling);
        IDFT-7 scales by 1 / (H W) as NumPy's ifft2. |F| by Sqrt(ReduceSum(F^2)); the unit phase
        is 0 where |F| <= 1e-4 max |F| (spec/fourier.md), by ReduceMax, Greater and Select."""

        def complex_of(x):
            return ops.concat([ops.unsqueeze(x, -1), ops.unsqueeze(ops.multiply(x, np.float32(0)), -1)], -1)

        def magnitude(spectrum):
            return ops.sqrt(ops.reduce_sum(ops.multiply(spectrum, spectrum), np.int64(-1), keep_dims=True))

        def kept(spectrum):
            mag = magnitude(spectrum)
            peak = ops.reduce_max(mag, np.array([0, 1, 2], np.int64), keep_dims=True)
            return mag, ops.greater(mag, ops.multiply(peak, np.float32(ZERO_FRACTION)))

        def unit_phase(spectrum):
            mag, nonzero = kept(spectrum)
            return ops.select(
                nonzero, ops.divide(spectrum, ops.select(nonzero, mag, np.float32(1))), np.float32(0)
            )

        def real_part(spectrum):
            return ops.gather(spectrum, np.int64(0), np.int64(-1))

        def build() -> ov.Model:
            axes = np.array([0, 1], np.int64)
            image = ops.parameter([-1, -1], np.float32, name="image")
            params = [image]
            spectrum = ops.dft(complex_of(image), axes)
            if kind == "fft2":
                out = spectrum
            elif kind == "amplitude_spectrum":
                out = ops.squeeze(magnitude(spectrum), np.int64(-1))
            elif kind == "phase_spectrum":
                unit = unit_phase(spectrum)
                out = _atan2(ops.gather(unit, np.int64(1), np.int64(-1)), real_part(unit))
            elif kind == "phase_only":
                out = real_part(ops.idft(unit_phase(spectrum), axes))
            elif kind == "amplitude_only":
                mag = magnitude(spectrum)
                out = real_part(ops.idft(ops.concat([mag, ops.multiply(mag, np.float32(0))], -1), axes))
            else:  # hybrid: the phase of the first image, the amplitude of the second
                donor = ops.parameter([-1, -1], np.float32, name="amplitude_donor")
                params.append(donor)
                mixed = ops.multiply(unit_phase(spectrum), magnitude(ops.dft(complex_of(donor), axes)))
                out = real_part(ops.idft(mixed, axes))
            return ov.Model([out], params)

        return self._models.get(("fourier", kind), build)

    def fft2(self, image):
        (spectrum,) = _run(self._fourier("fft2"), _f32(image))
        return spectrum[..., 0] + 1j * spectrum[..., 1]

    def amplitude_spectrum(self, image):
        return _run(self._fourier("amplitude_spectrum"), _f32(image))[0]

    def phase_spectrum(self, image):
        return _run(self._fourier("phase_spectrum"), _f32(image))[0]

    def phase_only(self, image):
        return _run(self._fourier("phase_only"), _f32(image))[0]

    def amplitude_only(self, image):
        return _run(self._fourier("amplitude_only"), _f32(image))[0]

    def hybrid(self, phase_donor, amplitude_donor):
        return _run(self._fourier("hybrid"), _f32(phase_donor), _f32(amplitude_donor))[0]

    def repro_snippet(self, operation: str, arguments: dict) -> str | None:
        """The call as an OpenVINO model built with OpenVINO's own API (:func:`openvino_snippet`)."""
        return openvino_snippet(operation, arguments)


def _atan2(y, x):
    """arg(x + iy) in (-pi, pi] from Atan-1 and Select (OpenVINO has no Atan2): atan(y / x)
    moved by +-pi when x < 0, +-pi/2 on the imaginary axis, 0 at the origin."""
    zero = np.float32(0)
    base = ops.atan(ops.divide(y, ops.select(ops.equal(x, zero), np.float32(1), x)))
    left = ops.select(
        ops.greater_equal(y, zero), ops.add(base, np.float32(np.pi)), ops.subtract(base, np.float32(np.pi))
    )
    axis = ops.select(
        ops.greater(y, zero),
        np.float32(np.pi / 2),
        ops.select(ops.less(y, zero), np.float32(-np.pi / 2), zero),
    )
    return ops.select(ops.greater(x, zero), base, ops.select(ops.less(x, zero), left, axis))


def openvino() -> OpenVINOAdapter:
    return OpenVINOAdapter()


# --- Proposal-4: py-faster-rcnn's proposal layer ---------------------------------------------


class OpenVINOLegacyAdapter:
    """Proposal-4 (``framework=""``, ``nodes/proposal.cpp`` and ``nodes/proposal_imp.cpp``), the
    proposal layer of py-faster-rcnn. It generates its own anchors (``base_size``, ``ratio``,
    ``scale``, ``feat_stride``), so it serves ``generate_proposals`` only for anchors that *are*
    such a grid (``proposal_anchors = own-grid``: the properties draw only those); the adapter
    recovers those attributes from the anchors (and refuses any other anchors with a
    ``ValueError``), lays logits and deltas out as the op's NCHW inputs, and reads the RoIs and
    probabilities back. Decode, clip, min size, ranking, NMS and the top-N cuts are the op's own:

    * probabilities: Sigmoid of the logits in the graph (the op reads the foreground channels
      ``A..2A-1`` only, ``bbox_pred`` channel ``4a + k``);
    * min size: ``min_size`` is a whole number of pixels in the op and is multiplied by the image
      scale input (py-faster-rcnn's ``RPN_MIN_SIZE * im_info[2]``); the adapter sets the
      attribute to 1 and passes the min size as that scale;
    * output: rows up to the first ``-1`` batch index (the op pads its fixed ``post_nms_topn``
      rows with zeros after that marker); rows the op kept with probability 0 (boxes below the
      min size, whose score it multiplies by 0, when fewer than ``post_nms_topn`` boxes survive)
      are returned as the op returns them.

    Conventions (checked by ``detspec fingerprint`` where a probe can reach the op): legacy ``+1``
    widths and clip to ``W - 1``; anchors centred on ``(B - 1) / 2`` with ``roundf`` base sides
    (``legacy-away``), ratio-major; no decode clamp; one ranking and one NMS (``global``), a box
    below the min size ranked after every other (``before-top-n``), kept at ``w + 1 >= min``
    (``inclusive``). Documented deviations (``conformance/expectations/openvino.toml``): the decode
    ``x2 = ctr + w / 2``, small boxes returned with score 0, no suppression between boxes less than
    a pixel apart, and the crash below.

    Counts the CPU plugin cannot serve: it crashes (SIGSEGV) when ``min(pre_nms_topn, #anchors)
    < 8`` and ``post_nms_topn > 1``, and when ``post_nms_topn = 0``. No deployed model has such
    counts (a py-faster-rcnn grid has thousands of anchors and keeps 300 to 2000), so instead of
    letting the worker crash -- after three crashes the operation is not called again and every
    later property would report the crash -- the adapter refuses the first with a ``ValueError``
    naming the limitation (a documented deviation whose model raises exactly there), and answers
    a count of 0 (no proposal wanted) with no proposal."""

    name = "openvino-legacy"
    expectations_name = "openvino"
    conventions = Conventions(
        box_width="legacy",
        min_size_bound="inclusive",
        decode_clamp="none",
        dtype="float32",
        anchor_offset="legacy",
        anchor_rounding="legacy-away",
        anchor_order="ratio-major",
        proposal_pipeline="global",
        proposal_min_size_stage="before-top-n",
        proposal_anchors="own-grid",
    )

    def __init__(self) -> None:
        self.version = _version("Proposal-4 (framework '')")
        self.facts = {"variant": "legacy", "device": "cpu"}
        self._models = _Models()

    def _proposal4(self, grid: ProposalGrid, pre_n: int, post_n: int, threshold: float) -> ov.CompiledModel:
        def build() -> ov.Model:
            a = len(grid.ratios) * len(grid.scales)
            logits = ops.parameter([1, a, -1, -1], np.float32, name="logits")
            deltas = ops.parameter([1, 4 * a, -1, -1], np.float32, name="bbox_deltas")
            image_info = ops.parameter([3], np.float32, name="image_shape")
            foreground = ops.sigmoid(logits)
            probabilities = ops.concat([ops.multiply(foreground, np.float32(0)), foreground], 1)
            attrs = {
                "base_size": np.uint32(grid.base_size),
                "pre_nms_topn": np.uint32(pre_n),
                "post_nms_topn": np.uint32(post_n),
                "nms_thresh": np.float32(threshold),
                "feat_stride": np.uint32(grid.stride),
                "min_size": np.uint32(1),
                "ratio": np.asarray(grid.ratios, np.float32),
                "scale": np.asarray(grid.scales, np.float32),
                "clip_before_nms": True,
                "clip_after_nms": False,
                "normalize": False,
                "box_size_scale": np.float32(1),
                "box_coordinate_scale": np.float32(1),
                "framework": "",
            }
            # NodeFactory: the opset4.proposal wrapper refuses nms_thresh = 0 and a float min size
            node = NodeFactory("opset4").create("Proposal", [probabilities, deltas, image_info], attrs)
            return ov.Model([node.output(0), node.output(1)], [logits, deltas, image_info])

        key = (
            "proposal4",
            grid.base_size,
            grid.stride,
            grid.ratios,
            grid.scales,
            pre_n,
            post_n,
            float(threshold),
        )
        return self._models.get(key, build)

    def generate_proposals(
        self,
        anchors,
        logits,
        deltas,
        levels,
        image_size,
        pre_nms_top_n,
        post_nms_top_n,
        nms_threshold,
        min_size,
    ):
        anchors = np.asarray(anchors, dtype=np.float64).reshape(-1, 4)
        pre_n, post_n = int(pre_nms_top_n), int(post_nms_top_n)
        if pre_n == 0 or post_n == 0 or len(anchors) == 0:
            return Proposals(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
        if len(np.unique(np.asarray(levels))) > 1:
            raise ValueError(
                "Proposal-4 has one anchor grid: anchors on several FPN levels cannot be expressed"
            )
        grid = proposal_grid(anchors)
        if min(pre_n, len(anchors)) < 8 and post_n > 1:
            raise ValueError(
                f"Proposal-4 crashes the CPU plugin (SIGSEGV) when min(pre_nms_topn, #anchors) < 8 and "
                f"post_nms_topn > 1: pre_nms_topn = {pre_n}, {len(anchors)} anchors, post_nms_topn = {post_n}"
            )
        h, w, a = grid.height, grid.width, len(grid.ratios) * len(grid.scales)
        compiled = self._proposal4(grid, pre_n, post_n, float(nms_threshold))
        # rows (y, x, a) -> NCHW: channel a of the scores, channel 4a + k of the deltas
        scores = _f32(logits).reshape(h, w, a).transpose(2, 0, 1)[None]
        box_deltas = _f32(deltas).reshape(h, w, a, 4).transpose(2, 3, 0, 1).reshape(1, 4 * a, h, w)
        height, width = (float(v) for v in image_size)
        rois, probabilities = _run(
            compiled, scores, box_deltas, np.array([height, width, min_size], np.float32)
        )
        end = np.flatnonzero(rois[:, 0] == -1)
        count = int(end[0]) if len(end) else len(rois)
        return Proposals(rois[:count, 1:], probabilities[:count])

    def repro_snippet(self, operation: str, arguments: dict) -> str | None:
        """The call as a Proposal-4 model built with OpenVINO's own API (:func:`proposal4_snippet`)."""
        return proposal4_snippet(arguments) if operation == "generate_proposals" else None


@dataclass(frozen=True)
class ProposalGrid:
    """The Proposal-4 attributes whose anchors are a given grid, rows ``(y, x, a)``."""

    height: int
    width: int
    stride: int
    base_size: int
    ratios: tuple[float, ...]
    scales: tuple[float, ...]


def proposal_anchors(base_size: int, ratios, scales) -> np.ndarray:
    """Proposal-4's cell anchors as the CPU plugin computes them (``generate_anchors`` in
    ``nodes/proposal_imp.cpp``, float32): sides ``W_r = roundf(sqrt(B^2 / r))``, ``H_r = roundf(W_r
    r)`` (half away from zero) times each scale, centred on ``(B - 1) / 2``, ratio-major. Used only
    to check that a recovered grid reproduces the given anchors exactly."""
    f = np.float32
    centre = f(0.5) * (f(base_size) - f(1))
    rows = []
    for r in ratios:
        side_w = np.floor(np.sqrt(f(base_size * base_size) / f(r)) + f(0.5)).astype(f)
        side_h = np.floor(side_w * f(r) + f(0.5)).astype(f)
        for s in scales:
            half_w, half_h = f(0.5) * (side_w * f(s) - f(1)), f(0.5) * (side_h * f(s) - f(1))
            rows.append([centre - half_w, centre - half_h, centre + half_w, centre + half_h])
    return np.asarray(rows, dtype=f)


def proposal_grid(anchors: np.ndarray) -> ProposalGrid:
    """The Proposal-4 attributes (feature size, ``feat_stride``, ``base_size``, ``ratio``,
    ``scale``) whose own anchors equal ``anchors`` exactly in float32; ``ValueError`` if there are
    none (the op cannot be given anchors)."""
    n = len(anchors)
    for a in (a for a in range(1, min(n, 64) + 1) if n % a == 0):
        cells = anchors.reshape(-1, a, 4)
        offsets = cells - cells[:1]
        dx, dy = offsets[:, 0, 0], offsets[:, 0, 1]
        if not np.array_equal(
            offsets, np.broadcast_to(np.stack([dx, dy, dx, dy], 1)[:, None], offsets.shape)
        ):
            continue
        width = int(np.sum(dy == 0))
        if width == 0 or len(cells) % width:
            continue
        height = len(cells) // width
        stride = dx[1] if width > 1 else dy[width] if height > 1 else 16.0
        ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        if (
            stride != int(stride)
            or stride < 1
            or not (np.array_equal(dx, (xs * stride).ravel()) and np.array_equal(dy, (ys * stride).ravel()))
        ):
            continue
        cell = cells[0]
        centres = np.concatenate([cell[:, 0] + cell[:, 2], cell[:, 1] + cell[:, 3]]) / 2
        base_size = centres[0] * 2 + 1
        if not np.all(centres == centres[0]) or base_size != int(base_size) or base_size < 1:
            continue
        for ratios, scales in _ratio_scale_candidates(cell, int(base_size)):
            if np.array_equal(proposal_anchors(int(base_size), ratios, scales), _f32(cell)):
                return ProposalGrid(height, width, int(stride), int(base_size), ratios, scales)
    raise ValueError(
        "Proposal-4 generates its own anchors (base_size, ratio, scale, feat_stride): the given "
        f"{n} anchors are not such a grid (legacy centre (B - 1) / 2, roundf sides, ratio-major), so "
        "they cannot be expressed"
    )


def _ratio_scale_candidates(cell: np.ndarray, base_size: int):
    """``(ratios, scales)`` that may give ``cell`` (ratio-major: ``a = ratio * #scales + scale``):
    anchor sides ``W_r s`` by ``H_r s`` with integers ``W_r``, ``H_r`` reachable by ``roundf`` from
    one ratio ``r``, and one set of scales shared by every ratio."""
    widths, heights = cell[:, 2] - cell[:, 0] + 1, cell[:, 3] - cell[:, 1] + 1
    a = len(cell)
    for n_scales in (n for n in range(1, a + 1) if a % n == 0):
        w, h = widths.reshape(-1, n_scales), heights.reshape(-1, n_scales)
        for side_w in range(1, 4 * base_size + 1):
            scales = w[0] / side_w
            ratios = []
            for row_w, row_h in zip(w, h, strict=True):
                row_side_w, row_side_h = row_w[0] / scales[0], row_h[0] / scales[0]
                if not (np.allclose(row_w / scales, row_side_w) and np.allclose(row_h / scales, row_side_h)):
                    break
                rw, rh = round(row_side_w), round(row_side_h)
                low = max(base_size**2 / (rw + 0.5) ** 2, (rh - 0.5) / rw)
                high = min(base_size**2 / (rw - 0.5) ** 2 if rw > 0.5 else np.inf, (rh + 0.5) / rw)
                if abs(row_side_w - rw) > 1e-6 or abs(row_side_h - rh) > 1e-6 or rh < 1 or low >= high:
                    break
                ratios.append(_simplest_ratio(low, high, base_size, rw, rh))
            else:
                yield tuple(ratios), tuple(float(np.float32(s)) for s in scales)


def _simplest_ratio(low: float, high: float, base_size: int, side_w: int, side_h: int) -> float:
    """The fraction with the smallest denominator in ``[low, high)`` that Proposal-4 turns into the
    base sides given (every ratio there gives the same anchors: 0.5 rather than 0.5028)."""
    for denominator in range(1, 257):
        ratio = max(math.ceil(low * denominator), 1) / denominator
        if ratio < high and _rounds_to(ratio, base_size, side_w, side_h):
            return ratio
    return float(np.float32((low + high) / 2))


def _rounds_to(ratio: float, base_size: int, side_w: int, side_h: int) -> bool:
    """Whether Proposal-4's float32 ``roundf`` turns ``ratio`` into the base sides given."""
    f = np.float32
    w = np.floor(np.sqrt(f(base_size * base_size) / f(ratio)) + f(0.5))
    return w == side_w and np.floor(f(w) * f(ratio) + f(0.5)) == side_h


def openvino_legacy() -> OpenVINOLegacyAdapter:
    return OpenVINOLegacyAdapter()


# --- repro snippets: the call in OpenVINO's own terms ------------------------------------------

_HEADER = "import numpy as np\nimport openvino as ov\nimport openvino.opset16 as ops\n\n"
_COMPILE = 'compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})\n'
_READ_IR = "model = ov.Core().read_model(model=ir.encode(), weights=ov.Tensor(np.zeros(1, np.uint8)))\n"


def _array(value, dtype: str = "float32") -> str:
    from detspec.conformance.repro import literal

    return literal(np.asarray(value, dtype=dtype))


def _nms_snippet(boxes, score_rows: str, iou_threshold) -> str:
    return (
        f"boxes = {_array(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))}  # x1, y1, x2, y2 (IoU is the "
        "same read as NMS-9's y1, x1, y2, x2)\n"
        f"{score_rows}"
        "node = ops.non_max_suppression(\n"
        "    ops.parameter([1, -1, 4], np.float32), ops.parameter([1, -1, -1], np.float32),\n"
        "    ops.constant(np.int64(max(len(boxes), 1))),  # max_output_boxes_per_class: all\n"
        f"    ops.constant(np.float32({float(iou_threshold)!r})),  # iou_threshold\n"
        "    ops.constant(np.float32(-np.inf)),  # score_threshold: none\n"
        "    ops.constant(np.float32(0)),  # soft_nms_sigma 0: hard NMS\n"
        '    box_encoding="corner", sort_result_descending=True, output_type="i64",\n'
        ")\n"
        "model = ov.Model([node.output(0), node.output(2)], [p.node for p in node.input_values()[:2]])\n"
        + _COMPILE
        + "out = compiled([boxes[None], rows[None]])\n"
        "print(out[0][: int(out[1][0]), 2])  # the kept box indices\n"
    )


def _snippet_nms(a: dict) -> str:
    rows = f"rows = {_array(np.asarray(a['scores']).reshape(1, -1))}  # one score row (one class)\n"
    return _nms_snippet(a["boxes"], rows, a["iou_threshold"])


def _snippet_batched_nms(a: dict) -> str:
    classes = np.asarray(a["classes"], dtype=np.int64).reshape(-1)
    labels, row = np.unique(classes, return_inverse=True)
    rows = np.full((max(len(labels), 1), len(classes)), -np.inf, np.float32)
    rows[row, np.arange(len(classes))] = np.asarray(a["scores"], dtype=np.float32).reshape(-1)
    text = f"rows = {_array(rows)}  # one row per class {labels.tolist()}: -inf outside the box's class\n"
    return _nms_snippet(a["boxes"], text, a["iou_threshold"])


def _snippet_grid_anchors(a: dict) -> str:
    lines = ["levels = []\n"]
    for (height, width), stride, sizes, ratios in zip(
        a["feature_sizes"], a["strides"], a["sizes"], a["ratios"], strict=True
    ):
        stride_y, stride_x = (float(v) for v in (stride if np.ndim(stride) else (stride, stride)))
        lines.append(
            f"ir = {prior_grid_ir(stride_x, stride_y)!r}\n"
            + _READ_IR
            + _COMPILE
            + f"priors = {_array(centred_priors(sizes, ratios))}\n"
            f"feature_map = np.zeros((1, 1, {int(height)}, {int(width)}), np.float32)\n"
            "levels.append(compiled([priors, feature_map, np.zeros((1, 3, 1, 1), np.float32)])[0])\n"
        )
    return "".join(lines) + "print(np.concatenate(levels))\n"


def _snippet_generate_proposals(a: dict) -> str | None:
    pre_n, post_n = int(a["pre_nms_top_n"]), int(a["post_nms_top_n"])
    if pre_n == 0 or post_n == 0 or len(np.asarray(a["levels"]).reshape(-1)) == 0:
        return None  # GenerateProposals-9 refuses a count of 0: the adapter answers without OpenVINO
    levels = np.asarray(a["levels"], dtype=np.int64).reshape(-1)
    anchors = np.asarray(a["anchors"], dtype=np.float32).reshape(-1, 4)
    logits = np.asarray(a["logits"], dtype=np.float32).reshape(-1)
    deltas = np.asarray(a["deltas"], dtype=np.float32).reshape(-1, 4)
    height, width = (float(v) for v in a["image_size"])
    inputs = []
    for level in np.unique(levels):
        members = levels == level
        n = int(members.sum())
        inputs += [
            f"{_array(anchors[members])}.reshape(1, 1, {n}, 4)",
            f"{_array(deltas[members])}.reshape(1, {4 * n}, 1, 1)",
            f"{_array(logits[members])}.reshape(1, {n}, 1, 1)",
        ]
    return (
        "im_info = ops.parameter([1, 3], np.float32)\n"
        "params, rois, scores = [im_info], [], []\n"
        f"for level in range({len(inputs) // 3}):  # one GenerateProposals-9 per FPN level\n"
        "    anchors = ops.parameter([1, 1, -1, 4], np.float32)\n"
        "    deltas = ops.parameter([1, -1, 1, 1], np.float32)\n"
        "    logits = ops.parameter([1, -1, 1, 1], np.float32)\n"
        "    node = ops.generate_proposals(\n"
        f"        im_info, anchors, deltas, logits, min_size={float(a['min_size'])!r},\n"
        f"        nms_threshold={float(a['nms_threshold'])!r}, pre_nms_count={pre_n}, "
        f"post_nms_count={post_n},\n"
        '        normalized=True, roi_num_type="i64",\n'
        "    )\n"
        "    params += [anchors, deltas, logits]\n"
        "    rois.append(node.output(0))\n"
        "    scores.append(node.output(1))\n"
        "all_rois, all_scores = ops.concat(rois, 0), ops.concat(scores, 0)\n"
        f"k = ops.minimum(ops.shape_of(all_scores, 'i64'), ops.constant(np.array([{post_n}], np.int64)))\n"
        'top = ops.topk(all_scores, ops.squeeze(k, ops.constant(0)), 0, "max", "value", "i64", stable=True)\n'
        "boxes = ops.gather(all_rois, top.output(1), ops.constant(np.int64(0)))\n"
        "model = ov.Model([boxes, ops.sigmoid(top.output(0))], params)\n"
        + _COMPILE
        + f"out = compiled([np.array([[{height!r}, {width!r}, 1.0]], np.float32),\n    "
        + ",\n    ".join(inputs)
        + ",\n])\nprint(out[0], out[1])  # boxes, scores\n"
    )


def _snippet_roi_align(a: dict) -> str:
    ph, pw = (int(v) for v in a["output_size"])
    mode = "half_pixel_for_nn" if a["aligned"] else "asymmetric"
    rois = np.asarray(a["rois"], dtype=np.float32).reshape(-1, 4)
    return (
        f"features = {_array(a['features'])}[None]\n"
        f"rois = {_array(rois)}\n"
        "node = ops.roi_align(\n"
        "    ops.parameter([1, -1, -1, -1], np.float32), ops.parameter([-1, 4], np.float32),\n"
        "    ops.parameter([-1], np.int32),\n"
        f"    pooled_h={ph}, pooled_w={pw}, sampling_ratio={int(a['sampling_ratio'])}, "
        f"spatial_scale={float(a['spatial_scale'])!r},\n"
        f'    mode="avg", aligned_mode="{mode}",\n'
        ")\n"
        "model = ov.Model([node], [p.node for p in node.input_values()])\n"
        + _COMPILE
        + "print(compiled([features, rois, np.zeros(len(rois), np.int32)])[0])\n"
    )


def _snippet_roi_pool(a: dict) -> str:
    ph, pw = (int(v) for v in a["output_size"])
    rois = np.asarray(a["rois"], dtype=np.float32).reshape(-1, 4)
    batch_rois = np.concatenate([np.zeros((len(rois), 1), np.float32), rois], axis=1)
    return (
        f"features = {_array(a['features'])}[None]\n"
        f"rois = {_array(batch_rois)}  # batch index, x1, y1, x2, y2\n"
        "node = ops.roi_pooling(\n"
        "    ops.parameter([1, -1, -1, -1], np.float32), ops.parameter([-1, 5], np.float32),\n"
        f'    output_roi=[{ph}, {pw}], spatial_scale={float(a["spatial_scale"])!r}, method="max",\n'
        ")\n"
        "model = ov.Model([node], [p.node for p in node.input_values()])\n"
        + _COMPILE
        + "print(compiled([features, rois])[0])\n"
    )


def _snippet_multiscale_roi_align(a: dict) -> str | None:
    size, other = (int(v) for v in a["output_size"])
    if size != other:
        return None  # not expressible: the adapter raises
    strides = pyramid_scales(a["features"], a["image_size"])
    maps = ", ".join(f"{_array(f)}[None]" for f in a["features"])
    rois = np.asarray(a["rois"], dtype=np.float32).reshape(-1, 4)
    return (
        f"ir = {feature_extractor_ir(strides, size, int(a['sampling_ratio']))!r}\n"
        + _READ_IR
        + _COMPILE
        + f"print(compiled([{_array(rois)}, {maps}])[0])\n"
    )


SNIPPETS: dict[str, Callable[[dict], str | None]] = {
    "nms": _snippet_nms,
    "batched_nms": _snippet_batched_nms,
    "grid_anchors": _snippet_grid_anchors,
    "generate_proposals": _snippet_generate_proposals,
    "roi_align": _snippet_roi_align,
    "roi_pool": _snippet_roi_pool,
    "multiscale_roi_align": _snippet_multiscale_roi_align,
}


def openvino_snippet(operation: str, arguments: dict) -> str | None:
    """Self-contained code that builds the OpenVINO model of one call of the ``openvino`` adapter
    and runs it; ``None`` for the Fourier graphs (reproduced through the adapter)."""
    make = SNIPPETS.get(operation)
    body = make(arguments) if make else None
    return None if body is None else _HEADER + body


def proposal4_snippet(arguments: dict) -> str | None:
    """Self-contained code that builds the Proposal-4 model of one call of the ``openvino-legacy``
    adapter (the attributes it recovered from the anchors) and runs it; ``None`` where the adapter
    refuses the anchors. Where the CPU plugin crashes, the snippet crashes too (SIGSEGV)."""
    anchors = np.asarray(arguments["anchors"], dtype=np.float64).reshape(-1, 4)
    pre_n, post_n = int(arguments["pre_nms_top_n"]), int(arguments["post_nms_top_n"])
    if len(anchors) == 0 or len(np.unique(np.asarray(arguments["levels"]))) > 1:
        return None
    try:
        grid = proposal_grid(anchors)
    except ValueError:
        return None
    h, w, a = grid.height, grid.width, len(grid.ratios) * len(grid.scales)
    logits = np.asarray(arguments["logits"], dtype=np.float32).reshape(h, w, a).transpose(2, 0, 1)[None]
    deltas = (
        np.asarray(arguments["deltas"], dtype=np.float32)
        .reshape(h, w, a, 4)
        .transpose(2, 3, 0, 1)
        .reshape(1, 4 * a, h, w)
    )
    height, width = (float(v) for v in arguments["image_size"])
    crash = (
        "# min(pre_nms_topn, #anchors) < 8 and post_nms_topn > 1: this crashes the CPU plugin (SIGSEGV)\n"
        if min(pre_n, len(anchors)) < 8 and post_n > 1
        else ""
    )
    return _HEADER + (
        "from openvino.utils.node_factory import NodeFactory\n\n"
        f"logits = ops.parameter([1, {a}, -1, -1], np.float32)\n"
        "foreground = ops.sigmoid(logits)  # channels A..2A-1 are read; 0..A-1 (background) are not\n"
        "probabilities = ops.concat([ops.multiply(foreground, np.float32(0)), foreground], 1)\n"
        f"deltas = ops.parameter([1, {4 * a}, -1, -1], np.float32)\n"
        "image_info = ops.parameter([3], np.float32)  # height, width, scale (min box = min_size * scale)\n"
        'node = NodeFactory("opset4").create("Proposal", [probabilities, deltas, image_info], {\n'
        f'    "base_size": np.uint32({grid.base_size}), "feat_stride": np.uint32({grid.stride}),\n'
        f'    "ratio": np.array({list(grid.ratios)!r}, np.float32), '
        f'"scale": np.array({list(grid.scales)!r}, np.float32),\n'
        f'    "pre_nms_topn": np.uint32({pre_n}), "post_nms_topn": np.uint32({post_n}), '
        f'"nms_thresh": np.float32({float(arguments["nms_threshold"])!r}),\n'
        '    "min_size": np.uint32(1), "clip_before_nms": True, "clip_after_nms": False,\n'
        '    "normalize": False,\n'
        '    "box_size_scale": np.float32(1), "box_coordinate_scale": np.float32(1), "framework": "",\n'
        "})\n"
        "model = ov.Model([node.output(0), node.output(1)], [logits, deltas, image_info])\n"
        + _COMPILE
        + crash
        + f"out = compiled([\n    {_array(logits)},\n    {_array(deltas)},\n"
        f"    np.array([{height!r}, {width!r}, {float(arguments['min_size'])!r}], np.float32),\n"
        "])\n"
        "print(out[0], out[1])  # rows: batch, x1, y1, x2, y2; after a batch index -1: padding\n"
    )
