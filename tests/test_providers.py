"""Every wire format over real HTTP against the fake provider server: text, usage, finish, timing, errors."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from dataclasses import replace

import httpx2
import pytest

from tests.resilience_helpers import FAKE_WIRES
from tests.timing_slack import LoopLateness
from workbench.core.call_record import CallRecord, collect
from workbench.core.endpoint import Endpoint
from workbench.core.errors import (
    ConfigError,
    MalformedStreamError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeoutError,
    TruncatedStreamError,
)
from workbench.core.events import FinishReason
from workbench.core.httpclient import new_client
from workbench.core.race import Race
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef, Params
from workbench.core.resilience.caller import Caller
from workbench.fakeserver.process import FakeServerProcess

WIRES = FAKE_WIRES
PROMPT = ChatRequest.from_prompt("Say something about streaming.", system="Be brief.")


async def call(target: str, env: dict[str, str], client: httpx2.AsyncClient,
               request: ChatRequest = PROMPT) -> CallRecord:
    provider = make_provider(resolve(ModelRef.parse(target), env), client)
    return await collect(provider, request)


def server_log(server: FakeServerProcess) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{server.base_url}/_fake/log") as response:
        entries: list[dict[str, object]] = json.load(response)
        return entries


@pytest.mark.parametrize("wire", WIRES)
async def test_text_usage_and_finish(wire: str, fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    record = await call(f"{wire}/demo@tokens=12", fake_env, client)
    assert record.status == "ok", record.error
    assert len(record.text.split()) == 12
    assert record.usage is not None and not record.usage_estimated
    assert record.usage.output_tokens == 12
    assert record.usage.input_tokens > 0
    assert record.finish is FinishReason.STOP and record.finish_raw
    timing = record.timing
    assert timing.ttft_ms is not None and timing.latency_ms is not None
    assert 0 < timing.ttft_ms <= timing.latency_ms
    assert timing.started_ns is not None and timing.sent_ns is not None
    assert timing.started_ns <= timing.sent_ns <= (timing.headers_ns or 0) <= (timing.first_content_ns or 0)


async def test_every_wire_reads_the_same_reply(fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    records = await asyncio.gather(*(call(f"{w}/same-model@tokens=20", fake_env, client) for w in WIRES))
    texts = {r.text for r in records}
    assert len(texts) == 1 and texts != {""}
    assert len({r.usage.input_tokens for r in records if r.usage}) == 1


@pytest.mark.parametrize("wire", WIRES)
async def test_max_tokens_cut_gives_length_finish(wire: str, fake_env: dict[str, str],
                                                  client: httpx2.AsyncClient) -> None:
    request = replace(PROMPT, params=Params(max_tokens=5))
    record = await call(f"{wire}/long@tokens=50", fake_env, client, request)
    assert record.finish is FinishReason.LENGTH
    assert record.usage is not None and record.usage.output_tokens == 5
    assert len(record.text.split()) == 5


@pytest.mark.parametrize("wire", WIRES)
async def test_missing_usage_is_estimated_and_flagged(wire: str, fake_env: dict[str, str],
                                                      client: httpx2.AsyncClient) -> None:
    record = await call(f"{wire}/nousage@tokens=10,usage=0", fake_env, client)
    assert record.status == "ok"
    assert record.usage_estimated
    assert record.usage is not None and record.usage.output_tokens >= 10 and record.usage.input_tokens > 0


@pytest.mark.parametrize("wire", WIRES)
async def test_reasoning_counts_as_first_content(wire: str, fake_env: dict[str, str],
                                                  client: httpx2.AsyncClient) -> None:
    record = await call(f"{wire}/thinker@tokens=6,reasoning=4,tps=200", fake_env, client)
    assert record.status == "ok", record.error
    assert record.reasoning.strip() and len(record.text.split()) == 6
    timing = record.timing
    assert timing.first_content_ns is not None and timing.first_text_ns is not None
    assert timing.first_content_ns < timing.first_text_ns


@pytest.mark.parametrize(("wire", "kind"), [
    ("fake", "rate_limit_exceeded"), ("fake-responses", "rate_limit_exceeded"),
    ("fake-anthropic", "rate_limit_error"), ("fake-gemini", "RESOURCE_EXHAUSTED"), ("fake-ollama", None),
])
async def test_http_error_is_typed_with_retry_after(wire: str, kind: str | None, fake_env: dict[str, str],
                                                    client: httpx2.AsyncClient) -> None:
    record = await call(f"{wire}/busy@status=429,fail=1,retry_after=3,id={wire}-429", fake_env, client)
    assert isinstance(record.error, ProviderHTTPError)
    assert record.error.status == 429 and record.error.retry_after_s == 3
    if kind is not None:
        assert record.error.kind == kind
    assert record.error.detail and record.error.hint
    assert record.finish is FinishReason.ERROR and record.text == ""
    again = await call(f"{wire}/busy@status=429,fail=1,retry_after=3,id={wire}-429", fake_env, client)
    assert again.status == "ok"


@pytest.mark.parametrize("wire", WIRES)
async def test_disconnect_mid_stream_keeps_partial_output(wire: str, fake_env: dict[str, str],
                                                          client: httpx2.AsyncClient) -> None:
    record = await call(f"{wire}/cut@tokens=20,disconnect=3", fake_env, client)
    assert isinstance(record.error, TruncatedStreamError)
    assert len(record.text.split()) == 3
    assert record.finish is FinishReason.ERROR


@pytest.mark.parametrize("wire", WIRES)
async def test_malformed_event_is_a_typed_error(wire: str, fake_env: dict[str, str],
                                                client: httpx2.AsyncClient) -> None:
    record = await call(f"{wire}/broken@tokens=20,malformed=1", fake_env, client)
    assert isinstance(record.error, MalformedStreamError)
    assert record.text.strip()


async def test_hang_before_headers_fires_the_read_timeout(fake_env: dict[str, str]) -> None:
    async with new_client(timeout=httpx2.Timeout(5.0, read=0.3)) as short:
        record = await call("fake/stuck@hang=headers", fake_env, short)
    assert isinstance(record.error, ProviderTimeoutError) and record.error.which == "read"


async def test_hang_mid_stream_fires_the_read_timeout_and_keeps_the_first_token(fake_env: dict[str, str]) -> None:
    async with new_client(timeout=httpx2.Timeout(5.0, read=0.3)) as short:
        record = await call("fake-anthropic/stall@hang=stream", fake_env, short)
    assert isinstance(record.error, ProviderTimeoutError)
    assert record.text.strip()


async def test_unreachable_server_is_a_connection_error_with_a_hint(client: httpx2.AsyncClient) -> None:
    record = await call("fake/x", {"WORKBENCH_FAKE_URL": "http://127.0.0.1:9"}, client)
    assert isinstance(record.error, ProviderConnectionError)
    assert "127.0.0.1:9" in str(record.error) and record.error.hint


@pytest.mark.parametrize("bad", ["\nrest-of-a-second-line", "\u200b", "é", " tail"])
async def test_a_key_http_cannot_carry_is_refused_where_it_enters_and_never_quoted(
    fake_server: FakeServerProcess, client: httpx2.AsyncClient, bad: str
) -> None:
    canary = f"sk-canary-0b1e{bad}9f"
    env = {"OPENAI_API_KEY": canary, "OPENAI_BASE_URL": f"{fake_server.base_url}/v1"}
    record = CallRecord("openai/gpt-4.1-mini", PROMPT)
    await Caller(client).call(record, env=env)
    assert type(record.error) is ConfigError and "OPENAI_API_KEY" in str(record.error)
    assert "cannot carry" in str(record.error) and record.error.hint
    assert [a.status for a in record.attempts] == [None]  # refused before any request
    assert canary not in f"{record.error} {record.error.hint} {record.attempts}"
    assert "sk-canary" not in f"{record.error} {record.error.hint} {record.attempts}"


@pytest.mark.parametrize("bad", ["\nrest", "\u200b", "é"])
async def test_a_header_value_http_cannot_carry_fails_once_with_a_hint_even_past_resolve(
    fake_server: FakeServerProcess, client: httpx2.AsyncClient, bad: str
) -> None:
    canary = f"sk-canary-77aa{bad}x"
    endpoint = Endpoint("openai", "gpt-4.1-mini", f"{fake_server.base_url}/v1", "openai_chat", canary,
                        key_env="OPENAI_API_KEY")
    record = await collect(make_provider(endpoint, client), PROMPT)
    assert type(record.error) is ProviderError and "header" in str(record.error)
    assert record.error.hint and "OPENAI_API_KEY" in record.error.hint
    assert "sk-canary" not in f"{record.error} {record.error.hint}"


async def test_ttft_matches_the_servers_record_at_four_concurrent_streams(
    fake_server: FakeServerProcess, fake_env: dict[str, str], client: httpx2.AsyncClient
) -> None:
    targets = [f"{wire}/ttft-check@ttft={ttft},tps=50,tokens=10,id=ttft-{wire}"
               for wire, ttft in zip(["fake", "fake-anthropic", "fake-gemini", "fake-ollama"],
                                     [120, 160, 200, 240], strict=True)]
    async with LoopLateness() as late:
        records = await Race(PROMPT, targets, fake_env).run(Caller(client))
    log = {entry["model"]: entry for entry in server_log(fake_server)}
    for record, ttft in zip(records, [120, 160, 200, 240], strict=True):
        assert record.status == "ok", record.error
        entry = log[record.target.split("/", 1)[1]]
        first_ns, last_ns = int(entry["first_token_ns"]), int(entry["last_token_ns"])  # type: ignore[call-overload]
        true_ttft_ms = (first_ns - int(entry["received_ns"])) / 1e6  # type: ignore[call-overload]
        # 5 ms on an idle machine; more if this loop, or the server for its first token, woke up late
        slack_ms = late.allowance_ms(5) + max(true_ttft_ms - ttft, 0)
        assert record.timing.ttft_ms is not None
        assert abs(record.timing.ttft_ms - true_ttft_ms) < slack_ms, (record.target, record.timing.ttft_ms,
                                                                      true_ttft_ms, slack_ms)
        tps = record.tokens_per_s
        assert tps is not None and record.usage is not None
        span_ms = (record.usage.output_tokens - 1) / tps * 1000  # first to last token as measured here
        assert abs(span_ms - (last_ns - first_ns) / 1e6) < slack_ms, (record.target, span_ms, slack_ms)


async def test_race_reports_unusable_targets_and_still_runs_the_others(fake_env: dict[str, str],
                                                                       client: httpx2.AsyncClient) -> None:
    race = Race(PROMPT, ["fake/ok@tokens=4", "openai/gpt-4.1-mini", "nosuch/model", "fake-gemini/ok@tokens=4"],
                fake_env)
    ok, no_key, unknown, gemini = await race.run(Caller(client))
    assert ok.status == "ok" and gemini.status == "ok"
    assert isinstance(no_key.error, ConfigError) and "OPENAI_API_KEY" in (no_key.error.hint or "")
    assert isinstance(unknown.error, ConfigError) and "anthropic" in (unknown.error.hint or "")
