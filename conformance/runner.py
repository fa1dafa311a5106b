"""Run one property against one implementation and say what happened.

Three ways in: :func:`run_property` lets Hypothesis search (explicit boundary examples first, then
the example database, then generated inputs) and reports the shrunk minimal input of a failure;
:func:`replay_witness` runs a documented deviation's stored witness once, deterministically;
:func:`evaluate` combines them: the witness of a documented deviation, then a search in which
exactly the failures its deviant model explains are set aside.
"""

from __future__ import annotations

import hashlib
import traceback
from dataclasses import dataclass, field
from typing import Any

import hypothesis
from detspec.conformance.expectations import Deviation
from detspec.conformance.guard import GuardedImplementation, Recording
from detspec.conformance.verdicts import Verdict
from detspec.properties.checks import PropertyFailure
from detspec.properties.registry import Example, Property, finite_or_text
from hypothesis import HealthCheck, given, settings
from hypothesis.database import ExampleDatabase
from hypothesis.errors import FlakyFailure

#: Hypothesis's database keys start with a sha384 digest of the test function's source; the
#: runner's one test function serves every property, so that digest is replaced by our own key.
_DIGEST_BYTES = 48


@dataclass
class Outcome:
    property: str
    clause: str
    status: Verdict
    examples: int = 0
    code: str | None = None
    message: str | None = None
    minimal_input: dict[str, Any] | None = None
    expected: Any = None
    actual: Any = None
    reason: str | None = None  # for deviates/xpass: the expectation's reason
    upstream: str | None = None
    set_aside: int = 0  # examples whose failure the deviant model explained
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The fields that are set (an expected ``[]`` -- "no box kept" -- is set), with non-finite
        numbers spelled as strings so that the report stays strict JSON."""
        out: dict[str, Any] = {}
        for key in self.__dataclass_fields__:
            value = getattr(self, key)
            if value is None or (key == "extra" and not value) or (key == "set_aside" and not value):
                continue
            out[key] = str(value) if key == "status" else finite_or_text(value)
        return out


class NamespacedDatabase(ExampleDatabase):
    """One example database shared by all properties, with keys of our own per implementation and
    property (not Hypothesis's digest of the runner's source, which every edit would change): a
    failure replays first for the same pair, never leaks elsewhere, and survives edits."""

    def __init__(self, base: ExampleDatabase, namespace: str) -> None:
        super().__init__()
        self.base = base
        self.prefix = namespace.encode() + b"\x00"

    def _key(self, key: bytes) -> bytes:
        return self.prefix + key[_DIGEST_BYTES:]

    def save(self, key: bytes, value: bytes) -> None:
        self.base.save(self._key(key), value)

    def fetch(self, key: bytes):
        return self.base.fetch(self._key(key))

    def delete(self, key: bytes, value: bytes) -> None:
        self.base.delete(self._key(key), value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self.base.move(self._key(src), self._key(dest), value)


def stable_seed(name: str) -> int:
    """A seed that depends on the property's name only: derandomised searches (the ``ci`` profile,
    the negative controls) are the same alone, in the whole suite and after any edit elsewhere."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def _failure_outcome(prop: Property, error: BaseException, example: Example | None, examples: int) -> Outcome:
    if isinstance(error, PropertyFailure):
        status, code = Verdict.FAIL, error.code
        message, expected, actual = error.message, error.expected, error.actual
    else:  # a crash inside the property itself: the suite's problem, reported with where it raised
        frames = traceback.extract_tb(error.__traceback__)
        where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
        status, code = Verdict.ERROR, "property.error"
        message, expected, actual = f"{type(error).__name__}: {error}{where}", None, None
    return Outcome(
        prop.name,
        prop.clause,
        status,
        examples=examples,
        code=code,
        message=message,
        minimal_input=prop.to_jsonable(example) if example is not None else None,
        expected=expected,
        actual=actual,
    )


def not_runnable(prop: Property, impl: GuardedImplementation) -> Outcome | None:
    missing = [op for op in prop.uses if not impl.provides(op)]
    if missing:
        return Outcome(
            prop.name,
            prop.clause,
            Verdict.NOT_PROVIDED,
            message=f"{impl.name} does not provide {', '.join(missing)}",
        )
    lacking = prop.requires(impl.conventions)
    if lacking:
        return Outcome(prop.name, prop.clause, Verdict.UNSUPPORTED, message=f"unsupported: {lacking}")
    reason = prop.applies(impl.conventions)
    if reason:
        return Outcome(prop.name, prop.clause, Verdict.SKIP, message=f"not applicable: {reason}")
    return None


def explained_by(
    deviation: Deviation, error: PropertyFailure, recording: Recording, dtype: str
) -> str | None:
    """``None`` when ``error`` is the documented deviation (its code, and the deviant model agrees
    with every recorded call); otherwise why it is not."""
    if error.code not in deviation.codes:
        return f"failure code {error.code} is not one of the documented {list(deviation.codes)}"
    if deviation.model is None:
        return "the entry has no deviant model"
    return deviation.model.explain(recording.calls, dtype)


def run_property(
    prop: Property,
    impl: GuardedImplementation,
    base_settings: settings | None = None,
    database: ExampleDatabase | None = None,
    seed: int | None = None,
    deviation: Deviation | None = None,
) -> Outcome:
    """Search for a counterexample with Hypothesis under ``base_settings`` (default profile).
    With a ``deviation``, failures it explains are set aside (counted as passing examples), so
    that the search goes on for any other failure."""
    blocked = not_runnable(prop, impl)
    if blocked:
        return blocked
    counts = {"calls": 0, "set_aside": 0}
    last_failure: dict[str, Any] = {}
    dtype = impl.conventions.dtype

    def test(example: Example) -> None:
        counts["calls"] += 1
        with impl.recording() as recording:
            try:
                prop.run(impl, example)
            except PropertyFailure as error:
                if deviation is not None and explained_by(deviation, error, recording, dtype) is None:
                    counts["set_aside"] += 1
                    return
                # keep the last input that really hung or crashed, not one it was not called on
                if not getattr(error, "again", False) or not last_failure:
                    last_failure.update(example=example, error=error)
                raise
            except BaseException as error:
                last_failure.update(example=example, error=error)
                raise

    wrapped = given(example=prop.inputs(impl.conventions))(test)
    for example in reversed(prop.explicit_examples(impl.conventions)):
        wrapped = hypothesis.example(example=example)(wrapped)
    profile = base_settings or settings()
    namespaced = NamespacedDatabase(database, f"{impl.name}/{prop.name}") if database else None
    wrapped = settings(
        profile,
        database=namespaced,
        derandomize=False,  # replaced by a per-property seed below, independent of source digests
        report_multiple_bugs=False,
        deadline=None,
        suppress_health_check=[*profile.suppress_health_check, HealthCheck.too_slow],
    )(wrapped)
    if profile.derandomize:
        wrapped = hypothesis.seed(stable_seed(prop.name))(wrapped)
    elif seed is not None:
        wrapped = hypothesis.seed(seed)(wrapped)
    try:
        wrapped()
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        if not last_failure:  # a problem of the suite itself (unsatisfiable strategy, ...)
            return Outcome(
                prop.name,
                prop.clause,
                Verdict.ERROR,
                examples=counts["calls"],
                code="property.error",
                message=f"the search could not run: {type(error).__name__}: {str(error)[:500]}",
            )
        # Hypothesis replays the shrunk example last, so the last failure is the minimal one.
        outcome = _failure_outcome(prop, last_failure["error"], last_failure["example"], counts["calls"])
        if isinstance(error, FlakyFailure):
            outcome.message += " (the failure did not reproduce identically on replay)"
        outcome.set_aside = counts["set_aside"]
        return outcome
    return Outcome(
        prop.name, prop.clause, Verdict.PASS, examples=counts["calls"], set_aside=counts["set_aside"]
    )


def replay_witness(prop: Property, impl: GuardedImplementation, deviation: Deviation) -> Outcome:
    """Run a documented deviation's witness once: ``deviates`` if it still fails with one of the
    documented codes and as the deviant model says, ``xpass`` if it now passes, ``fail`` if it
    fails otherwise."""
    blocked = not_runnable(prop, impl)
    if blocked:
        return blocked
    example = prop.from_jsonable(deviation.witness)
    common = dict(
        examples=1, minimal_input=deviation.witness, reason=deviation.reason, upstream=deviation.upstream
    )
    with impl.recording() as recording:
        try:
            prop.run(impl, example)
        except PropertyFailure as error:
            details = dict(code=error.code, expected=error.expected, actual=error.actual)
            unexplained = explained_by(deviation, error, recording, impl.conventions.dtype)
            if unexplained is None or (deviation.model is None and error.code in deviation.codes):
                note = "" if deviation.model else " (no deviant model yet: the search was not run past it)"
                return Outcome(
                    prop.name,
                    prop.clause,
                    Verdict.DEVIATES,
                    message=error.message + note,
                    **details,
                    **common,
                )
            return Outcome(
                prop.name,
                prop.clause,
                Verdict.FAIL,
                message=f"the witness fails differently from the documented deviation ({unexplained}): "
                f"{error.message}",
                **details,
                **common,
            )
        except Exception as error:
            return _failure_outcome(prop, error, example, 1)
    return Outcome(
        prop.name,
        prop.clause,
        Verdict.XPASS,
        **common,
        message="documented deviation no longer reproduces: its witness passes; "
        "remove the entry from the expectations file",
    )


class UnreadableInput(ValueError):
    """A given input (``--detspec-input``, a cross-replayed one) is not an example of the property."""


def replay_input(
    prop: Property, impl: GuardedImplementation, data: dict[str, Any], deviation: Deviation | None
) -> Outcome:
    """Run one given input (``--detspec-input``, the matrix's cross-replay) once: ``pass``,
    ``fail`` with its code, or ``deviates`` when the implementation's documented deviation
    explains the failure; :class:`UnreadableInput` when it is no input of the property."""
    blocked = not_runnable(prop, impl)
    if blocked:
        return blocked
    try:
        example = prop.from_jsonable(data)
    except (ValueError, TypeError) as error:
        raise UnreadableInput(f"not an input of {prop.name}: {error}") from None
    with impl.recording() as recording:
        try:
            prop.run(impl, example)
        except PropertyFailure as error:
            explained = (
                deviation is not None
                and explained_by(deviation, error, recording, impl.conventions.dtype) is None
            )
            return Outcome(
                prop.name,
                prop.clause,
                Verdict.DEVIATES if explained else Verdict.FAIL,
                examples=1,
                code=error.code,
                message=error.message,
                minimal_input=data,
                expected=error.expected,
                actual=error.actual,
                reason=deviation.reason if explained and deviation else None,
            )
        except Exception as error:
            return _failure_outcome(prop, error, example, 1)
    return Outcome(prop.name, prop.clause, Verdict.PASS, examples=1, minimal_input=data)


def evaluate(
    prop: Property,
    impl: GuardedImplementation,
    deviation: Deviation | None,
    base_settings: settings | None = None,
    database: ExampleDatabase | None = None,
    seed: int | None = None,
) -> Outcome:
    """The verdict for one property. Without a documented deviation: a search. With one: its
    witness is replayed, then the property is searched with exactly the failures the deviant
    model explains set aside, so that any other failure of the same property fails the clause."""
    if deviation is None:
        return run_property(prop, impl, base_settings, database, seed)
    replayed = replay_witness(prop, impl, deviation)
    if replayed.status != Verdict.DEVIATES or deviation.model is None:
        return replayed
    search = run_property(prop, impl, base_settings, database, seed, deviation)
    if search.status in (Verdict.FAIL, Verdict.ERROR):
        search.message = (
            f"beyond the documented deviation (codes {list(deviation.codes)}, model "
            f"{deviation.model.name}): {search.message}"
        )
        return search
    replayed.examples += search.examples
    replayed.set_aside = search.set_aside
    return replayed
