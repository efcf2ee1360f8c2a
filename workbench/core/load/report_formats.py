"""A load report as Markdown, JSON or one self-contained HTML file (charts as inline SVG: latency over time,
calls and 429s a second, the latency and TTFT percentile curves)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from workbench.core.errors import ConfigError
from workbench.core.load.report import LoadReport
from workbench.core.load.svg import Line, line_chart

FORMATS = {".md": "md", ".json": "json", ".html": "html", ".htm": "html"}
"""A report file's extension → its format."""
BEHIND_MS = 100.0
"""A p99 schedule lateness past this says the generator, not the provider, set the pace: the report warns."""


def format_of(path: str) -> str:
    """The format of a ``--report`` file, by its extension; a :class:`ConfigError` for any other."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ConfigError(f"--report {path}: unknown report format", "name a .md, .json or .html file")
    return fmt


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f} ms" if value < 10_000 else f"{value / 1000:,.2f} s"


def _usd(value: float | None) -> str:
    return "–" if value is None else f"${value:,.6f}" if value < 0.01 else f"${value:,.4f}"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}/s"


def summary_rows(report: LoadReport) -> list[tuple[str, str]]:
    """The summary's figures, in the order every format shows them."""
    late = report.lateness_ms
    errors = ", ".join(f"{kind} {n}" for kind, n in report.errors.items()) or "none"
    cost = _usd(report.cost_usd) + (f" (+{report.unpriced} calls of unknown price)" if report.unpriced else "")
    rows = [
        ("run", f"{report.run_id} (traced with the tag {report.tag})"),
        ("started", "–" if report.started_at is None else
         datetime.fromtimestamp(report.started_at, UTC).isoformat(timespec="seconds")),
        ("targets", ", ".join(report.targets)), ("requests", report.source), ("load", report.shape),
        ("stopped", report.stop_reason or "no: ran to the end"),
        ("calls", f"{report.calls} ({report.ok} ok, {report.calls - report.ok} errors)"),
        ("errors by kind", errors),
        ("429 answers", f"{report.rate_limited} (retries {report.retries}, served by a fallback {report.fell_back}, "
                        f"queued by the client's rate limit {report.queued})"),
        ("rate achieved", f"{_rate(report.achieved_rate)}" + (f" of {report.rate:g}/s scheduled"
                                                                 if report.rate is not None else "")),
        ("TTFT p50 / p95 / p99", " / ".join(_ms(report.ttft_ms[p]) for p in ("p50", "p95", "p99"))),
        ("latency p50 / p95 / p99", " / ".join(_ms(report.latency_ms[p]) for p in ("p50", "p95", "p99"))),
        ("tokens", f"{report.input_tokens:,} in, {report.output_tokens:,} out, "
                   f"{'–' if report.tokens_per_s is None else f'{report.tokens_per_s:,.0f}'} out tokens/s"),
        ("spend", cost + (f" (max {report.max_cost:g})" if report.max_cost is not None else "")),
    ]
    if late is not None:
        rows.append(("schedule lateness p50 / p99 / max", " / ".join(_ms(late[p]) for p in ("p50", "p99", "max"))))
        if (late["p99"] or 0) > BEHIND_MS:
            rows.append(("warning", f"the generator fell behind its schedule (p99 {_ms(late['p99'])} late): the rate "
                                    "and latencies measure this machine as much as the provider"))
    return rows


def markdown(report: LoadReport) -> str:
    lines = [f"# Load test {report.run_id}", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value.replace('|', '/')} |" for name, value in summary_rows(report)]
    lines += ["", "## By target", "", "| target | calls | ok | errors | 429s | latency p50 | p95 | p99 | spend |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in report.by_target:
        lat = row["latency_ms"]
        lines.append(f"| {row['target']} | {row['calls']} | {row['ok']} | {row['errors']} | {row['rate_limited']} | "
                     f"{_ms(lat['p50'])} | {_ms(lat['p95'])} | {_ms(lat['p99'])} | {_usd(row['cost_usd'])} |")
    lines += ["", "TTFT and latency are what each call waited (queueing, retries and Retry-After waits included), "
              "over the calls that ended ok.", ""]
    return "\n".join(lines)


def as_json(report: LoadReport) -> str:
    return json.dumps(report.as_json(), ensure_ascii=False)


_STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}td.n{text-align:right}")


def html(report: LoadReport) -> str:
    seconds = report.seconds
    over_time = line_chart("latency over time (calls that ended ok, by the second they ended)", [
        Line("p50", "#1f77b4", [(s.t, s.latency_p50_ms) for s in seconds]),
        Line("p95", "#d62728", [(s.t, s.latency_p95_ms) for s in seconds])], "seconds", "ms")
    rates = line_chart("calls a second", [
        Line("started", "#1f77b4", [(s.t, float(s.started)) for s in seconds]),
        Line("ok", "#2ca02c", [(s.t, float(s.ok)) for s in seconds]),
        Line("errors", "#d62728", [(s.t, float(s.errors)) for s in seconds]),
        Line("429s", "#ff7f0e", [(s.t, float(s.rate_limited)) for s in seconds])], "seconds", "calls")
    curves = line_chart("percentiles", [
        Line("latency", "#1f77b4", [(i + 1, v) for i, v in enumerate(report.latency_curve)]),
        Line("TTFT", "#9467bd", [(i + 1, v) for i, v in enumerate(report.ttft_curve)])], "percentile", "ms")
    summary = "".join(f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>"
                      for name, value in summary_rows(report))
    targets = "".join(
        f"<tr><td>{escape(row['target'])}</td><td class=n>{row['calls']}</td><td class=n>{row['ok']}</td>"
        f"<td class=n>{row['errors']}</td><td class=n>{row['rate_limited']}</td>"
        + "".join(f"<td class=n>{_ms(row['latency_ms'][p])}</td>" for p in ("p50", "p95", "p99"))
        + f"<td class=n>{_usd(row['cost_usd'])}</td></tr>" for row in report.by_target)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Load test {escape(report.run_id)}'
            f"</title><style>{_STYLE}</style></head><body><h1>Load test {escape(report.run_id)}</h1>"
            f"<table>{summary}</table><h2>By target</h2><table><tr><th>target</th><th>calls</th><th>ok</th>"
            f"<th>errors</th><th>429s</th><th>latency p50</th><th>p95</th><th>p99</th><th>spend</th></tr>{targets}"
            f"</table><h2>Latency over time</h2>{over_time}<h2>Calls a second</h2>{rates}<h2>Percentiles</h2>{curves}"
            "<p>TTFT and latency are what each call waited (queueing, retries and Retry-After waits included), over "
            "the calls that ended ok.</p></body></html>\n")


def render(report: LoadReport, fmt: str) -> str:
    return {"md": markdown, "json": as_json, "html": html}[fmt](report)
