"""Assertion helpers with uniform, actionable failure messages and stable failure codes.

A failing check raises :class:`PropertyFailure` carrying a **code** — short, stable, one per kind
of violation (``iou.value``, ``nms.suppressed-without-cause``); expectations and tooling key on it,
never on the message — and a human message with what was expected, what came back and where the
first mismatch is. The runner puts these into the report next to the minimal input.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

#: Tolerance on dimensionless results (IoU, relative error of coordinates and deltas), by the
#: precision an implementation declares. See spec/INTERPRETING.md, "Tolerances".
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}

#: ``area.violation`` or deeper: lower-case words and hyphens between dots.
CODE_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*(?:\.[a-z0-9]+(?:-[a-z0-9]+)*)+$")


class PropertyFailure(AssertionError):
    """A property does not hold. ``code`` names the kind of violation; ``expected``/``actual``
    are short, JSON-friendly values."""

    def __init__(self, code: str, message: str, expected: Any = None, actual: Any = None) -> None:
        if not CODE_PATTERN.match(code):
            raise ValueError(f"malformed failure code {code!r}: expected dotted lower-case words")
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
        self.expected = expected
        self.actual = actual


def tolerance(dtype: str) -> float:
    return TOLERANCE[dtype]


def short(value: Any) -> Any:
    """A JSON-friendly rendering of a value for a failure report."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def fail(code: str, message: str, expected: Any = None, actual: Any = None) -> None:
    raise PropertyFailure(code, message, short(expected), short(actual))


def check_shape(actual: np.ndarray, shape: tuple[int, ...], what: str, code: str) -> None:
    if actual.shape != tuple(shape):
        fail(code, f"{what}: shape {actual.shape}, expected {tuple(shape)}", list(shape), list(actual.shape))


def check_close(actual, expected, tol, what: str, code: str) -> None:
    """``|actual - expected| <= tol`` elementwise (``tol`` a scalar or an array); exact if 0.
    A shape mismatch fails with ``<code>``'s area and ``.shape``."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    check_shape(actual, expected.shape, what, f"{code.split('.')[0]}.shape")
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(actual - expected) <= tol) & ~(actual == expected)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        allowed = np.broadcast_to(np.asarray(tol, dtype=np.float64), expected.shape)[index]
        got, want = float(actual[index]), float(expected[index])
        fail(
            code,
            f"{what}: first mismatch at index {list(index)}: got {got!r}, expected {want!r} "
            f"(tolerance {allowed:.3g})",
            want,
            got,
        )


def check_equal(actual, expected, what: str, code: str) -> None:
    """Exact equality of two arrays (indices, clipped coordinates)."""
    check_close(actual, expected, 0.0, what, code)


def check_same_indices(actual: np.ndarray, expected: np.ndarray, what: str, code: str) -> None:
    """The same index sequence (kept boxes), reported as lists."""
    if actual.shape != expected.shape or np.any(actual != expected):
        fail(code, f"{what}: got {actual.tolist()}, expected {expected.tolist()}", expected, actual)


def check_indices(actual: np.ndarray, count: int, what: str, area: str) -> None:
    """A 1-D array of distinct indices into ``count`` items (codes ``<area>.index-range`` and
    ``<area>.index-repeated``)."""
    if actual.ndim != 1:
        fail(f"{area}.shape", f"{what}: expected a 1-D index array, got shape {actual.shape}")
    if actual.size and (actual.min() < 0 or actual.max() >= count):
        fail(
            f"{area}.index-range",
            f"{what}: index out of range [0, {count})",
            f"indices in [0, {count})",
            actual,
        )
    values, counts = np.unique(actual, return_counts=True)
    if np.any(counts > 1):
        fail(
            f"{area}.index-repeated",
            f"{what}: index {int(values[counts > 1][0])} returned twice",
            "distinct",
            actual,
        )


def relative_scale(*arrays: np.ndarray) -> np.ndarray:
    """Per-row magnitude ``1 + max |value|`` used to turn a relative tolerance into an absolute one."""
    stacked = np.concatenate([np.abs(np.asarray(a, dtype=np.float64)) for a in arrays], axis=1)
    return 1.0 + (stacked.max(axis=1, keepdims=True) if stacked.size else 0.0)
