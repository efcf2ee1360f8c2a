"""Frozen, atomic SQLite migrations, for every store workbench keeps (the trace log, the eval store).

A migration is a name, the literal SQL it runs and, for some, a data step; once shipped it never changes
(each store's tests hold the checksums). The version is SQLite's ``user_version`` (the number of migrations
applied). Each migration runs in its own explicit transaction (``BEGIN IMMEDIATE`` … ``COMMIT``): SQLite's
DDL is transactional, but Python's ``sqlite3`` (3.11, default ``isolation_level``) opens a transaction only
before INSERT/UPDATE/DELETE, so a ``CREATE`` would otherwise commit on its own and a failure half-way would
leave half a schema. The version is read again once the write lock is held, so two processes opening a new
store at once migrate it once.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_ADD_COLUMN = re.compile(r"ALTER TABLE (\w+) ADD COLUMN (\w+)")


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: tuple[str, ...]
    """Run in order. ``ALTER TABLE t ADD COLUMN c`` is skipped when ``c`` exists (stores whose first
    migration was generated from later table definitions)."""
    then: Callable[[sqlite3.Connection], None] | None = None
    """A data step after the SQL, in the same transaction."""
    doc: str = ""


def version(conn: sqlite3.Connection) -> int:
    number: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return number


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> None:
    """Bring the database to ``len(migrations)``, one migration per transaction.

    A migration that fails is rolled back whole: the store stays at the previous version, with none of
    the failed migration's tables, indexes or rows."""
    if conn.in_transaction:
        raise RuntimeError("migrate needs a connection outside any transaction")
    while version(conn) < len(migrations):
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = version(conn)  # again, under the write lock: another process may have migrated
            if current < len(migrations):
                apply(conn, migrations[current])
                conn.execute(f"PRAGMA user_version = {current + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def apply(conn: sqlite3.Connection, migration: Migration) -> None:
    """Run one migration's SQL and data step inside the caller's transaction."""
    for statement in migration.sql:
        added = _ADD_COLUMN.match(statement)
        if added and added[2] in {row[1] for row in conn.execute(f"PRAGMA table_info({added[1]})")}:
            continue
        conn.execute(statement)
    if migration.then is not None:
        migration.then(conn)
