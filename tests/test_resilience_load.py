"""Load and hedging: many concurrent calls with injected faults all finish and are all accounted for."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from tests.resilience_helpers import FakeClock, server_log
from workbench.core.call_record import CallRecord
from workbench.core.httpclient import new_client
from workbench.core.policy import PolicySet
from workbench.core.request import ChatRequest
from workbench.core.resilience.caller import Caller
from workbench.fakeserver.process import FakeServerProcess

PROMPT = ChatRequest.from_prompt("Load.")
# fault → (attempts, final status): retried once then fine; or failed after retries; or failed at once
FAULTS = {"status=503,fail=1": (2, "ok"), "status=429,fail=1,retry_after=1": (2, "ok"),
          "tokens=8,disconnect=2": (1, "error"), "status=500,fail=9": (3, "error"),
          "tokens=6,malformed=1": (1, "error"), "status=401,fail=1": (1, "error"), "tokens=5": (1, "ok")}


async def test_a_thousand_concurrent_calls_with_a_fifth_faulty(fake_server: FakeServerProcess,
                                                              fake_env: dict[str, str]) -> None:
    rng = random.Random(7)
    targets, expected = [], []
    for i in range(1000):
        wire = rng.choice(["fake", "fake-anthropic", "fake-gemini", "fake-ollama", "fake-responses"])
        fault = rng.choice(list(FAULTS)[:-1]) if rng.random() < 0.2 else "tokens=5"
        targets.append(f"{wire}/load@{fault},id=load-{i}")
        expected.append(FAULTS[fault])
    policies = PolicySet().with_defaults(retry={"max_retries": 2}, breaker={"enabled": False},
                                         rate_limit={"concurrency": 32})
    async with new_client() as client:
        caller = Caller(client, FakeClock())
        records = [CallRecord(t, PROMPT) for t in targets]
        await asyncio.wait_for(asyncio.gather(*(caller.call(r, policies=policies, env=fake_env) for r in records)),
                               timeout=120)
    assert all(r.done for r in records)
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]  # nothing left hanging
    logged = Counter(str(e["model"]).rsplit("id=", 1)[1] for e in server_log(fake_server.base_url)
                     if "id=load-" in str(e["model"]))
    for i, record in enumerate(records):
        assert (len(record.attempts), record.status) == expected[i], record.target
        assert len(record.attempts) == logged[f"load-{i}"], record.target  # every attempt reached the server
        assert (record.status == "ok") == (record.served_by is not None) == (record.attempts[-1].error is None)
    # every attempt that failed here was a fault the server injected, and every injected fault was seen as one
    failed_here = sum(1 for r in records for a in r.attempts if a.error is not None)
    injected = sum(1 for e in server_log(fake_server.base_url)
                   if "id=load-" in str(e["model"]) and (e["status"] != 200 or e["outcome"] != "ok"))
    assert failed_here == injected > 0


async def test_hedge_starts_a_backup_after_the_deadline_and_the_first_token_wins(fake_env: dict[str, str]) -> None:
    policies = PolicySet().with_defaults(hedge_after_ms=100, fallbacks=("fake-anthropic/quick@tokens=4",))
    async with new_client() as client:
        record = await Caller(client, FakeClock()).call(
            CallRecord("fake/slow@ttft=2000,tokens=4,id=hedge-1", PROMPT), policies=policies, env=fake_env)
    assert record.status == "ok" and record.served_by == "fake-anthropic/quick@tokens=4"
    assert len(record.text.split()) == 4
    kinds = {a.kind: a for a in record.attempts}
    assert set(kinds) == {"first", "hedge"}
    assert kinds["first"].error_class == "hedge_lost" and kinds["hedge"].error is None
    assert record.timing.latency_ms is not None and record.timing.latency_ms < 1500


async def test_no_hedge_when_the_first_token_comes_in_time(fake_env: dict[str, str]) -> None:
    policies = PolicySet().with_defaults(hedge_after_ms=1000, fallbacks=("fake-anthropic/spare@tokens=4",))
    async with new_client() as client:
        record = await Caller(client, FakeClock()).call(
            CallRecord("fake/fast@ttft=20,tokens=4,id=hedge-2", PROMPT), policies=policies, env=fake_env)
    assert [a.kind for a in record.attempts] == ["first"]
    assert record.served_by == "fake/fast@ttft=20,tokens=4,id=hedge-2"
