"""A real circuit breaker per endpoint (provider + base URL + model).

closed → open after N consecutive failures, or a failure rate over a minimum number of calls in a
sliding window → while open, calls fail fast with no network call → after ``open_s`` the breaker is
half-open and lets exactly one probe through → the probe's success closes it, its failure reopens it.
Only failures that say something about the endpoint's health count (5xx, 429/529, timeouts,
connection and protocol errors); a 400 or 401 is the caller's problem, not the endpoint's.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from workbench.core.policy import BreakerPolicy
from workbench.core.resilience.clock import Clock

TRANSIENT_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
"""HTTP statuses that say the endpoint is struggling (retried, and counted by the breaker)."""
_UNHEALTHY_CLASSES = frozenset({"connection", "timeout", "protocol", "malformed", "truncated", "stream_error",
                                "overrun"})


def unhealthy(error_class: str) -> bool:
    """Does a failure of this class (``WorkbenchError.error_class``) count against an endpoint's health?"""
    if error_class.startswith("http_"):
        return error_class[5:].isdigit() and int(error_class[5:]) in TRANSIENT_STATUSES
    return error_class in _UNHEALTHY_CLASSES


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    policy: BreakerPolicy
    clock: Clock
    state: BreakerState = BreakerState.CLOSED
    opened_at: float = 0.0
    consecutive: int = 0
    probe_in_flight: bool = False
    outcomes: deque[tuple[float, bool]] = field(default_factory=deque)

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one probe at a time is allowed."""
        if not self.policy.enabled or self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            if self.clock.now() - self.opened_at < self.policy.open_s:
                return False
            self.state = BreakerState.HALF_OPEN
        if self.probe_in_flight:
            return False
        self.probe_in_flight = True
        return True

    @property
    def retry_in_s(self) -> float:
        """While open: how long until a probe may go out."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(self.policy.open_s - (self.clock.now() - self.opened_at), 0.0)

    def record(self, ok: bool) -> None:
        now = self.clock.now()
        if self.state is BreakerState.HALF_OPEN:
            self.probe_in_flight = False
            if ok:
                self._close()
            else:
                self._open(now)
            return
        self.outcomes.append((now, ok))
        while self.outcomes and now - self.outcomes[0][0] > self.policy.window_s:
            self.outcomes.popleft()
        self.consecutive = 0 if ok else self.consecutive + 1
        if ok or self.state is not BreakerState.CLOSED:
            return
        failures = sum(1 for _, good in self.outcomes if not good)
        calls = len(self.outcomes)
        if self.consecutive >= self.policy.consecutive_failures or (
            calls >= self.policy.min_calls and failures / calls >= self.policy.failure_rate
        ):
            self._open(now)

    def release(self) -> None:
        """A probe that ended without an outcome (cancelled): let another one through."""
        self.probe_in_flight = False

    def _open(self, now: float) -> None:
        self.state, self.opened_at = BreakerState.OPEN, now

    def _close(self) -> None:
        self.state, self.consecutive = BreakerState.CLOSED, 0
        self.outcomes.clear()


class Breakers:
    """One breaker per endpoint key, created on first use."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._breakers: dict[tuple[str, str, str], CircuitBreaker] = {}

    def get(self, key: tuple[str, str, str], policy: BreakerPolicy) -> CircuitBreaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = CircuitBreaker(policy, self.clock)
        return breaker

    def states(self) -> dict[str, str]:
        """``provider/model @ base_url`` → state, for listings."""
        return {f"{p}/{m} @ {url}": b.state.value for (p, url, m), b in self._breakers.items()}


class _ReplayClock:
    """A clock set by hand: the breaker replays past outcomes at their own times."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:  # never used by a breaker
        self.t += seconds


def replay_state(outcomes: list[tuple[float, bool]], policy: BreakerPolicy, now: float) -> BreakerState:
    """The state a breaker would be in at ``now`` after these (time, ok) outcomes, oldest first.

    Lets a one-shot process (``workbench models``) show an endpoint's circuit from the trace log."""
    clock = _ReplayClock()
    breaker = CircuitBreaker(policy, clock)
    for at, ok in outcomes:
        clock.t = at
        if breaker.allow():
            breaker.record(ok)
    clock.t = now
    if breaker.state is BreakerState.OPEN and breaker.retry_in_s == 0:
        return BreakerState.HALF_OPEN
    return breaker.state
