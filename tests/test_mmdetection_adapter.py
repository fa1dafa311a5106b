"""The mmdetection adapter (``--detspec-impl mmdetection``): the ``mmcv._ext`` stand-in makes
``mmdet.models`` importable on mmcv-lite, the adapter declares what it is, the operations that need
mmcv's compiled kernels are not provided without them, and the deviant models equal mmdetection.
Nothing here builds the kernels: the tests of compiled operations run only if a build is cached."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("mmdet")

from detspec.conformance.adapters import mmcv_ops
from detspec.conformance.adapters import mmdetection_adapter as mda
from detspec.conformance.deviations import mmdetection as models
from detspec.conformance.guard import provided_operations
from detspec.properties.interface import Conventions

KERNEL_OPERATIONS = {"nms", "batched_nms", "generate_proposals", "roi_align", "multiscale_roi_align"}


@pytest.fixture(scope="module")
def compiled() -> mda.MmdetectionAdapter:
    if mmcv_ops.load_kernels(mode="cached") is None:
        pytest.skip(f"mmcv kernels not built ({mmcv_ops.STATE['status']}: {mmcv_ops.STATE['detail']})")
    return mda.MmdetectionCompiledAdapter()


def test_the_stand_in_makes_mmdet_models_importable():
    import mmdet.models  # noqa: F401
    from mmcv.ops import nms  # noqa: F401
    from mmengine.utils.dl_utils import mmcv_full_available

    ext = sys.modules["mmcv._ext"]
    if not isinstance(ext, mmcv_ops.ExtStandIn):
        pytest.skip("a full mmcv with a compiled mmcv._ext is installed")
    assert not mmcv_full_available()  # its spec has no loader: mmengine is told the truth
    with pytest.raises(AttributeError):
        ext.__wrapped__  # noqa: B018  (dunder lookups are not kernels)
    with pytest.raises(NotImplementedError, match="deform_conv_forward"):
        ext.deform_conv_forward()


def test_the_adapter_declares_itself():
    adapter = mda.MmdetectionAdapter()
    assert adapter.name == "mmdetection" and adapter.expectations_name == "mmdetection"
    assert isinstance(adapter.conventions, Conventions)
    assert adapter.conventions.dtype == "float32" and adapter.conventions.min_size_bound == "strict"
    assert adapter.conventions.roi_background_label == "num-classes"
    for library in ("mmdet 3.3.0", "mmcv", "mmengine", "torch"):
        assert library in adapter.version
    assert adapter.facts == {"device": "cpu", "mmcv_ops": "absent"}


def test_without_kernels_their_operations_are_not_provided():
    without = provided_operations(mda.MmdetectionAdapter())
    assert not without & KERNEL_OPERATIONS and "roi_pool" not in without
    assert {"box_iou", "match_anchors", "sample_rois", "fast_rcnn_loss_gradient"} <= without
    assert provided_operations(mda.MmdetectionCompiledAdapter()) == without | KERNEL_OPERATIONS


def test_the_config_is_the_installed_r50_fpn():
    assert mda.CONFIG_PATH.is_file()
    assert mda.CONFIG.train_cfg.rpn.assigner.min_pos_iou == 0.3
    assert mda.CONFIG.roi_head.bbox_head.reg_class_agnostic is False


def test_anchors_equal_the_deviant_model_with_per_axis_strides():
    arguments = dict(
        feature_sizes=[[2, 3], [1, 2]], strides=[[16, 8], [32, 32]], sizes=[[32.0, 64.0], [100.0]]
    )
    arguments["ratios"] = [[0.5, 1.0, 2.0], [1.0]]
    anchors = mda.MmdetectionAdapter().grid_anchors(**arguments)
    assert anchors.shape == (2 * 3 * 6 + 2, 4)
    np.testing.assert_allclose(anchors, models.anchors_on_cell_corners.model(**arguments), rtol=0, atol=1e-4)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2  # corner offset: cell (x, y) centred on (8x, 16y)
    np.testing.assert_allclose(centres[6], [8.0, 0.0], atol=1e-5)


def test_box_iou_equals_its_model_on_valid_and_invalid_boxes():
    rng = np.random.default_rng(0)
    corners = rng.uniform(-20, 20, (12, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(0, 15, (12, 2))], axis=1)
    boxes[3] = [5.0, 0.0, 1.0, 1.0]  # inverted
    boxes[4] = [0.0, 0.0, np.nan, 1.0]
    boxes[5] = [2.0, 2.0, 2.0, 2.0]  # zero area: 0, not NaN
    got = mda.MmdetectionAdapter().box_iou(boxes1=boxes, boxes2=boxes)
    expected = models.iou_without_validation.model(boxes, boxes)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert got[5, 5] == 0


def test_a_fifth_column_is_read_as_a_score_and_six_are_refused():
    """``BboxOverlaps2D`` takes (x1, y1, x2, y2, score) rows (iou2d_calculator.py:45-50); the
    adapter passes the columns on as given."""
    adapter, box = mda.MmdetectionAdapter(), np.array([[0.0, 0.0, 4.0, 4.0]])
    rows = np.tile([0.0, 0.0, 2.0, 2.0, 0.7], (4, 1))
    five = adapter.box_iou(boxes1=rows, boxes2=box)
    assert five.tolist() == [[0.25]] * 4 == models.iou_without_validation.model(rows, box).tolist()
    with pytest.raises(AssertionError):
        adapter.box_iou(boxes1=np.ones((4, 6)), boxes2=box)


def test_compiled_nms_and_batched_nms_equal_their_models(compiled):
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, np.nan, 10]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    keep = compiled.nms(boxes=boxes, scores=scores, iou_threshold=0.5)
    assert keep.tolist() == models.nms_without_validation.model(boxes, scores, 0.5).tolist() == [0, 2, 3]
    witness = np.array([[-10.0, -10.0, 0.0, 0.0]] * 2)
    arguments = dict(boxes=witness, scores=np.array([0.5, 0.25]), classes=np.array([0, 1]), iou_threshold=0.5)
    output = compiled.batched_nms(**arguments)
    assert output.tolist() == [0]  # the class offset trick fails at max coordinate 0
    assert models.batched_nms_with_coordinate_offsets.model(output, **arguments) is None


def test_roi_align_refuses_a_nan_roi_instead_of_crashing(compiled):
    features = np.arange(2 * 6 * 6, dtype=float).reshape(2, 6, 6)
    pooled = compiled.roi_align(
        features=features,
        rois=np.array([[1.0, 1.0, 4.0, 3.0]]),
        output_size=(2, 2),
        spatial_scale=1.0,
        sampling_ratio=2,
        aligned=True,
    )
    assert pooled.shape == (1, 2, 2, 2) and pooled.dtype == np.float32
    with pytest.raises(ValueError, match="non-finite"):
        compiled.roi_align(
            features=features,
            rois=np.array([[np.nan, 0.0, 4.0, 4.0]]),
            output_size=(2, 2),
            spatial_scale=0.25,
            sampling_ratio=2,
            aligned=False,
        )


def test_a_single_anchor_level_crashes_the_rpn_head_as_its_model_says(compiled):
    arguments = dict(
        anchors=np.array([[0.0, 0.0, 16.0, 16.0], [0.0, 0.0, 32.0, 32.0], [16.0, 0.0, 48.0, 32.0]]),
        logits=np.array([0.5, 1.0, -1.0]),
        deltas=np.zeros((3, 4)),
        levels=np.array([0, 1, 1]),
        image_size=(64.0, 64.0),
        pre_nms_top_n=5,
        post_nms_top_n=5,
        nms_threshold=0.7,
        min_size=0.0,
    )
    with pytest.raises(IndexError):
        compiled.generate_proposals(**arguments)
    with pytest.raises(IndexError):
        models.proposals_crash_on_a_single_anchor_level.model(**arguments)
    arguments["levels"] = np.array([0, 0, 0])
    got = compiled.generate_proposals(**arguments)
    expected = models.proposals_crash_on_a_single_anchor_level.model(**arguments)
    np.testing.assert_allclose(got.boxes, expected.boxes, atol=1e-4)
    np.testing.assert_allclose(got.scores, expected.scores, atol=1e-6)
