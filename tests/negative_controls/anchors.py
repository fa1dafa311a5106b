"""Negative controls of anchors and receptive fields (``spec/anchors.md``)."""

from __future__ import annotations

import numpy as np
from detspec.properties.interface import Conventions, SupportInterval
from detspec.reference import anchors as ref_anchors
from detspec.reference import receptive_field as ref_rf

from tests.negative_controls.base import Control


def _anchors(feature_sizes, strides, sizes, ratios, **conventions):
    return ref_anchors.multilevel_anchors(feature_sizes, strides, sizes, ratios, **conventions)


def _support(rows) -> SupportInterval:
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
    return SupportInterval(rows[:, 0], rows[:, 1])


class AnchorsMissingLastCell(Control):
    """Forgets the last cell of every map (an off-by-one in the grid)."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        shrunk = [[h, max(w - 1, 0)] if h * w else [h, w] for h, w in feature_sizes]
        return super().grid_anchors(shrunk, strides, sizes, ratios)


class AnchorsTransposedShift(Control):
    """Shifts cell (x, y) by (y S_x, x S_y): a transposed meshgrid."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        levels = []
        for (h, w), (along_y, along_x), z, r in zip(feature_sizes, strides, sizes, ratios, strict=True):
            base = ref_anchors.cell_anchors(z, r) + np.array([along_x, along_y, along_x, along_y]) / 2
            ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
            shifts = np.stack([ys * along_x, xs * along_y, ys * along_x, xs * along_y], -1)
            levels.append((shifts.reshape(-1, 1, 4) + base[None]).reshape(-1, 4))
        return np.concatenate(levels)


class AnchorsStridesSwapped(Control):
    """Reads each level's stride pair as (along x, along y): the cells step by the y stride along x
    and by the x stride along y (mmdetection writes its strides (w, h), the interface (y, x))."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        swapped = [[along_x, along_y] for along_y, along_x in strides]
        return super().grid_anchors(feature_sizes, swapped, sizes, ratios)


class AnchorsLegacyAwayRoundsHalfToEven(Control):
    """Declares py-faster-rcnn's rounding with halves away from zero (its C++ ports) but rounds
    them to even (its Python): base 32, ratio 0.5 gives 45 x 22 instead of 45 x 23."""

    def __init__(self) -> None:
        super().__init__()
        self.conventions = Conventions(
            box_width="legacy", anchor_offset="legacy", anchor_rounding="legacy-away"
        )

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        return _anchors(
            feature_sizes, strides, sizes, ratios, offset="legacy", rounding="legacy", convention="legacy"
        )


class AnchorsRatioAsWidthOverHeight(Control):
    """Reads the aspect ratio as w/h."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        inverted = [[1.0 / r for r in level] for level in ratios]
        return super().grid_anchors(feature_sizes, strides, sizes, inverted)


class AnchorsCornerOffset(Control):
    """Centres anchors on the cell's corner while declaring the centre offset."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        return _anchors(feature_sizes, strides, sizes, ratios, offset="corner")


class CornerAnchors(Control):
    """Honestly declares the corner offset (torchvision's placement)."""

    def __init__(self) -> None:
        super().__init__()
        self.conventions = Conventions(anchor_offset="corner")


class AnchorsSizeMajor(Control):
    """Size-major order while declaring ratio-major."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        return _anchors(feature_sizes, strides, sizes, ratios, offset="centre", order="size-major")


class AnchorsLevelsReversed(Control):
    """Concatenates the levels last to first."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        levels = [
            super(AnchorsLevelsReversed, self).grid_anchors([f], [s], [z], [r])
            for f, s, z, r in zip(feature_sizes, strides, sizes, ratios, strict=True)
        ]
        return np.concatenate(levels[::-1])


class AnchorsDoubleStride(Control):
    """Places cells two strides apart: the right and bottom of the image get no anchors."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        anchors = super().grid_anchors(feature_sizes, strides, sizes, ratios)
        first = super().grid_anchors([[1, 1] for _ in feature_sizes], strides, sizes, ratios)
        count = len(sizes[0]) * len(ratios[0])
        cell0 = np.tile(first[:count], (len(anchors) // count, 1))
        return cell0 + 2 * (anchors - cell0)


class LegacyMatlabTable(Control):
    """py-faster-rcnn's rounding, but the 1-based MATLAB numbers of its comment block."""

    def __init__(self) -> None:
        super().__init__()
        self.conventions = Conventions(box_width="legacy", anchor_offset="legacy", anchor_rounding="legacy")

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        return super().grid_anchors(feature_sizes, strides, sizes, ratios) + 1.0


class SupportIgnoresDilation(Control):
    """Treats every dilated convolution as undilated."""

    def receptive_field_support(self, layers, input_size, cells):
        undilated = [[kind, k, s, p, 1] for kind, k, s, p, _ in layers]
        return _support(ref_rf.dependency_support(undilated, input_size, cells))


class SupportIgnoresLastLayer(Control):
    """Measures the stack without its last layer."""

    def receptive_field_support(self, layers, input_size, cells):
        return _support(ref_rf.dependency_support(layers[:-1] or layers, input_size, cells))


class PoolKernelEqualsStride(Control):
    """Models every pooling window as stride x stride (true for VGG-16's 2x2, not ZF's 3x3)."""

    def receptive_field_support(self, layers, input_size, cells):
        fixed = [
            [kind, s if kind == "pool" else k, s, 0 if kind == "pool" else p, d]
            for kind, k, s, p, d in layers
        ]
        return _support(ref_rf.dependency_support(fixed, input_size, cells))


class BackboneWithShortcuts(Control):
    """Lists a ResNet's shortcut projections as if they were on the main path. Its support is
    right: the recurrence over torchvision's true main-path layers (what the gradient measures,
    without the seconds a measurement costs); torch is imported only when it is called."""

    def backbone_receptive_field_support(self, name, input_size, cells):
        from detspec.conformance.adapters.torchvision_adapter import TorchvisionAdapter

        return _support(
            ref_rf.dependency_support(TorchvisionAdapter().backbone_layers(name), input_size, cells)
        )

    def backbone_layers(self, name):
        from detspec.conformance.adapters import torchvision_adapter as tv
        from torch import nn

        layers = []
        for _, module in tv._backbone(name).named_modules():
            if isinstance(module, nn.Conv2d):
                layers.append(
                    ["conv", module.kernel_size[0], module.stride[0], module.padding[0], module.dilation[0]]
                )
            elif isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
                layers.append(
                    ["pool", tv._int(module.kernel_size), tv._int(module.stride), tv._int(module.padding), 1]
                )
        return layers
