"""The OpenVINO adapters (``--impl openvino``, ``openvino-legacy``): model caching and precision,
what the runtime really does where it differs from the spec, the deviant models against the
runtime, and deliberately broken graphs that the properties catch."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("openvino")

import openvino as ov
import openvino.opset16 as ops
from detspec.conformance.adapters import openvino_adapter as ova
from detspec.conformance.deviations import openvino as models
from detspec.conformance.guard import GuardedImplementation
from detspec.conformance.runner import run_property
from detspec.conformance.verdicts import Verdict
from detspec.properties.registry import all_properties
from detspec.reference import anchors as ref_anchors
from hypothesis import settings

PROPERTIES = {p.name: p for p in all_properties()}
QUICK = settings(max_examples=20, derandomize=True, database=None, deadline=None)


@pytest.fixture(scope="module")
def adapter() -> ova.OpenVINOAdapter:
    return ova.openvino()


def test_one_compiled_model_serves_every_shape_and_runtime_threshold(adapter):
    before = len(adapter._models.cache)
    for n, threshold in [(1, 0.5), (7, 0.3), (40, 0.7)]:
        boxes = np.tile([[0.0, 0.0, 4.0, 4.0]], (n, 1)) + np.arange(n)[:, None]
        adapter.nms(boxes=boxes, scores=np.linspace(1, 0, n), iou_threshold=threshold)
    assert len(adapter._models.cache) - before <= 1


def test_models_compute_in_float32_not_bfloat16(adapter):
    """1 + 2**-12 has no bf16 representation: ROIPooling (the op bf16 changes) returns it exactly."""
    value = 1 + 2.0**-12
    pooled = adapter.roi_pool(
        features=np.full((1, 4, 4), value),
        rois=np.array([[0.0, 0.0, 3.0, 3.0]]),
        output_size=(1, 1),
        spatial_scale=1.0,
    )
    assert pooled.dtype == np.float32 and float(pooled[0, 0, 0, 0]) == value


def test_nms9_suppresses_at_the_threshold_and_generate_proposals9_does_not(adapter):
    """The convention evidence: IoU exactly 0.5 at t = 0.5. NonMaxSuppression-9's kernel compares
    with >= (its opset spec keeps the box); GenerateProposals-9's NMS with > (keeps it)."""
    boxes = np.array([[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 2.0]])
    assert adapter.nms(boxes=boxes, scores=np.array([0.9, 0.8]), iou_threshold=0.5).tolist() == [0]
    proposals = adapter.generate_proposals(
        anchors=boxes,
        logits=np.array([2.0, 1.0]),
        deltas=np.zeros((2, 4)),
        levels=np.zeros(2, np.int64),
        image_size=(10.0, 10.0),
        pre_nms_top_n=2,
        post_nms_top_n=2,
        nms_threshold=0.5,
        min_size=0.0,
    )
    assert len(proposals.boxes) == 2


class NmsOneUlpHigher(ova.OpenVINOAdapter):
    """A deliberately altered graph: the NMS-9 threshold one float32 ulp above the one asked for."""

    def nms(self, boxes, scores, iou_threshold):
        shifted = float(np.nextafter(np.float32(iou_threshold), np.float32(np.inf)))
        return super().nms(boxes=boxes, scores=scores, iou_threshold=shifted)


def test_one_ulp_of_nms_threshold_decides_the_at_threshold_clause():
    """Moving the threshold by one ulp turns suppression at IoU >= t into IoU > t: exactly one of
    the two graphs suppresses at the threshold, and the suite fails that one (whichever bound the
    adapter declares), so an adapter cannot hide its bound by adjusting the threshold."""
    prop = PROPERTIES["nms_keeps_both_boxes_at_exact_threshold"]
    outcomes = [
        run_property(prop, GuardedImplementation(cls()), QUICK)
        for cls in (ova.OpenVINOAdapter, NmsOneUlpHigher)
    ]
    assert sorted(o.status.value for o in outcomes) == ["fail", "pass"]
    assert {o.code for o in outcomes if o.status == Verdict.FAIL} == {"nms.at-threshold"}


class RoiAlignHalfPixel(ova.OpenVINOAdapter):
    """A deliberately wrong graph: ``aligned=True`` as ROIAlign-9 ``half_pixel``, (x + 0.5) s - 0.5,
    instead of ``half_pixel_for_nn``, x s - 0.5."""

    def roi_align(self, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        ph, pw = (int(v) for v in output_size)
        mode = "half_pixel" if aligned else "asymmetric"

        def build() -> ov.Model:
            data = ops.parameter([1, -1, -1, -1], np.float32)
            boxes = ops.parameter([-1, 4], np.float32)
            index = ops.parameter([-1], np.int32)
            node = ops.roi_align(
                data,
                boxes,
                index,
                ph,
                pw,
                int(sampling_ratio),
                float(spatial_scale),
                "avg",
                aligned_mode=mode,
            )
            return ov.Model([node], [data, boxes, index])

        key = ("roi_align_half_pixel", ph, pw, int(sampling_ratio), float(spatial_scale), mode)
        r = np.asarray(rois, np.float32).reshape(-1, 4)
        features = np.asarray(features, np.float32)[None]
        return ova._run(self._models.get(key, build), features, r, np.zeros(len(r), np.int32))[0]


@pytest.mark.parametrize(
    ("prop", "code"),
    [
        ("roi_align_is_exact_on_affine_maps", "roi-align.affine"),
        ("aligned_is_a_half_cell_shift", "roi-align.half-pixel"),
    ],
)
def test_roi_align_with_the_wrong_coordinate_mode_fails(prop, code):
    outcome = run_property(PROPERTIES[prop], GuardedImplementation(RoiAlignHalfPixel()), QUICK)
    assert outcome.status == Verdict.FAIL and outcome.code == code


def test_nms_model_is_what_nms9_returns_for_any_boxes(adapter):
    rng = np.random.default_rng(0)
    for trial in range(60):
        n = int(rng.integers(1, 10))
        corners = rng.integers(0, 8, (n, 2))
        boxes = np.concatenate([corners, corners + rng.integers(0, 6, (n, 2))], 1).astype(np.float64)
        row = int(rng.integers(0, n))
        if trial % 3 == 1:
            boxes[row, int(rng.integers(0, 4))] = [np.nan, np.inf, -np.inf][trial % 9 // 3]
        if trial % 3 == 2:
            boxes[row, [0, 2]] = boxes[row, [2, 0]]
        scores, threshold = rng.integers(0, 4, n) / 4, [0.0, 0.25, 0.5, 1 / 3, 1.0][trial % 5]
        expected = models.nms9_accepts_any_box.model(boxes, scores, threshold)
        assert adapter.nms(boxes=boxes, scores=scores, iou_threshold=threshold).tolist() == expected.tolist()
        classes = rng.integers(0, 3, n)
        rows = np.full((3, n), -np.inf)
        rows[classes, np.arange(n)] = scores
        expected = models.nms9_cpu(boxes, rows[np.unique(classes)], threshold)
        actual = adapter.batched_nms(boxes=boxes, scores=scores, classes=classes, iou_threshold=threshold)
        assert actual.tolist() == expected.tolist()


def test_roi_align_model_is_nan_exactly_where_roi_align9_is(adapter):
    rng = np.random.default_rng(1)
    for trial in range(40):
        features = rng.integers(-8, 8, (2, 5, 6)) / 4
        starts = rng.integers(-4, 24, (3, 2)) / 4
        sides = rng.integers(0, 24, (3, 2)) / 4 * (rng.random((3, 2)) > 0.3)
        rois = np.concatenate([starts, starts + sides], 1)
        arguments = dict(
            features=features,
            rois=rois,
            output_size=(2, 3),
            spatial_scale=[1.0, 0.5][trial % 2],
            sampling_ratio=trial % 3,
            aligned=bool(trial % 4 // 2),
        )
        actual, expected = (
            adapter.roi_align(**arguments),
            models.roi_align9_averages_no_sample.model(**arguments),
        )
        assert np.array_equal(np.isnan(actual), np.isnan(expected))
        np.testing.assert_allclose(actual[~np.isnan(actual)], expected[~np.isnan(expected)], atol=1e-5)


@pytest.mark.parametrize("first_level", [1, 2, 3])
def test_feature_extractor_model_counts_levels_from_p2(adapter, first_level):
    image = (128.0, 192.0)
    maps = [np.full((1, 128 >> k, 192 >> k), float(k)) for k in range(first_level, first_level + 3)]
    sides = [0.0, 28.0, 56.0, 112.0, 224.0, 448.0]
    rois = np.array([[0.0, 0.0, side, side] for side in sides])
    pooled = adapter.multiscale_roi_align(
        features=maps, rois=rois, output_size=(2, 2), sampling_ratio=2, image_size=image
    )
    expected = models.feature_extractor_counts_levels_from_p2.model(maps, rois, (2, 2), 2, image)
    np.testing.assert_allclose(pooled, expected, atol=1e-5)
    index = models.feature_extractor_levels(rois, 3)
    assert index.tolist() == [3, 0, 0, 1, 2, 2]  # zero area: no map; 224 px on index 2 whatever the pyramid


def test_non_square_feature_extraction_is_refused(adapter):
    with pytest.raises(ValueError, match="output_size x output_size only"):
        adapter.multiscale_roi_align(
            features=[np.zeros((1, 8, 8))],
            rois=np.zeros((1, 4)),
            output_size=(1, 2),
            sampling_ratio=0,
            image_size=(32, 32),
        )


# --- Proposal-4 -------------------------------------------------------------------------------


def _faster_rcnn_grid(height: int, width: int) -> np.ndarray:
    """py-faster-rcnn's anchors (stride 16, sizes 128-512, ratios 0.5-2), rows (y, x, a)."""
    return ref_anchors.grid_anchors(
        (height, width),
        16,
        (128, 256, 512),
        (0.5, 1.0, 2.0),
        offset="legacy",
        rounding="legacy",
        convention="legacy",
    )


def test_proposal4_recovers_its_own_grid_and_refuses_other_anchors():
    grid = ova.proposal_grid(_faster_rcnn_grid(2, 3))
    assert (grid.height, grid.width, grid.stride, grid.base_size) == (2, 3, 16, 16)
    assert grid.ratios == (0.5, 1.0, 2.0) and grid.scales == (8.0, 16.0, 32.0)
    with pytest.raises(ValueError, match="not such a grid"):
        ova.proposal_grid(np.array([[0.0, 0.0, 4.0, 5.0]]))


@pytest.fixture(scope="module")
def legacy() -> ova.OpenVINOLegacyAdapter:
    return ova.openvino_legacy()


def _proposals(legacy, anchors, **settings_):
    n = len(anchors)
    arguments = dict(
        anchors=anchors,
        logits=np.linspace(2.0, -2.0, n),
        deltas=np.zeros((n, 4)),
        levels=np.zeros(n, np.int64),
        image_size=(1000.0, 1000.0),
        pre_nms_top_n=n,
        post_nms_top_n=n,
        nms_threshold=1.0,
        min_size=0.0,
    )
    return legacy.generate_proposals(**{**arguments, **settings_})


def test_proposal4_decodes_zero_deltas_one_pixel_wider(legacy):
    """Convention evidence: ``x2 = ctr + w / 2`` with ``w = x2 - x1 + 1`` gives back the anchor
    moved one pixel right and down at its far corner (py-faster-rcnn's ``bbox_transform_inv``),
    clipped to ``[0, W - 1]``; the legacy inverse of encode gives the anchor itself."""
    anchors = _faster_rcnn_grid(2, 3)
    proposals = _proposals(legacy, anchors)
    expected = np.clip(anchors + np.array([0, 0, 1, 1]), 0, 999)
    np.testing.assert_array_equal(proposals.boxes, expected)
    np.testing.assert_allclose(
        proposals.scores, 1 / (1 + np.exp(-np.linspace(2.0, -2.0, len(anchors)))), rtol=1e-6
    )


def test_proposal4_keeps_small_boxes_with_score_zero(legacy):
    """Convention evidence: a box below the min size is not removed; its score is multiplied by 0
    and it stays a candidate, ranked last (``nodes/proposal_imp.cpp``, ``enumerate_proposals``)."""
    anchors = _faster_rcnn_grid(2, 3)
    proposals = _proposals(legacy, anchors, min_size=200.0)  # keeps only sides >= 200 (w + 1)
    sides = np.minimum(*(proposals.boxes[:, 2:] - proposals.boxes[:, :2]).T) + 1
    assert len(proposals.boxes) == len(anchors)
    assert np.all(proposals.scores[sides < 200] == 0) and np.all(proposals.scores[sides >= 200] > 0)
    assert np.all(np.diff(proposals.scores) <= 0)


def test_proposal4_counts_that_crash_the_plugin_are_refused(legacy):
    """min(pre_nms_topn, #anchors) < 8 with post_nms_topn > 1 segfaults the CPU plugin: refused."""
    with pytest.raises(ValueError, match="SIGSEGV"):
        _proposals(legacy, _faster_rcnn_grid(2, 3), pre_nms_top_n=5, post_nms_top_n=5)
    assert len(_proposals(legacy, _faster_rcnn_grid(2, 3), post_nms_top_n=0).boxes) == 0
