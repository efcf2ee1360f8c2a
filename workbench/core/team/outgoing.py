"""What leaves the machine: the local rows a push sends, read in batches and redacted first.

Every text passes the settings' redactor again at push time (the local stores were redacted with the rules of the
day they were written, and a stricter configuration now applies to what is shared), with the ``api_key`` rule
always on, whatever ``[traces] redact`` says: no key ever reaches the team store. In metadata-only mode no content
leaves at all: prompts, replies, reasoning, tool arguments, errors and prompt versions' text are ``NULL`` (or
``[metadata only]`` where the local schema keeps a string), counts and timings are sent.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench.core.evals.model import Grading, Observation
from workbench.core.evals.redaction import stored_grading, stored_observation
from workbench.core.team import tables
from workbench.core.traces.redact import Redactor

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
_UNTOUCHED = frozenset({"id", "call_id", "run_id", "hash", "suite_digest", "team_user", "team_host", "ts"})


def redacted_result(observation: str, gradings: str, redactor: Redactor) -> tuple[str, str]:
    """An eval result's observation and gradings (JSON, as the eval store keeps them) passed through ``redactor``
    again, as the eval store redacts them (:mod:`workbench.core.evals.redaction`)."""
    kept = stored_observation(Observation(**json.loads(observation)), redactor)
    return (json.dumps(asdict(kept), ensure_ascii=False, default=str),
            json.dumps([asdict(stored_grading(Grading(**g), redactor)) for g in json.loads(gradings)],
                       ensure_ascii=False))


def sync_redactor(configured: Redactor) -> Redactor:
    """``configured`` with the ``api_key`` rule added when it lacks it (first, as the built-in order has it)."""
    if any(name == "api_key" for name, _ in configured.rules):
        return configured
    keys = Redactor.build(("api_key",))
    return Redactor(keys.rules + configured.rules, configured.metadata_only)


@dataclass(frozen=True)
class Outgoing:
    """How rows are made ready to leave: the redactor, and who pushes them from where."""

    redactor: Redactor
    user: str
    host: str

    def row(self, table: str, values: sqlite3.Row | dict[str, object]) -> Row:
        """The team table's row (its :func:`tables.columns` order) from a local row, redacted and attributed."""
        rules = Redactor(self.redactor.rules)  # the rules without metadata-only: for the non-content columns
        content = CONTENT.get(table, frozenset())
        out: list[object] = []
        for name in tables.columns(table):
            if name == "team_user":
                out.append(self.user)
                continue
            if name == "team_host":
                out.append(self.host)
                continue
            value = values[name]
            if isinstance(value, str) and name not in _UNTOUCHED:
                value = self.redactor.text(value) if name in content else rules.text(value)
            out.append(value)
        return tuple(out)

    def result_row(self, values: sqlite3.Row) -> Row:
        """An eval result's row: its observation and gradings redacted as the eval store redacts them."""
        observation, gradings = redacted_result(values["observation"], values["gradings"], self.redactor)
        rules = Redactor(self.redactor.rules)
        fields = {**dict(values), "observation": observation, "gradings": gradings,
                  "description": rules.text(values["description"]) or ""}
        return self.row("eval_results", {**fields, "team_user": self.user, "team_host": self.host})


def trace_batches(conn: sqlite3.Connection, after: int, since: float | None,
                  batch: int) -> Iterator[tuple[int, list[sqlite3.Row], list[sqlite3.Row]]]:
    """The calls written after payload rowid ``after`` (and started at ``since`` or later), in write order, ``batch``
    at a time: (the last rowid, each call joined with its payload, their tags)."""
    while True:
        rows = conn.execute(
            "SELECT p.rowid AS _rowid, c.*, p.* FROM payloads p JOIN calls c ON c.id = p.call_id "
            "WHERE p.rowid > ? AND (? IS NULL OR c.ts >= ?) ORDER BY p.rowid LIMIT ?",
            (after, since, since, batch)).fetchall()
        if not rows:
            return
        ids = [r["id"] for r in rows]
        marks = ",".join("?" * len(ids))
        tags = conn.execute(f"SELECT call_id, tag FROM call_tags WHERE call_id IN ({marks})", ids).fetchall()
        after = int(rows[-1]["_rowid"])
        yield after, rows, tags
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
