"""The cache hit ratio (cache reads ÷ input tokens of the calls that reported cache numbers) per model, prompt and
prompt version, the same from the rollups and from the calls, and over every call in the TUI's Traces totals."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_traces_stats import START, call
from workbench.core.call_record import CallRecord
from workbench.core.events import Usage
from workbench.core.traces.context import CallContext
from workbench.core.traces.filters import Filters
from workbench.core.traces.store import TraceStore
from workbench.core.traces.writer import TraceWriter

DAY = 86_400


def cached(target: str, at: float, input_tokens: int, read: int | None) -> CallRecord:
    record = call(target, 100.0, 200.0, at)
    record.usage = Usage(input_tokens=input_tokens, output_tokens=10, cache_read_tokens=read)
    return record


@pytest.fixture
def store(tmp_path: Path) -> TraceStore:
    path = tmp_path / "c.db"
    writer = TraceWriter(path)
    # three whole days apart (the rollups answer them) and a call at the edge of the range
    for day, (read_a, read_b) in enumerate([(0, None), (800, None), (900, None)]):
        at = START + day * DAY + 60
        writer.write(cached("anthropic/a", at, 1_000, read_a), CallContext(prompt_name="p", prompt_version=1))
        writer.write(cached("ollama/b", at, 500, read_b), CallContext(prompt_name="p", prompt_version=2))
    writer.close()
    return TraceStore(path)


def test_the_hit_ratio_per_model_prompt_and_version_from_rollups_and_calls(store: TraceStore) -> None:
    # Ollama reports no cache numbers: its calls are left out of the ratio, which is unknown where none reported
    expected = {"model": {"anthropic/a": 1_700 / 3_000, "ollama/b": None},
                "prompt": {"p": 1_700 / 3_000},
                "prompt-version": {"p@1": 1_700 / 3_000, "p@2": None}}
    since = Filters(since=START - DAY, until=START + 3 * DAY)  # whole days: the rollups, and edges from the calls
    for by, ratios in expected.items():
        for stats in (store.stats(by), store.stats(by, since), store.exact_stats(by, Filters())):
            rows = {row[by]: row for row in stats}
            assert {key: row["cache_hit_ratio"] for key, row in rows.items()} == pytest.approx(ratios), by
            assert sum(row["cache_read_tokens"] or 0 for row in rows.values()) == 1_700
            assert {row["cache_input_tokens"] for row in rows.values()} <= {3_000, None}


def test_the_traces_screen_totals_show_the_ratio(store: TraceStore) -> None:
    from workbench.ui.screens.traces import read_totals, totals_text

    totals = read_totals(store)  # the Ollama calls, which report no cache numbers, are left out as in stats
    assert totals["cache_hit_ratio"] == pytest.approx(1_700 / 3_000)
    assert "cache hit 57%" in totals_text(totals, searching=False).plain
    empty = {"calls": 0, "spend_usd": None, "unpriced_calls": 0, "ttft_p50_ms": None, "ttft_p95_ms": None,
             "cache_hit_ratio": None}
    assert "cache hit" not in totals_text(empty, searching=False).plain


def test_by_tag_and_after_the_migration_the_ratio_leaves_out_calls_without_cache_numbers(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    writer = TraceWriter(path)
    for day in range(3):
        at = START + day * DAY + 60
        writer.write(cached("openai/a", at, 1_000, 250), CallContext(tags=("mixed", "cached")))
        writer.write(cached("ollama/b", at, 3_000, None), CallContext(tags=("mixed", "local")))
    writer.close()
    store = TraceStore(path)
    since = Filters(since=START - DAY, until=START + 3 * DAY)
    for stats in (store.stats("tag"), store.stats("tag", since), store.exact_stats("tag", Filters())):
        rows = {row["tag"]: row for row in stats}
        assert {tag: row["cache_hit_ratio"] for tag, row in rows.items()} == {"mixed": 0.25, "cached": 0.25,
                                                                              "local": None}
        assert rows["local"]["cache_read_tokens"] is None and rows["mixed"]["cache_input_tokens"] == 3_000
    # a store rolled up before the cache counters existed: the migration recomputes them from the calls
    store.conn.execute("UPDATE rollup_calls SET cache_n = 0, cache_input_tokens = 0")
    store.conn.execute("PRAGMA user_version = 11")
    store.conn.commit()
    store.conn.execute("ALTER TABLE rollup_calls DROP COLUMN cache_input_tokens")
    store.conn.execute("ALTER TABLE rollup_calls DROP COLUMN cache_n")
    store.conn.execute("ALTER TABLE rollup_tags DROP COLUMN cache_input_tokens")
    store.conn.execute("ALTER TABLE rollup_tags DROP COLUMN cache_n")
    store.conn.commit()
    store.conn.close()
    rows = {row["model"]: row for row in TraceStore(path).stats("model")}
    assert rows["openai/a"]["cache_hit_ratio"] == 0.25 and rows["ollama/b"]["cache_hit_ratio"] is None
