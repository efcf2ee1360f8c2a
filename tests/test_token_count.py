"""Exact counts from the providers' own endpoints (against the fake server), used by `workbench tokens`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx2
import openai
import pytest

from tests.images import png
from tests.test_providers import PROMPT, call
from workbench.core.attachments import attachment_from_bytes
from workbench.core.reasoning_items import ReasoningItem
from workbench.core.request import ChatRequest, Message, Params
from workbench.core.tokens.provider_counts import count_with_providers
from workbench.core.tool_turns import TurnToolCall
from workbench.fakeserver.process import FakeServerProcess
from workbench.fakeserver.wire.tool_turns import sign_thinking


@pytest.mark.parametrize("target", ["fake-anthropic/counted", "fake-gemini/counted", "fake-responses/counted"])
async def test_exact_count_equals_the_usage_the_call_reports(target: str, fake_env: dict[str, str],
                                                           client: httpx2.AsyncClient) -> None:
    counts = await count_with_providers(PROMPT, [target], fake_env, client)
    record = await call(target, fake_env, client)
    assert record.usage is not None and counts == {target: record.usage.input_tokens}


async def test_vllm_and_llamacpp_tokenize(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                          client: httpx2.AsyncClient) -> None:
    env = {"VLLM_BASE_URL": f"{fake_server.base_url}/v1", "LLAMACPP_BASE_URL": f"{fake_server.base_url}/v1"}
    chat = await count_with_providers(PROMPT, ["vllm/qwen", "llamacpp/any"], env, client)
    served = await call("fake/qwen", fake_env, client)  # the same server's chat usage for the same messages
    assert served.usage is not None and chat == {"vllm/qwen": served.usage.input_tokens}  # llama.cpp: raw only
    raw = await count_with_providers(PROMPT, ["vllm/qwen", "llamacpp/any"], env, client, raw=True)
    words = len(PROMPT.messages[0].content.split())
    assert raw == {"vllm/qwen": words, "llamacpp/any": words}


async def test_no_key_or_a_dead_server_falls_back_to_the_estimate(client: httpx2.AsyncClient) -> None:
    counts = await count_with_providers(PROMPT, ["anthropic/claude-sonnet-4-5", "fake-gemini/x", "openai/gpt-4o"],
                                        {"WORKBENCH_FAKE_URL": "http://127.0.0.1:9"}, client)
    assert counts == {}


WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
TOOL_TURNS = ChatRequest(
    system="Be brief.",
    messages=(Message(role="user", content="Weather in Paris?"),
              Message(role="assistant", content="", reasoning_items=(
                  ReasoningItem(kind="thinking", text="I should look it up.",
                                signature=sign_thinking("I should look it up.")),),
                      tool_calls=(TurnToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),)),
              Message(role="tool", content="sunny and warm", tool_call_id="call_1"),
              Message(role="user", content="And this picture?",
                      attachments=(attachment_from_bytes(png(64, 64), "a.png"),))),
    params=Params(tools=(WEATHER,), tool_choice="auto", thinking_budget=2048, max_tokens=4096),
)


@pytest.mark.parametrize("target", ["fake-anthropic/counted", "fake-gemini/counted", "fake-responses/counted"])
async def test_a_count_sends_the_tools_and_turns_the_call_sends(target: str, fake_env: dict[str, str],
                                                                client: httpx2.AsyncClient) -> None:
    counts = await count_with_providers(TOOL_TURNS, [target], fake_env, client)
    record = await call(target, fake_env, client, TOOL_TURNS)
    assert record.error is None and record.usage is not None and not record.usage_estimated
    assert counts == {target: record.usage.input_tokens}
    bare = replace(TOOL_TURNS, params=Params(max_tokens=4096))
    without = await count_with_providers(bare, [target], fake_env, client)
    assert counts[target] > without[target]  # the tools count


async def test_vllm_tokenize_counts_the_tools(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                              client: httpx2.AsyncClient) -> None:
    env = {"VLLM_BASE_URL": f"{fake_server.base_url}/v1"}
    request = replace(PROMPT, params=Params(tools=(WEATHER,)))
    chat = await count_with_providers(request, ["vllm/qwen"], env, client)
    served = await call("fake/qwen", fake_env, client, request)
    assert served.usage is not None and chat == {"vllm/qwen": served.usage.input_tokens}
    assert chat["vllm/qwen"] > (await count_with_providers(PROMPT, ["vllm/qwen"], env, client))["vllm/qwen"]


async def test_the_openai_sdk_reads_the_responses_input_token_count(fake_server: FakeServerProcess,
                                                                    fake_env: dict[str, str],
                                                                    client: httpx2.AsyncClient) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    tools: Any = [{"type": "function", **WEATHER["function"]}]
    counted = await sdk.responses.input_tokens.count(model="counted", input="Weather in Paris?",
                                                     instructions="Be brief.", tools=tools)
    request = ChatRequest.from_prompt("Weather in Paris?", system="Be brief.", params=Params(tools=(WEATHER,)))
    ours = await count_with_providers(request, ["fake-responses/counted"], fake_env, client)
    assert counted.object == "response.input_tokens" and ours == {"fake-responses/counted": counted.input_tokens}
    raw = await count_with_providers(request, ["fake-responses/counted"], fake_env, client, raw=True)
    assert raw == {}  # raw text is not what the endpoint counts: the offline estimate answers
