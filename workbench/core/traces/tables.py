"""The trace tables as sqlmodel classes, generated from :mod:`workbench.core.traces.columns`.

For typed reads with sqlmodel/SQLAlchemy (a notebook, a script) and for the test that checks the
migrated schema against the definition (``create_tables`` builds the same tables from these classes).
Nothing in the app imports this module: the schema is built by the frozen migrations
(:mod:`workbench.core.traces.schema`), and sqlmodel with SQLAlchemy costs ~0.15 s to import.
"""

from __future__ import annotations

import sqlite3
import types
from typing import Any

from sqlalchemy import create_engine
from sqlmodel import Field, SQLModel

from workbench.core.traces.columns import CALL_TAGS, CALLS, PAYLOADS, Column

_PYTHON: dict[str, type] = {"VARCHAR": str, "FLOAT": float, "INTEGER": int, "BOOLEAN": bool, "BLOB": bytes}


def _model(name: str, table: str, columns: tuple[Column, ...], doc: str,
           table_args: dict[str, Any] | None = None) -> type[SQLModel]:
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__tablename__": table, "__module__": __name__, "__doc__": doc,
                                 "__annotations__": annotations}
    if table_args:
        namespace["__table_args__"] = table_args
    for column in columns:
        python = _PYTHON[column.sql]
        optional = column.null or (column.key and not column.written)  # SQLite assigns the rowid
        annotations[column.name] = python | None if optional else python
        options: dict[str, Any] = {"primary_key": True} if column.key else {}
        if column.unique:
            options["unique"] = True
        if optional or column.default is not None:
            options["default"] = column.default
        namespace[column.name] = Field(**options)
    return types.new_class(name, (SQLModel,), {"table": True}, lambda ns: ns.update(namespace))


CallRow = _model("CallRow", "calls", CALLS, "One call (``calls``).",
                 {"sqlite_with_rowid": False})  # clustered on the time-sortable id: one b-tree, not two
PayloadRow = _model("PayloadRow", "payloads", PAYLOADS, "One call's text and timing (``payloads``).")
CallTag = _model("CallTag", "call_tags", CALL_TAGS, "One tag of a call (``call_tags``).")


def create_tables(conn: sqlite3.Connection) -> None:
    """Create ``calls``, ``payloads`` and ``call_tags`` on ``conn`` from the classes above."""
    engine = create_engine("sqlite://", creator=lambda: conn)
    SQLModel.metadata.create_all(engine, tables=[SQLModel.metadata.tables[name]
                                                 for name in ("calls", "payloads", "call_tags")])
