"""How long each cell of a run may take: promptfoo's ``evaluateOptions.timeoutMs`` (per cell) and
``maxEvalTimeMs`` (the whole run), with the errors promptfoo records for a cell either one ends; and the pace
its ``delay`` sets."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from workbench.core.evals.model import RunLimits


def paced(limits: RunLimits, concurrency: int) -> int:
    """The cells a run of ``limits`` runs at once: one with promptfoo's ``delay`` (whatever was asked, as in
    promptfoo), else ``concurrency``."""
    return 1 if limits.delay_ms else concurrency


def timed_out(timeout_ms: int) -> str:
    """promptfoo's error for a cell that ran past ``timeoutMs``."""
    return f"Evaluation timed out after {timeout_ms}ms"


def over_max_duration(max_eval_time_ms: int) -> str:
    """promptfoo's error for a cell not done when the run reached ``maxEvalTimeMs``."""
    return f"Evaluation exceeded max duration of {max_eval_time_ms}ms"


@dataclass(frozen=True, slots=True)
class CellLimit:
    """The time a cell starting now may take (None: no limit) and the error it ends with past that."""

    seconds: float | None
    error: str = ""


class RunClock:
    """Started with the run: :meth:`limit` is the time the next cell has, the nearer of ``timeoutMs`` and what is
    left of ``maxEvalTimeMs``."""

    def __init__(self, limits: RunLimits, now: Callable[[], float] = time.monotonic) -> None:
        self.limits, self._now = limits, now
        budget = limits.max_eval_time_ms
        self._deadline = now() + budget / 1000 if budget else None

    def limit(self) -> CellLimit:
        timeout = self.limits.timeout_ms
        own = CellLimit(timeout / 1000, timed_out(timeout)) if timeout else CellLimit(None)
        if self._deadline is None or not self.limits.max_eval_time_ms:
            return own
        left = max(0.0, self._deadline - self._now())
        if own.seconds is not None and own.seconds < left:
            return own
        return CellLimit(left, over_max_duration(self.limits.max_eval_time_ms))
