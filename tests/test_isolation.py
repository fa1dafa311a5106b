"""Fault isolation, as a new user meets it: a misbehaving adapter fails its clauses and the run goes
on to a complete report -- serially and under xdist. Each test runs the conformance suite in a
subprocess on two properties: one that calls the broken operation (``box_iou``) and one that does
not (``box_area``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests import ROOT

SELECTION = "iou_is_symmetric or area_is_width_times_height"


def run_suite(impl: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider",
         "--detspec-impl", impl, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _report(tmp_path, name: str) -> dict:
    return json.loads((tmp_path / f"{name}.json").read_text())


def _statuses(report: dict) -> dict[str, tuple[str, str | None, str]]:
    return {c["id"]: (c["status"], c.get("code"), c.get("message", "")) for c in report["clauses"]}


@pytest.mark.parametrize(
    ("factory", "name", "death", "workers"),
    [
        ("exits", "exits", "exited with code 1", []),
        ("aborts", "aborts", "was killed by SIGABRT", []),
        ("exits", "exits", "exited with code 1", ["-n", "2"]),
    ],
    ids=["exit-serial", "abort-serial", "exit-xdist"],
)
def test_a_crashing_operation_fails_its_clauses_and_the_report_is_complete(
    tmp_path, factory, name, death, workers
):
    result = run_suite(
        f"tests.adapters_for_tests:{factory}",
        "-k",
        SELECTION,
        "--detspec-report-dir",
        str(tmp_path),
        *workers,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    statuses = _statuses(_report(tmp_path, name))
    status, code, message = statuses["boxes.iou.symmetric"]
    assert (status, code) == ("fail", "impl.crashed") and death in message
    assert statuses["boxes.area.formula"][0] == "pass"
    assert "detspec conformance" in result.stdout


def test_a_crash_without_isolation_under_xdist_is_an_error_not_a_skip(tmp_path):
    """``--detspec-isolation off``: the crash takes the xdist worker down; its clause is ``error``
    in the JSON, the run fails and the terminal summary says so."""
    result = run_suite(
        "tests.adapters_for_tests:exits",
        "-k", SELECTION, "--detspec-report-dir", str(tmp_path), "-n", "2", "--detspec-isolation", "off",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    report = _report(tmp_path, "exits")
    assert _statuses(report)["boxes.iou.symmetric"][0] == "error"
    assert report["summary"].get("error") == 1
    assert "crashed" in result.stdout


@pytest.mark.parametrize("factory", ["holds_the_gil", "busy_loops"])
def test_a_hang_is_killed_after_the_timeout_and_the_run_goes_on(tmp_path, factory):
    started = time.monotonic()
    result = run_suite(
        f"tests.adapters_for_tests:{factory}",
        "-k", SELECTION, "--detspec-report-dir", str(tmp_path), "--detspec-adapter-timeout", "0.5",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    statuses = _statuses(_report(tmp_path, factory.replace("_", "")))
    status, code, message = statuses["boxes.iou.symmetric"]
    assert (status, code) == ("fail", "impl.hung") and "did not return within 0.5 s" in message
    assert statuses["boxes.area.formula"][0] == "pass"
    assert time.monotonic() - started < 60  # the killed worker holds nothing: no slowdown


def test_a_chatty_adapter_does_not_flood_the_terminal(tmp_path):
    result = run_suite(
        "tests.adapters_for_tests:chatty",
        "-k",
        "area_is_width_times_height",
        "--detspec-report-dir",
        str(tmp_path),
    )
    assert result.returncode == 1
    assert len(result.stdout) < 20_000, len(result.stdout)
    assert _statuses(_report(tmp_path, "chatty"))["boxes.area.formula"][:2] == ("fail", "area.value")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--detspec-impl", "tests.adapters_for_tests:named_with_a_slash"], "is not a plain name"),
        (["--detspec-impl", "reference", "--detspec-adapter-timeout", "nan"], "finite number of seconds > 0"),
    ],
)
def test_bad_options_and_names_are_one_line_usage_errors(args, message):
    """Every other bad name and timeout is checked in-process (tests/test_harness.py)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTEST_XDIST_WORKER", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 4, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_malformed_expectations_fail_the_run_and_the_report_is_still_written(tmp_path):
    """Also when the run is narrowed so that the consistency test is deselected (every other
    malformed file is checked in-process, tests/test_harness.py)."""
    expectations = tmp_path / "broken.toml"
    expectations.write_bytes(b'[[deviation]]\nclause = "boxes.iou.zero-union"\nreason = 5\n')
    result = run_suite(
        "reference",
        "-k", "area_is_width_times_height", "--detspec-expectations", str(expectations),
        "--detspec-report-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    report = _report(tmp_path, "reference")
    assert report["problems"] and "PROBLEM:" in result.stdout
    assert _statuses(report)["boxes.area.formula"][0] == "pass"
