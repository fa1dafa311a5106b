"""Precondition checks shared by the reference operations.

Every public reference function checks its inputs up front and raises a ``ValueError`` that names
the argument and the problem (shape, NaN/inf, x2 < x1, ...), so that bad input never surfaces as a
crash deep inside NumPy. Clause: ``boxes.input.rejects-invalid``.
"""

from __future__ import annotations

import numbers

import numpy as np

BOX_CONVENTIONS = ("continuous", "legacy")


def check_convention(convention: str) -> float:
    """Return the width offset of a box convention: 0 (``x2 - x1``) or 1 (``x2 - x1 + 1``)."""
    if convention not in BOX_CONVENTIONS:
        raise ValueError(f"unknown box convention {convention!r}; expected one of {BOX_CONVENTIONS}")
    return 1.0 if convention == "legacy" else 0.0


def check_finite_array(values, name: str, ndim: int, last_dim: int | None = None) -> np.ndarray:
    """Convert to a float64 array of the given rank (and last dimension) with finite entries."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: not a numeric array ({error})") from None
    if ndim == 2 and array.shape == (0,) and last_dim is not None:
        array = array.reshape(0, last_dim)  # `[]` is the natural spelling of "no boxes"
    expected = "(N,)" if ndim == 1 else f"(N, {last_dim})"
    if array.ndim != ndim or (last_dim is not None and array.shape[-1] != last_dim):
        raise ValueError(f"{name}: expected shape {expected}, got {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(array[index]) else "inf"
        raise ValueError(f"{name}: {kind} at index {index}")
    return array


def check_boxes(boxes, name: str = "boxes") -> np.ndarray:
    """Return ``boxes`` as a finite float64 ``(N, 4)`` array in (x1, y1, x2, y2) order.

    Rejects a wrong shape, NaN/inf, and boxes with ``x2 < x1`` or ``y2 < y1`` (zero width or
    height is allowed: it is a degenerate box, not an invalid one).
    """
    array = check_finite_array(boxes, name, ndim=2, last_dim=4)
    for axis, (low, high) in (("x", (0, 2)), ("y", (1, 3))):
        inverted = array[:, high] < array[:, low]
        if inverted.any():
            row = int(np.flatnonzero(inverted)[0])
            raise ValueError(
                f"{name}: {axis}2 < {axis}1 at row {row} "
                f"({axis}1={float(array[row, low])!r}, {axis}2={float(array[row, high])!r})"
            )
    return array


def check_vector(values, name: str, length: int) -> np.ndarray:
    """Return a finite float64 vector of the given length (scores, per-box values)."""
    array = check_finite_array(values, name, ndim=1)
    if array.shape[0] != length:
        raise ValueError(f"{name}: expected {length} entries (one per box), got {array.shape[0]}")
    return array


def check_labels(values, name: str, length: int) -> np.ndarray:
    """Return an int64 vector of the given length (class indices)."""
    array = np.asarray(values)
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(f"{name}: expected shape ({length},), got {array.shape}")
    not_integer = array.size and not np.issubdtype(array.dtype, np.integer)
    if not_integer and (not np.all(np.isfinite(array)) or np.any(array != np.round(array))):
        raise ValueError(f"{name}: expected integer class indices")
    return array.astype(np.int64)


def check_unit_interval(value, name: str) -> float:
    """Return a threshold in [0, 1] as a float."""
    if not isinstance(value, numbers.Real) or not np.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a real number in [0, 1], got {value!r}")
    return float(value)


def check_nonnegative(value, name: str) -> float:
    """Return a finite, non-negative real number as a float."""
    if not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return float(value)


def check_image_size(image_size, name: str = "image_size") -> tuple[float, float]:
    """Return ``(height, width)``, both finite and positive."""
    try:
        height, width = image_size
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected (height, width), got {image_size!r}") from None
    for label, value in (("height", height), ("width", width)):
        if not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name}: {label} must be a finite number > 0, got {value!r}")
    return float(height), float(width)


def check_weights(weights, name: str = "weights") -> np.ndarray:
    """Return the four box-coder weights (wx, wy, ww, wh), all finite and > 0."""
    array = check_finite_array(weights, name, ndim=1)
    if array.shape != (4,) or np.any(array <= 0):
        raise ValueError(f"{name}: expected four positive weights (wx, wy, ww, wh), got {weights!r}")
    return array
