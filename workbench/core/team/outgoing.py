"""What leaves the machine: the local rows a push sends, read in batches and redacted first.

Every text passes the settings' redactor again at push time (the local stores were redacted with the rules of the
day they were written, and a stricter configuration now applies to what is shared), with the ``api_key`` rule
always on, whatever ``[traces] redact`` says: no key ever reaches the team store. In metadata-only mode no content
leaves at all: prompts, replies, reasoning, tool arguments, errors and prompt versions' text are ``NULL`` (or
``[metadata only]`` where the local schema keeps a string), counts and timings are sent.
"""

from __future__ import annotations

import functools
import itertools
import json
import operator
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import String
from sqlalchemy.types import TypeEngine

from workbench.core.evals.model import Grading, Observation
from workbench.core.evals.redaction import stored_grading, stored_observation
from workbench.core.team import tables
from workbench.core.traces.redact import BUILTIN_RULES, Redactor

Row = tuple[object, ...]

CONTENT: dict[str, frozenset[str]] = {
    "calls": frozenset({"error"}),
    "payloads": frozenset({"request_json", "response_text", "reasoning_text", "attempts_json", "tool_calls_json",
                           "refusal_text", "blocks_json"}),
    "call_tags": frozenset(),
    "eval_runs": frozenset(),
    "prompt_versions": frozenset({"text"}),
}
"""The columns that hold content (prompts, replies, errors): dropped in metadata-only mode. Every other text
column still passes the rules (a key in an endpoint's query string, a tag)."""
_UNTOUCHED = frozenset({"id", "call_id", "run_id", "hash", "suite_digest", "observation", "gradings"})
"""Ids, and the eval results' JSON (redacted field by field: :func:`redacted_result`)."""


def redacted_result(observation: str, gradings: str, redactor: Redactor) -> tuple[str, str]:
    """An eval result's observation and gradings (JSON, as the eval store keeps them) passed through ``redactor``
    again, as the eval store redacts them (:mod:`workbench.core.evals.redaction`)."""
    kept = stored_observation(Observation(**json.loads(observation)), redactor)
    return (json.dumps(asdict(kept), ensure_ascii=False, default=str),
            json.dumps([asdict(stored_grading(Grading.from_fields(g), redactor)) for g in json.loads(gradings)],
                       ensure_ascii=False))


def sync_redactor(configured: Redactor) -> Redactor:
    """``configured`` with the ``api_key`` rule added when it lacks it (first, as the built-in order has it)."""
    if any(name == "api_key" for name, _ in configured.rules):
        return configured
    keys = Redactor.build(("api_key",))
    return Redactor(keys.rules + configured.rules, configured.metadata_only)


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which of a table's columns (in :func:`tables.columns` order, the attribution aside) hold content, and which
    other text passes the rules."""

    columns: tuple[str, ...]
    content: tuple[int, ...]
    ruled: tuple[int, ...]


def _text(kind: TypeEngine[object]) -> bool:
    """A text column: a String, or sqlmodel's ``AutoString`` (a decorator over one)."""
    return isinstance(kind, String) or isinstance(getattr(kind, "impl_instance", None), String)


@functools.cache
def _plan(table: str) -> _Plan:
    columns = tuple(c for c in tables.columns(table) if c not in tables.ATTRIBUTION)
    kinds = tables.METADATA.tables[table].columns
    texts = [i for i, name in enumerate(columns)
             if _text(kinds[name].type) and name not in _UNTOUCHED]
    content = CONTENT.get(table, frozenset())
    return _Plan(columns, tuple(i for i in texts if columns[i] in content),
                 tuple(i for i in texts if columns[i] not in content))


def local_columns(table: str) -> tuple[str, ...]:
    """The columns of a team table a local row supplies, in order (all but who pushed it)."""
    return _plan(table).columns


@dataclass(frozen=True)
class Outgoing:
    """How rows are made ready to leave: the redactor, and who pushes them from where."""

    redactor: Redactor
    user: str
    host: str
    rules: Redactor = field(init=False, repr=False)
    """The redactor's rules without metadata-only: for the columns that are not content."""
    joinable: bool = field(init=False, repr=False)
    """Only built-in rules (none anchored, none matching across a NUL): a row's texts are tested joined first."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", Redactor(self.redactor.rules))
        object.__setattr__(self, "joinable", all(BUILTIN_RULES.get(name) == pattern
                                                 for name, pattern in self.redactor.rules))

    def values(self, table: str, values: Sequence[object]) -> Row:
        """The team table's row from a local row's values in :func:`local_columns` order: redacted, attributed."""
        plan = _plan(table)
        out = list(values)
        if plan.content:
            if self.redactor.metadata_only:
                for i in plan.content:
                    out[i] = None
            else:
                self._redact(out, plan.content)
        if plan.ruled:
            self._redact(out, plan.ruled)
        out += (self.user, self.host)
        return tuple(out)

    def many(self, table: str, rows: Sequence[Sequence[object]]) -> list[Row]:
        """:meth:`values` of each of ``rows``, the same rows out, made faster: with only built-in rules, the texts
        of the whole batch are tested joined first, and only the parts where a rule matches are redacted row by
        row (halving the batch until a part is clean or small)."""
        plan = _plan(table)
        if not self.joinable:
            return [self.values(table, r) for r in rows]
        indexes = plan.content + plan.ruled
        if self.redactor.metadata_only and plan.content:
            rows = [tuple(None if i in plan.content else v for i, v in enumerate(r)) for r in rows]
            indexes = plan.ruled
        tail = (self.user, self.host)
        if not indexes:
            return [(*r, *tail) for r in rows]
        dirty: set[int] = set()
        self._dirty(rows, _picker(indexes), 0, len(rows), dirty)
        return [self.values(table, r) if n in dirty else (*r, *tail) for n, r in enumerate(rows)]

    def _dirty(self, rows: Sequence[Sequence[object]], pick: Callable[[Sequence[object]], Sequence[object]],
               start: int, end: int, found: set[int]) -> None:
        """Add to ``found`` the rows in ``start:end`` whose texts a rule may change."""
        # Every text of the part joined with NULs (a built-in rule matches no NUL and sees it as a string's end);
        # a value that is not a string is tested as its text (more conservative, never less).
        joined = "\0".join(map(str, filter(None, itertools.chain.from_iterable(map(pick, rows[start:end])))))
        if self.rules.text(joined) == joined:
            return
        if end - start <= 8:
            found.update(range(start, end))
            return
        middle = (start + end) // 2
        self._dirty(rows, pick, start, middle, found)
        self._dirty(rows, pick, middle, end, found)

    def _redact(self, out: list[object], indexes: tuple[int, ...]) -> None:
        rules = self.rules
        if self.joinable:  # the common case: nothing to redact, found with one pass over the row's texts
            joined = "\0".join(value for i in indexes if isinstance(value := out[i], str))
            if rules.text(joined) == joined:
                return
        for i in indexes:
            if isinstance(value := out[i], str):
                out[i] = rules.text(value)

    def row(self, table: str, values: Mapping[str, object]) -> Row:
        """The team table's row from a local row by column name (:meth:`values`)."""
        return self.values(table, [values[name] for name in _plan(table).columns])

    def result_row(self, values: Mapping[str, object]) -> Row:
        """An eval result's row: its observation and gradings redacted as the eval store redacts them."""
        observation, gradings = redacted_result(str(values["observation"]), str(values["gradings"]), self.redactor)
        return self.row("eval_results", {**values, "observation": observation, "gradings": gradings})


def _picker(indexes: tuple[int, ...]) -> Callable[[Sequence[object]], Sequence[object]]:
    """The values at ``indexes`` of a row, always as a tuple."""
    if len(indexes) == 1:
        (index,) = indexes
        return lambda row: (row[index],)
    pick: Callable[[Sequence[object]], Sequence[object]] = operator.itemgetter(*indexes)
    return pick


_CALLS = ", ".join(f"c.{name}" for name in local_columns("calls"))
_PAYLOADS = ", ".join(f"p.{name}" for name in local_columns("payloads"))


def trace_batches(conn: sqlite3.Connection, after: int, since: float | None,
                  batch: int) -> Iterator[tuple[int, list[Row], list[Row], list[Row]]]:
    """The calls written after payload rowid ``after`` (and started at ``since`` or later), in write order, ``batch``
    at a time: (the last rowid, the calls, their payloads, their tags), each row in :func:`local_columns` order."""
    calls_n = len(local_columns("calls"))
    while True:
        cur = conn.cursor()
        cur.row_factory = None  # plain tuples
        rows = cur.execute(
            f"SELECT {_CALLS}, {_PAYLOADS}, p.rowid FROM payloads p JOIN calls c ON c.id = p.call_id "
            "WHERE p.rowid > ? AND (? IS NULL OR c.ts >= ?) ORDER BY p.rowid LIMIT ?",
            (after, since, since, batch)).fetchall()
        if not rows:
            return
        ids = [r[0] for r in rows]
        tags = cur.execute(f"SELECT call_id, tag FROM call_tags WHERE call_id IN ({','.join('?' * len(ids))})",
                           ids).fetchall()
        after = int(rows[-1][-1])
        yield after, [r[:calls_n] for r in rows], [r[calls_n:-1] for r in rows], tags
        if len(rows) < batch:
            return


def prompt_versions(workspace: Path | None) -> Iterator[tuple[str, str, int, str, str]]:
    """(name, hash, number, created, text) of every saved version in the workspace's prompt store."""
    from workbench.core.prompts.versions import get_version_text, versions

    if workspace is None or not (root := workspace / ".workbench" / "prompts").is_dir():
        return
    for folder in sorted(p for p in root.iterdir() if (p / "index.json").is_file()):
        for version in versions(workspace, folder.name):
            yield (version.name, version.hash, version.number, version.created,
                   get_version_text(workspace, version.name, version.number))
