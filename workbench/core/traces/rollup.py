"""Rollups: per-day counters and latency histograms that answer ``TraceStore.stats`` without scanning calls.

Four tables, all keyed by the UTC day (``floor(ts / 86400)``):

* ``rollup_calls`` (day, target, provider, prompt_name, prompt_version, status): calls, spend, priced and
  unpriced calls, input/output/cache-read tokens, finishes and ``length`` finishes, and the calls that reported
  cache numbers with their input tokens (migration 12). Errors are the ``status = 'error'`` rows.
* ``rollup_targets`` (day, target, status), ``rollup_prompts`` (day, prompt_name, prompt_version; no
  status: a status filter with a prompt one takes the exact query) and ``rollup_tags`` (day, tag,
  status): TTFT and latency histograms (``rollup_tags`` also has the
  counters of its calls, so ``stats(by="tag")`` never joins ``call_tags``).

A call without a prompt is stored under prompt ``''`` and version ``-1`` (key columns cannot be NULL).

**Histograms.** Fixed log-scaled buckets: bucket ``i`` (1 … :data:`BUCKETS`) holds values in
``[LOW_MS·R^(i-1), LOW_MS·R^i)`` with ``R = 1.05`` and ``LOW_MS = 0.01`` ms, up to about 25 h; bucket 0
holds smaller values (reported as 0.005 ms), the last one larger ones (reported as its lower edge).
A percentile is computed exactly like the exact path (``statistics.quantiles(method="inclusive")``:
interpolating between two order statistics) but with each order statistic replaced by the geometric
middle of its bucket, so **the relative error is at most √R − 1 ≈ 2.47%** for values between 0.01 ms
and 25 h (the interpolation of two values each within that factor stays within it).

Beside each histogram its calls' smallest and largest TTFT and latency (:data:`EXTREMES`, migration 7):
``stats`` clamps an approximate percentile to them, and reads a small group's calls for exact ones.

Stored, a row's two histograms (TTFT, latency) are one blob, each cut to its occupied buckets
(:func:`bump`); a row of a few calls may still hold them as a list of bucket indexes (:func:`_raw`). In
memory each is a Python int with a 32-bit lane per bucket, so merging histograms is one big-integer
addition (a lane would overflow only past 4.29 billion calls in one bucket of one result).

The writer's commits do not touch the rollups: when it is idle (and before ``stats`` reads them, and
before ``prune``) :func:`roll_pending` adds the calls written since its high-water mark, thousands at a
time, the way the full-text index catches up. Each step aggregates its calls here first, so it costs
four statements (one ``executemany`` upsert a table), one row each per distinct key; counters add in
SQL, histograms through the ``wb_hist_bump`` SQL function.
``prune`` recomputes the days it touched (:func:`recompute_days`), and migration 2 backfills every day
(:func:`rebuild`). Rewriting an existing call id (never done by the writer) would count it twice.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import sqlite3
import struct
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

DAY_S = 86_400
R = 1.05
LOW_MS = 0.01
BUCKETS = 470
"""Regular buckets; with the under- and overflow buckets a metric has ``LANES`` of them."""
RELATIVE_ERROR = math.sqrt(R) - 1
LANES = BUCKETS + 2
_HEAD = struct.Struct("<HH")
_EMPTY = bytes(4)
_RAW = b"\xff\xff"
_RAW_MAX = 32
_LANE_BITS = 32
INV_LN_R = 1 / math.log(R)
LN_LOW = math.log(LOW_MS)
_REPRESENTATIVE: list[float] = [LOW_MS / 2, *(LOW_MS * R ** (i - 0.5) for i in range(1, BUCKETS + 1)),
                                LOW_MS * R ** BUCKETS]

NO_PROMPT = ""
NO_VERSION = -1

FIELDS = ("id", "ts", "provider", "target", "prompt_name", "prompt_version", "status", "finish_reason",
          "input_tokens", "output_tokens", "cache_read_tokens", "cost_usd", "ttft_ms", "latency_ms")
"""The call columns a rollup is made of, in the order :class:`Aggregate` takes them."""
CACHE_COUNTERS = ("cache_n", "cache_input_tokens")
"""The calls that reported cache numbers and their input tokens (migration 12): the cache hit ratio's denominator
(a provider that reports none, such as Ollama, is left out of it)."""
COUNTERS = ("calls", "priced", "spend_usd", "unpriced", "input_n", "input_tokens", "output_n", "output_tokens",
            "cache_read_tokens", "finished", "length", *CACHE_COUNTERS)

# The tables themselves are made by the store's migrations (``schema.py``, "rollups"); a test checks
# that their columns are these keys and values.
KEYS: dict[str, tuple[str, ...]] = {
    "rollup_calls": ("day", "target", "provider", "prompt_name", "prompt_version", "status"),
    "rollup_targets": ("day", "target", "status"),
    "rollup_prompts": ("day", "prompt_name", "prompt_version"),
    "rollup_tags": ("day", "tag", "status"),
}
EXTREMES = ("ttft_min", "ttft_max", "latency_min", "latency_max")
"""The smallest and largest TTFT and latency of a histogram's calls (migration 7): approximate percentiles
are clamped to them, so none lies outside the data."""
VALUES: dict[str, tuple[str, ...]] = {
    "rollup_calls": COUNTERS,
    "rollup_targets": ("provider", "hist", *EXTREMES),
    "rollup_prompts": ("hist", *EXTREMES),
    "rollup_tags": (*COUNTERS[:-len(CACHE_COUNTERS)], "hist", *EXTREMES, *CACHE_COUNTERS),  # in migration order
}


def _upsert(table: str) -> str:
    """Counters add up; a histogram gets its new calls' bucket indexes (a new row keeps them :func:`_raw`);
    the extremes widen."""
    values = VALUES[table]
    columns = KEYS[table] + tuple(values)
    updates = [f"{c} = {c} + excluded.{c}" for c in values if c in COUNTERS]
    if "hist" in values:
        updates.append("hist = wb_hist_bump(hist, excluded.hist)")
    for c in values:
        if c in EXTREMES:  # SQLite's min()/max() of a NULL is NULL: a side without a value gives way
            pick = "min" if c.endswith("_min") else "max"
            updates.append(f"{c} = {pick}(coalesce({c}, excluded.{c}), coalesce(excluded.{c}, {c}))")
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT DO UPDATE SET {', '.join(updates)}")


_UPSERTS = {table: _upsert(table) for table in KEYS}


# -- histograms ---------------------------------------------------------------------------------------

def lane(value: float) -> int:
    """The bucket of a duration in ms."""
    if value < LOW_MS:
        return 0
    index = int((math.log(value) - LN_LOW) * INV_LN_R) + 1  # stats computes this in SQL too
    return index if index <= BUCKETS else BUCKETS + 1


def _packed(lanes: Sequence[int]) -> bytes:
    return bump(None, _RAW + array("H", lanes).tobytes())


def _raw(lanes: Sequence[int]) -> bytes:
    """A histogram as a list of bucket indexes (TTFT's, then ``LANES +`` latency's): a 0xFFFF mark then
    uint16 indexes. A new rollup row of a few calls stores this as is (no SQL function call; the first
    update packs it); more calls are packed at once."""
    packed = _RAW + array("H", lanes).tobytes()
    return packed if len(lanes) <= _RAW_MAX else bump(None, packed)


def bump(stored: bytes | None, lanes: bytes) -> bytes:
    """``wb_hist_bump``, the SQL function the upserts add to a histogram with: ``stored`` plus one count
    for each bucket index in ``lanes`` (a :func:`_raw` histogram: then it works on arrays, no big
    integers), or plus ``lanes`` if that is a packed histogram too (a big batch's)."""
    if lanes[:2] != _RAW:
        if not stored:
            return lanes
        old_ttft, old_latency = decode(stored)
        new_ttft, new_latency = decode(lanes)
        return _segment(old_ttft + new_ttft) + _segment(old_latency + new_latency)
    if stored and stored[:2] == _RAW:  # the row's first calls: pack them with the new ones
        lanes = stored + lanes[2:]
        stored = None
    if stored:
        first, size = _HEAD.unpack_from(stored)
        end = 4 + 4 * size
        first_l, size_l = _HEAD.unpack_from(stored, end)
        ttft, latency = array("I", stored[4:end]), array("I", stored[end + 4:end + 4 + 4 * size_l])
    else:
        first = first_l = 0
        ttft, latency = array("I"), array("I")
    for index in array("H", lanes[2:]):
        if index < LANES:
            first = _bump(first, ttft, index)
        else:
            first_l = _bump(first_l, latency, index - LANES)
    return _HEAD.pack(first, len(ttft)) + ttft.tobytes() + _HEAD.pack(first_l, len(latency)) + latency.tobytes()


def _bump(first: int, counts: array[int], index: int) -> int:
    if not counts:
        counts.append(1)
        return index
    if index < first:
        counts[0:0] = array("I", bytes(4 * (first - index)))
        first = index
    elif index >= first + len(counts):
        counts.frombytes(bytes(4 * (index - first - len(counts) + 1)))
    counts[index - first] += 1
    return first


def _segment(hist: int) -> bytes:
    """One packed histogram from its int: first bucket, number of buckets, a uint32 count each."""
    if not hist:
        return _EMPTY
    first = ((hist & -hist).bit_length() - 1) // _LANE_BITS
    body = hist >> (_LANE_BITS * first)
    size = (body.bit_length() + _LANE_BITS - 1) // _LANE_BITS
    return _HEAD.pack(first, size) + body.to_bytes(size * 4, "little")


def decode(blob: bytes | None) -> tuple[int, int]:
    """A stored histogram as (TTFT, latency) ints with a 32-bit lane per bucket (they add with ``+``)."""
    if not blob:
        return 0, 0
    if blob[:2] == _RAW:
        tally = array("I", bytes(8 * LANES))
        for index in array("H", blob[2:]):
            tally[index] += 1
        dense = tally.tobytes()
        return int.from_bytes(dense[:4 * LANES], "little"), int.from_bytes(dense[4 * LANES:], "little")
    first, size = _HEAD.unpack_from(blob)
    end = 4 + 4 * size
    first_l, size_l = _HEAD.unpack_from(blob, end)
    return (int.from_bytes(blob[4:end], "little") << (_LANE_BITS * first),
            int.from_bytes(blob[end + 4:end + 4 + 4 * size_l], "little") << (_LANE_BITS * first_l))


def counts(hist: int) -> list[int]:
    """Count per bucket of one decoded histogram, bucket 0 first."""
    return array("I", hist.to_bytes(4 * LANES, "little")).tolist()


def quantile(counts: list[int], q: float) -> float | None:
    """The ``q`` quantile the exact path would report (``statistics.quantiles``, inclusive), from buckets."""
    cumulative = list(itertools.accumulate(counts))
    n = cumulative[-1]
    if n == 0:
        return None

    def value(rank: int) -> float:  # the rank-th smallest value (0-based), as its bucket's middle
        return _REPRESENTATIVE[bisect.bisect_right(cumulative, rank)]

    if n == 1:
        return value(0)
    i = round(q * 100)
    j, delta = divmod(i * (n - 1), 100)
    return (value(j) * (100 - delta) + value(j + 1) * delta) / 100


# -- aggregation ---------------------------------------------------------------------------------------

def day_of(ts: float) -> int:
    return int(ts // DAY_S)


@dataclass
class Aggregate:
    """The rollups of some calls, per table and key (``rows`` gives them as table rows)."""

    calls: dict[tuple[Any, ...], list[tuple[Any, ...]]] = field(default_factory=dict)
    targets: dict[tuple[Any, ...], list[Any]] = field(default_factory=dict)
    prompts: dict[tuple[Any, ...], list[int]] = field(default_factory=dict)
    tags: dict[tuple[Any, ...], tuple[list[tuple[Any, ...]], list[int]]] = field(default_factory=dict)
    extremes: dict[tuple[str, tuple[Any, ...]], list[float | None]] = field(default_factory=dict)
    """(histogram table, key) → [TTFT min, TTFT max, latency min, latency max] (:data:`EXTREMES`)."""

    def add(self, calls: Iterable[Sequence[Any]], tags: Iterable[tuple[str, str]] = ()) -> None:
        """Add calls (tuples in :data:`FIELDS` order) and their ``(call_id, tag)`` rows."""
        seen: dict[str, tuple[int, str, tuple[Any, ...], list[int], Any, Any]] = {}
        counters, targets, prompts, widen = self.calls, self.targets, self.prompts, self._widen
        for (call_id, ts, provider, target, prompt_name, prompt_version, status, finish, input_tokens,
             output_tokens, cache_read, cost, ttft, latency) in calls:
            day = int(ts // DAY_S)
            vector = (1, cost is not None, cost or 0.0, cost is None and input_tokens is not None,
                      input_tokens is not None, input_tokens or 0, output_tokens is not None, output_tokens or 0,
                      cache_read or 0, finish is not None, finish == "length", cache_read is not None,
                      input_tokens or 0 if cache_read is not None else 0)
            prompt = NO_PROMPT if prompt_name is None else prompt_name
            version = NO_VERSION if prompt_version is None else prompt_version
            key = (day, target, provider, prompt, version, status)
            group = counters.get(key)
            if group is None:
                counters[key] = [vector]
            else:
                group.append(vector)
            lanes = []
            if ttft is not None:
                lanes.append(lane(ttft))
            if latency is not None:
                lanes.append(LANES + lane(latency))
            if lanes:
                entry = targets.get((day, target, status))
                if entry is None:
                    targets[(day, target, status)] = [provider, *lanes]
                else:
                    entry += lanes
                hist = prompts.get((day, prompt, version))
                if hist is None:
                    prompts[(day, prompt, version)] = lanes.copy()
                else:
                    hist += lanes
                widen(("rollup_targets", (day, target, status)), ttft, latency)
                widen(("rollup_prompts", (day, prompt, version)), ttft, latency)
            seen[call_id] = (day, status, vector, lanes, ttft, latency)
        for call_id, tag in tags:
            info = seen.get(call_id)
            if info is None:
                continue
            day, status, vector, lanes, ttft, latency = info
            tagged = self.tags.get((day, tag, status))
            if tagged is None:
                self.tags[(day, tag, status)] = ([vector], lanes.copy())
            else:
                tagged[0].append(vector)
                tagged[1].extend(lanes)
            if lanes:
                widen(("rollup_tags", (day, tag, status)), ttft, latency)

    def _widen(self, key: tuple[str, tuple[Any, ...]], ttft: float | None, latency: float | None) -> None:
        bounds = self.extremes.get(key)
        if bounds is None:
            self.extremes[key] = [ttft, ttft, latency, latency]
            return
        for i, value in ((0, ttft), (2, latency)):
            if value is not None:
                low, high = bounds[i], bounds[i + 1]
                if low is None or value < low:
                    bounds[i] = value
                if high is None or value > high:
                    bounds[i + 1] = value

    def rows(self, pack: bool = False) -> dict[str, list[tuple[Any, ...]]]:
        """Table → rows (key columns, then value columns as in :data:`VALUES`; ``hist`` in :func:`_raw` form,
        or packed if ``pack``)."""
        raw = _packed if pack else _raw
        none: list[float | None] = [None] * len(EXTREMES)

        def bounds(table: str, key: tuple[Any, ...]) -> list[float | None]:
            return self.extremes.get((table, key)) or none

        def tag_row(key: tuple[Any, ...], vectors: list[tuple[Any, ...]], lanes: list[int]) -> tuple[Any, ...]:
            counts = tuple(map(sum, zip(*vectors, strict=True)))
            at = len(counts) - len(CACHE_COUNTERS)  # the cache counters come after the extremes (migration 12)
            return (*key, *counts[:at], raw(lanes), *bounds("rollup_tags", key), *counts[at:])

        return {
            "rollup_calls": [(*key, *map(sum, zip(*vectors, strict=True))) for key, vectors in self.calls.items()],
            "rollup_targets": [(*key, entry[0], raw(entry[1:]), *bounds("rollup_targets", key))
                               for key, entry in self.targets.items()],
            "rollup_prompts": [(*key, raw(lanes), *bounds("rollup_prompts", key))
                               for key, lanes in self.prompts.items()],
            "rollup_tags": [tag_row(key, vectors, lanes) for key, (vectors, lanes) in self.tags.items()],
        }


def register(conn: sqlite3.Connection) -> None:
    """Give the connection the SQL function the upserts use (SQLite refuses while a statement runs)."""
    conn.create_function("wb_hist_bump", 2, bump, deterministic=True)


def apply(conn: sqlite3.Connection, aggregate: Aggregate, pack: bool = False) -> None:
    """Add an aggregate to the stored rollups (inside the caller's transaction): one upsert per table.
    The connection needs :func:`register` first."""
    for table, rows in aggregate.rows(pack).items():
        if rows:
            conn.executemany(_UPSERTS[table], rows)


def calls_where(conn: sqlite3.Connection, where: str = "1", args: Sequence[Any] = (),
                chunk: int = 50_000) -> Iterator[tuple[list[Any], list[Any]]]:
    """The calls matching ``where`` (over ``calls c``) in :data:`FIELDS` order with their tag rows,
    ``chunk`` calls at a time."""
    cursor = conn.execute(f"SELECT {', '.join(f'c.{name}' for name in FIELDS)} FROM calls c WHERE {where}", args)
    while True:
        calls = cursor.fetchmany(chunk)
        if not calls:
            return
        tags = conn.execute("SELECT call_id, tag FROM call_tags WHERE call_id IN (SELECT value FROM json_each(?))",
                            (json.dumps([c[0] for c in calls]),)).fetchall()
        yield calls, tags


def rebuild(conn: sqlite3.Connection) -> None:
    """Recompute every rollup from the calls (the backfills of migrations 2, 7 and 12). Tables older than the
    cache counters (migrations 2 and 7 on their way up) are left empty: migration 12 recomputes them all."""
    if COUNTERS[-1] not in {row[1] for row in conn.execute("PRAGMA table_info(rollup_calls)")}:
        return
    for table in KEYS:
        conn.execute(f"DELETE FROM {table}")
    _reaggregate(conn, "1", ())


def recompute_days(conn: sqlite3.Connection, first: int, last: int) -> None:
    """Recompute the rollups of days ``first`` … ``last`` from the calls left (inside the caller's transaction)."""
    for table in KEYS:
        conn.execute(f"DELETE FROM {table} WHERE day >= ? AND day <= ?", (first, last))
    _reaggregate(conn, "c.ts >= ? AND c.ts < ?", (first * DAY_S, (last + 1) * DAY_S))


def _reaggregate(conn: sqlite3.Connection, where: str, args: Sequence[Any]) -> None:
    register(conn)
    for calls, tags in calls_where(conn, where, args):
        aggregate = Aggregate()
        aggregate.add(calls, tags)
        apply(conn, aggregate, pack=True)


def roll_pending(conn: sqlite3.Connection, batch: int = 5_000) -> int:
    """Add the calls written since the last run to the rollups, in the order they were written (their
    payloads' rowids: a call's id is its start time, so a long call is written after later-started ones),
    ``batch`` calls a transaction, with the high-water mark in ``rollup_state``. Safe from several
    connections at once (each step holds the write lock). Returns how many calls were added."""
    register(conn)
    done = 0
    while True:
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            added = roll_step(conn, batch)
        if not added:
            return done
        done += added


def roll_step(conn: sqlite3.Connection, batch: int) -> int:
    """One step of :func:`roll_pending` inside the caller's write transaction (after :func:`register`)."""
    mark = conn.execute("SELECT rolled_rowid FROM rollup_state").fetchone()[0]
    rows = conn.execute(f"SELECT p.rowid, {', '.join(f'c.{name}' for name in FIELDS)} FROM payloads p "
                        "JOIN calls c ON c.id = p.call_id WHERE p.rowid > ? ORDER BY p.rowid LIMIT ?",
                        (mark, batch)).fetchall()
    if not rows:
        return 0
    calls = [row[1:] for row in rows]
    tags = conn.execute("SELECT call_id, tag FROM call_tags WHERE call_id IN (SELECT value FROM json_each(?))",
                        (json.dumps([c[0] for c in calls]),)).fetchall()
    aggregate = Aggregate()
    aggregate.add(calls, tags)
    apply(conn, aggregate, pack=len(calls) > _RAW_MAX)
    conn.execute("UPDATE rollup_state SET rolled_rowid = ?", (rows[-1][0],))
    return len(rows)
