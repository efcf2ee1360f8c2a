"""Rich renderings only the CLI shows: the live race columns of ``workbench run``, the token-estimate table of
``workbench tokens``, the eval grid of ``workbench eval``. Every number in them is formatted by
:mod:`workbench.figures`, as in the TUI. Text from outside (a reply, its reasoning, an error, a test's name) is shown
through :func:`~workbench.core.errors.printable`: rich passes escape sequences through, and a reply must not be
able to clear the screen, retitle the terminal or set the clipboard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from workbench import figures
from workbench.core.errors import printable

if TYPE_CHECKING:
    from workbench.core.call_record import CallRecord
    from workbench.core.evals.model import CellSummary, RunReport
    from workbench.core.tokens.estimate import Estimate


def record_panel(record: CallRecord, max_lines: int | None = None) -> Panel:
    """One call: its figures (:func:`workbench.figures.metrics_line`), its attempt timeline, its reasoning and
    text (the last ``max_lines`` lines), its error."""
    body: list[RenderableType] = [figures.metrics_line(record)]
    steps = figures.timeline(record)
    if steps is not None:
        body.append(steps)
    body.append(Rule(style="dim"))
    if record.reasoning_parts:
        body.append(Text(printable(record.reasoning), style="dim italic"))
    reply = record.text if max_lines is None else "\n".join(record.text.splitlines()[-max_lines:])
    body.append(Text(printable(reply)))
    if record.error is not None:
        hint = f" ({record.error.hint})" if record.error.hint else ""
        body.append(Text(printable(f"✗ {record.error}{hint}"), style="bold red"))
    border = "red" if record.error is not None else ("green" if record.done else "blue")
    return Panel(Group(*body), title=Text(printable(record.target), style="bold"), border_style=border)


def race_columns(records: Sequence[CallRecord], max_lines: int | None = None) -> Table:
    """``workbench run``: one column per target, live or final."""
    grid = Table.grid(expand=True, padding=(0, 1))
    for _ in records:
        grid.add_column(ratio=1)
    grid.add_row(*(record_panel(r, max_lines) for r in records))
    return grid


def estimates_table(rows: Sequence[Estimate]) -> Table:
    """``workbench tokens``: tokens, cost range, warm-cache cost and context headroom per target."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("target", no_wrap=True)
    for name in ("tokens in", "max out", "cost in → in+max", "warm-cache in", "headroom"):
        table.add_column(name, justify="right")
    for row in rows:
        if row.headroom_tokens is None:
            headroom = Text("unknown", style="dim")
        else:
            headroom = Text(figures.tokens(row.headroom_tokens), style="bold red" if row.headroom_tokens < 0 else "")
        table.add_row(row.target, figures.tokens(row.input_tokens, exact=row.exact), figures.tokens(row.max_tokens),
                      f"{figures.usd(row.cost_input_usd)} → {figures.usd(row.cost_max_usd)}",
                      figures.usd(row.cost_input_warm_usd), headroom)
    return table


def eval_cell(cell: CellSummary | None) -> Text:
    """One grid cell: pass/fail (or the pass rate over repeats, flaky marked), score and latency."""
    if cell is None:
        return Text(figures.NONE, style="dim")
    ok = cell.passes == cell.runs
    verdict = ("✓" if ok else "✗") if cell.runs == 1 else f"{cell.passes}/{cell.runs}"
    text = Text(verdict, style="green" if ok else ("yellow" if cell.flaky else "bold red"))
    if cell.flaky:
        text.append(" flaky", style="yellow")
    text.append(f" {cell.score:.2f} {figures.ms(cell.latency_ms)}", style="dim")
    return text


def eval_table(report: RunReport, limit: int = 200) -> Table:
    """``workbench eval``: tests × (prompt, target), the first ``limit`` rows."""
    columns = list(dict.fromkeys((c.key.prompt, c.key.target) for c in report.cells))
    single_prompt = len({p for p, _ in columns}) == 1
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("test", overflow="ellipsis", max_width=48)
    for prompt, target in columns:
        table.add_column(target if single_prompt else f"{prompt} · {target}", no_wrap=True)
    rows: dict[str, dict[tuple[str, str], CellSummary]] = {}
    names: dict[str, str] = {}
    for cell in report.cells:
        rows.setdefault(cell.key.test, {})[(cell.key.prompt, cell.key.target)] = cell
        names.setdefault(cell.key.test, printable(cell.description or cell.key.test))
    for test, cells in list(rows.items())[:limit]:
        table.add_row(names[test], *(eval_cell(cells.get(column)) for column in columns))
    if len(rows) > limit:
        table.caption = f"{len(rows) - limit} more tests (see --report)"
    return table
