"""The trace tables as sqlmodel definitions: the columns of ``calls``, ``payloads`` and ``call_tags``.

``calls`` is narrow (~30 small columns, ~200 bytes a row) so browsing a million rows never drags text
along; ``payloads`` holds the text (request messages and params, reply, reasoning, per-chunk timing,
attempts) one row per call; ``call_tags`` makes tags filterable by index. Column names map to the
OpenTelemetry GenAI conventions as listed in :data:`OTEL_ATTRIBUTES`. Only the first migration
(:mod:`workbench.core.traces.schema`) creates tables from these definitions, so opening an existing
store never imports sqlmodel.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import create_engine
from sqlmodel import Field, SQLModel


class CallRow(SQLModel, table=True):
    __tablename__ = "calls"
    __table_args__ = {"sqlite_with_rowid": False}  # clustered on the time-sortable id: one b-tree, not two

    id: str = Field(primary_key=True)
    """ULID: sorts by time."""
    ts: float
    provider: str
    model: str
    target: str
    served_by: str | None = None
    endpoint: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None
    session_id: str | None = None
    eval_run_id: str | None = None
    status: str
    error_class: str | None = None
    error: str | None = None
    finish_reason: str | None = None
    finish_raw: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    usage_estimated: bool = False
    cost_usd: float | None = None
    ttft_ms: float | None = None
    latency_ms: float | None = None
    tokens_per_s: float | None = None
    queue_ms: float | None = None
    attempt_count: int = 1
    request_id: str | None = None
    total_ms: float | None = None
    """What the user waited: the call's start → its end, queueing, retries, waits and fallbacks included."""
    total_ttft_ms: float | None = None
    """The call's start → the first content that reached the user (``ttft_ms`` is the serving attempt's)."""


class PayloadRow(SQLModel, table=True):
    __tablename__ = "payloads"

    rowid: int | None = Field(default=None, primary_key=True)
    call_id: str = Field(unique=True)
    request_json: str | None = None
    """System, messages and params (after redaction); never headers."""
    response_text: str | None = None
    reasoning_text: str | None = None
    attempts_json: str | None = None
    chunk_ms: bytes | None = None
    """Arrival of every content chunk, ms after the request was sent, packed little-endian float32."""


class CallTag(SQLModel, table=True):
    __tablename__ = "call_tags"

    call_id: str = Field(primary_key=True)
    tag: str = Field(primary_key=True)


OTEL_ATTRIBUTES: dict[str, str] = {
    "provider": "gen_ai.provider.name",
    "model": "gen_ai.request.model",
    "served_by": "gen_ai.response.model (as provider/model)",
    "request_id": "gen_ai.response.id",
    "finish_reason": "gen_ai.response.finish_reasons",
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "cache_read_tokens": "gen_ai.usage.cache_read.input_tokens",
    "cache_write_tokens": "gen_ai.usage.cache_creation.input_tokens",
    "reasoning_tokens": "gen_ai.usage.reasoning.output_tokens",
    "ttft_ms": "gen_ai.server.time_to_first_token (s, as a span attribute)",
    "latency_ms": "span duration",
    "error_class": "error.type",
    "endpoint": "server.address",
    "ts": "span start time",
}


def create_tables(conn: sqlite3.Connection) -> None:
    """Create ``calls``, ``payloads`` and ``call_tags`` on ``conn`` from the definitions above."""
    engine = create_engine("sqlite://", creator=lambda: conn)
    SQLModel.metadata.create_all(engine, tables=[SQLModel.metadata.tables[name]
                                                 for name in ("calls", "payloads", "call_tags")])
