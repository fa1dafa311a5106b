"""Self-test mode: every negative control caught when its test runs alone, in a fresh interpreter.

``make controls`` (or ``python -m tests.controls_alone [-j N] [NAME ...]``) runs
``tests/test_negative_controls.py::test_property_catches_its_broken_implementation[NAME]`` in its
own process for every control, ``-j`` at a time, and lists any that is not caught. Inside the
whole suite the same searches run (their seeds depend on the property's name only), so a control
caught here is caught there too, whatever ran before.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from tests import ROOT
from tests.negative_controls import CONTROLS

TEST = "tests/test_negative_controls.py::test_property_catches_its_broken_implementation"


def run_alone(name: str) -> tuple[str, bool, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTEST_XDIST_WORKER", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            f"{TEST}[{name}]",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return name, result.returncode == 0, result.stdout[-2000:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("names", nargs="*", help="controls to run (default: all)")
    args = parser.parse_args(argv)
    names = args.names or sorted(CONTROLS)
    started = time.monotonic()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run_alone, names))
    missed = [(name, output) for name, caught, output in results if not caught]
    for name, output in missed:
        print(f"NOT CAUGHT ALONE: {name}\n{output}\n")
    elapsed = time.monotonic() - started
    print(f"{len(names) - len(missed)} of {len(names)} controls caught alone ({elapsed:.0f} s)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
