"""A load test's figures as its calls end: what the live view shows and the report is made of.

Every call is counted from its settled :class:`CallRecord`, as the trace log stores it, so the report agrees with
the trace log: TTFT and latency are what the caller waited (``total_ttft_ms``, ``total_ms``: rate-limit queueing,
retries and ``Retry-After`` waits included), over the calls that ended ok, with the trace log's own percentiles
(:func:`~workbench.core.traces.stats.exact_quantile`); 429s are the attempts answered 429 (``attempts_json``), errors
are the failed calls by ``error_class``; spend is the sum of the calls' cost.

Schedule lateness (open loop only) is when a call actually started minus when it was due: the generator's own
error, not the provider's.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from workbench.core.call_record import CallRecord
from workbench.core.traces.stats import exact_quantile

PERCENTILES = (0.5, 0.95, 0.99)
_RECENT_S = 5
"""The window of the live view's current rate, in seconds."""
LIVE_WINDOW_S = 10
"""The live view's percentiles are over the calls that ended (or started, for lateness) in the last this many
seconds: what the provider does now, at a cost that does not grow with the run (the report's are the whole run's)."""


@dataclass(frozen=True, slots=True)
class Finished:
    """One call as the report counts it (times in seconds from the run's start)."""

    target: str
    started_s: float
    ended_s: float
    status: str
    error_class: str | None
    ttft_ms: float | None
    latency_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    rate_limited: int
    """Attempts answered 429."""
    retries: int
    fell_back: bool
    """Served by a fallback (or a hedge's backup) rather than the target asked."""
    queued: bool
    """Waited in the client-side rate limiter (the policy's ``rate_limit``)."""


def finished_from(record: CallRecord, origin: float, started: float, ended: float) -> Finished:
    """``record`` (settled) as the report counts it; ``origin``, ``started``, ``ended``: monotonic seconds."""
    usage = record.usage
    return Finished(
        target=record.target, started_s=started - origin, ended_s=ended - origin, status=record.status,
        error_class=None if record.error is None else record.error.error_class,
        ttft_ms=record.total_ttft_ms, latency_ms=record.total_ms,
        input_tokens=None if usage is None else usage.input_tokens,
        output_tokens=None if usage is None else usage.output_tokens,
        cost_usd=None if record.cost_usd is None else float(record.cost_usd),
        rate_limited=sum(1 for a in record.attempts if a.status == 429),
        retries=sum(1 for a in record.attempts if a.kind == "retry"),
        fell_back=record.served_by is not None and record.served_by != record.target,
        queued=any(a.wait_reason == "rate limit" for a in record.attempts))


def percentiles(values: list[float]) -> dict[str, float | None]:
    """``p50``, ``p95``, ``p99`` of ``values`` (sorted or not), as the trace log's exact figures."""
    ordered = sorted(values)
    return {f"p{round(q * 100)}": exact_quantile(ordered, q) for q in PERCENTILES}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The live view's figures at one moment."""

    elapsed_s: float
    sent: int
    done: int
    in_flight: int
    rate: float
    """Calls started a second, over the last few seconds."""
    ttft_ms: dict[str, float | None]
    latency_ms: dict[str, float | None]
    """Over the calls that ended ok in the last :data:`LIVE_WINDOW_S` (so is ``lateness_ms``, over the calls
    started then); the counts and rates below are the whole run's."""
    tokens_per_s: float
    rate_limited: int
    errors: dict[str, int]
    spend_usd: float
    lateness_ms: dict[str, float | None]


@dataclass
class LoadStats:
    """Counters and samples of one run; times are monotonic seconds (``time.monotonic``, the loop's clock)."""

    origin: float = field(default_factory=time.monotonic)
    calls: list[Finished] = field(default_factory=list)
    lateness_ms: list[float] = field(default_factory=list)
    late_at: list[float] = field(default_factory=list)
    """When each call of ``lateness_ms`` started (monotonic seconds)."""
    sent: int = 0
    spend_usd: float = 0.0
    first_sent: float | None = None
    last_sent: float | None = None
    output_tokens: int = 0
    rate_limited: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    """Failed calls by kind (these three: as of the last snapshot)."""
    _recent: deque[float] = field(default_factory=deque)
    _counted: int = 0

    def started(self, now: float, lateness_s: float | None = None) -> None:
        """A call started at ``now`` (``lateness_s`` after it was due, on an open loop)."""
        self.sent += 1
        if self.first_sent is None:
            self.first_sent = now
        self.last_sent = now
        self._recent.append(now)
        if lateness_s is not None:
            self.lateness_ms.append(max(0.0, lateness_s) * 1000)
            self.late_at.append(now)

    def ended(self, record: CallRecord, started: float, now: float) -> Finished:
        """A settled call ended at ``now`` (it started at ``started``)."""
        call = finished_from(record, self.origin, started, now)
        self.calls.append(call)
        if call.cost_usd is not None:
            self.spend_usd += call.cost_usd
        return call

    def snapshot(self, now: float | None = None) -> Snapshot:
        now = time.monotonic() if now is None else now
        while self._recent and self._recent[0] < now - _RECENT_S:
            self._recent.popleft()
        window = min(_RECENT_S, max(1e-9, now - (self.first_sent or now)))
        since = now - self.origin - LIVE_WINDOW_S
        recent = list(itertools.takewhile(lambda c: c.ended_s >= since, reversed(self.calls)))
        ok = [c for c in recent if c.status == "ok"]
        late = len(list(itertools.takewhile(lambda at: at >= now - LIVE_WINDOW_S, reversed(self.late_at))))
        elapsed = now - self.origin
        self.output_tokens += sum(c.output_tokens or 0 for c in self.calls[self._counted:])
        self.rate_limited += sum(c.rate_limited for c in self.calls[self._counted:])
        for c in self.calls[self._counted:]:
            if c.status != "ok":
                self.errors[c.error_class or "error"] += 1
        self._counted = len(self.calls)
        return Snapshot(
            elapsed_s=elapsed, sent=self.sent, done=len(self.calls), in_flight=self.sent - len(self.calls),
            rate=len(self._recent) / window if self._recent else 0.0,
            ttft_ms=percentiles([c.ttft_ms for c in ok if c.ttft_ms is not None]),
            latency_ms=percentiles([c.latency_ms for c in ok if c.latency_ms is not None]),
            tokens_per_s=self.output_tokens / elapsed if elapsed > 0 else 0.0, rate_limited=self.rate_limited,
            errors=dict(self.errors.most_common()), spend_usd=self.spend_usd,
            lateness_ms=percentiles(self.lateness_ms[len(self.lateness_ms) - late:]))
