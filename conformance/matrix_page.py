"""``reports/index.html``: the matrix as one self-contained page (plain HTML, a little inline
JavaScript for filtering, no network: a Content-Security-Policy forbids every external load).

One row per clause, grouped by spec area, the clause text on expansion; one column per
implementation, each cell coloured by its verdict and linking to that implementation's report
entry. Filters: by verdict, "rows where the implementations differ", and clause id; they can be
preset from the URL (``index.html#status=fail,deviates``, ``#differ``). Below the grid: declared
against fingerprinted conventions, and the cross-replayed counterexamples.
"""

from __future__ import annotations

import html
import json
from typing import Any

from detspec.conformance.report import STATUS_COLOURS
from detspec.conformance.verdicts import Verdict

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

SCRIPT = """
(function () {
  const table = document.getElementById('grid');
  const rows = Array.from(table.querySelectorAll('tbody tr.clause'));
  const boxes = Array.from(document.querySelectorAll('input[name=status]'));
  const differ = document.getElementById('differ');
  const search = document.getElementById('search');
  function apply() {
    const wanted = new Set(boxes.filter(b => b.checked).map(b => b.value));
    const text = search.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows) {
      const statuses = (row.dataset.statuses || '').split(' ').filter(Boolean);
      let visible = statuses.some(s => wanted.has(s));
      if (differ.checked && row.dataset.differ !== 'yes') visible = false;
      if (text && !row.dataset.id.includes(text)) visible = false;
      row.hidden = !visible;
      if (visible) shown += 1;
    }
    for (const group of table.querySelectorAll('tbody tr.area')) {
      const members = rows.filter(r => r.dataset.area === group.dataset.area);
      group.hidden = members.every(r => r.hidden);
    }
    document.getElementById('shown').textContent = shown + ' of ' + rows.length + ' clauses shown';
  }
  function fromHash() {
    const hash = decodeURIComponent(window.location.hash.slice(1));
    for (const part of hash.split('&')) {
      const [key, value] = part.split('=');
      if (key === 'status' && value) {
        const wanted = new Set(value.split(','));
        boxes.forEach(b => { b.checked = wanted.has(b.value); });
      }
      if (key === 'differ') differ.checked = true;
      if (key === 'clause' && value) search.value = value;
    }
  }
  boxes.forEach(b => b.addEventListener('change', apply));
  differ.addEventListener('change', apply);
  search.addEventListener('input', apply);
  window.addEventListener('hashchange', () => { fromHash(); apply(); });
  fromHash();
  apply();
})();
"""

STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; }
td, th { border: 1px solid #bbb; padding: 3px 6px; vertical-align: top; text-align: left; font-size: 90%; }
th.impl { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; }
tr.area th { background: #333; color: #fff; }
td.cell a { color: #000; text-decoration: none; display: block; }
td.cell .code { font-size: 80%; color: #444; display: block; }
details pre { white-space: pre-wrap; max-width: 60em; font-size: 85%; }
.filters label { margin-right: 0.8em; }
.mismatch { background: #ffc9a8; }
pre.input { max-width: 40em; max-height: 12em; overflow: auto; font-size: 80%; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(name: str, clause: str, result: dict[str, Any] | None) -> str:
    if result is None:
        return "<td class='cell'>-</td>"
    status = Verdict(result["status"])
    code = f"<span class='code'>{_e(result['code'])}</span>" if result.get("code") else ""
    title = result.get("message") or result.get("reason") or status
    return (
        f"<td class='cell' data-impl='{_e(name)}' data-status='{status}' "
        f"style='background:{STATUS_COLOURS[status]}'"
        f" title='{_e(title)}'><a href='{_e(name)}.html#{_e(clause)}'>{status}{code}</a></td>"
    )


def _grid(index: dict[str, Any], names: list[str]) -> str:
    head = "".join(f"<th class='impl'>{_e(n)}</th>" for n in names)
    body, area = [], None
    for clause in index["clauses"]:
        if clause["area"] != area:
            area = clause["area"]
            body.append(
                f"<tr class='area' data-area='{_e(area)}'><th colspan='{len(names) + 2}'>{_e(area)}</th></tr>"
            )
        results = clause["results"]
        statuses = sorted({r["status"] for r in results.values()})
        differ = "yes" if len(statuses) > 1 else "no"
        cells = "".join(_cell(n, clause["id"], results.get(n)) for n in names)
        body.append(
            f"<tr class='clause' data-id='{_e(clause['id'])}' data-area='{_e(area)}' "
            f"data-statuses='{_e(' '.join(statuses))}' data-differ='{differ}'>"
            f"<td><details><summary title='{_e(clause['text'][:400])}'>"
            f"<code>{_e(clause['id'])}</code></summary>"
            f"<pre>{_e(clause['text'])}</pre></details></td><td>{_e(clause['level'])}</td>{cells}</tr>"
        )
    return (
        "<table id='grid'><thead><tr><th>clause</th><th>level</th>" + head + "</tr></thead><tbody>"
        + "".join(body) + "</tbody></table>"
    )  # fmt: skip


def _implementations(index: dict[str, Any]) -> str:
    rows = []
    for entry in index["implementations"]:
        summary = ", ".join(f"{n} {s}" for s, n in sorted(entry.get("summary", {}).items()))
        link = (
            f"<a href='{_e(entry['report'])}'>{_e(entry['name'])}</a>"
            if entry.get("report")
            else _e(entry["name"])
        )
        problems = f"; {len(entry['problems'])} problem(s)" if entry.get("problems") else ""
        rows.append(
            f"<tr class='implementation' data-name='{_e(entry['name'])}' data-state='{_e(entry['state'])}'>"
            f"<td>{link}</td><td>{_e(entry['state'])}</td>"
            f"<td>{_e(entry.get('version', entry.get('reason', '')))}</td>"
            f"<td>{_e(summary)}{_e(problems)}</td><td>{entry.get('seconds', 0)} s</td></tr>"
        )
    return (
        "<table id='implementations'><tr><th>implementation</th><th>state</th><th>version</th>"
        "<th>summary</th><th>time</th></tr>" + "".join(rows) + "</table>"
    )


def _conventions(index: dict[str, Any], names: list[str]) -> str:
    entries = {e["name"]: e for e in index["implementations"] if e["name"] in names}
    fields = list(next(iter(entries.values()))["conventions"]) if entries else []
    rows = []
    for field in fields:
        cells = []
        for name in names:
            observed = entries[name].get("fingerprint", {}).get(field, {})
            declared = entries[name]["conventions"][field]
            seen = observed.get("observed")
            if not observed.get("agrees", True):
                cells.append(
                    f"<td class='mismatch' title='{_e(observed.get('evidence', ''))}'>"
                    f"declared {_e(declared)}, observed {_e(seen or 'no value of it')}</td>"
                )
            else:
                mark = "" if seen is None else " ✓"
                cells.append(f"<td title='{_e(observed.get('evidence', ''))}'>{_e(declared)}{mark}</td>")
        rows.append(f"<tr><td><code>{_e(field)}</code></td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    return f"<table id='conventions'><tr><th>convention</th>{head}</tr>{''.join(rows)}</table>"


def _cross_replay(index: dict[str, Any], names: list[str]) -> str:
    rows = []
    for item in index["cross_replay"]:
        found = ", ".join(f"{f['implementation']} ({f['status']})" for f in item["found_by"])
        cells = []
        for name in names:
            result = item["results"].get(name, {"status": "not-run"})
            status = result["status"]
            colour = (
                STATUS_COLOURS.get(Verdict(status), "#fff")
                if status in Verdict._value2member_map_
                else "#fff"
            )
            code = f"<span class='code'>{_e(result['code'])}</span>" if result.get("code") else ""
            cells.append(
                f"<td class='cell' style='background:{colour}' title='{_e(result.get('message', ''))}'>"
                f"{_e(status)}{code}</td>"
            )
        marker = " data-differ='yes'" if item["disagree"] else ""
        rows.append(
            f"<tr class='replay'{marker}><td><code>{_e(item['clause'])}</code><br>{_e(item['property'])}</td>"
            f"<td>{_e(found)}</td><td><details><summary>input</summary><pre class='input'>"
            f"{_e(json.dumps(item['input']))}</pre></details></td>{''.join(cells)}</tr>"
        )
    head = "".join(f"<th class='impl'>{_e(n)}</th>" for n in names)
    return (
        "<table id='cross-replay'><thead><tr><th>clause / property</th><th>found by</th><th>input</th>"
        + head + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )  # fmt: skip


def render_index(index: dict[str, Any]) -> str:
    names = [e["name"] for e in index["implementations"] if e["state"] == "ran"]
    statuses = [v for v in Verdict]
    boxes = "".join(
        f"<label><input type='checkbox' name='status' value='{s}' checked> {s}</label>" for s in statuses
    )
    disagreements = sum(1 for item in index["cross_replay"] if item["disagree"])
    return f"""<!doctype html>
<html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>detspec conformance matrix</title><style>{STYLE}</style></head><body>
<h1>detspec conformance matrix</h1>
<p>detspec {_e(index["suite_version"])}, generated {_e(index["generated_at"])}, {index.get("seconds", 0)} s.
What every verdict means: <code>spec/INTERPRETING.md</code>.</p>
<h2>Implementations</h2>
{_implementations(index)}
<h2>Clauses</h2>
<div class="filters">{boxes}
<label><input type="checkbox" id="differ"> only clauses where the implementations differ</label>
<label>clause <input type="search" id="search" placeholder="boxes.nms"></label>
<span id="shown"></span></div>
{_grid(index, names)}
<h2>Conventions: declared, and what the fingerprint observes</h2>
<p>✓: the fingerprint observed the declared value; highlighted: it observed another one.</p>
{_conventions(index, names)}
<h2>Counterexamples, replayed on every implementation</h2>
<p>Every minimal input and witness found for any implementation, run once through its property on
every implementation under that implementation's own conventions; {disagreements} of
{len(index["cross_replay"])} inputs make implementations disagree.</p>
{_cross_replay(index, names)}
<script>{SCRIPT}</script>
</body></html>
"""
