"""The trace tables (sqlmodel) and their migrations.

``calls`` is narrow (~30 small columns, ~200 bytes a row) so browsing a million rows never drags text
along; ``payloads`` holds the text (request messages and params, reply, reasoning, per-chunk timing,
attempts) one row per call; ``call_tags`` makes tags filterable by index; ``payloads_fts`` is an
external-content FTS5 index over the prompt and the reply, filled in the background rather than by
triggers, so writes never pay for it (``fts_state`` keeps its high-water mark). Column names map to
the OpenTelemetry GenAI conventions as listed in :data:`OTEL_ATTRIBUTES`. The ``rollup_*`` tables
(migration 2, :mod:`workbench.core.traces.rollup`) keep per-day counters and latency histograms that
the writer updates in each batch's transaction, so ``stats`` never scans the calls. Migration 3 trims
the secondary indexes on ``calls`` to what the filters need. The schema version
is SQLite's ``user_version``; migrations run in order.
"""

from __future__ import annotations

import sqlite3

from sqlmodel import Field, SQLModel

from workbench.core.traces import rollup


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

_INDEXES = (
    "CREATE INDEX IF NOT EXISTS calls_target ON calls (target, id)",
    "CREATE INDEX IF NOT EXISTS calls_provider ON calls (provider, id)",
    "CREATE INDEX IF NOT EXISTS calls_status ON calls (status, id)",
    "CREATE INDEX IF NOT EXISTS calls_prompt ON calls (prompt_name, prompt_version, id)",
    "CREATE INDEX IF NOT EXISTS calls_session ON calls (session_id, id) WHERE session_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS calls_eval ON calls (eval_run_id, id) WHERE eval_run_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS call_tags_tag ON call_tags (tag, call_id)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS payloads_fts USING fts5(request_json, response_text, "
    "content='payloads', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TABLE IF NOT EXISTS fts_state (id INTEGER PRIMARY KEY CHECK (id = 1), indexed_rowid INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO fts_state (id, indexed_rowid) VALUES (1, 0)",
)


def _migration_1(conn: sqlite3.Connection) -> None:
    from sqlalchemy import create_engine

    engine = create_engine("sqlite://", creator=lambda: conn)
    tables = [SQLModel.metadata.tables[name] for name in ("calls", "payloads", "call_tags")]
    SQLModel.metadata.create_all(engine, tables=tables)
    for statement in _INDEXES:
        conn.execute(statement)


def _migration_2(conn: sqlite3.Connection) -> None:
    """Rollup tables for ``stats`` (backfilled from the calls: about 12 s a million calls), and an index
    for the prompt-name filter (``calls_prompt`` cannot give a prompt's calls in id order)."""
    for statement in rollup.TABLES:
        conn.execute(statement)
    conn.execute("CREATE INDEX IF NOT EXISTS calls_prompt_name ON calls (prompt_name, id)")
    rollup.rebuild(conn)


def _migration_3(conn: sqlite3.Connection) -> None:
    """Fewer indexes for the writer to keep: every batch writes one leaf page per distinct value of an
    index's first column, so the provider index (the provider filter walks ``calls_target`` one target
    at a time), the prompt-name index (the prompt filter walks ``calls_prompt`` one version at a time)
    and the status index (``ok`` is 98% of calls) go; errors, 2% of the calls, get two small partial
    indexes: newest first, and per target."""
    for name in ("calls_provider", "calls_prompt_name", "calls_status"):
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    conn.execute("CREATE INDEX IF NOT EXISTS calls_errors ON calls (id) WHERE status = 'error'")
    conn.execute("CREATE INDEX IF NOT EXISTS calls_target_errors ON calls (target, id) WHERE status = 'error'")


def _migration_4(conn: sqlite3.Connection) -> None:
    """Rollups catch up from a high-water mark instead of inside each commit: every call written so far
    is already in them."""
    conn.execute("CREATE TABLE IF NOT EXISTS rollup_state (id INTEGER PRIMARY KEY CHECK (id = 1), "
                 "rolled_rowid INTEGER NOT NULL)")
    conn.execute("INSERT OR IGNORE INTO rollup_state (id, rolled_rowid) "
                 "SELECT 1, coalesce(max(rowid), 0) FROM payloads")


def _migration_5(conn: sqlite3.Connection) -> None:
    """What the user waited, beside the serving attempt's wire timings (a database that migration 1
    created from the current table definition has the columns already)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
    for column in ("total_ms", "total_ttft_ms"):
        if column not in have:
            conn.execute(f"ALTER TABLE calls ADD COLUMN {column} FLOAT")


MIGRATIONS = (_migration_1, _migration_2, _migration_3, _migration_4, _migration_5)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to :data:`SCHEMA_VERSION`, one migration per transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        with conn:
            step(conn)
            conn.execute(f"PRAGMA user_version = {number}")
