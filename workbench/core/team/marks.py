"""What this clone has synced with which team store: ``team-sync.db`` beside the trace store (0600).

A mark moves only once the batch it covers is committed on the server (push) or here (pull), so a sync cut at any
point starts again from the last committed batch; the server's ``ON CONFLICT`` makes a batch sent twice land once.

- ``marks``: per server and name, a high-water mark: ``push:traces`` (the last pushed payload's rowid, the trace
  log's write order, and its call's id: a store replaced or pruned past it is pushed whole again), ``pull:<table>``
  (the server's snapshot ``xmin`` at the last complete pull).
- ``pushed_runs``: the eval runs pushed as they ended (a run resumed later ends again and is pushed again).
- ``pushed_prompts``: the prompt versions pushed (by name and content hash).
"""

from __future__ import annotations

from pathlib import Path

from workbench.core.migrations import Migration
from workbench.core.migrations import migrate as run_migrations
from workbench.core.sqlite_file import open_private

MIGRATIONS: tuple[Migration, ...] = (
    Migration("create_tables", (
        "CREATE TABLE marks (server TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, "
        "PRIMARY KEY (server, name)) WITHOUT ROWID",
        "CREATE TABLE pushed_runs (server TEXT NOT NULL, run_id TEXT NOT NULL, finished_at REAL, "
        "PRIMARY KEY (server, run_id)) WITHOUT ROWID",
        "CREATE TABLE pushed_prompts (server TEXT NOT NULL, name TEXT NOT NULL, hash TEXT NOT NULL, "
        "PRIMARY KEY (server, name, hash)) WITHOUT ROWID",
    )),
)


def default_path(trace_path: Path) -> Path:
    return trace_path.with_name("team-sync.db")


class SyncMarks:
    """The marks of one team store (``server``: :attr:`TeamTarget.identity`)."""

    def __init__(self, path: Path, server: str) -> None:
        self.server = server
        self.conn = open_private(path, lambda conn: run_migrations(conn, MIGRATIONS), "the team sync state",
                                 "check the path and its permissions, or point WORKBENCH_TRACES elsewhere")

    def close(self) -> None:
        self.conn.close()

    def get(self, name: str, default: str) -> str:
        row = self.conn.execute("SELECT value FROM marks WHERE server = ? AND name = ?", (self.server, name)).fetchone()
        return default if row is None else str(row[0])

    def put(self, name: str, value: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO marks (server, name, value) VALUES (?, ?, ?)",
                              (self.server, name, value))

    def pushed_runs(self) -> dict[str, float | None]:
        """Run id → the end of it that was pushed."""
        rows = self.conn.execute("SELECT run_id, finished_at FROM pushed_runs WHERE server = ?", (self.server,))
        return {str(r[0]): r[1] for r in rows}

    def run_pushed(self, run_id: str, finished_at: float | None) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO pushed_runs (server, run_id, finished_at) VALUES (?, ?, ?)",
                              (self.server, run_id, finished_at))

    def pushed_prompts(self) -> set[tuple[str, str]]:
        rows = self.conn.execute("SELECT name, hash FROM pushed_prompts WHERE server = ?", (self.server,))
        return {(str(r[0]), str(r[1])) for r in rows}

    def prompts_pushed(self, versions: list[tuple[str, str]]) -> None:
        with self.conn:
            self.conn.executemany("INSERT OR IGNORE INTO pushed_prompts (server, name, hash) VALUES (?, ?, ?)",
                                  [(self.server, name, digest) for name, digest in versions])
