"""mmdetection 3.3 behind the implementation interface (``--detspec-impl mmdetection``).

Every operation runs mmdetection's own code (task modules, heads, RoI extractor) and mmcv's ops,
configured as the Faster R-CNN R50-FPN config ``mmdet/.mim/configs/_base_/models/
faster-rcnn_r50_fpn.py`` of the installed wheel (read with ``mmengine.Config.fromfile``). Each
module is built from its own config section; only the values that are detspec arguments are
replaced. What is taken from the config (lines of that file):

=====================================  ==================================================  =========
used for                               config value                                        line
=====================================  ==================================================  =========
grid_anchors                           ``AnchorGenerator``, ``scales=[8]``: base size =    L29-33
                                       stride, scale = size / stride; ``center_offset=0``
                                       (anchor_generator.py:78), ``scale_major=True``
encode/decode, RPN targets, proposals  ``DeltaXYWHBBoxCoder`` (means 0; stds = 1/weights)  L34-37
rpn_loss(_gradient)                    ``CrossEntropyLoss(use_sigmoid=True)``, ``L1Loss``  L38-40
multiscale_roi_align                   ``SingleRoIExtractor(RoIAlign(sampling_ratio=0))``, L43-47
                                       ``finest_scale=56`` (single_level_roi_extractor
                                       .py:35), ``aligned=True`` (mmcv/ops/roi_align.py:179)
sample_rois targets, fast_rcnn_loss    ``Shared2FCBBoxHead``, ``reg_class_agnostic=False``, L48-61
                                       ``CrossEntropyLoss``, ``L1Loss``
match_anchors, rpn_regression_targets  ``MaxIoUAssigner(min_pos_iou=0.3,                  L65-71
                                       match_low_quality=True)``, ``gt_max_assign_all``
                                       default True (max_iou_assigner.py:126)
sample_balanced                        ``RandomSampler(neg_pos_ub=-1,                      L72-77
                                       add_gt_as_proposals=False)``
match_anchors (border), loss weights   ``allowed_border=-1``, ``pos_weight=-1``            L78-79
generate_proposals                     ``rpn_proposal`` (``nms`` type): nms_pre,           L81-85
                                       max_per_img, iou_threshold, min_bbox_size replaced
sample_rois                            rcnn ``MaxIoUAssigner(match_low_quality=False)``,   L87-100
                                       ``RandomSampler(add_gt_as_proposals=True)``,
                                       ``pos_weight=-1``
=====================================  ==================================================  =========

detspec's arguments replace: the anchor sizes, ratios and strides (one generator per level, as
detspec's levels need not share them); ``pos_iou_thr``/``neg_iou_thr`` (``high``/``low``); the
sampler's ``num``/``pos_fraction``; the rcnn assigner's ``pos_iou_thr = min_pos_iou =
fg_threshold`` and ``neg_iou_thr = bg_high``, or the ``(bg_low, bg_high)`` form when
``bg_low > 0`` (max_iou_assigner.py:288-291); ``target_stds = 1 / weights``; ``wh_ratio_clip =
exp(-clamp)`` (the clamp is ``|log(wh_ratio_clip)|``, delta_xywh_bbox_coder.py:345); the RoI
layer's output size and sampling ratio; ``featmap_strides`` from the map and image sizes.

mmcv-lite has no compiled ops: ``mmcv_ops`` registers a stand-in ``mmcv._ext`` and builds mmcv's
``nms``/``roi_align``/``bbox_overlaps`` CPU kernels once (cached in the venv). Without them
``nms``, ``batched_nms``, ``generate_proposals``, ``roi_align`` and ``multiscale_roi_align`` are
not provided. mmcv has no CPU RoIPool kernel: ``roi_pool`` is never provided.

mmdetection's choices that the spec names as conventions include the best-anchor floor
(``rpn_low_quality_floor = 0.3``, ``min_pos_iou``), the promoted anchor's GT (``last-gt``:
the GT loop overwrites, max_iou_assigner.py:306-310), the RPN loss normaliser ``max(#pos, 1) +
max(#neg, 1)`` (``sampled-clamped``), the FPN level mapping (``finest-56``), half-pixel RoIAlign
in the FPN pooler and "no GT box: every proposal is background" (``roi_no_gt``).

Computation is float32 on the CPU. Random draws (``RandomSampler.random_choice``:
``torch.randperm`` on torch's global generator, random_sampler.py:67) are seeded with
``torch.manual_seed(seed)`` inside ``torch.random.fork_rng()``.
"""

from __future__ import annotations

import copy
import importlib.metadata
import math
from pathlib import Path

import numpy as np
from detspec.conformance.adapters import mmcv_ops
from detspec.properties.interface import (
    Conventions,
    HeadLossGradient,
    LossTerms,
    MatchResult,
    Proposals,
    RoiSample,
    RpnLossGradient,
)

mmcv_ops.install_stand_in()  # before anything imports mmcv.ops

import mmcv  # noqa: E402
import mmdet  # noqa: E402
import mmengine  # noqa: E402
import torch  # noqa: E402
from mmdet.models.task_modules.assigners import AssignResult  # noqa: E402
from mmdet.models.task_modules.prior_generators import anchor_inside_flags  # noqa: E402
from mmdet.models.task_modules.samplers import SamplingResult  # noqa: E402
from mmdet.registry import MODELS, TASK_UTILS  # noqa: E402
from mmdet.structures.bbox import HorizontalBoxes, get_box_wh  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.config import Config, ConfigDict  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

register_all_modules()

CONFIG_PATH = (
    Path(mmdet.__file__).parent / ".mim" / "configs" / "_base_" / "models" / "faster-rcnn_r50_fpn.py"
)
CONFIG = Config.fromfile(str(CONFIG_PATH)).model
DTYPE = torch.float32


def _t(array, dtype=DTYPE) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float64), dtype=dtype)


def _boxes(array) -> torch.Tensor:
    """``(N, 4)`` boxes as given (an empty list becomes ``(0, 4)``); a wrong column count is
    passed on for mmdetection's own checks to see."""
    boxes = np.asarray(array, dtype=np.float64)
    return torch.as_tensor(boxes.reshape(0, 4) if boxes.size == 0 else boxes, dtype=DTYPE)


def _labels(array) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.int64)).reshape(-1)


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _coder(weights):
    """The config's ``DeltaXYWHBBoxCoder`` with ``target_stds = 1 / weights`` (detspec's weights
    multiply the deltas; mmdet divides them by the stds, delta_xywh_bbox_coder.py:258-260)."""
    cfg = copy.deepcopy(CONFIG.rpn_head.bbox_coder)
    cfg.target_stds = [1.0 / float(w) for w in weights]
    return TASK_UTILS.build(cfg)


def _rpn_head(high: float = 0.7, low: float = 0.3, sampler: dict | None = None):
    """The config's ``RPNHead`` with its ``train_cfg.rpn`` (thresholds replaced) and, as its
    ``test_cfg``, ``train_cfg.rpn_proposal``; one input channel (its convolutions are unused)."""
    head_cfg = copy.deepcopy(CONFIG.rpn_head)
    train_cfg = copy.deepcopy(CONFIG.train_cfg.rpn)
    train_cfg.assigner.pos_iou_thr = float(high)
    train_cfg.assigner.neg_iou_thr = float(low)
    if sampler is not None:
        train_cfg.sampler = sampler
    head_cfg.update(
        train_cfg=train_cfg,
        test_cfg=copy.deepcopy(CONFIG.train_cfg.rpn_proposal),
        in_channels=1,
        feat_channels=1,
    )
    return MODELS.build(head_cfg)


def _bbox_head(num_classes: int, weights=(10.0, 10.0, 5.0, 5.0)):
    cfg = copy.deepcopy(CONFIG.roi_head.bbox_head)
    cfg.update(num_classes=int(num_classes), in_channels=1, fc_out_channels=4)
    cfg.bbox_coder.target_stds = [1.0 / float(w) for w in weights]
    return MODELS.build(cfg)


def _assign_result_from_labels(labels: torch.Tensor) -> AssignResult:
    """An ``AssignResult`` carrying detspec's 1 / 0 / -1 labels: positives assigned to GT 1."""
    gt_inds = torch.where(labels == 1, 1, torch.where(labels == 0, 0, -1)).long()
    return AssignResult(
        num_gts=1,
        gt_inds=gt_inds,
        max_overlaps=torch.zeros(len(labels)),
        labels=torch.where(labels == 1, 0, -1).long(),
    )


def _distribution_version(*names: str) -> str:
    for name in names:
        try:
            return f"{name} {importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return f"mmcv {mmcv.__version__}"


class MmdetectionAdapter:
    """mmdetection's operations without mmcv's compiled kernels (see the module docstring)."""

    name = "mmdetection"
    expectations_name = "mmdetection"
    conventions = Conventions(
        box_width="continuous",  # x2 - x1 (bbox_overlaps.py:151-191, no +1)
        min_size_bound="strict",  # w > min_bbox_size and h > min_bbox_size (rpn_head.py:277-278)
        decode_clamp="symmetric",  # dwh.clamp(min=-max_ratio, max=max_ratio) (delta_xywh:350)
        nms_bound="strict",  # suppressed at ovr > iou_threshold (mmcv csrc/pytorch/cpu/nms.cpp:48)
        dtype="float32",
        anchor_offset="corner",  # center_offset=0 (anchor_generator.py:78)
        anchor_rounding="none",
        anchor_order="ratio-major",  # scale_major=True: ratios outer, scales inner (L190-192)
        rpn_border="keep",  # allowed_border=-1 (config L78)
        rpn_loss_normaliser="sampled-clamped",  # max(P, 1) + max(N, 1) (sampling_result.py:96-100)
        rpn_smooth_l1_beta="0",  # L1Loss (config L40)
        rpn_low_quality_floor="0.3",  # min_pos_iou=0.3 (config L69; max_iou_assigner.py:307)
        rpn_low_quality_match="last-gt",  # the GT loop overwrites (max_iou_assigner.py:306-310)
        proposal_pipeline="per-level",  # top nms_pre per level, NMS by level (rpn_head.py:192-234)
        proposal_min_size_stage="after-top-n",  # _bbox_post_process filters after decoding
        proposal_anchors="given",  # RPNHead takes the priors it is given
        roi_gt_candidates="added",  # add_gt_as_proposals=True (config L98)
        roi_fill="shorter",  # RandomSampler takes what there is
        roi_background_label="num-classes",  # bbox_head.py:197-199
        roi_background_low="parameter",  # neg_iou_thr as a (low, high) tuple
        roi_no_gt="all-background",  # num_gts == 0: every candidate negative (max_iou_assigner:267-269)
        roi_smooth_l1_beta="0",  # L1Loss (config L61)
        fpn_level_mapping="finest-56",  # finest_scale=56 (single_level_roi_extractor.py:35, 59-62)
        multiscale_alignment="half-pixel",  # RoIAlign aligned=True default (mmcv/ops/roi_align.py:179)
        multiscale_output="any",  # RoIAlign output_size (h, w)
    )

    has_kernels = False

    def __init__(self) -> None:
        kernels = mmcv_ops.STATE
        compiled = "compiled" if self.has_kernels else f"absent ({kernels['status']}: {kernels['detail']})"
        self.facts = {"device": "cpu", "mmcv_ops": "compiled" if self.has_kernels else "absent"}
        self.version = (
            f"mmdet {mmdet.__version__}, {_distribution_version('mmcv-lite', 'mmcv')}, "
            f"mmengine {mmengine.__version__}, torch {torch.__version__}, float32, CPU; "
            f"mmcv nms/roi_align/bbox_overlaps kernels {compiled}"
        )

    # --- boxes ------------------------------------------------------------------------------

    def box_area(self, *, boxes):
        """``HorizontalBoxes.areas`` (structures/bbox/horizontal_boxes.py:100-104)."""
        return _np(HorizontalBoxes(_boxes(boxes)).areas)

    def box_iou(self, *, boxes1, boxes2):
        """``BboxOverlaps2D``, ``MaxIoUAssigner``'s default iou_calculator (max_iou_assigner.py:131)
        -> ``bbox_overlaps`` (structures/bbox/bbox_overlaps.py:151-191): union clamped to 1e-6."""
        calculator = TASK_UTILS.build(dict(type="BboxOverlaps2D"))
        return _np(calculator(_boxes(boxes1), _boxes(boxes2)))

    def clip_boxes_to_image(self, *, boxes, image_size):
        """``HorizontalBoxes.clip_`` (horizontal_boxes.py:154-162): x in [0, W], y in [0, H]."""
        height, width = image_size
        clipped = HorizontalBoxes(_boxes(boxes).clone())
        clipped.clip_((height, width))
        return _np(clipped.tensor)

    def remove_small_boxes(self, *, boxes, min_size):
        """The RPN's min-size filter, mmdet's only one (rpn_head.py:277-278): ``w > min and h > min``."""
        w, h = get_box_wh(_boxes(boxes))
        return _np(torch.nonzero((w > float(min_size)) & (h > float(min_size))).reshape(-1))

    def encode_boxes(self, *, reference_boxes, target_boxes, weights):
        """``DeltaXYWHBBoxCoder.encode`` -> ``bbox2delta`` (delta_xywh_bbox_coder.py:214-261)."""
        return _np(_coder(weights).encode(_boxes(reference_boxes), _boxes(target_boxes)))

    def decode_boxes(self, *, reference_boxes, deltas, weights, clamp):
        """``DeltaXYWHBBoxCoder.decode`` -> ``delta2bbox`` (L264-361) with ``max_shape=None`` (no
        clipping) and ``wh_ratio_clip = exp(-clamp)``: ``dw, dh`` clamped to ``±clamp``."""
        with np.errstate(divide="ignore"):
            ratio = math.exp(-float(clamp))
        coder = _coder(weights)
        return _np(coder.decode(_boxes(reference_boxes), _t(deltas).reshape(-1, 4), None, ratio))

    # --- anchors ----------------------------------------------------------------------------

    def grid_anchors(self, *, feature_sizes, strides, sizes, ratios):
        """``AnchorGenerator.grid_priors`` (anchor_generator.py:161-301), one generator per level
        with the config's parametrisation: ``strides=[(stride_x, stride_y)]`` (mmdet's order is
        (w, h), L92), base size = min(stride) (L93), ``scales = size / base``."""
        levels = []
        for (height, width), (stride_y, stride_x), level_sizes, level_ratios in zip(
            feature_sizes, strides, sizes, ratios, strict=True
        ):
            cfg = copy.deepcopy(CONFIG.rpn_head.anchor_generator)
            base = min(float(stride_x), float(stride_y))
            cfg.update(
                strides=[(float(stride_x), float(stride_y))],
                ratios=[float(r) for r in level_ratios],
                scales=[float(s) / base for s in level_sizes],
            )
            generator = TASK_UTILS.build(cfg)
            (anchors,) = generator.grid_priors([(int(height), int(width))], dtype=DTYPE, device="cpu")
            levels.append(anchors)
        return _np(torch.cat(levels)) if levels else np.zeros((0, 4), np.float32)

    # --- RPN training -----------------------------------------------------------------------

    def _rpn_targets(self, anchors, gt_boxes, image_size, high, low):
        """``AnchorHead._get_targets_single`` (anchor_head.py:201-306) with the config's assigner
        and a ``PseudoSampler`` (every assigned anchor, no draw): labels as assigned."""
        head = _rpn_head(high, low, sampler=dict(type="PseudoSampler"))
        anchors_t, gt_t = _boxes(anchors), _boxes(gt_boxes)
        gt = InstanceData(bboxes=gt_t, labels=torch.zeros(len(gt_t), dtype=torch.long))
        height, width = image_size
        meta = {"img_shape": (int(height), int(width))}
        valid = torch.ones(len(anchors_t), dtype=torch.bool)
        _, _, targets, _, pos_inds, neg_inds, result = head._get_targets_single(anchors_t, valid, gt, meta)
        inside = torch.nonzero(
            anchor_inside_flags(anchors_t, valid, meta["img_shape"], head.train_cfg["allowed_border"])
        ).reshape(-1)
        labels = torch.full((len(anchors_t),), -1, dtype=torch.long)
        matched = torch.full((len(anchors_t),), -1, dtype=torch.long)
        labels[inside[neg_inds]] = 0
        labels[inside[pos_inds]] = 1
        matched[inside[pos_inds]] = result.pos_assigned_gt_inds
        return labels, matched, targets

    def match_anchors(self, *, anchors, gt_boxes, image_size, high, low):
        labels, matched, _ = self._rpn_targets(anchors, gt_boxes, image_size, high, low)
        return MatchResult(_np(labels).astype(np.int64), _np(matched).astype(np.int64))

    def rpn_regression_targets(self, *, anchors, gt_boxes, image_size, high, low):
        """``bbox_targets`` of the same call: encode(anchor, assigned GT) for positives, 0 elsewhere."""
        return _np(self._rpn_targets(anchors, gt_boxes, image_size, high, low)[2])

    def sample_balanced(self, *, labels, batch_size, positive_fraction, seed):
        """The config's ``RandomSampler`` (``num`` and ``pos_fraction`` replaced) on an
        ``AssignResult`` carrying the labels (random_sampler.py, base_sampler.py:94-143)."""
        labels_t = _labels(labels)
        cfg = copy.deepcopy(CONFIG.train_cfg.rpn.sampler)
        cfg.update(num=int(batch_size), pos_fraction=float(positive_fraction))
        sampler = TASK_UTILS.build(cfg)
        priors = InstanceData(priors=torch.zeros(len(labels_t), 4))
        gt = InstanceData(bboxes=torch.zeros(1, 4), labels=torch.zeros(1, dtype=torch.long))
        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            result = sampler.sample(_assign_result_from_labels(labels_t), priors, gt)
        marks = torch.full_like(labels_t, -1)
        marks[result.neg_inds] = 0
        marks[result.pos_inds] = 1
        return _np(marks).astype(np.int64)

    def _rpn_loss(self, logits, deltas, sampled, targets, requires_grad=False):
        """``AnchorHead.loss_by_feat_single`` (anchor_head.py:415-465) of the config's RPNHead with
        ``avg_factor`` from ``SamplingResult`` (sampling_result.py:96-100), as ``get_targets``
        sums it (L393-394). The head's layout: one image, ``H = n``, ``W = A = 1``."""
        head = _rpn_head()
        sampled_t = _labels(sampled)
        n = len(sampled_t)
        logits_t = _t(logits).reshape(-1).requires_grad_(requires_grad)
        deltas_t = _t(deltas).reshape(-1, 4).requires_grad_(requires_grad)
        positive = sampled_t == 1
        labels = torch.where(positive, 0, head.num_classes).long()  # RPN: class 0, background 1
        label_weights = (sampled_t >= 0).float()
        bbox_weights = positive.float()[:, None].expand(n, 4).contiguous()
        result = SamplingResult(
            torch.nonzero(positive).reshape(-1),
            torch.nonzero(sampled_t == 0).reshape(-1),
            torch.zeros(n, 4),
            torch.zeros(1, 4),
            _assign_result_from_labels(sampled_t),
            torch.zeros(n, dtype=torch.uint8),
        )
        loss_cls, loss_bbox = head.loss_by_feat_single(
            logits_t.reshape(1, 1, n, 1),
            deltas_t.t().reshape(1, 4, n, 1),
            torch.zeros(1, n, 4),
            labels[None],
            label_weights[None],
            _t(targets).reshape(1, n, 4),
            bbox_weights[None],
            avg_factor=result.avg_factor,
        )
        return logits_t, deltas_t, loss_cls, loss_bbox

    def rpn_loss(self, *, logits, deltas, sampled, targets, anchor_locations):
        _, _, cls, reg = self._rpn_loss(logits, deltas, sampled, targets)
        return LossTerms(cls.item(), reg.item())

    def rpn_loss_gradient(self, *, logits, deltas, sampled, targets, anchor_locations):
        logits_t, deltas_t, cls, reg = self._rpn_loss(logits, deltas, sampled, targets, True)
        d_logits, d_deltas = torch.autograd.grad(cls + reg, [logits_t, deltas_t], allow_unused=True)
        d_logits = torch.zeros_like(logits_t) if d_logits is None else d_logits
        d_deltas = torch.zeros_like(deltas_t) if d_deltas is None else d_deltas
        return RpnLossGradient(_np(d_logits), _np(d_deltas))

    # --- RoI head ---------------------------------------------------------------------------

    def sample_rois(
        self,
        *,
        proposals,
        gt_boxes,
        gt_labels,
        num_classes,
        batch_size,
        positive_fraction,
        fg_threshold,
        bg_high,
        bg_low,
        weights,
        seed,
    ):
        """What ``StandardRoIHead.loss`` does per image (standard_roi_head.py:115-130): the config's
        rcnn assigner and sampler, then ``bbox_head.get_targets`` (bbox_head.py:225-283). Rows:
        positives then negatives; GT boxes are prepended as candidates (base_sampler.py:99-108)."""
        train_cfg = copy.deepcopy(CONFIG.train_cfg.rcnn)
        assigner_cfg = train_cfg.assigner
        assigner_cfg.pos_iou_thr = float(fg_threshold)
        assigner_cfg.min_pos_iou = float(fg_threshold)
        assigner_cfg.neg_iou_thr = float(bg_high) if bg_low == 0 else (float(bg_low), float(bg_high))
        train_cfg.sampler.update(num=int(batch_size), pos_fraction=float(positive_fraction))
        assigner = TASK_UTILS.build(assigner_cfg)
        sampler = TASK_UTILS.build(train_cfg.sampler)
        head = _bbox_head(num_classes, weights)
        candidates = InstanceData(priors=_boxes(proposals))
        gt = InstanceData(bboxes=_boxes(gt_boxes), labels=_labels(gt_labels))
        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            assign_result = assigner.assign(candidates, gt)
            result = sampler.sample(assign_result, candidates, gt)
        labels, _, targets, _ = head.get_targets([result], train_cfg, concat=True)
        matched = torch.full((len(labels),), -1, dtype=torch.long)
        matched[: len(result.pos_inds)] = result.pos_assigned_gt_inds
        rois = torch.cat([result.pos_priors, result.neg_priors]).reshape(-1, 4)
        return RoiSample(_np(rois), _np(labels).astype(np.int64), _np(matched).astype(np.int64), _np(targets))

    def _head_loss(self, class_logits, box_regression, labels, targets, requires_grad=False):
        """``BBoxHead.loss`` (bbox_head.py:333-423) of the config's Shared2FCBBoxHead with
        ``num_classes = C - 1``: labels 0..C-1, background C-1. mmdet's class-specific ``bbox_pred``
        has ``4 * num_classes`` columns, no background ones (L87-88): detspec's last four columns
        are not passed (their gradient is 0). Without any RoI, ``BBoxHead.loss`` returns no
        ``loss_cls`` (L376-377); the total loss (the sum of the dict) then has no classification
        term: 0."""
        logits_t = _t(class_logits).requires_grad_(requires_grad)
        count, classes = logits_t.shape
        boxes_t = _t(box_regression).reshape(count, 4 * classes).requires_grad_(requires_grad)
        head = _bbox_head(classes - 1)
        labels_t = _labels(labels)
        foreground = (labels_t >= 0) & (labels_t < classes - 1)
        losses = head.loss(
            logits_t,
            boxes_t[:, : 4 * (classes - 1)],
            torch.zeros(count, 5),
            labels_t,
            torch.ones(count),
            _t(targets).reshape(count, 4),
            foreground.float()[:, None].expand(count, 4).contiguous(),
        )
        cls = losses.get("loss_cls", logits_t.sum() * 0.0)
        return logits_t, boxes_t, cls, losses["loss_bbox"]

    def fast_rcnn_loss(self, *, class_logits, box_regression, labels, targets):
        _, _, cls, box = self._head_loss(class_logits, box_regression, labels, targets)
        return LossTerms(cls.item(), box.item())

    def fast_rcnn_loss_gradient(self, *, class_logits, box_regression, labels, targets):
        logits_t, boxes_t, cls, box = self._head_loss(class_logits, box_regression, labels, targets, True)
        d_logits, d_boxes = torch.autograd.grad(cls + box, [logits_t, boxes_t], allow_unused=True)
        d_logits = torch.zeros_like(logits_t) if d_logits is None else d_logits
        d_boxes = torch.zeros_like(boxes_t) if d_boxes is None else d_boxes
        return HeadLossGradient(_np(d_logits), _np(d_boxes))


class MmdetectionCompiledAdapter(MmdetectionAdapter):
    """With mmcv's compiled ``nms``/``roi_align`` kernels: the operations that need them too."""

    has_kernels = True

    def nms(self, *, boxes, scores, iou_threshold):
        """``mmcv.ops.nms`` (offset 0; mmcv/ops/nms.py:77-140) -> compiled ``nms_cpu``."""
        from mmcv.ops import nms

        _, keep = nms(_boxes(boxes), _t(scores).reshape(-1), float(iou_threshold))
        return _np(keep).astype(np.int64)

    def batched_nms(self, *, boxes, scores, classes, iou_threshold):
        """``mmcv.ops.batched_nms`` with ``nms_cfg=dict(type='nms', iou_threshold=t)``, as the RPN
        and the bbox head call it: the coordinate offset ``idxs * (boxes.max() + 1)`` below
        ``split_thr = 10000`` boxes, a loop over classes above (mmcv/ops/nms.py:216-320)."""
        from mmcv.ops import batched_nms

        _, keep = batched_nms(
            _boxes(boxes),
            _t(scores).reshape(-1),
            _labels(classes),
            dict(type="nms", iou_threshold=float(iou_threshold)),
        )
        return _np(keep).astype(np.int64)

    def generate_proposals(
        self,
        *,
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
        """``RPNHead._predict_by_feat_single`` (rpn_head.py:134-234) and ``_bbox_post_process``
        (L236-302) with the config's ``rpn_proposal`` (nms_pre, max_per_img, nms.iou_threshold
        and min_bbox_size replaced): per level the sigmoid scores' top ``nms_pre``, decoding with
        clipping to the image, ``w > min and h > min``, ``batched_nms`` by level, ``[:max_per_img]``.
        Anchors are grouped by level; each level is a map of ``H = n``, ``W = A = 1``."""
        if int(pre_nms_top_n) <= 0:
            raise ValueError(
                f"pre_nms_top_n={pre_nms_top_n}: mmdetection's nms_pre <= 0 means no limit "
                "(rpn_head.py:205); a limit of 0 cannot be expressed"
            )
        cfg = ConfigDict(copy.deepcopy(CONFIG.train_cfg.rpn_proposal))
        cfg.update(nms_pre=int(pre_nms_top_n), max_per_img=int(post_nms_top_n), min_bbox_size=float(min_size))
        cfg.nms.iou_threshold = float(nms_threshold)
        anchors_t, logits_t, deltas_t = _boxes(anchors), _t(logits).reshape(-1), _t(deltas).reshape(-1, 4)
        levels_np = np.asarray(levels, dtype=np.int64).reshape(-1)
        scores, predictions, priors = [], [], []
        # no anchor at all: one empty level, as a map of size 0 gives (an empty list of levels
        # makes torch.cat raise at rpn_head.py:224)
        for level in np.unique(levels_np) if len(levels_np) else [0]:
            members = torch.as_tensor(np.flatnonzero(levels_np == level), dtype=torch.long)
            n = len(members)
            scores.append(logits_t[members].reshape(1, n, 1))
            predictions.append(deltas_t[members].t().reshape(4, n, 1))
            priors.append(anchors_t[members])
        height, width = image_size
        with torch.no_grad():
            result = _rpn_head()._predict_by_feat_single(
                scores,
                predictions,
                [None] * len(scores),
                priors,
                {"img_shape": (int(height), int(width))},
                cfg,
            )
        boxes = result.bboxes.tensor if hasattr(result.bboxes, "tensor") else result.bboxes
        return Proposals(_np(boxes.reshape(-1, 4)), _np(result.scores.reshape(-1)))

    def roi_align(self, *, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        """``mmcv.ops.RoIAlign(output_size, spatial_scale, sampling_ratio, 'avg', aligned)``
        (mmcv/ops/roi_align.py:172-205) -> compiled ``roi_align_forward_cpu``."""
        from mmcv.ops import RoIAlign

        boxes = _finite_rois(rois)
        layer = RoIAlign(
            tuple(int(v) for v in output_size),
            float(spatial_scale),
            int(sampling_ratio),
            "avg",
            bool(aligned),
        )
        with torch.no_grad():
            return _np(layer(_t(features)[None], torch.cat([torch.zeros(len(boxes), 1), boxes], dim=1)))

    def multiscale_roi_align(self, *, features, rois, output_size, sampling_ratio, image_size):
        """``SingleRoIExtractor`` (single_level_roi_extractor.py:44-119) from the config's
        ``bbox_roi_extractor`` with output size, sampling ratio and ``featmap_strides`` (image
        height / map height, a power of 2) replaced: level ``floor(log2(sqrt(wh) / 56 + 1e-6))``
        counted from the first map given, RoIAlign ``aligned=True``."""
        boxes = _finite_rois(rois)
        maps = [_t(f)[None] for f in features]
        image_height = float(image_size[0])
        cfg = copy.deepcopy(CONFIG.roi_head.bbox_roi_extractor)
        cfg.roi_layer.update(
            output_size=tuple(int(v) for v in output_size), sampling_ratio=int(sampling_ratio)
        )
        cfg.update(
            out_channels=int(maps[0].shape[1]),
            featmap_strides=[int(2 ** round(math.log2(image_height / m.shape[2]))) for m in maps],
        )
        extractor = MODELS.build(cfg)
        with torch.no_grad():
            return _np(extractor(tuple(maps), torch.cat([torch.zeros(len(boxes), 1), boxes], dim=1)))


def _finite_rois(rois) -> torch.Tensor:
    """The RoIs as a tensor; mmcv's CPU RoIAlign reads out of bounds on a non-finite RoI (its
    ``(int) y`` of NaN, csrc/pytorch/cpu/roi_align.cpp:60-67, kills the process), so such RoIs are
    refused here instead of calling it."""
    boxes = _boxes(rois)
    if not torch.isfinite(boxes).all():
        raise ValueError("rois: non-finite coordinates (mmcv's CPU RoIAlign would read out of bounds)")
    return boxes


def mmdetection() -> MmdetectionAdapter:
    """The adapter; builds mmcv's three CPU kernels on first use (about 1-2 min, cached in the
    venv). If they cannot be built, the operations that need them are not provided."""
    if mmcv_ops.load_kernels() is not None:
        return MmdetectionCompiledAdapter()
    return MmdetectionAdapter()
