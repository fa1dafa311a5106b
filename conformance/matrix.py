"""The conformance matrix: every built-in implementation side by side, as wpt.fyi does for browsers.

``detspec matrix`` (``make matrix``) runs ``detspec run`` for every built-in implementation, in
parallel where the cores allow; an implementation whose libraries are missing is listed as "not
installed", one that cannot run here (no GPU) as "not available" -- never silently dropped. Then
every minimal counterexample and witness any implementation produced is **cross-replayed** on
every other one (under each one's own conventions): "this input makes torchvision and ONNX
Runtime disagree". It writes ``reports/index.json`` and ``reports/index.html`` next to the
per-implementation reports (:mod:`detspec.conformance.matrix_page` draws the page).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detspec.conformance.guard import DEFAULT_TIMEOUT_S
from detspec.conformance.loader import EXTRAS, UNAVAILABLE
from detspec.conformance.report import worst_outcome

from detspec import suite_version

#: The libraries each extra brings; an implementation is "not installed" without them.
EXTRA_MODULES = {
    "": (),
    "torchvision": ("torch", "torchvision"),
    "mmdetection": ("torch", "torchvision", "mmdet", "mmengine", "mmcv"),
    "onnxruntime": ("torch", "torchvision", "onnxruntime", "onnx"),
    "openvino": ("openvino",),
}
#: Longest first, so that the slow runs start early.
ORDER = (
    "mmdetection",
    "torchvision",
    "onnxruntime-torchvision",
    "reference",
    "reference-legacy",
    "openvino",
    "openvino-legacy",
    "onnxruntime",
    "torchvision-cuda",
)


@dataclass
class Run:
    name: str
    state: str  # "ran", "not installed", "not available", "did not finish"
    reason: str = ""
    seconds: float = 0.0
    exit_code: int | None = None


def missing_modules(name: str) -> list[str]:
    """The libraries a built-in implementation's extra brings that are not importable (none for
    an implementation that is not built in: its own import errors say what is missing)."""
    return [m for m in EXTRA_MODULES[EXTRAS.get(name, "")] if importlib.util.find_spec(m) is None]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTEST_XDIST_WORKER", None)
    return env


def run_one(name: str, report_dir: Path, profile: str, timeout_s: float) -> Run:
    missing = missing_modules(name)
    if missing:
        return Run(
            name, "not installed", f"missing {', '.join(missing)}: pip install 'detspec[{EXTRAS[name]}]'"
        )
    command = [sys.executable, "-m", "detspec.conformance.cli", "run", "--impl", name]
    command += ["--report-dir", str(report_dir), "--profile", profile]
    started = time.monotonic()
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, env=_environment()
        )
    except subprocess.TimeoutExpired:
        return Run(name, "did not finish", f"no report within {timeout_s:g} s", timeout_s)
    elapsed = time.monotonic() - started
    (report_dir / f"{name}.log").write_text(
        result.stdout[-200_000:] + result.stderr[-50_000:], encoding="utf-8"
    )
    errors = [
        line.removeprefix("ERROR: ") for line in result.stderr.splitlines() if line.startswith("ERROR:")
    ]
    if result.returncode == 4 and errors and UNAVAILABLE in errors[0]:  # no GPU, ...: not a failure
        return Run(name, "not available", errors[0], elapsed, 4)
    if not (report_dir / f"{name}.json").exists():
        why = errors[0] if errors else "no report"
        return Run(
            name, "did not finish", f"exit code {result.returncode}: {why}", elapsed, result.returncode
        )
    return Run(name, "ran", "", elapsed, result.returncode)


# --- cross-replay -----------------------------------------------------------------------------


def collect_inputs(reports: dict[str, dict]) -> list[dict[str, Any]]:
    """Every minimal input or witness any implementation's report holds, once per property."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for name, report in reports.items():
        for clause in report["clauses"]:
            for outcome in clause.get("properties", []):
                if outcome["status"] not in ("fail", "deviates") or "minimal_input" not in outcome:
                    continue
                key = (outcome["property"], json.dumps(outcome["minimal_input"], sort_keys=True))
                entry = seen.setdefault(
                    key,
                    {
                        "property": outcome["property"],
                        "clause": outcome["clause"],
                        "input": outcome["minimal_input"],
                        "found_by": [],
                    },
                )
                entry["found_by"].append(
                    {"implementation": name, "status": outcome["status"], "code": outcome.get("code")}
                )
    return list(seen.values())


def replay_inputs(
    spec: str, inputs: list[dict[str, Any]], timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[dict[str, Any]]:
    """Each input run once through its property on one implementation
    (:func:`~detspec.conformance.runner.replay_input`): pass, fail (code), a documented deviation
    of that implementation (deviates), or why it could not run."""
    from detspec.conformance.expectations import expectations_path, load_expectations
    from detspec.conformance.loader import open_implementation
    from detspec.conformance.runner import UnreadableInput, replay_input
    from detspec.conformance.spec_index import load_clauses
    from detspec.properties.registry import all_properties

    properties = {p.name: p for p in all_properties()}
    impl = open_implementation(spec, timeout_s)
    expectations = load_expectations(
        expectations_path(impl.expectations_name), set(load_clauses()), properties, impl.facts
    )
    results = []
    try:
        for item in inputs:
            prop = properties.get(item["property"])
            if prop is None:
                results.append({"status": "error", "message": f"unknown property {item['property']}"})
                continue
            try:
                outcome = replay_input(prop, impl, item["input"], expectations.for_property(prop))
            except UnreadableInput as error:
                results.append({"status": "error", "message": f"unreadable input: {error}"[:300]})
                continue
            result = {
                "status": str(outcome.status),
                "code": outcome.code,
                "message": (outcome.message or "")[:300],
            }
            results.append({key: value for key, value in result.items() if value})
    finally:
        impl.close()
    return results


def replay_on(name: str, inputs_path: Path, report_dir: Path, timeout_s: float) -> dict[str, Any]:
    out = report_dir / f"{name}.replay.json"
    command = [sys.executable, "-m", "detspec.conformance.matrix", "replay", "--impl", name]
    command += ["--inputs", str(inputs_path), "--out", str(out)]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, env=_environment()
        )
    except subprocess.TimeoutExpired:
        return {"error": f"the replay did not finish within {timeout_s:g} s"}
    if result.returncode != 0 or not out.exists():
        return {"error": (result.stderr.strip().splitlines() or ["the replay failed"])[-1][:300]}
    return {"results": json.loads(out.read_text(encoding="utf-8"))}


# --- the index --------------------------------------------------------------------------------


def build_index(
    runs: list[Run], reports: dict[str, dict], inputs: list[dict], replays: dict[str, dict]
) -> dict:
    from detspec.conformance.spec_index import load_clauses

    implementations = []
    for run in runs:
        entry: dict[str, Any] = {
            "name": run.name,
            "state": run.state,
            "reason": run.reason,
            "seconds": round(run.seconds, 1),
            "exit_code": run.exit_code,
        }
        report = reports.get(run.name)
        if report is not None:
            implementation = report["implementation"]
            entry.update(
                version=implementation["version"],
                conventions=implementation["conventions"],
                facts=implementation.get("facts", {}),
                fingerprint=report.get("fingerprint", {}),
                summary=report["summary"],
                problems=report["problems"],
                report=f"{run.name}.html",
                profile=report["hypothesis"]["profile"],
            )
        implementations.append(entry)
    ran = [run.name for run in runs if run.name in reports]
    clauses = []
    for clause in load_clauses().values():
        row: dict[str, Any] = {
            "id": clause.id,
            "area": clause.path.stem,  # the spec file: clauses are grouped as the spec is
            "level": clause.level,
            "text": clause.text,
            "results": {},
        }
        for name in ran:
            verdict = next(c for c in reports[name]["clauses"] if c["id"] == clause.id)
            result = {"status": verdict["status"]}
            for key in ("code", "message", "property", "reason"):
                if verdict.get(key):
                    result[key] = verdict[key]
            worst = worst_outcome(verdict) or {}
            if "minimal_input" in worst:
                result["input"] = worst["minimal_input"]
            if worst.get("extra", {}).get("repro"):
                result["repro"] = worst["extra"]["repro"]
            row["results"][name] = result
        clauses.append(row)
    cross = []
    for position, item in enumerate(inputs):
        results = {}
        for name in ran:
            replay = replays.get(name, {})
            if "error" in replay:
                results[name] = {"status": "error", "message": replay["error"]}
            else:
                results[name] = replay["results"][position]
        statuses = {r["status"] for r in results.values()}
        # only verdicts on the input count: one that holds the spec, one that does not
        disagree = "pass" in statuses and bool(statuses & {"fail", "deviates"})
        cross.append({**item, "results": results, "disagree": disagree})
    return {
        "suite_version": suite_version(),
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "implementations": implementations,
        "clauses": clauses,
        "cross_replay": cross,
    }


def failed(index: dict) -> list[str]:
    """Why the matrix fails: an implementation that ran with fail/error/xpass or problems, whose
    run exited non-zero all the same, or that did not finish (or could not start)."""
    reasons = []
    for entry in index["implementations"]:
        if entry["state"] == "did not finish":
            reasons.append(f"{entry['name']}: {entry['reason']}")
        if entry["state"] == "ran" and entry.get("exit_code"):
            reasons.append(f"{entry['name']}: its run exited with code {entry['exit_code']}")
        for status in ("fail", "error", "xpass"):
            if entry.get("summary", {}).get(status):
                reasons.append(f"{entry['name']}: {entry['summary'][status]} clause(s) {status}")
        if entry.get("problems"):
            reasons.append(f"{entry['name']}: {len(entry['problems'])} problem(s)")
    return reasons


def run_matrix(report_dir: Path, names: list[str], jobs: int, profile: str, timeout_s: float) -> int:
    from detspec.conformance.matrix_page import render_index

    report_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for name in names:
        (report_dir / f"{name}.json").unlink(missing_ok=True)
    with ThreadPoolExecutor(jobs) as pool:
        runs = list(pool.map(lambda n: run_one(n, report_dir, profile, timeout_s), names))
    for run in runs:
        print(f"  {run.name:<26} {run.state:<15} {run.seconds:6.1f} s  {run.reason}")
    reports = {
        run.name: json.loads((report_dir / f"{run.name}.json").read_text(encoding="utf-8"))
        for run in runs
        if run.state == "ran"
    }
    inputs = collect_inputs(reports)
    inputs_path = report_dir / "cross-replay-inputs.json"
    inputs_path.write_text(json.dumps(inputs), encoding="utf-8")
    with ThreadPoolExecutor(jobs) as pool:
        replays = dict(
            zip(
                reports,
                pool.map(lambda n: replay_on(n, inputs_path, report_dir, timeout_s), reports),
                strict=True,
            )
        )
    index = build_index(runs, reports, inputs, replays)
    index["seconds"] = round(time.monotonic() - started, 1)
    (report_dir / "index.json").write_text(
        json.dumps(index, indent=1, allow_nan=False) + "\n", encoding="utf-8"
    )
    (report_dir / "index.html").write_text(render_index(index), encoding="utf-8")
    print(f"wrote {report_dir / 'index.json'} and {report_dir / 'index.html'} ({index['seconds']:.0f} s)")
    reasons = failed(index)
    for reason in reasons:
        print(f"  FAILED: {reason}")
    return 1 if reasons else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="detspec matrix", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    replay = commands.add_parser(
        "replay", help="(internal) replay the collected inputs on one implementation"
    )
    replay.add_argument("--impl", required=True)
    replay.add_argument("--inputs", required=True, type=Path)
    replay.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.command == "replay":
        inputs = json.loads(args.inputs.read_text(encoding="utf-8"))
        args.out.write_text(json.dumps(replay_inputs(args.impl, inputs)), encoding="utf-8")
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
