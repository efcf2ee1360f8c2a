"""Rich text for the Textual face: pane errors, meter rows, trace details (no I/O). Every number in them is
formatted by :mod:`workbench.figures`, as in the CLI. Text from outside (prompts and replies from the trace log,
errors) goes through :func:`~workbench.core.errors.printable`: neither rich nor Textual drops escape sequences, and
a reply must not be able to restyle, clear or retitle the terminal, or set its clipboard."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text

from workbench import figures
from workbench.core.errors import printable
from workbench.figures import elapsed_ms as elapsed_ms
from workbench.figures import metrics_line as metrics
from workbench.figures import ms as fmt_ms
from workbench.figures import timeline as timeline
from workbench.figures import usd as fmt_usd

if TYPE_CHECKING:  # core.call_record pulls in httpx2 and tiktoken: not before first paint
    from workbench.core.call_record import CallRecord

__all__ = ["elapsed_ms", "error_line", "fmt_ms", "fmt_usd", "meter_text", "metrics", "timeline", "trace_detail"]
"""The pane figures and number formats are :mod:`workbench.figures`' (the CLI shows the same); re-exported."""


def error_line(record: CallRecord) -> Text | None:
    if record.error is None:
        return None
    hint = f"\n  next: {record.error.hint}" if record.error.hint else ""
    return Text(printable(f"✗ {record.error}{hint}"), style="bold red")


def trace_detail(call: dict[str, Any]) -> Text:
    """The detail panel of the trace browser: metadata, messages, response, attempts."""
    out = Text()

    def field(name: str, value: object, style: str = "") -> None:
        out.append(f"{name:<10}", style="dim")
        out.append(printable(f"{value}\n"), style=style)

    approx = "≈" if call.get("usage_estimated") else ""
    field("id", call["id"])
    field("time", datetime.fromtimestamp(call["ts"]).strftime("%Y-%m-%d %H:%M:%S"))
    field("target", call["target"], "bold")
    if call.get("served_by") and call["served_by"] != call["target"]:
        field("served by", call["served_by"])
    field("status", call["status"], "green" if call["status"] == "ok" else "bold red")
    if call.get("error"):
        field("error", call["error"], "red")
    finish = call.get("finish_reason")
    field("finish", finish or "–", "bold red" if finish in ("length", "error") else "")
    if call.get("input_tokens") is not None:
        field("tokens", f"in {approx}{call['input_tokens']}  out {approx}{call.get('output_tokens')}"
                        f"  cache read {call.get('cache_read_tokens') or 0}")
    field("cost", fmt_usd(call.get("cost_usd")))
    tps = call.get("tokens_per_s")
    field("timing", f"TTFT {fmt_ms(call.get('ttft_ms'))}  total {fmt_ms(call.get('latency_ms'))}  "
                    f"tok/s {figures.rate(tps)}")
    payload = call.get("payload") or {}
    request = json.loads(payload["request_json"]) if payload.get("request_json") else None
    if request is None:
        out.append("\n(prompt not stored: metadata-only tracing)\n", style="italic dim")
    else:
        if request.get("params"):
            field("params", json.dumps(request["params"]))
        if request.get("system"):
            out.append("\n── system ──\n", style="bold cyan")
            out.append(printable(request["system"]) + "\n")
        for message in request.get("messages", []):
            out.append(f"\n── {message['role']} ──\n", style="bold cyan")
            out.append(printable(message["content"]) + "\n")
    if payload.get("reasoning_text"):
        out.append("\n── reasoning ──\n", style="bold cyan")
        out.append(printable(payload["reasoning_text"]) + "\n", style="dim italic")
    out.append("\n── response ──\n", style="bold cyan")
    out.append(printable(payload.get("response_text") or "") + "\n")
    attempts = json.loads(payload["attempts_json"]) if payload.get("attempts_json") else []
    if attempts:
        out.append("\n── attempts ──\n", style="bold cyan")
        for attempt in attempts:
            wait = f"waited {fmt_ms(attempt.get('wait_ms'))} ({attempt.get('wait_reason')}) → " \
                if (attempt.get("wait_ms") or 0) >= 1 else ""
            outcome = "ok" if attempt.get("error") is None else f"{attempt.get('status') or ''} {attempt.get('error')}"
            out.append(printable(f"{wait}{attempt['kind']} {attempt['target']}: {outcome}\n"),
                       style="green" if attempt.get("error") is None else "yellow")
    return out


def meter_text(rows: list[dict[str, Any]]) -> Text:
    """The editor's live meter. Per target: tokens in (``≈`` when approximate), USD in → in+max, headroom."""
    out = Text()
    out.append("Live meter\n", style="bold")
    for row in rows:
        out.append(f"\n{row['target']}\n", style="bold")
        tokens = "counting…" if row["tokens"] is None else figures.tokens(row["tokens"], exact=row["exact"])
        out.append("  in ", style="dim")
        out.append(tokens)
        est = row["estimate"]
        out.append("  USD ", style="dim")
        out.append("…" if est is None else f"{fmt_usd(est.cost_input_usd)} → {fmt_usd(est.cost_max_usd)}")
        out.append("\n  headroom ", style="dim")
        if est is None or est.headroom_tokens is None:
            out.append("…" if est is None else "unknown", style="dim")
        else:
            out.append(f"{est.headroom_tokens:,}", style="bold red" if est.headroom_tokens < 0 else "")
        out.append("\n")
    return out
