"""Checking a trace store and recovering a damaged one, with SQLite's own facilities.

``check`` opens the store read-only and runs ``PRAGMA integrity_check`` (every page, every index) and the
search index's own check (FTS5 ``integrity-check``; against the payloads too when the index has caught up).
It writes nothing (the index check runs in a transaction that is rolled back).

``recover`` never touches the store it reads: it makes a new one at ``to``. A store that still passes
``PRAGMA quick_check`` is copied whole (``VACUUM INTO``). A damaged one goes through the ``sqlite3``
command-line tool's ``.recover`` (it reads pages directly, past damaged ones) when that tool is there and
supports it; otherwise every row that can still be read is copied, table by table, from both ends of each
table up to the damage. Either way the new store is then brought to this version, its search index and
rollups are rebuilt from the rows it holds, and its rowids continue past every one it holds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import ConfigError, one_line
from workbench.core.folders import private_folder
from workbench.core.traces import rollup
from workbench.core.traces.store import TraceStoreError, connect, open_read_only, storage_error

_PROBLEMS = 20
"""At most this many problems of ``PRAGMA integrity_check`` are reported."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    problems: tuple[str, ...]
    """What ``PRAGMA integrity_check`` and the search index's check found (empty: the store is whole)."""
    notes: tuple[str, ...] = ()
    """What was not checked, and why."""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class RecoverResult:
    method: str
    """``copy`` (VACUUM INTO), ``recover`` (the sqlite3 tool's .recover) or ``rows`` (every readable row)."""
    calls: int = 0
    payloads: int = 0
    notes: list[str] = field(default_factory=list)


def check(path: Path) -> CheckResult:
    """SQLite's integrity check and the search index's check of the store at ``path`` (read-only)."""
    _exists(path)
    try:
        conn = _read_only(path)
    except sqlite3.DatabaseError as exc:
        return CheckResult((_described(exc, path),))
    notes: list[str] = []
    try:
        try:
            found = [row[0] for row in conn.execute(f"PRAGMA integrity_check({_PROBLEMS})")]
        except sqlite3.DatabaseError as exc:
            return CheckResult((_described(exc, path),))
        problems = [line for line in found if line != "ok"]
        if not problems:
            index = _check_index(path)
            if index is None:
                notes.append("the search index was not checked: the store is read-only (its pages were)")
            elif index:
                problems.append(index)
        return CheckResult(tuple(problems), tuple(notes))
    finally:
        conn.close()


def _check_index(path: Path) -> str | None:
    """The search index's problem ('' if none), or ``None`` when the store cannot be written (FTS5 runs its
    check as a write: it is rolled back here)."""
    try:
        conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        conn.execute("BEGIN")
        mark = conn.execute("SELECT indexed_rowid FROM fts_state").fetchone()[0]
        caught_up = conn.execute("SELECT 1 FROM payloads WHERE rowid > ? LIMIT 1", (mark,)).fetchone() is None
        # against the payloads too when every one should be in the index
        conn.execute("INSERT INTO payloads_fts (payloads_fts, rank) VALUES ('integrity-check', ?)", (int(caught_up),))
        return ""
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", None) or ""
        if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
            return None
        return f"search index: {one_line(str(exc))}"
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        conn.close()


def recover(path: Path, to: Path) -> RecoverResult:
    """A new store at ``to`` holding every call of the store at ``path`` that can still be read."""
    _exists(path)
    if to.exists() or Path(f"{to}-wal").exists():
        raise ConfigError(f"{to} exists already", "recover into a new file; the store is never overwritten")
    if to.resolve() == path.resolve():
        raise ConfigError("recover writes a new store", "pass another path to --to")
    try:
        private_folder(to.parent)
        os.close(os.open(to, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise ConfigError(f"cannot make {to}: {exc.strerror or exc}", "pass a path in a writable folder") from None
    try:
        result = _copy(path, to) or _recover_tool(path, to) or _salvage(path, to)
        _rebuild(to, result)
    except BaseException:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                Path(f"{to}{suffix}").unlink()
        raise
    return result


def _copy(path: Path, to: Path) -> RecoverResult | None:
    """``VACUUM INTO`` for a store that passes ``quick_check``; ``None`` when it does not."""
    try:
        conn = _read_only(path)
    except sqlite3.DatabaseError:
        return None
    try:
        if [row[0] for row in conn.execute("PRAGMA quick_check(1)")] != ["ok"]:
            return None
        conn.execute("VACUUM INTO ?", (str(to),))
    except sqlite3.DatabaseError:
        return None
    finally:
        conn.close()
    return RecoverResult("copy")


def _recover_tool(path: Path, to: Path) -> RecoverResult | None:
    """The ``sqlite3`` tool's ``.recover`` into ``to``; ``None`` when the tool is missing or cannot (a build
    without the ``sqlite_dbpage`` table it needs)."""
    tool = shutil.which("sqlite3")
    if tool is None:
        return None
    with tempfile.TemporaryFile() as sql:
        try:
            made = subprocess.run([tool, "-readonly", str(path), ".recover"], stdout=sql, stderr=subprocess.PIPE,
                                  timeout=3600, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        size = sql.seek(0, os.SEEK_END)
        sql.seek(max(size - 4096, 0))
        complete = sql.read().rstrip().endswith(b"COMMIT;")  # (a tool that cannot says so on stderr, and stops)
        if made.returncode != 0 or made.stderr.strip() or not complete:
            return None
        sql.seek(0)
        loaded = subprocess.run([tool, "-bail", str(to)], stdin=sql, capture_output=True, timeout=3600, check=False)
    if loaded.returncode != 0:
        with contextlib.suppress(OSError):
            to.unlink()
        os.close(os.open(to, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return None
    result = RecoverResult("recover")
    conn = sqlite3.connect(to)
    try:
        lost = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'lost_and_found'").fetchone()[0]
        if lost:
            rows = conn.execute("SELECT count(*) FROM lost_and_found").fetchone()[0]
            if rows:
                result.notes.append(f"{rows} rows SQLite could not place in a table are in its lost_and_found table")
            else:
                conn.execute("DROP TABLE lost_and_found")
                conn.commit()
    finally:
        conn.close()
    return result


_TABLES = (("calls", "id"), ("payloads", "rowid"), ("call_tags", "rowid"))
"""Each table and the key it is read in order of (``calls`` is clustered on its id; the others are rowid tables)."""
_CHUNK = 500


def _salvage(path: Path, to: Path) -> RecoverResult:
    """Every row that can still be read, table by table: from the start of each table up to the first damaged
    page, then from its end back down to the last one."""
    try:
        source = _read_only(path)
    except sqlite3.DatabaseError as exc:
        raise TraceStoreError(f"nothing can be read from {path}: {one_line(str(exc))}",
                              "it may not be a trace store at all; a sqlite3 tool with .recover may still find "
                              "rows in it (sqlite3 STORE .recover | sqlite3 NEW.db)") from None
    result = RecoverResult("rows")
    target = connect(to)
    try:
        for table, key in _TABLES:
            have = _columns(source, table)
            names = [name for name in _columns(target, table) if name in have]
            if not names:
                result.notes.append(f"{table}: nothing could be read")
                continue
            insert = f"INSERT OR IGNORE INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            up_to, damaged = _scan(source, target, f"SELECT {key}, {', '.join(names)} FROM {table}", key, insert)
            if damaged:
                _scan(source, target, f"SELECT {key}, {', '.join(names)} FROM {table}", key, insert, stop=up_to)
                result.notes.append(f"{table}: the rows on damaged pages could not be read")
        with target:  # a payload or a tag whose call was lost is of no use
            target.execute("DELETE FROM payloads WHERE call_id NOT IN (SELECT id FROM calls)")
            target.execute("DELETE FROM call_tags WHERE call_id NOT IN (SELECT id FROM calls)")
    finally:
        source.close()
        target.close()
    return result


_NO_STOP = object()


def _scan(source: sqlite3.Connection, target: sqlite3.Connection, select: str, key: str, insert: str,
          stop: object = _NO_STOP) -> tuple[Any, bool]:
    """Copy rows in ``key`` order, ``_CHUNK`` at a time: up from the first (``stop`` not given), or down from
    the last to just above ``stop``. (The last key copied, whether it stopped at a damaged page.)"""
    down = stop is not _NO_STOP
    bound: Any = None
    while True:
        where, args = [], []
        if bound is not None:
            where.append(f"{key} {'<' if down else '>'} ?")
            args.append(bound)
        if down and stop is not None:
            where.append(f"{key} > ?")
            args.append(stop)
        query = (f"{select} {'WHERE ' + ' AND '.join(where) if where else ''} "
                 f"ORDER BY {key}{' DESC' if down else ''} LIMIT {_CHUNK}")
        rows: list[tuple[Any, ...]] = []
        damaged = False
        try:
            for row in source.execute(query, args):
                rows.append(tuple(row))
        except sqlite3.DatabaseError:
            damaged = True
        if rows:
            with target:
                target.executemany(insert, [row[1:] for row in rows])
            bound = rows[-1][0]
        if damaged or len(rows) < _CHUNK:
            return bound, damaged


def _rebuild(to: Path, result: RecoverResult) -> None:
    """The recovered store at this version, its search index and rollups rebuilt from its rows, the rowids to
    come past every one it holds."""
    conn = connect(to)
    try:
        rollup.register(conn)
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            top = conn.execute("SELECT coalesce(max(rowid), 0) FROM payloads").fetchone()[0]
            conn.execute("INSERT INTO payloads_fts (payloads_fts) VALUES ('rebuild')")
            conn.execute("UPDATE fts_state SET indexed_rowid = ?", (top,))
            rollup.rebuild(conn)
            conn.execute("UPDATE rollup_state SET rolled_rowid = ?", (top,))
            conn.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'payloads'", (top,))
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check(5)")]
        if problems != ["ok"]:
            raise TraceStoreError(f"the recovered store {to} is not whole either: {one_line('; '.join(problems))}",
                                  "a sqlite3 tool with .recover may do better: sqlite3 STORE .recover | sqlite3 NEW.db")
        result.calls = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
        result.payloads = conn.execute("SELECT count(*) FROM payloads").fetchone()[0]
    except sqlite3.Error as exc:
        raise storage_error(exc, to) from None
    finally:
        conn.close()


def _read_only(path: Path) -> sqlite3.Connection:
    """The store at ``path`` opened read-only (never migrated, never written)."""
    return open_read_only(path)


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    try:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    except sqlite3.DatabaseError:
        return []


def _exists(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"there is no trace store at {path}", "pass the store with --db, or set WORKBENCH_TRACES")


def _described(exc: sqlite3.Error, path: Path) -> str:
    return str(storage_error(exc, path))
