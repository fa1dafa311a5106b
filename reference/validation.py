"""Precondition checks shared by the reference operations.

Every public reference function checks its inputs up front and raises a ``ValueError`` that names
the argument and the problem (shape, NaN/inf, x2 < x1, a fraction where an integer belongs, ...),
so that bad input never surfaces as a crash deep inside NumPy, nor as a silently truncated or
wrapped value. Clause: ``boxes.input.rejects-invalid``.

The checks are vectorised and cheap: the reference is called thousands of times per test run.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

BOX_CONVENTIONS = ("continuous", "legacy")

#: The largest coordinate magnitude a box may have (``boxes.input.rejects-invalid``). Sides are
#: then at most ``2e150`` (``+ 1`` legacy), an area at most ``4e300`` and the union of two boxes
#: at most ``8e300``: every product and sum the box operations form stays finite in float64
#: (largest value ``1.8e308``) with room to spare, so IoU, area, encode and decode never meet an
#: overflow their inputs did not ask for. Real images are below ``1e5`` pixels, and float32
#: implementations stop at ``3.4e38``; a larger coordinate is a bug upstream, not a box.
COORDINATE_LIMIT = 1e150


def check_convention(convention: str) -> float:
    """Return the width offset of a box convention: 0 (``x2 - x1``) or 1 (``x2 - x1 + 1``)."""
    if convention not in BOX_CONVENTIONS:
        raise ValueError(f"unknown box convention {convention!r}; expected one of {BOX_CONVENTIONS}")
    return 1.0 if convention == "legacy" else 0.0


def check_real_array(values, name: str) -> np.ndarray:
    """Return ``values`` as a NumPy array of real numbers (bool, integer or float dtype, kept).

    Rejects complex numbers (converting them would drop the imaginary part), strings and objects
    that are not numbers.
    """
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:  # e.g. ragged nested lists
        raise ValueError(f"{name}: not a numeric array ({error})") from None
    kind = array.dtype.kind
    if kind in "biuf":
        return array
    if kind == "c":
        raise ValueError(f"{name}: complex values are not supported (dtype {array.dtype}); pass real numbers")
    if kind == "O":
        try:
            return array.astype(np.float64)  # numbers.Real objects (Fraction, Decimal): fine
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name}: not a numeric array ({error})") from None
    raise ValueError(f"{name}: not a numeric array (dtype {array.dtype})")


def check_finite_array(
    values, name: str, ndim: int, last_dim: int | None = None, limit: float | None = None
) -> np.ndarray:
    """Convert to a float64 array of the given rank (and last dimension) with finite entries,
    each at most ``limit`` in magnitude when a limit is given."""
    array = check_real_array(values, name).astype(np.float64, copy=False)
    if ndim == 2 and array.shape == (0,) and last_dim is not None:
        array = array.reshape(0, last_dim)  # `[]` is the natural spelling of "no boxes"
    if array.ndim != ndim or (last_dim is not None and array.shape[-1] != last_dim):
        expected = "(N,)" if ndim == 1 else f"(N, {last_dim})" if last_dim is not None else f"{ndim}-D"
        raise ValueError(f"{name}: expected shape {expected}, got {array.shape}")
    if array.size == 0:
        return array
    # the smallest and the largest entry tell whether all are fine (a NaN makes both NaN); only
    # then is the first bad entry looked for
    low, high = array.min(), array.max()
    if np.isfinite(low) and np.isfinite(high) and (limit is None or (-limit <= low and high <= limit)):
        return array
    bad = ~np.isfinite(array) if limit is None else ~(np.abs(array) <= limit)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        value = float(array[index])
        if np.isnan(value) or np.isinf(value):
            raise ValueError(f"{name}: {'NaN' if np.isnan(value) else 'inf'} at index {index}")
        raise ValueError(
            f"{name}: {value!r} at index {index} is outside the supported range "
            f"[-{limit:g}, {limit:g}] (see COORDINATE_LIMIT)"
        )
    return array


def check_boxes(boxes, name: str = "boxes") -> np.ndarray:
    """Return ``boxes`` as a finite float64 ``(N, 4)`` array in (x1, y1, x2, y2) order.

    Rejects a wrong shape, NaN/inf, coordinates beyond ``±COORDINATE_LIMIT`` and boxes with
    ``x2 < x1`` or ``y2 < y1`` (zero width or height is allowed: it is a degenerate box, not an
    invalid one).
    """
    array = check_finite_array(boxes, name, ndim=2, last_dim=4, limit=COORDINATE_LIMIT)
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


def check_labels(values, name: str, length: int | None) -> np.ndarray:
    """Return an int64 vector (class indices) of the given length (any length for ``None``).

    Integral floats (``2.0``) are accepted; fractions, NaN, booleans and non-numbers are not.
    """
    array = check_real_array(values, name)
    if array.ndim != 1 or (length is not None and array.shape[0] != length):
        expected = "(N,)" if length is None else f"({length},)"
        raise ValueError(f"{name}: expected shape {expected}, got {array.shape}")
    if array.dtype.kind == "b":
        raise ValueError(f"{name}: expected integer class indices, got booleans")
    if array.dtype.kind == "f":
        fractional = ~(array == np.floor(array))  # NaN and inf are not integers either
        if fractional.any():
            index = int(np.flatnonzero(fractional)[0])
            raise ValueError(
                f"{name}: expected integer class indices, got {float(array[index])!r} at index {index}"
            )
    return array.astype(np.int64)


def check_ternary_labels(values, name: str, length: int | None = None) -> np.ndarray:
    """Return an int64 vector of 1 (positive), 0 (negative) and -1 (ignored / not sampled)."""
    array = check_real_array(values, name)
    if array.ndim != 1 or (length is not None and array.shape[0] != length):
        expected = "(N,)" if length is None else f"({length},)"
        raise ValueError(f"{name}: expected a 1-D array of 1, 0 and -1, shape {expected}, got {array.shape}")
    bad = ~np.isin(array, (1, 0, -1)) | (array.dtype.kind == "b")
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        value = array[index].item()
        raise ValueError(f"{name}: expected a 1-D array of 1, 0 and -1, got {value!r} at index {index}")
    return array.astype(np.int64)


def is_real_number(value) -> bool:
    """A real scalar (Python or NumPy) that is not a bool: ``True`` is not the number 1 here."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def as_integer(value) -> int | None:
    """``value`` as an ``int`` if it is an integer or an integral float (``7.0``), else ``None``
    (fractions, NaN, inf, bools, strings, ``None``)."""
    if not is_real_number(value):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if not math.isfinite(value) or value != math.floor(value):
        return None
    return int(value)


def check_integer(value, name: str, minimum: int | None = 0) -> int:
    """Return an integer ``>= minimum`` (no bound for ``None``); integral floats are accepted."""
    integer = as_integer(value)
    if integer is None or (minimum is not None and integer < minimum):
        expected = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return integer


def check_size_pair(size, name: str, minimum: int) -> tuple[int, int]:
    """Return ``(height, width)`` as two integers ``>= minimum`` (a map or an output grid)."""
    try:
        height, width = size
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected (height, width), got {size!r}") from None
    sides = []
    for label, value in (("height", height), ("width", width)):
        integer = as_integer(value)
        if integer is None or integer < minimum:
            raise ValueError(f"{name}: {label} must be an integer >= {minimum}, got {value!r}")
        sides.append(integer)
    return sides[0], sides[1]


def check_unit_interval(value, name: str) -> float:
    """Return a threshold in [0, 1] as a float."""
    if not is_real_number(value) or not np.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a real number in [0, 1], got {value!r}")
    return float(value)


def check_nonnegative(value, name: str) -> float:
    """Return a finite, non-negative real number as a float."""
    if not is_real_number(value) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return float(value)


def check_positive(value, name: str) -> float:
    """Return a finite, positive real number as a float (a stride, a scale)."""
    if not is_real_number(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return float(value)


def check_image_size(image_size, name: str = "image_size") -> tuple[float, float]:
    """Return ``(height, width)``, both finite and positive."""
    try:
        height, width = image_size
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected (height, width), got {image_size!r}") from None
    for label, value in (("height", height), ("width", width)):
        if not is_real_number(value) or not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name}: {label} must be a finite number > 0, got {value!r}")
    return float(height), float(width)


def check_weights(weights, name: str = "weights") -> np.ndarray:
    """Return the four box-coder weights (wx, wy, ww, wh), all finite and > 0."""
    array = check_finite_array(weights, name, ndim=1)
    if array.shape != (4,) or np.any(array <= 0):
        raise ValueError(f"{name}: expected four positive weights (wx, wy, ww, wh), got {weights!r}")
    return array
