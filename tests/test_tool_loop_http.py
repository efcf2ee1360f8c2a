"""The tool loop over real HTTP on every wire: a reply's tool calls answered and sent back, the fake server checking
the history as the real APIs do (a 400 in the provider's words) and answering text, so the loop ends; the official
openai and anthropic SDKs send the same conversation in their own types and their request body equals ours."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from workbench.core.call_record import CallRecord, collect
from workbench.core.conversation import continued, record_turn, reply_turn
from workbench.core.events import FinishReason
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef, Params
from workbench.fakeserver.process import FakeServerProcess

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = ({"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER}},)
PROMPT = "What is the weather in Paris and Oslo?"
MODEL = "loop@tools=2"
REQUEST = ChatRequest.from_prompt(PROMPT, params=Params(max_tokens=200, tools=TOOLS))


async def call(target: str, request: ChatRequest, env: dict[str, str], client: httpx2.AsyncClient) -> CallRecord:
    return await collect(make_provider(resolve(ModelRef.parse(target), env), client), request)


def answered(request: ChatRequest, record: CallRecord) -> ChatRequest:
    reply = reply_turn(request, record.text, record.tool_calls)
    return continued(request, reply, {c.id: f"result {i}" for i, c in enumerate(reply.tool_calls)})


@pytest.mark.parametrize("target", [f"{p}/{MODEL}" for p in ("fake", "fake-responses", "fake-anthropic",
                                                               "fake-gemini", "fake-ollama")]
                         + ["fake-gemini/gemini-3-flash@tools=2"])  # Gemini 3 wants its thought signature back
async def test_after_the_tool_results_the_reply_is_text_so_the_loop_ends(target: str, fake_env: dict[str, str],
                                                                         client: httpx2.AsyncClient) -> None:
    first = await call(target, REQUEST, fake_env, client)
    assert first.error is None and len(first.tool_calls) == 2 and first.finish is FinishReason.TOOL_CALLS
    second = await call(target, answered(REQUEST, first), fake_env, client)
    assert second.error is None, second.error
    assert second.text and second.tool_calls == [] and second.finish is FinishReason.STOP


REJECTED: list[tuple[str, str, dict[str, Any], str]] = [
    ("openai chat: a tool message with no tool_calls before it", "/v1/chat/completions",
     {"model": "m", "messages": [{"role": "user", "content": "hi"},
                                 {"role": "tool", "tool_call_id": "call_1", "content": "x"}]},
     "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'"),
    ("openai chat: a call without its result", "/v1/chat/completions",
     {"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None,
      "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
      {"role": "user", "content": "and?"}]},
     "The following tool_call_ids did not have response messages: call_1"),
    ("responses: an output for no call", "/v1/responses",
     {"model": "m", "input": [{"role": "user", "content": "hi"},
                              {"type": "function_call_output", "call_id": "call_9", "output": "x"}]},
     "No tool call found for function call output with call_id call_9."),
    ("anthropic: tool_use without tool_result after it", "/v1/messages",
     {"model": "m", "max_tokens": 10, "tools": [{"name": "f", "input_schema": {"type": "object"}}], "messages": [
         {"role": "user", "content": "hi"},
         {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
         {"role": "user", "content": "and?"}]},
     "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"),
    ("anthropic: tool blocks without tools", "/v1/messages",
     {"model": "m", "max_tokens": 10, "messages": [
         {"role": "user", "content": "hi"},
         {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}]}]},
     "Requests which include `tool_use` or `tool_result` blocks must define tools."),
    ("anthropic: a tool_result for no tool_use", "/v1/messages",
     {"model": "m", "max_tokens": 10, "tools": [{"name": "f", "input_schema": {"type": "object"}}], "messages": [
         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "content": "x"}]}]},
     "unexpected `tool_use_id` found in `tool_result` blocks: toolu_2"),
    ("gemini: fewer responses than calls", "/v1beta/models/m:generateContent",
     {"contents": [{"role": "user", "parts": [{"text": "hi"}]},
                   {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}},
                                               {"functionCall": {"name": "f", "args": {}}}]},
                   {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"a": 1}}}]}]},
     "the number of function response parts is equal to the number of function call parts"),
    ("gemini: a response that is not an object", "/v1beta/models/m:generateContent",
     {"contents": [{"role": "user", "parts": [{"text": "hi"}]},
                   {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
                   {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": "sunny"}}]}]},
     "function_response.response"),
    ("gemini 3: a function call without its thought signature", "/v1beta/models/gemini-3-flash:generateContent",
     {"contents": [{"role": "user", "parts": [{"text": "hi"}]},
                   {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
                   {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"a": 1}}}]}]},
     "Function call is missing a thought_signature in functionCall parts."),
    ("ollama: arguments as a string", "/api/chat",
     {"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "",
      "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "content": "x"}]},
     "cannot unmarshal string into Go struct field ToolCallFunction"),
]


@pytest.mark.parametrize(("case", "path", "body", "message"), REJECTED, ids=[r[0] for r in REJECTED])
async def test_the_fake_server_rejects_a_broken_history_as_the_real_api_does(
        case: str, path: str, body: dict[str, Any], message: str, fake_server: FakeServerProcess) -> None:
    async with httpx2.AsyncClient(base_url=fake_server.base_url, timeout=10) as raw:
        response = await raw.post(path, json=body)
    assert response.status_code == 400, case
    assert message in response.text


class Capture:
    """The JSON bodies an SDK's HTTP client sent (an httpx request hook: the real request, over real HTTP)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, request: httpx2.Request) -> None:
        self.bodies.append(json.loads(request.content))


async def _ours(target: str, fake_env: dict[str, str], client: httpx2.AsyncClient) -> tuple[CallRecord, dict[str, Any]]:
    """Our first call, and the body of our continuation of it (every call answered ``result N``)."""
    first = await call(target, REQUEST, fake_env, client)
    provider = make_provider(resolve(ModelRef.parse(target), fake_env), client)
    body: dict[str, Any] = provider.body(provider.resolve(answered(REQUEST, first)))  # type: ignore[attr-defined]
    return first, body


async def test_the_openai_sdk_sends_the_same_chat_history_as_we_do(fake_server: FakeServerProcess,
                                                                   fake_env: dict[str, str],
                                                                   client: httpx2.AsyncClient) -> None:
    from openai.types.chat import (
        ChatCompletionAssistantMessageParam,
        ChatCompletionMessageParam,
        ChatCompletionToolMessageParam,
    )

    capture = Capture()
    async with httpx2.AsyncClient(event_hooks={"request": [capture]}) as http:
        sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="k", max_retries=0, http_client=http)
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]
        first = await sdk.chat.completions.create(model=MODEL, messages=messages, tools=list(TOOLS),  # type: ignore[arg-type]
                                                  max_completion_tokens=200)
        calls = first.choices[0].message.tool_calls or []
        assistant: ChatCompletionAssistantMessageParam = {"role": "assistant", "content": None, "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.function.name,  # type: ignore[union-attr]
                                                            "arguments": c.function.arguments}}  # type: ignore[union-attr]
            for c in calls]}
        results: list[ChatCompletionToolMessageParam] = [
            {"role": "tool", "tool_call_id": c.id, "content": f"result {i}"} for i, c in enumerate(calls)]
        second = await sdk.chat.completions.create(model=MODEL, messages=[*messages, assistant, *results],
                                                   tools=list(TOOLS), max_completion_tokens=200)  # type: ignore[arg-type]
    record, ours = await _ours(f"fake/{MODEL}", fake_env, client)
    assert [c.id for c in calls] == [c.id for c in record.tool_calls]
    assert capture.bodies[1]["messages"] == ours["messages"]
    assert second.choices[0].message.content and second.choices[0].finish_reason == "stop"


async def test_the_openai_sdk_sends_the_same_responses_items_as_we_do(fake_server: FakeServerProcess,
                                                                      fake_env: dict[str, str],
                                                                      client: httpx2.AsyncClient) -> None:
    from openai.types.responses import ResponseInputParam

    capture = Capture()
    tools: Any = [{"type": "function", **tool["function"]} for tool in TOOLS]
    async with httpx2.AsyncClient(event_hooks={"request": [capture]}) as http:
        sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="k", max_retries=0, http_client=http)
        items: ResponseInputParam = [{"role": "user", "content": PROMPT}]
        first = await sdk.responses.create(model=MODEL, input=items, tools=tools, max_output_tokens=200)
        calls = [item for item in first.output if item.type == "function_call"]
        history: ResponseInputParam = [
            *items,
            *({"type": "function_call", "call_id": c.call_id, "name": c.name, "arguments": c.arguments}
              for c in calls),
            *({"type": "function_call_output", "call_id": c.call_id, "output": f"result {i}"}
              for i, c in enumerate(calls))]
        second = await sdk.responses.create(model=MODEL, input=history, tools=tools, max_output_tokens=200)
    _, ours = await _ours(f"fake-responses/{MODEL}", fake_env, client)
    assert capture.bodies[1]["input"] == ours["input"]
    assert second.output_text and not [item for item in second.output if item.type == "function_call"]


async def test_the_anthropic_sdk_sends_the_same_tool_turns_as_we_do(fake_server: FakeServerProcess,
                                                                    fake_env: dict[str, str],
                                                                    client: httpx2.AsyncClient) -> None:
    from anthropic.types import MessageParam

    capture = Capture()
    tools: Any = [{"name": t["function"]["name"], "description": t["function"]["description"],
                   "input_schema": t["function"]["parameters"]} for t in TOOLS]
    async with httpx2.AsyncClient(event_hooks={"request": [capture]}) as http:
        sdk = anthropic.AsyncAnthropic(base_url=fake_server.base_url, api_key="k", max_retries=0, http_client=http)
        messages: list[MessageParam] = [{"role": "user", "content": PROMPT}]
        first = await sdk.messages.create(model=MODEL, max_tokens=200, tools=tools, messages=messages)
        uses = [block for block in first.content if block.type == "tool_use"]
        history: list[MessageParam] = [
            *messages,
            {"role": "assistant", "content": [{"type": "tool_use", "id": b.id, "name": b.name, "input": b.input}
                                              for b in uses]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": b.id, "content": f"result {i}"}
                                         for i, b in enumerate(uses)]}]
        second = await sdk.messages.create(model=MODEL, max_tokens=200, tools=tools, messages=history)
    _, ours = await _ours(f"fake-anthropic/{MODEL}", fake_env, client)
    assert capture.bodies[1]["messages"] == ours["messages"]
    assert second.stop_reason == "end_turn" and [b.type for b in second.content] == ["text"]


async def test_anthropic_with_thinking_on_gets_the_signed_thinking_block_back(fake_env: dict[str, str],
                                                                              client: httpx2.AsyncClient) -> None:
    request = ChatRequest.from_prompt(PROMPT, params=Params(max_tokens=200, tools=TOOLS, thinking_budget=2048))
    target = "fake-anthropic/think@tools=1,reasoning=8"
    first = await call(target, request, fake_env, client)
    items = first.reasoning_to_send()
    assert first.error is None and first.reasoning and len(items) == 1 and len(first.tool_calls) == 1
    results = {first.tool_calls[0].id: "sunny"}
    bare = continued(request, reply_turn(request, first.text, first.tool_calls), results)  # the thinking left out
    refused = await call(target, bare, fake_env, client)
    assert refused.error is not None and "must start with a thinking block" in str(refused.error)
    signed = record_turn(request, first)
    provider = make_provider(resolve(ModelRef.parse(target), fake_env), client)
    body: dict[str, Any] = provider.body(provider.resolve(continued(request, signed, results)))  # type: ignore[attr-defined]
    assert body["messages"][1]["content"][0] == {"type": "thinking", "thinking": first.reasoning,
                                                 "signature": items[0].signature}
    second = await call(target, continued(request, signed, results), fake_env, client)
    assert second.error is None and second.text and second.tool_calls == []
