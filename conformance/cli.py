"""The ``detspec`` command: run the shipped conformance suite from any directory, and the tools
around it.

``detspec run --impl NAME|PKG.MOD:FACTORY [--report-dir DIR] [--profile dev|ci|thorough] [-n N]``
    the conformance suite against one implementation; writes ``DIR/<name>.json`` and ``.html``.
``detspec update-expectations REPORT.json [-o FILE]``
    a draft expectations file from a report's failures, for a human to finish (reasons, models).
``detspec matrix [--report-dir DIR] [--impl NAME ...] [-j N]``
    every built-in implementation side by side: ``DIR/index.{json,html}`` and the per-implementation
    reports, counterexamples cross-replayed (``conformance/matrix.py``).
``detspec fingerprint --impl NAME|PKG.MOD:FACTORY``
    which value of each convention the implementation follows, declared against observed, and a
    ``Conventions(...)`` line to start an adapter from.
``detspec list``
    the built-in implementations and whether their libraries are installed.

Options after ``--`` go to pytest unchanged (``--junitxml``, ``-k``, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from detspec.conformance.loader import BUILTIN, EXTRAS

TEST_MODULE = "detspec.conformance.test_conformance"


def pytest_command(args: argparse.Namespace, extra: list[str], config: Path) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-c", str(config), "--rootdir", str(Path.cwd())]
    command += ["-p", "no:cacheprovider", "--pyargs", TEST_MODULE, "--detspec-impl", args.impl]
    command += ["--detspec-report-dir", str(args.report_dir), "--detspec-profile", args.profile, "-q"]
    if args.expectations:
        command += ["--detspec-expectations", str(args.expectations)]
    if args.adapter_timeout is not None:
        command += ["--detspec-adapter-timeout", str(args.adapter_timeout)]
    if args.isolation:
        command += ["--detspec-isolation", args.isolation]
    if args.workers:
        command += ["-n", str(args.workers)]
    return command + extra


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Runs pytest on the shipped suite in a fresh process, with no configuration file of the
    working directory's (a user project's ``addopts`` must not change the suite)."""
    with tempfile.TemporaryDirectory(prefix="detspec-") as scratch:
        config = Path(scratch) / "pytest.ini"
        config.write_text("[pytest]\n", encoding="utf-8")
        return subprocess.call(pytest_command(args, extra, config))


def _toml_value(value: Any) -> str:
    """A TOML inline value for a JSON value (tables inline, NaN and inf as the report spells them)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml_value(v)}" for key, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)  # strings: JSON escapes are valid TOML basic-string escapes


def draft_expectations(report: dict[str, Any]) -> str:
    """One draft ``[[deviation]]`` per failing property of a report: clause, property, code and
    witness filled in; ``reason`` and ``model`` left for a human (the loader reports the missing
    model as a problem until it is written)."""
    implementation = report["implementation"]
    lines = [
        f"# Draft expectations for {implementation['name']} ({implementation['version']}), written by",
        "# `detspec update-expectations` from a report. For each entry: confirm that it is a deviation and",
        "# not a convention the adapter should declare, write the reason, and write a deviant model (a",
        "# function computing what the implementation returns; see detspec.conformance.deviations) in a",
        "# module of yours, name it in `models` and set each entry's `model` to its function.",
        "# Format: detspec/conformance/expectations.py.",
        "",
        f'# models = "{implementation["name"].replace("-", "_")}_deviations"',
        "",
        "[verified]",
        f"{_bare_key(implementation['name'])} = {json.dumps(implementation['version'])}",
    ]
    for clause in report["clauses"]:
        for outcome in clause.get("properties", []):
            if outcome["status"] != "fail" or "minimal_input" not in outcome:
                continue
            lines += [
                "",
                "[[deviation]]",
                f'clause = "{outcome["clause"]}"',
                f'property = "{outcome["property"]}"',
                f'codes = ["{outcome.get("code", "property.error")}"]',
                'model = ""',
                f"reason = {json.dumps('TODO: ' + (outcome.get('message') or '')[:300])}",
                f"witness = {_toml_value(outcome['minimal_input'])}",
            ]
    return "\n".join(lines) + "\n"


def _bare_key(name: str) -> str:
    return name if all(c.isalnum() or c in "-_" for c in name) else json.dumps(name)


def update_expectations(args: argparse.Namespace) -> int:
    try:
        report = json.loads(Path(args.report).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"detspec update-expectations: cannot read {args.report}: {error}", file=sys.stderr)
        return 2
    text = draft_expectations(report)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({text.count('[[deviation]]')} draft entries)")
    else:
        sys.stdout.write(text)
    return 0


def fingerprint_command(args: argparse.Namespace) -> int:
    from detspec.conformance.fingerprint import fingerprint, suggested_conventions
    from detspec.conformance.guard import DEFAULT_TIMEOUT_S
    from detspec.conformance.loader import ImplementationSpecError, open_implementation

    try:
        impl = open_implementation(args.impl, DEFAULT_TIMEOUT_S)
    except ImplementationSpecError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 4
    try:
        observations = fingerprint(impl)
    finally:
        impl.close()
    print(f"{impl.name} ({impl.version})")
    for o in observations:
        verdict = "MISMATCH" if not o.agrees else ("?" if o.observed is None else "ok")
        observed = o.observed or "-"
        columns = f"{o.convention:<24} declared {o.declared:<14} observed {observed:<14} {verdict:<8}"
        print(f"  {columns} {o.evidence}")
    print(suggested_conventions(observations))
    return 1 if any(not o.agrees for o in observations) else 0


def list_implementations(_args: argparse.Namespace) -> int:
    """Each built-in implementation, and whether the libraries its extra brings are importable."""
    from detspec.conformance.matrix import missing_modules

    for name in BUILTIN:
        missing, extra = missing_modules(name), EXTRAS.get(name)
        if missing:
            state = f"not installed (missing {', '.join(missing)}: pip install 'detspec[{extra}]')"
        else:
            state = f"installed ({f'extra detspec[{extra}]' if extra else 'no extra needed'})"
        print(f"{name:<26} {state}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="detspec", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run the conformance suite against one implementation")
    run_parser.add_argument("--impl", required=True, help="a built-in name or package.module:factory")
    run_parser.add_argument("--report-dir", default="reports", type=Path)
    run_parser.add_argument("--profile", choices=("dev", "ci", "thorough"), default="dev")
    run_parser.add_argument("--expectations", type=Path)
    run_parser.add_argument("--adapter-timeout", type=float)
    run_parser.add_argument("--isolation", choices=("auto", "on", "off"))
    run_parser.add_argument("-n", "--workers", help="pytest-xdist workers (a number or 'auto')")
    update = commands.add_parser("update-expectations", help="draft expectations from a report's failures")
    update.add_argument("report", help="a report JSON written by `detspec run`")
    update.add_argument("-o", "--output", help="write the draft here instead of to stdout")
    matrix = commands.add_parser("matrix", help="every built-in implementation side by side")
    matrix.add_argument("--report-dir", default="reports", type=Path)
    matrix.add_argument("--impl", action="append", choices=list(BUILTIN), help="only these (repeatable)")
    matrix.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    matrix.add_argument("--profile", choices=("dev", "ci", "thorough"), default="dev")
    matrix.add_argument("--timeout", type=float, default=900.0, help="seconds one implementation may take")
    fingerprint = commands.add_parser("fingerprint", help="which conventions an implementation follows")
    fingerprint.add_argument("--impl", required=True, help="a built-in name or package.module:factory")
    commands.add_parser("list", help="the built-in implementations")
    return top


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    args = parser().parse_args(argv)
    if args.command == "run":
        return run(args, extra)
    if args.command == "update-expectations":
        return update_expectations(args)
    if args.command == "fingerprint":
        return fingerprint_command(args)
    if args.command == "matrix":
        from detspec.conformance.matrix import ORDER, run_matrix

        names = args.impl or [n for n in ORDER if n in BUILTIN]
        return run_matrix(args.report_dir, names, args.jobs, args.profile, args.timeout)
    return list_implementations(args)


if __name__ == "__main__":
    sys.exit(main())
