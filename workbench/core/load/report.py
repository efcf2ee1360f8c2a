"""A load test's report: the figures of its calls (:mod:`.stats`), per target and per second, ready to render
(:mod:`.report_formats`). Every figure is one the trace log can give again for the run's calls (tag ``load:RUN``)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.core.load.generator import LoadRun, run_tag
from workbench.core.load.schedule import OpenLoop
from workbench.core.load.stats import Finished, percentiles


@dataclass(frozen=True, slots=True)
class Second:
    """One second of the run: calls started and ended in it, and the latency of the calls that ended ok in it."""

    t: int
    started: int
    ok: int
    errors: int
    rate_limited: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None


@dataclass
class LoadReport:
    run_id: str
    tag: str
    started_at: float | None
    targets: list[str]
    source: str
    shape: str
    rate: float | None
    """The schedule's arrival rate (open loop), per second."""
    concurrency: int | None
    """The workers of a closed loop."""
    duration_s: float
    ramp_s: float
    max_cost: float | None
    stop_reason: str | None
    sent: int
    """Calls started (a call cancelled before it was sent is not traced, nor counted below)."""
    calls: int
    ok: int
    errors: dict[str, int]
    rate_limited: int
    """Attempts answered 429."""
    retries: int
    fell_back: int
    queued: int
    achieved_rate: float | None
    """Calls started a second, from the first start to the last."""
    elapsed_s: float
    ttft_ms: dict[str, float | None]
    latency_ms: dict[str, float | None]
    lateness_ms: dict[str, float | None] | None
    """How late the schedule started calls (open loop only): p50, p99, max."""
    input_tokens: int
    output_tokens: int
    tokens_per_s: float | None
    cost_usd: float | None
    unpriced: int
    by_target: list[dict[str, Any]] = field(default_factory=list)
    seconds: list[Second] = field(default_factory=list)
    latency_curve: list[float] = field(default_factory=list)
    """Latency (ms) of the calls that ended ok at each percentile from 1 to 99."""
    ttft_curve: list[float] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "seconds"}
        data["seconds"] = [{"t": s.t, "started": s.started, "ok": s.ok, "errors": s.errors,
                            "rate_limited": s.rate_limited, "latency_p50_ms": s.latency_p50_ms,
                            "latency_p95_ms": s.latency_p95_ms} for s in self.seconds]
        return data


def _curve(values: Sequence[float]) -> list[float]:
    if len(values) < 2:
        return list(values) * 99
    return statistics.quantiles(values, n=100, method="inclusive")


def _group(calls: Sequence[Finished]) -> dict[str, Any]:
    ok = [c for c in calls if c.status == "ok"]
    costs = [c.cost_usd for c in calls if c.cost_usd is not None]
    return {"calls": len(calls), "ok": len(ok), "errors": len(calls) - len(ok),
            "rate_limited": sum(c.rate_limited for c in calls),
            "latency_ms": percentiles([c.latency_ms for c in ok if c.latency_ms is not None]),
            "cost_usd": sum(costs) if costs else None}


def _seconds(calls: Sequence[Finished], starts: Sequence[float]) -> list[Second]:
    started = Counter(int(s) for s in starts)
    ended: dict[int, list[Finished]] = defaultdict(list)
    for call in calls:
        ended[int(call.ended_s)].append(call)
    last = max([*started, *ended], default=-1)
    out = []
    for t in range(last + 1):
        group = ended.get(t, [])
        ok = [c.latency_ms for c in group if c.status == "ok" and c.latency_ms is not None]
        figures = percentiles(ok)
        out.append(Second(t, started.get(t, 0), sum(c.status == "ok" for c in group),
                          sum(c.status != "ok" for c in group), sum(c.rate_limited for c in group),
                          figures["p50"], figures["p95"]))
    return out


def report_of(run: LoadRun, targets: Sequence[str], source: str) -> LoadReport:
    """The report of ``run`` (ended, or stopped) over its calls so far."""
    stats = run.stats
    calls = stats.calls
    ok = [c for c in calls if c.status == "ok"]
    latencies = sorted(c.latency_ms for c in ok if c.latency_ms is not None)
    ttfts = sorted(c.ttft_ms for c in ok if c.ttft_ms is not None)
    costs = [c.cost_usd for c in calls if c.cost_usd is not None]
    elapsed = max((c.ended_s for c in calls), default=0.0)
    output = sum(c.output_tokens or 0 for c in calls)
    span = (stats.last_sent or 0.0) - (stats.first_sent or 0.0)
    shape = run.shape
    lateness = None
    if isinstance(shape, OpenLoop):
        late = percentiles(stats.lateness_ms)
        lateness = {"p50": late["p50"], "p99": late["p99"], "max": max(stats.lateness_ms, default=None)}
    starts = [c.started_s for c in calls]
    return LoadReport(
        run_id=run.id, tag=run_tag(run.id), started_at=run.started_at, targets=list(dict.fromkeys(targets)),
        source=source, shape=shape.describe(), rate=shape.rate if isinstance(shape, OpenLoop) else None,
        concurrency=None if isinstance(shape, OpenLoop) else shape.workers, duration_s=shape.duration_s,
        ramp_s=shape.ramp_s if isinstance(shape, OpenLoop) else 0.0, max_cost=run.max_cost,
        stop_reason=run.stop_reason, sent=stats.sent, calls=len(calls), ok=len(ok),
        errors=dict(Counter(c.error_class or "error" for c in calls if c.status != "ok").most_common()),
        rate_limited=sum(c.rate_limited for c in calls), retries=sum(c.retries for c in calls),
        fell_back=sum(c.fell_back for c in calls), queued=sum(c.queued for c in calls),
        achieved_rate=(stats.sent - 1) / span if span > 0 else None, elapsed_s=elapsed,
        ttft_ms=percentiles(ttfts), latency_ms=percentiles(latencies), lateness_ms=lateness,
        input_tokens=sum(c.input_tokens or 0 for c in calls), output_tokens=output,
        tokens_per_s=output / elapsed if elapsed > 0 else None, cost_usd=sum(costs) if costs else None,
        unpriced=sum(1 for c in calls if c.cost_usd is None and c.input_tokens is not None),
        by_target=[{"target": target, **_group([c for c in calls if c.target == target])}
                   for target in dict.fromkeys(c.target for c in calls)],
        seconds=_seconds(calls, starts), latency_curve=_curve(latencies), ttft_curve=_curve(ttfts))
