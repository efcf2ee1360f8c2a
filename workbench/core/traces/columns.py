"""The trace rows, defined once: every column of ``calls``, ``payloads`` and ``call_tags``.

``calls`` is narrow (~30 small columns, ~200 bytes a row) so browsing a million rows never drags text
along; ``payloads`` holds the text (request messages and params, reply, reasoning, per-chunk timing,
attempts) one row per call; ``call_tags`` makes tags filterable by index.

Everything else derives from these tuples: the writer's inserts (by column name), the queries' column
lists, the OpenTelemetry span attributes copied from a column (:mod:`workbench.core.traces.otlp`) and
the sqlmodel classes (:mod:`workbench.core.traces.tables`). They are plain data, so the write path and
start-up never import sqlmodel. The schema itself is built by the frozen migrations
(:mod:`workbench.core.traces.schema`); a new column is a new entry here *and* a new migration, and a
test checks that the migrated tables are exactly these columns.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    sql: str
    """The declared SQLite type: ``VARCHAR``, ``FLOAT``, ``INTEGER``, ``BOOLEAN`` or ``BLOB``."""
    doc: str = ""
    null: bool = True
    default: object = None
    """The value a model instance gets when none is given (``None`` for a nullable column)."""
    key: bool = False
    """Part of the table's primary key."""
    unique: bool = False
    written: bool = True
    """The writer supplies it (``payloads.rowid`` is SQLite's own)."""
    attribute: str | None = None
    """The OTel span attribute that carries the value as is (see :mod:`workbench.core.traces.otlp`)."""
    otel: str | None = None
    """How the span carries it otherwise (documentation: ``otlp`` maps these columns by hand)."""


CALLS: tuple[Column, ...] = (
    Column("id", "VARCHAR", "ULID: sorts by time.", null=False, key=True, attribute="workbench.call_id"),
    Column("ts", "FLOAT", "The call's start, Unix seconds.", null=False, otel="span start time"),
    Column("provider", "VARCHAR", "The target's provider (before the /).", null=False,
       otel="gen_ai.provider.name (well-known names mapped)"),
    Column("model", "VARCHAR", "The target's model (after the /).", null=False, otel="gen_ai.request.model; span name"),
    Column("target", "VARCHAR", "provider/model as asked.", null=False, attribute="workbench.target"),
    Column("served_by", "VARCHAR", "The target that answered (a fallback or a hedge may have).",
       otel="gen_ai.response.model (its model part); workbench.served_by when not the target"),
    Column("endpoint", "VARCHAR", attribute="server.address"),
    Column("prompt_name", "VARCHAR", attribute="workbench.prompt.name"),
    Column("prompt_version", "INTEGER", attribute="workbench.prompt.version"),
    Column("session_id", "VARCHAR", attribute="workbench.session_id"),
    Column("eval_run_id", "VARCHAR", attribute="workbench.eval_run_id"),
    Column("status", "VARCHAR", "ok or error.", null=False, otel="span status (ERROR for error)"),
    Column("error_class", "VARCHAR", otel="error.type (failed calls)"),
    Column("error", "VARCHAR", "The error's one line (redacted).", otel="span status message"),
    Column("finish_reason", "VARCHAR", "stop, length, content_filter, tool_calls or error.",
       otel="gen_ai.response.finish_reasons"),
    Column("finish_raw", "VARCHAR", "The provider's own finish value."),
    Column("input_tokens", "INTEGER", attribute="gen_ai.usage.input_tokens"),
    Column("output_tokens", "INTEGER", attribute="gen_ai.usage.output_tokens"),
    Column("cache_read_tokens", "INTEGER", attribute="gen_ai.usage.cache_read.input_tokens"),
    Column("cache_write_tokens", "INTEGER", attribute="gen_ai.usage.cache_creation.input_tokens"),
    Column("reasoning_tokens", "INTEGER", attribute="gen_ai.usage.reasoning.output_tokens"),
    Column("usage_estimated", "BOOLEAN", "The usage was counted offline (the provider sent none).", null=False,
       default=False, otel="workbench.usage_estimated (when true)"),
    Column("cost_usd", "FLOAT", attribute="workbench.cost_usd"),
    Column("ttft_ms", "FLOAT", "The serving attempt's time to first content.", attribute="workbench.ttft_ms",
       otel="also gen_ai.response.time_to_first_chunk (s)"),
    Column("latency_ms", "FLOAT", "The serving attempt's request → last byte.", otel="span duration"),
    Column("tokens_per_s", "FLOAT", attribute="workbench.tokens_per_s"),
    Column("queue_ms", "FLOAT", "Time queued in the rate limiter.", attribute="workbench.queue_ms"),
    Column("attempt_count", "INTEGER", null=False, default=1, attribute="workbench.attempt_count"),
    Column("request_id", "VARCHAR", "The provider's id for the response.", attribute="gen_ai.response.id"),
    Column("total_ms", "FLOAT", "What the user waited: the call's start → its end, queueing, retries, waits and "
       "fallbacks included (migration 5).", attribute="workbench.total_ms"),
    Column("total_ttft_ms", "FLOAT", "The call's start → the first content that reached the user (``ttft_ms`` is "
       "the serving attempt's; migration 5).", attribute="workbench.total_ttft_ms"),
    Column("eval_cell", "VARCHAR", "The eval cell the call answered, with ``eval_run_id``: test, prompt, target and "
       "repeat as a JSON list (a judge's call adds ``judge`` and a digest of its prompt); ``eval --resume`` reuses "
       "the answer instead of calling again (migration ``eval_cells``).", attribute="workbench.eval_cell"),
    Column("ttft_reasoning_ms", "FLOAT", "The serving attempt's request sent → first reasoning (``NULL``: none "
       "streamed; migration ``reasoning_timing``).", attribute="workbench.ttft_reasoning_ms"),
    Column("ttft_answer_ms", "FLOAT", "The serving attempt's request sent → first answer text (``NULL``: none; "
       "migration ``reasoning_timing``).", attribute="workbench.ttft_answer_ms"),
)

PAYLOADS: tuple[Column, ...] = (
    Column("rowid", "INTEGER", "Write order (the FTS index and the rollups catch up along it).", null=False,
       key=True, written=False),
    Column("call_id", "VARCHAR", null=False, unique=True),
    Column("request_json", "VARCHAR", "System, messages and params (after redaction); never headers.",
       otel="gen_ai.request.* parameters; with content, gen_ai.system_instructions and gen_ai.input.messages"),
    Column("response_text", "VARCHAR", otel="with content, gen_ai.output.messages"),
    Column("reasoning_text", "VARCHAR", otel="with content, gen_ai.output.messages"),
    Column("attempts_json", "VARCHAR", "Every attempt: kind, status, error, wait, TTFT."),
    Column("chunk_ms", "BLOB", "Arrival of every content chunk, ms after the request was sent, packed "
       "little-endian float32."),
    Column("tool_calls_json", "VARCHAR", "The reply's tool calls: a JSON list of ``{id, name, arguments}`` "
       "(arguments after redaction; ``NULL`` when none; migration ``tool_calls``).",
       otel="with content, gen_ai.output.messages"),
    Column("refusal_text", "VARCHAR", "The refusal's text when the reply was refused or blocked (finish "
       "``content_filter``; ``\"\"`` for a refusal without words, after redaction); ``NULL`` otherwise (migration "
       "``refusals``)."),
    Column("refusal_category", "VARCHAR", "The refusal's category where the provider names one (Anthropic's "
       "``stop_details.category``, Gemini's blocked safety category; migration ``refusals``)."),
    Column("blocks_json", "VARCHAR", "The reply's provider blocks: a JSON list of ``{type, id, name, content}`` "
       "(server tools and their results, a model fallback, a compaction; content after redaction; ``NULL`` when "
       "none; migration ``refusals``)."),
)

CALL_TAGS: tuple[Column, ...] = (
    Column("call_id", "VARCHAR", null=False, key=True),
    Column("tag", "VARCHAR", null=False, key=True, otel="workbench.tags (sorted)"),
)

TABLES: dict[str, tuple[Column, ...]] = {"calls": CALLS, "payloads": PAYLOADS, "call_tags": CALL_TAGS}

CALL_COLUMNS: tuple[str, ...] = tuple(c.name for c in CALLS if c.written)
PAYLOAD_COLUMNS: tuple[str, ...] = tuple(c.name for c in PAYLOADS if c.written)
TAG_COLUMNS: tuple[str, ...] = tuple(c.name for c in CALL_TAGS if c.written)

OTEL_ATTRIBUTES: dict[str, str] = {c.name: "; ".join(filter(None, (c.attribute, c.otel)))
                                   for c in (*CALLS, *PAYLOADS, *CALL_TAGS) if c.attribute or c.otel}
"""Column → how an exported span carries it (OpenTelemetry GenAI conventions where they define it)."""


def insert(table: str) -> str:
    """``INSERT INTO table (…) VALUES (:name, …)`` over the columns the writer supplies: rows are mappings
    by column name, so a row missing a column fails loudly (``sqlite3.ProgrammingError``)."""
    names = [c.name for c in TABLES[table] if c.written]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
