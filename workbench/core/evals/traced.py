"""The answers a run's calls left in the trace log, for ``--resume`` to reuse instead of calling again.

A process that dies between a call's trace (committed within 0.1 s) and its result (within a second)
leaves calls that were made, and billed, but have no result. Every eval call is traced with its run's
id and its cell (``eval_cell``: :attr:`workbench.core.evals.runner.Cell.identity`), so resuming grades
those answers as they are in the log. Not reused: calls cancelled mid-way (no answer), and calls traced
without their text (metadata-only traces): those cells are called again.
"""

from __future__ import annotations

import json
from collections.abc import Container
from dataclasses import dataclass

from workbench.core.evals.model import Observation
from workbench.core.traces.store import TraceStore


@dataclass(frozen=True, slots=True)
class TracedAnswer:
    trace_id: str
    observation: Observation
    """The call as the log holds it (text after redaction), without the test's variables and prompt; its text is
    the reply's text (not yet the output of a reply with tool calls: :func:`~.tool_replies.reply_output`)."""
    ok: bool


def traced_answers(traces: TraceStore, run_id: str, *, skip: Container[str] = ()) -> dict[str, TracedAnswer]:
    """Each cell (and judge call) of ``run_id`` the log holds an answer for, by ``eval_cell``, except those
    of the cells in ``skip`` (identities of cells with a stored result); the latest answer when there are
    several."""
    wanted: dict[str, str] = {}
    rows = traces.conn.execute(
        "SELECT id, eval_cell FROM calls WHERE eval_run_id = ? AND eval_cell IS NOT NULL "
        "AND coalesce(error_class, '') != 'cancelled' ORDER BY id", (run_id,))
    for call_id, cell in rows:
        try:
            parts = json.loads(cell)
        except ValueError:
            continue
        if not isinstance(parts, list):
            continue
        if json.dumps(parts[:4], ensure_ascii=False) not in skip:  # a judge's call: its cell's first four
            wanted[cell] = call_id
    answers = {}
    for cell, call_id in wanted.items():
        row = traces.conn.execute(
            "SELECT c.status, c.error, c.finish_reason, c.latency_ms, c.ttft_ms, c.cost_usd, c.input_tokens, "
            "c.output_tokens, c.reasoning_tokens, c.cache_read_tokens, p.request_json, p.response_text, "
            "p.tool_calls_json FROM calls c JOIN payloads p ON p.call_id = c.id WHERE c.id = ?", (call_id,)).fetchone()
        if row is None or row["request_json"] is None:  # metadata-only: the text is not in the log
            continue
        observation = Observation(text=row["response_text"] or "", finish=row["finish_reason"],
                                  latency_ms=row["latency_ms"], ttft_ms=row["ttft_ms"], cost_usd=row["cost_usd"],
                                  input_tokens=row["input_tokens"], output_tokens=row["output_tokens"],
                                  error=row["error"] if row["status"] == "error" else None,
                                  tool_calls=json.loads(row["tool_calls_json"] or "[]"),
                                  reasoning_tokens=row["reasoning_tokens"], cache_read_tokens=row["cache_read_tokens"])
        answers[cell] = TracedAnswer(call_id, observation, row["status"] == "ok")
    return answers


def traced_spend(traces: TraceStore, run_id: str) -> float:
    """What the run's traced calls cost (calls and judges, cancelled ones included)."""
    spent: float | None = traces.conn.execute("SELECT sum(cost_usd) FROM calls WHERE eval_run_id = ?",
                                              (run_id,)).fetchone()[0]
    return spent or 0.0
