"""Comparing two runs cell by cell, and the reasons a run fails as a CI gate.

Each cell (test × prompt × target) of the head run is classified against the same cell of the base run:

- ``added`` / ``removed``: the cell exists in only one of the runs.
- ``new-failure``: the cell passed every run before and fails every run now (pass → fail for single
  runs, 100% → 0% with repeats).
- ``fixed``: the reverse, failed every run before and passes every run now.
- ``regressed`` / ``improved``: otherwise, the pass rate moved and the 95% Wilson intervals of the two
  pass rates do not overlap, so the move is beyond what repeat-to-repeat noise explains.
- ``noise``: the pass rate moved but the intervals overlap; a cell that always passed and now fails some
  of its repeats (flaky) lands here.
- ``unchanged``: the same pass rate.

For single runs (``runs == 1`` on both sides) this reduces to new-failure, fixed and unchanged: one run
gives intervals too wide to tell anything else apart.
"""

from __future__ import annotations

from workbench.core.evals.model import CellKey, CellSummary, DiffEntry, RunDiff, RunReport

CHANGES = ("new-failure", "regressed", "fixed", "improved", "noise", "added", "removed", "unchanged")
"""Every change kind, the ones that matter first."""

REGRESSIONS = frozenset({"new-failure", "regressed"})
IMPROVEMENTS = frozenset({"fixed", "improved"})


def diff_runs(base: RunReport, head: RunReport) -> RunDiff:
    """Classify every cell of either run: the head's cells in its order, then the cells it no longer has."""
    before = {cell.key: cell for cell in base.cells}
    now = {cell.key for cell in head.cells}
    entries = [DiffEntry(cell.key, _change(before.get(cell.key), cell), before.get(cell.key), cell)
               for cell in head.cells]
    entries += [DiffEntry(cell.key, "removed", cell, None) for cell in base.cells if cell.key not in now]
    return RunDiff(base=base.run, head=head.run, entries=entries)


def beyond_noise(entry: DiffEntry) -> bool:
    """Whether the pass rate moved further than the Wilson intervals of both sides allow for."""
    return entry.base is not None and entry.head is not None and _disjoint(entry.base, entry.head)


def gate_failures(report: RunReport, gate: float | None) -> list[str]:
    """Why the run fails as a CI gate: a pass rate under ``gate``, and every regression of its diff."""
    reasons = []
    if gate is not None and report.pass_rate < gate:
        reasons.append(f"pass rate {percent(report.pass_rate)} ({report.passes}/{report.runs}) "
                       f"is under the gate of {percent(gate)}")
    if report.diff is not None:
        reasons += [f"{entry.change}: {_describe(entry.key)}: {pass_rates(entry)}"
                    for entry in report.diff.entries if entry.change in REGRESSIONS]
    return reasons


def _describe(key: CellKey) -> str:
    return f"test {key.test!r} on prompt {key.prompt!r}, target {key.target!r}"


def pass_rates(entry: DiffEntry) -> str:
    """``100% (3/3) → 33.3% (1/3)``; one side alone for an added or removed cell."""
    return " → ".join(_rate(cell) for cell in (entry.base, entry.head) if cell is not None)


def percent(rate: float) -> str:
    """``80%``, ``66.7%``: one decimal, none when it is zero."""
    return f"{rate * 100:.1f}".removesuffix(".0") + "%"


def _rate(cell: CellSummary) -> str:
    return f"{percent(cell.pass_rate)} ({cell.passes}/{cell.runs})"


def _change(base: CellSummary | None, head: CellSummary) -> str:
    if base is None:
        return "added"
    if _always(base, passed=True) and _always(head, passed=False):
        return "new-failure"
    if _always(base, passed=False) and _always(head, passed=True):
        return "fixed"
    if _disjoint(base, head):
        return "regressed" if head.pass_rate < base.pass_rate else "improved"
    return "unchanged" if base.passes * head.runs == head.passes * base.runs else "noise"


def _disjoint(base: CellSummary, head: CellSummary) -> bool:
    (base_low, base_high), (head_low, head_high) = base.interval, head.interval
    return head_high < base_low or head_low > base_high


def _always(cell: CellSummary, passed: bool) -> bool:
    return cell.runs > 0 and cell.passes == (cell.runs if passed else 0)
