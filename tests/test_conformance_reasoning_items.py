"""Reasoning items over real HTTP: the fake server's Responses stream with ``include:
["reasoning.encrypted_content"]`` read by the official openai SDK and by ours (the same item: id, summary, encrypted
content), each sent back in the next turn of the tool loop and accepted, while a forged or missing encrypted
content is refused as OpenAI refuses it; ``workbench run --continue`` does the same from the trace log."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest
import yaml

from tests.test_cli import json_lines, workbench
from tests.test_cli_continue import TOOLS
from workbench.core.call_record import CallRecord, collect
from workbench.core.conversation import continued, record_turn
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef, Params
from workbench.fakeserver.process import FakeServerProcess
from workbench.fakeserver.wire.tool_turns import seal_reasoning

MODEL = "thinker@reasoning=6,tools=1"
WEATHER: dict[str, Any] = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
REQUEST = ChatRequest.from_prompt("Weather in Paris?", params=Params(tools=(WEATHER,), reasoning_effort="low",
                                                                     max_tokens=2000))


async def ours(request: ChatRequest, env: dict[str, str], client: httpx2.AsyncClient) -> CallRecord:
    return await collect(make_provider(resolve(ModelRef.parse(f"fake-responses/{MODEL}"), env), client), request)


async def test_the_openai_sdk_and_ours_read_the_same_reasoning_item_and_both_send_it_back(
        fake_server: FakeServerProcess, fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER["function"]["parameters"]}
    stream = await sdk.responses.create(model=MODEL, input="Weather in Paris?", tools=[tool], store=False,  # type: ignore[list-item]
                                        reasoning={"effort": "low", "summary": "auto"}, stream=True,
                                        include=["reasoning.encrypted_content"])
    final = None
    async for event in stream:
        if event.type == "response.completed":
            final = event.response
    assert final is not None
    [item] = [i for i in final.output if i.type == "reasoning"]
    [call] = [i for i in final.output if i.type == "function_call"]
    record = await ours(REQUEST, fake_env, client)
    [mine] = record.reasoning_to_send()
    assert item.encrypted_content == seal_reasoning(item.id) and mine.data == seal_reasoning(str(mine.id))
    assert [s.text for s in item.summary] == list(mine.summary or ()) and "".join(mine.summary or ()) == \
        record.reasoning
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"},
                          *(i.model_dump(exclude_none=True) for i in final.output),
                          {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
    second = await sdk.responses.create(model=MODEL, input=history, tools=[tool], store=False)  # type: ignore[list-item]
    assert second.status == "completed" and second.output_text
    again = await ours(continued(REQUEST, record_turn(REQUEST, record), {record.tool_calls[0].id: "sunny"}),
                       fake_env, client)
    assert again.error is None and again.text and again.tool_calls == []
    history[1] = {**history[1], "encrypted_content": seal_reasoning("rs_someone_else")}
    with pytest.raises(openai.BadRequestError, match="could not be verified"):
        await sdk.responses.create(model=MODEL, input=history, tools=[tool], store=False)  # type: ignore[list-item]


async def test_a_reasoning_item_sent_back_without_its_content_is_refused(fake_env: dict[str, str],
                                                                        client: httpx2.AsyncClient) -> None:
    """What a client that keeps only the item's id meets with ``store: false``: a 404."""
    record = await ours(REQUEST, fake_env, client)
    turn = record_turn(REQUEST, record)
    bare = replace(turn, reasoning_items=tuple(replace(i, data="")
                                                            for i in turn.reasoning_items))
    sent = continued(REQUEST, bare, {record.tool_calls[0].id: "sunny"})
    forged = replace(turn, reasoning_items=tuple(replace(i, data="forged")
                                                              for i in turn.reasoning_items))
    refused = await ours(continued(REQUEST, forged, {record.tool_calls[0].id: "sunny"}), fake_env, client)
    assert refused.error is not None and "could not be verified" in str(refused.error)
    assert (await ours(sent, fake_env, client)).error is None  # not sendable: left out rather than sent bare


def test_run_continue_sends_the_reasoning_item_back_from_the_trace_log(tmp_path: Path,
                                                                       fake_env: dict[str, str]) -> None:
    tools = tmp_path / "tools.yaml"
    tools.write_text(TOOLS)
    first = workbench("run", "Weather?", "-m", f"fake-responses/{MODEL}", "--tools", str(tools),
                      "--reasoning-effort", "low", "--json", env=fake_env)
    assert first.returncode == 0, first.stderr
    [row] = json_lines(first.stdout)
    call_id = row["tool_calls"][0]["id"]  # type: ignore[index]
    done = workbench("run", "--continue", str(row["trace_id"]), "--tool-result", f"{call_id}=sun", "--json",
                     env=fake_env)
    assert done.returncode == 0, done.stderr  # the fake server refuses a reasoning item it did not seal
    [reply] = json_lines(done.stdout)
    assert reply["error"] is None and reply["text"] and reply["tool_calls"] == []
    shown = json.loads(workbench("traces", "show", str(reply["trace_id"]), "--json", env=fake_env).stdout)
    turn = shown["request"]["messages"][1]
    [item] = turn["reasoning_items"]
    assert turn["origin"] == "fake-responses:openai_responses" and item["data"] == seal_reasoning(item["id"])


INTERLEAVED = "claude@tools=2,reasoning=6,interleaved=1"


async def test_the_anthropic_sdk_and_ours_read_interleaved_and_redacted_thinking_and_send_it_back(
        fake_server: FakeServerProcess, fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    """Thinking between two tool calls (the interleaved-thinking beta) with a redacted block: the SDK's content blocks
    and our reasoning items agree, and both loops go on; the fake refuses a forged signature as Anthropic does."""
    sdk = anthropic.AsyncAnthropic(base_url=fake_server.base_url, api_key="test-key", max_retries=0)
    tool = {"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}
    prompt = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    thinking: Any = {"type": "enabled", "budget_tokens": 2048}
    async with sdk.messages.stream(model=INTERLEAVED, max_tokens=4000, thinking=thinking, tools=[tool],  # type: ignore[list-item]
                                   messages=prompt) as stream:  # type: ignore[arg-type]
        final = await stream.get_final_message()
    kinds = [b.type for b in final.content if b.type != "text"]
    assert kinds == ["thinking", "tool_use", "redacted_thinking", "thinking", "tool_use"]
    request = ChatRequest.from_prompt("Weather in Paris and Rome?", params=Params(
        tools=(WEATHER,), thinking_budget=2048, max_tokens=4000))
    record = await collect(make_provider(resolve(ModelRef.parse(f"fake-anthropic/{INTERLEAVED}"), fake_env), client),
                           request)
    items = record.reasoning_to_send()
    opaque = [getattr(b, "signature", None) or getattr(b, "data", None) for b in final.content
              if b.type in ("thinking", "redacted_thinking")]
    assert [i.kind for i in items] == ["thinking", "redacted_thinking", "thinking"]
    assert [i.signature or i.data for i in items] == opaque and [i.before_call for i in items] == [0, 1, 1]
    uses = [b for b in final.content if b.type == "tool_use"]
    results = [{"type": "tool_result", "tool_use_id": b.id, "content": "sunny"} for b in uses]  # type: ignore[union-attr]
    history: list[Any] = [*prompt, {"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                                     for b in final.content]},
                          {"role": "user", "content": results}]
    second = await sdk.messages.create(model=INTERLEAVED, max_tokens=4000, thinking=thinking, tools=[tool],  # type: ignore[list-item]
                                       messages=history)
    assert second.stop_reason == "end_turn"
    again = await collect(make_provider(resolve(ModelRef.parse(f"fake-anthropic/{INTERLEAVED}"), fake_env), client),
                          continued(request, record_turn(request, record),
                                    {c.id: "sunny" for c in record.tool_calls}))
    assert again.error is None and again.tool_calls == []
    forged = [dict(b) for b in history[1]["content"]]
    forged[0]["signature"] = "Zm9yZ2Vk"
    with pytest.raises(anthropic.BadRequestError, match="Invalid `signature` in `thinking` block"):
        await sdk.messages.create(model=INTERLEAVED, max_tokens=4000, thinking=thinking, tools=[tool],  # type: ignore[list-item]
                                  messages=[*prompt, {"role": "assistant", "content": forged}, history[2]])


def test_a_saved_tool_loop_keeps_its_reasoning_and_runs_again(tmp_path: Path, fake_env: dict[str, str]) -> None:
    """``--save-session`` after ``--continue``: the assistant turn keeps its signed thinking and origin, so the
    session runs again on the fake Anthropic server, which refuses the calls sent back without it."""
    (tmp_path / "workbench.toml").write_text("")
    tools = tmp_path / "tools.yaml"
    tools.write_text(TOOLS)
    env = {**fake_env, "WORKBENCH_TRACES": str(tmp_path / "traces.db")}
    first = workbench("run", "Weather?", "-m", "fake-anthropic/t@tools=1,reasoning=6", "--tools", str(tools),
                      "--thinking-budget", "2048", "--json", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    [row] = json_lines(first.stdout)
    call_id = row["tool_calls"][0]["id"]  # type: ignore[index]
    done = workbench("run", "--continue", str(row["trace_id"]), "--tool-result", f"{call_id}=sun",
                     "--save-session", "loop", "--json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    turn = yaml.safe_load((tmp_path / "sessions" / "loop.yaml").read_text())["request"]["messages"][1]
    assert turn["origin"] == "fake-anthropic:anthropic" and turn["reasoning_items"][0]["kind"] == "thinking"
    again = workbench("run", "--session", "loop", "--json", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json_lines(again.stdout)[0]["error"] is None
    path = tmp_path / "sessions" / "loop.yaml"
    saved = yaml.safe_load(path.read_text())
    del saved["request"]["messages"][1]["reasoning_items"]  # the loop as saved before its reasoning was kept
    path.write_text(yaml.safe_dump(saved))
    bare = workbench("run", "--session", "loop", "--json", env=env, cwd=tmp_path)
    assert "must start with a thinking block" in str(json_lines(bare.stdout)[0]["error"]), bare.stdout


def test_a_conversation_continued_on_gemini_3_from_another_provider_goes_with_the_placeholder(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    """A mixed race's step: OpenAI's tool call goes on on Gemini 3, which refuses a call without a signature; the
    call carries Google's placeholder (never another provider's token)."""
    tools = tmp_path / "tools.yaml"
    tools.write_text(TOOLS)
    first = workbench("run", "Weather?", "-m", "fake/m@tools=1", "--tools", str(tools), "--json", env=fake_env)
    assert first.returncode == 0, first.stderr
    [row] = json_lines(first.stdout)
    call_id = row["tool_calls"][0]["id"]  # type: ignore[index]
    done = workbench("run", "--continue", str(row["trace_id"]), "--tool-result", f"{call_id}=sun",
                     "-m", "fake-gemini/gemini-3-flash@tools=1", "--json", env=fake_env)
    assert done.returncode == 0, done.stderr
    assert json_lines(done.stdout)[0]["error"] is None and json_lines(done.stdout)[0]["text"]
