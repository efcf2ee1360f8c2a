"""The team store's migrations on PostgreSQL: named, each frozen once shipped, each in its own transaction.

The server keeps the names of the migrations applied in ``team_migrations`` (name, when). A writer (``workbench
sync``) applies the missing ones in order, each under a transaction-level advisory lock, so two clones syncing at
once against a new server migrate it once; a reader only checks that none is missing (:func:`check`). A change of
schema is a new migration and a change in :mod:`.tables`; a test holds the checksum of every shipped migration's
SQL and checks the migrated columns against the classes.

1. ``create_tables``: ``calls``, ``payloads``, ``call_tags``, ``eval_runs``, ``eval_results`` and
   ``prompt_versions``, with their indexes, as generated from :mod:`.tables` (``tables.ddl()``).
2. ``read_indexes``: the indexes ``--team`` pages need to walk the calls newest first under each filter
   (:mod:`.queries`): by provider, by status, by prompt (any version) and by session, each ending in ``id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.core.errors import ConfigError

if TYPE_CHECKING:
    import psycopg

__all__ = ["MIGRATIONS", "TeamMigration", "applied", "check", "migrate"]


@dataclass(frozen=True, slots=True)
class TeamMigration:
    name: str
    sql: tuple[str, ...]
    doc: str = ""


_CREATE_TABLES = (
    'CREATE TABLE calls ( id VARCHAR NOT NULL, ts FLOAT NOT NULL, provider VARCHAR NOT NULL, model '
    'VARCHAR NOT NULL, target VARCHAR NOT NULL, served_by VARCHAR, endpoint VARCHAR, prompt_name VARCHAR, '
    'prompt_version INTEGER, session_id VARCHAR, eval_run_id VARCHAR, status VARCHAR NOT NULL, '
    'error_class VARCHAR, error VARCHAR, finish_reason VARCHAR, finish_raw VARCHAR, input_tokens INTEGER, '
    'output_tokens INTEGER, cache_read_tokens INTEGER, cache_write_tokens INTEGER, reasoning_tokens '
    'INTEGER, usage_estimated BOOLEAN NOT NULL, cost_usd FLOAT, ttft_ms FLOAT, latency_ms FLOAT, '
    'tokens_per_s FLOAT, queue_ms FLOAT, attempt_count INTEGER NOT NULL, request_id VARCHAR, total_ms '
    'FLOAT, total_ttft_ms FLOAT, eval_cell VARCHAR, ttft_reasoning_ms FLOAT, ttft_answer_ms FLOAT, '
    'team_user VARCHAR NOT NULL, team_host VARCHAR NOT NULL, pushed_xid XID8 DEFAULT pg_current_xact_id() '
    'NOT NULL, PRIMARY KEY (id) )',
    'CREATE INDEX calls_eval ON calls (eval_run_id, id) WHERE eval_run_id IS NOT NULL',
    'CREATE INDEX calls_prompt ON calls (prompt_name, prompt_version, id)',
    'CREATE INDEX calls_pushed ON calls (pushed_xid)',
    'CREATE INDEX calls_target ON calls (target, id)',
    'CREATE INDEX calls_user ON calls (team_user, id)',
    'CREATE TABLE payloads ( call_id VARCHAR NOT NULL, request_json VARCHAR, response_text VARCHAR, '
    'reasoning_text VARCHAR, attempts_json VARCHAR, chunk_ms BYTEA, tool_calls_json VARCHAR, refusal_text '
    'VARCHAR, refusal_category VARCHAR, blocks_json VARCHAR, team_user VARCHAR NOT NULL, team_host '
    'VARCHAR NOT NULL, pushed_xid XID8 DEFAULT pg_current_xact_id() NOT NULL, PRIMARY KEY (call_id) )',
    'CREATE INDEX payloads_pushed ON payloads (pushed_xid)',
    'CREATE TABLE call_tags ( call_id VARCHAR NOT NULL, tag VARCHAR NOT NULL, team_user VARCHAR NOT NULL, '
    'team_host VARCHAR NOT NULL, pushed_xid XID8 DEFAULT pg_current_xact_id() NOT NULL, PRIMARY KEY '
    '(call_id, tag) )',
    'CREATE INDEX call_tags_pushed ON call_tags (pushed_xid)',
    'CREATE INDEX call_tags_tag ON call_tags (tag, call_id)',
    'CREATE TABLE eval_runs ( id VARCHAR NOT NULL, suite VARCHAR NOT NULL, suite_path VARCHAR NOT NULL, '
    'suite_digest VARCHAR NOT NULL, started_at FLOAT NOT NULL, finished_at FLOAT, status VARCHAR NOT '
    'NULL, stop_reason VARCHAR, repeat INTEGER NOT NULL, targets VARCHAR NOT NULL, cost_usd FLOAT NOT '
    'NULL, gate FLOAT, gate_source VARCHAR, compared_with VARCHAR, verdict VARCHAR, failures VARCHAR, '
    'exit_code INTEGER, team_user VARCHAR NOT NULL, team_host VARCHAR NOT NULL, pushed_xid XID8 DEFAULT '
    'pg_current_xact_id() NOT NULL, PRIMARY KEY (id) )',
    'CREATE INDEX eval_runs_pushed ON eval_runs (pushed_xid)',
    'CREATE INDEX eval_runs_suite ON eval_runs (suite, id)',
    'CREATE TABLE eval_results ( run_id VARCHAR NOT NULL, seq INTEGER NOT NULL, test VARCHAR NOT NULL, '
    'prompt VARCHAR NOT NULL, target VARCHAR NOT NULL, repeat INTEGER NOT NULL, description VARCHAR NOT '
    'NULL, passed INTEGER NOT NULL, score FLOAT NOT NULL, cached INTEGER NOT NULL, trace_id VARCHAR, '
    'observation VARCHAR NOT NULL, gradings VARCHAR NOT NULL, team_user VARCHAR NOT NULL, team_host '
    'VARCHAR NOT NULL, pushed_xid XID8 DEFAULT pg_current_xact_id() NOT NULL, PRIMARY KEY (run_id, test, '
    'prompt, target, repeat) )',
    'CREATE INDEX eval_results_order ON eval_results (run_id, seq)',
    'CREATE INDEX eval_results_pushed ON eval_results (pushed_xid)',
    'CREATE TABLE prompt_versions ( name VARCHAR NOT NULL, hash VARCHAR NOT NULL, number INTEGER NOT '
    'NULL, created VARCHAR NOT NULL, text VARCHAR, team_user VARCHAR NOT NULL, team_host VARCHAR NOT '
    'NULL, pushed_xid XID8 DEFAULT pg_current_xact_id() NOT NULL, PRIMARY KEY (name, hash) )',
    'CREATE INDEX prompt_versions_pushed ON prompt_versions (pushed_xid)',
)

_READ_INDEXES = (
    "CREATE INDEX calls_provider ON calls (provider, id)",
    "CREATE INDEX calls_status ON calls (status, id)",
    "CREATE INDEX calls_prompt_name ON calls (prompt_name, id)",
    "CREATE INDEX calls_session ON calls (session_id, id) WHERE session_id IS NOT NULL",
)

MIGRATIONS: tuple[TeamMigration, ...] = (
    TeamMigration("create_tables", _CREATE_TABLES),
    TeamMigration("read_indexes", _READ_INDEXES),
)

_BOOK = ("CREATE TABLE IF NOT EXISTS team_migrations (name VARCHAR PRIMARY KEY, "
         "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('workbench team migrations'))"


def applied(conn: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    """The names of the migrations applied on the server (none on an empty database)."""
    with conn.transaction():
        exists = conn.execute("SELECT to_regclass('team_migrations') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return set()
        return {str(row[0]) for row in conn.execute("SELECT name FROM team_migrations")}


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """Apply the missing migrations in order, each in its own transaction; the names applied now."""
    done: list[str] = []
    for migration in MIGRATIONS:
        with conn.transaction():
            conn.execute(_LOCK)  # held until this transaction ends: one clone migrates, the others wait and see
            conn.execute(_BOOK)
            if conn.execute("SELECT 1 FROM team_migrations WHERE name = %s", (migration.name,)).fetchone():
                continue
            for statement in migration.sql:
                conn.execute(statement)
            conn.execute("INSERT INTO team_migrations (name) VALUES (%s)", (migration.name,))
            done.append(migration.name)
    return done


def check(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """A :class:`ConfigError` unless every migration is applied (a reader never migrates)."""
    missing = [m.name for m in MIGRATIONS if m.name not in applied(conn)]
    if missing:
        raise ConfigError(f"the team store is not set up (missing migrations: {', '.join(missing)})",
                          "run `workbench sync --push` once with a role that may create tables")
