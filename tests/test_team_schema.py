"""The team store's schema: the migrations frozen once shipped, the migrated server's columns exactly the sqlmodel
classes', those the local stores' columns plus who pushed each row, and a reader that never migrates."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.dialects import postgresql

from tests.postgres_server import PostgresServer
from tests.team_clones import fresh_database
from workbench.core.errors import ConfigError
from workbench.core.evals import store_schema
from workbench.core.team import tables
from workbench.core.team.connection import team_session
from workbench.core.team.migrations import MIGRATIONS
from workbench.core.team.target import parse_target
from workbench.core.traces.columns import CALL_TAGS, CALLS, PAYLOADS

FROZEN = {
    "create_tables": "1a90d00306f1501ae37e8d6163ab7910f233afb6c72d84b65efeab044310ae63",
    "read_indexes": "a04eb646adb6bfec157b2ba0312905115a0fcf4c9148b55bd4ceb0db1b9f0f83",
}
"""sha256 of each shipped migration's SQL. A shipped migration never changes: add one instead."""

DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_PG_TYPES = {"VARCHAR": "character varying", "FLOAT": "double precision", "INTEGER": "integer",
             "BOOLEAN": "boolean", "BYTEA": "bytea", "XID8": "xid8"}


def test_shipped_migrations_never_change() -> None:
    assert [m.name for m in MIGRATIONS][:len(FROZEN)] == list(FROZEN)
    for migration in MIGRATIONS:
        digest = hashlib.sha256("\n".join(migration.sql).encode()).hexdigest()
        assert digest == FROZEN.get(migration.name, digest), f"{migration.name}: add a migration instead"


def test_the_migrated_server_has_exactly_the_classes_columns(postgres: PostgresServer) -> None:
    url = fresh_database(postgres)
    with team_session(parse_target(url, "test", in_file=False), write=True) as conn:
        for name, table in ((n, tables.METADATA.tables[n]) for n in tables.TABLES):
            found = conn.execute("SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                                 "WHERE table_name = %s ORDER BY ordinal_position", (name,)).fetchall()
            defined = [(c.name, _PG_TYPES[str(c.type.compile(dialect=DIALECT))], "YES" if c.nullable else "NO")
                       for c in table.columns]
            assert found == defined, name
            key = conn.execute("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                               "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
                               (name,)).fetchall()
            assert sorted(k for (k,) in key) == sorted(tables.keys(name)), name


def test_the_team_tables_are_the_local_stores_tables_with_who_pushed(tmp_path: Path) -> None:
    def written(columns: tuple[object, ...]) -> list[str]:
        return [c.name for c in columns if c.written]  # type: ignore[attr-defined]

    attribution = list(tables.ATTRIBUTION)
    assert list(tables.columns("calls")) == written(CALLS) + attribution
    assert list(tables.columns("payloads")) == written(PAYLOADS) + attribution  # the local rowid aside
    assert list(tables.columns("call_tags")) == written(CALL_TAGS) + attribution
    local = sqlite3.connect(tmp_path / "evals.db")
    store_schema.migrate(local)
    for name in ("eval_runs", "eval_results"):
        columns = [row[1] for row in local.execute(f"PRAGMA table_info({name})")]
        assert list(tables.columns(name)) == columns + attribution, name


def test_a_reader_never_migrates_and_says_how_to_set_the_store_up(postgres: PostgresServer) -> None:
    url = fresh_database(postgres)
    target = parse_target(url, "test", in_file=False)
    with pytest.raises(ConfigError, match="not set up") as missing, team_session(target, write=False):
        pass
    assert "workbench sync --push" in str(missing.value.hint)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('calls')").fetchone() == (None,)
    with team_session(target, write=True):
        pass
    with team_session(target, write=False) as conn:
        assert conn.execute("SELECT count(*) FROM team_migrations").fetchone() == (len(MIGRATIONS),)
