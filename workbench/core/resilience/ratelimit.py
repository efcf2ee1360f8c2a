"""Client-side rate limits per provider endpoint: requests/min and tokens/min buckets plus a concurrency cap.

Buckets refill continuously; a call waits (in FIFO order) until both have room for it, its token cost
estimated before sending. The limiter adapts: a 429 halves the effective rate and pauses until the
provider's ``Retry-After``; successes restore the rate step by step. It also reads the providers'
rate-limit headers (``x-ratelimit-remaining-*``/``x-ratelimit-reset-*``, ``anthropic-ratelimit-*``) and
pauses until the reset once fewer than ``headroom`` of the limit remain, before a 429 happens.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import datetime

from workbench.core.policy import RateLimitPolicy
from workbench.core.resilience.clock import Clock

_MIN_FACTOR = 0.1
_RECOVERY_STEP = 0.05
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset(value: str, now_epoch: float) -> float | None:
    """Seconds until a reset given as OpenAI's ``6m0s``/``120ms``, plain seconds, or an RFC 3339 time."""
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if parts and "".join(n + u for n, u in parts) == value:
        return sum(float(n) * _UNIT_S[u] for n, u in parts)
    try:
        return max(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - now_epoch, 0.0)
    except ValueError:
        return None


class _Bucket:
    def __init__(self, per_minute: float, burst_s: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float, factor: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate * factor)
        self.stamp = now

    def wait_for(self, cost: float, factor: float) -> float:
        """Seconds until ``cost`` fits (a cost above capacity waits for a full bucket)."""
        need = min(cost, self.capacity) - self.level
        return 0.0 if need <= 0 else need / (self.rate * factor)


class RateLimiter:
    def __init__(self, policy: RateLimitPolicy, clock: Clock) -> None:
        self.policy = policy
        self.clock = clock
        now = clock.now()
        self._requests = _Bucket(policy.rpm, policy.burst_s, now) if policy.rpm else None
        self._tokens = _Bucket(policy.tpm, policy.burst_s, now) if policy.tpm else None
        self._slots = asyncio.Semaphore(policy.concurrency) if policy.concurrency else None
        self._turn = asyncio.Lock()  # FIFO: a big request is not starved by small ones
        self.factor = 1.0
        self.paused_until = 0.0

    async def acquire(self, tokens: int) -> None:
        """Wait until a call costing ``tokens`` may go out; then hold a concurrency slot."""
        async with self._turn:
            while True:
                now = self.clock.now()
                wait = max(self.paused_until - now, 0.0)
                for bucket, cost in ((self._requests, 1), (self._tokens, tokens)):
                    if bucket is not None:
                        bucket.refill(now, self.factor)
                        wait = max(wait, bucket.wait_for(cost, self.factor))
                if wait <= 0:
                    break
                await self.clock.sleep(wait)
            if self._requests is not None:
                self._requests.level -= 1
            if self._tokens is not None:
                self._tokens.level -= tokens
        if self._slots is not None:
            await self._slots.acquire()

    def release(self) -> None:
        if self._slots is not None:
            self._slots.release()

    def on_rate_limited(self, retry_after_s: float | None) -> None:
        """A 429: halve the effective rate and pause until the provider says."""
        self.factor = max(self.factor / 2, _MIN_FACTOR)
        if retry_after_s:
            self.paused_until = max(self.paused_until, self.clock.now() + retry_after_s)

    def on_success(self) -> None:
        self.factor = min(1.0, self.factor + _RECOVERY_STEP)

    def on_headers(self, headers: Mapping[str, str], epoch_now: float) -> None:
        """Pause until the reset when the provider's remaining requests or tokens run low."""
        for kind in ("requests", "tokens"):
            limit = _first(headers, f"x-ratelimit-limit-{kind}", f"anthropic-ratelimit-{kind}-limit")
            remaining = _first(headers, f"x-ratelimit-remaining-{kind}", f"anthropic-ratelimit-{kind}-remaining")
            reset = _first(headers, f"x-ratelimit-reset-{kind}", f"anthropic-ratelimit-{kind}-reset")
            if limit is None or remaining is None or reset is None:
                continue
            try:
                low = float(remaining) <= float(limit) * self.policy.headroom
            except ValueError:
                continue
            seconds = parse_reset(reset, epoch_now)
            if low and seconds:
                self.paused_until = max(self.paused_until, self.clock.now() + seconds)


def _first(headers: Mapping[str, str], *names: str) -> str | None:
    return next((headers[n] for n in names if n in headers), None)


class RateLimiters:
    """One limiter per provider endpoint (provider + base URL), created on first use."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._limiters: dict[tuple[str, str], RateLimiter] = {}

    def get(self, key: tuple[str, str], policy: RateLimitPolicy) -> RateLimiter | None:
        if policy.rpm is None and policy.tpm is None and policy.concurrency is None:
            return None
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = RateLimiter(policy, self.clock)
        return limiter
