"""``traces stats``: spend, calls and latency percentiles per group, from the rollups when possible.

Whole UTC days come from the daily rollups (:mod:`workbench.core.traces.rollup`); the partial days at
either end of a time range, and filters no rollup is keyed by, come from the calls themselves.

Percentiles are exact (from the group's calls) for a group of at most :data:`EXACT_UP_TO` calls, and
whatever the size when the exact query answers. A larger group's come from the rollups' histograms
(within their relative error), clamped to the group's smallest and largest values, and the row says so:
``percentiles_approximate``.
"""

from __future__ import annotations

import calendar
import sqlite3
import statistics
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.traces import rollup
from workbench.core.traces.filters import Filters


def stats(conn: sqlite3.Connection, by: str, filters: Filters) -> list[dict[str, Any]]:
    """Calls, spend, p50/p95 TTFT and latency, cache hit ratio and share of ``length`` finishes per group.

    Answered from the rollups (see :mod:`rollup`) whenever the filters are ones a rollup is keyed by; the
    parts of ``since``/``until`` that are not whole UTC days come from the calls themselves. There a
    group's percentiles are exact up to :data:`EXACT_UP_TO` calls, else approximate (within the
    histograms' relative error, clamped to the group's extremes; ``percentiles_approximate`` is true).
    Other filters (cost, latency, session, eval run, or mixes no rollup is keyed by) take the exact query
    over the calls. The caller has caught the rollups up (:func:`rollup.roll_pending`; ``TraceStore.stats``
    does)."""
    if by not in _GROUPS:
        raise ConfigError(f"cannot group by '{by}'", f"use one of: {', '.join(_GROUPS)}")
    plan = _rollup_plan(by, filters)
    if plan is None:
        return exact_stats(conn, by, filters)
    return _rollup_stats(conn, by, filters, *plan)


def exact_stats(conn: sqlite3.Connection, by: str, filters: Filters) -> list[dict[str, Any]]:
    """:meth:`stats` computed from every matching call (exact percentiles; slow on big stores)."""
    key = _GROUPS.get(by)
    if key is None:
        raise ConfigError(f"cannot group by '{by}'", f"use one of: {', '.join(_GROUPS)}")
    where, args = filters.where()
    source = "calls c" if by != "tag" else "calls c JOIN call_tags t ON t.call_id = c.id"
    rows = conn.execute(
        f"SELECT {key} AS grp, count(*) AS calls, sum(c.cost_usd) AS spend_usd, "
        f"sum(c.cost_usd IS NULL AND c.input_tokens IS NOT NULL) AS unpriced, "
        f"sum(c.cache_read_tokens) AS cache_read, sum(c.input_tokens) AS input_tokens, "
        f"count(c.cache_read_tokens) AS cache_n, "
        f"total(CASE WHEN c.cache_read_tokens IS NOT NULL THEN c.input_tokens END) AS cache_input, "
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
            **cache_figures(row["cache_n"], row["cache_read"], int(row["cache_input"])),
            "length_share": row["length_share"], "error_share": row["error_share"],
            "ttft_p50_ms": exact_quantile(ttfts, 0.5), "ttft_p95_ms": exact_quantile(ttfts, 0.95),
            "latency_p50_ms": exact_quantile(latencies, 0.5), "latency_p95_ms": exact_quantile(latencies, 0.95),
            "percentiles_approximate": False,
        })
    return out


def cache_figures(reported: int, read: int | None, inputs: int) -> dict[str, Any]:
    """A group's cache reads and hit ratio, over the ``reported`` calls that gave cache numbers (their ``inputs``
    input tokens): both ``None`` when none did (a provider that reports none, such as Ollama, is not a 0% hit)."""
    if not reported:
        return {"cache_read_tokens": None, "cache_input_tokens": None, "cache_hit_ratio": None}
    return {"cache_read_tokens": read or 0, "cache_input_tokens": inputs,
            "cache_hit_ratio": (read or 0) / inputs if inputs else None}


EXACT_UP_TO = 1_000
"""A group of at most this many calls gets exact percentiles from its calls, even when the rollups
answer the rest (reading them costs about a millisecond)."""


def _rollup_stats(conn: sqlite3.Connection, by: str, filters: Filters, counter_table: str,
                  hist_table: str) -> list[dict[str, Any]]:
    days, edges = _split_days(filters.since, filters.until)
    cursor = conn.cursor()
    cursor.row_factory = None
    columns = _GROUP_COLUMNS[by]
    width = len(columns)
    counters: dict[tuple[Any, ...], list[Any]] = {}  # rollup key → 11 counters and the errors
    hists: dict[tuple[Any, ...], list[Any]] = {}  # rollup key → [TTFT histogram, latency histogram, *extremes]

    def add_counters(rows: Iterator[tuple[Any, ...]]) -> None:
        for row in rows:
            key = row[:width]
            entry = counters.get(key)
            if entry is None:
                counters[key] = list(row[width:])
            else:
                for i, value in enumerate(row[width:]):
                    entry[i] += value

    def hist(key: tuple[Any, ...]) -> list[Any]:
        entry = hists.get(key)
        if entry is None:
            entry = hists[key] = [0, 0, None, None, None, None]
        return entry

    sums = ", ".join(f"sum({c})" for c in rollup.COUNTERS)
    if days is not None:
        where, args = _rollup_where(counter_table, filters, days)
        add_counters(cursor.execute(
            f"SELECT {', '.join(columns)}, {sums}, sum(CASE WHEN status = 'error' THEN calls ELSE 0 END) "
            f"FROM {counter_table} WHERE {where} GROUP BY {', '.join(columns)}", args))
        where, args = _rollup_where(hist_table, filters, days)
        decode = rollup.decode
        for row in cursor.execute(f"SELECT {', '.join(columns)}, hist, {', '.join(rollup.EXTREMES)} "
                                  f"FROM {hist_table} WHERE {where}", args):
            ttft, latency = decode(row[width])
            entry = hist(row[:width])
            entry[0] += ttft
            entry[1] += latency
            _widen(entry, row[width + 1:])
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
                    f"SELECT {group}, {lane}, count(*), min({column}), max({column}) FROM {source} "
                    f"WHERE {where} AND {column} IS NOT NULL GROUP BY {group}, {width + 1}",
                    [rollup.LOW_MS, rollup.LN_LOW, rollup.INV_LN_R, rollup.BUCKETS + 1, *args]):
                entry = hist(row[:width])
                entry[metric] += row[width + 1] << (32 * row[width])
                _widen(entry, (row[width + 2], row[width + 3]) if metric == 0 else (None, None, *row[width + 2:]))
    groups: dict[Any, list[Any]] = {}  # the exact query's group value → counters and errors
    group_hists: dict[Any, list[Any]] = {}  # ... → histograms and extremes
    for key, values in counters.items():
        value = _group_value(by, key)
        merged = groups.get(value)
        if merged is None:
            groups[value] = list(values)
            continue
        for i, number in enumerate(values):
            merged[i] += number
    for key, entry in hists.items():  # (a key may have a histogram but no counter row: by tag)
        value = _group_value(by, key)
        if value not in groups:
            continue
        merged = group_hists.get(value)
        if merged is None:
            group_hists[value] = list(entry)
            continue
        merged[0] += entry[0]
        merged[1] += entry[1]
        _widen(merged, entry[2:])
    out = []
    for value in sorted(groups, key=lambda v: (v is not None, v)):
        result = groups[value]
        c = dict(zip(rollup.COUNTERS, result, strict=False))
        if not c["calls"]:
            continue
        row = {
            by: value, "calls": c["calls"], "spend_usd": c["spend_usd"] if c["priced"] else None,
            "unpriced_calls": c["unpriced"], "input_tokens": c["input_tokens"] if c["input_n"] else None,
            "output_tokens": c["output_tokens"] if c["output_n"] else None,
            **cache_figures(c["cache_n"], c["cache_read_tokens"], c["cache_input_tokens"]),
            "length_share": c["length"] / c["finished"] if c["finished"] else None,
            "error_share": result[len(rollup.COUNTERS)] / c["calls"],
        }
        if c["calls"] <= EXACT_UP_TO:
            ttfts, latencies = _group_values(conn, by, value, filters)
            row.update({"ttft_p50_ms": exact_quantile(ttfts, 0.5), "ttft_p95_ms": exact_quantile(ttfts, 0.95),
                        "latency_p50_ms": exact_quantile(latencies, 0.5),
                        "latency_p95_ms": exact_quantile(latencies, 0.95),
                        "percentiles_approximate": False})
        else:
            ttft, latency, *extremes = group_hists.get(value) or [0, 0, None, None, None, None]
            for name, counted, (low, high) in (("ttft", ttft, extremes[:2]), ("latency", latency, extremes[2:])):
                buckets = rollup.counts(counted)
                for q in (50, 95):
                    row[f"{name}_p{q}_ms"] = _clamp(rollup.quantile(buckets, q / 100), low, high)
            row["percentiles_approximate"] = True
        out.append(row)
    return out


def _widen(entry: list[Any], extremes: Any) -> None:
    """Widen ``entry``'s extremes (from index 2: TTFT min, max, latency min, max) by ``extremes`` (None: unknown)."""
    for i, value in enumerate(extremes):
        if value is None:
            continue
        current = entry[2 + i]
        if current is None or (value < current if i % 2 == 0 else value > current):
            entry[2 + i] = value


def _clamp(value: float | None, low: float | None, high: float | None) -> float | None:
    """An approximate percentile kept within the values observed (never below the smallest, above the largest)."""
    if value is None:
        return None
    if high is not None and value > high:
        value = high
    if low is not None and value < low:
        value = low
    return value


def _group_values(conn: sqlite3.Connection, by: str, value: Any, filters: Filters) -> tuple[list[float], list[float]]:
    """The TTFTs and latencies (each sorted) of one group's calls: what the exact query would read for it,
    through an index where one serves the group."""
    extra, extra_args = "1", []
    if by == "day":
        start = calendar.timegm(time.strptime(value, "%Y-%m-%d"))
        since = start if filters.since is None else max(filters.since, start)
        until = start + rollup.DAY_S if filters.until is None else min(filters.until, start + rollup.DAY_S)
        filters = replace(filters, since=since, until=until)
    elif by == "model":
        extra, extra_args = "c.target = ?", [value]
    elif by == "provider":  # the targets of a provider are one range of the target index
        extra, extra_args = ("c.provider = ? AND (c.target = ? OR (c.target >= ? AND c.target < ?))",
                             [value, value, f"{value}/", f"{value}0"])
    elif by == "prompt":
        extra, extra_args = ("c.prompt_name IS NULL", []) if value is None else ("c.prompt_name = ?", [value])
    elif by == "prompt-version":
        if value is None:
            extra = "(c.prompt_name IS NULL OR c.prompt_version IS NULL)"
        else:
            name, _, number = value.rpartition("@")
            extra, extra_args = "c.prompt_name = ? AND c.prompt_version = ?", [name, int(number)]
    elif by == "tag":
        extra, extra_args = "c.id IN (SELECT call_id FROM call_tags WHERE tag = ?)", [value]
    elif by == "status":  # a literal: the partial index of errors serves it
        extra = "c.status = 'error'" if value == "error" else "c.status = ?"
        extra_args = [] if value == "error" else [value]
    where, args = replace(filters, tag=None).where()
    if filters.tag is not None:  # looked up per call (the group's calls drive, not the tag's)
        extra += " AND EXISTS (SELECT 1 FROM call_tags t WHERE t.call_id = c.id AND t.tag = ?)"
        extra_args.append(filters.tag)
    rows = conn.execute(f"SELECT c.ttft_ms, c.latency_ms FROM calls c WHERE {where} AND {extra}",
                        [*args, *extra_args]).fetchall()
    return (sorted(r[0] for r in rows if r[0] is not None), sorted(r[1] for r in rows if r[1] is not None))


COLUMN_GROUPS = {
    "model": "c.target",
    "provider": "c.provider",
    "prompt": "c.prompt_name",
    "prompt-version": "c.prompt_name || '@' || c.prompt_version",
    "tag": "t.tag",
    "status": "c.status",
}
"""``--by`` keys grouped by a column (or two) of ``calls`` (``c``) or ``call_tags`` (``t``), in any SQL dialect."""
_GROUPS = {"day": "date(CAST(c.ts AS INTEGER), 'unixepoch')", **COLUMN_GROUPS}


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
    "coalesce(sum(c.finish_reason = 'length'), 0), count(c.cache_read_tokens), "
    "coalesce(sum(CASE WHEN c.cache_read_tokens IS NOT NULL THEN c.input_tokens END), 0), sum(c.status = 'error')")
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



def _floats(joined: str | None) -> list[float]:
    return sorted(float(v) for v in joined.split(",")) if joined else []


def exact_quantile(values: list[float], q: float) -> float | None:
    """The ``q`` percentile (a whole one: 0.5, 0.95, 0.99) of ``values`` as every exact figure reports it (``traces
    stats``, ``workbench load``): ``statistics.quantiles``, inclusive; the value itself for one value."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]
