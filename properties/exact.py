"""IoU decisions made exactly where they matter.

A float64 IoU (error ~1e-15 on our dyadic inputs) settles every comparison farther than
``MARGIN`` from its bound; the few closer than that are settled in exact rational arithmetic on
the exact inputs, so float noise never decides a verdict.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from detspec.reference.boxes import pairwise_iou

MARGIN = 1e-9


def exact_iou(first: np.ndarray, second: np.ndarray, width_offset: int) -> Fraction:
    """IoU of two boxes in exact rational arithmetic (0 for an empty union)."""
    a = [Fraction(float(v)) for v in first]
    b = [Fraction(float(v)) for v in second]
    iw = max(Fraction(0), min(a[2], b[2]) - max(a[0], b[0]) + width_offset)
    ih = max(Fraction(0), min(a[3], b[3]) - max(a[1], b[1]) + width_offset)
    inter = iw * ih
    area_a = (a[2] - a[0] + width_offset) * (a[3] - a[1] + width_offset)
    area_b = (b[2] - b[0] + width_offset) * (b[3] - b[1] + width_offset)
    union = area_a + area_b - inter
    return inter / union if union else Fraction(0)


class PairwiseIoU:
    """IoU of every box of ``first`` with every box of ``second``: ``approx`` (float64) and, on
    demand, ``exact`` values and exact comparisons."""

    def __init__(self, first: np.ndarray, second: np.ndarray, width_offset: int):
        self.first, self.second, self.width_offset = first, second, width_offset
        self.approx = pairwise_iou(first, second, width_offset)

    def exact(self, i: int, j: int) -> Fraction:
        return exact_iou(self.first[i], self.second[j], self.width_offset)

    def compare(self, i: int, j: int, bound) -> int:
        """Sign of IoU(i, j) - bound, exactly."""
        value = self.approx[i, j]
        if abs(value - float(bound)) > MARGIN:
            return 1 if value > bound else -1
        difference = self.exact(i, j) - Fraction(bound)
        return (difference > 0) - (difference < 0)


class ThresholdOverlaps(PairwiseIoU):
    """The pairwise IoU of one box set, classified against a threshold ``t`` with a tolerance
    band: a pair within the band of ``t`` (but not exactly on it) may fall on either side.
    ``inclusive`` (convention ``nms_bound``): a pair exactly at ``t`` suppresses; otherwise it
    must not."""

    def __init__(
        self, boxes: np.ndarray, threshold: float, width_offset: int, band: float, inclusive: bool = False
    ):
        super().__init__(boxes, boxes, width_offset)
        self.threshold, self.band, self.inclusive = threshold, band, inclusive

    def clearly_above(self, i: int, j: int) -> bool:
        """The pair surely suppresses: it may not be kept together."""
        if self.inclusive and self.compare(i, j, self.threshold) == 0:
            return True
        return self.compare(i, j, self.threshold + self.band) > 0

    def possibly_above(self, i: int, j: int) -> bool:
        """The pair may suppress: a kept box can explain the other's absence."""
        if self.compare(i, j, self.threshold) == 0:
            return self.inclusive  # exactly at the threshold: suppresses only if inclusive
        return self.compare(i, j, self.threshold - self.band) > 0
