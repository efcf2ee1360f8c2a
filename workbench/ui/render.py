"""Rich text for the Textual face: pane errors, meter rows, trace details (no I/O). Every number in them is
formatted by :mod:`workbench.figures`, as in the CLI. Text from outside (prompts and replies from the trace log,
errors) goes through :func:`~workbench.core.errors.printable`: neither rich nor Textual drops escape sequences, and
a reply must not be able to restyle, clear or retitle the terminal, or set its clipboard."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text

from workbench import figures
from workbench.core.errors import printable
from workbench.figures import elapsed_ms as elapsed_ms
from workbench.figures import metrics_line as metrics
from workbench.figures import ms as fmt_ms
from workbench.figures import timeline as timeline
from workbench.figures import trace_detail as trace_detail
from workbench.figures import usd as fmt_usd

if TYPE_CHECKING:  # core.call_record pulls in httpx2 and tiktoken: not before first paint
    from workbench.core.call_record import CallRecord

__all__ = ["elapsed_ms", "error_line", "fmt_ms", "fmt_usd", "meter_text", "metrics", "timeline", "trace_detail"]
"""The pane figures, a call's detail and the number formats are :mod:`workbench.figures`' (the CLI shows the
same); re-exported."""


def error_line(record: CallRecord) -> Text | None:
    if record.error is None:
        return None
    hint = f"\n  next: {record.error.hint}" if record.error.hint else ""
    return Text(printable(f"✗ {record.error}{hint}"), style="bold red")


def meter_text(rows: list[dict[str, Any]]) -> Text:
    """The editor's live meter, one line per target: tokens in (``≈`` when approximate), USD in → in+max with a
    cold cache, the input with a warm one (when the target would read a cached prefix), headroom."""
    out = Text()
    width = max((len(row["target"]) for row in rows), default=0)
    for row in rows:
        if out:
            out.append("\n")
        out.append(row["target"].ljust(width), style="bold")
        tokens = "counting…" if row["tokens"] is None else figures.tokens(row["tokens"], exact=row["exact"])
        out.append("  in ", style="dim")
        out.append(tokens)
        est = row["estimate"]
        out.append("  USD ", style="dim")
        out.append("…" if est is None else f"{fmt_usd(est.cost_input_usd)} → {fmt_usd(est.cost_max_usd)}")
        if est is not None and est.cache_prefix_tokens and est.cost_input_warm_usd != est.cost_input_usd:
            out.append("  warm ", style="dim")
            out.append(fmt_usd(est.cost_input_warm_usd))
        elif est is not None and est.cache_minimum_tokens is not None:  # a breakpoint under the model's minimum
            out.append(f"  won't be cached (< {est.cache_minimum_tokens:,} tokens)", style="yellow")
        out.append("  headroom ", style="dim")
        if est is None or est.headroom_tokens is None:
            out.append("…" if est is None else "unknown", style="dim")
        else:
            out.append(f"{est.headroom_tokens:,}", style="bold red" if est.headroom_tokens < 0 else "")
    return out
