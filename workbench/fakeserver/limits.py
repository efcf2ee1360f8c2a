"""Server-side rate limits: one requests bucket and one tokens bucket shared by every wire.

One server is one account, as with a real provider. Each bucket refills continuously at
``per_minute / 60`` per second up to ``max(1, per_minute / 60 * burst_s)`` and starts full.
A request costs 1 request and ``cost`` tokens (input tokens + the max output tokens it asked for).
It is admitted when both buckets hold enough, and then both are debited; a rejected request debits
nothing and is told how long to wait. A cost above the tokens capacity could never fit: such a
request is admitted once the bucket is full and leaves it in debt (below zero), so big requests are
slowed to the configured rate instead of being refused forever.

Times come from an injectable monotonic ``clock`` (seconds, ``time.monotonic`` by default).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Admission", "BucketState", "LimitState", "Limiter", "RateLimits", "TokenBucket"]

Clock = Callable[[], float]
_EPS = 1e-9  # float slack: waiting exactly the advertised time must be enough


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Requests and tokens per minute (``None``: unlimited); ``burst_s`` seconds of rate fit in a bucket."""

    rpm: float | None = None
    tpm: float | None = None
    burst_s: float = 1.0

    def __post_init__(self) -> None:
        for name, value in (("rpm", self.rpm), ("tpm", self.tpm), ("burst_s", self.burst_s)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
            if value is not None:
                object.__setattr__(self, name, float(value))

    @property
    def enabled(self) -> bool:
        return self.rpm is not None or self.tpm is not None


class TokenBucket:
    """A continuously refilling bucket; ``level`` may go below zero (debt) after an oversized debit."""

    __slots__ = ("capacity", "level", "per_minute", "rate", "stamp")

    def __init__(self, per_minute: float, burst_s: float, now: float) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self.stamp = now

    def update(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def fill(self, now: float) -> None:
        self.level = self.capacity
        self.stamp = now

    def wait(self, amount: float) -> float:
        """Seconds until ``amount`` (at most the capacity) is available; 0 when it is now."""
        missing = min(amount, self.capacity) - self.level
        return 0.0 if missing <= _EPS else missing / self.rate

    def reset_s(self) -> float:
        """Seconds until the bucket is full again."""
        return max(0.0, (self.capacity - self.level) / self.rate)

    def state(self) -> BucketState:
        return BucketState(self.per_minute, self.capacity, self.level, self.reset_s())


@dataclass(frozen=True, slots=True)
class BucketState:
    limit: float  # per minute, as providers report their limits
    capacity: float
    level: float
    reset_s: float  # until full again

    @property
    def limit_text(self) -> str:
        """The per-minute limit for a header: an integer when it is one."""
        return str(int(self.limit)) if self.limit.is_integer() else str(self.limit)

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.level + _EPS))

    def as_json(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "capacity": self.capacity,
            "level": round(self.level, 6),
            "remaining": self.remaining,
            "reset_s": round(self.reset_s, 6),
        }


@dataclass(frozen=True, slots=True)
class LimitState:
    """Both buckets at one instant (``None``: that limit is not configured); what rate-limit headers show."""

    requests: BucketState | None = None
    tokens: BucketState | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: bool
    wait_s: float  # 0 when admitted; else seconds until this request would be admitted
    state: LimitState  # after the debit when admitted


class Limiter:
    """The server's two buckets and its admitted / rejected totals."""

    def __init__(self, limits: RateLimits | None = None, clock: Clock = time.monotonic) -> None:
        self.limits = limits or RateLimits()
        self.clock = clock
        now = clock()
        lim = self.limits
        self.requests = None if lim.rpm is None else TokenBucket(lim.rpm, lim.burst_s, now)
        self.tokens = None if lim.tpm is None else TokenBucket(lim.tpm, lim.burst_s, now)
        self._buckets = [b for b in (self.requests, self.tokens) if b is not None]
        self.admitted = 0
        self.rejected = 0

    def _update(self) -> None:
        now = self.clock()
        for bucket in self._buckets:
            bucket.update(now)

    def state(self) -> LimitState:
        self._update()
        return LimitState(
            None if self.requests is None else self.requests.state(),
            None if self.tokens is None else self.tokens.state(),
        )

    def admit(self, cost_tokens: int) -> Admission:
        """Admit (and debit) one request costing ``cost_tokens``, or say how long it must wait."""
        self._update()
        wait = 0.0
        if self.requests is not None:
            wait = self.requests.wait(1)
        if self.tokens is not None:
            wait = max(wait, self.tokens.wait(cost_tokens))
        if wait > 0:
            self.rejected += 1
            return Admission(False, wait, self.state())
        if self.requests is not None:
            self.requests.level -= 1
        if self.tokens is not None:
            self.tokens.level -= cost_tokens
        self.admitted += 1
        return Admission(True, 0.0, self.state())

    def reset(self) -> None:
        """Refill both buckets and zero the totals."""
        now = self.clock()
        for bucket in self._buckets:
            bucket.fill(now)
        self.admitted = self.rejected = 0

    def as_json(self) -> dict[str, Any]:
        state = self.state()
        return {
            "rpm": self.limits.rpm,
            "tpm": self.limits.tpm,
            "burst_s": self.limits.burst_s,
            "requests": None if state.requests is None else state.requests.as_json(),
            "tokens": None if state.tokens is None else state.tokens.as_json(),
            "admitted": self.admitted,
            "rejected": self.rejected,
        }
