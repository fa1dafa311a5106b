"""Call an adapter defensively, so that a broken implementation fails its clauses, not the run.

Every operation call goes through :class:`GuardedImplementation`: arguments are passed by keyword
as deep copies (nothing an adapter does can change the example, the witness or the report), the
call runs under a time limit, whatever goes wrong becomes an :class:`ImplementationFailure` with
a stable code (``impl.raised``, ``impl.hung``, ``impl.crashed``, ``result.*``), and the result is
checked against the operation's declared kind and shape; NaN is never a valid result.

Where the call runs is the *caller*'s business: :class:`InProcessCaller` (a daemon thread; for
trusted code such as the reference) or :class:`~detspec.conformance.worker.WorkerCaller` (a worker
process, restarted after a crash or a hang; the default for everything else).

While :meth:`GuardedImplementation.recording` is active, every call is recorded with its result
as it came back (before the NaN check), so that a documented deviation can be compared with its
deviant model (``conformance/deviations``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Protocol

import numpy as np
from detspec.properties.interface import (
    OPERATIONS,
    Conventions,
    ImplementationHung,
    ImplementationRaised,
    InvalidResult,
    NotProvided,
    Operation,
    Result,
)

DEFAULT_TIMEOUT_S = 20.0


def provides(adapter: Any, operation: str) -> bool:
    return callable(getattr(adapter, operation, None))


#: Optional adapter methods besides the operations: ``repro_snippet(operation, arguments)`` returns
#: Python code that reproduces one call with the implementation's own API (for the reports).
EXTRA_METHODS = ("repro_snippet",)


def provided_operations(adapter: Any) -> frozenset[str]:
    return frozenset(op for op in (*OPERATIONS, *EXTRA_METHODS) if provides(adapter, op))


def check_timeout(value: Any) -> float:
    """``--detspec-adapter-timeout``: a finite number of seconds > 0."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"adapter timeout {value!r}: expected a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"adapter timeout {value!r}: expected a finite number of seconds > 0")
    return seconds


class Caller(Protocol):
    """Runs one operation of an adapter; raises ``ImplementationFailure`` subclasses."""

    name: str
    version: str
    conventions: Conventions
    operations: frozenset[str]
    isolated: bool

    def call(self, operation: str, arguments: dict[str, Any], timeout_s: float) -> Any: ...

    def close(self) -> None: ...


def hung_before(label: str, timeout_s: float) -> ImplementationHung:
    """An operation that hung once is not called again in the run (it would hang again)."""
    return ImplementationHung(
        f"{label} did not return within {timeout_s:g} s on an earlier call; not called again", again=True
    )


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, at most 300 characters (messages can be huge)."""
    return (str(error).strip().splitlines() or [""])[0][:300]


def raised(label: str, error: BaseException) -> ImplementationRaised:
    return ImplementationRaised(f"{label} raised {type(error).__name__}: {first_line(error)}", error)


class InProcessCaller:
    """Calls the adapter in this process, in a daemon thread with a time limit. A hung call
    cannot be killed: the operation is not called again in this run."""

    isolated = False

    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter
        self.name = str(getattr(adapter, "name", type(adapter).__name__))
        self.version = str(getattr(adapter, "version", "unknown"))
        conventions = getattr(adapter, "conventions", Conventions())
        if not isinstance(conventions, Conventions):
            raise TypeError(f"adapter {self.name}: conventions must be a Conventions instance")
        self.conventions = conventions
        self.operations = provided_operations(adapter)
        self.facts = dict(getattr(adapter, "facts", {}) or {})
        self.expectations_name = str(getattr(adapter, "expectations_name", "") or self.name)
        self._hung: set[str] = set()

    def call(self, operation: str, arguments: dict[str, Any], timeout_s: float) -> Any:
        label = f"{self.name}.{operation}"
        if operation in self._hung:
            raise hung_before(label, timeout_s)
        outcome: dict[str, Any] = {}
        function = getattr(self.adapter, operation)
        copies = copy.deepcopy(arguments)

        def run() -> None:
            try:
                outcome["value"] = function(**copies)
            except BaseException as error:  # reported to the caller, whatever it is
                outcome["error"] = error

        worker = threading.Thread(target=run, name=label, daemon=True)
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            self._hung.add(operation)
            raise ImplementationHung(f"{label} did not return within {timeout_s:g} s")
        if "error" in outcome:
            raise raised(label, outcome["error"])
        return outcome["value"]

    def close(self) -> None:
        pass


@dataclass
class Call:
    """One recorded operation call: its arguments and what came back (``result`` after the
    shape and dtype checks but before the NaN check; ``error`` if the call or those checks failed)."""

    operation: str
    arguments: dict[str, Any]
    result: Any = None
    error: BaseException | None = None


@dataclass
class Recording:
    calls: list[Call] = field(default_factory=list)


class GuardedImplementation:
    """Wraps an adapter: same operations, defensive calls. ``name``, ``version``, ``conventions``."""

    def __init__(
        self, adapter: Any = None, timeout_s: float = DEFAULT_TIMEOUT_S, caller: Caller | None = None
    ) -> None:
        self.caller: Caller = caller if caller is not None else InProcessCaller(adapter)
        self.name = self.caller.name
        self.version = self.caller.version
        self.conventions = self.caller.conventions
        self.facts: dict[str, Any] = dict(getattr(self.caller, "facts", {}))
        self.expectations_name: str = getattr(self.caller, "expectations_name", self.name)
        self.timeout_s = check_timeout(timeout_s)
        self.spec: str | None = None  # how --detspec-impl named it, when opened from a spec
        self._recording: Recording | None = None

    @property
    def isolated(self) -> bool:
        return self.caller.isolated

    def provides(self, operation: str) -> bool:
        return operation in self.caller.operations

    def close(self) -> None:
        self.caller.close()

    @contextlib.contextmanager
    def recording(self) -> Iterator[Recording]:
        """Record every call made inside the block (nested blocks share the outer recording)."""
        if self._recording is not None:
            yield self._recording
            return
        self._recording = Recording()
        try:
            yield self._recording
        finally:
            self._recording = None

    def repro_snippet(self, operation: str, arguments: dict[str, Any]) -> str | None:
        """The adapter's own snippet reproducing one call, if it writes them (else ``None``)."""
        if not self.provides("repro_snippet"):
            return None
        try:
            snippet = self.caller.call(
                "repro_snippet", {"operation": operation, "arguments": arguments}, self.timeout_s
            )
        except Exception:
            return None
        return snippet if isinstance(snippet, str) else None

    def __getattr__(self, operation: str):
        if operation not in OPERATIONS:
            raise AttributeError(operation)
        return lambda *args, **kwargs: self.call(operation, *args, **kwargs)

    def call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        spec = OPERATIONS[operation]
        label = f"{self.name}.{operation}"
        arguments = _keyword_arguments(spec, args, kwargs)
        if not self.provides(operation):
            raise NotProvided(label)
        record = Call(operation, copy.deepcopy(arguments)) if self._recording is not None else None
        if record is not None:
            self._recording.calls.append(record)
        try:
            value = self.caller.call(operation, arguments, self.timeout_s)
            result = coerce_result(spec, label, value, SimpleNamespace(**arguments))
        except BaseException as error:
            if record is not None:
                record.error = error
            raise
        if record is not None:
            record.result = result
        reject_nan(spec, label, result)
        return result


def _keyword_arguments(spec: Operation, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    if len(args) > len(spec.arguments):
        raise TypeError(f"{spec.name} takes {len(spec.arguments)} arguments, got {len(args)}")
    arguments = dict(zip(spec.arguments, args, strict=False))
    for key, value in kwargs.items():
        if key not in spec.arguments or key in arguments:
            raise TypeError(f"{spec.name}: unexpected or repeated argument {key!r}")
        arguments[key] = value
    missing = [a for a in spec.arguments if a not in arguments]
    if missing:
        raise TypeError(f"{spec.name}: missing arguments {missing}")
    return arguments


# --- result checks ----------------------------------------------------------------------------


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    return type(value).__name__


def coerce_result(spec: Operation, label: str, value: Any, arguments: SimpleNamespace) -> Any:
    """The result as the properties read it (float64/int64 arrays, floats, named tuples), or
    :class:`InvalidResult` naming what is wrong with it."""
    if isinstance(spec.result, Result):
        return _coerce_one(spec.result, label, value, arguments)
    names = tuple(spec.result)
    if isinstance(value, tuple) and len(value) == len(names):
        parts = tuple(value)
    elif value is not None and all(hasattr(value, n) for n in names):
        parts = tuple(getattr(value, n) for n in names)
    else:
        raise InvalidResult(
            "result.type",
            f"{label} returned {_describe(value)}; expected a {spec.named.__name__}{names}",
            f"{spec.named.__name__}{names}",
            _describe(value),
        )
    coerced = [
        _coerce_one(spec.result[n], f"{label} {n}", part, arguments)
        for n, part in zip(names, parts, strict=True)
    ]
    return spec.named(*coerced)


def _coerce_one(result: Result, label: str, value: Any, arguments: SimpleNamespace) -> Any:
    if result.kind == "json":
        if not isinstance(value, list | tuple):
            raise InvalidResult("result.type", f"{label} returned {_describe(value)}; expected a list")
        return value
    if value is None:
        raise InvalidResult(
            "result.type", f"{label} returned None; expected {_expected(result)}", None, "None"
        )
    try:
        array = np.asarray(value)
    except Exception as error:
        raise InvalidResult(
            "result.type", f"{label} returned {_describe(value)}, not an array: {error}"
        ) from None
    if result.kind == "scalar":
        if array.size != 1 or not _is_real(array):
            raise InvalidResult(
                "result.type", f"{label} returned {_describe(value)}; expected one real number", "a number"
            )
        return float(array.reshape(()))
    if result.kind in ("indices", "int"):
        if array.ndim == 1 and array.size == 0 and result.kind == "indices":
            return array.astype(np.int64)
        if not np.issubdtype(array.dtype, np.integer):
            raise InvalidResult(
                "result.dtype",
                f"{label} returned dtype {array.dtype}; expected an integer dtype",
                "integers",
                str(array.dtype),
            )
        if result.kind == "indices" and array.ndim != 1:
            raise InvalidResult(
                "result.shape",
                f"{label} returned shape {array.shape}; expected a 1-D integer index array",
                "1-D integer indices",
                f"{array.dtype}{list(array.shape)}",
            )
        array = array.astype(np.int64)
    elif result.kind == "complex":
        if not np.issubdtype(array.dtype, np.complexfloating):
            raise InvalidResult(
                "result.dtype", f"{label} returned dtype {array.dtype}; expected complex64 or complex128"
            )
        array = array.astype(np.complex128)
    else:  # float
        if array.dtype not in (np.float32, np.float64):
            problem = "not a floating-point dtype" if array.dtype.kind != "f" else "too imprecise"
            raise InvalidResult(
                "result.dtype",
                f"{label} returned dtype {array.dtype} ({problem}); expected float32 or float64",
                "float32 or float64",
                str(array.dtype),
            )
        array = array.astype(np.float64)
    if result.shape is not None:
        _check_shape(label, array, result.shape(arguments))
    return array


def _expected(result: Result) -> str:
    return {"scalar": "a number", "indices": "an index array", "int": "an integer array"}.get(
        result.kind, f"a {result.kind} array"
    )


def _is_real(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)


def _check_shape(label: str, array: np.ndarray, expected: tuple) -> None:
    if None in expected and array.ndim == len(expected):  # a free dimension
        expected = tuple(r if e is None else e for r, e in zip(array.shape, expected, strict=True))
    if array.shape != tuple(expected):
        raise InvalidResult(
            "result.shape",
            f"{label} returned shape {array.shape}; expected {tuple(expected)}",
            list(expected),
            list(array.shape),
        )


def reject_nan(spec: Operation, label: str, result: Any) -> None:
    """NaN is never a valid result (``result.nan``)."""
    if isinstance(spec.result, Result):
        _reject_nan_one(label, result)
    else:
        for name, part in zip(spec.result, result, strict=True):
            _reject_nan_one(f"{label} {name}", part)


def _reject_nan_one(label: str, value: Any) -> None:
    if isinstance(value, float):
        if math.isnan(value):
            raise InvalidResult("result.nan", f"{label} returned NaN", "a number", "NaN")
        return
    if isinstance(value, np.ndarray) and value.dtype.kind in "fc":
        nan = np.isnan(value)
        if nan.any():
            index = [int(i) for i in np.argwhere(nan)[0]]
            raise InvalidResult("result.nan", f"{label} returned NaN at index {index}", "a number", "NaN")
