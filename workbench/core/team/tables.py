"""The team store's tables on PostgreSQL, defined once with sqlmodel (their own registry, apart from the local
classes of :mod:`workbench.core.traces.tables`).

The same tables as the local stores, with what a shared store needs beside each row:

- ``calls``, ``payloads``, ``call_tags``: the trace log's columns (:mod:`workbench.core.traces.columns`), except
  ``payloads.rowid`` (SQLite's write order): a payload is keyed by its call.
- ``eval_runs``, ``eval_results``: the eval store's (:mod:`workbench.core.evals.store_schema`; its response cache
  stays local).
- ``prompt_versions``: a version of a prompt (the canonical YAML, :mod:`workbench.core.prompts.versions`), keyed by
  name and content hash: each clone numbers its versions itself, so ``number`` is the pushing clone's.

Every row also has ``team_user`` and ``team_host`` (who pushed it, from where) and ``pushed_xid``, the pushing
transaction's id (``pg_current_xact_id()``), along which ``sync --pull`` catches up (:mod:`.pull`).

The migrations (:mod:`.migrations`) hold the SQL as first generated from these classes, frozen; a test checks that
the migrated server's columns are exactly these.
"""

from __future__ import annotations

import types
from typing import Any

from sqlalchemy import Column as SAColumn
from sqlalchemy import Index, text
from sqlalchemy.orm import registry
from sqlalchemy.types import UserDefinedType
from sqlmodel import Field, SQLModel

from workbench.core.traces.columns import CALL_TAGS, CALLS, PAYLOADS, Column

TEAM_REGISTRY = registry()
METADATA = TEAM_REGISTRY.metadata

ATTRIBUTION = ("team_user", "team_host")
"""Who pushed a row and from which host: set by the pusher on every row."""


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id (``xid8``)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "XID8"


class TeamModel(SQLModel, registry=TEAM_REGISTRY):
    """Base of the team tables (their own metadata: never mixed with the local SQLite classes)."""


_PYTHON: dict[str, type] = {"VARCHAR": str, "FLOAT": float, "INTEGER": int, "BOOLEAN": bool, "BLOB": bytes}


def _pushed_xid() -> Any:
    return Field(sa_column=SAColumn("pushed_xid", Xid8(), nullable=False, server_default=text("pg_current_xact_id()")))


def _model(name: str, table: str, fields: dict[str, tuple[type, dict[str, Any]]], doc: str,
           indexes: tuple[Index, ...] = ()) -> type[TeamModel]:
    """A table class: ``fields`` are name → (python type, Field options), then the attribution and ``pushed_xid``."""
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__tablename__": table, "__module__": __name__, "__doc__": doc,
                                 "__annotations__": annotations}
    if indexes:
        namespace["__table_args__"] = indexes
    every = {**fields, "team_user": (str, {}), "team_host": (str, {})}
    for column, (python, options) in every.items():
        annotations[column] = python
        namespace[column] = Field(**options)
    annotations["pushed_xid"] = int | None
    namespace["pushed_xid"] = _pushed_xid()
    return types.new_class(name, (TeamModel,), {"table": True}, lambda ns: ns.update(namespace))


def _from_columns(columns: tuple[Column, ...]) -> dict[str, tuple[type, dict[str, Any]]]:
    out: dict[str, tuple[type, dict[str, Any]]] = {}
    for column in columns:
        if not column.written:
            continue
        python: Any = _PYTHON[column.sql]
        options: dict[str, Any] = {}
        if column.key:
            options["primary_key"] = True
        if column.null:
            python = python | None
            options["default"] = None
        out[column.name] = (python, options)
    return out


def _payload_fields() -> dict[str, tuple[type, dict[str, Any]]]:
    fields = _from_columns(PAYLOADS)
    fields["call_id"] = (str, {"primary_key": True})  # the local rowid's place: one payload per call
    return fields


def _key(python: type) -> tuple[type, dict[str, Any]]:
    return python, {"primary_key": True}


def _plain(python: Any) -> tuple[Any, dict[str, Any]]:
    return python, {}


def _optional(python: type) -> tuple[Any, dict[str, Any]]:
    return python | None, {"default": None}


TeamCall = _model("TeamCall", "calls", _from_columns(CALLS), "One call (the trace log's ``calls``).", (
    Index("calls_target", "target", "id"),
    Index("calls_prompt", "prompt_name", "prompt_version", "id"),
    Index("calls_eval", "eval_run_id", "id", postgresql_where=text("eval_run_id IS NOT NULL")),
    Index("calls_user", "team_user", "id"),
    Index("calls_pushed", "pushed_xid"),
))
TeamPayload = _model("TeamPayload", "payloads", _payload_fields(), "One call's text and timing (``payloads``).",
                     (Index("payloads_pushed", "pushed_xid"),))
TeamCallTag = _model("TeamCallTag", "call_tags", _from_columns(CALL_TAGS), "One tag of a call (``call_tags``).",
                     (Index("call_tags_tag", "tag", "call_id"), Index("call_tags_pushed", "pushed_xid")))

TeamEvalRun = _model("TeamEvalRun", "eval_runs", {
    "id": _key(str), "suite": _plain(str), "suite_path": _plain(str), "suite_digest": _plain(str),
    "started_at": _plain(float), "finished_at": _optional(float), "status": _plain(str),
    "stop_reason": _optional(str), "repeat": _plain(int), "targets": _plain(str), "cost_usd": _plain(float),
    "gate": _optional(float), "gate_source": _optional(str), "compared_with": _optional(str),
    "verdict": _optional(str), "failures": _optional(str), "exit_code": _optional(int),
}, "One eval run (the eval store's ``eval_runs``): ``targets`` and ``failures`` are JSON lists.", (
    Index("eval_runs_suite", "suite", "id"),
    Index("eval_runs_pushed", "pushed_xid"),
))
TeamEvalResult = _model("TeamEvalResult", "eval_results", {
    "run_id": _key(str), "seq": _plain(int), "test": _key(str), "prompt": _key(str), "target": _key(str),
    "repeat": _key(int), "description": _plain(str), "passed": _plain(int), "score": _plain(float),
    "cached": _plain(int), "trace_id": _optional(str), "observation": _plain(str), "gradings": _plain(str),
}, "One cell's result (``eval_results``): ``observation`` and ``gradings`` are JSON, redacted.", (
    Index("eval_results_order", "run_id", "seq"),
    Index("eval_results_pushed", "pushed_xid"),
))
TeamPromptVersion = _model("TeamPromptVersion", "prompt_versions", {
    "name": _key(str), "hash": _key(str), "number": _plain(int), "created": _plain(str), "text": _optional(str),
}, "One saved version of a prompt: its canonical YAML (redacted; ``NULL`` in metadata-only mode), its sha256, and "
   "its number and creation time in the clone that pushed it.", (
    Index("prompt_versions_pushed", "pushed_xid"),
))

TABLES: dict[str, type[TeamModel]] = {
    "calls": TeamCall, "payloads": TeamPayload, "call_tags": TeamCallTag, "eval_runs": TeamEvalRun,
    "eval_results": TeamEvalResult, "prompt_versions": TeamPromptVersion,
}
"""Every team table by name, in the order a push writes them."""


def columns(table: str) -> tuple[str, ...]:
    """The columns a pusher writes in ``table`` (all but ``pushed_xid``, which the server sets), in table order."""
    return tuple(c.name for c in METADATA.tables[table].columns if c.name != "pushed_xid")


def keys(table: str) -> tuple[str, ...]:
    """The primary key of ``table``."""
    return tuple(c.name for c in METADATA.tables[table].primary_key.columns)


def ddl() -> list[str]:
    """``CREATE TABLE`` and ``CREATE INDEX`` for every team table, as PostgreSQL's dialect compiles them (what the
    first migration froze)."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    out: list[str] = []
    for table in (METADATA.tables[name] for name in TABLES):
        out.append(" ".join(str(CreateTable(table).compile(dialect=dialect)).split()))
        out += [" ".join(str(CreateIndex(index).compile(dialect=dialect)).split())
                for index in sorted(table.indexes, key=lambda i: str(i.name))]
    return out
