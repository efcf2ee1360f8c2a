"""The circuit breaker: fail fast with no network call while open, exactly one probe when half-open."""

from __future__ import annotations

import asyncio

import pytest

from tests.resilience_helpers import FakeClock, requests_for
from workbench.core.call_record import CallRecord
from workbench.core.errors import CircuitOpenError
from workbench.core.httpclient import new_client
from workbench.core.policy import BreakerPolicy, PolicySet
from workbench.core.request import ChatRequest
from workbench.core.resilience.breaker import BreakerState, CircuitBreaker
from workbench.core.resilience.caller import Caller
from workbench.fakeserver.process import FakeServerProcess

PROMPT = ChatRequest.from_prompt("Breaker.")
POLICIES = PolicySet().with_defaults(retry={"max_retries": 0},
                                     breaker={"consecutive_failures": 2, "open_s": 30, "min_calls": 100})


def test_state_machine_consecutive_failures_and_rate() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(BreakerPolicy(consecutive_failures=3, failure_rate=0.5, min_calls=4, window_s=60,
                                           open_s=10), clock)
    breaker.record(False)
    breaker.record(True)
    breaker.record(False)
    assert breaker.state is BreakerState.CLOSED  # 2 of 3 failed, below min_calls
    breaker.record(True)
    breaker.record(False)
    assert breaker.state is BreakerState.OPEN  # 3 of 5 ≥ 50% over ≥ 4 calls
    assert not breaker.allow() and breaker.retry_in_s == 10
    clock.t += 10
    assert breaker.allow() and breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # one probe at a time
    breaker.record(False)
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.t += 10
    assert breaker.allow()
    breaker.record(True)
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


def test_old_outcomes_leave_the_window() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(BreakerPolicy(consecutive_failures=99, failure_rate=0.5, min_calls=4, window_s=60), clock)
    for _ in range(3):
        breaker.record(False)
    clock.t += 61
    breaker.record(True)
    breaker.record(False)
    assert breaker.state is BreakerState.CLOSED  # the three old failures no longer count


def test_a_cancelled_probe_frees_the_slot() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(BreakerPolicy(consecutive_failures=1, open_s=1), clock)
    breaker.record(False)
    clock.t += 1
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()


async def test_open_circuit_fails_fast_without_a_network_call(fake_server: FakeServerProcess,
                                                              fake_env: dict[str, str]) -> None:
    target = "fake/brk@status=500,fail=2,id=breaker-open"
    clock = FakeClock()
    async with new_client() as client:
        caller = Caller(client, clock)
        for _ in range(2):
            failed = await caller.call(CallRecord(target, PROMPT), policies=POLICIES, env=fake_env)
            assert failed.attempts[0].status == 500
        sent = requests_for(fake_server.base_url, "id=breaker-open")
        refused = await caller.call(CallRecord(target, PROMPT), policies=POLICIES, env=fake_env)
        assert isinstance(refused.error, CircuitOpenError) and "circuit open" in str(refused.error)
        assert refused.attempts[0].error_class == "circuit_open" and refused.attempts[0].status is None
        assert requests_for(fake_server.base_url, "id=breaker-open") == sent  # no network call
        assert list(caller.breakers.states().values()) == ["open"]

        clock.t += 30  # half-open: exactly one of three concurrent calls goes out, and it succeeds
        calls = await asyncio.gather(*(caller.call(CallRecord(target, PROMPT), policies=POLICIES, env=fake_env)
                                       for _ in range(3)))
        assert requests_for(fake_server.base_url, "id=breaker-open") == sent + 1
        assert sorted(r.status for r in calls) == ["error", "error", "ok"]
        assert sum(isinstance(r.error, CircuitOpenError) for r in calls) == 2
        assert list(caller.breakers.states().values()) == ["closed"]
        after = await caller.call(CallRecord(target, PROMPT), policies=POLICIES, env=fake_env)
        assert after.status == "ok"


async def test_an_open_circuit_falls_back(fake_env: dict[str, str]) -> None:
    policies = POLICIES.with_defaults(fallbacks=("fake-gemini/spare@tokens=3",))
    target = "fake/brk@status=503,fail=9,id=breaker-fallback"
    async with new_client() as client:
        caller = Caller(client, FakeClock())
        for _ in range(2):
            await caller.call(CallRecord(target, PROMPT), policies=policies, env=fake_env)
        record = await caller.call(CallRecord(target, PROMPT), policies=policies, env=fake_env)
    assert [(a.kind, a.error_class) for a in record.attempts] == [("first", "circuit_open"), ("fallback", None)]
    assert record.served_by == "fake-gemini/spare@tokens=3"


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_client_errors_do_not_open_the_circuit(status: int, fake_env: dict[str, str]) -> None:
    target = f"fake/brk@status={status},fail=9,id=breaker-client-{status}"
    async with new_client() as client:
        caller = Caller(client, FakeClock())
        for _ in range(4):
            record = await caller.call(CallRecord(target, PROMPT), policies=POLICIES, env=fake_env)
            assert record.attempts[0].status == status
    assert list(caller.breakers.states().values()) == ["closed"]


def test_replaying_past_outcomes_gives_the_state_a_breaker_would_have_now() -> None:
    from workbench.core.resilience.breaker import replay_state, unhealthy

    policy = BreakerPolicy(consecutive_failures=3, open_s=30)
    failures = [(100.0 + i, False) for i in range(3)]
    assert replay_state(failures, policy, now=110) is BreakerState.OPEN
    assert replay_state(failures, policy, now=200) is BreakerState.HALF_OPEN
    assert replay_state([*failures, (140.0, True)], policy, now=141) is BreakerState.CLOSED  # the probe succeeded
    assert replay_state([(1.0, True)] * 5, policy, now=10) is BreakerState.CLOSED
    assert unhealthy("http_503") and unhealthy("timeout") and not unhealthy("http_401") and not unhealthy("cancelled")
