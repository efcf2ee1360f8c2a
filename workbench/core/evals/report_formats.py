"""Run reports: a pull-request comment (md), a machine-readable document (json), JUnit XML for CI (junit)
and one self-contained page (html).

Every format follows the order of the report: its cells (the grid's prompts, targets and tests in the
order they first appear) and its diff entries, so the same report always renders to the same text. A
stored run's verdict is the one it reached when it ended (its gate, its comparison, its reasons as it
printed them: :func:`workbench.core.evals.report_data.conclude`), never judged again; a run stored before
verdicts were says "no gate recorded".
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from workbench.core.evals.diff import (
    CHANGES,
    IMPROVEMENTS,
    REGRESSIONS,
    beyond_noise,
    gate_failures,
    pass_rates,
    percent,
)
from workbench.core.evals.model import (
    CellKey,
    CellResult,
    CellSummary,
    DiffEntry,
    RunDiff,
    RunReport,
    StoredBatch,
)
from workbench.core.evals.stats import total_cost

REPORT_FORMATS = ("md", "json", "junit", "html")
_EXTENSIONS = {"md": "md", "json": "json", "junit": "xml", "html": "html"}

MD_FAILURES_SHOWN = 50
"""A pull-request comment lists this many failing cells at most (comments have a size limit)."""
_MD_LONG_REASON = 120
"""Longer failure reasons (or any on several lines) are collapsed in a <details> block."""

_SYMBOLS = {"pass": "✅", "fail": "❌", "flaky": "⚠️", "skipped": "⏭️"}
_WORDS = {"pass": "pass", "fail": "fail", "flaky": "flaky", "skipped": "not run"}
_DIFF_HEADER = ("Test", "Prompt", "Target", "Change", "Pass rate", "Δ cost per run", "Δ latency", "Beyond noise")


def render(report: RunReport, fmt: str) -> str:
    """The report in ``fmt``, one of ``REPORT_FORMATS``."""
    match _known(fmt):
        case "md":
            return _markdown(report)
        case "json":
            return _json(report)
        case "junit":
            return _junit(report)
        case _:
            return _html(report)


def report_filename(report: RunReport, fmt: str) -> str:
    """``eval-<suite>-<run id>.<ext>``, with anything but letters, digits, ``.``, ``_`` and ``-`` replaced."""
    return f"eval-{_slug(report.run.suite)}-{_slug(report.run.id)}.{_EXTENSIONS[_known(fmt)]}"


def verdict_reasons(report: RunReport) -> list[str] | None:
    """Why the run failed as a CI gate (empty: it passed); None when it reached no verdict (interrupted,
    still running, or stored before verdicts were, without a gate)."""
    run = report.run
    if run.verdict is not None:
        return None if run.failures is None else list(run.failures)
    if run.status != "done" or (report.gate is None and report.diff is None):
        return None
    return gate_failures(report, report.gate)


def failure_reason(cell: CellSummary) -> str:
    """Why the cell's first failing run failed: its error, else its first failing assertion."""
    failing = _failing(cell)
    return _reasons(failing[0])[0] if failing else ""


# --- shared pieces -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Table:
    """One prompt's grid: a row per test, a column per target (None where the cell was not in the run)."""

    prompt: str
    targets: list[str]
    rows: list[tuple[str, list[CellSummary | None]]]


def _tables(report: RunReport) -> list[_Table]:
    axes: dict[str, tuple[dict[str, None], dict[str, None]]] = {}
    for cell in report.cells:
        targets, tests = axes.setdefault(cell.key.prompt, ({}, {}))
        targets[cell.key.target] = tests[cell.key.test] = None
    cells = {cell.key: cell for cell in report.cells}
    return [_Table(prompt, list(targets),
                   [(test, [cells.get(CellKey(test, prompt, target)) for target in targets]) for test in tests])
            for prompt, (targets, tests) in axes.items()]


def _known(fmt: str) -> str:
    if fmt not in REPORT_FORMATS:
        raise ValueError(f"unknown report format {fmt!r}: use one of {', '.join(REPORT_FORMATS)}")
    return fmt


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def _state(cell: CellSummary) -> str:
    if cell.runs == 0:
        return "skipped"
    if cell.passes == cell.runs:
        return "pass"
    return "flaky" if cell.flaky else "fail"


def _cell_text(cell: CellSummary, worded: bool = False) -> str:
    """``✅`` for one run, ``✅ 100% (3/3)`` with repeats; the state in words when flaky, not run, or ``worded``."""
    state = _state(cell)
    parts = [_SYMBOLS[state]]
    if cell.runs > 1:
        parts.append(f"{percent(cell.pass_rate)} ({cell.passes}/{cell.runs})")
    if worded or state in ("flaky", "skipped"):
        parts.append(_WORDS[state])
    return " ".join(parts)


def _column_rates(table: _Table) -> list[str]:
    """Each target's pass rate over the table's tests."""
    rates = []
    for column in range(len(table.targets)):
        present = [cell for _, cells in table.rows if (cell := cells[column]) is not None]
        runs = sum(cell.runs for cell in present)
        rates.append(percent(sum(cell.passes for cell in present) / runs) if runs else "–")
    return rates


def _metadata(cell: CellSummary) -> dict[str, Any]:
    """The test's ``metadata`` (carried by each of its results)."""
    return cell.results[0].observation.metadata if cell.results else {}


def _metadata_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _metadata_text(metadata: dict[str, Any]) -> str:
    """``key=value, key=value``: a test's metadata on one line."""
    return ", ".join(f"{key}={_metadata_value(value)}" for key, value in metadata.items())


def _failing(cell: CellSummary) -> list[CellResult]:
    return [result for result in cell.results if not result.passed]


def _reasons(result: CellResult) -> list[str]:
    """A failing run's error and failing assertions; its score when neither explains the failure."""
    reasons = [f"error: {result.observation.error}"] if result.observation.error else []
    reasons += [f"{grading.assertion}: {grading.reason}" for grading in result.gradings if not grading.passed]
    return reasons or [f"score {result.score:.2f} is under the test's threshold"]


def _usd(value: float | None, signed: bool = False) -> str:
    """``$0.0123``, ``$12.50``; with ``signed`` a delta: ``+$0.001``, ``-$0.25``."""
    if value is None:
        return "–"
    amount = abs(value)
    return _sign(value, signed) + (f"${amount:.2f}" if amount >= 1 else f"${amount:.4g}")


def _ms(value: float | None, signed: bool = False) -> str:
    """``840 ms``, ``1.25 s``; with ``signed`` a delta: ``+120 ms``."""
    if value is None:
        return "–"
    amount = abs(value)
    return _sign(value, signed) + (f"{amount / 1000:.2f} s" if amount >= 1000 else f"{amount:.0f} ms")


def _sign(value: float, signed: bool) -> str:
    return "-" if value < 0 else "+" if signed and value > 0 else ""


def _headline(report: RunReport) -> str:
    """``✅ smoke: 90% passed (18/20) · gate 80% · cost $0.0123 · 20 calls, 3 cached``; no mark without a verdict."""
    reasons = verdict_reasons(report)
    symbol = "" if reasons is None else "❌ " if reasons else "✅ "
    gate = "no gate recorded" if report.gate is None else f"gate {percent(report.gate)}"
    cached = sum(result.cached for cell in report.cells for result in cell.results)
    calls = f"{report.runs} calls" + (f", {cached} cached" if cached else "")
    return (f"{symbol}{report.run.suite}: {percent(report.pass_rate)} passed ({report.passes}/{report.runs}) · "
            f"{gate} · cost {'unknown' if report.cost_usd is None else _usd(report.cost_usd)} · {calls}")


def _run_line(report: RunReport) -> str:
    run = report.run
    started = datetime.fromtimestamp(run.started_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    status = f"{run.status}: {run.stop_reason}" if run.stop_reason else run.status
    return f"Run {run.id} of {run.suite_path} · started {started} · {status}"


def _batch_lines(report: RunReport) -> list[str]:
    """A line per provider batch of the run: its id, target, state and counts, and whether it was collected."""
    return [f"batch {batch.batch_id} ({batch.api}, {batch.target}): {batch.state} · {batch.requests} requests, "
            f"{batch.succeeded} succeeded, {batch.failed} failed" + ("" if batch.collected_at else " · not collected")
            for batch in report.batches]


def _batch_json(batch: StoredBatch) -> dict[str, Any]:
    return {"id": batch.batch_id, "api": batch.api, "target": batch.target, "state": batch.state,
            "requests": batch.requests, "succeeded": batch.succeeded, "failed": batch.failed,
            "submitted_at": batch.submitted_at, "collected_at": batch.collected_at}


def _diff_counts(diff: RunDiff) -> str:
    counts = {change: len(diff.of(change)) for change in CHANGES}
    return " · ".join(f"{count} {change}" for change, count in counts.items() if count)


def _diff_row(entry: DiffEntry) -> tuple[str, ...]:
    return (entry.key.test, entry.key.prompt, entry.key.target, entry.change, pass_rates(entry),
            _usd(entry.cost_delta, signed=True), _ms(entry.latency_delta_ms, signed=True),
            "–" if entry.base is None or entry.head is None else "yes" if beyond_noise(entry) else "no")


def _entries(diff: RunDiff, changes: Iterable[str]) -> list[DiffEntry]:
    wanted = set(changes)
    return [entry for entry in diff.entries if entry.change in wanted]


# --- md ------------------------------------------------------------------------------------------------


def _markdown(report: RunReport) -> str:
    lines = [f"## {_md(_headline(report))}", "", _md(_run_line(report)), ""]
    lines += [f"- {_md(reason)}" for reason in verdict_reasons(report) or ()]
    if report.batches:
        lines += ["", *(f"- {_md(line)}" for line in _batch_lines(report))]
    for table in _tables(report):
        lines += ["", f"### Prompt: {_md(table.prompt)}", ""]
        rows = [(test, *(_cell_text(cell) if cell else "–" for cell in cells)) for test, cells in table.rows]
        rows.append(("Pass rate", *_column_rates(table)))
        lines += _md_table(("Test", *table.targets), rows, centred=True)
    if report.diff is None and report.run.compared_with is not None:
        lines += ["", f"### Compared with run {_md(report.run.compared_with)}", "", "That run is no longer stored."]
    if report.diff is not None:
        lines += ["", f"### Compared with run {_md(report.diff.base.id)}", "", _md(_diff_counts(report.diff))]
        for title, changes in (("Regressions", REGRESSIONS), ("Fixed", IMPROVEMENTS)):
            entries = _entries(report.diff, changes)
            lines += ["", f"#### {title} ({len(entries)})", ""]
            lines += _md_table(_DIFF_HEADER, [_diff_row(e) for e in entries]) if entries else ["None."]
    lines += _md_failures([cell for cell in report.cells if _state(cell) in ("fail", "flaky")])
    tagged = {cell.key.test: _metadata(cell) for cell in report.cells if _metadata(cell)}
    if tagged:
        lines += ["", "### Test metadata", "", *(f"- {_md(test)}: {_md(_metadata_text(metadata))}"
                                                 for test, metadata in tagged.items())]
    return "\n".join(lines) + "\n"


def _md_failures(cells: list[CellSummary]) -> list[str]:
    if not cells:
        return []
    lines = ["", f"### Failures ({len(cells)})", ""]
    for cell in cells[:MD_FAILURES_SHOWN]:
        key, reason = cell.key, failure_reason(cell)
        where = f"{_cell_text(cell)} {key.test} · {key.prompt} · {key.target}"
        if len(reason) > _MD_LONG_REASON or "\n" in reason:
            lines += ["", f"<details><summary>{html.escape(where)}: {html.escape(reason[:80].splitlines()[0])}…"
                      "</summary>", "", f"<pre>{html.escape(reason)}</pre>", "", "</details>", ""]
        else:
            lines.append(f"- {_md(where)}: {_md(reason)}")
    if len(cells) > MD_FAILURES_SHOWN:
        lines += ["", f"… and {len(cells) - MD_FAILURES_SHOWN} more failing cells (see the HTML or JSON report)."]
    return lines


def _md_table(header: tuple[str, ...], rows: list[tuple[str, ...]], centred: bool = False) -> list[str]:
    rule = ":-:" if centred else "---"
    return [_md_row(header), _md_row(("---", *[rule] * (len(header) - 1)), escape=False),
            *(_md_row(row) for row in rows)]


def _md_row(cells: Iterable[str], escape: bool = True) -> str:
    return "| " + " | ".join(_md(cell) if escape else cell for cell in cells) + " |"


def _md(text: str) -> str:
    """Literal text in markdown: no emphasis, links, HTML or table breaks; one line."""
    return re.sub(r"([\\`*_\[\]<>|~])", r"\\\1", " ".join(text.split()))


# --- json ----------------------------------------------------------------------------------------------


def _json(report: RunReport) -> str:
    failures = verdict_reasons(report)
    document = {
        "format": "workbench-eval-report",
        "version": 1,
        "run": asdict(report.run),
        "gate": report.gate,
        "totals": {"runs": report.runs, "passes": report.passes, "pass_rate": report.pass_rate,
                   "cost_usd": report.cost_usd, "unpriced_calls": report.unpriced,
                   "passed": None if failures is None else not failures,
                   "gate_failures": failures},
        "cells": [_cell_json(cell, with_results=True) for cell in report.cells],
        "diff": None if report.diff is None else _diff_json(report.diff),
        "batches": [_batch_json(batch) for batch in report.batches],
    }
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _cell_json(cell: CellSummary, with_results: bool) -> dict[str, Any]:
    document = {"key": asdict(cell.key), "description": cell.description, "runs": cell.runs, "passes": cell.passes,
                "pass_rate": cell.pass_rate, "interval": list(cell.interval), "flaky": cell.flaky,
                "score": cell.score, "latency_ms": cell.latency_ms, "cost_usd": cell.cost_usd}
    if with_results:
        document["results"] = [{name: value for name, value in asdict(result).items() if name != "key"}
                               for result in cell.results]
    return document


def _diff_json(diff: RunDiff) -> dict[str, Any]:
    return {"base": asdict(diff.base), "head": asdict(diff.head),
            "entries": [{"key": asdict(entry.key), "change": entry.change, "beyond_noise": beyond_noise(entry),
                         "base": None if entry.base is None else _cell_json(entry.base, with_results=False),
                         "head": None if entry.head is None else _cell_json(entry.head, with_results=False),
                         "cost_delta_usd": entry.cost_delta, "latency_delta_ms": entry.latency_delta_ms}
                        for entry in diff.entries]}


# --- junit ---------------------------------------------------------------------------------------------

_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot hold at all, not even escaped (model output can contain them)."""


def _junit(report: RunReport) -> str:
    """A testsuite per prompt × target, a testcase per test; repeats make one testcase, failing under 100%."""
    groups: dict[tuple[str, str], list[CellSummary]] = {}
    for cell in report.cells:
        groups.setdefault((cell.key.prompt, cell.key.target), []).append(cell)
    root = ET.Element("testsuites", {"name": report.run.suite, **_junit_counts(report.cells)})
    for (prompt, target), cells in groups.items():
        suite = ET.SubElement(root, "testsuite", {"name": f"{prompt} / {target}", **_junit_counts(cells)})
        _junit_properties(suite, prompt=prompt, target=target, cost_usd=total_cost(c.cost_usd for c in cells))
        for cell in cells:
            _junit_case(suite, cell, report)
    ET.indent(root)
    return _XML_INVALID.sub("\ufffd", ET.tostring(root, encoding="unicode", xml_declaration=True)) + "\n"


def _junit_case(suite: ET.Element, cell: CellSummary, report: RunReport) -> None:
    case = ET.SubElement(suite, "testcase", classname=suite.get("name", ""), name=cell.key.test,
                         time=_seconds([cell]))
    metadata = {f"metadata.{key}": _metadata_value(value) for key, value in _metadata(cell).items()}
    _junit_properties(case, cost_usd=cell.cost_usd, runs=cell.runs, passes=cell.passes, **metadata)
    state = _state(cell)
    if state == "skipped":
        why = f" (run {report.run.status}: {report.run.stop_reason})" if report.run.stop_reason else ""
        ET.SubElement(case, "skipped", message=f"not run{why}")
    elif state != "pass":
        message = failure_reason(cell).splitlines()[0]
        if cell.runs > 1:
            message = f"passed {percent(cell.pass_rate)} of {cell.runs} runs ({cell.passes}/{cell.runs}); {message}"
        failure = ET.SubElement(case, "failure", message=message)
        failure.text = "\n".join(f"repeat {result.repeat}: {reason}"
                                 for result in _failing(cell) for reason in _reasons(result))


def _junit_counts(cells: list[CellSummary]) -> dict[str, str]:
    states = [_state(cell) for cell in cells]
    return {"tests": str(len(cells)), "failures": str(sum(s in ("fail", "flaky") for s in states)),
            "errors": "0", "skipped": str(states.count("skipped")), "time": _seconds(cells)}


def _junit_properties(parent: ET.Element, **values: object) -> None:
    properties = ET.SubElement(parent, "properties")
    for name, value in values.items():
        if value is not None:
            ET.SubElement(properties, "property", name=name, value=str(value))


def _seconds(cells: list[CellSummary]) -> str:
    return f"{sum(r.observation.latency_ms or 0.0 for c in cells for r in c.results) / 1000:.3f}"


# --- html ----------------------------------------------------------------------------------------------

_CSS = """
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --border: #d1d9e0;
  --pass: #dafbe1; --fail: #ffebe9; --flaky: #fff8c5; --none: #f6f8fa; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --border: #3d444d;
    --pass: #12361f; --fail: #4c1a1d; --flaky: #3d3209; --none: #151b23; } }
body { margin: 2rem; background: var(--bg); color: var(--fg); font: 14px/1.5 system-ui, sans-serif; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.muted { color: var(--muted); }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid var(--border); padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
thead th { background: var(--none); }
td.pass, tr.fixed, tr.improved { background: var(--pass); }
td.fail, tr.new-failure, tr.regressed { background: var(--fail); }
td.flaky, tr.noise { background: var(--flaky); }
td.none, td.skipped { background: var(--none); color: var(--muted); }
summary { cursor: pointer; white-space: nowrap; }
.result { margin: 0.5rem 0; max-width: 80ch; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0.3rem 0; padding: 0.4rem;
  background: var(--bg); border: 1px solid var(--border); }
ul { margin: 0.2rem 0; padding-left: 1.2rem; }
.gradings li { white-space: pre-wrap; }
li.fail { font-weight: 600; }
"""


def _html(report: RunReport) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>Eval {e(report.run.suite)} · {e(report.run.id)}</title>", f"<style>{_CSS}</style>",
             "</head>", "<body>", "<header>", f"<h1>{e(_headline(report))}</h1>",
             f'<p class="muted">{e(_run_line(report))}</p>']
    parts += [_html_list("reasons", [("fail", e(reason)) for reason in verdict_reasons(report) or ()]),
              *(f'<p class="muted">{e(line)}</p>' for line in _batch_lines(report)), "</header>"]
    for table in _tables(report):
        parts += ["<section>", f"<h2>Prompt: {e(table.prompt)}</h2>", '<table class="grid">',
                  "<thead><tr><th>Test</th>" + "".join(f"<th>{e(target)}</th>" for target in table.targets),
                  "</tr></thead>", "<tbody>"]
        parts += [f'<tr><th scope="row">{e(test)}</th>' + "".join(map(_html_cell, cells)) + "</tr>"
                  for test, cells in table.rows]
        parts += ["</tbody>", "<tfoot><tr><th>Pass rate</th>",
                  *(f"<td>{rate}</td>" for rate in _column_rates(table)), "</tr></tfoot>", "</table>", "</section>"]
    if report.diff is None and report.run.compared_with is not None:
        parts += ["<section>", f"<h2>Compared with run {e(report.run.compared_with)}</h2>",
                  "<p>That run is no longer stored.</p>", "</section>"]
    if report.diff is not None:
        parts += _html_diff(report.diff)
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _html_cell(cell: CellSummary | None) -> str:
    if cell is None:
        return '<td class="none">–</td>'
    e = html.escape
    described = cell.description not in ("", cell.key.test)
    description = f'<p class="muted">{e(cell.description)}</p>' if described else ""
    figures = f"score {cell.score:.2f} · median {_ms(cell.latency_ms)} · {_usd(cell.cost_usd)}"
    if _metadata(cell):
        description += f'<p class="muted">metadata: {e(_metadata_text(_metadata(cell)))}</p>'
    runs = "".join(_html_result(result) for result in cell.results)
    return (f'<td class="{_state(cell)}"><details><summary>{e(_cell_text(cell, worded=True))}</summary>{description}'
            f'<p class="muted">{e(figures)}</p>{runs}</details></td>')


def _html_result(result: CellResult) -> str:
    e = html.escape
    observation = result.observation
    meta = [f"repeat {result.repeat}", "passed" if result.passed else "failed", _ms(observation.latency_ms),
            _usd(observation.cost_usd)] + (["cached"] if result.cached else [])
    error = f"<p><strong>error:</strong> {e(observation.error)}</p>" if observation.error else ""
    gradings = _html_list("gradings", [("pass" if g.passed else "fail",
                                        f"<b>{e(g.assertion)}</b> ({g.score:.2f}): {e(g.reason)}")
                                       for g in result.gradings])
    return (f'<div class="result"><p class="muted">{e(" · ".join(meta))}</p>{error}'
            f"<pre>{e(observation.text)}</pre>{gradings}</div>")


def _html_diff(diff: RunDiff) -> list[str]:
    e = html.escape
    changed = sorted((entry for entry in diff.entries if entry.change != "unchanged"),
                     key=lambda entry: CHANGES.index(entry.change))
    rows = [f'<tr class="{e(entry.change)}">' + "".join(f"<td>{e(value)}</td>" for value in _diff_row(entry))
            + "</tr>" for entry in changed]
    return ["<section>", f"<h2>Compared with run {e(diff.base.id)}</h2>", f"<p>{e(_diff_counts(diff))}</p>",
            '<table class="diff">', "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in _DIFF_HEADER) + "</tr></thead>",
            "<tbody>", *rows, "</tbody>", "</table>", "</section>"]


def _html_list(css: str, items: list[tuple[str, str]]) -> str:
    """A ``<ul>`` of (class, already-escaped HTML) items; nothing for no items."""
    if not items:
        return ""
    return f'<ul class="{css}">' + "".join(f'<li class="{c}">{item}</li>' for c, item in items) + "</ul>"
