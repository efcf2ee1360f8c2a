"""Rich renderings for the headless faces: the live race columns of ``workbench run``, token estimates, the
eval grid."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from workbench.core.call_record import CallRecord
from workbench.core.evals.model import CellSummary, RunReport
from workbench.core.events import FinishReason
from workbench.core.tokens.estimate import Estimate


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"


def waited(record: CallRecord) -> str | None:
    """What the user waited in all (``total_ms``), when connecting, queueing, retries or fallbacks made it
    differ from the serving attempt's own time noticeably (by 50 ms and 10 %)."""
    total, latency = record.total_ms, record.timing.latency_ms
    if not record.done or total is None or (latency is not None and total - latency < max(50.0, latency / 10)):
        return None
    first = record.total_ttft_ms
    return f"{_fmt_ms(total)}" + (f" (first token at {_fmt_ms(first)})" if first is not None else "")


def metrics_line(record: CallRecord) -> Text:
    """TTFT, tokens/s, tokens in/out, total time and finish reason (``≈`` marks estimates)."""
    timing = record.timing
    usage = record.usage
    approx = "≈" if record.usage_estimated else ""
    tps = record.tokens_per_s
    rate = "–" if tps is None else f"{approx}{tps:.0f}"
    if usage is None and not record.done:  # live: one chunk is about one token
        live = timing.tokens_per_s(len(timing.chunk_ns))
        rate = "–" if live is None else f"≈{live:.0f}"
    parts = [
        ("TTFT ", "dim"), (_fmt_ms(timing.ttft_ms), "bold"),
        ("  tok/s ", "dim"), (rate, "bold"),
    ]
    if usage is not None:
        parts += [("  in/out ", "dim"), (f"{approx}{usage.input_tokens}/{approx}{usage.output_tokens}", "bold")]
    else:
        parts += [("  chunks ", "dim"), (str(len(timing.chunk_ns)), "bold")]
    if record.done:
        parts += [("  total ", "dim"), (_fmt_ms(timing.latency_ms), "bold")]
        if (all_in := waited(record)) is not None:
            parts += [("  waited ", "dim"), (all_in, "bold")]
    if any(a.error_class == "circuit_open" for a in record.attempts):
        parts += [("  breaker ", "dim"), ("open", "bold red")]
    if record.finish is not None:
        style = "bold red" if record.finish in (FinishReason.LENGTH, FinishReason.ERROR) else "green"
        label = record.finish.value
        if record.finish is FinishReason.LENGTH:
            label += " ⚠ hit max_tokens"
        parts += [("  ", ""), (label, style)]
    return Text.assemble(*parts)


def timeline(record: CallRecord) -> Text | None:
    """``503 → waited 0.5 s (backoff) → retry: 503 → fallback fake-anthropic/z: ok``; None for one clean try."""
    attempts = record.attempts
    if len(attempts) <= 1 and all(a.error is None for a in attempts):
        return None
    text = Text(style="yellow")
    for index, attempt in enumerate(attempts):
        if index:
            text.append(" → ")
        if attempt.wait_ms >= 1:
            text.append(f"waited {_fmt_ms(attempt.wait_ms)} ({attempt.wait_reason}) → ")
        label = attempt.kind if attempt.target == record.target else f"{attempt.kind} {attempt.target}"
        outcome = "ok" if attempt.error is None else (str(attempt.status) if attempt.status else attempt.error_class)
        text.append(f"{label}: {outcome}", style="green" if attempt.error is None else "yellow")
    return text


def record_panel(record: CallRecord, max_lines: int | None = None) -> Panel:
    body: list[RenderableType] = [metrics_line(record)]
    steps = timeline(record)
    if steps is not None:
        body.append(steps)
    body.append(Rule(style="dim"))
    if record.reasoning_parts:
        body.append(Text(record.reasoning, style="dim italic"))
    text = Text(record.text)
    if max_lines is not None:
        lines = record.text.splitlines()[-max_lines:]
        text = Text("\n".join(lines))
    body.append(text)
    if record.error is not None:
        hint = f" ({record.error.hint})" if record.error.hint else ""
        body.append(Text(f"✗ {record.error}{hint}", style="bold red"))
    border = "red" if record.error is not None else ("green" if record.done else "blue")
    return Panel(Group(*body), title=Text(record.target, style="bold"), border_style=border)


def race_columns(records: Sequence[CallRecord], max_lines: int | None = None) -> Table:
    grid = Table.grid(expand=True, padding=(0, 1))
    for _ in records:
        grid.add_column(ratio=1)
    grid.add_row(*(record_panel(r, max_lines) for r in records))
    return grid


def _usd(value: object) -> str:
    if value is None:
        return "unknown"
    amount = float(value)  # type: ignore[arg-type]
    return f"{amount:.6f}" if amount < 0.01 else f"{amount:.4f}"


def estimates_table(rows: Sequence[Estimate]) -> Table:
    """``workbench tokens``: tokens, cost range, warm-cache cost and context headroom per target."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("target", no_wrap=True)
    for name in ("tokens in", "max out", "USD in → in+max", "warm-cache in", "headroom"):
        table.add_column(name, justify="right")
    for row in rows:
        tokens = f"{row.input_tokens:,}" if row.exact else f"≈{row.input_tokens:,}"
        if row.headroom_tokens is None:
            headroom = Text("unknown", style="dim")
        else:
            headroom = Text(f"{row.headroom_tokens:,}", style="bold red" if row.headroom_tokens < 0 else "")
        table.add_row(row.target, tokens, f"{row.max_tokens:,}",
                      f"{_usd(row.cost_input_usd)} → {_usd(row.cost_max_usd)}", _usd(row.cost_input_warm_usd), headroom)
    return table


def eval_cell(cell: CellSummary | None) -> Text:
    """One grid cell: pass/fail (or the pass rate over repeats, flaky marked), score and latency."""
    if cell is None:
        return Text("–", style="dim")
    ok = cell.passes == cell.runs
    verdict = ("✓" if ok else "✗") if cell.runs == 1 else f"{cell.passes}/{cell.runs}"
    text = Text(verdict, style="green" if ok else ("yellow" if cell.flaky else "bold red"))
    if cell.flaky:
        text.append(" flaky", style="yellow")
    text.append(f" {cell.score:.2f} {_fmt_ms(cell.latency_ms)}", style="dim")
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
        names.setdefault(cell.key.test, cell.description or cell.key.test)
    for test, cells in list(rows.items())[:limit]:
        table.add_row(names[test], *(eval_cell(cells.get(column)) for column in columns))
    if len(rows) > limit:
        table.caption = f"{len(rows) - limit} more tests (see --report)"
    return table
