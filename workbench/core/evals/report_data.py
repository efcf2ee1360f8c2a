"""A run's report data: its cells summarised from the store, the diff against another run, and its verdict.

A run is judged once, when it ends (:func:`conclude`): by its gate and against the run it is compared
with. Both, the verdict, the reasons in the words the run printed and the exit code are stored with the
run, and every report of it is built from the store (:func:`report_for`), so a report rendered later
says what the run said.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Protocol

from workbench.core.errors import ConfigError
from workbench.core.evals.cache_gate import cache_failures
from workbench.core.evals.diff import diff_runs, gate_failures
from workbench.core.evals.model import CellResult, CellSummary, RunInfo, RunReport
from workbench.core.evals.run_store import EvalStore
from workbench.core.evals.stats import summarise

VERDICTS = ("passed", "failed", "stopped", "interrupted")


class RunSource(Protocol):
    """Where runs are read from: the local :class:`EvalStore`, or the team store
    (:class:`workbench.core.team.queries.TeamRuns`)."""

    def run(self, ref: str, suite: str | None = None) -> RunInfo: ...

    def results(self, run_id: str) -> Iterator[tuple[CellResult, str]]: ...


def cells_of(store: RunSource, run: RunInfo) -> list[CellSummary]:
    pairs = list(store.results(run.id))
    return summarise((result for result, _ in pairs), {result.key.test: text for result, text in pairs})


def report_for(store: RunSource, run: RunInfo, *, compare: RunInfo | None = None,
               gate: float | None = None) -> RunReport:
    """The run's report: under ``gate`` (default: the run's own) and compared with ``compare`` (default:
    the run it was compared with, when it is still stored)."""
    if compare is None and run.compared_with is not None:
        with contextlib.suppress(ConfigError):  # no longer stored: the report says whom it was compared with
            compare = store.run(run.compared_with)
    report = RunReport(run, cells_of(store, run), gate=run.gate if gate is None else gate,
                       batches=store.batches(run.id) if isinstance(store, EvalStore) else [])
    if compare is not None:
        report.diff = diff_runs(RunReport(compare, cells_of(store, compare)), report)
    return report


def conclude(store: EvalStore, run: RunInfo, *, compare: RunInfo | None,
             exit_codes: Mapping[str, int] | None = None, min_cache_hit_ratio: float | None = None) -> RunReport:
    """Judge the ended ``run`` by its gate, against ``compare`` and by the suite's ``min_cache_hit_ratio``
    (:mod:`.cache_gate`); store the verdict, the reasons, the comparison and the exit code (``exit_codes`` by
    verdict; none for the TUI) with it; the report as stored.

    Verdicts: ``passed``/``failed`` for a run that reached its end, ``stopped`` for a budget stop (judged
    on what it ran), ``interrupted`` (not judged)."""
    run.compared_with = None if compare is None else compare.id
    if run.status == "done" or run.stop_reason != "interrupted":
        report = report_for(store, run, compare=compare)
        reasons: list[str] | None = [*gate_failures(report, run.gate),
                                     *cache_failures(report.cells, min_cache_hit_ratio)]
        verdict = "stopped" if run.status != "done" else "failed" if reasons else "passed"
    else:
        reasons, verdict = None, "interrupted"
    store.conclude(run, verdict, reasons, None if exit_codes is None else exit_codes[verdict])
    return report_for(store, store.run(run.id))
