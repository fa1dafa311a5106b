"""Resolve ``--detspec-impl``: a built-in name or ``package.module:factory``.

Every way this can go wrong raises :class:`ImplementationSpecError` with one line saying what
failed, which the pytest plugin turns into a usage error (exit code 4) before any test runs.
:func:`open_implementation` also decides where the adapter runs: built-ins whose code is this
suite's own (the reference) run in-process; everything else runs in a worker process by default,
so that a crash or a hang fails its clauses instead of ending the run.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from detspec.properties.interface import OPERATIONS, Conventions, ImplementationUnavailable

BUILTIN = {
    "reference": "detspec.conformance.adapters.reference_adapter:reference",
    "reference-legacy": "detspec.conformance.adapters.reference_adapter:reference_legacy",
    "torchvision": "detspec.conformance.adapters.torchvision_adapter:torchvision_float32",
    "torchvision-cuda": "detspec.conformance.adapters.torchvision_adapter:torchvision_cuda",
    "mmdetection": "detspec.conformance.adapters.mmdetection_adapter:mmdetection",
    "onnxruntime": "detspec.conformance.adapters.onnxruntime_adapter:onnx_operators",
    "onnxruntime-torchvision": "detspec.conformance.adapters.onnxruntime_adapter:exported_torchvision",
    "openvino": "detspec.conformance.adapters.openvino_adapter:openvino",
    "openvino-legacy": "detspec.conformance.adapters.openvino_adapter:openvino_legacy",
}
#: The optional extra (pyproject.toml) each built-in needs.
EXTRAS = {
    "reference": "",
    "reference-legacy": "",
    "torchvision": "torchvision",
    "torchvision-cuda": "torchvision",
    "mmdetection": "mmdetection",
    "onnxruntime": "onnxruntime",
    "onnxruntime-torchvision": "onnxruntime",
    "openvino": "openvino",
    "openvino-legacy": "openvino",
}
#: Built-ins that may run in the suite's own process (pure NumPy, this project's code).
IN_PROCESS = frozenset({"reference", "reference-legacy"})
#: An adapter's name becomes a file name (reports, expectations): no path separators, no dots first.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+.-]{0,63}")


class ImplementationSpecError(Exception):
    """``--detspec-impl`` does not name a usable implementation."""


#: What the error of an implementation that cannot run on this machine says (the matrix lists it
#: as "not available"; every other start error is a broken implementation).
UNAVAILABLE = "not available on this machine"


def check_adapter_name(name: Any, spec: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise ImplementationSpecError(
            f"--detspec-impl {spec!r}: adapter name {name!r} is not a plain name (letters, digits, "
            "'_', '-', '.', '+'; no path separators; at most 64 characters)"
        )
    if spec not in BUILTIN and name in BUILTIN:
        raise ImplementationSpecError(
            f"--detspec-impl {spec!r}: adapter name {name!r} is a built-in implementation's name; "
            "choose another (its expectations would be taken for yours)"
        )
    return name


def load_adapter(spec: str) -> Any:
    target = BUILTIN.get(spec, spec)
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise ImplementationSpecError(
            f"--detspec-impl {spec!r}: not a built-in implementation ({', '.join(BUILTIN)}) "
            "and not of the form package.module:factory"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        hint = ""
        if spec in BUILTIN and isinstance(error, ImportError) and EXTRAS.get(spec):
            hint = f"; its libraries come with pip install 'detspec[{EXTRAS[spec]}]'"
        raise ImplementationSpecError(
            f"--detspec-impl {spec!r}: cannot import module {module_name!r} "
            f"({type(error).__name__}: {error}){hint}"
        ) from None
    factory = getattr(module, attribute, None)
    if factory is None:
        raise ImplementationSpecError(
            f"--detspec-impl {spec!r}: module {module_name!r} has no attribute {attribute!r}"
        )
    if not callable(factory):
        raise ImplementationSpecError(f"--detspec-impl {spec!r}: {target} is not callable")
    try:
        adapter = factory()
    except ImplementationUnavailable as error:
        raise ImplementationSpecError(f"--detspec-impl {spec!r}: {UNAVAILABLE}: {error}") from None
    except Exception as error:
        raise ImplementationSpecError(
            f"--detspec-impl {spec!r}: the factory raised {type(error).__name__}: {error}"
        ) from None
    for attribute_name in ("name", "version"):
        if not isinstance(getattr(adapter, attribute_name, None), str):
            raise ImplementationSpecError(
                f"--detspec-impl {spec!r}: the adapter has no string attribute {attribute_name!r}"
            )
    check_adapter_name(adapter.name, spec)
    if not isinstance(getattr(adapter, "conventions", None), Conventions):
        raise ImplementationSpecError(
            f"--detspec-impl {spec!r}: the adapter's 'conventions' is not a detspec.Conventions"
        )
    if not any(callable(getattr(adapter, op, None)) for op in OPERATIONS):
        raise ImplementationSpecError(
            f"--detspec-impl {spec!r}: the adapter provides none of the operations {', '.join(OPERATIONS)}"
        )
    return adapter


def open_implementation(spec: str, timeout_s: float, isolate: bool | None = None):
    """The guarded implementation named by ``spec``; ``isolate`` None means the default (a worker
    process for everything but :data:`IN_PROCESS`)."""
    from detspec.conformance.guard import GuardedImplementation
    from detspec.conformance.worker import WorkerCaller, WorkerStartError

    if isolate is None:
        isolate = spec not in IN_PROCESS
    if not isolate:
        impl = GuardedImplementation(load_adapter(spec), timeout_s)
    else:
        try:
            caller = WorkerCaller(spec)
        except WorkerStartError as error:
            raise ImplementationSpecError(str(error)) from None
        impl = GuardedImplementation(timeout_s=timeout_s, caller=caller)
    impl.spec = spec
    return impl
