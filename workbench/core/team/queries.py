"""Reading the team store: what ``--team`` on ``traces list|search|stats`` and ``evals list|show|diff`` (and the TUI's
local/team switch) show, in the local stores' shapes plus who pushed each row.

:class:`TeamTraces` answers as :class:`~workbench.core.traces.store.TraceStore` does (``page``, ``search``,
``stats``: the same dicts, the same :class:`~workbench.core.traces.filters.Filters`), each call with ``user`` and
``host``; :class:`TeamRuns` as :class:`~workbench.core.evals.run_store.EvalStore` does for reading (``run``,
``runs``, ``results``: a :class:`~workbench.core.evals.report_data.RunSource`), with :meth:`TeamRuns.pushed_by`.

Every page is a keyset query in id order down an index (``calls_*``; migration ``read_indexes`` adds the ones the
filters need), so a page costs the same at a million calls as at a thousand. A read-only role is enough.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar, cast

from workbench.core.errors import ConfigError
from workbench.core.evals.model import CellKey, CellResult, Grading, Observation, RunInfo
from workbench.core.traces.columns import CALL_COLUMNS, PAYLOAD_COLUMNS
from workbench.core.traces.filters import ID_SLACK_S, NO_FILTERS, Filters, id_bound
from workbench.core.traces.stats import COLUMN_GROUPS, cache_figures

if TYPE_CHECKING:
    import psycopg

    from workbench.core.team.target import TeamTarget

T = TypeVar("T")

PUSHED_BY = ("user", "host")
"""The keys a team row adds to the local shape: who pushed it (``team_user``) and from which host."""

_CALLS = ", ".join([*(f"c.{name}" for name in CALL_COLUMNS), 'c.team_user AS "user"', "c.team_host AS host"])


def sql_where(filters: Filters, alias: str = "c") -> tuple[str, list[Any]]:
    """:meth:`Filters.where` in PostgreSQL's words: ``%s`` placeholders, ``TRUE`` for no condition."""
    where, args = filters.where(alias)
    return ("TRUE" if where == "1" else where.replace("?", "%s")), args


GROUPS = {
    "day": "to_char(to_timestamp(c.ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    **COLUMN_GROUPS,
    "user": "c.team_user",
    "host": "c.team_host",
}
"""``traces stats --by`` on the team store: the local groupings, and who pushed the calls (``user``, ``host``)."""


_ID_LENGTH = 26
_PREFIX = "{column} >= %s AND {column} <= %s AND starts_with({column}, %s)"
"""Ids starting with a prefix, as a range of the primary key (ids are ULIDs: 26 characters of ``0-9A-Z``)."""


def id_prefix(prefix: str) -> list[str]:
    """The arguments of :data:`_PREFIX` for ``prefix``."""
    return [prefix, prefix + "Z" * max(0, _ID_LENGTH - len(prefix)), prefix]


def page_query(filters: Filters, before: str | None, limit: int) -> tuple[str, list[Any]]:
    """The SQL of :meth:`TeamTraces.page` and its arguments: one index walked newest first (the primary key, or the
    filter's ``calls_*`` index ending in ``id``, or the tag's), stopping at ``limit`` rows."""
    where, args = sql_where(replace(filters, tag=None))
    if before is not None:
        where += " AND c.id < %s"
        args.append(before)
    if filters.tag is None:
        return f"SELECT {_CALLS} FROM calls c WHERE {where} ORDER BY c.id DESC LIMIT %s", [*args, limit]
    # down the tag's index (tag, call_id) newest first, bounded by the same id range as the calls
    bounds, extra = ["t.tag = %s"], [filters.tag]
    since = None if filters.since is None else id_bound(filters.since - ID_SLACK_S)
    until = None if filters.until is None else id_bound(filters.until + 0.002)
    for op, value in (("<", before), (">=", since), ("<", until)):
        if value is not None:
            bounds.append(f"t.call_id {op} %s")
            extra.append(value)
    return (f"SELECT {_CALLS} FROM call_tags t JOIN calls c ON c.id = t.call_id "
            f"WHERE {' AND '.join(bounds)} AND {where} ORDER BY t.call_id DESC LIMIT %s", [*extra, *args, limit])


class TeamTraces:
    """The team store's calls, read as the local store reads its own (``conn``: from
    :func:`~workbench.core.team.connection.team_session`)."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn

    def _rows(self, query: str, args: list[Any]) -> list[dict[str, Any]]:
        from psycopg.rows import dict_row

        with self.conn.cursor(row_factory=dict_row) as cur:
            return list(cur.execute(query.encode(), args))

    def page(self, filters: Filters = NO_FILTERS, before: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` calls older than the id ``before`` (a keyset page), as ``TraceStore.page``."""
        return self._rows(*page_query(filters, before, limit))

    def search(self, text: str, filters: Filters = NO_FILTERS, before: str | None = None,
               limit: int = 50) -> list[dict[str, Any]]:
        """Calls whose prompt or reply holds every word of ``text`` (PostgreSQL's ``simple`` text search: words,
        case folded), newest first, read down the calls until ``limit`` match. Each row carries ``_cursor`` (its id):
        pass the last one as ``before`` for the next page."""
        if not text.split():
            raise ConfigError("nothing to search for", "give a word to search for")
        where, args = sql_where(filters)
        if before is not None:
            where += " AND c.id < %s"
            args.append(before)
        rows = self._rows(
            f"SELECT {_CALLS} FROM calls c JOIN payloads p ON p.call_id = c.id WHERE {where} AND "
            "to_tsvector('simple', coalesce(p.request_json, '') || ' ' || coalesce(p.response_text, '')) "
            "@@ plainto_tsquery('simple', %s) ORDER BY c.id DESC LIMIT %s", [*args, text, limit])
        for row in rows:
            row["_cursor"] = row["id"]
        return rows

    def get(self, call_id: str) -> dict[str, Any] | None:
        """One call with its payload and tags, as ``TraceStore.get`` (a unique id prefix is enough)."""
        rows = self._rows(f"SELECT {_CALLS} FROM calls c WHERE {_PREFIX.format(column='c.id')} ORDER BY c.id LIMIT 2",
                          id_prefix(call_id))
        if len(rows) != 1:
            return None
        call = rows[0]
        payload = self._rows(f"SELECT {', '.join(p for p in PAYLOAD_COLUMNS if p != 'call_id')} FROM payloads "
                             "WHERE call_id = %s", [call["id"]])
        call["payload"] = payload[0] if payload else None
        call["tags"] = [r["tag"] for r in self._rows("SELECT tag FROM call_tags WHERE call_id = %s ORDER BY tag",
                                                     [call["id"]])]
        return call

    def stats(self, by: str, filters: Filters = NO_FILTERS) -> list[dict[str, Any]]:
        """``traces stats`` from the team's calls: the local figures (every percentile exact), grouped by ``by``
        (:data:`GROUPS`)."""
        key = GROUPS.get(by)
        if key is None:
            raise ConfigError(f"cannot group by '{by}'", f"use one of: {', '.join(GROUPS)}")
        where, args = sql_where(filters)
        source = "calls c" if by != "tag" else "calls c JOIN call_tags t ON t.call_id = c.id"
        pct = "percentile_cont({q}) WITHIN GROUP (ORDER BY c.{column})"
        rows = self._rows(
            f"SELECT {key} AS grp, count(*) AS calls, sum(c.cost_usd) AS spend_usd, "
            "count(*) FILTER (WHERE c.cost_usd IS NULL AND c.input_tokens IS NOT NULL) AS unpriced, "
            "sum(c.cache_read_tokens)::bigint AS cache_read, sum(c.input_tokens)::bigint AS input_tokens, "
            "count(c.cache_read_tokens) AS cache_n, "
            "coalesce(sum(c.input_tokens) FILTER (WHERE c.cache_read_tokens IS NOT NULL), 0)::bigint AS cache_input, "
            "sum(c.output_tokens)::bigint AS output_tokens, "
            "avg((c.finish_reason = 'length')::int)::float8 AS length_share, "
            "avg((c.status = 'error')::int)::float8 AS error_share, "
            f"{pct.format(q=0.5, column='ttft_ms')} AS ttft_p50, {pct.format(q=0.95, column='ttft_ms')} AS ttft_p95, "
            f"{pct.format(q=0.5, column='latency_ms')} AS latency_p50, "
            f"{pct.format(q=0.95, column='latency_ms')} AS latency_p95 "
            f"FROM {source} WHERE {where} GROUP BY grp ORDER BY grp", args)
        return [{
            by: row["grp"], "calls": row["calls"], "spend_usd": row["spend_usd"], "unpriced_calls": row["unpriced"],
            "input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"],
            **cache_figures(row["cache_n"], row["cache_read"], int(row["cache_input"])),
            "length_share": row["length_share"], "error_share": row["error_share"],
            "ttft_p50_ms": row["ttft_p50"], "ttft_p95_ms": row["ttft_p95"],
            "latency_p50_ms": row["latency_p50"], "latency_p95_ms": row["latency_p95"],
            "percentiles_approximate": False,
        } for row in rows]


_RUN_FIELDS = tuple(f.name for f in fields(RunInfo))
_RUNS = ", ".join(_RUN_FIELDS)


def _run(row: tuple[Any, ...]) -> RunInfo:
    values = dict(zip(_RUN_FIELDS, row, strict=False))
    values["targets"] = tuple(json.loads(values["targets"]))
    if values["failures"] is not None:
        values["failures"] = tuple(json.loads(values["failures"]))
    return RunInfo(**values)


@dataclass(frozen=True, slots=True)
class PushedBy:
    user: str
    host: str


class TeamRuns:
    """The team store's eval runs, read as the local eval store reads its own (a ``RunSource``)."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn
        self._who: dict[str, PushedBy] = {}

    def _select(self, where: str, args: tuple[Any, ...]) -> list[RunInfo]:
        rows = self.conn.execute(f"SELECT {_RUNS}, team_user, team_host FROM eval_runs WHERE {where}".encode(),
                                 args).fetchall()
        width = len(_RUN_FIELDS)
        for row in rows:
            self._who[str(row[0])] = PushedBy(str(row[width]), str(row[width + 1]))
        return [_run(row) for row in rows]

    def run(self, ref: str, suite: str | None = None) -> RunInfo:
        """A run by id (or a unique prefix of it), or ``last`` (of ``suite`` when given): the newest pushed."""
        if ref == "last":
            found = self._select("(%s::text IS NULL OR suite = %s) ORDER BY id DESC LIMIT 1", (suite, suite))
            if not found:
                raise ConfigError("no eval run in the team store" + (f" of suite '{suite}'" if suite else ""),
                                  "push one first: workbench sync --push (or eval --sync)")
            return found[0]
        found = self._select(f"{_PREFIX.format(column='id')} ORDER BY id LIMIT 2", tuple(id_prefix(ref.upper())))
        if len(found) != 1:
            raise ConfigError(f"no eval run '{ref}' in the team store" if not found
                              else f"eval run '{ref}' is ambiguous in the team store",
                              "see `workbench evals list --team` for the ids")
        return found[0]

    def runs(self, suite: str | None = None, limit: int = 50) -> list[RunInfo]:
        """The newest ``limit`` runs (of ``suite``), newest first."""
        return self._select("(%s::text IS NULL OR suite = %s) ORDER BY id DESC LIMIT %s", (suite, suite, limit))

    def pushed_by(self, run: RunInfo) -> PushedBy:
        """Who pushed ``run`` (one this reader returned), and from which host."""
        return self._who[run.id]

    def results(self, run_id: str) -> Iterator[tuple[CellResult, str]]:
        """(result, test description) in plan order, as ``EvalStore.results``."""
        rows = self.conn.execute(b"SELECT test, prompt, target, repeat, observation, gradings, passed, score, cached, "
                                 b"trace_id, description FROM eval_results WHERE run_id = %s ORDER BY seq", (run_id,))
        for row in rows:
            test, prompt, target, repeat, observation, gradings, passed, score, cached, trace_id, text = cast(
                tuple[str, str, str, int, str, str, int, float, int, str | None, str], row)
            result = CellResult(CellKey(test, prompt, target), repeat, Observation(**json.loads(observation)),
                                [Grading.from_fields(g) for g in json.loads(gradings)], bool(passed), score,
                                bool(cached), trace_id)
            yield result, text


class TeamReader:
    """A read-only connection kept open (the TUI's local/team switch): the schema checked once, the reads of several
    threads one at a time, a driver error raised as the one line :func:`~.connection.describe` makes of it."""

    def __init__(self, target: TeamTarget) -> None:
        import psycopg

        from workbench.core.team import migrations
        from workbench.core.team.connection import connect, describe

        self.target = target
        self._lock = threading.Lock()
        self.conn = connect(target)
        try:
            migrations.check(self.conn)
        except psycopg.Error as exc:
            self.conn.close()
            raise describe(exc, target) from None
        except BaseException:
            self.conn.close()
            raise

    def read(self, query: Callable[[psycopg.Connection[tuple[object, ...]]], T]) -> T:
        import psycopg

        from workbench.core.team.connection import describe

        with self._lock:
            try:
                return query(self.conn)
            except psycopg.Error as exc:
                raise describe(exc, self.target, connected=True) from None

    def close(self) -> None:
        self.conn.close()
