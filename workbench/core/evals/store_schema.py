"""The eval store's migrations (``evals.db``): from an empty file to the current schema, each one frozen and atomic.

As for the trace log (:mod:`workbench.core.traces.schema`): a migration is a name and the literal SQL it
runs; once shipped it never changes (a test holds every one's checksum), and a change of schema is a new
migration. The version is SQLite's ``user_version`` (the number of migrations applied; the first eval
stores are at 1). Each migration runs in its own ``BEGIN IMMEDIATE`` … ``COMMIT``, so a failure half-way
leaves the previous version whole, and the version is read again under the write lock, so two processes
opening a new store migrate it once.

1. ``create_tables``: runs, their results (keyed by cell and repeat) and the response cache, as first shipped.
2. ``run_verdicts``: what a run concluded, stored with it: its gate (the pass rate and where it came
   from), the run it was compared with, its verdict, the reasons it failed in the words it printed,
   and the exit code. Runs stored before have none of them ("no gate recorded").
3. ``eval_batches``: the provider batches a run submitted (``eval --batch``): the batch's id, its API and target, the
   cells it holds (custom id → cell identity, JSON), its last state and counts, when it was submitted and collected;
   a run left while its batches run is resumed from them (``evals resume``).
"""

from __future__ import annotations

import sqlite3

from workbench.core import migrations
from workbench.core.migrations import Migration, version

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "migrate", "version"]


_CREATE_TABLES = (
    """CREATE TABLE IF NOT EXISTS eval_runs (
        id TEXT PRIMARY KEY, suite TEXT NOT NULL, suite_path TEXT NOT NULL, suite_digest TEXT NOT NULL,
        started_at REAL NOT NULL, finished_at REAL, status TEXT NOT NULL, stop_reason TEXT,
        repeat INTEGER NOT NULL, targets TEXT NOT NULL, cost_usd REAL NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS eval_runs_suite ON eval_runs (suite, id)",
    """CREATE TABLE IF NOT EXISTS eval_results (
        run_id TEXT NOT NULL, seq INTEGER NOT NULL, test TEXT NOT NULL, prompt TEXT NOT NULL,
        target TEXT NOT NULL, repeat INTEGER NOT NULL, description TEXT NOT NULL, passed INTEGER NOT NULL,
        score REAL NOT NULL, cached INTEGER NOT NULL, trace_id TEXT, observation TEXT NOT NULL,
        gradings TEXT NOT NULL, PRIMARY KEY (run_id, test, prompt, target, repeat)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS eval_results_order ON eval_results (run_id, seq)",
    """CREATE TABLE IF NOT EXISTS eval_cache (
        key TEXT PRIMARY KEY, observation TEXT NOT NULL, created_at REAL NOT NULL) WITHOUT ROWID""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration("create_tables", _CREATE_TABLES),
    Migration("run_verdicts", (
        "ALTER TABLE eval_runs ADD COLUMN gate REAL",
        "ALTER TABLE eval_runs ADD COLUMN gate_source TEXT",
        "ALTER TABLE eval_runs ADD COLUMN compared_with TEXT",
        "ALTER TABLE eval_runs ADD COLUMN verdict TEXT",
        "ALTER TABLE eval_runs ADD COLUMN failures TEXT",
        "ALTER TABLE eval_runs ADD COLUMN exit_code INTEGER",
    )),
    Migration("eval_batches", (
        """CREATE TABLE IF NOT EXISTS eval_batches (
            run_id TEXT NOT NULL, batch_id TEXT NOT NULL, api TEXT NOT NULL, target TEXT NOT NULL,
            submitted_at REAL NOT NULL, state TEXT NOT NULL, succeeded INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0, requests INTEGER NOT NULL, collected_at REAL, cells TEXT NOT NULL,
            PRIMARY KEY (run_id, batch_id)) WITHOUT ROWID""",
    )),
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the store to :data:`SCHEMA_VERSION` (see :func:`workbench.core.migrations.migrate`)."""
    migrations.migrate(conn, MIGRATIONS)
