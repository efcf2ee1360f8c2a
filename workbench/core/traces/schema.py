"""The trace store's migrations: from an empty file to the current schema.

The first migration creates the tables (:mod:`workbench.core.traces.tables`, imported only then) and
their indexes; ``payloads_fts`` is an external-content FTS5 index over the prompt and the reply, filled
in the background rather than by triggers, so writes never pay for it (``fts_state`` keeps its
high-water mark). The ``rollup_*`` tables (migration 2, :mod:`workbench.core.traces.rollup`) keep
per-day counters and latency histograms, so ``stats`` never scans the calls. Migration 3 trims the
secondary indexes on ``calls`` to what the filters need. The schema version is SQLite's
``user_version``; migrations run in order.
"""

from __future__ import annotations

import sqlite3

from workbench.core.traces import rollup

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
    from workbench.core.traces.tables import create_tables

    create_tables(conn)
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
