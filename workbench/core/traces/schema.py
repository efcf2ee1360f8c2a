"""The trace store's migrations: from an empty file to the current schema, each one frozen and atomic.

A migration is a name, the literal SQL it runs and, for some, a data step (a backfill). Once shipped, a
migration never changes: a test holds the checksum of every one's SQL. A new column is a new entry in
:mod:`workbench.core.traces.columns` *and* a new migration (a test checks that the migrated tables are
exactly the defined columns).

The schema version is SQLite's ``user_version`` (the number of migrations applied), as it has been since
the first store, so every existing store upgrades in place; how migrations run (each in its own
transaction, once across processes) is :mod:`workbench.core.migrations`.

1. ``create_tables`` (as first shipped: ``calls`` clustered on its time-sortable id, ``payloads``,
   ``call_tags``, their indexes, and ``payloads_fts``: an external-content FTS5 index over the prompt and
   the reply, filled in the background rather than by triggers, with ``fts_state`` its high-water mark).
   Until this release it was generated from the live sqlmodel classes; the SQL below is what it
   produced at version 1. Stores created before ``calls`` was clustered (rowid tables) work the same.
2. ``rollups``: per-day counters and latency histograms (:mod:`workbench.core.traces.rollup`), so
   ``stats`` never scans the calls, backfilled from the calls; an index for the prompt-name filter.
3. ``fewer_call_indexes``: the secondary indexes on ``calls`` trimmed to what the filters need.
4. ``rollup_high_water_mark``: rollups catch up from a high-water mark instead of inside each commit.
5. ``total_times``: ``total_ms`` and ``total_ttft_ms``.
6. ``payload_ids_never_reused``: ``payloads.rowid`` becomes AUTOINCREMENT (a rowid is never used again after
   prune), the search index is rebuilt.
7. ``rollup_extremes``: each histogram's smallest and largest values; the rollups are recomputed.
8. ``eval_cells``: ``eval_cell``, the eval cell a call answered.
9. ``tool_calls``: ``payloads.tool_calls_json``, the reply's tool calls.
11. ``refusals``: ``payloads.refusal_text``, ``payloads.refusal_category`` and ``payloads.blocks_json``.
12. ``rollup_cache_reports``: the rollups' ``cache_n`` and ``cache_input_tokens`` (the cache hit ratio's
    denominator: calls that reported cache numbers); the rollups are recomputed.
"""

from __future__ import annotations

import sqlite3

from workbench.core import migrations
from workbench.core.migrations import Migration, apply, version
from workbench.core.traces import rollup

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "apply", "migrate", "version"]


_CREATE_TABLES = (
    "CREATE TABLE calls (id VARCHAR NOT NULL, ts FLOAT NOT NULL, provider VARCHAR NOT NULL, model VARCHAR NOT NULL, "
    "target VARCHAR NOT NULL, served_by VARCHAR, endpoint VARCHAR, prompt_name VARCHAR, prompt_version INTEGER, "
    "session_id VARCHAR, eval_run_id VARCHAR, status VARCHAR NOT NULL, error_class VARCHAR, error VARCHAR, "
    "finish_reason VARCHAR, finish_raw VARCHAR, input_tokens INTEGER, output_tokens INTEGER, "
    "cache_read_tokens INTEGER, cache_write_tokens INTEGER, reasoning_tokens INTEGER, "
    "usage_estimated BOOLEAN NOT NULL, cost_usd FLOAT, ttft_ms FLOAT, latency_ms FLOAT, tokens_per_s FLOAT, "
    "queue_ms FLOAT, attempt_count INTEGER NOT NULL, request_id VARCHAR, PRIMARY KEY (id)) WITHOUT ROWID",
    "CREATE TABLE payloads (rowid INTEGER NOT NULL, call_id VARCHAR NOT NULL, request_json VARCHAR, "
    "response_text VARCHAR, reasoning_text VARCHAR, attempts_json VARCHAR, chunk_ms BLOB, PRIMARY KEY (rowid), "
    "UNIQUE (call_id))",
    "CREATE TABLE call_tags (call_id VARCHAR NOT NULL, tag VARCHAR NOT NULL, PRIMARY KEY (call_id, tag))",
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

_COUNTERS = ("calls INTEGER NOT NULL, priced INTEGER NOT NULL, spend_usd REAL NOT NULL, unpriced INTEGER NOT NULL, "
             "input_n INTEGER NOT NULL, input_tokens INTEGER NOT NULL, output_n INTEGER NOT NULL, "
             "output_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL, finished INTEGER NOT NULL, "
             "length INTEGER NOT NULL")

_ROLLUPS = (
    "CREATE TABLE IF NOT EXISTS rollup_calls (day INTEGER NOT NULL, target TEXT NOT NULL, provider TEXT NOT NULL, "
    f"prompt_name TEXT NOT NULL, prompt_version INTEGER NOT NULL, status TEXT NOT NULL, {_COUNTERS}, "
    "PRIMARY KEY (day, target, provider, prompt_name, prompt_version, status)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS rollup_targets (day INTEGER NOT NULL, target TEXT NOT NULL, status TEXT NOT NULL, "
    "provider TEXT NOT NULL, hist BLOB, PRIMARY KEY (day, target, status)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS rollup_prompts (day INTEGER NOT NULL, prompt_name TEXT NOT NULL, "
    "prompt_version INTEGER NOT NULL, hist BLOB, PRIMARY KEY (day, prompt_name, prompt_version)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS rollup_tags (day INTEGER NOT NULL, tag TEXT NOT NULL, status TEXT NOT NULL, "
    f"{_COUNTERS}, hist BLOB, PRIMARY KEY (day, tag, status)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS calls_prompt_name ON calls (prompt_name, id)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration("create_tables", _CREATE_TABLES),
    Migration("rollups", _ROLLUPS, rollup.rebuild,
              "Rollup tables for ``stats`` (backfilled from the calls: about 12 s a million calls), and an index "
              "for the prompt-name filter (``calls_prompt`` cannot give a prompt's calls in id order)."),
    Migration("fewer_call_indexes", (
        "DROP INDEX IF EXISTS calls_provider",
        "DROP INDEX IF EXISTS calls_prompt_name",
        "DROP INDEX IF EXISTS calls_status",
        "CREATE INDEX IF NOT EXISTS calls_errors ON calls (id) WHERE status = 'error'",
        "CREATE INDEX IF NOT EXISTS calls_target_errors ON calls (target, id) WHERE status = 'error'",
    ), doc="Fewer indexes for the writer to keep: every batch writes one leaf page per distinct value of an "
           "index's first column, so the provider index (the provider filter walks ``calls_target`` one target "
           "at a time), the prompt-name index (the prompt filter walks ``calls_prompt`` one version at a time) "
           "and the status index (``ok`` is 98% of calls) go; errors, 2% of the calls, get two small partial "
           "indexes: newest first, and per target."),
    Migration("rollup_high_water_mark", (
        "CREATE TABLE IF NOT EXISTS rollup_state (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "rolled_rowid INTEGER NOT NULL)",
        "INSERT OR IGNORE INTO rollup_state (id, rolled_rowid) SELECT 1, coalesce(max(rowid), 0) FROM payloads",
    ), doc="Rollups catch up from a high-water mark instead of inside each commit: every call written so far "
           "is already in them."),
    Migration("total_times", (
        "ALTER TABLE calls ADD COLUMN total_ms FLOAT",
        "ALTER TABLE calls ADD COLUMN total_ttft_ms FLOAT",
    ), doc="What the user waited, beside the serving attempt's wire timings."),
    Migration("payload_ids_never_reused", (
        "CREATE TABLE payloads_new (rowid INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, call_id VARCHAR NOT NULL, "
        "request_json VARCHAR, response_text VARCHAR, reasoning_text VARCHAR, attempts_json VARCHAR, chunk_ms BLOB, "
        "UNIQUE (call_id))",
        "INSERT INTO payloads_new (rowid, call_id, request_json, response_text, reasoning_text, attempts_json, "
        "chunk_ms) SELECT rowid, call_id, request_json, response_text, reasoning_text, attempts_json, chunk_ms "
        "FROM payloads ORDER BY rowid",
        "DROP TABLE payloads",
        "ALTER TABLE payloads_new RENAME TO payloads",
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'payloads', 0 "
        "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'payloads')",
        "UPDATE sqlite_sequence SET seq = max(seq, (SELECT indexed_rowid FROM fts_state), "
        "(SELECT rolled_rowid FROM rollup_state)) WHERE name = 'payloads'",
        "INSERT INTO payloads_fts (payloads_fts) VALUES ('rebuild')",
        "UPDATE fts_state SET indexed_rowid = (SELECT coalesce(max(rowid), 0) FROM payloads)",
    ), doc="A payload's rowid is never used again (AUTOINCREMENT), even once prune has deleted the newest calls: "
           "the search index and the rollups catch up along rowids from their high-water marks, so a reused "
           "rowid was never searchable nor counted, and prune then took entries out of the index that were never "
           "in it (the index damaged). ``payloads`` is copied into the new definition, the next rowid starts "
           "past both marks, and the search index is rebuilt from the payloads (a store damaged that way is "
           "whole again)."),
    Migration("rollup_extremes", (
        *(f"ALTER TABLE {table} ADD COLUMN {column} REAL"
          for table in ("rollup_targets", "rollup_prompts", "rollup_tags")
          for column in ("ttft_min", "ttft_max", "latency_min", "latency_max")),
        "UPDATE rollup_state SET rolled_rowid = (SELECT coalesce(max(rowid), 0) FROM payloads)",
    ), rollup.rebuild,
        "The smallest and largest TTFT and latency beside each histogram, so an approximate percentile is "
        "clamped to what was observed; the rollups are recomputed from the calls (which also counts calls a "
        "reused rowid had hidden from them)."),
    Migration("eval_cells", (
        "ALTER TABLE calls ADD COLUMN eval_cell VARCHAR",
    ), doc="Which eval cell a call answered, so resuming a run reuses every answer the log holds."),
    Migration("tool_calls", (
        "ALTER TABLE payloads ADD COLUMN tool_calls_json VARCHAR",
    ), doc="The reply's tool calls (id, name, arguments as received), beside its text."),
    Migration("reasoning_timing", (
        "ALTER TABLE calls ADD COLUMN ttft_reasoning_ms FLOAT",
        "ALTER TABLE calls ADD COLUMN ttft_answer_ms FLOAT",
    ), doc="Time to the first reasoning and to the first answer text, beside the TTFT (the first of either)."),
    Migration("refusals", (
        "ALTER TABLE payloads ADD COLUMN refusal_text VARCHAR",
        "ALTER TABLE payloads ADD COLUMN refusal_category VARCHAR",
        "ALTER TABLE payloads ADD COLUMN blocks_json VARCHAR",
    ), doc="A refused reply's refusal (its text and category) and the reply's provider blocks (server tools and "
           "their results, a model fallback, a compaction), beside its text."),
    Migration("rollup_cache_reports", (
        *(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0"
          for table in ("rollup_calls", "rollup_tags") for column in ("cache_n", "cache_input_tokens")),
        "UPDATE rollup_state SET rolled_rowid = (SELECT coalesce(max(rowid), 0) FROM payloads)",
    ), rollup.rebuild,
        "The calls that reported cache numbers and their input tokens, so the cache hit ratio leaves out calls "
        "whose provider reports none (Ollama) and is unknown for a group where none did; the rollups are "
        "recomputed from the calls."),
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the trace log to :data:`SCHEMA_VERSION` (see :func:`workbench.core.migrations.migrate`)."""
    migrations.migrate(conn, MIGRATIONS)
