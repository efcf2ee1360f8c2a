"""Server-side rate limits of the fake provider server: buckets, 429s per wire, headers, log, control endpoints."""

from __future__ import annotations

import asyncio
import calendar
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx2
import pytest

from workbench.fakeserver import FakeServer, RateLimits, count_input_tokens
from workbench.fakeserver.__main__ import main as fakeserver_main
from workbench.fakeserver.limits import Limiter
from workbench.fakeserver.wire.openai_common import openai_duration

PROMPT = "tell me something"
MESSAGES = [{"role": "user", "content": PROMPT}]
IN_TOKENS = count_input_tokens([PROMPT])
WIRES = ("openai_chat", "openai_responses", "anthropic", "gemini", "ollama")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def request(wire: str, model: str = "m", max_tokens: int | None = None, stream: bool = False) -> tuple[str, Any]:
    """(path, JSON body) of a minimal request on ``wire``."""
    if wire == "openai_chat":
        body: dict[str, Any] = {"model": model, "messages": MESSAGES, "stream": stream}
        if max_tokens is not None:
            body["max_completion_tokens"] = max_tokens
        return "/v1/chat/completions", body
    if wire == "openai_responses":
        body = {"model": model, "input": PROMPT, "stream": stream}
        if max_tokens is not None:
            body["max_output_tokens"] = max_tokens
        return "/v1/responses", body
    if wire == "anthropic":
        return "/v1/messages", {"model": model, "messages": MESSAGES, "max_tokens": max_tokens or 32, "stream": stream}
    if wire == "gemini":
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
        if max_tokens is not None:
            body["generationConfig"] = {"maxOutputTokens": max_tokens}
        return f"/v1beta/models/{model}:{action}", body
    body = {"model": model, "messages": MESSAGES, "stream": stream}
    if max_tokens is not None:
        body["options"] = {"num_predict": max_tokens}
    return "/api/chat", body


Make = Callable[..., Awaitable[tuple[FakeServer, FakeClock, httpx2.AsyncClient]]]


@pytest.fixture
async def limited() -> AsyncIterator[Make]:
    """``await limited(RateLimits(...))``: a rate-limited server on a fake clock, and a client for it."""
    servers: list[FakeServer] = []
    clients: list[httpx2.AsyncClient] = []

    async def make(limits: RateLimits) -> tuple[FakeServer, FakeClock, httpx2.AsyncClient]:
        clock = FakeClock()
        srv = FakeServer(port=0, limits=limits, clock=clock)
        await srv.start()
        servers.append(srv)
        clients.append(httpx2.AsyncClient(base_url=srv.base_url, timeout=5))
        return srv, clock, clients[-1]

    yield make
    for c in clients:
        await c.aclose()
    for s in servers:
        await s.stop()


# ------------------------------------------------------------------------------------- unit: buckets
def test_bucket_arithmetic() -> None:
    clock = FakeClock()
    lim = Limiter(RateLimits(rpm=120, tpm=600, burst_s=2), clock)  # 2 req/s cap 4; 10 tok/s cap 20
    assert lim.requests is not None and lim.tokens is not None
    assert (lim.requests.capacity, lim.tokens.capacity) == (4.0, 20.0)
    for _ in range(4):
        assert lim.admit(5).admitted
    state = lim.state()
    assert state.requests is not None and state.tokens is not None
    assert (state.requests.remaining, state.tokens.remaining) == (0, 0)
    assert (state.requests.reset_s, state.tokens.reset_s) == (2.0, 2.0)
    denied = lim.admit(5)
    assert not denied.admitted and denied.wait_s == pytest.approx(0.5)  # both need 0.5 s
    clock.advance(0.25)
    assert lim.admit(5).wait_s == pytest.approx(0.25)  # rejections debit nothing
    assert lim.admit(8).wait_s == pytest.approx(0.55)  # the tokens bucket is the slower one
    clock.advance(0.25)
    assert lim.admit(5).admitted
    assert (lim.admitted, lim.rejected) == (5, 3)

    clock.advance(3600)  # refill is capped at the capacity
    full = lim.state()
    assert full.requests is not None and full.tokens is not None
    assert (full.requests.level, full.tokens.level, full.tokens.reset_s) == (4.0, 20.0, 0.0)
    big = lim.admit(50)  # above the capacity: admitted when full, leaving debt
    assert big.admitted and big.state.tokens is not None
    assert big.state.tokens.remaining == 0 and big.state.tokens.reset_s == pytest.approx(5.0)
    assert lim.admit(1).wait_s == pytest.approx(3.1)  # back to 1 token from -30
    clock.advance(3.1)
    assert lim.admit(1).admitted

    lim.reset()
    assert (lim.admitted, lim.rejected, lim.requests.level, lim.tokens.level) == (0, 0, 4.0, 20.0)

    small = Limiter(RateLimits(rpm=30, burst_s=1), clock)  # 0.5/s: the capacity is still 1
    assert small.requests is not None and small.requests.capacity == 1.0 and small.tokens is None
    assert small.admit(10**6).admitted and small.admit(1).wait_s == pytest.approx(2.0)
    unlimited = Limiter(None, clock)
    assert all(unlimited.admit(10**9).admitted for _ in range(100))


def test_rate_limits_validation_and_durations() -> None:
    assert not RateLimits().enabled and RateLimits(tpm=1).enabled
    for bad in ({"rpm": 0}, {"tpm": -1}, {"burst_s": 0}, {"rpm": math.inf}, {"tpm": math.nan}):
        with pytest.raises(ValueError):
            RateLimits(**bad)
    cases = {
        0: "0s",
        0.0004: "1ms",
        0.12: "120ms",
        1: "1s",
        1.5: "1.5s",
        8.64: "8.64s",
        360: "6m0s",
        3723.25: "1h2m3.25s",
    }
    assert {s: openai_duration(s) for s in cases} == cases


def test_cli_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, ...]] = []
    monkeypatch.setattr("workbench.fakeserver.__main__.serve", lambda *a: seen.append(a))
    fakeserver_main(["--port", "0", "--rpm", "90", "--tpm", "1000", "--burst-s", "2"])
    fakeserver_main(["--port", "0"])
    assert seen == [("127.0.0.1", 0, RateLimits(90, 1000, 2)), ("127.0.0.1", 0, None)]
    with pytest.raises(SystemExit):
        fakeserver_main(["--rpm", "0"])


# ---------------------------------------------------------------------------------------- over HTTP
def check_429_body(wire: str, body: Any) -> None:
    if wire.startswith("openai"):
        assert body["error"]["code"] == "rate_limit_exceeded" and body["error"]["type"] == "tokens"
        assert "Please try again in 1s." in body["error"]["message"]
    elif wire == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        assert body["request_id"].startswith("req_")
    elif wire == "gemini":
        assert body["error"]["code"] == 429 and body["error"]["status"] == "RESOURCE_EXHAUSTED"
        assert body["error"]["details"][0]["retryDelay"] == "1s"
    else:
        assert list(body) == ["error"] and "too many requests" in body["error"]


@pytest.mark.parametrize("wire", WIRES)
async def test_burst_beyond_capacity_gets_429(limited: Make, wire: str) -> None:
    srv, clock, client = await limited(RateLimits(rpm=60))  # 1 request/s, capacity 1
    path, body = request(wire)
    assert (await client.post(path, json=body)).status_code == 200
    r = await client.post(path, json=body)
    assert r.status_code == 429
    check_429_body(wire, r.json())
    assert r.headers["retry-after"] == "1"
    assert ("retry-after-ms" in r.headers) == wire.startswith("openai")
    if wire.startswith("openai"):
        assert r.headers["retry-after-ms"] == "1000"
    has_headers = any(k.startswith(("x-ratelimit-", "anthropic-ratelimit-")) for k in r.headers)
    assert has_headers == (wire in ("openai_chat", "openai_responses", "anthropic"))

    clock.advance(0.999)
    assert (await client.post(path, json=body)).status_code == 429
    clock.advance(0.001)  # exactly the advertised wait after the first 429
    assert (await client.post(path, json=body)).status_code == 200
    log = srv.log
    assert [e["status"] for e in log] == [200, 429, 429, 200]
    assert [e["rate_limited"] for e in log] == [False, True, True, False]
    assert log[1]["outcome"] == "error" and log[1]["cost_tokens"] == 0
    assert log[0]["cost_tokens"] == log[3]["cost_tokens"] > 0


async def test_one_account_for_all_wires(limited: Make) -> None:
    _, clock, client = await limited(RateLimits(rpm=180))  # 3/s, capacity 3
    for wire in WIRES[:3]:
        path, body = request(wire)
        assert (await client.post(path, json=body)).status_code == 200
    for wire in WIRES:
        path, body = request(wire, stream=True)
        assert (await client.post(path, json=body)).status_code == 429
    clock.advance(1 / 3)
    path, body = request("gemini", stream=True)
    assert (await client.post(path, json=body)).status_code == 200


async def test_waiting_retry_after_ms_on_the_real_clock() -> None:
    # 5/s, capacity 1: the second request, unless it comes 200 ms after the first, waits for the refill
    srv = FakeServer(port=0, limits=RateLimits(rpm=300, burst_s=0.2))
    await srv.start()
    try:
        async with httpx2.AsyncClient(base_url=srv.base_url, timeout=5) as client:
            path, body = request("openai_chat")
            assert (await client.post(path, json=body)).status_code == 200
            r = await client.post(path, json=body)
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
            wait_ms = int(r.headers["retry-after-ms"])
            assert 1 <= wait_ms <= 200
            await asyncio.sleep(wait_ms / 1000)
            assert (await client.post(path, json=body)).status_code == 200
    finally:
        await srv.stop()


def test_in_thread_accepts_limits() -> None:
    with FakeServer.in_thread(limits=RateLimits(rpm=60)) as srv:
        path, body = request("ollama")
        codes = [httpx2.post(srv.base_url + path, json=body, timeout=5).status_code for _ in range(2)]
    assert codes == [200, 429]


@pytest.mark.parametrize("wire", ["openai_chat", "openai_responses"])
async def test_openai_headers_decrease(limited: Make, wire: str) -> None:
    _, clock, client = await limited(RateLimits(rpm=600, tpm=60_000))  # 10 req/s cap 10; 1000 tok/s cap 1000
    seen = []
    for stream in (False, True, False):
        path, body = request(wire, "m@tokens=5", max_tokens=40, stream=stream)
        r = await client.post(path, json=body)
        assert r.status_code == 200
        h = r.headers
        assert (h["x-ratelimit-limit-requests"], h["x-ratelimit-limit-tokens"]) == ("600", "60000")
        seen.append((int(h["x-ratelimit-remaining-requests"]), int(h["x-ratelimit-remaining-tokens"])))
        resets = (h["x-ratelimit-reset-requests"], h["x-ratelimit-reset-tokens"])
    cost = IN_TOKENS + 40  # max_tokens counts, not the 5 tokens produced
    assert seen == [(9, 1000 - cost), (8, 1000 - 2 * cost), (7, 1000 - 3 * cost)]
    assert resets == ("300ms", f"{3 * cost}ms")  # time until full again

    clock.advance(0.1)  # +1 request, +100 tokens; a bad request still gets the headers
    r = await client.post(request(wire)[0], content=b"{not json")
    assert r.status_code == 400
    assert (r.headers["x-ratelimit-remaining-requests"], r.headers["x-ratelimit-reset-requests"]) == ("8", "200ms")
    assert r.headers["x-ratelimit-remaining-tokens"] == str(min(1000, 1000 - 3 * cost + 100))


async def test_anthropic_headers(limited: Make) -> None:
    _, _, client = await limited(RateLimits(rpm=120, tpm=6000, burst_s=30))  # caps 60 and 3000
    remaining = []
    for stream in (True, False, True):
        path, body = request("anthropic", "claude@tokens=3", max_tokens=100, stream=stream)
        before = time.time()
        r = await client.post(path, json=body)
        assert r.status_code == 200
        h = r.headers
        assert (h["anthropic-ratelimit-requests-limit"], h["anthropic-ratelimit-tokens-limit"]) == ("120", "6000")
        remaining.append(
            (int(h["anthropic-ratelimit-requests-remaining"]), int(h["anthropic-ratelimit-tokens-remaining"]))
        )
        for kind in ("requests", "tokens"):
            stamp = h[f"anthropic-ratelimit-{kind}-reset"]
            assert stamp.endswith("Z") and len(stamp) == 20
            at = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
            assert before <= at <= before + 60
        assert not any(k.startswith("x-ratelimit") for k in h)
    cost = IN_TOKENS + 100
    assert remaining == [(59, 3000 - cost), (58, 3000 - 2 * cost), (57, 3000 - 3 * cost)]


async def test_tokens_bucket_charges_max_tokens(limited: Make) -> None:
    srv, clock, client = await limited(RateLimits(tpm=6000))  # 100 tokens/s, capacity 100; requests unlimited
    path, body = request("openai_chat", "m@tokens=2", max_tokens=80)
    r = await client.post(path, json=body)
    assert r.status_code == 200 and "x-ratelimit-limit-requests" not in r.headers
    assert r.headers["x-ratelimit-remaining-tokens"] == str(100 - IN_TOKENS - 80)
    r = await client.post(path, json=body)  # the reply is 2 tokens, but 80 were asked for
    assert r.status_code == 429
    wait = (IN_TOKENS + 80 - (100 - IN_TOKENS - 80)) / 100
    assert int(r.headers["retry-after-ms"]) == math.ceil(wait * 1000)
    path, body = request("openai_chat", "m@tokens=7")  # no cap: the reply length is charged
    clock.advance(1)
    assert (await client.post(path, json=body)).status_code == 200
    path, body = request("ollama", "m@tokens=7", max_tokens=3)
    assert (await client.post(path, json=body)).status_code == 200
    assert [e["cost_tokens"] for e in srv.log] == [IN_TOKENS + 80, 0, IN_TOKENS + 7, IN_TOKENS + 3]
    assert [e["rate_limited"] for e in srv.log] == [False, True, False, False]


async def test_scenario_faults_apply_after_admission(limited: Make) -> None:
    srv, _, client = await limited(RateLimits(rpm=120))  # capacity 2
    path, body = request("anthropic", "claude@status=529,fail=5")
    assert (await client.post(path, json=body)).status_code == 529
    r = await client.post(path, json=body)
    assert r.status_code == 529 and r.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert (await client.post(path, json=body)).status_code == 429
    assert [e["rate_limited"] for e in srv.log] == [False, False, True]
    assert srv.log[0]["cost_tokens"] == IN_TOKENS + 32
    assert (srv.limiter.admitted, srv.limiter.rejected) == (2, 1)


async def test_limits_endpoint_and_reset(limited: Make) -> None:
    _, clock, client = await limited(RateLimits(rpm=60, tpm=600, burst_s=10))  # caps 10 and 100
    path, body = request("gemini", "g@tokens=4")
    for _ in range(3):
        await client.post(path, json=body)
    body_big = request("gemini", "g@tokens=4", max_tokens=200)[1]
    assert (await client.post(path, json=body_big)).status_code == 429  # needs the full 100 first
    got = (await client.get("/_fake/limits")).json()
    cost = IN_TOKENS + 4
    assert (got["rpm"], got["tpm"], got["burst_s"], got["admitted"], got["rejected"]) == (60, 600, 10, 3, 1)
    assert got["requests"] == {"limit": 60, "capacity": 10, "level": 7, "remaining": 7, "reset_s": 3}
    assert got["tokens"]["level"] == 100 - 3 * cost and got["tokens"]["reset_s"] == pytest.approx(3 * cost / 10)
    log = (await client.get("/_fake/log")).json()
    assert [(e["rate_limited"], e["cost_tokens"]) for e in log] == [(False, cost)] * 3 + [(True, 0)]

    clock.advance(0.5)
    assert (await client.post("/_fake/reset")).json() == {"ok": True}
    got = (await client.get("/_fake/limits")).json()
    assert (got["admitted"], got["rejected"], got["requests"]["level"], got["tokens"]["level"]) == (0, 0, 10, 100)
    assert (await client.get("/_fake/log")).json() == []
    assert (await client.post(path, json=body_big)).status_code == 200  # a full bucket admits the oversized one


async def test_unlimited_server_has_no_limit_headers(server: FakeServer) -> None:
    async with httpx2.AsyncClient(base_url=server.base_url, timeout=5) as client:
        for wire in WIRES:
            path, body = request(wire, "m@tokens=3")
            r = await client.post(path, json=body)
            assert r.status_code == 200
            assert not any("ratelimit" in k or k.startswith("retry-after") for k in r.headers)
        got = (await client.get("/_fake/limits")).json()
    assert (got["rpm"], got["tpm"], got["requests"], got["tokens"]) == (None, None, None, None)
    assert (got["admitted"], got["rejected"]) == (5, 0)
    assert all(e["rate_limited"] is False and e["cost_tokens"] > 0 for e in server.log)
    assert json.loads(json.dumps(server.log)) == server.log
