"""Call an adapter defensively, so that a broken implementation fails its clauses, not the run.

Every operation call goes through :class:`GuardedImplementation`: inputs are copied (an adapter
that writes into its arguments cannot corrupt the property's data), the call runs in a daemon
thread with a time limit, exceptions become :class:`ImplementationRaised`, and the result is
checked against the operation's declared shape and type; NaN is never a valid result.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from detspec.properties.interface import (
    OPERATIONS,
    Conventions,
    ImplementationHung,
    ImplementationRaised,
    InvalidResult,
    NotProvided,
)

DEFAULT_TIMEOUT_S = 20.0


def provides(adapter: Any, operation: str) -> bool:
    return callable(getattr(adapter, operation, None))


def _copy(value: Any) -> Any:
    if isinstance(value, list) and any(isinstance(v, np.ndarray) for v in value):
        return [_copy(v) for v in value]  # a list of feature maps
    return value.copy() if isinstance(value, np.ndarray) else value


class GuardedImplementation:
    """Wraps an adapter: same operations, defensive calls. ``name``, ``version``, ``conventions``."""

    def __init__(self, adapter: Any, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.adapter = adapter
        self.name = str(getattr(adapter, "name", type(adapter).__name__))
        self.version = str(getattr(adapter, "version", "unknown"))
        conventions = getattr(adapter, "conventions", Conventions())
        if not isinstance(conventions, Conventions):
            raise TypeError(f"adapter {self.name}: conventions must be a Conventions instance")
        self.conventions = conventions
        self.timeout_s = timeout_s
        self._hung: set[str] = set()

    def provides(self, operation: str) -> bool:
        return provides(self.adapter, operation)

    def __getattr__(self, operation: str):
        if operation not in OPERATIONS:
            raise AttributeError(operation)
        return lambda *args: self.call(operation, *args)

    def call(self, operation: str, *args: Any) -> np.ndarray:
        label = f"{self.name}.{operation}"
        if not self.provides(operation):
            raise NotProvided(label)
        if operation in self._hung:
            raise ImplementationHung(
                f"{label} did not return within {self.timeout_s:g} s on an earlier call; not called again"
            )
        outcome: dict[str, Any] = {}
        function = getattr(self.adapter, operation)
        copies = [_copy(a) for a in args]

        def run() -> None:
            try:
                outcome["value"] = function(*copies)
            except BaseException as error:  # reported to the caller, whatever it is
                outcome["error"] = error

        worker = threading.Thread(target=run, name=label, daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        if worker.is_alive():
            self._hung.add(operation)
            raise ImplementationHung(f"{label} did not return within {self.timeout_s:g} s")
        if "error" in outcome:
            error = outcome["error"]
            first_line = (str(error).strip().splitlines() or [""])[0][:300]
            raise ImplementationRaised(f"{label} raised {type(error).__name__}: {first_line}", error)
        return self._validated(operation, label, outcome["value"], args)

    @staticmethod
    def _validated(operation: str, label: str, value: Any, args: tuple) -> np.ndarray:
        spec = OPERATIONS[operation]
        if spec.result == "json":
            if not isinstance(value, list | tuple):
                raise InvalidResult(f"{label} returned {type(value).__name__}; expected a list")
            return value
        try:
            result = np.asarray(value)
        except Exception as error:
            raise InvalidResult(f"{label} returned {type(value).__name__}, not an array: {error}") from None
        if spec.result == "indices":
            if result.ndim != 1 or not (result.size == 0 or np.issubdtype(result.dtype, np.integer)):
                raise InvalidResult(
                    f"{label} returned shape {result.shape} dtype {result.dtype}; "
                    "expected a 1-D integer index array",
                    "1-D integer indices",
                    f"{result.dtype}{list(result.shape)}",
                )
            return result.astype(np.int64)
        if not np.issubdtype(result.dtype, np.number) or np.issubdtype(result.dtype, np.complexfloating):
            raise InvalidResult(f"{label} returned dtype {result.dtype}; expected real numbers")
        expected_shape = spec.shape(*args)
        if None in expected_shape and result.ndim == len(expected_shape):  # a free dimension
            expected_shape = tuple(
                r if e is None else e for r, e in zip(result.shape, expected_shape, strict=True)
            )
        if result.shape != expected_shape:
            raise InvalidResult(
                f"{label} returned shape {result.shape}; expected {expected_shape}",
                list(expected_shape),
                list(result.shape),
            )
        result = result.astype(np.float64)
        nan = np.isnan(result)
        if nan.any():
            index = [int(i) for i in np.argwhere(nan)[0]]
            raise InvalidResult(f"{label} returned NaN at index {index}", "a number", "NaN")
        return result
