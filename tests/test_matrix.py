"""The conformance matrix: the index from per-implementation reports, cross-replay of
counterexamples, and the page checked in a real headless browser (Debian's chromium, installed
by the test set-up when missing)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
from detspec.conformance.adapters.reference_adapter import reference
from detspec.conformance.guard import GuardedImplementation
from detspec.conformance.matrix import Run, build_index, collect_inputs, failed, replay_inputs, run_one
from detspec.conformance.matrix_page import render_index
from detspec.conformance.report import build_report
from detspec.conformance.runner import run_property
from detspec.conformance.spec_index import load_clauses
from detspec.properties.registry import all_properties
from hypothesis import settings

from tests import adapters_for_tests as bad

PROPERTIES = {p.name: p for p in all_properties()}
QUICK = settings(max_examples=10, derandomize=True, database=None, deadline=None)
SOME = ("iou_is_symmetric", "iou_of_zero_area_pair_is_zero", "area_is_width_times_height")


def _report(name: str, adapter) -> dict:
    impl = GuardedImplementation(adapter)
    outcomes = [run_property(PROPERTIES[p], impl, QUICK).to_json() for p in SOME]
    header = {
        "implementation": {
            "name": name,
            "version": "1",
            "conventions": {"box_width": "continuous"},
            "facts": {},
            "isolated": False,
        },
        "suite_version": "0",
        "generated_at": "now",
        "hypothesis": {"version": "h", "profile": "detspec-dev", "seed": 1, "max_examples": 10},
        "expectations": {"path": None, "verified": {}},
        "fingerprint": {
            "box_width": {"declared": "continuous", "observed": "continuous", "evidence": "area 100"}
        },
    }
    return build_report(header, load_clauses(), PROPERTIES, outcomes, [])


@pytest.fixture(scope="module")
def index() -> dict:
    reports = {
        "reference": _report("reference", reference()),
        "returnsnan": _report("returnsnan", bad.ReturnsNaN()),
    }
    inputs = collect_inputs(reports)
    replays = {
        "reference": {"results": replay_inputs("reference", inputs)},
        "returnsnan": {"results": replay_inputs("tests.adapters_for_tests:returns_nan", inputs)},
    }
    runs = [
        Run("reference", "ran", seconds=1.0),
        Run("returnsnan", "ran", seconds=1.0),
        Run("mmdetection", "not installed", "missing mmdet: pip install 'detspec[mmdetection]'"),
    ]
    return build_index(runs, reports, inputs, replays)


def test_the_index_has_every_implementation_and_every_clause(index):
    states = {e["name"]: e["state"] for e in index["implementations"]}
    assert states == {"reference": "ran", "returnsnan": "ran", "mmdetection": "not installed"}
    assert len(index["clauses"]) == len(load_clauses())
    row = next(c for c in index["clauses"] if c["id"] == "boxes.iou.symmetric")
    assert row["results"]["reference"]["status"] == "pass"
    assert row["results"]["returnsnan"] == {
        **row["results"]["returnsnan"],
        "status": "fail",
        "code": "result.nan",
    }
    assert "input" in row["results"]["returnsnan"]
    assert failed(index) == ["returnsnan: 2 clause(s) fail"]
    json.dumps(index, allow_nan=False)


def test_a_counterexample_found_for_one_implementation_is_replayed_on_the_others(index):
    """ReturnsNaN's minimal inputs, replayed on the reference (which passes them): disagreement."""
    assert index["cross_replay"]
    for item in index["cross_replay"]:
        assert [f["implementation"] for f in item["found_by"]] == ["returnsnan"]
        assert item["results"]["reference"]["status"] == "pass"
        assert item["results"]["returnsnan"]["status"] == "fail" and item["disagree"]


def test_replay_marks_a_documented_deviation_as_such():
    """torchvision's witness for batched NMS, replayed on torchvision, is its documented deviation
    (and on the reference, a pass)."""
    pytest.importorskip("torchvision")
    inputs = [
        {
            "property": "batched_nms_is_nms_within_each_class",
            "clause": "boxes.batched-nms.per-class",
            "input": {
                "boxes": [[-10.0, -10.0, 0.0, 0.0], [-10.0, -10.0, 0.0, 0.0]],
                "scores": [0.5, 0.25],
                "classes": [0, 1],
                "iou_threshold": 0.5,
            },
        }
    ]
    (torchvision,) = replay_inputs("torchvision", inputs)
    assert (
        torchvision["status"] == "deviates" and torchvision["code"] == "batched-nms.suppressed-without-cause"
    )
    assert replay_inputs("reference", inputs) == [{"status": "pass"}]


def test_a_run_that_cannot_start_is_not_available_only_when_its_factory_says_so(tmp_path):
    """ImplementationUnavailable (no GPU, ...) is "not available" and does not fail the matrix;
    any other factory error is a broken implementation: "did not finish", and the matrix fails."""
    unavailable = run_one("tests.adapters_for_tests:factory_unavailable", tmp_path, "dev", 120)
    assert unavailable.state == "not available" and "no such device here" in unavailable.reason
    broken = run_one("tests.adapters_for_tests:factory_that_raises", tmp_path, "dev", 120)
    assert broken.state == "did not finish" and "RuntimeError: no GPU here" in broken.reason
    index = build_index([unavailable, broken], {}, [], {})
    assert failed(index) == [f"tests.adapters_for_tests:factory_that_raises: {broken.reason}"]


def test_a_run_that_exits_non_zero_fails_the_matrix_even_with_a_clean_report(index):
    entry = dict(next(e for e in index["implementations"] if e["name"] == "reference"), exit_code=1)
    assert failed({**index, "implementations": [entry]}) == ["reference: its run exited with code 1"]


# --- the page, in a real browser --------------------------------------------------------------

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium, installed when missing (the project machines have apt and root)."""
    found = shutil.which("chromium")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"], env=env, capture_output=True, timeout=900
        )
        found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not installed and could not be installed (apt-get install chromium)")
    return found


def _render(chromium: str, page, fragment: str, profile) -> tuple[str, str]:
    """The DOM after the page's script ran, and what chromium logged (blocked loads included)."""
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=3000", "--dump-dom", f"file://{page}#{fragment}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def _visible_rows(dom: str) -> list[str]:
    rows = re.findall(r"<tr class=\"clause\"([^>]*)>", dom)
    return [re.search(r'data-id="([^"]+)"', r).group(1) for r in rows if " hidden" not in r]


def test_the_page_renders_the_grid_and_filters_in_a_real_browser(index, chromium, tmp_path):
    page = tmp_path / "index.html"
    page.write_text(render_index(index))
    dom, log = _render(chromium, page, "", tmp_path / "profile-all")
    header = re.search(r"<table id=\"grid\">.*?</thead>", dom, re.S).group(0)
    assert re.findall(r"<th class=\"impl\">([^<]+)</th>", header) == ["reference", "returnsnan"]
    assert len(re.findall(r"<tr class=\"clause\"", dom)) == len(load_clauses())
    assert len(_visible_rows(dom)) == len(load_clauses())
    assert "of 100 clauses shown" in dom or f"of {len(load_clauses())} clauses shown" in dom
    # filtering by status, from the URL: only the clauses where some implementation failed
    dom, _ = _render(chromium, page, "status=fail", tmp_path / "profile-fail")
    assert sorted(_visible_rows(dom)) == ["boxes.iou.symmetric", "boxes.iou.zero-union"]
    # nothing external was loaded (the page's policy forbids it, and it asks for nothing)
    assert not re.search(r"(src|href)=\"(https?:)?//", dom)
    assert "Refused to load" not in log and "Content Security Policy" not in log
