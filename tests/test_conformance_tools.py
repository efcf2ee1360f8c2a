"""Tool calls over real HTTP: the fake server's ``tools=N`` streams, read by our adapters on every wire, and by
the official openai and anthropic SDKs, which agree with our adapters on every field."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from workbench.core.call_record import CallRecord, collect
from workbench.core.events import FinishReason, StreamEvent, ToolCallDelta
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef, Params
from workbench.fakeserver.process import FakeServerProcess

WEATHER = {"type": "object", "properties": {
    "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    "days": {"type": "integer"}, "alerts": {"type": "boolean"}, "note": {"type": "string"}},
    "required": ["city", "unit", "days", "alerts"]}
TOOLS = ({"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER}},
         {"type": "function", "function": {"name": "get_time", "description": "Time",
                                           "parameters": {"type": "object", "properties": {}}}})
PROMPT = "What is the weather in Paris?"
REQUEST = ChatRequest.from_prompt(PROMPT, params=Params(max_tokens=200, tools=TOOLS))
EXPECTED = [("get_weather", {"city": "city-0", "unit": "celsius", "days": 1, "alerts": True}),
            ("get_time", {}),
            ("get_weather", {"city": "city-2", "unit": "celsius", "days": 3, "alerts": True})]
MODEL = "tools@tools=3"
PREFIXES = {"fake": "call_", "fake-responses": "call_", "fake-anthropic": "toolu_01", "fake-gemini": "",
            "fake-ollama": ""}


async def traced(target: str, env: dict[str, str], client: httpx2.AsyncClient,
                 request: ChatRequest = REQUEST) -> tuple[CallRecord, list[ToolCallDelta]]:
    deltas: list[ToolCallDelta] = []

    def seen(event: StreamEvent) -> None:
        if isinstance(event, ToolCallDelta):
            deltas.append(event)

    provider = make_provider(resolve(ModelRef.parse(target), env), client)
    return await collect(provider, request, on_event=seen), deltas


@pytest.mark.parametrize("provider", list(PREFIXES))
async def test_every_wire_reads_the_fake_servers_tool_calls(provider: str, fake_env: dict[str, str],
                                                            client: httpx2.AsyncClient) -> None:
    record, deltas = await traced(f"{provider}/{MODEL}", fake_env, client)
    assert record.error is None and record.text == ""
    assert [(c.name, json.loads(c.arguments)) for c in record.tool_calls] == EXPECTED
    assert all(c.id.startswith(PREFIXES[provider]) for c in record.tool_calls)
    assert record.finish is FinishReason.TOOL_CALLS
    assert record.usage is not None and not record.usage_estimated
    pieces = [d for d in deltas if d.index == 0 and d.arguments]
    if provider in ("fake", "fake-responses", "fake-anthropic"):  # wires that stream arguments in pieces
        assert len(pieces) >= 2
    else:  # Gemini and Ollama send whole argument objects, kept as compact JSON
        assert [p.arguments for p in pieces] == ['{"city":"city-0","unit":"celsius","days":1,"alerts":true}']


@pytest.mark.parametrize("provider", list(PREFIXES))
async def test_without_tools_in_the_request_the_reply_is_text(provider: str, fake_env: dict[str, str],
                                                              client: httpx2.AsyncClient) -> None:
    record, _ = await traced(f"{provider}/{MODEL}", fake_env, client, ChatRequest.from_prompt(PROMPT))
    assert record.text and record.tool_calls == [] and record.finish is FinishReason.STOP


async def test_text_and_tool_calls_together(fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    record, _ = await traced("fake-anthropic/tools@tools=1,tokens=4", fake_env, client)
    assert len(record.text.split()) == 4 and [c.name for c in record.tool_calls] == ["get_weather"]


def ours(record: CallRecord) -> list[tuple[str, str, str]]:
    return [(c.id, c.name, c.arguments) for c in record.tool_calls]


async def test_openai_sdk_agrees_on_chat_tool_calls(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                                    client: httpx2.AsyncClient) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    kwargs: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}],
                              "tools": list(TOOLS), "max_completion_tokens": 200}
    stream = await sdk.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs)
    calls: dict[int, list[str]] = {}
    finish, usage = None, None
    async for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or ():
                call = calls.setdefault(delta.index, ["", "", ""])
                call[0] += delta.id or ""
                if delta.function is not None:
                    call[1] += delta.function.name or ""
                    call[2] += delta.function.arguments or ""
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    async with sdk.chat.completions.stream(**kwargs) as helper:
        final = await helper.get_final_completion()
    record, _ = await traced(f"fake/{MODEL}", fake_env, client)
    assert [tuple(calls[i]) for i in sorted(calls)] == ours(record)
    message = final.choices[0].message
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ()  # type: ignore[union-attr]
            ] == ours(record)
    assert finish == final.choices[0].finish_reason == record.finish_raw == "tool_calls"
    assert usage is not None and record.usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (record.usage.input_tokens, record.usage.output_tokens)


async def test_openai_sdk_agrees_on_responses_function_calls(fake_server: FakeServerProcess,
                                                             fake_env: dict[str, str],
                                                             client: httpx2.AsyncClient) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    tools: Any = [{"type": "function", **tool["function"]} for tool in TOOLS]
    stream = await sdk.responses.create(model=MODEL, input=PROMPT, tools=tools, stream=True, max_output_tokens=200)
    arguments: dict[str, str] = {}
    final = None
    async for event in stream:
        if event.type == "response.function_call_arguments.delta":
            arguments[event.item_id] = arguments.get(event.item_id, "") + event.delta
        elif event.type == "response.completed":
            final = event.response
    record, _ = await traced(f"fake-responses/{MODEL}", fake_env, client)
    assert final is not None and final.usage is not None and record.usage is not None
    items = [item for item in final.output if item.type == "function_call"]
    assert [(i.call_id, i.name, i.arguments) for i in items] == ours(record)  # type: ignore[union-attr]
    assert [arguments[i.id] for i in items] == [c.arguments for c in record.tool_calls]  # type: ignore[union-attr, index]
    assert final.status == record.finish_raw == "completed" and record.finish is FinishReason.TOOL_CALLS
    assert (final.usage.input_tokens, final.usage.output_tokens) == (record.usage.input_tokens,
                                                                      record.usage.output_tokens)


async def test_anthropic_sdk_agrees_on_tool_use_blocks(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                                       client: httpx2.AsyncClient) -> None:
    sdk = anthropic.AsyncAnthropic(base_url=fake_server.base_url, api_key="test-key", max_retries=0)
    tools: Any = [{"name": t["function"]["name"], "description": t["function"]["description"],
                   "input_schema": t["function"]["parameters"]} for t in TOOLS]
    async with sdk.messages.stream(model=MODEL, max_tokens=200, tools=tools,
                                   messages=[{"role": "user", "content": PROMPT}]) as stream:
        partial: dict[int, str] = {}
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                partial[event.index] = partial.get(event.index, "") + event.delta.partial_json
        final = await stream.get_final_message()
    record, _ = await traced(f"fake-anthropic/{MODEL}", fake_env, client)
    blocks = [block for block in final.content if block.type == "tool_use"]
    assert [(b.id, b.name, b.input) for b in blocks] == [(c.id, c.name, json.loads(c.arguments))
                                                          for c in record.tool_calls]
    assert [partial[i] for i in sorted(partial)] == [c.arguments for c in record.tool_calls]
    assert final.stop_reason == record.finish_raw == "tool_use" and record.finish is FinishReason.TOOL_CALLS
    assert record.usage is not None
    assert final.usage.output_tokens == record.usage.output_tokens


async def test_a_non_streamed_reply_holds_the_same_calls_whole(fake_server: FakeServerProcess,
                                                               fake_env: dict[str, str],
                                                               client: httpx2.AsyncClient) -> None:
    oai = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    done = await oai.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PROMPT}],
                                             tools=list(TOOLS), max_completion_tokens=200)  # type: ignore[arg-type]
    streamed, _ = await traced(f"fake/{MODEL}", fake_env, client)
    message = done.choices[0].message
    assert message.content is None and done.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ()  # type: ignore[union-attr]
            ] == ours(streamed)
    claude = anthropic.AsyncAnthropic(base_url=fake_server.base_url, api_key="test-key", max_retries=0)
    tools: Any = [{"name": t["function"]["name"], "input_schema": t["function"]["parameters"]} for t in TOOLS]
    reply = await claude.messages.create(model=MODEL, max_tokens=200, tools=tools,
                                         messages=[{"role": "user", "content": PROMPT}])
    assert [(b.name, b.input) for b in reply.content if b.type == "tool_use"] == EXPECTED
    assert reply.stop_reason == "tool_use"


@pytest.mark.parametrize("provider", ["fake", "fake-responses", "fake-anthropic"])
async def test_tool_deltas_splits_the_arguments_over_that_many_deltas(provider: str, fake_env: dict[str, str],
                                                                      client: httpx2.AsyncClient) -> None:
    record, deltas = await traced(f"{provider}/tools@tools=1,tool_deltas=40", fake_env, client)
    pieces = [d.arguments for d in deltas if d.arguments]
    arguments = '{"city":"city-0","unit":"celsius","days":1,"alerts":true}'
    assert len(pieces) == 29 and "".join(pieces) == arguments == record.tool_calls[0].arguments  # 57 chars, 2 each
    record, deltas = await traced(f"{provider}/tools@tools=1,tool_deltas=1", fake_env, client)
    assert [d.arguments for d in deltas if d.arguments] == [arguments]


async def test_sdks_agree_on_arguments_in_many_deltas(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                                      client: httpx2.AsyncClient) -> None:
    model = "tools@tools=2,tool_deltas=50"
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    async with sdk.chat.completions.stream(model=model, messages=[{"role": "user", "content": PROMPT}],
                                           tools=list(TOOLS), max_completion_tokens=200) as helper:  # type: ignore[arg-type]
        final = await helper.get_final_completion()
    record, _ = await traced(f"fake/{model}", fake_env, client)
    assert [(c.id, c.function.name, c.function.arguments)  # type: ignore[union-attr]
            for c in final.choices[0].message.tool_calls or ()] == ours(record)
    claude = anthropic.AsyncAnthropic(base_url=fake_server.base_url, api_key="test-key", max_retries=0)
    tools: Any = [{"name": t["function"]["name"], "input_schema": t["function"]["parameters"]} for t in TOOLS]
    async with claude.messages.stream(model=model, max_tokens=200, tools=tools,
                                      messages=[{"role": "user", "content": PROMPT}]) as stream:
        message = await stream.get_final_message()
    record, _ = await traced(f"fake-anthropic/{model}", fake_env, client)
    assert [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"] == [
        (c.id, c.name, json.loads(c.arguments)) for c in record.tool_calls]
    assert [c.name for c in record.tool_calls] == ["get_weather", "get_time"]
