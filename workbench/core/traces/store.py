"""The trace store: where it lives, how it is opened, and every query the faces run on it.

One SQLite file: ``.workbench/traces.db`` in the workspace (the nearest folder up from the current one
holding ``workbench.toml``), else the user data dir; ``WORKBENCH_TRACES`` or ``--db`` override. WAL,
``synchronous=NORMAL``, a busy timeout, file mode 0600. Pages are keyset pages over the time-sortable
id (never OFFSET), newest first.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import platformdirs

from workbench.core.errors import ConfigError, WorkbenchError, one_line
from workbench.core.folders import private_folder
from workbench.core.traces import rollup, schema
from workbench.core.traces.columns import PAYLOAD_COLUMNS
from workbench.core.traces.filters import ID_SLACK_S, NO_FILTERS, Filters, id_bound
from workbench.core.traces.schema import migrate
from workbench.core.workspace import find_workspace


def default_path(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("WORKBENCH_TRACES"):
        return Path(env["WORKBENCH_TRACES"]).expanduser()
    workspace = find_workspace(cwd or Path.cwd())
    if workspace is not None:
        return workspace / ".workbench" / "traces.db"
    return Path(platformdirs.user_data_dir("workbench")) / "traces.db"


class TraceStoreError(WorkbenchError):
    """The store cannot be read or written as asked: damaged, on a full or failing disk, read-only, busy. A
    failure of the machine or the file, not of the command line (the CLI exits 1)."""

    error_class = "storage"


_PATH_HINT = "check the path and its permissions, or point WORKBENCH_TRACES (or --db) elsewhere"
_DAMAGED_HINT = ("`workbench traces check` says what is damaged; `workbench traces recover --to NEW.db` copies "
                 "what can still be read into a new store")


def storage_error(exc: sqlite3.Error, path: Path) -> WorkbenchError:
    """One line and the next step for an SQLite error on the store at ``path`` (by SQLite's error code):
    a :class:`TraceStoreError`, or a :class:`ConfigError` for a path that cannot be opened at all."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    detail = one_line(str(exc))
    if name == "SQLITE_FULL":
        return TraceStoreError(f"the disk holding the trace store {path} is full ({detail})",
                               "free some space, or delete old calls: workbench traces prune --before 30d")
    if name.startswith("SQLITE_IOERR"):
        return TraceStoreError(f"could not read or write the trace store {path}: {detail}",
                               "the disk may be full or failing: check its free space (df) and the system log")
    if name.startswith("SQLITE_CORRUPT"):
        return TraceStoreError(f"the trace store {path} is damaged ({detail})", _DAMAGED_HINT)
    if name == "SQLITE_NOTADB":
        return TraceStoreError(f"{path} is not a trace store: its header is damaged, or it is another kind of file",
                               f"{_DAMAGED_HINT}; or point WORKBENCH_TRACES (or --db) at another file")
    if name.startswith("SQLITE_READONLY") or (name == "SQLITE_CANTOPEN" and _cannot_write(path)):
        return read_only_error(path)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return TraceStoreError(f"the trace store {path} is busy: another process holds its write lock ({detail})",
                               "try again once that process is done")
    if name in ("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH"):
        return ConfigError(f"cannot open the trace store {path}: {detail}", _PATH_HINT)
    return TraceStoreError(f"the trace store {path} failed: {detail}", _DAMAGED_HINT)


def read_only_error(path: Path) -> TraceStoreError:
    return TraceStoreError(f"the trace store {path} is read-only: this needs to write to it",
                           "reading works (list, show, search, stats, export, check); to write, make the file and "
                           "its folder writable")


def _cannot_write(path: Path) -> bool:
    """Is an existing store where nothing may write (a read-only mount, file or folder)?"""
    if not path.is_file():
        return False
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        return False
    return not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def storage_trouble(exc: BaseException) -> bool:
    """Is ``exc`` the file's or the disk's trouble (full, failing, damaged, read-only, busy), rather than one
    row's (a value SQLite cannot bind or store)?"""
    name = getattr(exc, "sqlite_errorname", None) or ""
    return isinstance(exc, sqlite3.Error) and name.startswith(_STORAGE_ERRORS)


_STORAGE_ERRORS = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_READONLY",
                   "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH", "SQLITE_NOLFS",
                   "SQLITE_PROTOCOL", "SQLITE_NOMEM")
_READ_ONLY_ERRORS = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")
"""What opening a store for writing fails with when only reading is allowed (a read-only file, folder or mount)."""


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating it 0600 if new) and migrate the store, for writing. A path that cannot be made is a
    :class:`ConfigError`, any other failure :func:`storage_error`'s."""
    try:
        return _open(path)
    except sqlite3.Error as exc:
        raise storage_error(exc, path) from None


def _open(path: Path) -> sqlite3.Connection:
    try:
        private_folder(path.parent)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise ConfigError(f"cannot open the trace store {path}: {exc.strerror or exc}", _PATH_HINT) from None
    conn = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        try:
            migrate(conn)
        except sqlite3.Error as exc:
            if storage_trouble(exc):
                raise
            raise TraceStoreError(f"could not upgrade the trace store {path} to this version ({one_line(str(exc))})",
                                  "it is left at its version, unchanged; `workbench traces check` says whether it "
                                  "is damaged") from None
    except BaseException:
        conn.close()
        raise
    for suffix in ("", "-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        with contextlib.suppress(OSError):  # (a file someone else owns keeps its mode)
            if side.exists() and side.stat().st_mode & 0o077:
                side.chmod(0o600)
    conn.row_factory = sqlite3.Row
    return conn


def connect_for_reading(path: Path) -> tuple[sqlite3.Connection, bool]:
    """The store opened for writing if it can be, else read-only: (connection, read-only?).

    A store on a read-only mount, in a read-only folder or in a read-only file is opened by
    :func:`open_read_only`."""
    try:
        return _open(path), False
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", None) or ""
        if not (name.startswith(_READ_ONLY_ERRORS) and path.is_file()):
            raise storage_error(exc, path) from None
        first = exc
    try:
        conn = open_read_only(path)
    except sqlite3.Error as exc:
        raise storage_error(first if exc.sqlite_errorname == "SQLITE_CANTOPEN" else exc, path) from None
    try:
        if schema.version(conn) == 0:
            raise TraceStoreError(f"the trace store {path} is read-only and has no tables yet",
                                  "make its folder writable, or point WORKBENCH_TRACES (or --db) elsewhere")
    except BaseException:
        conn.close()
        raise
    conn.row_factory = sqlite3.Row
    return conn, True


def open_read_only(path: Path) -> sqlite3.Connection:
    """The store at ``path`` opened read-only: SQLite's ``mode=ro``, or when even that cannot open it (a WAL
    store needs its ``-shm`` file, which a read-only folder cannot get) and no ``-wal`` file holds commits the
    main file lacks, ``mode=ro&immutable=1`` (SQLite then takes no locks: nothing can write there anyway).
    Raises ``sqlite3.Error`` as SQLite does (the file is read here: a damaged header fails now)."""
    uri = f"{path.absolute().as_uri()}?mode=ro"
    try:
        return _open_uri(uri)
    except sqlite3.Error as exc:
        if exc.sqlite_errorname != "SQLITE_CANTOPEN" or Path(f"{path}-wal").exists():
            raise
    return _open_uri(f"{uri}&immutable=1")


def _open_uri(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, timeout=5.0, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


_MAX_PARTS = 100
"""A filter split into more index ranges than this scans the calls newest first instead."""


class TraceStore:
    """Read side of the store (the writer has its own connection), and prune.

    A store that cannot be written (a read-only file, folder or mount) is opened read-only: everything
    that reads works, without catching up the search index or the rollups first (``search`` finds what
    the index holds; ``stats`` takes the exact query when the rollups lag); ``prune`` and
    ``link_session`` raise :class:`TraceStoreError`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn, self.read_only = connect_for_reading(path)

    def _catch_up(self, step: Callable[[sqlite3.Connection], int]) -> None:
        """Run a catch-up step (it writes); a store that turns out read-only is read as it is from then on."""
        if self.read_only:
            return
        try:
            step(self.conn)
        except sqlite3.Error as exc:
            if not (getattr(exc, "sqlite_errorname", None) or "").startswith(_READ_ONLY_ERRORS):
                raise storage_error(exc, self.path) from None
            if self.conn.in_transaction:
                self.conn.rollback()
            self.read_only = True

    def unindexed(self) -> int:
        """Payloads the search index does not hold yet (left by a writer that stopped early; only a read-only
        store keeps them, any other catches up before it searches)."""
        mark = self.conn.execute("SELECT indexed_rowid FROM fts_state").fetchone()[0]
        count: int = self.conn.execute("SELECT count(*) FROM payloads WHERE rowid > ?", (mark,)).fetchone()[0]
        return count

    def close(self) -> None:
        self.conn.close()

    def page(self, filters: Filters = NO_FILTERS, before: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` calls older than the id ``before`` (a keyset page)."""
        where, args = replace(filters, tag=None).where()
        if before is not None:
            where += " AND c.id < ?"
            args.append(before)
        if filters.tag is not None:  # walk the tag's index newest first (a subquery would gather every call with
            bounds, extra = ["t.tag = ?"], [filters.tag]  # the tag first)
            since = None if filters.since is None else id_bound(filters.since - ID_SLACK_S)
            until = None if filters.until is None else id_bound(filters.until + 0.002)
            for op, value in (("<", before), (">=", since), ("<", until)):
                if value is not None:
                    bounds.append(f"t.call_id {op} ?")
                    extra.append(value)
            query = (f"SELECT c.* FROM call_tags t JOIN calls c ON c.id = t.call_id WHERE {' AND '.join(bounds)} "
                     f"AND {where} ORDER BY t.call_id DESC LIMIT ?")
            args = [*extra, *args]
        elif (parts := self._parts(filters)) is not None and len(parts) <= _MAX_PARTS:
            if not parts:
                return []
            # one index range per part, merged newest first by SQLite (each is in id order already)
            query = " UNION ALL ".join(f"SELECT c.* FROM calls c WHERE {where} AND {part}" for part, _ in parts)
            query += " ORDER BY id DESC LIMIT ?"
            args = [value for _, part_args in parts for value in (*args, *part_args)]
        else:
            query = f"SELECT c.* FROM calls c WHERE {where} ORDER BY c.id DESC LIMIT ?"
        return [dict(r) for r in self.conn.execute(query, [*args, limit])]

    def _parts(self, filters: Filters) -> list[tuple[str, tuple[Any, ...]]] | None:
        """The filters no index gives in id order, split into ranges that one does: a prompt's calls are
        its versions' (``calls_prompt``), a provider's are its targets' (``calls_target``; a provider is
        the part of the target before the ``/``). ``None`` when the filters need no split."""
        conn = self.conn
        if filters.prompt is not None and filters.prompt_version is None:
            parts: list[tuple[str, tuple[Any, ...]]] = []
            if conn.execute("SELECT 1 FROM calls WHERE prompt_name = ? AND prompt_version IS NULL LIMIT 1",
                            (filters.prompt,)).fetchone():
                parts.append(("c.prompt_version IS NULL", ()))
            version = -(1 << 63)
            while len(parts) <= _MAX_PARTS and (row := conn.execute(
                    "SELECT prompt_version FROM calls WHERE prompt_name = ? AND prompt_version > ? "
                    "ORDER BY prompt_version LIMIT 1", (filters.prompt, version)).fetchone()):
                version = row[0]
                parts.append(("c.prompt_version = ?", (version,)))
            return parts
        if filters.provider is not None and filters.model is None:
            parts = []
            if conn.execute("SELECT 1 FROM calls WHERE target = ? LIMIT 1", (filters.provider,)).fetchone():
                parts.append(("c.target = ?", (filters.provider,)))
            target, end = f"{filters.provider}/", f"{filters.provider}0"  # '0' follows '/'
            while len(parts) <= _MAX_PARTS and (row := conn.execute(
                    "SELECT target FROM calls WHERE target >= ? AND target < ? ORDER BY target LIMIT 1",
                    (target, end)).fetchone()):
                parts.append(("c.target = ?", (row[0],)))
                target = row[0] + "\x00"
            return parts
        return None

    def get(self, call_id: str) -> dict[str, Any] | None:
        """One call with its payload and tags; an id prefix is accepted when unique."""
        rows = self.conn.execute("SELECT * FROM calls WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
                                 (call_id, call_id + "\uffff")).fetchall()
        if len(rows) != 1:
            return None
        call = dict(rows[0])
        payload = self.conn.execute("SELECT * FROM payloads WHERE call_id = ?", (call["id"],)).fetchone()
        call["payload"] = {k: payload[k] for k in PAYLOAD_COLUMNS if k != "call_id"} if payload else None
        call["tags"] = [r[0] for r in self.conn.execute("SELECT tag FROM call_tags WHERE call_id = ?", (call["id"],))]
        return call

    def last_written(self) -> int:
        """The write order (``payloads.rowid``) of the newest call written: :meth:`written_after` that mark
        gives the calls written since."""
        mark: int | None = self.conn.execute("SELECT max(rowid) FROM payloads").fetchone()[0]
        return mark or 0

    def written_after(self, mark: int, upto: int, filters: Filters = NO_FILTERS) -> list[dict[str, Any]]:
        """The calls written after ``mark`` up to ``upto`` (marks from :meth:`last_written`) that match
        ``filters``, in the order they were written (not their ids' order: a long stream started earlier is
        written later). Each row carries ``_seq``, its write order."""
        where, args = filters.where()
        query = (f"SELECT c.*, p.rowid AS _seq FROM payloads p JOIN calls c ON c.id = p.call_id "
                 f"WHERE p.rowid > ? AND p.rowid <= ? AND {where} ORDER BY p.rowid")
        return [dict(r) for r in self.conn.execute(query, [mark, upto, *args])]

    def last_rows(self, count: int, upto: int, filters: Filters = NO_FILTERS) -> list[dict[str, Any]]:
        """The last ``count`` calls written up to the mark ``upto`` that match ``filters``, oldest first, each
        with ``_seq``."""
        where, args = filters.where()
        query = (f"SELECT c.*, p.rowid AS _seq FROM payloads p JOIN calls c ON c.id = p.call_id "
                 f"WHERE p.rowid <= ? AND {where} ORDER BY p.rowid DESC LIMIT ?")
        return [dict(r) for r in self.conn.execute(query, [upto, *args, count])][::-1]

    def search(self, text: str, filters: Filters = NO_FILTERS, before: int | None = None,
               limit: int = 50, *, fts: bool = False) -> list[dict[str, Any]]:
        """Calls whose prompt or reply holds every word of ``text`` as written (``AND``, quotes and ``*`` are
        words like any other), newest first; with ``fts``, ``text`` is an FTS5 query (its syntax errors are a
        :class:`ConfigError`).

        Each row carries ``_cursor``: pass the last one as ``before`` for the next page."""
        query_text = text if fts else _literal_query(text)
        if not query_text.strip():
            raise ConfigError("nothing to search for", "give a word to search for")
        self._catch_up(index_pending)
        where, args = filters.where()
        keyset = "" if before is None else "AND f.rowid < ?"
        query = (f"SELECT c.*, f.rowid AS _cursor FROM payloads_fts f JOIN payloads p ON p.rowid = f.rowid "
                 f"JOIN calls c ON c.id = p.call_id WHERE payloads_fts MATCH ? {keyset} AND {where} "
                 f"ORDER BY f.rowid DESC LIMIT ?")
        params = [query_text, *([before] if before is not None else []), *args, limit]
        try:
            return [dict(r) for r in self.conn.execute(query, params)]
        except sqlite3.OperationalError as exc:
            if storage_trouble(exc):
                raise storage_error(exc, self.path) from None
            raise ConfigError(f"bad FTS5 query {one_line(text, 80)!r}: {exc}",
                              "see SQLite's FTS5 query syntax, or drop --fts to search the words as written") from None

    def stats(self, by: str, filters: Filters = NO_FILTERS) -> list[dict[str, Any]]:
        """See :func:`workbench.core.traces.stats.stats`."""
        from workbench.core.traces.stats import exact_stats, stats  # statistics and the planner: only when asked

        self._catch_up(rollup.roll_pending)
        if self.read_only and not self._rollups_current():
            return exact_stats(self.conn, by, filters)
        return stats(self.conn, by, filters)

    def _rollups_current(self) -> bool:
        """Do the rollups hold every call, in this version's form? (A read-only store cannot catch them up.)"""
        if schema.version(self.conn) < schema.SCHEMA_VERSION:
            return False
        mark = self.conn.execute("SELECT rolled_rowid FROM rollup_state").fetchone()[0]
        return self.conn.execute("SELECT 1 FROM payloads WHERE rowid > ? LIMIT 1", (mark,)).fetchone() is None

    def exact_stats(self, by: str, filters: Filters = NO_FILTERS) -> list[dict[str, Any]]:
        """See :func:`workbench.core.traces.stats.exact_stats`."""
        from workbench.core.traces.stats import exact_stats

        return exact_stats(self.conn, by, filters)

    def export(self, filters: Filters = NO_FILTERS, with_payload: bool = True) -> Iterator[dict[str, Any]]:
        """Every matching call, oldest first (streamed: a million rows never sit in memory)."""
        where, args = filters.where()
        join = "LEFT JOIN payloads p ON p.call_id = c.id" if with_payload else ""
        extra = (", p.request_json, p.response_text, p.reasoning_text, p.attempts_json, p.tool_calls_json, "
                 "p.refusal_text, p.refusal_category, p.blocks_json" if with_payload else "")
        for row in self.conn.execute(f"SELECT c.*{extra} FROM calls c {join} WHERE {where} ORDER BY c.id", args):
            yield dict(row)

    def _writable(self) -> None:
        if self.read_only:
            raise read_only_error(self.path)

    def link_session(self, ids: Sequence[str], session: str) -> None:
        """Record calls already written as part of a session (a race saved after it was traced)."""
        self._writable()
        with self.conn:
            self.conn.execute("UPDATE calls SET session_id = ? WHERE id IN (SELECT value FROM json_each(?))",
                              (session, json.dumps(list(ids))))

    def prune(self, before_ts: float) -> int:
        """Delete calls older than ``before_ts`` with their payloads, tags and index entries (their rowids are
        never used again: migration 6)."""
        self._writable()
        rollup.register(self.conn)
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            while rollup.roll_step(self.conn, 50_000):  # so the days recomputed below count no call twice
                pass
            indexed = self.conn.execute("SELECT indexed_rowid FROM fts_state").fetchone()[0]
            self.conn.execute(
                "INSERT INTO payloads_fts (payloads_fts, rowid, request_json, response_text) "
                "SELECT 'delete', p.rowid, p.request_json, p.response_text FROM payloads p "
                "JOIN calls c ON c.id = p.call_id WHERE c.ts < ? AND p.rowid <= ?", (before_ts, indexed))
            self.conn.execute("DELETE FROM payloads WHERE call_id IN (SELECT id FROM calls WHERE ts < ?)", (before_ts,))
            self.conn.execute("DELETE FROM call_tags WHERE call_id IN (SELECT id FROM calls WHERE ts < ?)",
                              (before_ts,))
            first = self.conn.execute("SELECT min(day) FROM rollup_calls").fetchone()[0]
            deleted = self.conn.execute("DELETE FROM calls WHERE ts < ?", (before_ts,)).rowcount
            if first is not None:  # the rollups of the days pruned (the last one may keep some calls)
                rollup.recompute_days(self.conn, first, rollup.day_of(before_ts))
        return deleted


def index_pending(conn: sqlite3.Connection, batch: int = 5_000) -> int:
    """Index payloads written since the last run into the FTS table; returns how many were indexed.

    Each step reads the high-water mark under the write lock (``BEGIN IMMEDIATE``): two connections
    catching up at once (the writer's idle step, a ``search`` elsewhere) never index a payload twice."""
    done = 0
    while True:
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            mark = conn.execute("SELECT indexed_rowid FROM fts_state").fetchone()[0]
            top = conn.execute("SELECT max(rowid) FROM (SELECT rowid FROM payloads WHERE rowid > ? ORDER BY rowid "
                               "LIMIT ?)", (mark, batch)).fetchone()[0]
            if top is None:
                return done
            conn.execute("INSERT INTO payloads_fts (rowid, request_json, response_text) SELECT rowid, request_json, "
                         "response_text FROM payloads WHERE rowid > ? AND rowid <= ?", (mark, top))
            conn.execute("UPDATE fts_state SET indexed_rowid = ?", (top,))
            done += top - mark


def _literal_query(text: str) -> str:
    """The FTS5 query for every word of ``text`` as written: each an FTS5 string (a ``"`` doubled), so no word is
    an operator (``AND``, ``NEAR``), a prefix (``*``), a column filter (``:``) or a quote."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in text.split())

