"""The ONNX Runtime adapters (``--impl onnxruntime``, ``onnxruntime-torchvision``): session
caching, what the runtime really does where it differs from the spec, the deviant models against
the runtime (bit for bit), and deliberately broken graphs that the properties catch."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from detspec.conformance.adapters import onnxruntime_adapter as oa
from detspec.conformance.deviations import onnxruntime as models
from detspec.conformance.guard import GuardedImplementation
from detspec.conformance.runner import run_property
from detspec.conformance.verdicts import Verdict
from detspec.properties.registry import all_properties
from detspec.reference import fourier as ref_fourier
from hypothesis import settings

PROPERTIES = {p.name: p for p in all_properties()}
QUICK = settings(max_examples=20, derandomize=True, database=None, deadline=None)


@pytest.fixture(scope="module")
def adapter() -> oa.OnnxOperators:
    return oa.onnx_operators()


def test_one_session_serves_every_shape_and_threshold(adapter):
    """The threshold is an input of NonMaxSuppression: one session for every call."""
    for n, threshold in [(0, 0.5), (1, 0.5), (7, 0.3), (40, 0.7)]:
        boxes = np.tile([[0.0, 0.0, 4.0, 4.0]], (n, 1)) + np.arange(n)[:, None]
        adapter.nms(boxes=boxes, scores=np.linspace(1, 0, n), iou_threshold=threshold)
    assert [k for k in adapter.sessions.cache if k[0] == "NonMaxSuppression"] == [
        ("NonMaxSuppression", False)
    ]


def test_nms_keeps_the_pair_at_the_threshold_and_takes_ties_in_index_order(adapter):
    boxes = np.array([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]])  # IoU exactly 1/2
    assert adapter.nms(boxes=boxes, scores=np.array([0.9, 0.8]), iou_threshold=0.5).tolist() == [0, 1]
    disjoint = np.array([[0.0, 0, 1, 1], [2, 0, 3, 1], [4, 0, 5, 1], [6, 0, 7, 1]])
    scores = np.array([0.5, 0.7, 0.5, 0.7])
    assert adapter.nms(boxes=disjoint, scores=scores, iou_threshold=0.5).tolist() == [1, 3, 0, 2]


def test_batched_nms_through_the_class_dimension_keeps_classes_apart(adapter):
    """torchvision's coordinate-offset witness: boxes below -1 of two classes."""
    boxes = np.array([[-10.0, -10.0, 0.0, 0.0]] * 2)
    kept = adapter.batched_nms(
        boxes=boxes, scores=np.array([0.5, 0.25]), classes=np.array([0, 1]), iou_threshold=0.5
    )
    assert kept.tolist() == [0, 1]


def test_nms_model_is_the_operator_on_invalid_boxes(adapter):
    generator = np.random.default_rng(0)
    for case in range(300):
        n = int(generator.integers(1, 8))
        corner = np.round(generator.uniform(-5, 10, (n, 2)) * 4) / 4
        boxes = np.concatenate([corner, corner + np.round(generator.uniform(0, 6, (n, 2)) * 4) / 4], axis=1)
        row, column = int(generator.integers(n)), int(generator.integers(4))
        boxes[row, column] = [np.nan, np.inf, -np.inf, boxes[row, (column + 2) % 4]][case % 4]
        scores = np.round(generator.random(n) * 4) / 4
        threshold = [0.0, 0.25, 0.5, 1.0][case % 4]
        got = adapter.nms(boxes=boxes, scores=scores, iou_threshold=threshold)
        assert got.tolist() == models.onnx_nms_float32(boxes, scores, threshold).tolist(), (boxes, scores)


def test_max_roi_pool_model_is_the_operator(adapter):
    generator = np.random.default_rng(1)
    for case in range(100):
        features = generator.normal(size=(2, int(generator.integers(1, 10)), int(generator.integers(1, 10))))
        rois = generator.uniform(-20, 60, (3, 4))
        rois[:, 2:] = rois[:, :2] + generator.uniform(-3, 50, (3, 2))
        size, scale = (
            (int(generator.integers(1, 8)), int(generator.integers(1, 8))),
            [1, 0.5, 1 / 16, 0.3][case % 4],
        )
        got = adapter.roi_pool(features=features, rois=rois, output_size=size, spatial_scale=scale)
        np.testing.assert_array_equal(got, models.max_roi_pool_float32(features, rois, size, scale))


def test_dft_model_is_the_operator_bit_for_bit(adapter):
    """Radix-2 and Bluestein lengths; the phase-only graph on ramps, whose weak coefficients
    magnify the float32 Bluestein error past the tolerance."""
    generator = np.random.default_rng(2)
    for shape in [(1, 9), (5, 7), (8, 8), (3, 13), (1, 1)]:
        image = generator.random(shape)
        re, im = models.ort_dft2(image.astype(np.float32), np.zeros(shape, np.float32))
        np.testing.assert_array_equal(adapter.fft2(image=image), re + 1j * im)
        ramp = 0.2 + 1e-4 * np.arange(image.size).reshape(shape)
        np.testing.assert_array_equal(adapter.phase_only(image=ramp), models.ort_phase_only(ramp))


def test_fourier_graphs_are_float32_and_close_to_the_reference(adapter):
    image = np.random.default_rng(3).random((6, 5))
    assert adapter.fft2(image=image).dtype == np.complex64
    np.testing.assert_allclose(adapter.fft2(image=image), np.fft.fft2(image), atol=1e-5)
    difference = adapter.phase_spectrum(image=image) - np.angle(ref_fourier.unit_phase(np.fft.fft2(image)))
    # -pi and pi alike; the angle of a weak coefficient carries its float32 error divided by |F|
    np.testing.assert_allclose(np.angle(np.exp(1j * difference)), 0, atol=1e-3)
    np.testing.assert_allclose(
        adapter.amplitude_only(image=image), ref_fourier.amplitude_only(image), atol=1e-5
    )


class NmsOneUlpLower(oa.OnnxOperators):
    """A deliberately altered graph: the NonMaxSuppression threshold one float32 ulp below."""

    def nms(self, boxes, scores, iou_threshold):
        lower = float(np.nextafter(np.float32(iou_threshold), np.float32(-np.inf)))
        return super().nms(boxes=boxes, scores=scores, iou_threshold=max(lower, 0.0))


def test_one_ulp_of_nms_threshold_fails_the_at_threshold_clause():
    prop = PROPERTIES["nms_keeps_both_boxes_at_exact_threshold"]
    good = run_property(prop, GuardedImplementation(oa.OnnxOperators()), QUICK)
    broken = run_property(prop, GuardedImplementation(NmsOneUlpLower()), QUICK)
    assert good.status == Verdict.PASS
    assert broken.status == Verdict.FAIL and broken.code == "nms.at-threshold"


class RoiAlignWrongMode(oa.OnnxOperators):
    """A deliberately wrong graph: ``output_half_pixel`` whatever ``aligned`` says."""

    def roi_align(self, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        size = (int(output_size[0]), int(output_size[1]))
        session = self.sessions.get(
            ("wrong", size, float(spatial_scale), int(sampling_ratio)),
            lambda: oa._roi_align_model(size, float(spatial_scale), int(sampling_ratio), "output_half_pixel"),
        )
        rois = np.asarray(rois, np.float32).reshape(-1, 4)
        features = np.asarray(features, np.float32)[None]
        return session.run(
            None, {"X": features, "rois": rois, "batch_indices": np.zeros(len(rois), np.int64)}
        )[0]


def test_roi_align_with_the_wrong_coordinate_mode_fails():
    prop = PROPERTIES["roi_align_is_exact_on_affine_maps"]
    assert run_property(prop, GuardedImplementation(oa.OnnxOperators()), QUICK).status == Verdict.PASS
    outcome = run_property(prop, GuardedImplementation(RoiAlignWrongMode()), QUICK)
    assert outcome.status == Verdict.FAIL and outcome.code == "roi-align.affine"


def test_deviant_models_explain_their_witnesses():
    """Each documented witness replays as the deviation (its code, and the model agrees)."""
    from detspec.conformance.expectations import expectations_path, load_expectations
    from detspec.conformance.runner import replay_witness
    from detspec.conformance.spec_index import load_clauses

    clauses = set(load_clauses())
    expectations = load_expectations(
        expectations_path("onnxruntime"), clauses, PROPERTIES, {"variant": "operators"}
    )
    assert not expectations.problems
    impl = GuardedImplementation(oa.OnnxOperators())
    for deviation in expectations.deviations.values():
        outcome = replay_witness(PROPERTIES[deviation.property], impl, deviation)
        assert outcome.status == Verdict.DEVIATES, (deviation.property, outcome.message)


def test_reshape_fusion_breaks_the_exported_clip_on_no_boxes():
    """The root cause of the documented clip deviation: the exporter ends ``clip_boxes_to_image``
    with ``Reshape(stacked, Concat(Shape(boxes)[0], Shape(boxes)[1]))`` (rebuilt here node for
    node, without torch); ORT's ReshapeFusion turns the shape into the constant ``[0, -1]``, and
    ``-1`` cannot be inferred from zero boxes. Without the fusion the graph takes them. The
    deviant model raises the same ``Fail`` there."""
    import onnxruntime as ort
    from onnx import TensorProto, numpy_helper
    from onnx import helper as oh

    def constant(name, value):
        return numpy_helper.from_array(np.asarray(value, np.int64), name)

    nodes = [
        oh.make_node("Slice", ["boxes", "zero", "end", "one", "two"], ["xs"]),
        oh.make_node("Slice", ["boxes", "one", "end", "one", "two"], ["ys"]),
        oh.make_node("Unsqueeze", ["xs", "two"], ["x_pairs"]),
        oh.make_node("Unsqueeze", ["ys", "two"], ["y_pairs"]),
        oh.make_node("Concat", ["x_pairs", "y_pairs"], ["stacked"], axis=2),
        oh.make_node("Shape", ["boxes"], ["shape"]),
        oh.make_node("Gather", ["shape", "first"], ["rows"], axis=0),
        oh.make_node("Gather", ["shape", "second"], ["columns"], axis=0),
        oh.make_node("Unsqueeze", ["rows", "zero"], ["rows_1"]),
        oh.make_node("Unsqueeze", ["columns", "zero"], ["columns_1"]),
        oh.make_node("Concat", ["rows_1", "columns_1"], ["target"], axis=0),
        oh.make_node("Reshape", ["stacked", "target"], ["out"]),
    ]
    constants = [constant(n, v) for n, v in [("zero", [0]), ("one", [1]), ("two", [2]), ("end", [2**62])]]
    constants += [constant("first", 0), constant("second", 1)]
    graph = oh.make_graph(
        nodes,
        "clip_tail",
        [oh.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", 4])],
        [oh.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4])],
        initializer=constants,
    )
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 16)]).SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 4
    fused = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    plain = ort.InferenceSession(
        model, options, providers=["CPUExecutionProvider"], disabled_optimizers=["ReshapeFusion"]
    )
    boxes = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(fused.run(None, {"boxes": boxes})[0], boxes)
    assert plain.run(None, {"boxes": np.zeros((0, 4), np.float32)})[0].shape == (0, 4)
    with pytest.raises(Exception, match="cannot be reshaped") as raised:
        fused.run(None, {"boxes": np.zeros((0, 4), np.float32)})
    with pytest.raises(models.Fail) as modelled:
        models.clip_fails_on_no_boxes.model(boxes=np.zeros((0, 4)), image_size=(10.0, 20.0))
    assert type(modelled.value).__name__ == type(raised.value).__name__ == "Fail"
    clipped = models.clip_fails_on_no_boxes.model(
        boxes=np.array([[-1.0, -2.0, 30.0, 40.0]]), image_size=(10, 20)
    )
    assert clipped.tolist() == [[0.0, 0.0, 20.0, 10.0]]
