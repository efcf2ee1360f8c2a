"""The fault matrix: every fault × every wire format, over real HTTP against the fake server.

Each case checks the retry decision, the waits (an injected clock makes them instant and exact),
the message, and the attempt list.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from tests.resilience_helpers import FAKE_WIRES, FakeClock
from workbench.core.call_record import CallRecord
from workbench.core.errors import (
    MalformedStreamError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderTimeoutError,
    RefusalError,
    TruncatedStreamError,
)
from workbench.core.httpclient import new_client
from workbench.core.policy import PolicySet
from workbench.core.request import ChatRequest
from workbench.core.resilience.caller import Caller
from workbench.fakeserver.process import FakeServerProcess

WIRES = FAKE_WIRES
PROMPT = ChatRequest.from_prompt("Fault matrix.")
POLICIES = PolicySet().with_defaults(timeouts={"connect": 0.2, "ttft": 0.2, "idle": 0.2, "total": 10})
GENEROUS = {"connect": 10.0, "ttft": 10.0, "idle": 10.0, "total": 30.0}
"""Deadlines a busy machine never trips: a fault matrix call keeps the short one of POLICIES only for the
deadline its fault is about, so a slow reply to a retry is not mistaken for a timeout."""


@dataclass(frozen=True)
class Fault:
    name: str
    scenario: str
    kinds: tuple[str, ...]
    """The attempt kinds expected, in order."""
    statuses: tuple[int | None, ...]
    error: type[Exception] | None
    """The call's final error type (None: it succeeded after retrying)."""
    max_wait_s: float | None = None
    exact_wait_s: float | None = None
    partial: bool = False
    message: str = ""


RETRY3 = ("first", "retry", "retry")
FAULTS = [
    Fault("429 retry-after", "status=429,fail=1,retry_after=3", ("first", "retry"), (429, 200), None,
          exact_wait_s=3.0),
    Fault("429 no retry-after", "status=429,fail=1", ("first", "retry"), (429, 200), None, max_wait_s=2.0),
    Fault("500", "status=500,fail=1", ("first", "retry"), (500, 200), None, max_wait_s=0.5),
    Fault("502", "status=502,fail=1", ("first", "retry"), (502, 200), None, max_wait_s=0.5),
    Fault("503", "status=503,fail=1", ("first", "retry"), (503, 200), None, max_wait_s=0.5),
    Fault("529", "status=529,fail=1", ("first", "retry"), (529, 200), None, max_wait_s=2.0),
    Fault("503 every time", "status=503,fail=99", RETRY3, (503, 503, 503), ProviderHTTPError, message="503"),
    Fault("first-token timeout", "hang=headers", RETRY3, (None, None, None), ProviderTimeoutError,
          message="first-token timeout"),
    Fault("idle timeout mid-stream", "hang=stream", ("first",), (None,), ProviderTimeoutError, partial=True,
          message="idle timeout"),
    Fault("disconnect mid-stream", "tokens=10,disconnect=3", ("first",), (None,), TruncatedStreamError,
          partial=True),
    Fault("disconnect before output", "tokens=10,disconnect=0", RETRY3, (None, None, None), TruncatedStreamError),
    Fault("malformed event", "tokens=10,malformed=1", ("first",), (None,), MalformedStreamError, partial=True),
    Fault("no terminator", "tokens=3,disconnect=3", ("first",), (None,), TruncatedStreamError, partial=True),
    Fault("400", "status=400,fail=1", ("first",), (400,), ProviderHTTPError, message="400"),
    Fault("401", "status=401,fail=1", ("first",), (401,), ProviderHTTPError, message="401"),
    Fault("404", "status=404,fail=1", ("first",), (404,), ProviderHTTPError, message="404"),
    Fault("413", "status=413,fail=1", ("first",), (413,), ProviderHTTPError, message="413"),
]


async def run_call(target: str, env: dict[str, str], policies: PolicySet = POLICIES,
                   clock: FakeClock | None = None) -> tuple[CallRecord, FakeClock]:
    clock = clock or FakeClock()
    async with new_client() as client:
        record = await Caller(client, clock).call(CallRecord(target, PROMPT), policies=policies, env=env)
    return record, clock


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_fault_matrix(fault: Fault, wire: str, fake_env: dict[str, str]) -> None:
    target = f"{wire}/matrix@{fault.scenario},id={wire}-{fault.name.replace(' ', '-')}"
    timeouts = dict(GENEROUS)
    if fault.error is ProviderTimeoutError:
        timeouts["ttft" if "first-token" in fault.message else "idle"] = 0.2
    record, clock = await run_call(target, fake_env, PolicySet().with_defaults(timeouts=timeouts))
    attempts = record.attempts
    assert tuple(a.kind for a in attempts) == fault.kinds, [(a.kind, a.error) for a in attempts]
    assert tuple(a.status for a in attempts) == fault.statuses
    assert record.done
    if fault.error is None:
        assert record.status == "ok" and record.served_by == target and record.text
        assert attempts[-1].error is None
    else:
        assert isinstance(record.error, fault.error), record.error
        assert record.status == "error" and record.served_by is None
        assert fault.message in str(record.error) and record.error.hint
        assert all(a.error for a in attempts)
    assert bool(record.text) == (fault.partial or fault.error is None)
    waits = [a.wait_ms / 1000 for a in attempts[1:]]
    assert waits == pytest.approx(clock.sleeps)  # every wait is the clock's, recorded on the attempt after it
    if fault.exact_wait_s is not None:
        assert clock.sleeps == [fault.exact_wait_s] and attempts[1].wait_reason == "retry-after"
    if fault.max_wait_s is not None:
        assert all(0 <= s <= fault.max_wait_s for s in clock.sleeps) and attempts[1].wait_reason == "backoff"


@pytest.mark.parametrize("wire", WIRES)
async def test_connection_refused_is_retried_then_reported(wire: str, unreachable_port: int) -> None:
    record, clock = await run_call(f"{wire}/x", {"WORKBENCH_FAKE_URL": f"http://127.0.0.1:{unreachable_port}"})
    assert [a.kind for a in record.attempts] == list(RETRY3)
    assert isinstance(record.error, ProviderConnectionError) and "cannot reach" in str(record.error)
    assert len(clock.sleeps) == 2 and all(s <= 1.0 for s in clock.sleeps)


@pytest.fixture
def blackhole_port() -> Iterator[int]:
    """A port whose accept queue is full: new connections are never completed, so connecting times out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    server.close()


@pytest.mark.parametrize("wire", WIRES)
async def test_connect_timeout_is_named_and_retried(wire: str, blackhole_port: int) -> None:
    policies = POLICIES.with_defaults(retry={"max_retries": 1})
    record, _ = await run_call(f"{wire}/x", {"WORKBENCH_FAKE_URL": f"http://127.0.0.1:{blackhole_port}"}, policies)
    assert [a.kind for a in record.attempts] == ["first", "retry"]
    assert isinstance(record.error, ProviderTimeoutError) and record.error.which == "connect"


@pytest.mark.parametrize("wire", WIRES)
async def test_exhausted_retries_fall_back_to_the_next_target(wire: str, fake_env: dict[str, str]) -> None:
    policies = POLICIES.with_defaults(fallbacks=("fake-anthropic/backup@tokens=4",), retry={"max_retries": 1})
    record, _ = await run_call(f"{wire}/down@status=503,fail=99,id=fb-{wire}", fake_env, policies)
    assert [a.kind for a in record.attempts] == ["first", "retry", "fallback"]
    assert record.status == "ok" and record.served_by == "fake-anthropic/backup@tokens=4"
    assert len(record.text.split()) == 4


async def test_retry_after_beyond_the_cap_falls_back_at_once(fake_env: dict[str, str]) -> None:
    policies = POLICIES.with_defaults(fallbacks=("fake/backup@tokens=2",))
    record, clock = await run_call("fake/slow@status=429,fail=9,retry_after=600,id=cap", fake_env, policies)
    assert [a.kind for a in record.attempts] == ["first", "fallback"] and clock.sleeps == []
    assert record.served_by == "fake/backup@tokens=2"


async def test_client_errors_do_not_fall_back(fake_env: dict[str, str]) -> None:
    policies = POLICIES.with_defaults(fallbacks=("fake/backup@tokens=2",))
    record, _ = await run_call("fake/bad@status=401,fail=9,id=nofb", fake_env, policies)
    assert [a.kind for a in record.attempts] == ["first"]
    assert isinstance(record.error, ProviderHTTPError) and record.error.status == 401
    assert "WORKBENCH_FAKE_URL" not in (record.error.hint or "")  # the hint names a key variable or none


async def test_structured_output_is_validated_and_asked_again(fake_env: dict[str, str]) -> None:
    schema = {"type": "object", "required": ["answer"]}
    request = replace(PROMPT, params=replace(PROMPT.params, json_schema=schema))
    async with new_client() as client:
        record = await Caller(client, FakeClock()).call(CallRecord("fake/words@tokens=3", request),
                                                        policies=POLICIES, env=fake_env)
    kinds = [a.kind for a in record.attempts]
    assert kinds == ["first", "retry"]  # structured_retries=1: asked once more, then reported
    assert all(a.error_class == "invalid_output" and a.output for a in record.attempts)
    assert record.error is not None and "not JSON" in str(record.error)


def _with_schema(max_tokens: int | None = None) -> ChatRequest:
    params = replace(PROMPT.params, json_schema={"type": "object", "required": ["answer"]}, max_tokens=max_tokens)
    return replace(PROMPT, params=params)


@pytest.mark.parametrize("wire", [w for w in WIRES if w != "fake-ollama"])  # Ollama has no refusal
async def test_a_refusal_to_a_structured_request_is_reported_as_one_and_not_asked_again(
        wire: str, fake_env: dict[str, str]) -> None:
    async with new_client() as client:
        record = await Caller(client, FakeClock()).call(CallRecord(f"{wire}/words@tokens=4,refusal=1", _with_schema()),
                                                        policies=POLICIES, env=fake_env)
    assert [a.kind for a in record.attempts] == ["first"]
    assert isinstance(record.error, RefusalError) and record.error.error_class == "refusal"
    assert "the model refused" in str(record.error) and "not JSON" not in str(record.error)
    assert record.finish_raw in ("stop", "completed", "refusal", "SAFETY")


@pytest.mark.parametrize("wire", WIRES)
async def test_a_structured_reply_cut_at_max_tokens_is_asked_again_only_with_more_room(
        wire: str, fake_env: dict[str, str]) -> None:
    async with new_client() as client:
        caller = Caller(client, FakeClock())
        grown = await caller.call(CallRecord(f"{wire}/words@tokens=50", _with_schema(max_tokens=5)),
                                  policies=POLICIES, env=fake_env)
        same = await caller.call(CallRecord(f"{wire}/words@tokens=50", _with_schema(max_tokens=5)),
                                 policies=POLICIES.with_defaults(structured_more_room=1), env=fake_env)
    assert [a.kind for a in grown.attempts] == ["first", "retry"]
    assert grown.request.params.max_tokens == 10  # the retry asked for twice the room
    assert "cut at max_tokens (10) before the JSON ended" in str(grown.error)
    assert [a.kind for a in same.attempts] == ["first"]  # the same limit would cut it again: not asked
    assert "cut at max_tokens (5)" in str(same.error) and "max_tokens" in (same.error.hint or "")


async def test_a_prompt_too_long_for_the_window_falls_back_without_a_call(fake_server: FakeServerProcess,
                                                                         fake_env: dict[str, str]) -> None:
    from decimal import Decimal

    from tests.resilience_helpers import requests_for
    from workbench.core.pricing import PriceBook, UserPrice

    prices = PriceBook({"fake/tiny*": UserPrice(input_per_mtok=Decimal(0), output_per_mtok=Decimal(0),
                                                context_window=2_000)})
    request = ChatRequest.from_prompt("lorem ipsum dolor " * 800, params=replace(PROMPT.params, max_tokens=100))
    policies = POLICIES.with_defaults(fallbacks=("fake-gemini/big@tokens=2",))
    async with new_client() as client:
        record = await Caller(client, FakeClock()).call(CallRecord("fake/tiny@id=ctx-long", request),
                                                        policies=policies, env=fake_env, prices=prices)
    assert [(a.kind, a.error_class) for a in record.attempts] == [("first", "context_too_long"), ("fallback", None)]
    assert "context window is 2,000" in str(record.attempts[0].error)
    assert record.served_by == "fake-gemini/big@tokens=2"
    assert requests_for(fake_server.base_url, "id=ctx-long") == 0
