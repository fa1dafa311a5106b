"""Per-clause verdicts: the terminal summary, ``reports/<impl>.json`` and ``reports/<impl>.html``.

The JSON has one entry per spec clause (status, level, text, examples) and, inside it, one
outcome per property of the clause; a failure's minimal input is stored once, in the outcome of
the property that found it.
"""

from __future__ import annotations

import html
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from detspec.conformance.spec_index import SPEC_DIR, Clause
from detspec.conformance.verdicts import SEVERITY, Verdict
from detspec.properties.registry import Property

STATUS_COLOURS = {
    Verdict.PASS: "#d7f5dd",
    Verdict.FAIL: "#ffd6d6",
    Verdict.ERROR: "#ff9e9e",
    Verdict.DEVIATES: "#fff1c2",
    Verdict.XPASS: "#ffc9a8",
    Verdict.NOT_PROVIDED: "#e8e8e8",
    Verdict.UNSUPPORTED: "#e0d8f0",
    Verdict.SKIP: "#eef2ff",
    Verdict.NOT_RUN: "#f4f4f4",
    Verdict.UNTESTED: "#fafafa",
}
#: What the terminal shows of a message or a minimal input; the JSON keeps them whole.
TERMINAL_CHARS = 300


def clip(text: str, limit: int = TERMINAL_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def clause_verdicts(
    clauses: dict[str, Clause], properties: dict[str, Property], outcomes: list[dict[str, Any]]
) -> list[dict]:
    """One entry per spec clause, in spec order, aggregating the outcomes of its properties."""
    by_property = {o["property"]: o for o in outcomes}
    verdicts = []
    for clause in clauses.values():
        results = []
        for prop in (p for p in properties.values() if p.clause == clause.id):
            results.append(
                by_property.get(prop.name)
                or {
                    "property": prop.name,
                    "clause": clause.id,
                    "status": str(Verdict.NOT_RUN),
                    "message": "not run in this session (deselected)",
                }
            )
        results.sort(key=lambda o: SEVERITY.index(Verdict(o["status"])))
        entry: dict[str, Any] = {
            "id": clause.id,
            "level": clause.level,
            "spec": f"spec/{clause.path.name}#L{clause.line}",
            "text": clause.text,
        }
        if not results:
            entry.update(status=str(Verdict.UNTESTED), examples=0, message="no property checks this clause")
        else:
            first = results[0]
            entry["status"] = first["status"]  # the most severe: results are sorted by severity
            entry["examples"] = sum(o.get("examples", 0) for o in results)
            entry["property"] = first["property"]
            for key in ("code", "message", "reason", "upstream"):
                if key in first:
                    entry[key] = first[key]
            entry["properties"] = results
        verdicts.append(entry)
    return verdicts


def build_report(
    header: dict[str, Any],
    clauses: dict[str, Clause],
    properties: dict[str, Property],
    outcomes: list[dict],
    problems: list[str],
    figures: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    verdicts = clause_verdicts(clauses, properties, outcomes)
    return {
        **header,
        "summary": dict(Counter(v["status"] for v in verdicts)),
        "problems": problems,
        "clauses": verdicts,
        "figures": figures or [],
    }


def worst_outcome(verdict: dict[str, Any]) -> dict[str, Any] | None:
    """The outcome a clause entry reports (its ``property``), with its minimal input."""
    for outcome in verdict.get("properties", []):
        if outcome["property"] == verdict.get("property"):
            return outcome
    return None


def summary_lines(report: dict[str, Any]) -> list[str]:
    lines = [
        f"detspec {report['suite_version']} conformance: {report['implementation']['name']} "
        f"({report['implementation']['version']})",
        f"hypothesis profile {report['hypothesis']['profile']}, seed {report['hypothesis']['seed']}",
    ]
    width = max((len(v["id"]) for v in report["clauses"]), default=10)
    for verdict in report["clauses"]:
        note = ""
        if verdict["status"] in ("fail", "error", "deviates", "xpass"):
            first_line = (verdict.get("message") or "").splitlines()[0] if verdict.get("message") else ""
            note = f"  [{verdict.get('code', '-')}] {first_line[:90]}"
        lines.append(
            f"  {verdict['id']:<{width}}  {verdict['level']:<6}  {verdict['status']:<12}"
            f"  {verdict.get('examples', 0):>5}{note}"
        )
    lines.append("  " + ", ".join(f"{n} {s}" for s, n in sorted(report["summary"].items())))
    lines.extend(f"  PROBLEM: {p}" for p in report["problems"])
    return lines


def _json_block(value: Any) -> str:
    return html.escape(json.dumps(value, indent=1) if not isinstance(value, str) else value)


def _fingerprint_row(name: str, observation: dict[str, Any]) -> str:
    mismatch = not observation.get("agrees", True)
    style = " style='background:#ffc9a8'" if mismatch else ""
    return (
        f"<tr{style}><td><code>{html.escape(name)}</code></td><td>{html.escape(observation['declared'])}</td>"
        f"<td>{html.escape(observation['observed'] or '-')}</td>"
        f"<td>{html.escape(observation['evidence'])}</td></tr>"
    )


def _conventions_section(rows: str) -> str:
    if not rows:
        return ""
    head = "<tr><th>convention</th><th>declared</th><th>observed</th><th>evidence</th></tr>"
    return f"<h2>Conventions: declared and observed</h2><table>{head}{rows}</table>"


def render_html(report: dict[str, Any], spec_href: str = "../spec") -> str:
    """The report as one HTML page; ``spec_href`` is where the spec files are, seen from the page."""
    impl = report["implementation"]
    rows = []
    for verdict in report["clauses"]:
        status = Verdict(verdict["status"])
        outcome = worst_outcome(verdict) or {}
        details = [f"<pre class='spec'>{html.escape(verdict['text'])}</pre>"]
        if verdict.get("message"):
            code = f"<code>{html.escape(verdict['code'])}</code> " if verdict.get("code") else ""
            details.append(f"<p><b>Result:</b> {code}{html.escape(verdict['message'])}</p>")
        if verdict.get("reason"):
            upstream = verdict.get("upstream")
            link = f" (<a href='{html.escape(upstream)}'>upstream</a>)" if upstream else ""
            details.append(f"<p><b>Documented deviation:</b> {html.escape(verdict['reason'])}{link}</p>")
        if "minimal_input" in outcome:
            details.append(f"<p><b>Minimal input</b></p><pre>{_json_block(outcome['minimal_input'])}</pre>")
        if "expected" in outcome or "actual" in outcome:
            details.append(
                f"<p><b>Expected</b> <code>{_json_block(outcome.get('expected'))}</code> "
                f"<b>actual</b> <code>{_json_block(outcome.get('actual'))}</code></p>"
            )
        snippet = outcome.get("extra", {}).get("repro", {})
        if snippet.get("snippet"):
            operation = html.escape(snippet.get("operation", ""))
            details.append(
                f"<p><b>Reproduce with the implementation's own API</b> ({operation})</p>"
                f"<pre class='repro'>{html.escape(snippet['snippet'])}</pre>"
            )
        if snippet.get("command"):
            details.append(
                f"<p><b>Replay through detspec</b></p><pre>{html.escape(snippet['command'])}</pre>"
            )
        picture = outcome.get("extra", {}).get("picture")
        if picture:
            details.append(
                f"<figure>{picture['svg']}<figcaption>{html.escape(picture['caption'])}</figcaption></figure>"
            )
        for each in verdict.get("properties", []):
            aside = (
                f", {each['set_aside']} set aside as the documented deviation"
                if each.get("set_aside")
                else ""
            )
            details.append(
                f"<div class='prop' id='{html.escape(each['property'])}'>property "
                f"<code>{html.escape(each['property'])}</code>: {each['status']}, "
                f"{each.get('examples', 0)} examples{aside}</div>"
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
    fingerprint = "".join(_fingerprint_row(name, o) for name, o in report.get("fingerprint", {}).items())
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
{_conventions_section(fingerprint)}
<p>Statuses and tolerances are explained in
<a href="{html.escape(spec_href)}/INTERPRETING.md">INTERPRETING.md</a>.</p>
</body></html>
"""


def write_report(report: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    name = report["implementation"]["name"]
    json_path, html_path = directory / f"{name}.json", directory / f"{name}.html"
    json_path.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    spec_href = Path(os.path.relpath(SPEC_DIR, directory.resolve())).as_posix()
    html_path.write_text(render_html(report, spec_href), encoding="utf-8")
    return json_path, html_path
