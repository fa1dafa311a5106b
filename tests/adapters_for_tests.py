"""Adapters used by the harness tests: misbehaving ones, and factories for ``--detspec-impl`` errors.

Each misbehaving adapter is the reference with one operation broken in one way; the fault-isolation
tests run them in a worker process, the way a third-party adapter runs.
"""

from __future__ import annotations

import itertools
import os
import time

import numpy as np
from detspec.conformance.adapters.reference_adapter import ReferenceAdapter
from detspec.properties.interface import Conventions


class Misbehaving(ReferenceAdapter):
    """The reference under a name of its own (never a built-in's)."""

    def __init__(self) -> None:
        super().__init__(name=type(self).__name__.lower())


class Hangs(Misbehaving):
    def box_iou(self, boxes1, boxes2):
        time.sleep(3600)


class HoldsTheGil(Misbehaving):
    """A C-level loop that never releases the GIL: no thread can interrupt it."""

    def box_iou(self, boxes1, boxes2):
        return sum(itertools.repeat(0, 10**15))


class BusyLoops(Misbehaving):
    """A pure-Python busy loop (releases the GIL only between bytecodes)."""

    def box_iou(self, boxes1, boxes2):
        while True:
            pass


class Exits(Misbehaving):
    """``os._exit(1)``: what a crashing C extension looks like from outside."""

    def box_iou(self, boxes1, boxes2):
        os._exit(1)


class Aborts(Misbehaving):
    def box_iou(self, boxes1, boxes2):
        os.abort()


class Raises(Misbehaving):
    def box_iou(self, boxes1, boxes2):
        raise RuntimeError("kernel exploded")


class ReturnsNaN(Misbehaving):
    def box_iou(self, boxes1, boxes2):
        return np.full((len(boxes1), len(boxes2)), np.nan)


class WrongShape(Misbehaving):
    def box_iou(self, boxes1, boxes2):
        return np.zeros(len(boxes1))


class ReturnsNone(Misbehaving):
    def box_iou(self, boxes1, boxes2):
        return None


class ReturnsIntegers(Misbehaving):
    def box_area(self, boxes):
        return np.zeros(len(boxes), dtype=np.int64)


class ReturnsHalfPrecision(Misbehaving):
    def box_area(self, boxes):
        return super().box_area(boxes).astype(np.float16)


class FloatIndices(Misbehaving):
    def nms(self, boxes, scores, iou_threshold):
        return np.zeros(len(boxes), dtype=np.float64)


class MutatesInputs(Misbehaving):
    def box_iou(self, boxes1, boxes2):
        result = super().box_iou(boxes1, boxes2)
        boxes1[:] = -1.0
        return result


class MutatesListArguments(Misbehaving):
    """Computes correct anchors, then writes into every list argument it was given."""

    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        result = super().grid_anchors(feature_sizes, strides, sizes, ratios)
        for argument in (feature_sizes, strides, sizes, ratios):
            for level in argument:
                level[0] = 999
            argument.append([7, 7])
        return result


class Chatty(Misbehaving):
    """Prints a megabyte on every call, then gets the area wrong."""

    def box_area(self, boxes):
        print("x" * 1_000_000)
        return super().box_area(boxes) + 1.0


class OnlyArea:
    """Provides a single operation: everything else is "not provided"."""

    name = "only-area"
    version = "1"
    conventions = Conventions()

    def box_area(self, boxes):
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


class NamedLike:
    """An adapter whose name is set by its factory (path separators, a built-in's name)."""

    version = "1"
    conventions = Conventions()

    def __init__(self, name: str) -> None:
        self.name = name

    def box_area(self, boxes):
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def only_area() -> OnlyArea:
    return OnlyArea()


def factory_that_raises():
    raise RuntimeError("no GPU here")


def factory_unavailable():
    """What an adapter for a device this machine lacks does: not a broken adapter."""
    from detspec import ImplementationUnavailable

    raise ImplementationUnavailable("no such device here")


def returns_nothing_useful():
    return object()


def named_with_a_slash() -> NamedLike:
    return NamedLike("vendor/lib")


def named_with_dots() -> NamedLike:
    return NamedLike("../../x")


def named_torchvision() -> NamedLike:
    return NamedLike("torchvision")


def broken_torchvision():
    """torchvision with two box ops swapped for broken variants: nms returns its kept indices in
    index order, box_iou computes with legacy ``+1`` widths."""
    import torchvision
    from detspec.conformance.adapters.torchvision_adapter import TorchvisionAdapter

    original_nms = torchvision.ops.nms

    def nms_in_index_order(boxes, scores, iou_threshold):
        return original_nms(boxes, scores, iou_threshold).sort().values

    def iou_plus_one(boxes1, boxes2):
        grow = boxes1.new_tensor([0.0, 0.0, 1.0, 1.0])
        return torchvision.ops.boxes.box_iou(boxes1 + grow, boxes2 + grow)

    torchvision.ops.nms = nms_in_index_order
    torchvision.ops.box_iou = iou_plus_one
    adapter = TorchvisionAdapter()
    adapter.name = "broken-torchvision"
    return adapter


class AnchorsRaise(Misbehaving):
    def grid_anchors(self, feature_sizes, strides, sizes, ratios):
        raise RuntimeError("anchor kernel missing")


def anchors_raise() -> AnchorsRaise:
    return AnchorsRaise()


def _factory(cls):
    def make():
        return cls()

    make.__name__ = cls.__name__.lower()
    return make


hangs, holds_the_gil, busy_loops, exits, aborts = map(
    _factory, (Hangs, HoldsTheGil, BusyLoops, Exits, Aborts)
)
mutates_list_arguments, chatty = _factory(MutatesListArguments), _factory(Chatty)
returns_nan = _factory(ReturnsNaN)
