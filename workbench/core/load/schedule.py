"""When each request of a load test is due.

Open loop (``--rate``): arrivals on a fixed schedule, whatever the replies do, so a slow provider cannot hide
its queueing by slowing the sender down (the coordinated omission of closed-loop tools). The schedule is
deterministic (evenly spaced, not Poisson): the ``k``-th arrival is due when the integral of the rate reaches
``k``. With a ramp the rate rises linearly from 0 to ``rate`` over ``ramp_s``, then stays; the ramp is part of
``duration_s``.

Closed loop (``--concurrency N``) has no schedule: N workers each send their next request when their previous
reply ended, so the rate is whatever the provider allows (:class:`ClosedLoop`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OpenLoop:
    """``rate`` arrivals per second for ``duration_s``, reached linearly over the first ``ramp_s``."""

    rate: float
    duration_s: float
    ramp_s: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate must be a finite number > 0, got {self.rate!r}")
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"duration must be a finite number > 0, got {self.duration_s!r}")
        if not (math.isfinite(self.ramp_s) and 0 <= self.ramp_s <= self.duration_s):
            raise ValueError(f"the ramp must last from 0 to the duration ({self.duration_s:g} s), got {self.ramp_s!r}")

    def due(self, k: int) -> float:
        """Seconds from the start at which arrival ``k`` (0-based) is due."""
        rate, ramp = self.rate, self.ramp_s
        ramped = rate * ramp / 2  # arrivals during the ramp
        if ramp > 0 and k < ramped:
            return math.sqrt(2 * k * ramp / rate)
        return ramp + (k - ramped) / rate

    def offsets(self) -> Iterator[float]:
        """Every arrival's due time, in order, while it falls within the duration."""
        k = 0
        while (at := self.due(k)) < self.duration_s:
            yield at
            k += 1

    @property
    def expected(self) -> int:
        """How many arrivals the schedule holds."""
        return sum(1 for _ in self.offsets())

    def describe(self) -> str:
        ramp = f" (ramp {self.ramp_s:g} s)" if self.ramp_s else ""
        return f"open loop: {self.rate:g}/s for {self.duration_s:g} s{ramp}"


@dataclass(frozen=True, slots=True)
class ClosedLoop:
    """``workers`` senders, each waiting for its reply before its next request, for ``duration_s``."""

    workers: int
    duration_s: float

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"concurrency must be 1 or more, got {self.workers!r}")
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"duration must be a finite number > 0, got {self.duration_s!r}")

    def describe(self) -> str:
        return f"closed loop: {self.workers} workers for {self.duration_s:g} s"


Shape = OpenLoop | ClosedLoop
