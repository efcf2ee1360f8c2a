"""``min-cache-hit-ratio``: a run-level gate on each target's prompt-cache hit ratio.

A target's ratio is the input tokens its provider read from the prompt cache ÷ all its input tokens, over the
run's answered cells of that target (a failed call counts in neither). A cell whose provider did not say how many
tokens it read from the cache counts as reading none; a target for which no cell said fails, its ratio unknown.
Below the floor, the run fails with one reason per target, as a pass rate under the gate does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from workbench.core.evals.diff import percent
from workbench.core.evals.model import CellSummary


@dataclass(slots=True)
class CacheHits:
    """A target's cache reads and input tokens over a run's answered cells."""

    read_tokens: int = 0
    input_tokens: int = 0
    reported: bool = False
    """Did any cell's provider say how many input tokens it read from the cache."""

    @property
    def ratio(self) -> float | None:
        if not self.reported:
            return None
        return self.read_tokens / self.input_tokens if self.input_tokens else 0.0


def cache_hits(cells: Iterable[CellSummary]) -> dict[str, CacheHits]:
    """Each target's :class:`CacheHits`, by its label, in the order the run has them."""
    hits: dict[str, CacheHits] = {}
    for cell in cells:
        for result in cell.results:
            obs = result.observation
            if obs.error is not None or obs.input_tokens is None:
                continue
            target = hits.setdefault(result.key.target, CacheHits())
            target.input_tokens += obs.input_tokens
            if obs.cache_read_tokens is not None:
                target.read_tokens += obs.cache_read_tokens
                target.reported = True
    return hits


def cache_failures(cells: Iterable[CellSummary], floor: float | None) -> list[str]:
    """Why the run fails ``min-cache-hit-ratio: floor`` (one reason per target short of it; none without a floor)."""
    if floor is None:
        return []
    reasons = []
    for target, hits in cache_hits(cells).items():
        ratio = hits.ratio
        if ratio is None:
            reasons.append(f"target {target!r}: cache hit ratio unknown (its provider reported no cache reads), "
                           f"under the minimum of {percent(floor)}")
        elif ratio < floor:
            reasons.append(f"target {target!r}: cache hit ratio {percent(ratio)} ({hits.read_tokens} of "
                           f"{hits.input_tokens} input tokens read from the cache) is under the minimum of "
                           f"{percent(floor)}")
    return reasons
