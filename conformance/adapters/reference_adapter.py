"""The reference implementation as an adapter (``--impl reference`` / ``reference-legacy``)."""

from __future__ import annotations

import numpy as np
from detspec.properties.interface import (
    Conventions,
    HeadLossGradient,
    LossTerms,
    MatchResult,
    Proposals,
    RoiSample,
    RpnLossGradient,
    SupportInterval,
)
from detspec.reference import anchors as ref_anchors
from detspec.reference import boxes as ref
from detspec.reference import fourier as ref_fourier
from detspec.reference import proposals as ref_proposals
from detspec.reference import receptive_field as ref_rf
from detspec.reference import roi_pooling as ref_pool
from detspec.reference import roi_targets as ref_roi
from detspec.reference import rpn_targets as ref_rpn

from detspec import suite_version


class ReferenceAdapter:
    """``reference/`` behind the implementation interface, under the given conventions."""

    def __init__(self, conventions: Conventions | None = None, name: str = "reference") -> None:
        self.name = name
        self.version = suite_version()
        self.conventions = conventions or Conventions()

    @property
    def _width(self) -> str:
        return self.conventions.box_width

    def box_area(self, boxes):
        return ref.box_area(boxes, self._width)

    def box_iou(self, boxes1, boxes2):
        return ref.box_iou(boxes1, boxes2, self._width)

    def clip_boxes_to_image(self, boxes, image_size):
        return ref.clip_boxes_to_image(boxes, image_size, self._width)

    def remove_small_boxes(self, boxes, min_size):
        return ref.remove_small_boxes(boxes, min_size, self._width, self.conventions.min_size_bound)

    def encode_boxes(self, reference_boxes, target_boxes, weights):
        return ref.encode_boxes(reference_boxes, target_boxes, weights, self._width)

    def decode_boxes(self, reference_boxes, deltas, weights, clamp):
        return ref.decode_boxes(
            reference_boxes, deltas, weights, clamp, self.conventions.decode_clamp, self._width
        )

    def nms(self, boxes, scores, iou_threshold):
        return ref.nms(boxes, scores, iou_threshold, self._width, self.conventions.nms_bound)

    def batched_nms(self, boxes, scores, classes, iou_threshold):
        return ref.batched_nms(boxes, scores, classes, iou_threshold, self._width, self.conventions.nms_bound)

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        c = self.conventions
        return ref_anchors.multilevel_anchors(
            feature_sizes,
            strides,
            sizes,
            ratios,
            offset=c.anchor_offset,
            rounding=c.anchor_rounding,
            order=c.anchor_order,
            convention=self._width,
        )

    def receptive_field_support(self, layers, input_size, cells):
        support = np.asarray(ref_rf.dependency_support(layers, input_size, cells), dtype=np.int64).reshape(
            -1, 2
        )
        return SupportInterval(support[:, 0], support[:, 1])

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
        c = self.conventions
        rows = ref_proposals.generate_proposals(
            anchors,
            logits,
            deltas,
            levels,
            image_size,
            pre_nms_top_n,
            post_nms_top_n,
            nms_threshold,
            min_size,
            c.proposal_pipeline,
            c.proposal_min_size_stage,
            c.min_size_bound,
            self._width,
            c.decode_clamp,
        )
        return Proposals(rows[:, :4], rows[:, 4])

    def fft2(self, image):
        parts = ref_fourier.fft2(image)
        return parts[..., 0] + 1j * parts[..., 1]

    def amplitude_spectrum(self, image):
        return ref_fourier.amplitude_spectrum(image)

    def phase_spectrum(self, image):
        return ref_fourier.phase_spectrum(image)

    def phase_only(self, image):
        return ref_fourier.phase_only(image)

    def amplitude_only(self, image):
        return ref_fourier.amplitude_only(image)

    def hybrid(self, phase_donor, amplitude_donor):
        return ref_fourier.hybrid(phase_donor, amplitude_donor)

    def match_anchors(self, anchors, gt_boxes, image_size, high, low):
        c = self.conventions
        packed = ref_rpn.match_anchors(
            anchors,
            gt_boxes,
            image_size,
            high,
            low,
            c.rpn_border,
            self._width,
            c.low_quality_floor,
            c.rpn_low_quality_match,
        )
        return MatchResult(packed[:, 0].astype(np.int64), packed[:, 1].astype(np.int64))

    def rpn_regression_targets(self, anchors, gt_boxes, image_size, high, low):
        matched = self.match_anchors(anchors, gt_boxes, image_size, high, low).matched_gt
        return ref_rpn.regression_targets(anchors, gt_boxes, matched, self._width)

    def sample_balanced(self, labels, batch_size, positive_fraction, seed):
        return ref_rpn.sample_balanced(labels, batch_size, positive_fraction, seed).astype(np.int64)

    def rpn_loss(self, logits, deltas, sampled, targets, anchor_locations):
        c = self.conventions
        return LossTerms(
            *ref_rpn.rpn_loss(
                logits, deltas, sampled, targets, c.beta, c.rpn_loss_normaliser, anchor_locations
            )
        )

    def rpn_loss_gradient(self, logits, deltas, sampled, targets, anchor_locations):
        c = self.conventions
        gradient = ref_rpn.rpn_loss_gradient(
            logits, deltas, sampled, targets, c.beta, c.rpn_loss_normaliser, anchor_locations
        )
        return RpnLossGradient(gradient[:, 0], gradient[:, 1:])

    def sample_rois(
        self,
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
        c = self.conventions
        rows = ref_roi.sample_rois(
            proposals,
            gt_boxes,
            gt_labels,
            int(num_classes),
            int(batch_size),
            positive_fraction,
            fg_threshold,
            bg_high,
            bg_low,
            weights,
            int(seed),
            c.roi_gt_candidates,
            c.roi_fill,
            c.roi_background_label,
            self._width,
            c.roi_no_gt,
        )
        return RoiSample(rows[:, :4], rows[:, 4].astype(np.int64), rows[:, 5].astype(np.int64), rows[:, 6:])

    def fast_rcnn_loss(self, class_logits, box_regression, labels, targets):
        c = self.conventions
        return LossTerms(
            *ref_roi.fast_rcnn_loss(
                class_logits, box_regression, labels, targets, c.roi_beta, c.roi_background_label
            )
        )

    def fast_rcnn_loss_gradient(self, class_logits, box_regression, labels, targets):
        c = self.conventions
        gradient = ref_roi.fast_rcnn_loss_gradient(
            class_logits, box_regression, labels, targets, c.roi_beta, c.roi_background_label
        )
        classes = np.shape(class_logits)[1]
        return HeadLossGradient(gradient[:, :classes], gradient[:, classes:])

    def roi_align(self, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        return ref_pool.roi_align(
            features, rois, output_size, spatial_scale, int(sampling_ratio), bool(aligned)
        )

    def roi_pool(self, features, rois, output_size, spatial_scale):
        return ref_pool.roi_pool(features, rois, output_size, spatial_scale)

    def multiscale_roi_align(self, features, rois, output_size, sampling_ratio, image_size):
        c = self.conventions
        if c.multiscale_output == "square" and int(output_size[0]) != int(output_size[1]):
            raise ValueError(f"output_size: {tuple(output_size)} is not square (multiscale_output = square)")
        return ref_pool.multiscale_roi_align(
            features,
            rois,
            output_size,
            int(sampling_ratio),
            image_size,
            mapping=c.fpn_level_mapping,
            aligned=c.multiscale_alignment == "half-pixel",
        )


def reference() -> ReferenceAdapter:
    return ReferenceAdapter()


def reference_legacy() -> ReferenceAdapter:
    """The reference with every convention at a non-default value: py-faster-rcnn's ``+1`` box
    widths and anchors, strict min size, a symmetric decode clamp, NMS suppressing at ``IoU >=
    t``, size-major anchor order, a best-anchor floor of 0.3 with the last GT's match, RoI
    sampling without the GT boxes and with repeated negatives, background as the last class,
    every proposal of a GT-free image a background, and mmdetection's FPN pooler (levels from
    the first map by the 56 rule, half-pixel RoIAlign). The capabilities stay at "can do all"."""
    return ReferenceAdapter(
        Conventions(
            box_width="legacy",
            min_size_bound="strict",
            decode_clamp="symmetric",
            nms_bound="inclusive",
            anchor_offset="legacy",
            anchor_rounding="legacy",
            anchor_order="size-major",
            rpn_border="ignore",
            rpn_loss_normaliser="paper",
            rpn_smooth_l1_beta="1",
            rpn_low_quality_floor="0.3",
            rpn_low_quality_match="last-gt",
            proposal_pipeline="global",
            proposal_min_size_stage="before-top-n",
            roi_gt_candidates="not-added",
            roi_fill="repeat-negatives",
            roi_background_label="num-classes",
            roi_no_gt="all-background",
            roi_smooth_l1_beta="1",
            fpn_level_mapping="finest-56",
            multiscale_alignment="half-pixel",
        ),
        name="reference-legacy",
    )
