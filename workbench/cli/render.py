"""Rich renderings only the CLI shows: the live race columns of ``workbench run``, the token-estimate table of
``workbench tokens``, the eval grid of ``workbench eval``, and how every table of the CLI is built and printed
(numbers never wrap, target names give way in the middle to fit a terminal, a table printed to a pipe or a file
keeps the full width of its content). Every number in them is formatted by :mod:`workbench.figures`, as in the
TUI. Text from outside (a reply, its reasoning, an error, a test's name) is shown through
:func:`~workbench.core.errors.printable`: rich passes escape sequences through, and a reply must not be able to
clear the screen, retitle the terminal or set the clipboard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
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


TARGET_MIN_WIDTH = 12
"""The narrowest a target's name gets in a crowded table (``fake/gp…mini``)."""
UNBOUNDED = 100_000
"""The width a table is measured in when nothing bounds it (output that is not a terminal)."""


class Target:
    """A target's name in a table: whole when it fits, else shortened in the middle to the width its column gets
    (:func:`workbench.figures.short_target`), never wrapped."""

    def __init__(self, name: str, style: str = "") -> None:
        self.name, self.style = printable(name), style

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = cell_len(self.name)
        return Measurement(min(width, TARGET_MIN_WIDTH), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(figures.short_target(self.name, options.max_width), style=self.style, no_wrap=True)


def new_table(*columns: str, numbers: Sequence[str] = (), whole: Sequence[str] = ()) -> Table:
    """A CLI table: ``numbers`` are right-aligned and never wrap, nor do the ``whole`` columns (ids, times); the
    others (targets, names) give way when a terminal is too narrow. A header may span lines (``"TTFT\\np50/p95"``),
    so that it is no wider than its numbers."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in columns:
        table.add_column(name, justify="right" if name in numbers else "left",
                         no_wrap=name in numbers or name in whole)
    return table


def print_table(table: Table, console: Console) -> None:
    """``table`` fitted to the terminal, or at the full width of its content when the output is not a terminal
    (a pipe, a file: nothing cut nor wrapped, whatever COLUMNS says). Later prints on ``console`` keep that width."""
    if not console.is_terminal:
        console.width = max(console.measure(table, options=console.options.update_width(UNBOUNDED)).maximum,
                            console.width)
    console.print(table)


def record_panel(record: CallRecord, max_lines: int | None = None, width: int | None = None) -> Panel:
    """One call: its figures (:func:`workbench.figures.metrics_line`), its attempt timeline, its reasoning and
    text (the last ``max_lines`` lines), its tool calls, its provider blocks, its refusal, a paused turn, its error;
    given the panel's ``width``, its figures break only between two of them and its target (the title) is
    shortened in the middle to fit."""
    inner = None if width is None else width - 4  # the borders and the padding
    body: list[RenderableType] = [figures.metrics_line(record, width=inner)]
    steps = figures.timeline(record)
    if steps is not None:
        body.append(steps)
    body.append(Rule(style="dim"))
    if record.reasoning_parts:
        body.append(Text(printable(record.reasoning), style="dim italic"))
    reply = record.text if max_lines is None else "\n".join(record.text.splitlines()[-max_lines:])
    notes = figures.reply_notes(record)  # its refusal, provider blocks, a paused turn
    if reply or not (record.tool_calls or notes):
        body.append(Text(printable(reply)))
    for call in record.tool_calls:  # a reply that calls tools: each call on its line
        body.append(Text(printable(f"→ {call.name}({call.arguments})"), style="cyan"))
    body.extend(notes)
    if record.error is not None:
        hint = f" ({record.error.hint})" if record.error.hint else ""
        body.append(Text(printable(f"✗ {record.error}{hint}"), style="bold red"))
    border = "red" if record.error is not None else ("green" if record.done else "blue")
    title = printable(record.target)
    if width is not None:
        title = figures.short_target(title, width - TITLE_MARGIN)
    return Panel(Group(*body), title=Text(title, style="bold"), border_style=border)


TITLE_MARGIN = 6
"""Around a panel's title: its corners, the rules beside the title and the title's padding."""


class RacePane:
    """:func:`record_panel` fitted to the width it is given."""

    def __init__(self, record: CallRecord, max_lines: int | None) -> None:
        self.record, self.max_lines = record, max_lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield record_panel(self.record, self.max_lines, options.max_width)


def race_columns(records: Sequence[CallRecord], max_lines: int | None = None) -> Table:
    """``workbench run``: one column per target, live or final."""
    grid = Table.grid(expand=True, padding=(0, 1))
    for _ in records:
        grid.add_column(ratio=1)
    grid.add_row(*(RacePane(r, max_lines) for r in records))
    return grid


def estimates_table(rows: Sequence[Estimate]) -> Table:
    """``workbench tokens``: tokens, cost range, warm-cache cost and context headroom per target."""
    numbers = ("tokens in", "max out", "cost in → in+max", "warm-cache in", "headroom")
    table = new_table("target", *numbers, numbers=numbers)
    for row in rows:
        if row.headroom_tokens is None:
            headroom = Text("unknown", style="dim")
        else:
            headroom = Text(figures.tokens(row.headroom_tokens), style="bold red" if row.headroom_tokens < 0 else "")
        table.add_row(Target(row.target), figures.tokens(row.input_tokens, exact=row.exact),
                      figures.tokens(row.max_tokens),
                      f"{figures.usd(row.cost_input_usd)} → {figures.usd(row.cost_max_usd)}",
                      figures.usd(row.cost_input_warm_usd) if row.cache_minimum_tokens is None else
                      Text(f"won't be cached (< {figures.tokens(row.cache_minimum_tokens)})", style="yellow"),
                      headroom)
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


def eval_failures(report: RunReport, limit: int = 5) -> list[str]:
    """Under ``workbench eval``'s grid: why the first ``limit`` failing cells failed, one line each (its error, else
    its first failing assertion), then how many more and where to read them all."""
    from workbench.core.evals.report_formats import failure_reason

    failing = [cell for cell in report.cells if cell.passes < cell.runs]
    lines = []
    for cell in failing[:limit]:
        reason = " ".join(printable(failure_reason(cell)).split())
        reason = reason if len(reason) <= 200 else reason[:199] + "…"
        lines.append(f"  ✗ {' '.join(printable(cell.description or cell.key.test).split())} · {cell.key.target}: "
                     f"{reason}")
    if len(failing) > limit:
        lines.append(f"  … {len(failing) - limit} more failing cells: `workbench evals show {report.run.id}`")
    return lines


def eval_table(report: RunReport, limit: int = 200) -> Table:
    """``workbench eval``: tests × (prompt, target), the first ``limit`` rows."""
    columns = list(dict.fromkeys((c.key.prompt, c.key.target) for c in report.cells))
    single_prompt = len({p for p, _ in columns}) == 1
    rows: dict[str, dict[tuple[str, str], CellSummary]] = {}
    names: dict[str, str] = {}
    for cell in report.cells:
        rows.setdefault(cell.key.test, {})[(cell.key.prompt, cell.key.target)] = cell
        names.setdefault(cell.key.test, printable(cell.description or cell.key.test))
    shown = list(rows.items())[:limit]
    grid = [[eval_cell(cells.get(column)) for column in columns] for _, cells in shown]
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("test", overflow="ellipsis", max_width=48)
    for index, (prompt, target) in enumerate(columns):  # a header gives way, its cells never do
        table.add_column(Target(target if single_prompt else f"{prompt} · {target}"),
                         min_width=max((cell_len(str(line[index])) for line in grid), default=1))
    for (test, _), line in zip(shown, grid, strict=True):
        table.add_row(names[test], *line)
    if len(rows) > limit:
        table.caption = f"{len(rows) - limit} more tests (see --report)"
    return table
