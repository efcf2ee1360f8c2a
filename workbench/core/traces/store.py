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
import statistics
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from workbench.core.errors import ConfigError
from workbench.core.traces.schema import migrate

WORKSPACE_FILE = "workbench.toml"
CALL_COLUMNS = ("id", "ts", "provider", "model", "target", "served_by", "endpoint", "prompt_name", "prompt_version",
                "session_id", "eval_run_id", "status", "error_class", "error", "finish_reason", "finish_raw",
                "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
                "usage_estimated", "cost_usd", "ttft_ms", "latency_ms", "tokens_per_s", "queue_ms", "attempt_count",
                "request_id")
PAYLOAD_COLUMNS = ("call_id", "request_json", "response_text", "reasoning_text", "attempts_json", "chunk_ms")


def find_workspace(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / WORKSPACE_FILE).is_file():
            return folder
    return None


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        migrate(conn)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot open the trace store {path}: {exc}",
                          "check the path and its permissions, or point WORKBENCH_TRACES elsewhere") from None
    for suffix in ("", "-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists():
            side.chmod(0o600)
    conn.row_factory = sqlite3.Row
    return conn


@dataclass(frozen=True, slots=True)
class Filters:
    provider: str | None = None
    model: str | None = None
    status: str | None = None
    prompt: str | None = None
    prompt_version: int | None = None
    tag: str | None = None
    session: str | None = None
    eval_run: str | None = None
    since: float | None = None
    until: float | None = None
    min_cost: float | None = None
    min_latency_ms: float | None = None

    def where(self, alias: str = "c") -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        conditions: tuple[tuple[str, str, object], ...] = (
            ("provider", "=", self.provider), ("target", "=", self.model), ("status", "=", self.status),
            ("prompt_name", "=", self.prompt), ("prompt_version", "=", self.prompt_version),
            ("session_id", "=", self.session), ("eval_run_id", "=", self.eval_run), ("ts", ">=", self.since),
            ("ts", "<", self.until), ("cost_usd", ">=", self.min_cost), ("latency_ms", ">=", self.min_latency_ms))
        for column, op, value in conditions:
            if value is not None:
                clauses.append(f"{alias}.{column} {op} ?")
                args.append(value)
        if self.tag is not None:
            clauses.append(f"{alias}.id IN (SELECT call_id FROM call_tags WHERE tag = ?)")
            args.append(self.tag)
        return (" AND ".join(clauses) or "1"), args


class TraceStore:
    """Read side of the store (the writer has its own connection)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)

    def close(self) -> None:
        self.conn.close()

    def page(self, filters: Filters = Filters(), before: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` calls older than the id ``before`` (a keyset page)."""
        where, args = filters.where()
        if before is not None:
            where += " AND c.id < ?"
            args.append(before)
        rows = self.conn.execute(f"SELECT c.* FROM calls c WHERE {where} ORDER BY c.id DESC LIMIT ?", [*args, limit])
        return [dict(r) for r in rows]

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

    def search(self, text: str, filters: Filters = Filters(), before: int | None = None,
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

    def stats(self, by: str, filters: Filters = Filters()) -> list[dict[str, Any]]:
        """Calls, spend, p50/p95 TTFT and latency, cache hit ratio and share of ``length`` finishes per group."""
        key = _GROUPS.get(by)
        if key is None:
            raise ConfigError(f"cannot group by '{by}'", f"use one of: {', '.join(_GROUPS)}")
        where, args = filters.where()
        source = "calls c" if by != "tag" else "calls c JOIN call_tags t ON t.call_id = c.id"
        rows = self.conn.execute(
            f"SELECT {key} AS grp, count(*) AS calls, sum(c.cost_usd) AS spend_usd, "
            f"sum(c.cost_usd IS NULL AND c.input_tokens IS NOT NULL) AS unpriced, "
            f"sum(c.cache_read_tokens) AS cache_read, sum(c.input_tokens) AS input_tokens, "
            f"sum(c.output_tokens) AS output_tokens, avg(c.finish_reason = 'length') AS length_share, "
            f"avg(c.status = 'error') AS error_share, group_concat(c.ttft_ms) AS ttfts, "
            f"group_concat(c.latency_ms) AS latencies FROM {source} WHERE {where} GROUP BY grp ORDER BY grp",
            args)
        out = []
        for row in rows:
            ttfts = _floats(row["ttfts"])
            latencies = _floats(row["latencies"])
            out.append({
                by: row["grp"], "calls": row["calls"], "spend_usd": row["spend_usd"], "unpriced_calls": row["unpriced"],
                "input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"],
                "cache_hit_ratio": (row["cache_read"] or 0) / row["input_tokens"] if row["input_tokens"] else None,
                "length_share": row["length_share"], "error_share": row["error_share"],
                "ttft_p50_ms": _quantile(ttfts, 0.5), "ttft_p95_ms": _quantile(ttfts, 0.95),
                "latency_p50_ms": _quantile(latencies, 0.5), "latency_p95_ms": _quantile(latencies, 0.95),
            })
        return out

    def export(self, filters: Filters = Filters(), with_payload: bool = True) -> Iterator[dict[str, Any]]:
        """Every matching call, oldest first (streamed: a million rows never sit in memory)."""
        where, args = filters.where()
        join = "LEFT JOIN payloads p ON p.call_id = c.id" if with_payload else ""
        extra = ", p.request_json, p.response_text, p.reasoning_text, p.attempts_json" if with_payload else ""
        for row in self.conn.execute(f"SELECT c.*{extra} FROM calls c {join} WHERE {where} ORDER BY c.id", args):
            yield dict(row)

    def prune(self, before_ts: float) -> int:
        """Delete calls older than ``before_ts`` with their payloads, tags and index entries."""
        with self.conn:
            indexed = self.conn.execute("SELECT indexed_rowid FROM fts_state").fetchone()[0]
            self.conn.execute(
                "INSERT INTO payloads_fts (payloads_fts, rowid, request_json, response_text) "
                "SELECT 'delete', p.rowid, p.request_json, p.response_text FROM payloads p "
                "JOIN calls c ON c.id = p.call_id WHERE c.ts < ? AND p.rowid <= ?", (before_ts, indexed))
            self.conn.execute("DELETE FROM payloads WHERE call_id IN (SELECT id FROM calls WHERE ts < ?)", (before_ts,))
            self.conn.execute("DELETE FROM call_tags WHERE call_id IN (SELECT id FROM calls WHERE ts < ?)",
                              (before_ts,))
            deleted = self.conn.execute("DELETE FROM calls WHERE ts < ?", (before_ts,)).rowcount
        return deleted


_GROUPS = {
    "day": "date(c.ts, 'unixepoch')",
    "model": "c.target",
    "provider": "c.provider",
    "prompt": "c.prompt_name",
    "prompt-version": "c.prompt_name || '@' || c.prompt_version",
    "tag": "t.tag",
    "status": "c.status",
}


def index_pending(conn: sqlite3.Connection, batch: int = 5_000) -> int:
    """Index payloads written since the last run into the FTS table; returns how many were indexed."""
    done = 0
    while True:
        with conn:
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


def _floats(joined: str | None) -> list[float]:
    return sorted(float(v) for v in joined.split(",")) if joined else []


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]
