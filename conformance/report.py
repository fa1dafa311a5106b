"""Per-clause verdicts: the terminal summary, ``reports/<impl>.json`` and ``reports/<impl>.html``."""

from __future__ import annotations

import html
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from detspec.conformance.spec_index import SPEC_DIR, Clause

#: When several properties check one clause, the clause takes the most severe of their verdicts.
SEVERITY = ("fail", "xpass", "deviates", "pass", "skip", "not-provided")

STATUS_COLOURS = {
    "pass": "#d7f5dd",
    "fail": "#ffd6d6",
    "deviates": "#fff1c2",
    "xpass": "#ffc9a8",
    "not-provided": "#e8e8e8",
    "skip": "#eef2ff",
}


def clause_verdicts(clauses: dict[str, Clause], outcomes: list[dict[str, Any]]) -> list[dict]:
    """One entry per spec clause, in spec order, aggregating the outcomes of its properties."""
    by_clause: dict[str, list[dict]] = {}
    for outcome in outcomes:
        by_clause.setdefault(outcome["clause"], []).append(outcome)
    verdicts = []
    for clause in clauses.values():
        results = sorted(by_clause.get(clause.id, []), key=lambda o: SEVERITY.index(o["status"]))
        entry: dict[str, Any] = {
            "id": clause.id,
            "level": clause.level,
            "spec": f"spec/{clause.path.name}#L{clause.line}",
            "text": clause.text,
        }
        if not results:
            entry.update(status="skip", examples=0, message="no property checks this clause")
        else:
            worst = results[0]
            entry["status"] = worst["status"]
            entry["examples"] = sum(o.get("examples", 0) for o in results)
            for key in ("message", "minimal_input", "expected", "actual", "reason", "upstream"):
                if key in worst:
                    entry[key] = worst[key]
            if "picture" in worst.get("extra", {}):
                entry["picture"] = worst["extra"]["picture"]
            entry["properties"] = results
        verdicts.append(entry)
    return verdicts


def build_report(
    header: dict[str, Any],
    clauses: dict[str, Clause],
    outcomes: list[dict],
    problems: list[str],
    figures: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    verdicts = clause_verdicts(clauses, outcomes)
    return {
        **header,
        "summary": dict(Counter(v["status"] for v in verdicts)),
        "problems": problems,
        "clauses": verdicts,
        "figures": figures or [],
    }


def summary_lines(report: dict[str, Any]) -> list[str]:
    lines = [
        f"detspec {report['suite_version']} conformance: {report['implementation']['name']} "
        f"({report['implementation']['version']})",
        f"hypothesis profile {report['hypothesis']['profile']}, seed {report['hypothesis']['seed']}",
    ]
    width = max((len(v["id"]) for v in report["clauses"]), default=10)
    for verdict in report["clauses"]:
        note = ""
        if verdict["status"] in ("fail", "deviates", "xpass"):
            note = "  " + (verdict.get("message") or "").splitlines()[0][:90]
        lines.append(
            f"  {verdict['id']:<{width}}  {verdict['level']:<6}  {verdict['status']:<12}"
            f"  {verdict.get('examples', 0):>5}{note}"
        )
    lines.append("  " + ", ".join(f"{n} {s}" for s, n in sorted(report["summary"].items())))
    lines.extend(f"  PROBLEM: {p}" for p in report["problems"])
    return lines


def _json_block(value: Any) -> str:
    return html.escape(json.dumps(value, indent=1) if not isinstance(value, str) else value)


def render_html(report: dict[str, Any], spec_href: str = "../spec") -> str:
    """The report as one HTML page; ``spec_href`` is where the spec files are, seen from the page."""
    impl = report["implementation"]
    rows = []
    for verdict in report["clauses"]:
        status = verdict["status"]
        details = [f"<pre class='spec'>{html.escape(verdict['text'])}</pre>"]
        if verdict.get("message"):
            details.append(f"<p><b>Result:</b> {html.escape(verdict['message'])}</p>")
        if verdict.get("reason"):
            upstream = verdict.get("upstream")
            link = f" (<a href='{html.escape(upstream)}'>upstream</a>)" if upstream else ""
            details.append(f"<p><b>Documented deviation:</b> {html.escape(verdict['reason'])}{link}</p>")
        if "minimal_input" in verdict:
            details.append(f"<p><b>Minimal input</b></p><pre>{_json_block(verdict['minimal_input'])}</pre>")
        if "expected" in verdict or "actual" in verdict:
            details.append(
                f"<p><b>Expected</b> <code>{_json_block(verdict.get('expected'))}</code> "
                f"<b>actual</b> <code>{_json_block(verdict.get('actual'))}</code></p>"
            )
        if verdict.get("picture"):
            picture = verdict["picture"]
            details.append(
                f"<figure>{picture['svg']}<figcaption>{html.escape(picture['caption'])}</figcaption></figure>"
            )
        for outcome in verdict.get("properties", []):
            details.append(
                f"<div class='prop'>property <code>{html.escape(outcome['property'])}</code>: "
                f"{outcome['status']}, {outcome.get('examples', 0)} examples</div>"
            )
        spec_link = f"{spec_href}/{verdict['spec'].removeprefix('spec/')}"
        rows.append(
            f"<tr style='background:{STATUS_COLOURS[status]}' id='{html.escape(verdict['id'])}'>"
            f"<td><a href='{html.escape(spec_link)}'><code>{html.escape(verdict['id'])}</code></a></td>"
            f"<td>{verdict['level']}</td><td><b>{status}</b></td>"
            f"<td>{verdict.get('examples', 0)}</td>"
            f"<td><details><summary>details</summary>{''.join(details)}</details></td></tr>"
        )
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in report["problems"])
    figures = "".join(
        f"<figure><figcaption><b>{html.escape(f['title'])}.</b> {html.escape(f['caption'])}"
        f"</figcaption>{f['svg']}</figure>"
        for f in report.get("figures", [])
    )
    summary = ", ".join(f"{n} {s}" for s, n in sorted(report["summary"].items()))
    hyp = report["hypothesis"]
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>detspec: {html.escape(impl["name"])}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }} table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #bbb; padding: 4px 8px; vertical-align: top; text-align: left; }}
pre {{ white-space: pre-wrap; background: #fafafa; padding: 6px; }} .prop {{ font-size: 90%; }}
</style></head><body>
<h1>detspec conformance report: {html.escape(impl["name"])}</h1>
<p>Implementation <b>{html.escape(impl["name"])}</b> ({html.escape(impl["version"])}); conventions
<code>{html.escape(json.dumps(impl["conventions"]))}</code>.<br>
detspec {html.escape(report["suite_version"])}; Hypothesis {html.escape(hyp["version"])}, profile
<b>{html.escape(hyp["profile"])}</b>, seed {html.escape(str(hyp["seed"]))},
max_examples {hyp["max_examples"]}; generated {html.escape(report["generated_at"])}.</p>
<p><b>Summary:</b> {summary}</p>
{f"<h2>Problems</h2><ul>{problems}</ul>" if problems else ""}
<table><tr><th>clause</th><th>level</th><th>status</th><th>examples</th><th></th></tr>
{"".join(rows)}
</table>
{f"<h2>Figures</h2>{figures}" if figures else ""}
<p>Statuses and tolerances are explained in
<a href="{html.escape(spec_href)}/INTERPRETING.md">INTERPRETING.md</a>.</p>
</body></html>
"""


def write_report(report: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    name = report["implementation"]["name"]
    json_path, html_path = directory / f"{name}.json", directory / f"{name}.html"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    spec_href = Path(os.path.relpath(SPEC_DIR, directory.resolve())).as_posix()
    html_path.write_text(render_html(report, spec_href), encoding="utf-8")
    return json_path, html_path
