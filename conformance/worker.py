"""Run an implementation's operations in a worker process, so that a crash, an abort or a hang that
holds the GIL kills only the worker, never the run.

:class:`WorkerCaller` starts one worker per implementation (``spawn``: a fresh interpreter that
loads the adapter from its ``--detspec-impl`` spec) and reuses it for every call. Arguments and
results travel pickled over a pipe (NumPy arrays as raw buffers). The parent enforces the time
limit: a call that does not come back in time gets the worker killed; a worker that dies is
reported as "exited with code N" or "killed by SIGABRT", and a new one is started for the next
call. The worker's own stdout and stderr go to a log file, whose tail is quoted when it dies.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from detspec.conformance.guard import first_line, hung_before
from detspec.properties.interface import ImplementationCrashed, ImplementationHung, ImplementationRaised

#: Seconds a worker may take to import its adapter (torch, a runtime) and answer.
STARTUP_TIMEOUT_S = 300.0
#: An operation that crashes the worker this many times is not called again (each crash costs a
#: restart; the report keeps the last input that really crashed it).
CRASH_BUDGET = 3
LOG_TAIL_CHARS = 600


class WorkerStartError(Exception):
    """The worker could not load the adapter (the message is the one-line reason)."""


def _serve(spec: str, connection, log_path: str) -> None:  # runs in the worker process
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    from detspec.conformance.guard import provided_operations
    from detspec.conformance.loader import ImplementationSpecError, load_adapter

    try:
        adapter = load_adapter(spec)
    except ImplementationSpecError as error:
        connection.send(("error", str(error)))
        return
    except BaseException as error:  # whatever a factory does, the parent gets one line
        connection.send(("error", f"--detspec-impl {spec!r}: {type(error).__name__}: {error}"))
        return
    connection.send(
        (
            "ready",
            {
                "name": adapter.name,
                "version": adapter.version,
                "conventions": adapter.conventions,
                "operations": provided_operations(adapter),
                "facts": dict(getattr(adapter, "facts", {}) or {}),
                "expectations_name": str(getattr(adapter, "expectations_name", "") or adapter.name),
            },
        )
    )
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message is None:
            return
        operation, arguments = message
        try:
            value = getattr(adapter, operation)(**arguments)
        except BaseException as error:
            where = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
            location = f" (at {where[0].filename}:{where[0].lineno})" if where else ""
            connection.send(("raised", type(error).__name__, first_line(error) + location))
            continue
        try:
            connection.send(("ok", value))
        except Exception as error:  # an unpicklable result
            connection.send(("raised", type(error).__name__, f"the result could not be sent back: {error}"))


def _death(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


class WorkerCaller:
    """Calls the adapter named by ``spec`` in a worker process (see the module docstring)."""

    isolated = True

    def __init__(self, spec: str, startup_timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        self.spec = spec
        self.startup_timeout_s = startup_timeout_s
        self._context = multiprocessing.get_context("spawn")
        self._process = None
        self._connection = None
        self._hung: set[str] = set()
        self._crashes: dict[str, int] = {}
        handle, self.log_path = tempfile.mkstemp(prefix="detspec-worker-", suffix=".log")
        os.close(handle)
        info = self._start()
        self.name: str = info["name"]
        self.version: str = info["version"]
        self.conventions = info["conventions"]
        self.operations: frozenset[str] = info["operations"]
        self.facts: dict[str, Any] = info["facts"]
        self.expectations_name: str = info["expectations_name"]

    def _start(self) -> dict[str, Any]:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(self.spec, child, self.log_path), name=f"detspec-{self.spec}", daemon=True
        )
        process.start()
        child.close()
        if not parent.poll(self.startup_timeout_s):
            process.kill()
            raise WorkerStartError(
                f"--detspec-impl {self.spec!r}: the worker did not start within {self.startup_timeout_s:g} s"
            )
        try:
            kind, payload = parent.recv()
        except EOFError:
            process.join(5)
            raise WorkerStartError(
                f"--detspec-impl {self.spec!r}: the worker {_death(process.exitcode)} while loading the "
                f"adapter{self._log_tail()}"
            ) from None
        if kind == "error":
            process.join(5)
            raise WorkerStartError(payload)
        self._process, self._connection = process, parent
        return payload

    def _log_tail(self) -> str:
        try:
            text = Path(self.log_path).read_text(errors="replace").strip()
        except OSError:
            return ""
        return f"; its last output: {text[-LOG_TAIL_CHARS:]!r}" if text else ""

    def _stop(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        if self._connection is not None:
            self._connection.close()
        self._process = self._connection = None

    def call(self, operation: str, arguments: dict[str, Any], timeout_s: float) -> Any:
        label = f"{self.name}.{operation}"
        if operation in self._hung:
            raise hung_before(label, timeout_s)
        if self._crashes.get(operation, 0) >= CRASH_BUDGET:
            raise ImplementationCrashed(
                f"{label} crashed the worker {CRASH_BUDGET} times; not called again in this run", again=True
            )
        if self._process is None or not self._process.is_alive():
            self._stop()
            try:
                self._start()
            except WorkerStartError as error:  # the adapter loaded once: its restart is its failure
                self._crashes[operation] = self._crashes.get(operation, 0) + 1
                raise ImplementationCrashed(f"{label}: the worker could not restart: {error}") from None
        Path(self.log_path).write_text("")  # the log tail quoted on a crash is this call's output
        try:
            self._connection.send((operation, arguments))
            answered = self._connection.poll(timeout_s)
        except (BrokenPipeError, EOFError, OSError):
            answered = True
        if not answered:
            self._stop()
            self._hung.add(operation)
            raise ImplementationHung(
                f"{label} did not return within {timeout_s:g} s (its worker process was killed)"
            )
        try:
            message = self._connection.recv()
        except (EOFError, OSError):
            self._process.join(5)
            death = _death(self._process.exitcode)
            self._crashes[operation] = self._crashes.get(operation, 0) + 1
            tail = self._log_tail()
            self._stop()
            raise ImplementationCrashed(f"{label}: the worker process {death}{tail}") from None
        if message[0] == "ok":
            return message[1]
        _, error_type, text = message
        raise ImplementationRaised(f"{label} raised {error_type}: {text}", None, error_type)

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.send(None)
        if self._process is not None:
            self._process.join(2)
        self._stop()
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        with contextlib.suppress(Exception):
            self._stop()


def _main() -> None:  # pragma: no cover - debugging aid: python -m detspec.conformance.worker SPEC
    caller = WorkerCaller(sys.argv[1])
    print(caller.name, caller.version, sorted(caller.operations))
    caller.close()


if __name__ == "__main__":
    _main()
