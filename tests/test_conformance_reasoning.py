"""Reasoning over real HTTP: the fake server's ``reasoning=N`` streams, read by our adapters on every wire, and by
the official openai and anthropic SDKs, which agree with our adapters on the reasoning text, its token count and
the finish; a request that turns reasoning off gets none."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
import pytest

from workbench.core.call_record import CallRecord, collect, reasoning_tokens
from workbench.core.events import FinishReason
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef, Params
from workbench.fakeserver import expected_reasoning, expected_text
from workbench.fakeserver.process import FakeServerProcess

PROMPT = "Why is the sky blue?"
MODEL = "thinker@reasoning=12,tokens=5"
PROVIDERS = ("fake", "fake-responses", "fake-anthropic", "fake-gemini", "fake-ollama")
COUNTED = {"fake": 12, "fake-responses": 12, "fake-anthropic": 12, "fake-gemini": 12, "fake-ollama": None}
"""The reasoning tokens each wire reports (Ollama does not count them apart)."""


async def call(target: str, env: dict[str, str], client: httpx2.AsyncClient, **params: Any) -> CallRecord:
    provider = make_provider(resolve(ModelRef.parse(target), env), client)
    request = ChatRequest.from_prompt(PROMPT, params=Params(max_tokens=params.pop("max_tokens", 4000), **params))
    return await collect(provider, request)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_every_wire_reads_the_reasoning_then_the_answer(provider: str, fake_env: dict[str, str],
                                                               client: httpx2.AsyncClient) -> None:
    record = await call(f"{provider}/{MODEL}", fake_env, client)
    assert record.error is None and record.finish is FinishReason.STOP
    assert record.reasoning == expected_reasoning(MODEL, PROMPT, 12)
    assert record.text == expected_text(MODEL, PROMPT, 5)
    assert reasoning_tokens(record) == COUNTED[provider] and not record.usage_estimated
    timing = record.timing
    assert timing.ttft_reasoning_ms is not None and timing.ttft_answer_ms is not None
    assert timing.ttft_ms == timing.ttft_reasoning_ms < timing.ttft_answer_ms


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("off", [{"reasoning_effort": "none"}, {"thinking_budget": 0}])
async def test_reasoning_turned_off_streams_none(provider: str, off: dict[str, Any], fake_env: dict[str, str],
                                                 client: httpx2.AsyncClient) -> None:
    record = await call(f"{provider}/{MODEL}", fake_env, client, **off)
    assert record.error is None and record.reasoning == "" and record.text == expected_text(MODEL, PROMPT, 5)
    assert record.timing.ttft_reasoning_ms is None and record.timing.ttft_ms == record.timing.ttft_answer_ms


async def test_a_budget_over_max_tokens_is_raised_for_anthropic(fake_env: dict[str, str],
                                                                client: httpx2.AsyncClient) -> None:
    """The fake server refuses ``budget_tokens >= max_tokens`` as Anthropic does; ours sends budget + max_tokens."""
    record = await call(f"fake-anthropic/{MODEL}", fake_env, client, thinking_budget=2048, max_tokens=100)
    assert record.error is None and record.reasoning == expected_reasoning(MODEL, PROMPT, 12)


async def test_openai_sdk_agrees_on_chat_reasoning(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                                   client: httpx2.AsyncClient) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    stream = await sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}], max_completion_tokens=4000,
        reasoning_effort="high", stream=True, stream_options={"include_usage": True})
    reasoning, text, finish, usage = "", "", None, None
    async for chunk in stream:
        for choice in chunk.choices:
            reasoning += getattr(choice.delta, "reasoning_content", None) or ""  # a compatible server's field
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    record = await call(f"fake/{MODEL}", fake_env, client, reasoning_effort="high")
    assert (reasoning, text) == (record.reasoning, record.text) and reasoning
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == reasoning_tokens(record) == 12
    assert finish == record.finish_raw == "stop"


async def test_openai_sdk_agrees_on_responses_reasoning_summary(fake_server: FakeServerProcess,
                                                                fake_env: dict[str, str],
                                                                client: httpx2.AsyncClient) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    stream = await sdk.responses.create(model=MODEL, input=PROMPT, max_output_tokens=4000, stream=True,
                                        reasoning={"effort": "medium", "summary": "auto"})
    deltas, final = "", None
    async for event in stream:
        if event.type == "response.reasoning_summary_text.delta":
            deltas += event.delta
        elif event.type == "response.completed":
            final = event.response
    record = await call(f"fake-responses/{MODEL}", fake_env, client, reasoning_effort="medium")
    assert final is not None and final.usage is not None
    summaries = [part.text for item in final.output if item.type == "reasoning"
                 for part in item.summary]  # type: ignore[union-attr]
    assert deltas == "".join(summaries) == record.reasoning and final.output_text == record.text
    assert final.usage.output_tokens_details.reasoning_tokens == reasoning_tokens(record) == 12
    assert final.status == record.finish_raw == "completed"


async def test_anthropic_sdk_agrees_on_thinking_blocks(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                                       client: httpx2.AsyncClient) -> None:
    sdk = anthropic.AsyncAnthropic(base_url=fake_server.base_url, api_key="test-key", max_retries=0)
    thinking = ""
    async with sdk.messages.stream(model=MODEL, max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 2048},
                                   messages=[{"role": "user", "content": PROMPT}]) as stream:
        async for event in stream:
            if event.type == "thinking":
                thinking += event.thinking
        final = await stream.get_final_message()
    record = await call(f"fake-anthropic/{MODEL}", fake_env, client, thinking_budget=2048)
    blocks = [block for block in final.content if block.type == "thinking"]
    assert [b.thinking for b in blocks] == [thinking] == [record.reasoning]  # type: ignore[union-attr]
    assert blocks[0].signature  # type: ignore[union-attr]  # the signature_delta closed the block
    assert final.usage.output_tokens_details is not None
    assert final.usage.output_tokens_details.thinking_tokens == reasoning_tokens(record) == 12
    assert final.stop_reason == record.finish_raw == "end_turn"
