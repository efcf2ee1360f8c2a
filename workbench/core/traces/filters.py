"""Filters on the trace log: what the faces narrow ``page``, ``search``, ``stats`` and ``export`` to.

A :class:`Filters` turns into one SQL condition on ``calls`` (aliased ``c``); a time range also bounds
the time-sortable primary key, so it is an index range rather than a scan.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from workbench.core.errors import ConfigError
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


_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def moment(text: str, now: float | None = None) -> float:
    """A moment as a user writes one: an ISO date or time (UTC unless it says), or an age (``90s``, ``2h``, ``7d``)
    before ``now``; a :class:`ConfigError` otherwise."""
    match = _AGO.match(text.strip())
    if match:
        return (time.time() if now is None else now) - float(match[1]) * _UNIT_S[match[2]]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"'{text}' is neither a date nor an age",
                          "write 2026-11-01, 2026-11-01T12:00 or 7d") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


_WORDS = {"target": "model", "version": "prompt_version", "prompt-version": "prompt_version", "eval-run": "eval_run",
          "min-cost": "min_cost", "min-latency": "min_latency_ms", "min-latency-ms": "min_latency_ms"}
"""Other names a filter may be written with (the ``traces`` flags' spellings), by field."""
_FIELDS = {f.name for f in fields(Filters)}


def parse_filters(text: str) -> Filters:
    """Filters written as ``key=value`` words (spaces or commas between): ``provider=openai tag=prod since=2h``;
    the keys are :class:`Filters`' fields (``target`` for ``model``, the ``traces`` flags' spellings too), ``all``
    (or nothing) is every call. A :class:`ConfigError` names a word that is none of them."""
    values: dict[str, Any] = {}
    for word in re.split(r"[\s,]+", text.strip()):
        if not word or word == "all":
            continue
        key, sep, value = word.partition("=")
        name = _WORDS.get(key, key.replace("-", "_"))
        if not sep or not value or name not in _FIELDS:
            raise ConfigError(f"trace filter '{word}': expected KEY=VALUE with KEY one of "
                              f"{', '.join(sorted(_FIELDS - {'model'} | {'target'}))}",
                              "e.g. provider=openai tag=prod since=2h")
        try:
            if name in ("since", "until"):
                values[name] = moment(value)
            elif name == "prompt_version":
                values[name] = int(value)
            elif name in ("min_cost", "min_latency_ms"):
                values[name] = float(value)
            else:
                values[name] = value
        except ValueError:
            raise ConfigError(f"trace filter '{word}': {value} is not a number", "e.g. min-cost=0.01") from None
    return Filters(**values)
