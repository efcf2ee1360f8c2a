"""Prompt caching over real HTTP: the fake server's ``cache=1`` reports a repeated prefix as cache reads on every
wire (and Anthropic's breakpoints as writes, then reads), our adapters read them, and the official openai and
anthropic SDKs agree with our adapters on the cache counts."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from workbench.core.call_record import CallRecord, collect
from workbench.core.registry import make_provider, resolve
from workbench.core.request import CacheBreakpoints, ChatRequest, Message, ModelRef, Params
from workbench.fakeserver.process import FakeServerProcess
from workbench.fakeserver.text import count_input_tokens

SYSTEM = "You are a meticulous support agent for a large retailer; answer with the policy that applies and why."
HISTORY = (Message(role="user", content="My parcel arrived damaged, what now?"),
           Message(role="assistant", content="Sorry to hear that: send a photo and we will replace it."),
           Message(role="user", content="And if I would rather have a refund?"))
REQUEST = ChatRequest(system=SYSTEM, messages=HISTORY, params=Params(max_tokens=50))
PREFIX = count_input_tokens([SYSTEM, HISTORY[0].content, HISTORY[1].content])
"""The fake server's count of everything before the last message: what a provider that caches by itself reads."""


def fresh(name: str = "cache") -> str:
    """A model name no other test used: the fake server's cache is per wire and model name, for the whole run."""
    return f"{name}-{uuid.uuid4().hex[:8]}@cache=1"


async def call(target: str, env: dict[str, str], client: httpx2.AsyncClient,
               request: ChatRequest = REQUEST) -> CallRecord:
    record = await collect(make_provider(resolve(ModelRef.parse(target), env), client), request)
    assert record.error is None and record.usage is not None and not record.usage_estimated
    return record


@pytest.mark.parametrize(("provider", "read_field"), [
    ("fake", True), ("fake-responses", True), ("fake-gemini", False), ("fake-ollama", False)])
async def test_a_repeated_prefix_is_read_from_the_cache(provider: str, read_field: bool, fake_env: dict[str, str],
                                                        client: httpx2.AsyncClient) -> None:
    target = f"{provider}/{fresh()}"
    first = await call(target, fake_env, client)
    second = await call(target, fake_env, client)
    assert first.usage is not None and second.usage is not None
    assert second.usage.input_tokens == first.usage.input_tokens
    if provider == "fake-ollama":  # Ollama reports no cache
        assert (second.usage.cache_read_tokens, second.usage.cache_write_tokens) == (None, None)
        return
    # OpenAI says 0 cached tokens when none were; Gemini leaves the field out (unknown); only Responses reports
    # writes (``input_tokens_details.cache_write_tokens``: none, caching by itself)
    assert first.usage.cache_read_tokens == (0 if read_field else None)
    assert second.usage.cache_read_tokens == PREFIX
    assert second.usage.cache_write_tokens == (0 if provider == "fake-responses" else None)


async def test_anthropic_writes_at_its_breakpoints_then_reads(fake_env: dict[str, str],
                                                              client: httpx2.AsyncClient) -> None:
    target = f"fake-anthropic/{fresh()}"
    plain = await call(target, fake_env, client)
    assert plain.usage is not None and (plain.usage.cache_read_tokens, plain.usage.cache_write_tokens) == (0, 0)
    request = replace(REQUEST, cache=CacheBreakpoints(system=True, messages=(1,)))
    first = await call(target, fake_env, client, request)
    second = await call(target, fake_env, client, request)
    assert first.usage is not None and second.usage is not None
    assert (first.usage.cache_read_tokens, first.usage.cache_write_tokens) == (0, PREFIX)
    assert (second.usage.cache_read_tokens, second.usage.cache_write_tokens) == (PREFIX, 0)
    # our input tokens include the cache parts (Anthropic's exclude them)
    assert first.usage.input_tokens == second.usage.input_tokens == plain.usage.input_tokens
    only_system = replace(REQUEST, cache=CacheBreakpoints(system=True))
    third = await call(target, fake_env, client, only_system)  # the system prefix was written with the first
    assert third.usage is not None and third.usage.cache_read_tokens == count_input_tokens([SYSTEM])


async def test_a_cache_read_answers_sooner(fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    target = f"fake/{fresh()},ttft=600"
    cold = await call(target, fake_env, client)
    warm = await call(target, fake_env, client)
    assert cold.timing.ttft_ms is not None and warm.timing.ttft_ms is not None
    assert cold.timing.ttft_ms >= 600 > warm.timing.ttft_ms  # half the share read comes off: about 400 ms


async def test_openai_sdk_agrees_on_cached_tokens(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                                  client: httpx2.AsyncClient) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    model = fresh()
    messages: Any = [{"role": "system", "content": SYSTEM}, *({"role": m.role, "content": m.content} for m in HISTORY)]
    await call(f"fake/{model}", fake_env, client)  # warms the cache
    stream = await sdk.chat.completions.create(model=model, messages=messages, max_completion_tokens=50, stream=True,
                                               stream_options={"include_usage": True})
    usage = None
    async for chunk in stream:
        usage = chunk.usage or usage
    ours = await call(f"fake/{model}", fake_env, client)
    assert usage is not None and usage.prompt_tokens_details is not None and ours.usage is not None
    assert usage.prompt_tokens_details.cached_tokens == ours.usage.cache_read_tokens == PREFIX
    assert usage.prompt_tokens == ours.usage.input_tokens

    await call(f"fake-responses/{model}", fake_env, client)
    final = None
    events = await sdk.responses.create(model=model, instructions=SYSTEM, max_output_tokens=50, stream=True,
                                        input=[{"role": m.role, "content": m.content} for m in HISTORY])
    async for event in events:
        if event.type == "response.completed":
            final = event.response
    ours = await call(f"fake-responses/{model}", fake_env, client)
    assert final is not None and final.usage is not None and ours.usage is not None
    assert final.usage.input_tokens_details.cached_tokens == ours.usage.cache_read_tokens == PREFIX
    assert final.usage.input_tokens == ours.usage.input_tokens


async def test_anthropic_sdk_agrees_on_cache_reads_and_writes(fake_server: FakeServerProcess,
                                                              fake_env: dict[str, str],
                                                              client: httpx2.AsyncClient) -> None:
    sdk = anthropic.AsyncAnthropic(base_url=fake_server.base_url, api_key="test-key", max_retries=0)
    control: Any = {"type": "ephemeral", "ttl": "1h"}
    marked = ChatRequest(system=SYSTEM, messages=HISTORY, params=Params(max_tokens=50),
                         cache=CacheBreakpoints(messages=(1,), ttl="1h"))
    model = fresh()
    messages: Any = [{"role": m.role, "content": m.content} for m in HISTORY]
    messages[1] = {"role": "assistant", "content": [{"type": "text", "text": HISTORY[1].content,
                                                     "cache_control": control}]}
    async with sdk.messages.stream(model=model, max_tokens=50, system=SYSTEM, messages=messages) as stream:
        written = await stream.get_final_message()
    ours = await call(f"fake-anthropic/{model}", fake_env, client, marked)  # the same prefix: now a read
    assert written.usage.cache_creation_input_tokens == PREFIX and written.usage.cache_read_input_tokens == 0
    assert written.usage.cache_creation is not None
    assert written.usage.cache_creation.ephemeral_1h_input_tokens == PREFIX  # the 1h TTL's bucket
    assert ours.usage is not None and (ours.usage.cache_read_tokens, ours.usage.cache_write_tokens) == (PREFIX, 0)
    async with sdk.messages.stream(model=model, max_tokens=50, system=SYSTEM, messages=messages) as stream:
        read = await stream.get_final_message()
    assert read.usage.cache_read_input_tokens == ours.usage.cache_read_tokens
    assert read.usage.cache_creation_input_tokens == ours.usage.cache_write_tokens == 0
    assert (read.usage.input_tokens + (read.usage.cache_read_input_tokens or 0)
            + (read.usage.cache_creation_input_tokens or 0)) == ours.usage.input_tokens
