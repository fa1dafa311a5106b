"""Receptive fields of sequential conv/pool stacks: the executable form of ``spec/anchors.md``
(receptive-field clauses).

For a stack of layers with kernel ``k``, stride ``s``, padding ``p`` and dilation ``d`` (effective
kernel ``k' = d (k - 1) + 1``), the receptive field ``r``, the jump ``j`` (the effective stride,
distance in input pixels between neighbouring output cells) and the ``start`` (input coordinate of
the centre of output cell 0, in pixel-index coordinates: pixel ``i`` is centred on ``i``) follow::

    j_out = j_in * s
    r_out = r_in + (k' - 1) * j_in
    start_out = start_in + ((k' - 1) / 2 - p) * j_in

starting from ``r = 1``, ``j = 1``, ``start = 0`` (Araujo et al., "Computing Receptive Fields of
Convolutional Neural Networks", Distill 2019). Output cell ``c`` sees input pixels
``start + c * j - (r - 1) / 2`` to ``start + c * j + (r - 1) / 2``. Pooling counts by its window:
max-pooling's output depends on the whole window, whichever element wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from detspec.reference.validation import as_integer, check_integer

LAYER_KINDS = ("conv", "pool")


@dataclass(frozen=True)
class Layer:
    kind: str
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"layer kind must be one of {LAYER_KINDS}, got {self.kind!r}")
        for name in ("kernel", "stride", "dilation"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"layer {name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.padding, int) or self.padding < 0:
            raise ValueError(f"layer padding must be an integer >= 0, got {self.padding!r}")

    @property
    def effective_kernel(self) -> int:
        return self.dilation * (self.kernel - 1) + 1

    def as_list(self) -> list:
        return [self.kind, self.kernel, self.stride, self.padding, self.dilation]


@dataclass(frozen=True)
class ReceptiveField:
    size: int  # r: input pixels seen by one output cell, per axis
    jump: int  # j: input pixels between neighbouring output cells (the effective stride)
    start: float  # centre of output cell 0, in input pixel indices

    def support(self, cell: int) -> tuple[float, float]:
        """First and last input pixel index seen by output cell ``cell`` (ignoring the border)."""
        centre = self.start + cell * self.jump
        return centre - (self.size - 1) / 2, centre + (self.size - 1) / 2


def as_layers(stack) -> list[Layer]:
    """Layers from ``Layer`` objects or ``[kind, kernel, stride, padding, dilation]`` lists."""
    return [layer if isinstance(layer, Layer) else Layer(*layer) for layer in stack]


def receptive_field(stack) -> ReceptiveField:
    """The receptive field, jump and start of a sequential stack (clause ``rf.recurrence``)."""
    size, jump, start = 1, 1, 0.0
    for layer in as_layers(stack):
        extent = layer.effective_kernel - 1
        size += extent * jump
        start += (extent / 2 - layer.padding) * jump
        jump *= layer.stride
    return ReceptiveField(size, jump, start)


def output_length(stack, input_length: int) -> int:
    """Output cells along one axis (floor division, as Caffe convolution and PyTorch) of an input
    of ``input_length >= 1`` pixels; a result below 1 means the input is too short for the stack."""
    length = check_integer(input_length, "input_length", minimum=1)
    for layer in as_layers(stack):
        length = (length + 2 * layer.padding - layer.effective_kernel) // layer.stride + 1
    return length


def _conv3(count: int) -> list[Layer]:
    return [Layer("conv", 3, 1, 1)] * count


#: ZF as in py-faster-rcnn ``models/pascal_voc/ZF/faster_rcnn_end2end/*.prototxt``: conv1-conv5
#: (its LRN layers are left out, see ``rf.paper-figures``).
ZF_CONV5 = [
    Layer("conv", 7, 2, 3),
    Layer("pool", 3, 2, 1),
    Layer("conv", 5, 2, 2),
    Layer("pool", 3, 2, 1),
    *_conv3(3),
]
#: VGG-16 conv1_1 ... conv5_3 (Simonyan & Zisserman; torchvision ``vgg16().features[:30]``).
VGG16_CONV5_3 = [
    *_conv3(2),
    Layer("pool", 2, 2),
    *_conv3(2),
    Layer("pool", 2, 2),
    *_conv3(3),
    Layer("pool", 2, 2),
    *_conv3(3),
    Layer("pool", 2, 2),
    *_conv3(3),
]
#: The RPN's 3x3 "intermediate" convolution (Faster R-CNN §3.1).
RPN_CONV = Layer("conv", 3, 1, 1)


def dependency_support(stack, input_size: int, cells) -> list[tuple[int, int]]:
    """First and last input pixel on which each output cell depends, by propagating the exact
    set of dependencies back through the layers (padding excluded) -- a second computation,
    independent of the recurrence, for cells anywhere, border cells included. ``input_size`` is
    an integer >= 1 and every cell an integer index into the output (``3.0`` passes, ``2.5`` does
    not)."""
    layers = as_layers(stack)
    lengths = [check_integer(input_size, "input_size", minimum=1)]
    for layer in layers:
        lengths.append((lengths[-1] + 2 * layer.padding - layer.effective_kernel) // layer.stride + 1)
    try:
        cells = list(cells)
    except TypeError:
        raise ValueError(f"cells: expected a sequence of output cells, got {cells!r}") from None
    supports = []
    for position, cell in enumerate(cells):
        index = as_integer(cell)
        if index is None:
            raise ValueError(f"cells: expected integer output cells, got {cell!r} at position {position}")
        if not 0 <= index < lengths[-1]:
            raise ValueError(f"cells: cell {cell} is outside the output (length {lengths[-1]})")
        indices = np.array([index])
        for layer, length_in in zip(reversed(layers), reversed(lengths[:-1]), strict=True):
            taps = np.arange(layer.kernel) * layer.dilation
            indices = np.unique((indices[:, None] * layer.stride - layer.padding + taps[None]).ravel())
            indices = indices[(indices >= 0) & (indices < length_in)]
        supports.append((int(indices.min()), int(indices.max())))
    return supports
