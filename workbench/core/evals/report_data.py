"""A run's report data: its cells summarised from the store, and the diff against another run."""

from __future__ import annotations

from workbench.core.evals.diff import diff_runs
from workbench.core.evals.model import CellSummary, RunInfo, RunReport
from workbench.core.evals.run_store import EvalStore
from workbench.core.evals.stats import summarise


def cells_of(store: EvalStore, run: RunInfo) -> list[CellSummary]:
    pairs = list(store.results(run.id))
    return summarise((result for result, _ in pairs), {result.key.test: text for result, text in pairs})


def report_for(store: EvalStore, run: RunInfo, *, compare: RunInfo | None = None,
               gate: float | None = None) -> RunReport:
    report = RunReport(run, cells_of(store, run), gate=gate)
    if compare is not None:
        report.diff = diff_runs(RunReport(compare, cells_of(store, compare)), report)
    return report
