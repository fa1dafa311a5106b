"""The OpenVINO adapters (``--impl openvino``, ``openvino-legacy``): model caching and precision,
declared conventions against the fingerprint, what the runtime really does where it differs from
the spec, the deviant models against the runtime, the repro snippets against the adapters, and
deliberately broken graphs that the properties catch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("openvino")

import openvino as ov
import openvino.opset16 as ops
from detspec.conformance.adapters import openvino_adapter as ova
from detspec.conformance.deviations import openvino as models
from detspec.conformance.fingerprint import fingerprint
from detspec.conformance.guard import GuardedImplementation
from detspec.conformance.runner import run_property
from detspec.conformance.verdicts import Verdict
from detspec.properties.registry import all_properties
from detspec.reference import anchors as ref_anchors
from detspec.reference import roi_pooling as ref_pool
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
    expected = models.feature_extractor_pools_empty_rois_from_no_map.model(maps, rois, (2, 2), 2, image)
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


def _own_grid(feature_size, stride, sizes, ratios) -> np.ndarray:
    """The anchors the proposal properties draw for ``proposal_anchors = own-grid`` under the
    adapter's declared conventions (legacy offset and widths, ``roundf`` sides, ratio-major)."""
    c = ova.OpenVINOLegacyAdapter.conventions
    return ref_anchors.grid_anchors(
        feature_size,
        stride,
        sizes,
        ratios,
        offset=c.anchor_offset,
        rounding=c.anchor_rounding,
        order=c.anchor_order,
        convention=c.box_width,
    )


def test_proposal4_recovers_its_own_grid_and_refuses_other_anchors():
    grid = ova.proposal_grid(_faster_rcnn_grid(2, 3))
    assert (grid.height, grid.width, grid.stride, grid.base_size) == (2, 3, 16, 16)
    assert grid.ratios == (0.5, 1.0, 2.0) and grid.scales == (8.0, 16.0, 32.0)
    # roundf: base 32, ratio 0.5 gives 45 x 23 (np.round's half to even: 45 x 22)
    cell = _own_grid((1, 1), 32, (32,), (0.5,))
    assert (cell[0, 2:] - cell[0, :2] + 1).tolist() == [45.0, 23.0]
    grid = ova.proposal_grid(_own_grid((3, 2), 32, (32, 128), (0.5, 1.0, 2.0)))
    assert (grid.height, grid.width, grid.stride, grid.base_size, grid.scales) == (3, 2, 32, 32, (1.0, 4.0))
    with pytest.raises(ValueError, match="not such a grid"):
        ova.proposal_grid(np.array([[0.0, 0.0, 4.0, 5.0]]))


@pytest.fixture(scope="module")
def legacy() -> ova.OpenVINOLegacyAdapter:
    return ova.openvino_legacy()


def _call(anchors, **settings_) -> dict:
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
    return {**arguments, **settings_}


def _proposals(legacy, anchors, **settings_):
    return legacy.generate_proposals(**_call(anchors, **settings_))


def test_proposal4_decodes_zero_deltas_one_pixel_wider(legacy):
    """A documented deviation (spec/boxes.md: of py-faster-rcnn's ``bbox_transform_inv``, not a
    convention): ``x2 = ctr + w / 2`` with ``w = x2 - x1 + 1`` gives back the anchor moved one
    pixel right and down at its far corner, clipped to ``[0, W - 1]``; the legacy inverse of
    encode gives the anchor itself. The model agrees."""
    anchors = _faster_rcnn_grid(2, 3)
    proposals = _proposals(legacy, anchors)
    expected = np.clip(anchors + np.array([0, 0, 1, 1]), 0, 999)
    np.testing.assert_array_equal(proposals.boxes, expected)
    np.testing.assert_allclose(
        proposals.scores, 1 / (1 + np.exp(-np.linspace(2.0, -2.0, len(anchors)))), rtol=1e-6
    )
    np.testing.assert_array_equal(proposals.boxes, models.proposal4_layer.model(**_call(anchors)).boxes)


def test_proposal4_keeps_small_boxes_with_score_zero(legacy):
    """A documented deviation (of ``proposals.min-size``): a box below the min size is not
    removed; its score is multiplied by 0 and it stays a candidate, ranked last
    (``nodes/proposal_imp.cpp``, ``enumerate_proposals_cpu``)."""
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


@pytest.mark.parametrize("factory", [ova.openvino, ova.openvino_legacy])
def test_declared_conventions_agree_with_the_fingerprint(factory):
    observed = fingerprint(GuardedImplementation(factory()))
    assert [o for o in observed if not o.agrees] == []
    assert any(o.observed for o in observed)  # something was observed (for legacy: own-grid)


def test_coincident_zero_area_boxes_survive_nms9_at_threshold_zero(adapter):
    """The residual NMS-9 deviation under nms_bound = inclusive: the IoU of two coincident
    zero-area boxes is 0 / 0 = NaN, and NaN >= 0 is false, so neither suppresses the other."""
    boxes, scores = np.zeros((2, 4)), np.array([0.5, 0.25])
    assert adapter.nms(boxes=boxes, scores=scores, iou_threshold=0.0).tolist() == [0, 1]
    disjoint = np.array([[0.0, 0.0, 1.0, 1.0], [5.0, 5.0, 6.0, 6.0]])
    assert adapter.nms(boxes=disjoint, scores=scores, iou_threshold=0.0).tolist() == [0]  # IoU 0 >= 0
    classes = np.zeros(2, np.int64)
    assert adapter.batched_nms(boxes=boxes, scores=scores, classes=classes, iou_threshold=0.0).tolist() == [
        0,
        1,
    ]
    assert models.batched_nms9_accepts_any_box.model(boxes, scores, classes, 0.0).tolist() == [0, 1]


def _random_proposal_call(rng, trial: int) -> dict:
    """An own-grid call as the properties draw them, with many ties (equal logits, zero scores
    from the min size) and, now and then, extreme deltas and infinite logits."""
    stride = int(rng.choice([8, 16, 32]))
    sizes = sorted(rng.choice([1, 2, 4, 8], rng.integers(1, 4), replace=False) * stride)
    ratios = sorted(rng.choice([0.5, 1.0, 2.0], rng.integers(1, 4), replace=False))
    anchors = _own_grid((int(rng.integers(1, 5)), int(rng.integers(1, 5))), stride, sizes, ratios)
    n = len(anchors)
    logits = rng.integers(-2, 3, n) / 4 if trial % 2 else (rng.permutation(n) - n / 2) / 4
    spread = int(rng.choice([0, 4, 64]))
    deltas = rng.integers(-spread, spread + 1, (n, 4)) / 32
    if trial % 5 == 0:
        deltas[:, 2:] *= rng.choice([1e3, 1e6, -1e6])
        logits[rng.integers(0, n)] = rng.choice([np.inf, -np.inf])
    return dict(
        anchors=anchors,
        logits=logits,
        deltas=deltas,
        levels=np.zeros(n, np.int64),
        image_size=(float(rng.integers(16, 601)), float(rng.integers(16, 601))),
        pre_nms_top_n=int(rng.integers(8, 40)),
        post_nms_top_n=int(rng.integers(1, 13)),
        nms_threshold=float(rng.choice([0.0, 0.25, 1 / 3, 0.5, 0.7, 1.0])),
        min_size=float(rng.choice([0.0, np.float32(1e-3), 1.0, 8.0, 16.0, 64.0])),
    )


def test_proposal4_model_is_what_proposal4_returns(legacy):
    """The model (float32 decode, zeroed scores, libstdc++'s partial_sort with its tie order, the
    op's NMS) equals the op on own grids, ties and zero-score rows included."""
    rng = np.random.default_rng(2)
    zero_rows = 0
    for trial in range(40):
        arguments = _random_proposal_call(rng, trial)
        if models.proposal4_crashes(**arguments):
            continue
        actual, expected = legacy.generate_proposals(**arguments), models.proposal4_layer.model(**arguments)
        np.testing.assert_allclose(actual.boxes, expected.boxes, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(actual.scores, expected.scores, rtol=1e-5, atol=0)
        zero_rows += int(np.any(actual.scores == 0))
    assert zero_rows >= 3


def test_stable_ranking_is_not_proposal4s(legacy):
    """Control: ranking ties stably instead of by libstdc++'s heap disagrees with the op."""
    stable = lambda keys, middle: sorted(range(len(keys)), key=lambda i: -keys[i])[:middle]  # noqa: E731
    anchors = _own_grid((2, 4), 8, (8, 16), (1.0,))  # 16 anchors, all below the min size
    arguments = _call(
        anchors,
        logits=np.zeros(16),
        image_size=(64.0, 64.0),
        pre_nms_top_n=10,
        post_nms_top_n=10,
        min_size=100.0,
    )
    actual = legacy.generate_proposals(**arguments)
    np.testing.assert_array_equal(actual.boxes, models.proposal4_cpu(**arguments).boxes)
    original = models._partial_sort
    try:
        models._partial_sort = stable
        assert not np.array_equal(actual.boxes, models.proposal4_cpu(**arguments).boxes)
    finally:
        models._partial_sort = original


def test_proposal4_model_raises_exactly_where_the_adapter_refuses(legacy):
    for cells, pre_n, post_n in [
        (c, p, q) for c in ((1, 3), (1, 7), (2, 4), (3, 4)) for p in (1, 7, 8, 20) for q in (0, 1, 2, 9)
    ]:
        anchors = _own_grid(cells, 16, (16,), (1.0,))
        arguments = _call(
            anchors,
            logits=np.linspace(1, -1, len(anchors)),
            image_size=(100.0, 100.0),
            pre_nms_top_n=pre_n,
            post_nms_top_n=post_n,
            nms_threshold=0.7,
        )
        refused = models.proposal4_crashes(**arguments)
        assert refused == (min(pre_n, len(anchors)) < 8 and post_n > 1)
        for call in (legacy.generate_proposals, models.proposal4_crashes_below_eight_boxes.model):
            if refused:
                with pytest.raises(ValueError):
                    call(**arguments)
            else:
                assert len(call(**arguments).boxes) == min(len(anchors), pre_n, post_n)


def test_proposal4_really_crashes_where_the_adapter_refuses(legacy):
    """The crash the guard stands for, in a child process: the repro snippet of a refused call
    (one anchor, pre_nms_topn = post_nms_topn = 5) builds the raw Proposal-4 model, which segfaults."""
    anchors = _own_grid((1, 1), 16, (128,), (0.5,))
    arguments = _call(
        anchors,
        logits=np.zeros(1),
        image_size=(100.0, 100.0),
        pre_nms_top_n=5,
        post_nms_top_n=5,
        nms_threshold=0.7,
    )
    with pytest.raises(ValueError, match="SIGSEGV"):
        legacy.generate_proposals(**arguments)
    snippet = legacy.repro_snippet("generate_proposals", arguments)
    assert "crashes the CPU plugin" in snippet
    child = subprocess.run([sys.executable, "-c", snippet], capture_output=True, timeout=60)
    assert child.returncode == -11, child.stderr.decode()[-500:]


def test_proposal4_does_not_compare_boxes_less_than_a_pixel_apart(legacy):
    """Two boxes 0.5 px apart overlap by a +1 sliver in the legacy IoU (about 0.03), but nms_cpu
    computes the IoU only when y1 <= y2' both ways: at t = 0 neither suppresses the other."""
    anchors = _own_grid((2, 4), 8, (8,), (1.0,))
    deltas = np.zeros((8, 4))
    deltas[0, 1] = -1 / 16  # the first box moves up half a pixel: rows 0..7.5 (clipped at 0)
    arguments = dict(
        anchors=anchors,
        logits=np.array([1.0, -0.25, -0.5, -0.75, 0.5, -1.0, -1.25, -1.5]),
        deltas=deltas,
        levels=np.zeros(8, np.int64),
        image_size=(32.0, 32.0),
        pre_nms_top_n=8,
        post_nms_top_n=2,
        nms_threshold=0.0,
        min_size=0.0,
    )
    proposals = legacy.generate_proposals(**arguments)
    assert proposals.boxes.tolist() == [[0.0, 0.0, 8.0, 7.5], [0.0, 8.0, 8.0, 16.0]]
    from detspec.reference.boxes import pairwise_iou

    assert pairwise_iou(proposals.boxes[:1], proposals.boxes[1:], 1)[0, 0] == pytest.approx(4.5 / 153)


def _printed(snippet: str) -> list:
    """Run a snippet in this process, returning what it prints (its objects, not text)."""
    printed: list = []
    namespace = {"print": lambda *values: printed.extend(values)}
    exec(compile(snippet, "<snippet>", "exec"), namespace)
    return printed


SNIPPET_CALLS = {
    "nms": dict(
        boxes=np.array([[0, 0, 4, 4], [0, 0, 4, 2], [1, 1, 5, 5], [np.nan, 0, 1, 1]], float),
        scores=np.array([0.9, 0.8, 0.7, 0.5]),
        iou_threshold=0.5,
    ),
    "batched_nms": dict(
        boxes=np.array([[0, 0, 4, 4], [0, 0, 4, 2], [1, 1, 5, 5]], float),
        scores=np.array([0.9, 0.8, 0.7]),
        classes=np.array([3, 1, 3]),
        iou_threshold=0.3,
    ),
    "grid_anchors": dict(
        feature_sizes=[(2, 3), (1, 2)],
        strides=[[8, 8], [16, 16]],
        sizes=[[32], [64, 128]],
        ratios=[[0.5, 1.0], [1.0]],
    ),
    "generate_proposals": dict(
        anchors=np.array([[0, 0, 10, 10], [5, 5, 30, 30], [0, 0, 50, 40]], float),
        logits=np.array([1.0, 2.0, 0.5]),
        deltas=np.array([[0.1, 0, 0, 0.2], [0, -0.1, 0.3, 0], [0, 0, 0, 0]]),
        levels=np.array([0, 1, 1]),
        image_size=(40.0, 50.0),
        pre_nms_top_n=2,
        post_nms_top_n=3,
        nms_threshold=0.7,
        min_size=1.0,
    ),
    "roi_align": dict(
        features=np.arange(60.0).reshape(2, 5, 6) % 7,
        rois=np.array([[0, 0, 3, 2.5], [1, 1, 1, 4]]),
        output_size=(2, 3),
        spatial_scale=0.5,
        sampling_ratio=0,
        aligned=True,
    ),
    "roi_pool": dict(
        features=np.arange(60.0).reshape(2, 5, 6) % 7,
        rois=np.array([[0, 0, 3, 2.5], [1, 1, 1, 4]]),
        output_size=(2, 3),
        spatial_scale=0.5,
    ),
    "multiscale_roi_align": dict(
        features=[np.arange(256.0).reshape(1, 16, 16) % 11, np.arange(64.0).reshape(1, 8, 8) % 5],
        rois=np.array([[0, 0, 30, 30], [2, 2, 60, 50.0]]),
        output_size=(2, 2),
        sampling_ratio=2,
        image_size=(64.0, 64.0),
    ),
}


@pytest.mark.parametrize("operation", sorted(SNIPPET_CALLS))
def test_repro_snippet_builds_the_call_with_openvino_itself(adapter, operation):
    arguments = SNIPPET_CALLS[operation]
    snippet = adapter.repro_snippet(operation, arguments)
    assert "detspec" not in snippet
    printed = _printed(snippet)
    expected = getattr(adapter, operation)(**arguments)
    expected = list(expected) if operation == "generate_proposals" else [expected]  # boxes, scores
    assert len(printed) == len(expected)
    for actual, wanted in zip(printed, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(actual), np.asarray(wanted))


def test_repro_snippet_of_proposal4_is_the_adapters_call(legacy):
    anchors = _own_grid((2, 2), 8, (8, 16), (1.0,))
    arguments = dict(
        anchors=anchors,
        logits=np.array([0.5, 0.25, 1.0, 0.75, 0.0, -0.25, -0.5, -0.75]),
        deltas=np.zeros((8, 4)),
        levels=np.zeros(8, np.int64),
        image_size=(32.0, 32.0),
        pre_nms_top_n=8,
        post_nms_top_n=9,
        nms_threshold=0.7,
        min_size=16.0,
    )
    rois, probabilities = _printed(legacy.repro_snippet("generate_proposals", arguments))
    expected = legacy.generate_proposals(**arguments)
    count = len(expected.boxes)
    assert rois[count, 0] == -1  # the end marker the adapter reads up to
    np.testing.assert_array_equal(rois[:count, 1:], expected.boxes)
    np.testing.assert_array_equal(probabilities[:count], expected.scores)
    broken = anchors.copy()
    broken[3, 2] += 1  # no longer Proposal-4's grid: the adapter refuses it, and there is no snippet
    assert legacy.repro_snippet("generate_proposals", {**arguments, "anchors": broken}) is None


def test_value_models_accept_roi_align9_on_maps_of_any_magnitude(adapter):
    """The check models of the value clauses: ROIAlign-9 and the feature extractor on random maps
    up to 2**40 (float32 sums that cancel) agree with them; the spec's own answer for a zero-area
    RoI (pooled from the first level instead of 0) does not."""
    from detspec.properties.strategies.roi import pyramid

    rng = np.random.default_rng(3)
    for trial in range(12):
        features = rng.normal(size=(2, 5, 6)) * 2.0 ** int(rng.integers(-40, 41))
        starts = rng.integers(-8, 24, (3, 2)) / 4
        rois = np.concatenate(
            [starts, starts + rng.integers(0, 24, (3, 2)) / 4 * (rng.random((3, 2)) > 0.3)], 1
        )
        arguments = dict(
            features=features,
            rois=rois,
            output_size=(2, 3),
            spatial_scale=[1.0, 0.5][trial % 2],
            sampling_ratio=trial % 3,
            aligned=bool(trial % 4 // 2),
        )
        assert (
            models.roi_align9_nan_without_samples.model(adapter.roi_align(**arguments), **arguments) is None
        )
    image = (64.0, 128.0)
    maps = pyramid([1, 4], image, 1, 0, 2.0**40)
    rois = np.array(
        [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 117.0, 1.0], [0.0, 0.0, 16.0, 16.0], [8.0, 8.0, 8.0, 40.0]]
    )
    arguments = dict(features=maps, rois=rois, output_size=(2, 2), sampling_ratio=0, image_size=image)
    pooled = adapter.multiscale_roi_align(**arguments)
    assert models.feature_extractor_value_of_empty_rois.model(pooled, **arguments) is None
    assert np.all(pooled[[0, 3]] == 0)
    spec = pooled.copy()  # the spec pools the empty RoI from the first level (P1: scale 1/2)
    spec[0] = ref_pool.roi_align(maps[0], rois[:1], (2, 2), 0.5, 0)[0]
    assert models.feature_extractor_value_of_empty_rois.model(spec, **arguments) is not None
