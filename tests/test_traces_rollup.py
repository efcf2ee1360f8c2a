"""Rollups: stats from them equal the exact aggregates (counts and sums exactly, percentiles within the
histograms' bound) on random calls, through prune, with whole-day and sub-day time ranges; migration 2
backfills a version-1 store."""

from __future__ import annotations

import random
import sqlite3
from array import array
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.test_traces_schema import insert_at_version
from workbench.core.call_record import CallRecord
from workbench.core.errors import ProviderHTTPError
from workbench.core.events import FinishReason, Usage
from workbench.core.request import ChatRequest
from workbench.core.traces import columns, rollup, schema
from workbench.core.traces.context import CallContext
from workbench.core.traces.filters import Filters
from workbench.core.traces.ids import new_id
from workbench.core.traces.redact import Redactor
from workbench.core.traces.store import TraceStore
from workbench.core.traces.writer import TraceWriter, rows_for

DAY = 86_400
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
BYS = ("day", "model", "provider", "prompt", "prompt-version", "tag", "status")


def random_calls(n: int, seed: int, days: int = 5) -> list[tuple[CallRecord, CallContext]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        target = rng.choice(["openai/a", "openai/b", "anthropic/c", "local/d", "solo"])
        record = CallRecord(target, ChatRequest.from_prompt(f"hello {rng.randint(0, 9)}"))
        record.started_at = START + rng.uniform(0, days * DAY)
        record.timing.started_ns = record.timing.sent_ns = 0
        ttft = rng.choice([0.0, 0.004, rng.lognormvariate(5, 1.2), rng.lognormvariate(6, 0.5)])
        if rng.random() < 0.1:
            record.error = ProviderHTTPError(target, 503, None, "down")
            record.finish = FinishReason.ERROR if rng.random() < 0.8 else None
            record.timing.end_ns = int(rng.uniform(1, 5000) * 1e6)
        else:
            if rng.random() < 0.9:
                record.usage = Usage(input_tokens=rng.randint(1, 5000), output_tokens=rng.randint(0, 900),
                                     cache_read_tokens=rng.choice([0, 0, rng.randint(0, 500)]))
            record.finish = rng.choice([FinishReason.STOP, FinishReason.STOP, FinishReason.LENGTH, None])
            if rng.random() < 0.95:
                record.timing.first_content_ns = int(ttft * 1e6)
            record.timing.end_ns = int((ttft + rng.lognormvariate(7, 1)) * 1e6)
            record.cost_usd = None if rng.random() < 0.3 else Decimal(f"{rng.uniform(0, 0.05):.6f}")
        prompt = rng.choice([None, "p1", "p2", "p3"])
        context = CallContext(prompt_name=prompt, prompt_version=None if prompt is None else rng.choice([1, 2, None]),
                              tags=tuple(rng.sample(["x", "y", "z"], rng.randint(0, 2))),
                              session_id=rng.choice([None, "s1"]))
        out.append((record, context))
    return out


def write(path: Path, calls: list[tuple[CallRecord, CallContext]]) -> TraceStore:
    writer = TraceWriter(path, max_batch=37)
    for record, context in calls:
        writer.write(record, context)
    writer.close()
    return TraceStore(path)


def assert_same(rolled: list[dict[str, Any]], exact: list[dict[str, Any]], by: str) -> None:
    assert [r[by] for r in rolled] == [r[by] for r in exact]
    for got, want in zip(rolled, exact, strict=True):
        for key in ("calls", "unpriced_calls", "input_tokens", "output_tokens"):
            assert got[key] == want[key], (by, got[by], key)
        for key in ("spend_usd", "cache_hit_ratio", "length_share", "error_share"):
            assert (got[key] is None) == (want[key] is None), (by, got[by], key)
            if want[key] is not None:
                assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), (by, got[by], key)
        for key in ("ttft_p50_ms", "ttft_p95_ms", "latency_p50_ms", "latency_p95_ms"):
            assert (got[key] is None) == (want[key] is None), (by, got[by], key)
            if want[key] is not None:
                assert abs(got[key] - want[key]) <= rollup.RELATIVE_ERROR * want[key] + rollup.LOW_MS, (
                    by, got[by], key, got[key], want[key])


FILTERS = [
    Filters(), Filters(model="openai/a"), Filters(provider="openai"), Filters(status="error"),
    Filters(prompt="p1"), Filters(prompt="p2", prompt_version=2), Filters(tag="x"), Filters(tag="y", status="ok"),
    Filters(since=START + DAY, until=START + 3 * DAY),  # whole days
    Filters(since=START + 0.6 * DAY), Filters(until=START + 2.3 * DAY),  # parts of days
    Filters(since=START + 1.25 * DAY, until=START + 3.5 * DAY, model="openai/b"),
    Filters(since=START + 2.1 * DAY, until=START + 2.2 * DAY, tag="z"),  # within one day
    Filters(since=START + 2.2 * DAY, until=START + 2.1 * DAY),  # empty
    Filters(model="openai/a", prompt="p1"), Filters(session="s1"), Filters(min_cost=0.01),  # exact query
]


def test_rollup_stats_equal_exact_stats_through_prune(tmp_path: Path) -> None:
    store = write(tmp_path / "r.db", random_calls(3000, seed=1))
    for filters in FILTERS:
        for by in BYS:
            assert_same(store.stats(by, filters), store.exact_stats(by, filters), by)
    assert sum(r["calls"] for r in store.stats("model")) == 3000
    pruned = store.prune(START + 1.5 * DAY)
    assert 0 < pruned < 3000
    assert store.conn.execute("SELECT min(day) FROM rollup_calls").fetchone()[0] == rollup.day_of(START + 1.5 * DAY)
    for filters in FILTERS[:9]:
        for by in BYS:
            assert_same(store.stats(by, filters), store.exact_stats(by, filters), by)
    assert sum(r["calls"] for r in store.stats("day")) == 3000 - pruned


def test_writes_after_the_backfill_add_to_it(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    write(path, random_calls(500, seed=2, days=1)).close()
    conn = sqlite3.connect(path)
    with conn:  # a backfill that reads in chunks, with its cursor open while it writes
        rollup.register(conn)
        for table in rollup.KEYS:
            conn.execute(f"DELETE FROM {table}")
        for calls, tags in rollup.calls_where(conn, chunk=150):  # rows of many calls (packed) and of few (raw)
            aggregate = rollup.Aggregate()
            aggregate.add(calls, tags)
            rollup.apply(conn, aggregate)
    conn.close()
    store = write(path, random_calls(700, seed=3))  # same days, same keys: the upserts add
    for by in BYS:
        assert_same(store.stats(by), store.exact_stats(by), by)


def test_migration_2_backfills_a_version_1_store(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    with conn:
        schema.apply(conn, schema.MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
    at_v1 = [row[1] for row in conn.execute("PRAGMA table_info(calls)")]
    insert_call = f"INSERT INTO calls ({', '.join(at_v1)}) VALUES ({', '.join(':' + name for name in at_v1)})"
    redactor = Redactor.build()
    for record, context in random_calls(800, seed=4):
        call, payload, tags = rows_for(record, context, redactor, new_id(record.started_at))  # ids sort by time
        with conn:
            conn.execute(insert_call, call)
            conn.execute(insert_at_version(conn, "payloads"), payload)
            conn.executemany(columns.insert("call_tags"), tags)
    conn.close()
    store = TraceStore(path)
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert store.conn.execute("SELECT sum(calls) FROM rollup_calls").fetchone()[0] == 800
    for filters in FILTERS[:8]:
        for by in BYS:
            assert_same(store.stats(by, filters), store.exact_stats(by, filters), by)


def test_histogram_quantiles_stay_within_the_bound() -> None:
    rng = random.Random(5)
    for _ in range(200):
        values = sorted(rng.lognormvariate(rng.uniform(-3, 14), rng.uniform(0.1, 3))
                        for _ in range(rng.randint(1, 300)))
        unpacked = b"\xff\xff" + array("H", (rollup.lane(v) for v in values)).tobytes()  # a new row's form
        packed = rollup.bump(None, unpacked)
        hist = rollup.decode(unpacked)
        assert hist == rollup.decode(packed) == rollup.decode(rollup.bump(rollup.bump(None, unpacked[:4]),
                                                                          b"\xff\xff" + unpacked[4:]))
        ttft, latency = rollup.counts(hist[0]), rollup.counts(hist[1])
        assert sum(ttft) == len(values) and sum(latency) == 0
        for q in (0.5, 0.95):
            exact = values[0] if len(values) == 1 else __import__("statistics").quantiles(
                values, n=100, method="inclusive")[round(q * 100) - 1]
            estimate = rollup.quantile(ttft, q)
            assert estimate is not None
            assert abs(estimate - exact) <= rollup.RELATIVE_ERROR * exact * (1 + 1e-9) + rollup.LOW_MS
    assert rollup.RELATIVE_ERROR < 0.025
    assert rollup.lane(0.0) == 0 and rollup.lane(1e12) == rollup.BUCKETS + 1


def test_histograms_add_in_every_stored_form() -> None:
    rng = random.Random(7)
    for _ in range(100):
        lists = [[rng.randrange(2 * rollup.LANES) for _ in range(rng.randint(1, 80))] for _ in range(3)]
        unpacked = [b"\xff\xff" + array("H", lanes).tobytes() for lanes in lists]
        packed = [rollup.bump(None, blob) for blob in unpacked]
        total = [sum(x) for x in zip(*(rollup.decode(blob) for blob in unpacked), strict=True)]
        for first in (unpacked[0], packed[0]):
            for second in (unpacked[1], packed[1]):
                for third in (unpacked[2], packed[2]):
                    assert list(rollup.decode(rollup.bump(rollup.bump(first, second), third))) == total


def test_a_batch_costs_a_few_statements(tmp_path: Path) -> None:
    store = write(tmp_path / "s.db", random_calls(10, seed=6))
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    aggregate = rollup.Aggregate()
    for calls, tags in rollup.calls_where(store.conn):
        aggregate.add(calls, tags)
    rollup.register(store.conn)
    statements.clear()
    rollup.apply(store.conn, aggregate)
    store.conn.rollback()
    upserts = {s.split(" (")[0] for s in statements} - {"BEGIN ", "ROLLBACK"}  # one a table, however many rows
    assert upserts == {f"INSERT INTO {table}" for table in rollup.KEYS}


def test_rollups_catch_up_in_write_order_without_counting_a_call_twice(tmp_path: Path) -> None:
    """Commits leave the rollups alone; stats (and prune) catch them up first, in the order calls were
    written, so a long call written after later-started ones (a smaller id) is counted exactly once."""
    path = tmp_path / "c.db"
    calls = random_calls(400, seed=8)
    writer = TraceWriter(path, max_batch=50)
    for record, context in calls[:300]:
        writer.write(record, context)
    writer.flush()
    store = TraceStore(path)
    assert sum(r["calls"] for r in store.stats("model")) == 300  # rolled up by stats, writer still busy
    late = sorted(calls[300:], key=lambda c: -(c[0].started_at or 0))  # newest first: ids go backwards
    for record, context in late:
        writer.write(record, context)
    writer.close()  # the writer rolls up what it wrote before it stops
    assert store.conn.execute("SELECT rolled_rowid FROM rollup_state").fetchone()[0] == 400
    for by in BYS:
        assert_same(store.stats(by), store.exact_stats(by), by)
    extra = TraceWriter(path)
    extra.write(*random_calls(1, seed=9)[0])
    extra.flush()
    pruned = store.prune(START + 2 * DAY)  # rolls the pending call up before recomputing pruned days
    extra.close()
    assert sum(r["calls"] for r in store.stats("day")) == 401 - pruned
    for by in BYS:
        assert_same(store.stats(by), store.exact_stats(by), by)
