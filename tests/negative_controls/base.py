"""The base of every negative control: the reference, named after the bug it carries."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from detspec.conformance.adapters.reference_adapter import ReferenceAdapter
from detspec.properties.interface import OPERATIONS, Proposals, RoiSample


class Control(ReferenceAdapter):
    """The reference, named after the bug it carries."""

    def __init__(self) -> None:
        super().__init__(name=type(self).__name__)


def positional(operation: str, pack: Callable[[np.ndarray], Any]):
    """For a control written against the reference's positional arguments and packed rows: the
    method receives the operation's arguments in interface order, and ``pack`` turns the rows it
    returns into the operation's named result."""
    names = OPERATIONS[operation].arguments

    def wrap(method):
        @functools.wraps(method)
        def call(self, **arguments):
            return pack(method(self, *(arguments[name] for name in names)))

        return call

    return wrap


def as_proposals(rows: np.ndarray) -> Proposals:
    """(K, 5) rows x1, y1, x2, y2, score."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    return Proposals(rows[:, :4], rows[:, 4])


def as_roi_sample(rows: np.ndarray) -> RoiSample:
    """(R, 10) rows x1, y1, x2, y2, label, matched GT, 4 targets."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 10)
    return RoiSample(rows[:, :4], rows[:, 4].astype(np.int64), rows[:, 5].astype(np.int64), rows[:, 6:])
