"""Repro snippets: every ``fail`` and ``deviates`` entry carries self-contained code that reproduces
it with the implementation's own API, and the one command that replays it through detspec.

The property is run once more on its minimal input with the calls recorded; the call shown is the
one the deviant model describes (a deviation) or the last call before the failure. The adapter may
write the snippet in its library's own terms (``repro_snippet(operation, arguments)``, e.g.
``torchvision.ops.batched_nms(torch.tensor(...), ...)``); otherwise the snippet calls the adapter.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from typing import Any

import numpy as np
from detspec.conformance.guard import Call, GuardedImplementation
from detspec.conformance.loader import BUILTIN
from detspec.properties.registry import Example, Property

#: Inputs longer than this (as JSON) are not spelled out in the command; the report holds them.
INLINE_CHARS = 4000


def literal(value: Any) -> str:
    """Python source for an argument value: arrays as ``np.array([...], dtype=...)``."""
    if isinstance(value, np.ndarray):
        body = repr(value.tolist()).replace("nan", "float('nan')").replace("inf", "float('inf')")
        return f"np.array({body}, dtype=np.{value.dtype})"
    if isinstance(value, list | tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, float) and not np.isfinite(value):
        return f"float('{value}')"
    return repr(value)


def adapter_snippet(spec: str | None, operation: str, arguments: dict[str, Any]) -> str:
    """The call through the detspec adapter (any implementation)."""
    target = BUILTIN.get(spec or "", spec or "your_adapter_module:factory")
    module, _, factory = target.partition(":")
    keywords = ",\n    ".join(f"{name}={literal(value)}" for name, value in arguments.items())
    return (
        f"import numpy as np\nfrom {module} import {factory}\n\n"
        f"result = {factory}().{operation}(\n    {keywords},\n)\nprint(result)\n"
    )


def replay_command(impl: GuardedImplementation, prop: Property, example: Example) -> str:
    text = json.dumps(example.to_jsonable())
    argument = shlex.quote(text) if len(text) <= INLINE_CHARS else "@input.json"
    command = (
        f"python -m pytest --pyargs detspec.conformance.test_conformance --detspec-impl "
        f"{shlex.quote(impl.spec or impl.name)} -k {shlex.quote(prop.name)} --detspec-input {argument}"
    )
    if argument.startswith("@"):
        command += "  # input.json: this entry's minimal_input, from the report"
    return command


def culprit(calls: list[Call], operation: str | None) -> Call | None:
    if operation is not None:
        chosen = [c for c in calls if c.operation == operation]
        if chosen:
            return chosen[-1]
    return calls[-1] if calls else None


def repro(
    impl: GuardedImplementation, prop: Property, example: Example, operation: str | None = None
) -> dict:
    """``{"snippet": ..., "command": ..., "operation": ...}`` for one failing or deviating input."""
    with impl.recording() as recording, contextlib.suppress(Exception):  # the failure reproduced
        prop.run(impl, example)
    call = culprit(recording.calls, operation)
    out = {"command": replay_command(impl, prop, example)}
    if call is None:
        return out
    own = impl.repro_snippet(call.operation, call.arguments)
    out.update(
        operation=call.operation, snippet=own or adapter_snippet(impl.spec, call.operation, call.arguments)
    )
    return out
