"""What a load test sends: real requests, each to each target, in a plan the generator goes round.

- ``--from-traces FILTER``: the requests of the traced calls the filter matches (oldest first, at most
  :data:`MAX_TRACED` of them), read back as a replay reads a call
  (:func:`~workbench.core.traces.replay.traced_request`); calls traced without their text are skipped,
  and so are the load tests' own calls (tag ``load``).
- ``--suite SUITE``: an eval suite's rendered requests, one per test × prompt (its cells for each target,
  with promptfoo's prompt and provider filters), as the eval runner renders them.
- ``--prompt NAME``: a prompt file (or ``NAME@VERSION``) rendered with its variables.

:func:`peak_per_minute` measures the rate ``--times K`` multiplies: the most calls the trace log holds in one
calendar minute among those a filter matches (load tests' calls left out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from workbench.core.errors import ConfigError
from workbench.core.load.generator import LOAD_TAG, Planned
from workbench.core.traces.filters import Filters
from workbench.core.traces.replay import traced_request
from workbench.core.traces.store import TraceStore

MAX_TRACED = 10_000
"""The most traced requests a plan holds (the oldest that match)."""


def _where(filters: Filters) -> tuple[str, list[object]]:
    """The filters' condition, load tests' own calls left out."""
    where, args = filters.where()
    return f"{where} AND c.id NOT IN (SELECT call_id FROM call_tags WHERE tag = ?)", [*args, LOAD_TAG]


def from_traces(store: TraceStore, filters: Filters, targets: Sequence[str], limit: int = MAX_TRACED) -> list[Planned]:
    """Each traced request ``filters`` match (with its text), to each of ``targets``; a :class:`ConfigError` when
    none does."""
    where, args = _where(filters)
    rows = store.conn.execute(
        f"SELECT c.id, c.prompt_name, c.prompt_version, p.request_json FROM calls c JOIN payloads p ON "
        f"p.call_id = c.id WHERE {where} AND p.request_json IS NOT NULL ORDER BY c.id LIMIT ?", [*args, limit])
    plan = [Planned(target, traced_request(row["id"], row["request_json"], "replay"), row["prompt_name"],
                    row["prompt_version"])
            for row in rows for target in targets]
    if not plan:
        raise ConfigError("no traced call with its text matches the filter",
                          "widen it (see `workbench traces list` with the same filters), or trace calls with their "
                          "text")
    return plan


def peak_per_minute(store: TraceStore, filters: Filters) -> int:
    """The most calls ``filters`` match in one calendar minute of the trace log (0 when none)."""
    where, args = _where(filters)
    row = store.conn.execute(f"SELECT count(*) FROM calls c WHERE {where} GROUP BY CAST(c.ts / 60 AS INTEGER) "
                             f"ORDER BY 1 DESC LIMIT 1", args).fetchone()
    return 0 if row is None else int(row[0])


def from_suite(path: Path, workspace: Path, targets: Sequence[str], variables: Mapping[str, str]) -> list[Planned]:
    """An eval suite's rendered requests (each test × prompt its filters run on a target), to each of ``targets``."""
    from workbench.core.evals.model import SuiteTarget
    from workbench.core.evals.runner import cells
    from workbench.core.evals.suite import load_suite

    suite = load_suite(path, workspace, targets_given=True, variables=variables)
    chosen = tuple(SuiteTarget(target, target) for target in targets)
    plan = [Planned(cell.target.ref, cell.request(), cell.prompt.prompt.name if cell.prompt.version is not None
                    else None, cell.prompt.version)
            for cell in cells(suite, 1, chosen)]
    if not plan:
        raise ConfigError(f"{path}: no test of the suite runs on these targets", "check the suite's tests and filters")
    return plan


def from_prompt(workspace: Path, ref: str, targets: Sequence[str], variables: Mapping[str, str]) -> list[Planned]:
    """A prompt file (``NAME``, ``NAME@VERSION`` or ``NAME@LABEL``) rendered with ``variables`` over its defaults, to
    each of ``targets``."""
    from workbench.core.prompts import pin, prompts_folder, to_request

    prompt, version = pin(workspace, ref)
    request = to_request(prompt, variables, folder=prompts_folder(workspace))
    return [Planned(target, request, prompt.name, version.number) for target in targets]
