"""Filters on the trace log: what the faces narrow ``page``, ``search``, ``stats`` and ``export`` to.

A :class:`Filters` turns into one SQL condition on ``calls`` (aliased ``c``); a time range also bounds
the time-sortable primary key, so it is an index range rather than a scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.core.traces.ids import time_prefix


@dataclass(frozen=True, slots=True)
class Filters:
    provider: str | None = None
    model: str | None = None
    status: str | None = None
    prompt: str | None = None
    prompt_version: int | None = None
    tag: str | None = None
    session: str | None = None
    eval_run: str | None = None
    since: float | None = None
    until: float | None = None
    min_cost: float | None = None
    min_latency_ms: float | None = None

    def where(self, alias: str = "c") -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        conditions: tuple[tuple[str, str, object], ...] = (
            ("provider", "=", self.provider), ("target", "=", self.model), ("status", "=", self.status),
            ("prompt_name", "=", self.prompt), ("prompt_version", "=", self.prompt_version),
            ("session_id", "=", self.session), ("eval_run_id", "=", self.eval_run), ("ts", ">=", self.since),
            ("ts", "<", self.until), ("cost_usd", ">=", self.min_cost), ("latency_ms", ">=", self.min_latency_ms))
        for column, op, value in conditions:
            if value is not None:
                clauses.append(f"{alias}.{column} {op} ?")
                args.append(value)
        if self.since is not None:  # the id starts with the call's start time: a range on the primary key
            clauses.append(f"{alias}.id >= ?")
            args.append(id_bound(self.since - ID_SLACK_S))
        if self.until is not None:
            clauses.append(f"{alias}.id < ?")
            args.append(id_bound(self.until + 0.002))
        if self.tag is not None:
            clauses.append(f"{alias}.id IN (SELECT call_id FROM call_tags WHERE tag = ?)")
            args.append(self.tag)
        return (" AND ".join(clauses) or "1"), args


NO_FILTERS = Filters()
"""Every call (the default of every query)."""

ID_SLACK_S = 0.001
"""A row's id is made from its ``ts`` (to the millisecond), so ``ts >= since`` implies
``id >= id_bound(since - ID_SLACK_S)``."""


def id_bound(ts: float) -> str:
    """The smallest id of the millisecond ``ts`` falls in (ids sort by time: ULIDs)."""
    return time_prefix(ts)
