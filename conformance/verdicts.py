"""Verdicts: what happened to a property, and to a clause. One meaning each (spec/INTERPRETING.md)."""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    FAIL = "fail"  # a counterexample, shrunk
    ERROR = "error"  # the property could not finish: a crashed pytest-xdist worker, a suite bug
    XPASS = "xpass"  # a documented deviation whose witness now passes
    DEVIATES = "deviates"  # a documented deviation, still reproduced, and nothing beyond it
    PASS = "pass"  # no counterexample among the examples run
    UNSUPPORTED = "unsupported"  # the adapter declares it lacks a capability the property needs
    SKIP = "skip"  # not applicable under the declared conventions
    NOT_PROVIDED = "not-provided"  # the adapter lacks an operation the property needs
    NOT_RUN = "not-run"  # the property exists but was not run in this session (deselected)
    UNTESTED = "untested"  # no property checks the clause

    @property
    def fails_the_run(self) -> bool:
        return self in (Verdict.FAIL, Verdict.ERROR, Verdict.XPASS)


#: When several properties check one clause, the clause takes the first of their verdicts here.
SEVERITY = (
    Verdict.FAIL,
    Verdict.ERROR,
    Verdict.XPASS,
    Verdict.DEVIATES,
    Verdict.PASS,
    Verdict.UNSUPPORTED,
    Verdict.SKIP,
    Verdict.NOT_PROVIDED,
    Verdict.NOT_RUN,
    Verdict.UNTESTED,
)


def worst(verdicts) -> Verdict:
    return min((Verdict(v) for v in verdicts), key=SEVERITY.index, default=Verdict.UNTESTED)
