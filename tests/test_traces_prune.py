"""Prune never damages the search index: payload rowids are never reused, so calls written after a prune are
searchable and counted, the next prune works, and the same holds while a writer writes concurrently."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from tests.test_traces import synthetic
from tests.test_traces_schema import insert_at_version, store_at
from workbench.core.traces import rollup, schema
from workbench.core.traces.context import CallContext
from workbench.core.traces.redact import Redactor
from workbench.core.traces.store import TraceStore, index_pending
from workbench.core.traces.writer import TraceWriter, rows_for

FUTURE = 32_503_680_000.0  # 3000-01-01: prune everything


def assert_whole(path: Path) -> None:
    """SQLite's own checks: the file, the search index, and (once caught up) the index against the payloads."""
    conn = sqlite3.connect(path, isolation_level=None)  # (the index catch-up opens its own transactions)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.execute("INSERT INTO payloads_fts (payloads_fts) VALUES ('integrity-check')")  # raises when damaged
    index_pending(conn)
    conn.execute("INSERT INTO payloads_fts (payloads_fts, rank) VALUES ('integrity-check', 1)")
    conn.close()


def write(path: Path, count: int, word: str, start: float) -> list[str]:
    records = synthetic(count, start)
    for record in records:
        record.text_parts = [f"{word} reply"]
    writer = TraceWriter(path)
    ids = [writer.write(record, CallContext(tags=(word,))) for record in records]
    writer.close()
    return ids


def test_prune_all_then_write_search_and_prune_again(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    start = time.time() - 10_000
    for round_, word in enumerate(("apricot", "banana", "cherry", "damson")):
        ids = write(path, 5 + round_, word, start + 100 * round_)
        store = TraceStore(path)
        assert sorted(r["id"] for r in store.search(word)) == sorted(ids), word  # every new call is searchable
        assert sum(r["calls"] for r in store.stats("model")) == len(ids)  # and counted by the rollups
        assert_whole(path)
        assert store.prune(FUTURE) == len(ids)
        assert store.search(word) == [] and store.stats("model") == []
        store.close()
        assert_whole(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'payloads'").fetchone()[0] == 5 + 6 + 7 + 8


def test_prune_while_a_writer_writes(tmp_path: Path) -> None:
    """Prunes from another connection while the writer commits (and indexes, and rolls up) its backlog, and
    while another connection searches (it catches the index up too)."""
    path = tmp_path / "c.db"
    writer = TraceWriter(path, max_batch=20)
    store, searcher = TraceStore(path), TraceStore(path)
    start = time.time() - 10_000
    stop = threading.Event()
    errors: list[BaseException] = []

    def search() -> None:
        while not stop.is_set():
            try:
                searcher.search("question")
            except BaseException as exc:  # raised again below
                errors.append(exc)
                return

    thread = threading.Thread(target=search)
    thread.start()
    written = 0
    try:
        for round_ in range(8):
            for record in synthetic(150, start + 1000 * round_):
                writer.write(record)
                written += 1
            writer.wait_for_backlog(100)  # some committed, the rest still to come while prune runs
            store.prune(start + 1000 * round_ + 75 if round_ % 2 else FUTURE)  # everything, or half a round
    finally:
        stop.set()
        thread.join()
    writer.close()
    assert errors == []
    assert_whole(path)
    left = store.conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    assert 0 < left < written
    assert len(store.search("question", limit=10_000)) == left  # every call left is searchable
    assert sum(r["calls"] for r in store.stats("day")) == left
    assert ({r["model"]: r["calls"] for r in store.stats("model")}
            == {r["model"]: r["calls"] for r in store.exact_stats("model")})
    assert store.prune(FUTURE) == left
    assert_whole(path)


def test_a_store_whose_rowids_were_reused_is_made_whole_on_upgrade(tmp_path: Path) -> None:
    """A store of an earlier version pruned whole, then written to: its new payloads took rowids below the
    index's and the rollups' high-water marks (never searchable, never counted). Opening it upgrades it: the
    index is rebuilt, the rollups recomputed, and rowids continue past the marks."""
    path = tmp_path / "old.db"
    conn = store_at(path, 5)
    have = [row[1] for row in conn.execute("PRAGMA table_info(calls)")]
    insert_call = f"INSERT INTO calls ({', '.join(have)}) VALUES ({', '.join(':' + name for name in have)})"
    redactor = Redactor.build()
    start = time.time() - 10_000

    def add(word: str, offset: int) -> None:
        for i, record in enumerate(synthetic(6, start + offset)):
            record.text_parts = [f"{word} reply"]
            call, payload, _ = rows_for(record, CallContext(), redactor, f"{offset:013d}{i:013d}")
            with conn:
                conn.execute(insert_call, {name: call[name] for name in have})
                conn.execute(insert_at_version(conn, "payloads"), payload)

    add("apricot", 0)
    index_pending(conn)
    with conn:  # the rollups as that version left them: every call in them, the mark at the last payload
        rollup.rebuild(conn)
        conn.execute("UPDATE rollup_state SET rolled_rowid = (SELECT max(rowid) FROM payloads)")
    with conn:  # what prune did: everything deleted, the marks left where they were
        conn.execute("INSERT INTO payloads_fts (payloads_fts, rowid, request_json, response_text) "
                     "SELECT 'delete', rowid, request_json, response_text FROM payloads")
        for table in ("payloads", "calls", *rollup.KEYS):
            conn.execute(f"DELETE FROM {table}")
    add("banana", 100)  # rowids 1 … 6 again, below both marks
    conn.close()

    store = TraceStore(path)
    assert schema.version(store.conn) == schema.SCHEMA_VERSION
    assert len(store.search("banana")) == 6 and store.search("apricot") == []
    assert sum(r["calls"] for r in store.stats("model")) == 6
    assert_whole(path)
    assert store.prune(FUTURE) == 6
    assert_whole(path)
    store.close()
    add_ids = write(path, 3, "cherry", start + 200)
    store = TraceStore(path)
    assert sorted(r["id"] for r in store.search("cherry")) == sorted(add_ids)
    assert store.conn.execute("SELECT min(rowid) FROM payloads").fetchone()[0] > 6
