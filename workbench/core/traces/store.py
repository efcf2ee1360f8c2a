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
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import platformdirs

from workbench.core.errors import ConfigError
from workbench.core.traces import rollup
from workbench.core.traces.ids import time_prefix
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
        if self.since is not None:  # the id starts with the call's start time: a range on the primary key
            clauses.append(f"{alias}.id >= ?")
            args.append(id_bound(self.since - ID_SLACK_S))
        if self.until is not None:
            clauses.append(f"{alias}.id < ?")
            args.append(id_bound(self.until + 0.002))
        if self.tag is not None:
            clauses.append(f"{alias}.id IN (SELECT call_id FROM call_tags WHERE tag = ?)")
            args.append(self.tag)
        return (" AND ".join(clauses) or "1"), args


ID_SLACK_S = 0.001
"""A row's id is made from its ``ts`` (to the millisecond), so ``ts >= since`` implies
``id >= id_bound(since - ID_SLACK_S)``."""


def id_bound(ts: float) -> str:
    """The smallest id of the millisecond ``ts`` falls in (ids sort by time: ULIDs)."""
    return time_prefix(ts)


class TraceStore:
    """Read side of the store (the writer has its own connection)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)

    def close(self) -> None:
        self.conn.close()

    def page(self, filters: Filters = Filters(), before: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` calls older than the id ``before`` (a keyset page)."""
        where, args = replace(filters, tag=None).where()
        if before is not None:
            where += " AND c.id < ?"
            args.append(before)
        if filters.tag is None:
            query = f"SELECT c.* FROM calls c WHERE {where} ORDER BY c.id DESC LIMIT ?"
        else:  # walk the tag's index newest first (a subquery would gather every call with the tag first)
            bounds, extra = ["t.tag = ?"], [filters.tag]
            since = None if filters.since is None else id_bound(filters.since - ID_SLACK_S)
            until = None if filters.until is None else id_bound(filters.until + 0.002)
            for op, value in (("<", before), (">=", since), ("<", until)):
                if value is not None:
                    bounds.append(f"t.call_id {op} ?")
                    extra.append(value)
            query = (f"SELECT c.* FROM call_tags t JOIN calls c ON c.id = t.call_id WHERE {' AND '.join(bounds)} "
                     f"AND {where} ORDER BY t.call_id DESC LIMIT ?")
            args = [*extra, *args]
        return [dict(r) for r in self.conn.execute(query, [*args, limit])]

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
        """Calls, spend, p50/p95 TTFT and latency, cache hit ratio and share of ``length`` finishes per group.

        Answered from the rollups (see :mod:`rollup`; percentiles within its relative error) whenever the
        filters are ones a rollup is keyed by; the parts of ``since``/``until`` that are not whole UTC days
        come from the calls themselves. Other filters (cost, latency, session, eval run, or mixes no
        rollup is keyed by) take the exact query over the calls."""
        if by not in _GROUPS:
            raise ConfigError(f"cannot group by '{by}'", f"use one of: {', '.join(_GROUPS)}")
        plan = _rollup_plan(by, filters)
        if plan is None:
            return self.exact_stats(by, filters)
        return self._rollup_stats(by, filters, *plan)

    def exact_stats(self, by: str, filters: Filters = Filters()) -> list[dict[str, Any]]:
        """:meth:`stats` computed from every matching call (exact percentiles; slow on big stores)."""
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

    def _rollup_stats(self, by: str, filters: Filters, counter_table: str,
                      hist_table: str) -> list[dict[str, Any]]:
        days, edges = _split_days(filters.since, filters.until)
        cursor = self.conn.cursor()
        cursor.row_factory = None
        columns = _GROUP_COLUMNS[by]
        width = len(columns)
        counters: dict[tuple[Any, ...], list[Any]] = {}  # rollup key → 11 counters and the errors
        hists: dict[tuple[Any, ...], list[int]] = {}  # rollup key → [TTFT histogram, latency histogram]

        def add_counters(rows: Iterator[tuple[Any, ...]]) -> None:
            for row in rows:
                key = row[:width]
                entry = counters.get(key)
                if entry is None:
                    counters[key] = list(row[width:])
                else:
                    for i, value in enumerate(row[width:]):
                        entry[i] += value

        def hist(key: tuple[Any, ...]) -> list[int]:
            entry = hists.get(key)
            if entry is None:
                entry = hists[key] = [0, 0]
            return entry

        sums = ", ".join(f"sum({c})" for c in rollup.COUNTERS)
        if days is not None:
            where, args = _rollup_where(counter_table, filters, days)
            add_counters(cursor.execute(
                f"SELECT {', '.join(columns)}, {sums}, sum(CASE WHEN status = 'error' THEN calls ELSE 0 END) "
                f"FROM {counter_table} WHERE {where} GROUP BY {', '.join(columns)}", args))
            where, args = _rollup_where(hist_table, filters, days)
            decode = rollup.decode
            for row in cursor.execute(f"SELECT {', '.join(columns)}, hist FROM {hist_table} WHERE {where}", args):
                ttft, latency = decode(row[width])
                entry = hist(row[:width])
                entry[0] += ttft
                entry[1] += latency
        for low, high in edges:  # the parts of days at the ends: from the calls, aggregated by SQLite
            where, args = replace(filters, since=low, until=high, tag=None).where()
            source, keys = "calls c", [_EDGE_KEYS[column] for column in columns]
            if counter_table == "rollup_tags":
                source += " JOIN call_tags t ON t.call_id = c.id" + (" AND t.tag = ?" if filters.tag else "")
                args = [filters.tag, *args] if filters.tag else args
            group = ", ".join(keys)
            add_counters(cursor.execute(f"SELECT {group}, {_EDGE_COUNTERS} FROM {source} WHERE {where} "
                                        f"GROUP BY {group}", args))
            for metric, column in enumerate(("c.ttft_ms", "c.latency_ms")):
                lane = (f"CASE WHEN {column} < ? THEN 0 ELSE min(CAST((ln({column}) - ?) * ? AS INTEGER) + 1, ?) END")
                for row in cursor.execute(
                        f"SELECT {group}, {lane}, count(*) FROM {source} WHERE {where} AND {column} IS NOT NULL "
                        f"GROUP BY {group}, {width + 1}",
                        [rollup.LOW_MS, rollup.LN_LOW, rollup.INV_LN_R, rollup.BUCKETS + 1, *args]):
                    hist(row[:width])[metric] += row[width + 1] << (32 * row[width])
        groups: dict[Any, list[Any]] = {}  # the exact query's group value → counters, errors, histograms
        for key, values in counters.items():
            value = _group_value(by, key)
            merged = groups.get(value)
            ttft, latency = hists.get(key) or (0, 0)
            if merged is None:
                groups[value] = [*values, ttft, latency]
                continue
            for i, number in enumerate(values):
                merged[i] += number
            merged[-2] += ttft
            merged[-1] += latency
        for key, (ttft, latency) in hists.items():  # a key may have a histogram but no counter row (by tag)
            if key not in counters:
                merged = groups.get(_group_value(by, key))
                if merged is not None:
                    merged[-2] += ttft
                    merged[-1] += latency
        out = []
        for value in sorted(groups, key=lambda v: (v is not None, v)):
            result = groups[value]
            c = dict(zip(rollup.COUNTERS, result, strict=False))
            if not c["calls"]:
                continue
            ttfts, latencies = rollup.counts(result[-2]), rollup.counts(result[-1])
            out.append({
                by: value, "calls": c["calls"], "spend_usd": c["spend_usd"] if c["priced"] else None,
                "unpriced_calls": c["unpriced"], "input_tokens": c["input_tokens"] if c["input_n"] else None,
                "output_tokens": c["output_tokens"] if c["output_n"] else None,
                "cache_hit_ratio": c["cache_read_tokens"] / c["input_tokens"] if c["input_tokens"] else None,
                "length_share": c["length"] / c["finished"] if c["finished"] else None,
                "error_share": result[len(rollup.COUNTERS)] / c["calls"],
                "ttft_p50_ms": rollup.quantile(ttfts, 0.5), "ttft_p95_ms": rollup.quantile(ttfts, 0.95),
                "latency_p50_ms": rollup.quantile(latencies, 0.5), "latency_p95_ms": rollup.quantile(latencies, 0.95),
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
            first = self.conn.execute("SELECT min(day) FROM rollup_calls").fetchone()[0]
            deleted = self.conn.execute("DELETE FROM calls WHERE ts < ?", (before_ts,)).rowcount
            if first is not None:  # the rollups of the days pruned (the last one may keep some calls)
                rollup.recompute_days(self.conn, first, rollup.day_of(before_ts))
        return deleted


_GROUPS = {
    "day": "date(CAST(c.ts AS INTEGER), 'unixepoch')",
    "model": "c.target",
    "provider": "c.provider",
    "prompt": "c.prompt_name",
    "prompt-version": "c.prompt_name || '@' || c.prompt_version",
    "tag": "t.tag",
    "status": "c.status",
}


_GROUP_COLUMNS = {
    "day": ("day",), "model": ("target",), "provider": ("provider",), "prompt": ("prompt_name",),
    "prompt-version": ("prompt_name", "prompt_version"), "tag": ("tag",), "status": ("status",),
}
_EDGE_KEYS = {  # the rollup key columns, computed from the calls (``t``: call_tags)
    "day": "CAST(c.ts AS INTEGER) / 86400", "target": "c.target", "provider": "c.provider",
    "prompt_name": f"coalesce(c.prompt_name, '{rollup.NO_PROMPT}')",
    "prompt_version": f"coalesce(c.prompt_version, {rollup.NO_VERSION})", "status": "c.status", "tag": "t.tag",
}
_EDGE_COUNTERS = (  # rollup.COUNTERS and the errors, computed from the calls
    "count(*), count(c.cost_usd), total(c.cost_usd), sum(c.cost_usd IS NULL AND c.input_tokens IS NOT NULL), "
    "count(c.input_tokens), coalesce(sum(c.input_tokens), 0), count(c.output_tokens), "
    "coalesce(sum(c.output_tokens), 0), coalesce(sum(c.cache_read_tokens), 0), count(c.finish_reason), "
    "coalesce(sum(c.finish_reason = 'length'), 0), sum(c.status = 'error')")
_ROLLUP_FILTERS = (("provider", "provider"), ("model", "target"), ("status", "status"), ("prompt", "prompt_name"),
                   ("prompt_version", "prompt_version"), ("tag", "tag"))


def _rollup_plan(by: str, filters: Filters) -> tuple[str, str] | None:
    """(counter table, histogram table) that answer ``stats(by, filters)``, or ``None``: the exact query."""
    if (filters.session is not None or filters.eval_run is not None or filters.min_cost is not None
            or filters.min_latency_ms is not None or filters.prompt == rollup.NO_PROMPT
            or filters.prompt_version == rollup.NO_VERSION):
        return None
    used = {name for name, _ in _ROLLUP_FILTERS if getattr(filters, name) is not None}
    if by == "tag" or "tag" in used:
        if (by == "tag" and "tag" in used) or used - {"tag", "status"} or by not in ("tag", "day", "status"):
            return None  # (calls with a tag grouped by tag count their other tags too: only the exact query has those)
        return "rollup_tags", "rollup_tags"
    target_side = bool(used & {"provider", "model"}) or by in ("model", "provider")
    prompt_side = bool(used & {"prompt", "prompt_version"}) or by in ("prompt", "prompt-version")
    if prompt_side and (target_side or "status" in used or by == "status"):
        return None  # (no rollup has both; the prompts' histograms have no status)
    return "rollup_calls", "rollup_prompts" if prompt_side else "rollup_targets"


def _split_days(since: float | None, until: float | None) -> tuple[tuple[int | None, int | None] | None,
                                                                    list[tuple[float, float]]]:
    """[first, end) whole days (None: unbounded; the pair None: no whole day) and the (since, until) parts."""
    first = None if since is None else -(-since // rollup.DAY_S)
    end = None if until is None else until // rollup.DAY_S
    if first is not None and end is not None and first >= end:  # no whole day between them
        return None, [(since, until)] if since < until else []  # type: ignore[list-item,operator]
    edges = []
    if since is not None and first is not None and since < first * rollup.DAY_S:
        edges.append((since, first * rollup.DAY_S))
    if until is not None and end is not None and end * rollup.DAY_S < until:
        edges.append((end * rollup.DAY_S, until))
    return (None if first is None else int(first), None if end is None else int(end)), edges


def _rollup_where(table: str, filters: Filters, days: tuple[int | None, int | None]) -> tuple[str, list[Any]]:
    columns = rollup.KEYS[table] + rollup.VALUES[table]
    clauses, args = [], []
    for name, column in _ROLLUP_FILTERS:
        value = getattr(filters, name)
        if value is not None and column in columns:
            clauses.append(f"{column} = ?")
            args.append(value)
    if filters.provider is not None and table == "rollup_prompts":  # pragma: no cover - the plan never asks
        raise AssertionError("rollup_prompts has no provider")
    for op, day in ((">=", days[0]), ("<", days[1])):
        if day is not None:
            clauses.append(f"day {op} ?")
            args.append(day)
    return " AND ".join(clauses) or "1", args


def _group_value(by: str, key: Any) -> Any:
    """A rollup key (the :data:`_GROUP_COLUMNS` of ``by``) as the exact query's group value."""
    if by == "day":
        return time.strftime("%Y-%m-%d", time.gmtime(key[0] * rollup.DAY_S))
    if by == "prompt":
        return None if key[0] == rollup.NO_PROMPT else key[0]
    if by == "prompt-version":
        return None if key[0] == rollup.NO_PROMPT or key[1] == rollup.NO_VERSION else f"{key[0]}@{key[1]}"
    return key[0]


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
