"""Properties of receptive fields (``spec/anchors.md``, receptive-field clauses).

The oracle is the recurrence of ``reference/receptive_field.py``; the implementation measures
which input pixels an output cell depends on (torch: the support of a gradient).
"""

from __future__ import annotations

from detspec.properties.checks import check_equal, fail
from detspec.properties.registry import Example, Plain, Text, family, prop
from detspec.properties.strategies.anchors import layer_stacks
from detspec.reference.receptive_field import (
    RPN_CONV,
    VGG16_CONV5_3,
    ZF_CONV5,
    Layer,
    output_length,
    receptive_field,
)
from hypothesis import strategies as st


@family
class LayerStack(Example):
    """Rows [kind, kernel, stride, padding, dilation]."""

    layers: Plain


@family
class PaperNetwork(Example):
    network: Text


@family
class Backbone(Example):
    backbone: Text


def support_rows(support) -> list[list[float]]:
    """A :class:`SupportInterval` as [first, last] rows, one per cell."""
    return [[float(a), float(b)] for a, b in zip(support.first, support.last, strict=True)]


def interior_cells(layers, input_size: int) -> list[int]:
    """Output cells whose whole receptive field lies inside the input (no padding involved)."""
    field = receptive_field(layers)
    cells = range(output_length(layers, input_size))
    return [c for c in cells if field.support(c)[0] >= 0 and field.support(c)[1] <= input_size - 1]


def measurement_size(layers) -> int:
    """An input size that leaves at least two interior output cells."""
    field = receptive_field(layers)
    return int(field.size + 2 * field.jump + 2 * max(0.0, abs(field.start)) + 4)


def _check_measured_support(impl, layers, what: str) -> None:
    size = measurement_size(layers)
    cells = interior_cells(layers, size)[:2]
    field = receptive_field(layers)
    measured = support_rows(impl.receptive_field_support(layers, size, cells))
    expected = [list(field.support(c)) for c in cells]
    check_equal(measured, expected, f"{what}: input pixels seen by output cells {cells}", "rf.support")


@prop(
    "rf.recurrence",
    uses=("receptive_field_support",),
    given=lambda _c: layer_stacks().map(lambda layers: {"layers": layers}),
    example=LayerStack,
    examples=lambda _c: [{"layers": [["conv", 3, 1, 0, 2], ["pool", 2, 2, 0, 1]]}],
)
def measured_support_matches_recurrence(impl, layers):
    """The pixels an interior output cell depends on are exactly the recurrence's receptive field."""
    _check_measured_support(impl, layers, "generated stack")


@prop(
    "rf.context-conv",
    uses=("receptive_field_support",),
    given=lambda _c: layer_stacks().map(lambda layers: {"layers": layers}),
    example=LayerStack,
)
def three_by_three_conv_adds_two_jumps(impl, layers):
    """A 3x3 stride-1 conv on a map of jump j widens the receptive field by exactly 2 j."""
    jump = receptive_field(layers).jump
    extended = [*layers, RPN_CONV.as_list()]
    size = measurement_size(extended)
    cell = interior_cells(extended, size)[0]
    before = support_rows(impl.receptive_field_support(layers, size, [cell]))
    after = support_rows(impl.receptive_field_support(extended, size, [cell]))
    widths = [float(before[0][1] - before[0][0] + 1), float(after[0][1] - after[0][0] + 1)]
    if widths[1] - widths[0] != 2 * jump:
        fail(
            "rf.context-conv",
            f"adding a 3x3 conv widened the receptive field from {widths[0]:g} to {widths[1]:g}, "
            f"not by 2 x jump = {2 * jump}",
            2 * jump,
            widths[1] - widths[0],
        )


PAPER_STACKS = {"zf": ([*ZF_CONV5, RPN_CONV], 171), "vgg16": ([*VGG16_CONV5_3, RPN_CONV], 228)}


@prop(
    "rf.paper-figures",
    uses=("receptive_field_support",),
    given=lambda _c: st.sampled_from(sorted(PAPER_STACKS)).map(lambda n: {"network": n}),
    example=PaperNetwork,
    examples=lambda _c: [{"network": name} for name in sorted(PAPER_STACKS)],
)
def paper_receptive_fields_are_reproduced(impl, network):
    """ZF + RPN conv sees 171 pixels and VGG-16 + RPN conv 228, with an effective stride of 16."""
    stack, size = PAPER_STACKS[network]
    layers = [layer.as_list() for layer in stack]
    input_size = measurement_size(layers)
    cells = interior_cells(layers, input_size)[:2]
    measured = support_rows(impl.receptive_field_support(layers, input_size, cells))
    widths = [float(hi - lo + 1) for lo, hi in measured]
    jump = float(measured[1][0] - measured[0][0])
    if widths != [size, size] or jump != 16:
        fail(
            "rf.paper-figures",
            f"{network}: measured receptive field {widths} with jump {jump}; the paper gives {size} with 16",
            [size, 16],
            [widths[0], jump],
        )


@prop(
    "rf.backbones",
    uses=("backbone_layers", "backbone_receptive_field_support"),
    given=lambda _c: st.sampled_from(["vgg16", "resnet50"]).map(lambda n: {"backbone": n}),
    example=Backbone,
    examples=lambda _c: [{"backbone": "resnet50"}, {"backbone": "vgg16"}],
)
def backbone_receptive_field_matches_its_layers(impl, backbone):
    """The gradient support of an interior cell of a real backbone is the recurrence's field for
    its layers; VGG-16's layers are the paper's (196 px to conv5_3, jump 16)."""
    layers = impl.backbone_layers(backbone)
    field = receptive_field([Layer(*layer) for layer in layers])
    if backbone == "vgg16" and (field.size, field.jump) != (196, 16):
        fail(
            "rf.vgg16-layers",
            f"vgg16 layers give a receptive field of {field.size} (jump {field.jump}), not 196 (16)",
            [196, 16],
            [field.size, field.jump],
        )
    size = measurement_size(layers)
    cells = interior_cells(layers, size)[:1]
    measured = support_rows(impl.backbone_receptive_field_support(backbone, size, cells))
    check_equal(
        measured,
        [list(field.support(cells[0]))],
        f"{backbone}: input pixels seen by output cell {cells[0]}",
        "rf.backbone-support",
    )
