"""The trace store: where it lives, how it is opened, and every query the faces run on it.

One SQLite file: ``.workbench/traces.db`` in the workspace (the nearest folder up from the current one
holding ``workbench.toml``), else the user data dir; ``WORKBENCH_TRACES`` or ``--db`` override. WAL,
``synchronous=NORMAL``, a busy timeout, file mode 0600. Pages are keyset pages over the time-sortable
id (never OFFSET), newest first.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import platformdirs

from workbench.core.errors import ConfigError
from workbench.core.sqlite_file import open_private
from workbench.core.traces import rollup
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


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating it 0600 if new) and migrate the store."""
    return open_private(path, migrate, "the trace store",
                        "check the path and its permissions, or point WORKBENCH_TRACES elsewhere")


_MAX_PARTS = 100
"""A filter split into more index ranges than this scans the calls newest first instead."""


class TraceStore:
    """Read side of the store (the writer has its own connection)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)

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

    def search(self, text: str, filters: Filters = NO_FILTERS, before: int | None = None,
               limit: int = 50) -> list[dict[str, Any]]:
        """Calls whose prompt or reply matches ``text`` (FTS5 query syntax), newest first.

        Each row carries ``_cursor``: pass the last one as ``before`` for the next page."""
        index_pending(self.conn)
        where, args = filters.where()
        keyset = "" if before is None else "AND f.rowid < ?"
        query = (f"SELECT c.*, f.rowid AS _cursor FROM payloads_fts f JOIN payloads p ON p.rowid = f.rowid "
                 f"JOIN calls c ON c.id = p.call_id WHERE payloads_fts MATCH ? {keyset} AND {where} "
                 f"ORDER BY f.rowid DESC LIMIT ?")
        params = [_fts_query(text), *([before] if before is not None else []), *args, limit]
        try:
            return [dict(r) for r in self.conn.execute(query, params)]
        except sqlite3.OperationalError as exc:
            raise ConfigError(f"bad search '{text}': {exc}", "quote phrases; use AND, OR, NOT between words") from None

    def stats(self, by: str, filters: Filters = NO_FILTERS) -> list[dict[str, Any]]:
        """See :func:`workbench.core.traces.stats.stats`."""
        from workbench.core.traces.stats import stats  # statistics and the planner: only when asked

        return stats(self.conn, by, filters)

    def exact_stats(self, by: str, filters: Filters = NO_FILTERS) -> list[dict[str, Any]]:
        """See :func:`workbench.core.traces.stats.exact_stats`."""
        from workbench.core.traces.stats import exact_stats

        return exact_stats(self.conn, by, filters)

    def export(self, filters: Filters = NO_FILTERS, with_payload: bool = True) -> Iterator[dict[str, Any]]:
        """Every matching call, oldest first (streamed: a million rows never sit in memory)."""
        where, args = filters.where()
        join = "LEFT JOIN payloads p ON p.call_id = c.id" if with_payload else ""
        extra = ", p.request_json, p.response_text, p.reasoning_text, p.attempts_json" if with_payload else ""
        for row in self.conn.execute(f"SELECT c.*{extra} FROM calls c {join} WHERE {where} ORDER BY c.id", args):
            yield dict(row)

    def link_session(self, ids: Sequence[str], session: str) -> None:
        """Record calls already written as part of a session (a race saved after it was traced)."""
        with self.conn:
            self.conn.execute("UPDATE calls SET session_id = ? WHERE id IN (SELECT value FROM json_each(?))",
                              (session, json.dumps(list(ids))))

    def prune(self, before_ts: float) -> int:
        """Delete calls older than ``before_ts`` with their payloads, tags and index entries."""
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


def _fts_query(text: str) -> str:
    """Plain words become a phrase-per-word AND query; FTS syntax (quotes, AND/OR/NOT, *) passes through."""
    if any(c in text for c in '"*') or any(op in text.split() for op in ("AND", "OR", "NOT", "NEAR")):
        return text
    return " ".join(json.dumps(word) for word in text.split())

