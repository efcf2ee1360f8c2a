"""Adapters read streamed tool calls on every wire, as each provider documents them, into one record shape."""

from __future__ import annotations

import json

import pytest

from tests.test_wire_recordings import sse_events
from workbench.core.call_record import CallRecord, apply_event, summary
from workbench.core.errors import OverrunError, StreamDecodeError
from workbench.core.events import FinishReason, StreamEvent, TextDelta, ToolCallDelta
from workbench.core.ndjson import NDJSONDecoder
from workbench.core.providers.anthropic import AnthropicParser
from workbench.core.providers.bounds import MAX_TOOL_CALLS, StreamBudget
from workbench.core.providers.gemini import GeminiParser
from workbench.core.providers.ollama import OllamaParser
from workbench.core.providers.openai_chat import ChatParser
from workbench.core.providers.openai_responses import ResponsesParser
from workbench.core.request import ChatRequest


def folded(events: list[StreamEvent]) -> CallRecord:
    record = CallRecord("t/m", ChatRequest.from_prompt("hi"))
    for event in events:
        apply_event(record, event)
    return record


def calls(record: CallRecord) -> list[tuple[str, str, str]]:
    return [(c.id, c.name, c.arguments) for c in record.tool_calls]


# The shape of openai-python's gpt-4o tool-call recording: the first tool chunk carries id, type and name with
# empty arguments; the arguments follow in fragments; the finish chunk has an empty delta.
OPENAI_CHAT = b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in [
    {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {
        "role": "assistant", "content": None, "tool_calls": [{"index": 0, "id": "call_h1", "type": "function",
                                                              "function": {"name": "get_weather", "arguments": ""}}],
        "refusal": None}, "logprobs": None, "finish_reason": None}]},
    {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {
        "tool_calls": [{"index": 0, "function": {"arguments": "{\"ci"}}]}, "finish_reason": None}]},
    {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {
        "tool_calls": [{"index": 0, "function": {"arguments": "ty\": \"Paris\"}"}}]}, "finish_reason": None}]},
    {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {
        "tool_calls": [{"index": 1, "id": "call_h2", "type": "function",
                        "function": {"name": "get_time", "arguments": ""}}]}, "finish_reason": None}]},
    {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {
        "tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}, "finish_reason": None}]},
    {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {},
                                                                         "finish_reason": "tool_calls"}]},
]) + b"data: [DONE]\n\n"


def test_openai_chat_tool_calls_fragments_concatenate() -> None:
    parser = ChatParser()
    record = folded(sse_events(parser, OPENAI_CHAT))
    assert parser.done and record.text == ""
    assert calls(record) == [("call_h1", "get_weather", '{"city": "Paris"}'), ("call_h2", "get_time", "{}")]
    assert record.finish is FinishReason.TOOL_CALLS and record.finish_raw == "tool_calls"
    assert record.timing.first_content_ns == 1 and record.timing.first_text_ns is None
    assert summary(record)["tool_calls"] == [
        {"id": "call_h1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"id": "call_h2", "name": "get_time", "arguments": "{}"}]


def test_openai_compatible_tool_call_arguments_sent_as_an_object_are_read_as_its_json() -> None:
    """Some compatible servers put the arguments object itself in ``function.arguments`` (not its JSON text)."""
    chunk = {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                                "function": {"name": "get_weather",
                                                                             "arguments": {"city": "Zürich"}}}]},
                          "finish_reason": "tool_calls"}]}
    record = folded(sse_events(ChatParser(), b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"))
    assert calls(record) == [("call_1", "get_weather", '{"city":"Zürich"}')] and record.error is None


def responses_event(payload: dict[str, object]) -> bytes:
    return b"event: " + str(payload["type"]).encode() + b"\ndata: " + json.dumps(payload).encode() + b"\n\n"


RESPONSES = b"".join(responses_event(e) for e in [
    {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress", "usage": None},
     "sequence_number": 0},
    {"type": "response.output_item.added", "output_index": 0, "item": {
        "id": "fc_1", "type": "function_call", "status": "in_progress", "arguments": "", "call_id": "call_r1",
        "name": "get_weather"}, "sequence_number": 1},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 0, "delta": "{\"city\"",
     "sequence_number": 2},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 0, "delta": ":\"Oslo\"}",
     "sequence_number": 3},
    {"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 0,
     "arguments": "{\"city\":\"Oslo\"}", "sequence_number": 4},
    {"type": "response.output_item.done", "output_index": 0, "item": {
        "id": "fc_1", "type": "function_call", "status": "completed", "arguments": "{\"city\":\"Oslo\"}",
        "call_id": "call_r1", "name": "get_weather"}, "sequence_number": 5},
    {"type": "response.output_item.added", "output_index": 1, "item": {
        "id": "fc_2", "type": "function_call", "status": "in_progress", "arguments": "", "call_id": "call_r2",
        "name": "get_time"}, "sequence_number": 6},
    {"type": "response.function_call_arguments.done", "item_id": "fc_2", "output_index": 1,
     "arguments": "{}", "sequence_number": 7},
    {"type": "response.completed", "response": {"id": "resp_1", "status": "completed", "usage": {
        "input_tokens": 30, "output_tokens": 12, "total_tokens": 42}}, "sequence_number": 8},
])


def test_openai_responses_function_call_items() -> None:
    """The call's ``call_id`` is its id; a ``.done`` with no delta before it brings the whole arguments."""
    parser = ResponsesParser()
    record = folded(sse_events(parser, RESPONSES))
    assert parser.done
    assert calls(record) == [("call_r1", "get_weather", '{"city":"Oslo"}'), ("call_r2", "get_time", "{}")]
    assert record.finish is FinishReason.TOOL_CALLS and record.finish_raw == "completed"


def anthropic_event(payload: dict[str, object]) -> bytes:
    return b"event: " + str(payload["type"]).encode() + b"\ndata: " + json.dumps(payload).encode() + b"\n\n"


ANTHROPIC = b"".join(anthropic_event(e) for e in [
    {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                                          "stop_reason": None, "usage": {"input_tokens": 20, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking."}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Rome\"}"}},
    {"type": "content_block_stop", "index": 1},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
     "usage": {"output_tokens": 40}},
    {"type": "message_stop"},
])


def test_anthropic_tool_use_block_after_text() -> None:
    parser = AnthropicParser()
    record = folded(sse_events(parser, ANTHROPIC))
    assert parser.done and record.text == "Checking."
    assert calls(record) == [("toolu_01", "get_weather", '{"city": "Rome"}')]
    assert record.finish is FinishReason.TOOL_CALLS and record.finish_raw == "tool_use"


GEMINI = (b'data: {"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather","args": '
          b'{"city": "K\xc3\xb6ln","days": 2}}},{"functionCall": {"name": "get_time","args": {}}}],"role": "model"},'
          b'"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 30,"candidatesTokenCount": 9,'
          b'"totalTokenCount": 39},"modelVersion": "gemini-2.5-flash"}\r\n\r\n')


def test_gemini_function_call_parts_as_compact_json() -> None:
    parser = GeminiParser()
    record = folded(sse_events(parser, GEMINI))
    assert parser.done
    assert calls(record) == [("", "get_weather", '{"city":"Köln","days":2}'), ("", "get_time", "{}")]
    assert record.finish is FinishReason.TOOL_CALLS and record.finish_raw == "STOP"


def test_ollama_tool_calls_arguments_object() -> None:
    raw = (b'{"model":"llama3.2","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"",'
           b'"tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Lima"}}}]},"done":false}\n'
           b'{"model":"llama3.2","created_at":"2025-01-01T00:00:01Z","message":{"role":"assistant","content":""},'
           b'"done":true,"done_reason":"stop","prompt_eval_count":10,"eval_count":5}\n')
    parser = OllamaParser()
    record = folded([e for v in NDJSONDecoder().feed(raw) for e in parser.feed(v, 1)])
    assert parser.done
    assert calls(record) == [("", "get_weather", '{"city":"Lima"}')]
    assert record.finish is FinishReason.TOOL_CALLS and record.finish_raw == "stop"


def test_a_plain_reply_keeps_its_stop() -> None:
    raw = b'{"message":{"role":"assistant","content":"hi"},"done":true,"done_reason":"stop"}\n'
    record = folded([e for v in NDJSONDecoder().feed(raw) for e in OllamaParser().feed(v, 1)])
    assert record.finish is FinishReason.STOP and record.tool_calls == []
    assert summary(record)["tool_calls"] == []


def test_restart_forgets_the_tool_calls_of_a_previous_attempt() -> None:
    record = folded(sse_events(ChatParser(), OPENAI_CHAT))
    record.restart()
    assert record.tool_calls == []


@pytest.mark.parametrize("event", [
    ToolCallDelta(MAX_TOOL_CALLS, "id", "name", "{}", 1),
    ToolCallDelta(-1, None, None, "{}", 1),
    ToolCallDelta(0, None, None, {"a": 1}, 1),  # type: ignore[arg-type]
    ToolCallDelta(0, 7, None, "", 1),  # type: ignore[arg-type]
])
def test_a_malformed_tool_call_is_a_decode_error(event: ToolCallDelta) -> None:
    with pytest.raises(StreamDecodeError):
        StreamBudget("t/m", 10).checked(event)


def test_tool_call_arguments_count_against_the_output_budget() -> None:
    budget = StreamBudget("t/m", 1)
    budget.checked(TextDelta("x", 1))
    with pytest.raises(OverrunError):
        for _ in range(10_000):
            budget.checked(ToolCallDelta(0, None, None, "x" * 64, 1))




def test_an_estimated_usage_counts_the_tool_calls_as_output() -> None:
    from workbench.core.call_record import estimate_usage_of

    record = folded(sse_events(ChatParser(), OPENAI_CHAT))  # no usage chunk in this stream
    assert record.usage is None
    estimate_usage_of(record)
    assert record.usage is not None and record.usage_estimated and record.usage.output_tokens >= 6
