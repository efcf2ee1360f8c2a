"""The trace schema: one definition of the rows, frozen migrations, each atomic, every old store upgraded."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import grimp
import pytest

from workbench.core.call_record import Attempt, CallRecord
from workbench.core.errors import ProviderHTTPError
from workbench.core.events import FinishReason, Usage
from workbench.core.request import ChatRequest
from workbench.core.traces import columns, otlp, rollup, schema
from workbench.core.traces.context import CallContext
from workbench.core.traces.redact import Redactor
from workbench.core.traces.store import TraceStore, TraceStoreError
from workbench.core.traces.writer import rows_for

FROZEN = {
    "create_tables": "952297a60f0086534bbcd9b4264414b3db80314916b80fdb442c023fe0b459fe",
    "rollups": "7e6c5f8d15fd7ea35aa7538f067f2dc7909384bcaf0b1d98677355fec3f170e7",
    "fewer_call_indexes": "6026ac772c29b05f4edeaa0d8281c9505a637ba7b09c762c62a06ab3a0fe51f4",
    "rollup_high_water_mark": "a21b7a2e96a9e1945610d4a416f20653a33987e53df7aa99a29fed1e8c9d1cb4",
    "total_times": "999ed5789311462282c852baec8ab333c4d7be5040c02db12121c8ab93c2f201",
    "payload_ids_never_reused": "7bb9f71c45c53af066e570e9d50ad565fccd1b829d03ee44aeedd5a98aba5e50",
    "rollup_extremes": "d551e86a19230169a322a58fb138681329ebf159f9c1fb57c1a46b53bcde4a67",
    "eval_cells": "2539a963d1465348d27a92c0aebdcd55cc094d571652e56e20044664cda7abd4",
    "tool_calls": "0b0fc49da638cc71210c0a2ece04e6d9f7c7f2f5f22e9471030392b21c4671e1",
    "reasoning_timing": "95d5aac689ca7f5ad7989141a4f38f07a124d53cba078e24314fb760ccd77528",
    "refusals": "49c4121c2d029a1635eb7f2721414c49c93d2561d6df00c8724228e866f7ee90",
    "rollup_cache_reports": "92b3cb5672c62cd02ee847b55423557751d9e8a5ff6c9e247e0338b360aae6c9",
}
"""sha256 of each shipped migration's SQL. A shipped migration never changes: add one instead."""


def checksum(migration: schema.Migration) -> str:
    return hashlib.sha256("\n".join(migration.sql).encode()).hexdigest()


def full_record() -> CallRecord:
    record = CallRecord("openai/gpt-4o-mini", ChatRequest.from_prompt("hi", system="be brief"))
    record.started_at = 1_700_000_000.0
    record.served_by = "anthropic/claude-3-5-haiku"
    record.text_parts, record.reasoning_parts = ["hello"], ["thinking"]
    record.usage = Usage(input_tokens=10, output_tokens=5, cache_read_tokens=2, cache_write_tokens=1,
                         reasoning_tokens=3)
    record.finish, record.finish_raw = FinishReason.STOP, "end_turn"
    record.request_id = "req-1"
    record.attempts = [Attempt("openai/gpt-4o-mini", "first", 503)]
    record.error = ProviderHTTPError("openai/gpt-4o-mini", 503, "overloaded", "try again later")
    record.timing.started_ns, record.timing.sent_ns = 0, 0
    record.timing.first_content_ns, record.timing.end_ns = 80_000_000, 400_000_000
    record.timing.chunk_ns = [80_000_000, 400_000_000]
    return record


CONTEXT = CallContext(prompt_name="greeter", prompt_version=2, session_id="s", eval_run_id="e", tags=("a", "b"))


def insert_at_version(conn: sqlite3.Connection, table: str) -> str:
    """``INSERT`` into ``table`` over the written columns a store at an earlier version has."""
    names = [name for name, *_ in table_shape(conn, table)
             if name in {c.name for c in columns.TABLES[table] if c.written}]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"


def table_shape(conn: sqlite3.Connection, table: str) -> list[tuple[str, str, bool, bool]]:
    """(name, declared type, NOT NULL, part of the primary key) of every column, in order."""
    return [(row[1], row[2], bool(row[3]), bool(row[5])) for row in conn.execute(f"PRAGMA table_info({table})")]


def schema_of(conn: sqlite3.Connection) -> dict[str, Any]:
    """Every table's columns and every index's definition (what a store's behaviour depends on)."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    indexes = conn.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name")
    without_rowid = {r[1]: bool(r[4]) for r in conn.execute("PRAGMA table_list") if r[1] in tables}
    return {"tables": {t: table_shape(conn, t) for t in tables}, "indexes": indexes.fetchall(),
            "without_rowid": without_rowid}


def store_at(path: Path, version: int) -> sqlite3.Connection:
    """A store built by the first ``version`` migrations, as an older workbench left it."""
    conn = sqlite3.connect(path)
    for migration in schema.MIGRATIONS[:version]:
        conn.execute("BEGIN")
        schema.apply(conn, migration)
        conn.execute("COMMIT")
    conn.execute(f"PRAGMA user_version = {version}")
    return conn


def test_the_writer_fills_exactly_the_defined_columns() -> None:
    call, payload, tags = rows_for(full_record(), CONTEXT, Redactor.build(), "01JTEST0000000000000000000")
    assert tuple(call) == columns.CALL_COLUMNS
    assert tuple(payload) == columns.PAYLOAD_COLUMNS
    assert [tuple(tag) for tag in tags] == [columns.TAG_COLUMNS] * 2
    assert call["served_by"] == "anthropic/claude-3-5-haiku" and call["reasoning_tokens"] == 3
    assert call["attempt_count"] == 1 and call["status"] == "error" and payload["reasoning_text"] == "thinking"


def test_a_row_missing_a_column_is_refused(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "t.db")
    call, _, _ = rows_for(full_record(), CONTEXT, Redactor.build(), "01JTEST0000000000000000000")
    del call["total_ms"]
    with pytest.raises(sqlite3.ProgrammingError):
        store.conn.execute(columns.insert("calls"), call)


def test_the_migrated_tables_are_the_defined_columns(tmp_path: Path) -> None:
    conn = TraceStore(tmp_path / "t.db").conn
    for table, defined in columns.TABLES.items():
        assert table_shape(conn, table) == [(c.name, c.sql, not c.null, c.key) for c in defined], table


def test_the_sqlmodel_classes_make_the_same_tables() -> None:
    from workbench.core.traces.tables import create_tables

    made, migrated = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    create_tables(made)
    schema.migrate(migrated)
    for table in columns.TABLES:
        assert table_shape(made, table) == table_shape(migrated, table), table
    assert schema_of(made)["without_rowid"] == {"calls": True, "payloads": False, "call_tags": False}


def test_the_rollup_tables_hold_the_rollup_keys_and_values() -> None:
    conn = sqlite3.connect(":memory:")
    schema.migrate(conn)
    for table, keys in rollup.KEYS.items():
        shape = table_shape(conn, table)
        assert [name for name, _, _, key in shape if key] == list(keys), table
        assert [name for name, _, _, key in shape if not key] == [v for v in rollup.VALUES[table] if v not in keys]


def test_shipped_migrations_never_change() -> None:
    assert [m.name for m in schema.MIGRATIONS] == list(FROZEN)
    assert len(FROZEN) == schema.SCHEMA_VERSION
    for migration in schema.MIGRATIONS:
        assert checksum(migration) == FROZEN[migration.name], f"{migration.name}: add a migration instead"


def test_the_first_migration_is_the_version_1_schema() -> None:
    conn = store_at(Path(":memory:"), 1)
    calls = [name for name, *_ in table_shape(conn, "calls")]
    later = ("total_ms", "total_ttft_ms", "eval_cell", "ttft_reasoning_ms", "ttft_answer_ms")
    assert calls == [name for name in columns.CALL_COLUMNS if name not in later]
    indexes = {row[1] for row in conn.execute("PRAGMA index_list(calls)")}
    assert {"calls_provider", "calls_status", "calls_target"} <= indexes


@pytest.mark.parametrize("version", range(1, schema.SCHEMA_VERSION))
def test_a_store_at_every_version_upgrades_to_the_current_schema(tmp_path: Path, version: int) -> None:
    conn = store_at(tmp_path / "old.db", version)
    call, payload, tags = rows_for(full_record(), CONTEXT, Redactor.build(), "01JTEST0000000000000000000")
    with conn:
        conn.execute(insert_at_version(conn, "calls"), call)
        conn.execute(insert_at_version(conn, "payloads"), payload)
        conn.executemany(columns.insert("call_tags"), tags)
        if 2 <= version < 4:  # the writers of versions 2 and 3 added each commit's calls to the rollups
            rollup.rebuild(conn)
    conn.close()
    store = TraceStore(tmp_path / "old.db")
    fresh = TraceStore(tmp_path / "new.db")
    assert schema.version(store.conn) == schema.SCHEMA_VERSION
    assert schema_of(store.conn) == schema_of(fresh.conn)
    got = store.get("01JTEST")
    assert got is not None and got["tags"] == ["a", "b"] and got["payload"]["response_text"] == "hello"
    assert store.stats("model")[0]["calls"] == 1


def test_a_store_whose_first_migration_had_the_later_columns_upgrades(tmp_path: Path) -> None:
    """Until the migrations were frozen, the first one made ``calls`` from the live definitions: a store
    left at version 1 … 4 by it already has ``total_ms``."""
    conn = store_at(tmp_path / "old.db", 2)
    conn.execute("ALTER TABLE calls ADD COLUMN total_ms FLOAT")
    conn.execute("ALTER TABLE calls ADD COLUMN total_ttft_ms FLOAT")
    conn.close()
    store = TraceStore(tmp_path / "old.db")
    assert schema_of(store.conn) == schema_of(TraceStore(tmp_path / "new.db").conn)


def test_a_migration_failing_half_way_leaves_the_previous_version(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.db"
    store_at(path, 1).close()
    before = schema_of(sqlite3.connect(path))

    def backfill_fails(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO rollup_calls (day) VALUES (1)")  # NOT NULL columns missing: fails

    broken = schema.Migration("rollups", schema.MIGRATIONS[1].sql, backfill_fails)
    monkeypatch.setattr(schema, "MIGRATIONS", (schema.MIGRATIONS[0], broken, *schema.MIGRATIONS[2:]))
    with pytest.raises(TraceStoreError, match="could not upgrade the trace store"):
        TraceStore(path)
    conn = sqlite3.connect(path)
    assert schema.version(conn) == 1
    assert schema_of(conn) == before  # no rollup table, no index: nothing of the failed migration
    assert not conn.in_transaction

    monkeypatch.undo()
    assert schema.version(TraceStore(path).conn) == schema.SCHEMA_VERSION  # the next open finishes the job


def test_a_failed_statement_rolls_back_the_ones_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = sqlite3.connect(":memory:")
    broken = schema.Migration("broken", ("CREATE TABLE half (x)", "CREATE INDEX half_x ON half (x)",
                                         "INSERT INTO half VALUES (1)", "CREATE TABLE half (y)"))
    monkeypatch.setattr(schema, "MIGRATIONS", (schema.MIGRATIONS[0], broken))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 2)
    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        schema.migrate(conn)
    assert schema.version(conn) == 1
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'half%'").fetchone()[0] == 0


def test_every_copied_column_is_a_span_attribute() -> None:
    call, payload, tags = rows_for(full_record(), CONTEXT, Redactor.build(), "01JTEST0000000000000000000")
    attributes = dict(otlp.span_attributes(otlp.call_row(call, payload, tags)))
    for column in columns.CALLS:
        if column.attribute and call[column.name] is not None:
            assert attributes[column.attribute] == call[column.name], column.name
    assert attributes["workbench.tags"] == ["a", "b"]
    assert set(columns.OTEL_ATTRIBUTES) >= {c.name for c in columns.CALLS if c.attribute}


def test_a_new_store_is_made_without_sqlmodel(tmp_path: Path) -> None:
    code = ("import sys; from pathlib import Path; from workbench.core.traces.store import TraceStore; "
            f"TraceStore(Path({str(tmp_path / 'new.db')!r})).close(); "
            "print([m for m in ('sqlmodel', 'sqlalchemy', 'workbench.core.traces.tables') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_core_has_no_import_cycle() -> None:
    """Function-level imports included (grimp reads every import statement)."""
    graph = grimp.build_graph("workbench")
    core = {m for m in graph.modules if m == "workbench.core" or m.startswith("workbench.core.")}
    cycles = sorted((m, n) for m in core for n in graph.find_modules_directly_imported_by(m)
                    if n in core and n != m and graph.chain_exists(importer=n, imported=m))
    assert cycles == []
