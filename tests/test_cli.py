"""The suite as its users run it: ``python -m pytest conformance --impl ...`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests import ROOT


def _run_conformance(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_unknown_impl_stops_with_a_one_line_error():
    result = _run_conformance("--detspec-impl", "no_such_package.adapter:make")
    assert result.returncode == 4, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert errors == [
        "ERROR: --detspec-impl 'no_such_package.adapter:make': cannot import module "
        "'no_such_package.adapter' (ModuleNotFoundError: No module named 'no_such_package')"
    ]


def test_torchvision_with_broken_box_ops_fails_the_run():
    result = _run_conformance(
        "--detspec-impl",
        "tests.adapters_for_tests:broken_torchvision",
        "--detspec-expectations",
        "conformance/expectations/torchvision.toml",
        "-k",
        "iou_matches_formula or nms_keeps_score_order",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL broken-torchvision [boxes.iou.formula]" in result.stdout
    assert "FAIL broken-torchvision [boxes.nms.sorted]" in result.stdout
    assert "minimal input:" in result.stdout


def test_report_files_describe_every_clause(tmp_path):
    # The properties asserted on below, the figures and the expectations check: enough to check
    # the report's structure end to end (every other clause is listed as not run).
    result = _run_conformance(
        "--detspec-impl",
        "torchvision",
        "--detspec-report-dir",
        str(tmp_path),
        "-k",
        "zero-union or at-threshold or figures or consistent",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "torchvision.json").read_text())
    assert report["implementation"]["name"] == "torchvision"
    assert report["implementation"]["version"].startswith("torchvision 0.29.1")
    assert {"suite_version", "hypothesis", "clauses"} <= set(report)
    assert {"profile", "seed"} <= set(report["hypothesis"])
    statuses = {c["id"]: c["status"] for c in report["clauses"]}
    assert statuses["boxes.iou.zero-union"] == "deviates"
    assert statuses["boxes.nms.at-threshold"] == "pass"
    deviating = next(c for c in report["clauses"] if c["id"] == "boxes.iou.zero-union")
    assert deviating["reason"] and deviating["code"] == "result.nan"
    (outcome,) = deviating["properties"]
    assert outcome["minimal_input"] and "actual" in outcome
    assert {c["status"] for c in report["clauses"]} <= {"pass", "deviates", "not-run", "untested"}
    page = (tmp_path / "torchvision.html").read_text()
    assert page.count("<tr style='background") == len(report["clauses"])
    assert page.count("data:image/png;base64") == 8  # the Fourier figure: 2 rows of 4 images
    assert "detspec conformance" in result.stdout


def test_adapter_failing_while_a_figure_is_drawn_does_not_fail_the_run(tmp_path):
    result = _run_conformance(
        "--detspec-impl",
        "tests.adapters_for_tests:anchors_raise",
        "-k",
        "figures",
        "--detspec-report-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads((tmp_path / "anchorsraise.json").read_text())["figures"]
    assert any("not drawn: ImplementationRaised" in f["caption"] for f in figures)
