"""Client-side rate limits: buckets, concurrency cap, adaptation to 429s and to rate-limit headers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.resilience_helpers import FakeClock
from workbench.core.call_record import CallRecord
from workbench.core.httpclient import new_client
from workbench.core.policy import PolicySet, RateLimitPolicy
from workbench.core.request import ChatRequest
from workbench.core.resilience.caller import Caller
from workbench.core.resilience.ratelimit import RateLimiter, parse_reset
from workbench.fakeserver import FakeServer, RateLimits


async def test_requests_bucket_spaces_calls_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitPolicy(rpm=120), clock)  # 2/s, bucket of 2
    starts = []
    for _ in range(6):
        await limiter.acquire(1)
        starts.append(clock.now() - 1_000)
        limiter.release()
    assert starts == pytest.approx([0, 0, 0.5, 1.0, 1.5, 2.0])


async def test_tokens_bucket_charges_the_estimate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitPolicy(tpm=6_000), clock)  # 100 tokens/s, bucket of 100
    await limiter.acquire(100)
    await limiter.acquire(50)
    assert clock.now() - 1_000 == pytest.approx(0.5)
    await limiter.acquire(500)  # more than a bucket: waits for a full one, then goes
    assert clock.now() - 1_000 == pytest.approx(1.5)


async def test_concurrency_cap() -> None:
    limiter = RateLimiter(RateLimitPolicy(concurrency=2), FakeClock())
    active, peak = 0, 0

    async def job() -> None:
        nonlocal active, peak
        await limiter.acquire(1)
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        limiter.release()

    await asyncio.gather(*(job() for _ in range(8)))
    assert peak == 2


async def test_a_429_halves_the_rate_and_pauses_then_successes_restore_it() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitPolicy(rpm=60), clock)
    await limiter.acquire(1)
    limiter.on_rate_limited(5.0)
    assert limiter.factor == 0.5
    await limiter.acquire(1)
    assert clock.now() - 1_000 == pytest.approx(5.0)  # paused for Retry-After (the bucket refilled meanwhile)
    for _ in range(20):
        limiter.on_success()
    assert limiter.factor == 1.0


@pytest.mark.parametrize("headers", [
    {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "2", "x-ratelimit-reset-requests": "6s"},
    {"x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "10", "x-ratelimit-reset-tokens": "6000ms"},
])
async def test_low_remaining_headers_pause_until_the_reset(headers: dict[str, str]) -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitPolicy(concurrency=10), clock)
    limiter.on_headers(headers, 0.0)
    await limiter.acquire(1)
    assert clock.now() - 1_000 == pytest.approx(6.0)


async def test_plenty_remaining_does_not_pause() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitPolicy(concurrency=10), clock)
    limiter.on_headers({"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "40",
                        "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z"}, 0.0)
    await limiter.acquire(1)
    assert clock.sleeps == []


def test_reset_formats() -> None:
    now = datetime(2026, 8, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_reset("6m0s", 0) == 360
    assert parse_reset("1h2m3.5s", 0) == 3723.5
    assert parse_reset("120ms", 0) == pytest.approx(0.12)
    assert parse_reset("7", 0) == 7
    assert parse_reset((now + timedelta(seconds=30)).isoformat().replace("+00:00", "Z"), now.timestamp()) == 30
    assert parse_reset("soon", 0) is None


async def test_calls_stay_under_a_servers_limit_with_no_429(fake_env: dict[str, str]) -> None:
    """Against a fake server enforcing 600 rpm, a client limited to 500 rpm never sees a 429. (The margin, two
    requests' worth at the start and 100 rpm after, absorbs a busy machine delaying one request and not the
    next: both then arrive together.)"""
    server = FakeServer(port=0, limits=RateLimits(rpm=600))
    await server.start()
    try:
        env = {"WORKBENCH_FAKE_URL": server.base_url}
        policies = PolicySet().with_defaults(rate_limit={"rpm": 500}, retry={"max_retries": 0})
        async with new_client() as client:
            caller = Caller(client)
            records = [CallRecord(f"fake/rl@tokens=1,id=rl-{i}", ChatRequest.from_prompt("x")) for i in range(25)]
            await asyncio.gather(*(caller.call(r, policies=policies, env=env) for r in records))
        assert all(r.status == "ok" for r in records), [str(r.error) for r in records if r.error]
        queued = [r.timing.queue_ms for r in records if r.timing.queue_ms]
        assert queued and max(queued) > 1000  # 25 calls at 8.3/s: the last ones waited ~2 s in the queue
        assert not any(e["rate_limited"] for e in server.log)
    finally:
        await server.stop()
