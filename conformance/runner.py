"""Run one property against one implementation and say what happened.

Three ways in: :func:`run_property` lets Hypothesis search (explicit boundary examples first, then
the example database, then generated inputs) and reports the shrunk minimal input of a failure;
:func:`replay_witness` runs a known deviation's stored witness once, deterministically;
:func:`evaluate` combines them: the witness of a documented deviation, then a search for any
other failure.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

import hypothesis
from detspec.conformance.expectations import Deviation
from detspec.conformance.guard import GuardedImplementation
from detspec.properties.checks import PropertyFailure
from detspec.properties.registry import Property
from hypothesis import HealthCheck, given, settings
from hypothesis.database import ExampleDatabase
from hypothesis.errors import FlakyFailure


@dataclass
class Outcome:
    property: str
    clause: str
    status: str
    examples: int = 0
    message: str | None = None
    minimal_input: dict[str, Any] | None = None
    expected: Any = None
    actual: Any = None
    reason: str | None = None  # for deviates/xpass: the expectation's reason
    upstream: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {}, [])}


class NamespacedDatabase(ExampleDatabase):
    """One example database shared by all properties, with keys prefixed per implementation and
    property, so that a failure replays first for the same pair and never leaks elsewhere."""

    def __init__(self, base: ExampleDatabase, namespace: str) -> None:
        super().__init__()
        self.base = base
        self.prefix = namespace.encode() + b"\x00"

    def save(self, key: bytes, value: bytes) -> None:
        self.base.save(self.prefix + key, value)

    def fetch(self, key: bytes):
        return self.base.fetch(self.prefix + key)

    def delete(self, key: bytes, value: bytes) -> None:
        self.base.delete(self.prefix + key, value)


def _failure_outcome(prop: Property, error: BaseException, example, examples: int) -> Outcome:
    if isinstance(error, PropertyFailure):
        message, expected, actual = error.message, error.expected, error.actual
    else:  # a crash inside the property itself is reported, with the line that raised
        where = traceback.extract_tb(error.__traceback__)[-1]
        message = f"{type(error).__name__}: {error} (at {where.filename}:{where.lineno})"
        expected = actual = None
    return Outcome(
        prop.name,
        prop.clause,
        "fail",
        examples=examples,
        message=message,
        minimal_input=prop.to_jsonable(example) if example is not None else None,
        expected=expected,
        actual=actual,
    )


def _not_runnable(prop: Property, impl: GuardedImplementation) -> Outcome | None:
    missing = [op for op in prop.uses if not impl.provides(op)]
    if missing:
        return Outcome(
            prop.name,
            prop.clause,
            "not-provided",
            message=f"{impl.name} does not provide {', '.join(missing)}",
        )
    reason = prop.applies(impl.conventions)
    if reason:
        return Outcome(prop.name, prop.clause, "skip", message=f"not applicable: {reason}")
    return None


def run_property(
    prop: Property,
    impl: GuardedImplementation,
    base_settings: settings | None = None,
    database: ExampleDatabase | None = None,
    seed: int | None = None,
    known: str | None = None,
) -> Outcome:
    """Search for a counterexample with Hypothesis under ``base_settings`` (default profile).
    Failures whose message matches the regular expression ``known`` (a documented deviation)
    are set aside, so that the search goes on for any other failure."""
    blocked = _not_runnable(prop, impl)
    if blocked:
        return blocked
    calls = {"count": 0}
    last_failure: dict[str, Any] = {}

    def test(example: dict[str, Any]) -> None:
        calls["count"] += 1
        try:
            prop.check(impl, **example)
        except PropertyFailure as error:
            if known and re.search(known, error.message):
                return  # the documented deviation: set aside, not a new failure
            last_failure.update(example=example, error=error)
            raise
        except BaseException as error:
            last_failure.update(example=example, error=error)
            raise

    wrapped = given(example=prop.strategy(impl.conventions))(test)
    for example in reversed(prop.examples(impl.conventions)):
        wrapped = hypothesis.example(example=example)(wrapped)
    profile = base_settings or settings()
    namespaced = NamespacedDatabase(database, f"{impl.name}/{prop.name}") if database else None
    wrapped = settings(
        profile,
        database=namespaced,
        report_multiple_bugs=False,
        deadline=None,
        suppress_health_check=[*profile.suppress_health_check, HealthCheck.too_slow],
    )(wrapped)
    if seed is not None and not profile.derandomize:
        wrapped = hypothesis.seed(seed)(wrapped)
    try:
        wrapped()
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        if not last_failure:  # a problem of the suite itself (unsatisfiable strategy, ...)
            raise
        # Hypothesis replays the shrunk example last, so the last failure is the minimal one.
        outcome = _failure_outcome(prop, last_failure["error"], last_failure["example"], calls["count"])
        if isinstance(error, FlakyFailure):
            outcome.message += " (the failure did not reproduce identically on replay)"
        return outcome
    return Outcome(prop.name, prop.clause, "pass", examples=calls["count"])


def replay_witness(prop: Property, impl: GuardedImplementation, deviation: Deviation) -> Outcome:
    """Run a documented deviation's witness once: ``deviates`` if it still fails as described,
    ``xpass`` if it now passes, ``fail`` if it fails differently from the description."""
    blocked = _not_runnable(prop, impl)
    if blocked:
        return blocked
    example = prop.from_jsonable(deviation.witness)
    common = dict(
        examples=1, minimal_input=deviation.witness, reason=deviation.reason, upstream=deviation.upstream
    )
    try:
        prop.check(impl, **example)
    except PropertyFailure as error:
        if deviation.match and not re.search(deviation.match, error.message):
            return Outcome(
                prop.name,
                prop.clause,
                "fail",
                expected=error.expected,
                actual=error.actual,
                **common,
                message=f"the witness fails differently from the documented deviation "
                f"(no match for {deviation.match!r}): {error.message}",
            )
        return Outcome(
            prop.name,
            prop.clause,
            "deviates",
            message=error.message,
            expected=error.expected,
            actual=error.actual,
            **common,
        )
    except Exception as error:
        return _failure_outcome(prop, error, example, 1)
    return Outcome(
        prop.name,
        prop.clause,
        "xpass",
        **common,
        message="documented deviation no longer reproduces: its witness passes; "
        "remove the entry from the expectations file",
    )


def evaluate(
    prop: Property,
    impl: GuardedImplementation,
    deviation: Deviation | None,
    base_settings: settings | None = None,
    database: ExampleDatabase | None = None,
    seed: int | None = None,
) -> Outcome:
    """The verdict for one property. Without a documented deviation: a search. With one: its
    witness is replayed, then (when the deviation says what its failure looks like, ``match``)
    the search runs with that failure set aside, so that a different failure of the same
    property still fails the clause."""
    if deviation is None:
        return run_property(prop, impl, base_settings, database, seed)
    replayed = replay_witness(prop, impl, deviation)
    if replayed.status != "deviates" or not deviation.match:
        return replayed
    search = run_property(prop, impl, base_settings, database, seed, known=deviation.match)
    if search.status == "fail":
        search.message = f"beyond the documented deviation ({deviation.match!r}): {search.message}"
        return search
    replayed.examples += search.examples
    return replayed
