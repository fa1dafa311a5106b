"""Strategies for boxes, scores, thresholds and image sizes.

Boxes are built, not filtered: integer corners on a grid, then scaled by a power of two, so that
every coordinate, width, centre and small product is exact in float32 and float64 and "exactly at
a threshold" means what it says. The per-box *kind* steers towards the corners where
implementations differ: identical, nested, touching, near-duplicate, degenerate and huge boxes;
the grid scale reaches tiny (``2**-10``) and huge (``2**8`` times the grid) boxes.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import strategies as st

#: Grid exponents: the coordinates of one array are integers times ``2**k``.
SCALE_EXPONENTS = st.integers(min_value=-10, max_value=8)

_FIRST_KINDS = ("free", "degenerate", "huge")
_KINDS = ("free", "copy", "nested", "touching", "shifted", "free", "degenerate", "huge")


def _free(draw, max_side: int = 256) -> list[int]:
    x1 = draw(st.integers(-64, 512))
    y1 = draw(st.integers(-64, 512))
    return [x1, y1, x1 + draw(st.integers(1, max_side)), y1 + draw(st.integers(1, max_side))]


def _build_box(draw, kind: str, rows: list[list[int]]) -> list[int]:
    """One integer box of the given kind, related to an earlier box where the kind says so."""
    if kind == "free":
        return _free(draw)
    if kind == "degenerate":
        x1, y1, x2, y2 = _free(draw)
        flat = draw(st.sampled_from(("width", "height", "both")))
        return [x1, y1, x1 if flat != "height" else x2, y1 if flat != "width" else y2]
    if kind == "huge":
        x1, y1 = draw(st.integers(-(2**17), 0)), draw(st.integers(-(2**17), 0))
        return [x1, y1, x1 + draw(st.integers(2**17, 2**18)), y1 + draw(st.integers(2**17, 2**18))]
    partner = rows[draw(st.integers(0, len(rows) - 1))]
    x1, y1, x2, y2 = partner
    if kind == "copy":
        return list(partner)
    if kind == "nested":
        nx1 = draw(st.integers(x1, x2))
        ny1 = draw(st.integers(y1, y2))
        return [nx1, ny1, draw(st.integers(nx1, x2)), draw(st.integers(ny1, y2))]
    if kind == "touching":  # shares the partner's right edge
        ny1 = draw(st.integers(y1 - 8, y2))
        return [x2, ny1, x2 + draw(st.integers(0, 64)), ny1 + draw(st.integers(0, 64))]
    if kind == "shifted":  # a near-duplicate: IoU close to 1, and to every threshold in between
        dx, dy = draw(st.integers(-4, 4)), draw(st.integers(-4, 4))
        return [x1 + dx, y1 + dy, x2 + dx, y2 + dy]
    raise ValueError(f"unknown box kind {kind}")


@st.composite
def integer_boxes(draw, min_boxes: int = 0, max_boxes: int = 8, degenerate: bool = True, huge: bool = True):
    """A list of integer ``[x1, y1, x2, y2]`` boxes, corner-biased (see module docstring).
    Without ``huge`` boxes every area stays below 2**18: exact in float32."""
    count = draw(st.integers(min_boxes, max_boxes))
    excluded = {"degenerate"} if not degenerate else set()
    excluded |= {"huge"} if not huge else set()
    rows: list[list[int]] = []
    for _ in range(count):
        kinds = _KINDS if rows else _FIRST_KINDS
        kind = draw(st.sampled_from([k for k in kinds if k not in excluded]))
        row = _build_box(draw, kind, rows)
        if not degenerate and (row[2] == row[0] or row[3] == row[1]):
            row = [row[0], row[1], row[2] + (row[2] == row[0]), row[3] + (row[3] == row[1])]
        rows.append(row)
    return rows


def to_array(rows: list[list[int]], exponent: int) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4) * 2.0**exponent


@st.composite
def box_arrays(
    draw, min_boxes: int = 0, max_boxes: int = 8, degenerate: bool = True, exponent: int | None = None
):
    """``(N, 4)`` float64 boxes on the grid ``2**exponent`` (drawn when not given)."""
    if exponent is None:
        exponent = draw(SCALE_EXPONENTS)
    return to_array(draw(integer_boxes(min_boxes, max_boxes, degenerate)), exponent)


@st.composite
def degenerate_box_arrays(draw, min_boxes: int = 1, max_boxes: int = 6):
    """Zero-area boxes only (points and segments), some of them coinciding."""
    rows = draw(integer_boxes(min_boxes, max_boxes, degenerate=True))
    flat = [[x1, y1, x1, y2] if i % 2 else [x1, y1, x2, y1] for i, (x1, y1, x2, y2) in enumerate(rows)]
    return to_array(flat, draw(SCALE_EXPONENTS))


@st.composite
def score_vectors(draw, count: int):
    """Scores exact in float32: either distinct, or from a handful of values (many ties)."""
    if draw(st.booleans()):
        values = draw(st.lists(st.integers(0, 3), min_size=count, max_size=count))
    else:
        values = draw(st.permutations(range(count)))
    return np.asarray(values, dtype=np.float64) / 4.0


#: NMS/IoU thresholds: the paper's and the libraries' values, the endpoints, dyadic values (exact)
#: and arbitrary reals in [0, 1].
IOU_THRESHOLDS = st.one_of(
    st.sampled_from([0.7, 0.5, 0.3, 0.0, 1.0]),
    st.integers(0, 64).map(lambda k: k / 64),
    st.floats(0.0, 1.0),
)

#: Image sizes ``(height, width)``: integers, often non-square, down to a single pixel.
IMAGE_SIZES = st.tuples(st.integers(1, 1200), st.integers(1, 1200)).map(
    lambda hw: (float(hw[0]), float(hw[1]))
)

#: Box-coder weights: the RPN's, the detection head's, and other positive dyadic values.
CODER_WEIGHTS = st.one_of(
    st.sampled_from([(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]),
    st.tuples(*[st.integers(-3, 4).map(lambda k: 2.0**k)] * 4),
)

DEFAULT_CLAMP = math.log(1000.0 / 16.0)
#: Decode clamps: the default ``log(1000/16)`` and dyadic values (exact in float32).
DECODE_CLAMPS = st.one_of(st.just(DEFAULT_CLAMP), st.integers(1, 128).map(lambda k: k / 16))


@st.composite
def pair_at_iou(draw, width_offset: int, scaled: bool = True):
    """Two boxes whose IoU is *exactly* ``t = p / 2**m``, and ``t`` itself.

    Two ``a``-wide boxes of equal height, shifted by ``s`` along one axis, have
    ``IoU = (a - s) / (a + s)``; ``a = (2**m + p) u`` and ``s = (2**m - p) u`` make it ``p / 2**m``.
    ``p = 0`` gives touching boxes, ``p = 2**m`` identical ones. Widths are in the declared
    convention (``width_offset`` 1 for legacy).
    """
    m = draw(st.integers(0, 6))
    q = 2**m
    p = draw(st.integers(0, q))
    unit = draw(st.integers(1, 4))
    side, shift = (q + p) * unit, (q - p) * unit
    height = draw(st.integers(1, 64))
    x0, y0 = draw(st.integers(-64, 256)), draw(st.integers(-64, 256))
    first = [x0, y0, x0 + side - width_offset, y0 + height - width_offset]
    second = [x0 + shift, y0, x0 + shift + side - width_offset, y0 + height - width_offset]
    rows = [first, second]
    if draw(st.booleans()):  # along y instead of x
        rows = [[r[1], r[0], r[3], r[2]] for r in rows]
    if draw(st.booleans()):
        rows.reverse()
    exponent = draw(st.integers(-4, 4)) if width_offset == 0 and scaled else 0
    assert Fraction(side - shift, side + shift) == Fraction(p, q)
    return to_array(rows, exponent), p / q
