"""Every number both faces show, written once: durations, token counts, rates, costs, the figures of a race
pane (its metric line and its attempt timeline), a traced call's detail (``workbench traces show``, the trace
browser's panel) and an eval run's batch phase (its plan, each batch's events: ``eval --batch``, the Evals screen).
A figure reads the same in ``workbench run`` and in the TUI.

Plain strings, or rich ``Text`` where a figure carries a style (rich renders in both faces; textual is never
imported here, and neither is :mod:`workbench.core.call_record`, which pulls in httpx2 and tiktoken: the TUI
imports this module before its first paint).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from rich.text import Text

from workbench.core.errors import printable
from workbench.core.events import FinishReason

if TYPE_CHECKING:
    from workbench.core.call_record import CallRecord
    from workbench.core.evals.batch_run import BatchEvent, BatchPlan

UNKNOWN = "?"
"""A figure that cannot be known (a cost without a price)."""
NONE = "–"
"""A figure that does not exist (yet): no first token, no rate."""
APPROX = "≈"
"""Marks an estimate (usage counted offline, tokens counted with a local tokenizer, a live rate)."""
ELLIPSIS = "…"
"""Where a name was shortened."""


def ms(value: float | None) -> str:
    """A duration: ``412 ms`` under 10 s, ``12.3 s`` from there, ``–`` when there is none."""
    if value is None:
        return NONE
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"


def about_seconds(value: float) -> str:
    """An estimated duration: ``<0.1 s``, ``≈0.7 s`` (one decimal under 10 s: a short run is never ``0 s``),
    ``≈42 s``."""
    if value < 0.1:
        return "<0.1 s"
    return f"{APPROX}{value:.1f} s" if value < 10 else f"{APPROX}{value:.0f} s"


def ms_pair(low: float | None, high: float | None, mark: str = "") -> str:
    """Two durations sharing their unit: ``151/160 ms``, ``12.3/15.0 s``, ``412 ms/12.3 s``; ``mark`` (``≈``) leads
    when either exists."""
    if low is None and high is None:
        return f"{NONE}/{NONE}"
    first, second = ms(low), ms(high)
    unit = first.rpartition(" ")[2]
    if first != NONE and second != NONE and unit == second.rpartition(" ")[2]:
        first = first.rpartition(" ")[0]
    return f"{mark}{first}/{second}"


def short_target(name: str, width: int) -> str:
    """A target's name in at most ``width`` characters, shortened in the middle: the provider and both ends of the
    model stay (``openai/gpt-4o…-08-06``), as they are what tells targets apart."""
    if len(name) <= width:
        return name
    if width <= 1:
        return ELLIPSIS[:max(width, 0)]
    provider, slash, model = name.partition("/")
    head, room = provider + slash, width - 1 - len(provider + slash)
    if not slash or room < 4:  # no room for the model's ends: the name's own ends
        head, model, room = "", name, width - 1
    tail = (room + 1) // 2
    return f"{head}{model[:room - tail]}{ELLIPSIS}{model[len(model) - tail:]}"


def usd(value: object) -> str:
    """A cost in US dollars: ``$0.000123`` under a cent, ``$0.0123`` from there, ``?`` when unknown (never $0)."""
    if value is None:
        return UNKNOWN
    amount = float(str(value))  # a float or a Decimal
    return f"${amount:.6f}" if amount < 0.01 else f"${amount:.4f}"


def tokens(count: int, *, exact: bool = True) -> str:
    """A token count with thousands separators, ``≈`` when estimated: ``1,234``, ``≈1,234``."""
    return f"{'' if exact else APPROX}{count:,}"


def rate(value: float | None, *, approx: bool = False) -> str:
    """Tokens per second, whole: ``42``, ``≈42``, ``–``."""
    return NONE if value is None else f"{APPROX if approx else ''}{value:.0f}"


def share(value: float | None) -> str:
    """A ratio as a whole percentage: ``42%``, ``–``."""
    return NONE if value is None else f"{value:.0%}"


def elapsed_ms(record: CallRecord, now_ns: int | None = None) -> float | None:
    """The call's time: its latency once done, else the time since it was sent (or started)."""
    timing = record.timing
    if record.done:
        return timing.latency_ms
    origin = timing.sent_ns if timing.sent_ns is not None else timing.started_ns
    now = time.perf_counter_ns() if now_ns is None else now_ns
    return None if origin is None else (now - origin) / 1e6


def waited(record: CallRecord) -> str | None:
    """What the user waited in all (``total_ms``), when connecting, queueing, retries or fallbacks made it
    differ from the serving attempt's own time noticeably (by 50 ms and 10 %)."""
    total, latency = record.total_ms, record.timing.latency_ms
    if not record.done or total is None or (latency is not None and total - latency < max(50.0, latency / 10)):
        return None
    first = record.total_ttft_ms
    return ms(total) + (f" (first token at {ms(first)})" if first is not None else "")


class Figure(NamedTuple):
    """One figure of a pane: its label (empty for the finish reason), its value, the value's style."""

    label: str
    value: str
    style: str = "bold"


_FINISH_NOTES = {FinishReason.LENGTH: " ⚠ hit max_tokens", FinishReason.CONTENT_FILTER: " ⚠ refused",
                 FinishReason.PAUSE_TURN: " ⏸ paused"}


def pane_figures(record: CallRecord, now_ns: int | None = None) -> list[Figure]:
    """The figures of one call, live or final, in the order both faces show them: TTFT, tokens/s, time,
    tokens in/out (``≈`` marks estimates; while streaming, chunks count as tokens), the prompt cache's reads and
    writes when there were any, cost, what was waited in
    all, an open circuit breaker, and the finish reason (or ``streaming…``/``waiting…``)."""
    timing, usage = record.timing, record.usage
    estimated = record.usage_estimated
    if usage is not None:
        speed = rate(record.tokens_per_s, approx=estimated)
        counts = f"{tokens(usage.input_tokens, exact=not estimated)}/{tokens(usage.output_tokens, exact=not estimated)}"
    else:  # live: one chunk is about one token
        speed = rate(timing.tokens_per_s(len(timing.chunk_ns)), approx=True)
        counts = f"{NONE}/{tokens(len(timing.chunk_ns), exact=False)}"
    figures = [Figure("TTFT", ms(timing.ttft_ms))]
    if timing.first_reasoning_ns is not None:  # it reasoned first: when the answer began too
        figures.append(Figure("answer", ms(timing.ttft_answer_ms)))
    figures += [Figure("tok/s", speed), Figure("time", ms(elapsed_ms(record, now_ns))), Figure("in/out", counts)]
    if usage is not None and (usage.cache_read_tokens or usage.cache_write_tokens):
        figures.append(Figure("cache", cache_counts(usage.cache_read_tokens, usage.cache_write_tokens)))
    if record.done:
        figures.append(Figure("cost", usd(record.cost_usd)))
        if (all_in := waited(record)) is not None:
            figures.append(Figure("waited", all_in))
    if any(a.error_class == "circuit_open" for a in record.attempts):
        figures.append(Figure("breaker", "open", "bold red"))
    if record.finish is not None:
        bad = record.finish in (FinishReason.LENGTH, FinishReason.ERROR)
        label = record.finish.value + _FINISH_NOTES.get(record.finish, "")
        style = "bold red" if bad else "bold yellow" if record.finish in _FINISH_NOTES else "bold green"
        figures.append(Figure("", label, style))
    elif not record.done:
        figures.append(Figure("", "streaming…" if timing.chunk_ns else "waiting…", "italic"))
    return figures


PAUSED = "⏸ paused: the provider will continue this turn: re-run to continue"
"""Under a reply that ended ``pause_turn`` (Anthropic: a server tool's turn, continued when asked again)."""
BLOCK_CHARS = 300
"""How much of a provider block's content a pane shows (the rest is in ``--json`` and the trace log)."""


def refusal_line(refusal: str | None, category: str | None, raw: str | None) -> Text | None:
    """``refused [category]: its text`` (the raw finish when it has no text); ``None`` when not refused."""
    if refusal is None:
        return None
    tag = f" [{category}]" if category else ""
    said = f": {refusal}" if refusal else f" ({raw})" if raw else ""
    return Text(printable(f"refused{tag}{said}"), style="bold yellow")


def block_line(kind: str, name: str, content: str) -> Text:
    """A provider block: ``⚙ server_tool_use web_search: {"query":"…"}`` (its content cut at :data:`BLOCK_CHARS`)."""
    shown = content if len(content) <= BLOCK_CHARS else content[:BLOCK_CHARS - 1] + ELLIPSIS
    return Text(printable(f"⚙ {kind}{' ' + name if name else ''}{': ' + shown if shown else ''}"), style="magenta")


def reply_notes(record: CallRecord) -> list[Text]:
    """What a reply holds besides its text and tool calls, a line each, as both faces show it: its refusal, its
    provider blocks (server tools and their results, a model fallback, a compaction), a paused turn."""
    lines = [block_line(b.type, b.name, b.content) for b in record.blocks]
    refused = refusal_line(record.refusal, record.refusal_category, record.finish_raw)
    if refused is not None:
        lines.append(refused)
    if record.finish is FinishReason.PAUSE_TURN:
        lines.append(Text(PAUSED, style="yellow"))
    return lines


def cache_counts(read: int | None, write: int | None) -> str:
    """A call's prompt-cache figure: ``read 1,888``, ``write 1,888`` or both (what the provider reported)."""
    return "  ".join(f"{label} {count:,}" for label, count in (("read", read), ("write", write)) if count)


def _count(value: int | None) -> str:
    """A token count of the trace log, ``–`` when the provider did not report it."""
    return NONE if value is None else f"{value:,}"


def metrics_line(record: CallRecord, now_ns: int | None = None, width: int | None = None) -> Text:
    """:func:`pane_figures` on one line: ``TTFT 120 ms  tok/s 42  time 800 ms  in/out 17/64  cost $0.000123  stop``;
    given a ``width``, on as many lines as it takes, a line breaking only between two figures."""
    parts: list[tuple[str, str]] = []
    used = 0
    for index, figure in enumerate(pane_figures(record, now_ns)):
        label = f"{figure.label} " if figure.label else ""
        size = len(label) + len(figure.value)
        gap = "" if not index else ("\n" if width is not None and used + 2 + size > width else "  ")
        used = (used + len(gap) + size) if gap != "\n" else size
        parts += [(gap + label, "dim"), (figure.value, figure.style)]
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
            text.append(f"waited {ms(attempt.wait_ms)} ({attempt.wait_reason}) → ")
        label = attempt.kind if attempt.target == record.target else f"{attempt.kind} {attempt.target}"
        outcome = "ok" if attempt.error is None else (str(attempt.status) if attempt.status else attempt.error_class)
        text.append(f"{label}: {outcome}", style="green" if attempt.error is None else "yellow")
    return text


def trace_detail(call: dict[str, Any]) -> Text:
    """A call of the trace log (:meth:`TraceStore.get <workbench.core.traces.store.TraceStore.get>`): its fields,
    then its messages, then its reply and attempts. Text from outside goes through :func:`printable`."""
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
                        f"  cache read {_count(call.get('cache_read_tokens'))}"
                        f"  write {_count(call.get('cache_write_tokens'))}")
    field("cost", usd(call.get("cost_usd")))
    if call.get("prompt_name"):
        version = call.get("prompt_version")
        field("prompt", call["prompt_name"] + (f" v{version}" if version is not None else ""))
    for name, key in (("session", "session_id"), ("eval run", "eval_run_id")):
        if call.get(key):
            field(name, call[key])
    if call.get("tags"):
        field("tags", ", ".join(call["tags"]))
    tps = call.get("tokens_per_s")
    reasoned = call.get("ttft_reasoning_ms") is not None
    answer = f"  reasoning {ms(call['ttft_reasoning_ms'])}  answer {ms(call.get('ttft_answer_ms'))}" if reasoned else ""
    field("timing", f"TTFT {ms(call.get('ttft_ms'))}{answer}  total {ms(call.get('latency_ms'))}  "
                    f"tok/s {rate(tps)}")
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
            answers = f" {message['tool_call_id']}" if message.get("tool_call_id") else ""
            out.append(printable(f"\n── {message['role']}{answers} ──\n"), style="bold cyan")
            if message["content"] or not message.get("tool_calls"):
                out.append(printable(message["content"]) + "\n")
            for turn_call in message.get("tool_calls") or ():
                name, arguments, call_id = turn_call.get("name"), turn_call.get("arguments"), turn_call.get("id")
                out.append(printable(f"→ {name}({arguments})  id {call_id}\n"))
            for attached in message.get("attached") or ():  # what the file was: never its bytes
                shape = f"{attached.get('width')}×{attached.get('height')}  " if attached.get("width") else ""
                out.append(printable(f"attached {attached.get('name')}  {attached.get('media_type')}  {shape}"
                                     f"{attached.get('size'):,} B  sha256 {attached.get('sha256')}\n"), style="dim")
    if payload.get("reasoning_text"):
        out.append("\n── reasoning ──\n", style="bold cyan")
        out.append(printable(payload["reasoning_text"]) + "\n", style="dim italic")
    out.append("\n── response ──\n", style="bold cyan")
    out.append(printable(payload.get("response_text") or "") + "\n")
    for block in json.loads(payload["blocks_json"]) if payload.get("blocks_json") else []:
        out.append_text(block_line(str(block.get("type")), str(block.get("name") or ""),
                                   str(block.get("content") or "")))
        out.append("\n")
    refused = refusal_line(payload.get("refusal_text"), payload.get("refusal_category"), call.get("finish_raw"))
    if refused is not None:
        out.append_text(refused)
        out.append("\n")
    tool_calls = json.loads(payload["tool_calls_json"]) if payload.get("tool_calls_json") else []
    if tool_calls:
        out.append("\n── tool calls ──\n", style="bold cyan")
        asked = sum(len(m.get("tool_calls") or ()) for m in (request or {}).get("messages", ()))
        for index, call in enumerate(tool_calls):
            arguments = call.get("arguments")
            named = call.get("id") or f"call_{asked + index} (by position)"  # as `run --continue` names it
            out.append(printable(f"{call.get('name')}({'…' if arguments is None else arguments})  id {named}\n"))
    attempts = json.loads(payload["attempts_json"]) if payload.get("attempts_json") else []
    if attempts:
        out.append("\n── attempts ──\n", style="bold cyan")
        for attempt in attempts:
            wait = f"waited {ms(attempt.get('wait_ms'))} ({attempt.get('wait_reason')}) → " \
                if (attempt.get("wait_ms") or 0) >= 1 else ""
            outcome = "ok" if attempt.get("error") is None else f"{attempt.get('status') or ''} {attempt.get('error')}"
            out.append(printable(f"{wait}{attempt['kind']} {attempt['target']}: {outcome}\n"),
                       style="green" if attempt.get("error") is None else "yellow")
    return out


def batch_plan_text(plan: BatchPlan) -> str:
    """What goes in batches, what runs online, and the batch price against the online one."""
    from workbench.core.evals.batch_run import BATCH_RATE

    parts = []
    if plan.cells:
        routes = "; ".join(f"{target}: {route}" for target, route in plan.routes.items())
        parts.append(f"{plan.cells} cell(s) in {plan.batches} new batch(es) ({routes})")
    if plan.waiting:
        parts.append(f"{plan.waiting} cell(s) in batches submitted before")
    if plan.online:
        parts.append(f"{sum(plan.online.values())} cell(s) online (no batch API: {', '.join(plan.online)})")
    if plan.over_budget:
        parts.append(f"{plan.over_budget} cell(s) online under --max-cost (a batch's worst case past the budget: it "
                     "cannot be stopped half-way)")
    if not parts:
        parts.append("nothing to batch")
    text = "batch: " + ", ".join(parts)
    if plan.cells and not plan.unpriced:
        low, high = plan.online_low * BATCH_RATE, plan.online_high * BATCH_RATE
        text += (f"; {usd(low)}–{usd(high)} at the batch rate ({BATCH_RATE:.0%} of the online price) instead of "
                 f"{usd(plan.online_low)}–{usd(plan.online_high)} online: saves {usd(plan.online_low - low)}–"
                 f"{usd(plan.online_high - high)}")
    elif plan.unpriced:
        text += f"; no price for {', '.join(sorted(plan.unpriced))}"
    return text


def batch_event_text(event: BatchEvent) -> str:
    """One event of a run's batch phase: a batch submitted, its new state, collected, refused or not read."""
    batch = event.batch
    where = f"{batch.batch_id} ({event.target or batch.target})" if batch is not None else event.target
    if event.kind == "submitted":
        return f"batch {where}: submitted, {event.cells} request(s)"
    if event.kind == "state" and event.status is not None:
        return f"batch {where}: {event.status.line()}"
    if event.kind == "collected":
        return f"batch {where}: collected {event.cells} result(s)"
    if event.kind == "unsubmitted":
        return f"batch for {where} not submitted ({event.error}): its {event.cells} cell(s) run online"
    if event.kind == "left":
        return f"batch {where}: not waited for ({event.error})"
    return f"batch {where}: state not read ({event.error}); reading again later"
