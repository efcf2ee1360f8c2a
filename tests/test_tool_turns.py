"""Conversations holding tool calls and tool results: the rules they follow, each wire's request body for them (as
the providers document), their token count, and prompt files and sessions that hold them (canned results)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest

from workbench.core.call_record import CallRecord, ToolCall
from workbench.core.conversation import continued, reply_turn
from workbench.core.errors import ConfigError
from workbench.core.prompts.model import PromptFileError, dump_prompt, parse_prompt, to_request
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, Message, ModelRef, Params
from workbench.core.sessions import load_session_file, save_session, session_from_race, session_request
from workbench.core.tokens.encodings import count_chat
from workbench.core.tool_turns import TurnToolCall, tool_turn_problem
from workbench.core.traces.redact import Redactor

TOOLS = ({"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},)
CALLS = (TurnToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
         TurnToolCall(id="call_2", name="get_weather", arguments='{"city":"Oslo"}'))
CONVERSATION = ChatRequest(system="Be brief.", params=Params(max_tokens=50, tools=TOOLS), messages=(
    Message(role="user", content="Weather in Paris and Oslo?"),
    Message(role="assistant", content="Checking.", tool_calls=CALLS),
    Message(role="tool", tool_call_id="call_1", content='{"temp": 18}'),
    Message(role="tool", tool_call_id="call_2", content="rain"),
))

PROMPT_FILE = """\
name: weather
targets: [fake/m]
messages:
  - role: user
    content: Weather in {{city}}?
  - role: assistant
    tool_calls:
      - id: call_1
        name: get_weather
        arguments: '{"city":"Paris"}'
  - role: tool
    tool_call_id: call_1
    content: '{"temp": 18}'
  - role: user
    content: And tomorrow?
"""


def test_every_tool_call_needs_a_result_right_after_it_and_every_result_a_call() -> None:
    user = Message(role="user", content="hi")
    asked = Message(role="assistant", content="", tool_calls=CALLS)
    one = Message(role="tool", tool_call_id="call_1", content="a")
    two = Message(role="tool", tool_call_id="call_2", content="b")
    assert tool_turn_problem([user, asked, one, two, user]) is None
    assert tool_turn_problem([user, asked, one, user]) == (1, "tool calls without a result: call_2")
    assert tool_turn_problem([user, asked, one]) == (1, "tool calls without a result: call_2")
    assert tool_turn_problem([user, one]) == (1, "the tool result for 'call_1' answers no tool call of the turn "
                                                 "before it")
    assert tool_turn_problem([user, asked, one, two, one]) is not None  # answered twice
    with pytest.raises(ValueError, match="tool calls without a result: call_2"):
        ChatRequest(messages=(user, asked, one))
    with pytest.raises(ValueError, match="a tool turn needs tool_call_id"):
        Message(role="tool", content="x")
    with pytest.raises(ValueError, match="a user turn cannot hold tool calls"):
        Message(role="user", content="x", tool_calls=CALLS)
    with pytest.raises(ValueError, match="are not a JSON object"):
        TurnToolCall(id="c", name="f", arguments="[1, 2]")
    assert TurnToolCall(id="c", name="f", arguments={"a": "é"}).arguments == '{"a":"é"}'  # type: ignore[arg-type]


async def _body(target: str, request: ChatRequest, client: httpx2.AsyncClient) -> dict[str, Any]:
    provider = make_provider(resolve(ModelRef.parse(target), {"WORKBENCH_FAKE_URL": "http://127.0.0.1:9"}), client)
    body: dict[str, Any] = provider.body(request)  # type: ignore[attr-defined]
    return body


async def test_openai_chat_sends_assistant_tool_calls_then_tool_messages(client: httpx2.AsyncClient) -> None:
    body = await _body("fake/m", CONVERSATION, client)
    assert body["messages"][2:] == [
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 18}'},
        {"role": "tool", "tool_call_id": "call_2", "content": "rain"}]
    silent = replace(CONVERSATION, messages=(
        CONVERSATION.messages[0], replace(CONVERSATION.messages[1], content=""),
        *CONVERSATION.messages[2:]))
    assert (await _body("fake/m", silent, client))["messages"][2]["content"] is None  # documented: null with calls


async def test_responses_sends_function_call_and_function_call_output_items(client: httpx2.AsyncClient) -> None:
    body = await _body("fake-responses/m", CONVERSATION, client)
    assert body["input"] == [
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {"role": "assistant", "content": "Checking."},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 18}'},
        {"type": "function_call_output", "call_id": "call_2", "output": "rain"}]


async def test_anthropic_merges_consecutive_results_into_one_user_turn(client: httpx2.AsyncClient) -> None:
    body = await _body("fake-anthropic/m", CONVERSATION, client)
    assert body["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp": 18}'},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "rain"}]}]


async def test_gemini_sends_function_calls_and_object_responses(client: httpx2.AsyncClient) -> None:
    body = await _body("fake-gemini/m", CONVERSATION, client)
    assert body["contents"][1:] == [
        {"role": "model", "parts": [
            {"text": "Checking."},
            {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"id": "call_2", "name": "get_weather", "args": {"city": "Oslo"}}}]},
        {"role": "user", "parts": [  # a plain-text result is wrapped: the response must be an object
            {"functionResponse": {"id": "call_1", "name": "get_weather", "response": {"temp": 18}}},
            {"functionResponse": {"id": "call_2", "name": "get_weather", "response": {"result": "rain"}}}]}]


async def test_ollama_sends_argument_objects_and_names_the_tool_of_a_result(client: httpx2.AsyncClient) -> None:
    body = await _body("fake-ollama/m", CONVERSATION, client)
    assert body["messages"][2:] == [
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": '{"temp": 18}', "tool_name": "get_weather"},
        {"role": "tool", "content": "rain", "tool_name": "get_weather"}]


def test_the_token_count_counts_the_calls_and_the_results() -> None:
    bare = ChatRequest(system="Be brief.", messages=(CONVERSATION.messages[0],))
    with_calls = count_chat(CONVERSATION)
    assert with_calls > count_chat(bare) + 3 * 3  # three more turns, each with text
    no_arguments = replace(CONVERSATION, messages=(
        CONVERSATION.messages[0], replace(CONVERSATION.messages[1], tool_calls=())))
    assert with_calls > count_chat(no_arguments)


def test_a_reply_becomes_a_turn_and_each_call_needs_its_result() -> None:
    request = ChatRequest.from_prompt("Weather?")
    unnamed = [ToolCall("", "get_weather", ['{"city":"Paris"}']), ToolCall("", "get_weather", ['{"city":"Oslo"}'])]
    reply = reply_turn(request, "", unnamed)
    assert [c.id for c in reply.tool_calls] == ["call_0", "call_1"]  # a wire that sent no ids: by position
    assert [c.id for c in reply_turn(CONVERSATION, "", unnamed).tool_calls] == ["call_2", "call_3"]  # a next round
    with pytest.raises(ConfigError, match="no result for the tool calls call_0, call_1"):
        continued(request, reply, {})
    with pytest.raises(ConfigError, match="the reply has no tool call call_9") as unknown:
        continued(request, reply, {"call_0": "a", "call_1": "b", "call_9": "c"})
    assert "its calls are call_0, call_1" in (unknown.value.hint or "")
    with pytest.raises(ConfigError, match="nothing to continue with"):
        continued(request, reply_turn(request, "Hello", []), {})
    done = continued(request, reply, {"call_1": "rain", "call_0": "sun"}, "Thanks")
    assert [(m.role, m.tool_call_id, m.content) for m in done.messages[2:]] == [
        ("tool", "call_0", "sun"), ("tool", "call_1", "rain"), ("user", None, "Thanks")]
    reused = reply_turn(CONVERSATION, "", [ToolCall("call_1", "get_weather", ["{}"])])  # an id the conversation holds
    with pytest.raises(ConfigError, match="the tool call id 'call_1' is used twice"):
        continued(CONVERSATION, reused, {"call_1": "x"})
    with pytest.raises(ConfigError, match="not a JSON object"):
        reply_turn(request, "", [ToolCall("c", "f", ['{"cut'])])


def test_a_prompt_file_holds_a_conversation_with_canned_results_and_round_trips() -> None:
    prompt = parse_prompt(PROMPT_FILE, "weather.yaml")
    assert dump_prompt(prompt) == PROMPT_FILE.replace("targets: [fake/m]", "targets:\n  - fake/m")
    request = to_request(prompt, {"city": "Paris"})
    assert [m.role for m in request.messages] == ["user", "assistant", "tool", "user"]
    assert request.messages[1].tool_calls == CALLS[:1] and request.messages[2].tool_call_id == "call_1"
    mapping = parse_prompt(PROMPT_FILE.replace("""'{"city":"Paris"}'""", "{city: Paris}"), "weather.yaml")
    assert mapping == prompt  # arguments may be written as a mapping


@pytest.mark.parametrize(("old", "new", "line", "problem"), [
    ("tool_call_id: call_1", "tool_call_id: call_2", 3,
     "messages: Value error, messages[2]: the tool result for 'call_2' answers no tool call of the turn before it"),
    ("""'{"city":"Paris"}'""", "'[1'", 10, "messages.1.tool_calls.0: arguments '[1' are not"),
    ("    tool_call_id: call_1\n", "", 11, "messages.2: Value error, a tool turn needs tool_call_id"),
])
def test_a_malformed_conversation_in_a_prompt_file_is_file_line(old: str, new: str, line: int, problem: str) -> None:
    with pytest.raises(PromptFileError) as caught:
        parse_prompt(PROMPT_FILE.replace(old, new), "weather.yaml")
    assert caught.value.line == line and problem in caught.value.problem


def test_a_session_saves_and_restores_the_conversation_and_the_replys_tool_calls(tmp_path: Path) -> None:
    record = CallRecord(target="fake/m", request=CONVERSATION)
    record.tool_calls = [ToolCall("call_3", "get_weather", ['{"city":', '"Oslo"}'])]  # a next round of calls
    record.done = True
    session = session_from_race("loop", CONVERSATION, ["fake/m"], [record])
    path = save_session(tmp_path, session, Redactor.build(custom={"city": r"Oslo"}))
    text = path.read_text()
    assert "tool_call_id: call_2" in text and "get_weather" in text and "Oslo" not in text
    restored, targets = session_request(load_session_file(path))
    assert targets == ["fake/m"] and [m.role for m in restored.messages] == ["user", "assistant", "tool", "tool"]
    assert restored.messages[1].tool_calls[0] == CALLS[0]
    assert json.loads(restored.messages[1].tool_calls[1].arguments)["city"].startswith("[redacted")
    [result] = load_session_file(path).results
    assert [(c["id"], c["name"]) for c in result.tool_calls] == [("call_3", "get_weather")]
    assert "Oslo" not in result.tool_calls[0]["arguments"]


# A Gemini 3 reply that calls a tool, as the API documents it: the thought signature on the functionCall part.
GEMINI_3 = (b'data: {"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather","args": '
            b'{"city": "Paris"}},"thoughtSignature": "CiQB0e2Kb3sig=="}],"role": "model"},"finishReason": "STOP",'
            b'"index": 0}],"usageMetadata": {"promptTokenCount": 20,"candidatesTokenCount": 5,'
            b'"totalTokenCount": 25},"modelVersion": "gemini-3-flash"}\r\n\r\n')


async def test_a_gemini_3_thought_signature_goes_back_with_its_call(client: httpx2.AsyncClient) -> None:
    from tests.test_wire_recordings import sse_events
    from workbench.core.call_record import apply_event
    from workbench.core.providers.gemini import GeminiParser

    request = ChatRequest.from_prompt("Weather in Paris?", params=Params(tools=TOOLS))
    record = CallRecord(target="gemini/gemini-3-flash", request=request)
    for event in sse_events(GeminiParser(), GEMINI_3):
        apply_event(record, event)
    assert record.tool_calls[0].signature == "CiQB0e2Kb3sig=="
    assert "signature" not in record.tool_calls[0].summary()  # run --json shows no opaque token
    turn = reply_turn(request, record.text, record.tool_calls)
    body = await _body("fake-gemini/gemini-3-flash", continued(request, turn, {"call_0": "sunny"}), client)
    assert body["contents"][1] == {"role": "model", "parts": [
        {"functionCall": {"id": "call_0", "name": "get_weather", "args": {"city": "Paris"}},
         "thoughtSignature": "CiQB0e2Kb3sig=="}]}
    file_text = dump_prompt(parse_prompt(PROMPT_FILE, "weather.yaml"))
    assert "signature" not in file_text  # a call without one writes none
