"""Per-cell statistics: pass counts over repeats with a Wilson score interval, mean score, median latency, cost."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping

from workbench.core.evals.model import CellKey, CellResult, CellSummary


def wilson(passes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a pass rate of ``passes`` out of ``n`` (95% with the default ``z``).

    Unlike the normal approximation it stays inside [0, 1] and is not degenerate at 0/n or n/n, which is
    what small repeat counts produce. With no runs nothing is known: (0, 1).
    """
    if n <= 0:
        return (0.0, 1.0)
    p = passes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarise(results: Iterable[CellResult], descriptions: Mapping[str, str]) -> list[CellSummary]:
    """One summary per cell, in the order cells are first seen; ``descriptions`` maps test keys to text.

    The score is the mean over runs, the latency the median of the runs that measured one, the cost the
    sum of the known costs (None when no run knows its cost).
    """
    groups: dict[CellKey, list[CellResult]] = {}
    for result in results:
        groups.setdefault(result.key, []).append(result)
    return [_summary(key, runs, descriptions.get(key.test, "")) for key, runs in groups.items()]


def _summary(key: CellKey, runs: list[CellResult], description: str) -> CellSummary:
    passes = sum(r.passed for r in runs)
    latencies = [r.observation.latency_ms for r in runs if r.observation.latency_ms is not None]
    return CellSummary(
        key=key,
        description=description,
        runs=len(runs),
        passes=passes,
        interval=wilson(passes, len(runs)),
        score=statistics.fmean(r.score for r in runs),
        latency_ms=statistics.median(latencies) if latencies else None,
        cost_usd=total_cost(r.observation.cost_usd for r in runs),
        results=runs,
    )


def total_cost(costs: Iterable[float | None]) -> float | None:
    """The sum of the known costs; None when none is known."""
    known = [cost for cost in costs if cost is not None]
    return math.fsum(known) if known else None
