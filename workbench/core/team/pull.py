"""``sync --pull``: the team's rows, brought into a local cache beside the trace store (``team/``).

The cache is made of ordinary local stores, so every local command reads it offline:
``WORKBENCH_TRACES=.workbench/team/traces.db workbench traces list`` (``evals list`` reads ``team/evals.db`` beside
it the same way); prompt versions, with who pushed them, are in ``team/prompts.db``, and who pushed each call and
eval run in ``team/pushers.db`` (``pushers``: kind ``call`` or ``run``, id, user, host). The local stores themselves are
never written: what a teammate pushed is never pushed again as this clone's.

A pull reads one snapshot of the server (``REPEATABLE READ``) along each row's ``pushed_xid``, streams it with a
server-side cursor, and writes it here in batches (``INSERT OR IGNORE`` / ``OR REPLACE``: a row pulled twice lands
once). Its mark is the snapshot's ``xmin`` (every transaction before it had ended): stored once the whole pull is
in, so the next pull starts there, and a cut pull starts again from the previous one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.core.evals import store_schema
from workbench.core.migrations import Migration
from workbench.core.migrations import migrate as run_migrations
from workbench.core.sqlite_file import open_private
from workbench.core.team.marks import SyncMarks
from workbench.core.team.push import BATCH, Counts, Progress
from workbench.core.traces import schema
from workbench.core.traces.columns import CALL_COLUMNS, PAYLOAD_COLUMNS

if TYPE_CHECKING:
    import psycopg

_EVAL_RUN_COLUMNS = ("id", "suite", "suite_path", "suite_digest", "started_at", "finished_at", "status", "stop_reason",
                     "repeat", "targets", "cost_usd", "gate", "gate_source", "compared_with", "verdict", "failures",
                     "exit_code")
_EVAL_RESULT_COLUMNS = ("run_id", "seq", "test", "prompt", "target", "repeat", "description", "passed", "score",
                        "cached", "trace_id", "observation", "gradings")
_PROMPT_COLUMNS = ("name", "hash", "number", "created", "text", "team_user", "team_host")
PROMPTS_MIGRATIONS: tuple[Migration, ...] = (
    Migration("create_tables", (
        "CREATE TABLE prompt_versions (name TEXT NOT NULL, hash TEXT NOT NULL, number INTEGER NOT NULL, "
        "created TEXT NOT NULL, text TEXT, team_user TEXT NOT NULL, team_host TEXT NOT NULL, "
        "PRIMARY KEY (name, hash)) WITHOUT ROWID",
    )),
)
PUSHERS_MIGRATIONS: tuple[Migration, ...] = (
    Migration("create_tables", (
        "CREATE TABLE pushers (kind TEXT NOT NULL, id TEXT NOT NULL, team_user TEXT NOT NULL, "
        "team_host TEXT NOT NULL, PRIMARY KEY (kind, id)) WITHOUT ROWID",
    )),
)
_PUSHER = "INSERT OR REPLACE INTO pushers (kind, id, team_user, team_host) VALUES (?, ?, ?, ?)"

_HINT = "check the path and its permissions, or point WORKBENCH_TRACES elsewhere"


def _insert(verb: str, table: str, columns: tuple[str, ...]) -> str:
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _copy(conn: psycopg.Connection[tuple[object, ...]], local: sqlite3.Connection, query: str,
          args: tuple[object, ...], statements: list[tuple[str, slice]], counts: Counts, table: str, batch: int,
          progress: Progress | None, pushers: tuple[sqlite3.Connection, str] | None = None) -> None:
    """Stream ``query`` (server-side cursor) into ``local``: each row's ``slice`` goes to its statement, ``batch``
    rows a local transaction. With ``pushers`` (the cache's pushers store, a kind), each row's first value and its
    last two (who pushed it) go there too."""
    with conn.cursor(name=f"pull_{table}") as cur:
        cur.execute(query.encode(), args)
        while rows := cur.fetchmany(batch):
            with local:
                for statement, part in statements:
                    local.executemany(statement, [row[part] for row in rows])
            if pushers is not None:
                store, kind = pushers
                with store:
                    store.executemany(_PUSHER, [(kind, row[0], row[-2], row[-1]) for row in rows])
            counts.add(table, len(rows), 0)
            if progress is not None:
                progress(table, len(rows))


def pull(conn: psycopg.Connection[tuple[object, ...]], cache: Path, marks: SyncMarks, counts: Counts, *,
         since: float | None = None, batch: int = BATCH, progress: Progress | None = None) -> None:
    """Bring every team row pushed since the last pull (with ``since``: every one of calls or runs started since
    then, the marks neither read nor moved) into the cache at ``cache``."""
    traces = open_private(cache / "traces.db", schema.migrate, "the team cache", _HINT)
    evals = open_private(cache / "evals.db", store_schema.migrate, "the team cache", _HINT)
    prompts = open_private(cache / "prompts.db", lambda c: run_migrations(c, PROMPTS_MIGRATIONS), "the team cache",
                           _HINT)
    pushers = open_private(cache / "pushers.db", lambda c: run_migrations(c, PUSHERS_MIGRATIONS), "the team cache",
                           _HINT)
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            row = conn.execute("SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text "
                               "FROM pg_current_snapshot() s").fetchone()
            horizon, newest = (str(row[0]), int(str(row[1]))) if row else ("0", 0)

            def mark(table: str) -> str:
                """The table's mark; none past the server's newest transaction (a server made anew under the same
                address: its transaction ids start again)."""
                value = marks.get(f"pull:{table}", "0") if since is None else "0"
                return value if value.isdigit() and int(value) <= newest else "0"

            n_calls, n_payload = len(CALL_COLUMNS), len(PAYLOAD_COLUMNS)
            call_cols = ", ".join(f"c.{c}" for c in CALL_COLUMNS)
            payload_cols = ", ".join(f"p.{c}" for c in PAYLOAD_COLUMNS)
            _copy(conn, traces,
                  f"SELECT {call_cols}, {payload_cols}, c.team_user, c.team_host FROM calls c "
                  "JOIN payloads p ON p.call_id = c.id "
                  "WHERE c.pushed_xid >= %s::xid8 AND (%s::float8 IS NULL OR c.ts >= %s::float8)",
                  (mark("calls"), since, since),
                  [(_insert("INSERT OR IGNORE", "calls", CALL_COLUMNS), slice(0, n_calls)),
                   (_insert("INSERT OR IGNORE", "payloads", PAYLOAD_COLUMNS), slice(n_calls, n_calls + n_payload))],
                  counts, "calls", batch, progress, (pushers, "call"))
            _copy(conn, traces,
                  "SELECT t.call_id, t.tag FROM call_tags t JOIN calls c ON c.id = t.call_id "
                  "WHERE t.pushed_xid >= %s::xid8 AND (%s::float8 IS NULL OR c.ts >= %s::float8)",
                  (mark("call_tags"), since, since),
                  [(_insert("INSERT OR IGNORE", "call_tags", ("call_id", "tag")), slice(0, 2))],
                  counts, "call_tags", batch, progress)
            _copy(conn, evals,
                  f"SELECT {', '.join(_EVAL_RESULT_COLUMNS)} FROM eval_results WHERE pushed_xid >= %s::xid8 AND "
                  "(%s::float8 IS NULL OR run_id IN (SELECT id FROM eval_runs WHERE started_at >= %s::float8))",
                  (mark("eval_results"), since, since),
                  [(_insert("INSERT OR REPLACE", "eval_results", _EVAL_RESULT_COLUMNS), slice(None))],
                  counts, "eval_results", batch, progress)
            _copy(conn, evals,
                  f"SELECT {', '.join(_EVAL_RUN_COLUMNS)}, team_user, team_host FROM eval_runs "
                  "WHERE pushed_xid >= %s::xid8 AND (%s::float8 IS NULL OR started_at >= %s::float8)",
                  (mark("eval_runs"), since, since),
                  [(_insert("INSERT OR REPLACE", "eval_runs", _EVAL_RUN_COLUMNS), slice(0, len(_EVAL_RUN_COLUMNS)))],
                  counts, "eval_runs", batch, progress, (pushers, "run"))
            _copy(conn, prompts,
                  f"SELECT {', '.join(_PROMPT_COLUMNS)} FROM prompt_versions WHERE pushed_xid >= %s::xid8",
                  (mark("prompt_versions"),),
                  [(_insert("INSERT OR IGNORE", "prompt_versions", _PROMPT_COLUMNS), slice(None))],
                  counts, "prompt_versions", batch, progress)
        if since is None:
            for table in ("calls", "call_tags", "eval_results", "eval_runs", "prompt_versions"):
                marks.put(f"pull:{table}", horizon)
    finally:
        for local in (traces, evals, prompts, pushers):
            local.close()
