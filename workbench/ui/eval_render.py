"""Rich renderings of eval runs for the TUI's Evals screen: pre-flight, grid cells, a cell's detail, the
diff against the previous run, and the run's summary line. A cell's reply, error and graders' reasons are shown
through :func:`~workbench.core.errors.printable` (no escape sequence of a reply reaches the terminal)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text

from workbench.core.errors import printable
from workbench.figures import about_seconds
from workbench.ui.render import fmt_ms, fmt_usd

if TYPE_CHECKING:
    from workbench.core.evals.model import CellKey, CellResult, CellSummary, RunReport
    from workbench.core.evals.runner import Preflight

_CHANGE_TITLES = {"new-failure": "New failures", "regressed": "Regressions", "fixed": "Fixes",
                  "improved": "Improvements", "noise": "Moved within noise", "added": "Added cells",
                  "removed": "Removed cells"}


def preflight_text(pre: Preflight, concurrency: int) -> Text:
    cost = "unknown" if pre.cost_low_usd is None else f"{fmt_usd(pre.cost_low_usd)} – {fmt_usd(pre.cost_high_usd)}"
    rows = [("calls", f"{pre.calls:,} ({pre.cached:,} cached)"), ("input", f"≈{pre.input_tokens:,} tokens"),
            ("output", f"≤{pre.max_output_tokens:,} tokens"), ("cost", cost),
            ("time", f"{about_seconds(pre.seconds)} at concurrency {concurrency}")]
    out = Text()
    for label, value in rows:
        out.append(f"{label:<8}", style="dim")
        out.append(value + "\n")
    if pre.unpriced:
        out.append(f"no price for {', '.join(pre.unpriced)}\n", style="yellow")
    return out


def cell_text(summary: CellSummary) -> Text:
    """``✓ 1.00 · 412 ms · $0.000100`` (``2/3`` instead of the mark with repeats)."""
    mark = ("✓" if summary.passes == summary.runs else "✗") if summary.runs == 1 else f"{summary.passes}/{summary.runs}"
    errors = sum(r.observation.error is not None for r in summary.results)
    style = "green" if summary.passes == summary.runs else "bold red" if summary.passes == 0 else "yellow"
    out = Text(mark, style=style)
    out.append(f" {summary.score:.2f} · {fmt_ms(summary.latency_ms)} · {fmt_usd(summary.cost_usd)}")
    if errors:
        out.append(f" · {errors} error" + ("s" if errors > 1 else ""), style="bold red")
    elif all(r.cached for r in summary.results):
        out.append(" · cached", style="dim")
    return out


def cell_detail(key: CellKey, results: Sequence[CellResult]) -> Text:
    """Every run of one cell: verdict, figures, trace id, each assertion's grading with its reason, the output."""
    out = Text()
    out.append(printable(key.test), style="bold")
    out.append(f"   prompt {key.prompt} · target {key.target}\n", style="dim")
    if not results:
        out.append("\nNo result yet for this cell.", style="dim")
    for result in results:
        obs = result.observation
        out.append(f"\nrun {result.repeat + 1}: ", style="bold")
        out.append("PASS" if result.passed else "FAIL", style="bold green" if result.passed else "bold red")
        out.append(f"  score {result.score:.2f}  latency {fmt_ms(obs.latency_ms)}  TTFT {fmt_ms(obs.ttft_ms)}  "
                   f"cost {fmt_usd(obs.cost_usd)}  finish {obs.finish or '–'}\n")
        out.append("trace ", style="dim")
        out.append(result.trace_id or ("– (answered from the cache)" if result.cached else "–"))
        out.append("\n")
        if obs.error:
            out.append(printable(f"error: {obs.error}\n"), style="bold red")
        out.append("assertions\n", style="dim")
        for grading in result.gradings:
            out.append("  ✓ " if grading.passed else "  ✗ ", style="green" if grading.passed else "bold red")
            out.append(f"{grading.assertion} ({grading.score:.2f}", style="bold")
            out.append(f", weight {grading.weight:g}): " if grading.weight != 1 else "): ", style="bold")
            out.append(printable(f"{grading.reason}\n"))
        if not result.gradings:
            out.append("  (none: the test passes when the call succeeds)\n", style="dim")
        out.append("output\n", style="dim")
        out.append(printable(obs.text or "(empty)") + "\n")
    return out


def diff_text(report: RunReport, against: str = "the previous run") -> Text:
    """The changes against the previous run (or the run ``against`` says), the ones that matter first, with both
    pass rates."""
    from workbench.core.evals.diff import CHANGES, pass_rates

    diff = report.diff
    if diff is None:
        return Text("No earlier run of this suite to compare with: run it again to see a diff.", style="dim")
    out = Text()
    out.append(f"run {diff.head.id} against {against} {diff.base.id}\n\n", style="dim")
    for change in CHANGES:
        entries = diff.of(change)
        if change == "unchanged":
            out.append(f"{len(entries)} unchanged cell" + ("" if len(entries) == 1 else "s") + "\n", style="dim")
            continue
        if not entries:
            continue
        style = "bold red" if change in ("new-failure", "regressed") else \
            "bold green" if change in ("fixed", "improved") else "bold"
        out.append(f"{_CHANGE_TITLES[change]} ({len(entries)})\n", style=style)
        for entry in entries:
            out.append(f"  {entry.key.test} · {entry.key.prompt} · {entry.key.target}: {pass_rates(entry)}\n")
        out.append("\n")
    return out


def run_summary(report: RunReport, suite_path: str) -> Text:
    from workbench.core.evals.diff import gate_failures, percent

    run = report.run
    failures = gate_failures(report, report.gate)
    out = Text()
    if run.status != "done":
        out.append(f"stopped ({run.stop_reason}): ", style="bold yellow")
    else:
        out.append("FAILED: " if failures else "passed: ", style="bold red" if failures else "bold green")
    out.append(f"{report.passes}/{report.runs} passed ({percent(report.pass_rate)}), {fmt_usd(run.cost_usd)}, "
               f"run {run.id}")
    if run.status != "done":
        out.append(f"\nresume: workbench eval {suite_path} --resume {run.id}", style="dim")
    for reason in failures:
        out.append(f"\n• {reason}", style="red")
    return out
