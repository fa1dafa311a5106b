"""Negative controls of the RoI head (``spec/roi_head.md``)."""

from __future__ import annotations

import numpy as np
from detspec.properties.interface import OPERATIONS, LossTerms
from detspec.reference import roi_pooling as ref_pool
from detspec.reference import roi_targets as ref_roi

from tests.negative_controls.base import Control, as_roi_sample, positional

# --- RoI head -----------------------------------------------------------------------------------


class _RoiControl(Control):
    """Helpers for the RoI-head controls: the reference sampler with the declared conventions."""

    def _reference_rows(self, args, **changes):
        names = OPERATIONS["sample_rois"].arguments
        candidates = changes.pop("gt_candidates", self.conventions.roi_gt_candidates)
        values = {**dict(zip(names, args, strict=True)), **changes}
        values["num_classes"], values["batch_size"] = int(values["num_classes"]), int(values["batch_size"])
        values["seed"] = int(values["seed"])
        c = self.conventions
        return ref_roi.sample_rois(
            **values,
            gt_candidates=candidates,
            fill=c.roi_fill,
            background_label=c.roi_background_label,
        )


class RoiForegroundWithReplacement(_RoiControl):
    """Foreground RoIs drawn with replacement: the same RoI can be taken twice."""

    @positional("sample_rois", as_roi_sample)
    def sample_rois(self, *args):
        rows = self._reference_rows(args)
        foreground = np.flatnonzero(rows[:, 4] != 0)
        if len(foreground) >= 2:
            rows[foreground[1]] = rows[foreground[0]]
        return rows


class RoiBackgroundUpToHigh(_RoiControl):
    """Background up to *and including* ``bg_high`` (``<=`` for ``<``)."""

    @positional("sample_rois", as_roi_sample)
    def sample_rois(self, *args):
        return self._reference_rows(args, bg_high=min(args[7] + 1e-9, args[6]))


class RoiRoundedBudget(_RoiControl):
    """The foreground budget rounded (py-faster-rcnn's ``np.round``) instead of floored."""

    @positional("sample_rois", as_roi_sample)
    def sample_rois(self, *args):
        budget = int(np.round(args[4] * args[5]))
        fraction = min(1.0, (budget + 0.5) / args[4]) if args[4] else args[5]
        return self._reference_rows(args, positive_fraction=fraction)


class RoiGtNotAdded(_RoiControl):
    """Declares the GT boxes added to the candidates but leaves them out."""

    @positional("sample_rois", as_roi_sample)
    def sample_rois(self, *args):
        return self._reference_rows(args, gt_candidates="not-added")


class RoiNothingWithoutGt(_RoiControl):
    """Returns no RoI at all for an image without GT boxes (skips background-only images)."""

    @positional("sample_rois", as_roi_sample)
    def sample_rois(self, *args):
        rows = self._reference_rows(args)
        return rows if len(args[1]) else rows[:0]


class RoiUnseeded(_RoiControl):
    """Draws from an unseeded generator: the seed does not reproduce the sample."""

    @positional("sample_rois", as_roi_sample)
    def sample_rois(self, *args):
        return self._reference_rows(args, seed=int(np.random.default_rng().integers(2**32)))


class RoiIgnoresSeed(_RoiControl):
    """Always the same sample, whatever the seed."""

    @positional("sample_rois", as_roi_sample)
    def sample_rois(self, *args):
        return self._reference_rows(args, seed=0)


class RoiIgnoresBackgroundLow(_RoiControl):
    """Accepts ``bg_low`` but samples backgrounds from [0, bg_high) anyway."""

    @positional("sample_rois", as_roi_sample)
    def sample_rois(self, *args):
        return self._reference_rows(args, bg_low=0.0)


class RoiTargetsUnweighted(_RoiControl):
    """Regression targets without the (10, 10, 5, 5) weights."""

    @positional("sample_rois", as_roi_sample)
    def sample_rois(self, *args):
        return self._reference_rows(args, weights=(1.0, 1.0, 1.0, 1.0))


class RoiTargetsDividedByWeights(_RoiControl):
    """Weights applied as standard deviations the wrong way round: divided, not multiplied."""

    @positional("sample_rois", as_roi_sample)
    def sample_rois(self, *args):
        rows = self._reference_rows(args, weights=(1.0, 1.0, 1.0, 1.0))
        foreground = rows[:, 5] >= 0
        rows[foreground, 6:] /= np.asarray(args[9], dtype=float)
        return rows


class RoiBackgroundTargetsAgainstAZeroBox(_RoiControl):
    """Background RoIs encoded against a zero box (as if matched to a missing GT): -inf sizes."""

    @positional("sample_rois", as_roi_sample)
    def sample_rois(self, *args):
        rows = self._reference_rows(args)
        background = rows[:, 5] < 0
        with np.errstate(divide="ignore", invalid="ignore"):
            widths = np.maximum(rows[background, 2] - rows[background, 0], 0)
            rows[background, 8] = np.log(0.0 / np.where(widths > 0, widths, 1.0))
        return rows


class HeadLossNormalisedByForeground(Control):
    """Box loss divided by the number of foreground RoIs instead of all sampled RoIs."""

    def fast_rcnn_loss(self, class_logits, box_regression, labels, targets):
        loss = super().fast_rcnn_loss(class_logits, box_regression, labels, targets)
        foreground = int(np.sum(np.asarray(labels) != 0))
        return LossTerms(
            loss.classification, loss.regression * (len(labels) / foreground if foreground else 1.0)
        )


class HeadGradientRegressesBackground(Control):
    """Background RoIs regressed too (towards their targets, in the background class's columns)."""

    def fast_rcnn_loss_gradient(self, class_logits, box_regression, labels, targets):
        gradient = super().fast_rcnn_loss_gradient(class_logits, box_regression, labels, targets)
        count = len(labels)
        background = np.flatnonzero(np.asarray(labels) == 0)
        diff = np.asarray(box_regression)[background, :4] - np.asarray(targets)[background]
        gradient.box_regression[background, :4] = np.clip(diff * 9, -1, 1) / count
        return gradient


class HeadLossNaNWithoutRoi(Control):
    """0 / 0 for an empty RoI batch."""

    def fast_rcnn_loss(self, class_logits, box_regression, labels, targets):
        if len(labels) == 0:
            return LossTerms(np.nan, np.nan)
        return super().fast_rcnn_loss(class_logits, box_regression, labels, targets)


class AlignWithFirstRoiSize(Control):
    """Every RoI pooled with the first RoI's width and height (a batching bug)."""

    def roi_align(self, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        rois = np.asarray(rois, dtype=float).copy()
        if len(rois):
            rois[:, 2:] = rois[:, :2] + (rois[0, 2:] - rois[0, :2])
        return super().roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)


class AlignSamplesBinCorners(Control):
    """Samples at the corners of the sub-bins (``g / n``) instead of their centres."""

    def roi_align(self, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        rois = np.asarray(rois, dtype=float).copy()
        for first, size in ((0, output_size[1]), (1, output_size[0])):
            length = rois[:, first + 2] - rois[:, first]
            count = sampling_ratio or np.maximum(np.ceil(length * spatial_scale / size), 1)
            rois[:, [first, first + 2]] -= (length / size / count / 2)[:, None]
        return super().roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)


class AlignIgnoresAligned(Control):
    """``aligned`` accepted and ignored."""

    def roi_align(self, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        return super().roi_align(features, rois, output_size, spatial_scale, sampling_ratio, False)


class AlignClipsRoisToTheMap(Control):
    """RoIs clipped to the feature map first: a RoI wholly outside pools the border cells."""

    def roi_align(self, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        _, height, width = np.shape(features)
        limit = np.array([width, height, width, height]) / spatial_scale
        rois = np.clip(np.asarray(rois, dtype=float), 0, limit)
        return super().roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)


def kernel_roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned, clamp_low=True):
    """torchvision's CPU RoIAlign (``roi_align_kernel.cpp``, ``bilinear_interpolate``) transcribed
    sample by sample with NumPy; ``clamp_low=False`` leaves out its ``if (y <= 0) y = 0;`` (and
    ``x``), so that a sample in ``[-1, 0)`` gets ``y_low = (int) y = 0`` and a negative weight."""
    features = np.asarray(features, dtype=float)
    _, height, width = features.shape
    ph, pw = int(output_size[0]), int(output_size[1])
    output = np.zeros((len(rois), features.shape[0], ph, pw))
    for r, roi in enumerate(np.asarray(rois, dtype=float).reshape(-1, 4)):
        ys, xs = ref_pool.align_sample_points(
            roi, (ph, pw), spatial_scale, int(sampling_ratio), bool(aligned)
        )
        if ys.shape[1] == 0 or xs.shape[1] == 0:
            continue  # no sample: the bins are 0
        y = np.broadcast_to(ys[:, None, :, None], (ph, pw, ys.shape[1], xs.shape[1]))
        x = np.broadcast_to(xs[None, :, None, :], y.shape)
        inside = (y >= -1.0) & (y <= height) & (x >= -1.0) & (x <= width)
        weights, cells = [], []
        for along, size in ((y, height), (x, width)):
            if clamp_low:
                along = np.maximum(along, 0.0)
            low = np.trunc(along)
            end = low >= size - 1
            low = np.where(end, size - 1, low)
            high = np.where(end, size - 1, low + 1)
            fraction = np.where(end, 0.0, along - low)
            # (int) -1.0 is -1: read as cell 0, the only cell a clamped kernel would read there
            cells.append([np.clip(low, 0, size - 1).astype(int), np.clip(high, 0, size - 1).astype(int)])
            weights.append([1.0 - fraction, fraction])
        value = sum(
            weights[0][i] * weights[1][j] * features[:, cells[0][i], cells[1][j]]
            for i in (0, 1)
            for j in (0, 1)
        )
        output[r] = np.where(inside, value, 0.0).mean(axis=(-2, -1))
    return output


class AlignExtrapolatesBelowZero(Control):
    """torchvision's kernel without ``if (y <= 0) y = 0`` (and ``x``): a sample in ``[-1, 0)``,
    which must read the border cell, extrapolates from cells 0 and 1 instead -- the same on affine
    and constant maps, wrong on any other."""

    def roi_align(self, features, rois, output_size, spatial_scale, sampling_ratio, aligned):
        return kernel_roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned, False)


class PoolFloorsCorners(Control):
    """Corners quantised with ``floor`` instead of ``round``."""

    def roi_pool(self, features, rois, output_size, spatial_scale):
        floored = np.floor(np.asarray(rois, dtype=float) * spatial_scale) / spatial_scale
        return super().roi_pool(features, floored, output_size, spatial_scale)


class PoolWithoutQuantisation(Control):
    """Max over bilinear samples (RoIAlign's grid) instead of quantised cells."""

    def roi_pool(self, features, rois, output_size, spatial_scale):
        return ref_pool.roi_align(features, rois, output_size, spatial_scale, 2, False)


class FpnLevelOneTooCoarse(Control):
    """Canonical level 5 instead of 4 (every RoI one level too coarse, where not clamped)."""

    def multiscale_roi_align(self, features, rois, output_size, sampling_ratio, image_size):
        rois = np.asarray(rois, dtype=float)
        levels = [ref_pool.level_of_feature_map(np.shape(f)[1], image_size[0]) for f in features]
        assigned = ref_pool.fpn_levels(
            np.concatenate([rois[:, :2], rois[:, :2] + 2 * (rois[:, 2:] - rois[:, :2])], 1),
            levels[0],
            levels[-1],
        )
        output = np.zeros((len(rois), np.shape(features[0])[0], *(int(v) for v in output_size)))
        for index, level in enumerate(levels):
            chosen = np.flatnonzero(assigned == level)
            if chosen.size:
                output[chosen] = ref_pool.roi_align(
                    features[index], rois[chosen], output_size, 2.0**-level, int(sampling_ratio)
                )
        return output


class MultiscaleIgnoresSamplingRatio(Control):
    """Pools every level with ``sampling_ratio = 2`` (torchvision's default) whatever it is given:
    the same on constant maps, so only a value comparison shows it."""

    def multiscale_roi_align(self, features, rois, output_size, sampling_ratio, image_size):
        return super().multiscale_roi_align(features, rois, output_size, 2, image_size)


class MultiscaleHalfPixelDeclaredCorner(Control):
    """Pools every level with ``aligned=True`` (mmdetection's and detectron2's FPN pooler) while
    declaring torchvision's ``multiscale_alignment = corner``."""

    def multiscale_roi_align(self, features, rois, output_size, sampling_ratio, image_size):
        return ref_pool.multiscale_roi_align(
            features, rois, output_size, int(sampling_ratio), image_size, aligned=True
        )


#: property name -> the broken implementation it must catch.
