"""``sync --push``: the local traces, ended eval runs with their results, and prompt versions, sent to the team store.

Batched: each batch is one server transaction (COPY; see :func:`send`), then the batch's mark is stored locally
(:mod:`.marks`). A push cut anywhere (the
network, a killed backend, Ctrl-C) resumes at the first batch not yet marked, and a batch that was committed but not
marked is sent again and lands once: traces and prompt versions are immutable (``DO NOTHING``); a run and its
results take the latest values (``DO UPDATE``: a run resumed and ended again is pushed again).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.core.team import tables
from workbench.core.team.marks import SyncMarks
from workbench.core.team.outgoing import Outgoing, Row, prompt_versions, trace_batches

if TYPE_CHECKING:
    import psycopg

Progress = Callable[[str, int], None]
"""Called after each committed batch: (table, rows in it)."""

BATCH = 2_000


@dataclass(frozen=True)
class LocalStores:
    """The local stores a sync reads and where its state and pulled rows go, all beside the trace store."""

    trace_path: Path
    workspace: Path | None

    @property
    def eval_path(self) -> Path:
        return self.trace_path.with_name("evals.db")

    @property
    def marks_path(self) -> Path:
        return self.trace_path.with_name("team-sync.db")

    @property
    def cache(self) -> Path:
        """Where ``sync --pull`` keeps the team's rows: ``team/traces.db``, ``team/evals.db``, ``team/prompts.db``,
        ``team/pushers.db``."""
        return self.trace_path.with_name("team")


@dataclass
class Counts:
    """Rows per table: sent (or received) and, of those, new to the other side."""

    rows: dict[str, int] = field(default_factory=dict)
    new: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, rows: int, new: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + rows
        self.new[table] = self.new.get(table, 0) + new


def send(conn: psycopg.Connection[tuple[object, ...]], table: str, rows: Iterable[Row], *, update: bool) -> int:
    """Write ``rows`` (in :func:`tables.columns` order) into ``table`` inside the caller's transaction; the rows new
    to (or changed on) the server. ``rows`` may be made as they are sent (a generator): the server reads the first
    ones while the next are being made.

    Immutable rows (``update=False``) are COPYed straight into the table, inside a savepoint; when one is there
    already (a batch sent again), the savepoint is rolled back and the batch goes through a temporary table and
    ``INSERT … ON CONFLICT DO NOTHING``. Rows that change (``update=True``) always take that way, with ``DO UPDATE``."""
    import psycopg

    remaining = iter(rows)
    made: list[Row] = []

    def kept() -> Iterator[Row]:
        for row in remaining:
            made.append(row)
            yield row

    if not update:
        try:
            with conn.transaction(), conn.cursor() as cur:  # a savepoint inside the caller's transaction
                _copy(cur, table, kept())
            return len(made)
        except psycopg.errors.UniqueViolation:
            pass
    every = [*made, *remaining]
    if not every:
        return 0
    columns = tables.columns(table)
    names = ", ".join(columns)
    incoming = f"incoming_{table}"
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {incoming} (LIKE {table} INCLUDING DEFAULTS) "
                 "ON COMMIT DELETE ROWS")
    with conn.cursor() as cur:
        _copy(cur, incoming, every, columns)
        keys = tables.keys(table)
        if update:
            changes = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in keys)
            conflict = f"DO UPDATE SET {changes}, pushed_xid = pg_current_xact_id()"
        else:
            conflict = "DO NOTHING"
        cur.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {incoming} "
                    f"ON CONFLICT ({', '.join(keys)}) {conflict}")
        return max(cur.rowcount, 0)


def _copy(cur: psycopg.Cursor[tuple[object, ...]], into: str, rows: Iterable[Row],
          columns: Sequence[str] | None = None) -> None:
    names = ", ".join(columns if columns is not None else tables.columns(into))
    with cur.copy(f"COPY {into} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def push_traces(conn: psycopg.Connection[tuple[object, ...]], local: sqlite3.Connection, marks: SyncMarks,
                outgoing: Outgoing, counts: Counts, *, since: float | None = None, batch: int = BATCH,
                progress: Progress | None = None) -> None:
    """Every call written since the mark (with ``since``: every call started since then, the mark neither read nor
    moved), with its payload and tags, ``batch`` calls a transaction.

    Pipelined: while the server takes one batch (on a worker thread), the next is read and redacted here; one batch
    is in flight at a time, and its mark is stored only once it is committed, in order."""
    after = _trace_mark(local, marks.get("push:traces", "")) if since is None else 0

    def store(calls: list[Row], payloads: list[Row], tags: list[Row]) -> tuple[int, int]:
        with conn.transaction():
            new = send(conn, "calls", calls, update=False)
            send(conn, "payloads", payloads, update=False)
            return new, send(conn, "call_tags", tags, update=False)

    def settle(sent: Future[tuple[int, int]], mark: str, calls: int, tags: int) -> None:
        new, new_tags = sent.result()
        if since is None:
            marks.put("push:traces", mark)
        counts.add("calls", calls, new)
        counts.add("call_tags", tags, new_tags)
        if progress is not None:
            progress("calls", calls)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-push") as server:
        pending: tuple[Future[tuple[int, int]], str, int, int] | None = None
        for last, calls, payloads, tags in trace_batches(local, after, since, batch):
            ready = (outgoing.many("calls", calls), outgoing.many("payloads", payloads),
                     outgoing.many("call_tags", tags))
            if pending is not None:
                settle(*pending)
            pending = (server.submit(store, *ready), f"{last}:{payloads[-1][0]}", len(calls), len(tags))
        if pending is not None:
            settle(*pending)


def _trace_mark(local: sqlite3.Connection, mark: str) -> int:
    """The payload rowid to push after: the mark's (``ROWID:CALL_ID``) while that row is still the call it was; else
    0 (the store was replaced, recovered into a new file, or pruned past the mark): everything again, which lands
    once."""
    rowid, _, call_id = mark.partition(":")
    if not rowid.isdigit():
        return 0
    row = local.execute("SELECT call_id FROM payloads WHERE rowid = ?", (int(rowid),)).fetchone()
    return int(rowid) if row is not None and row[0] == call_id else 0


def push_evals(conn: psycopg.Connection[tuple[object, ...]], local: sqlite3.Connection, marks: SyncMarks,
               outgoing: Outgoing, counts: Counts, *, since: float | None = None, batch: int = BATCH,
               progress: Progress | None = None) -> None:
    """Every ended run (done or stopped) not pushed as it ended now: its results ``batch`` a transaction, then the
    run itself (so a run on the server has all its results), then its local mark."""
    pushed = marks.pushed_runs()
    runs = local.execute("SELECT * FROM eval_runs WHERE status != 'running' AND (? IS NULL OR started_at >= ?) "
                         "ORDER BY id", (since, since)).fetchall()
    for run in runs:
        if since is None and run["id"] in pushed and pushed[run["id"]] == run["finished_at"]:
            continue
        seq = -1
        while True:
            results = local.execute("SELECT * FROM eval_results WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                                    (run["id"], seq, batch)).fetchall()
            if not results:
                break
            with conn.transaction():
                new = send(conn, "eval_results", [outgoing.result_row(r) for r in results], update=True)
            counts.add("eval_results", len(results), new)
            seq = results[-1]["seq"]
            if progress is not None:
                progress("eval_results", len(results))
        with conn.transaction():
            new = send(conn, "eval_runs", [outgoing.row("eval_runs", run)], update=True)
        counts.add("eval_runs", 1, new)
        marks.run_pushed(run["id"], run["finished_at"])
        if progress is not None:
            progress("eval_runs", 1)


def push_prompts(conn: psycopg.Connection[tuple[object, ...]], workspace: Path | None, marks: SyncMarks,
                 outgoing: Outgoing, counts: Counts, *, batch: int = BATCH, progress: Progress | None = None) -> None:
    """The workspace's saved prompt versions not pushed yet."""
    pushed = marks.pushed_prompts()
    todo = [v for v in prompt_versions(workspace) if (v[0], v[1]) not in pushed]
    for start in range(0, len(todo), batch):
        chunk = todo[start:start + batch]
        rows = [outgoing.row("prompt_versions", {"name": name, "hash": digest, "number": number, "created": created,
                                                 "text": text}) for name, digest, number, created, text in chunk]
        with conn.transaction():
            new = send(conn, "prompt_versions", rows, update=False)
        marks.prompts_pushed([(name, digest) for name, digest, *_ in chunk])
        counts.add("prompt_versions", len(chunk), new)
        if progress is not None:
            progress("prompt_versions", len(chunk))
