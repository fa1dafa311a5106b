"""Deviant models: what a documented deviation does, written as code.

An expectations entry (``conformance/expectations/<impl>.toml``) names the failure codes of its
deviation and a **model**: a function, kept in ``conformance/deviations/<impl>.py`` (or any module
the file names), that says what the deviant behaviour returns. A failing example is set aside as
"the documented deviation" only when its failure has one of the entry's codes *and* every call the
property made to the model's operation agrees with the model; anything else fails the clause as
beyond the documented deviation. So an entry excuses exactly its own root cause.

Two forms:

* :func:`deviant_output` — for deterministic operations: ``model(**arguments)`` returns the
  output the deviant implementation gives for those arguments (everywhere, not only where it is
  wrong); the recorded output must equal it (NaN equals NaN; float results within the declared
  precision's tolerance, relative to the magnitude).
* :func:`deviant_check` — for random operations (samplers), whose output cannot be recomputed:
  ``model(output, **arguments)`` returns ``None`` when the output is one the deviant behaviour
  can give, or a one-line reason why it is not.

Either form may take ``applies=predicate(**arguments)``: the calls on which the deviation can show
at all. At least one call must satisfy it, and only those calls are checked against the model;
a call outside it must not have raised. The outputs of calls outside it are not compared with
anything: where a property makes calls on both sides in one example (none of the shipped entries'
properties but ``proposals.post-n-prefix`` of Proposal-4, whose other call is the smaller cut), a
wrong output of the outside call with the same failure code would be set aside -- keep
``applies`` to what the root cause really needs.

A deviation may also be a *failure*: an operation that raises on some inputs. An output model
says so by raising on those arguments (the recorded call must have raised an exception of the
same type name, and must not have raised anywhere the model returns); a check model says so with
``raises=predicate(**arguments)`` returning the exception type name the call raises there, or
``None``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from detspec.conformance.guard import Call
from detspec.properties.checks import tolerance


@dataclass(frozen=True)
class DeviantModel:
    name: str
    operation: str
    model: Callable[..., Any]
    form: str  # "output" or "check"
    applies: Callable[..., bool] | None = None
    doc: str = ""
    raises: Callable[..., str | None] | None = None  # check form: where the call raises, and what

    def _expected(self, arguments: dict[str, Any]) -> tuple[str | None, Any]:
        """``(the exception type name the deviant call raises, or None; its output)``."""
        if self.form == "check":
            return (self.raises(**arguments) if self.raises else None), None
        try:
            return None, self.model(**arguments)
        except Exception as error:
            return type(error).__name__, None

    def explain(self, calls: list[Call], dtype: str) -> str | None:
        """``None`` when the recorded calls agree with this model; otherwise why they do not."""
        relevant = [c for c in calls if c.operation == self.operation]
        if not relevant:
            return f"the property made no call to {self.operation}, which the deviant model describes"
        if self.applies is not None:
            outside = [c for c in relevant if not self.applies(**c.arguments)]
            failed = next((c for c in outside if c.error is not None), None)
            if failed is not None:
                return f"a call to {self.operation} the deviation does not apply to failed: {failed.error}"
            relevant = [c for c in relevant if self.applies(**c.arguments)]
            if not relevant:
                return f"no call to {self.operation} is one the documented deviation applies to ({self.name})"
        for number, call in enumerate(relevant, start=1):
            expected_error, expected = self._expected(call.arguments)
            if call.error is not None or expected_error is not None:
                reason = _compare_failures(call.error, expected_error)
                if reason:
                    return f"call {number} to {self.operation}: {reason}"
                continue
            if self.form == "check":
                reason = self.model(call.result, **call.arguments)
                if reason:
                    return f"call {number} to {self.operation}: {reason}"
                continue
            reason = _difference(call.result, expected, tolerance(dtype))
            if reason:
                return f"call {number} to {self.operation} does not return what {self.name} gives: {reason}"
        return None


def _compare_failures(error: BaseException | None, expected: str | None) -> str | None:
    """Whether a recorded failure (``ImplementationRaised`` keeps the original type's name, also
    from a worker process) is the one the model expects."""
    if error is None:
        return f"the model raises {expected} here, the implementation returned"
    if expected is None:
        return f"it failed ({error}) where the model gives an output"
    got = getattr(error, "error_type", None) or type(error).__name__
    if got != expected:
        return f"it raised {got} where the model raises {expected}"
    return None


def deviant_output(operation: str, *, applies: Callable[..., bool] | None = None):
    """Declare ``model(**arguments) -> output`` as the deviant behaviour of ``operation``."""

    def declare(model: Callable[..., Any]) -> DeviantModel:
        return DeviantModel(
            model.__name__, operation, model, "output", applies, (model.__doc__ or "").strip()
        )

    return declare


def deviant_check(
    operation: str,
    *,
    applies: Callable[..., bool] | None = None,
    raises: Callable[..., str | None] | None = None,
):
    """Declare ``model(output, **arguments) -> None | reason`` as the deviant behaviour
    (``raises``: where the call raises instead, and the exception's type name)."""

    def declare(model: Callable[..., Any]) -> DeviantModel:
        return DeviantModel(
            model.__name__, operation, model, "check", applies, (model.__doc__ or "").strip(), raises
        )

    return declare


def _difference(actual: Any, expected: Any, tol: float) -> str | None:
    """Where two results (arrays, numbers or named tuples of them) differ, or ``None``."""
    if isinstance(expected, tuple) and hasattr(expected, "_fields"):
        for name in expected._fields:
            reason = _difference(getattr(actual, name, None), getattr(expected, name), tol)
            if reason:
                return f"{name}: {reason}"
        return None
    got = np.asarray(actual)
    want = np.asarray(expected)
    if got.shape != want.shape:
        return f"shape {got.shape}, the model's {want.shape}"
    if want.dtype.kind in "iub":
        bad = got != want
    else:
        kind = np.complex128 if np.iscomplexobj(got) or np.iscomplexobj(want) else np.float64
        got, want = got.astype(kind), want.astype(kind)
        both_nan = np.isnan(got) & np.isnan(want)
        with np.errstate(invalid="ignore"):
            close = np.abs(got - want) <= tol * (1 + np.abs(want))
        bad = ~(close | both_nan | (got == want))
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        return f"at {list(index)} it is {got[index].item()!r}, the model's {want[index].item()!r}"
    return None


def models_in(module: ModuleType) -> dict[str, DeviantModel]:
    return {name: value for name, value in vars(module).items() if isinstance(value, DeviantModel)}


def load_models(module_name: str) -> dict[str, DeviantModel]:
    """The deviant models a module defines, by name (raises ``ImportError`` if it cannot load)."""
    return models_in(importlib.import_module(module_name))
