"""Capture mode's reading of the bytes passing through the proxy (:class:`CallTap`), on replies written from the
providers' documented formats: non-streamed replies with tool calls, a stream without usage (estimated, flagged),
a reply cut in chunks anywhere."""

from __future__ import annotations

import json

from workbench.core.call_record import CallRecord
from workbench.core.capture.recording import CallTap
from workbench.core.capture.routes import route
from workbench.core.events import FinishReason
from workbench.core.registry import PROVIDERS

ENV = {"OPENAI_BASE_URL": "https://api.example.com/v1", "ANTHROPIC_BASE_URL": "https://anthropic.example.com"}
JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream"}

OPENAI_TOOL_REPLY = {
    "id": "chatcmpl-abc", "object": "chat.completion", "created": 1741569952, "model": "gpt-4.1-2025-04-14",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
        "role": "assistant", "content": None, "refusal": None, "tool_calls": [{
            "id": "call_12345xyz", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris, France\"}"}}]}}],
    "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99,
              "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}},
}
ANTHROPIC_TOOL_REPLY = {
    "id": "msg_01Aq9w938a90dw8q", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "I'll check the weather."},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
                 "input": {"location": "San Francisco, CA"}}],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 384, "output_tokens": 92, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
}


def tap(path: str, body: dict[str, object]) -> CallTap:
    found = route(path, PROVIDERS, ENV)
    assert found is not None and found.wire is not None
    return CallTap(found, body, 1)


def fed(call: CallTap, headers: dict[str, str], data: bytes, size: int) -> None:
    call.started(200, headers, 2)
    for start in range(0, len(data), size):
        call.feed(data[start:start + size])


def test_non_streamed_openai_and_anthropic_replies_with_tool_calls_are_read_by_the_wire_parsers() -> None:
    openai_call = tap("/openai/v1/chat/completions", {"model": "gpt-4.1", "messages": [
        {"role": "developer", "content": "Be brief"}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]})
    fed(openai_call, JSON, json.dumps(OPENAI_TOOL_REPLY).encode(), 7)
    record = openai_call.ended()
    assert record.request.system == "Be brief" and record.request.messages[0].content == "Hi"
    assert record.error is None and record.finish is FinishReason.TOOL_CALLS
    assert [(c.id, c.name, c.arguments) for c in record.tool_calls] == [
        ("call_12345xyz", "get_weather", "{\"location\":\"Paris, France\"}")]
    assert record.usage is not None and (record.usage.input_tokens, record.usage.output_tokens) == (82, 17)

    anthropic_call = tap("/anthropic/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 200,
                                                    "system": "Be brief", "messages": [{"role": "user",
                                                                                        "content": "Weather?"}]})
    fed(anthropic_call, JSON, json.dumps(ANTHROPIC_TOOL_REPLY).encode(), 5)
    record = anthropic_call.ended()
    assert record.target == "anthropic/claude-sonnet-4-5" and record.request.params.max_tokens == 200
    assert record.error is None and record.text == "I'll check the weather."
    assert record.finish is FinishReason.TOOL_CALLS and record.tool_calls[0].name == "get_weather"
    assert json.loads(record.tool_calls[0].arguments) == {"location": "San Francisco, CA"}
    assert record.usage is not None and (record.usage.input_tokens, record.usage.output_tokens) == (384, 92)


def test_a_stream_cut_in_single_bytes_reads_the_same_and_one_without_its_final_event_is_truncated() -> None:
    chunks = [{"id": "c", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"content": piece}, "finish_reason": None}]} for piece in ("Hel", "lo ", "wörld")]
    chunks.append({"id": "c", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {}, "finish_reason": "stop"}]})
    stream = "".join(f"data: {json.dumps(c, ensure_ascii=False)}\n\n" for c in chunks).encode()
    whole = tap("/openai/v1/chat/completions", {"model": "gpt-4.1", "stream": True, "messages": []})
    fed(whole, SSE, stream + b"data: [DONE]\n\n", 1)
    record = whole.ended()
    assert record.error is None and record.text == "Hello wörld" and record.finish is FinishReason.STOP
    assert record.usage is None  # none sent: settling estimates it (flagged)
    assert record.timing.first_content_ns is not None and record.timing.first_content_ns >= 2

    cut = tap("/openai/v1/chat/completions", {"model": "gpt-4.1", "stream": True, "messages": []})
    fed(cut, SSE, stream[:stream.index("wörld".encode())], 64)
    record = cut.ended()
    assert record.status == "error" and record.error is not None and record.error.error_class == "truncated"
    assert record.text == "Hello "


def test_an_upstream_error_is_traced_with_the_providers_message() -> None:
    call = tap("/anthropic/v1/messages", {"model": "claude-sonnet-4-5", "messages": []})
    call.started(529, JSON, 2)
    call.feed(b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
    record = call.ended()
    assert record.status == "error" and "HTTP 529 overloaded_error: Overloaded" in str(record.error)


RESPONSES_USAGE = {"input_tokens": 75, "input_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 0},
                   "output_tokens": 1186, "output_tokens_details": {"reasoning_tokens": 1024}, "total_tokens": 1261}
RESPONSES_REPLY = {  # OpenAI's documented Response object, not streamed
    "id": "resp_67ccd3a9da748190baa7f1570fe91ac6", "object": "response", "created_at": 1741476777,
    "status": "completed", "error": None, "incomplete_details": None, "model": "o3-2025-04-16",
    "output": [
        {"type": "reasoning", "id": "rs_6876cf02e0bc8192b74af0fb64b715ff", "encrypted_content": "gAAAAABo",
         "summary": [{"type": "summary_text", "text": "**Checking the weather** "},
                     {"type": "summary_text", "text": "I need a tool."}]},
        {"type": "message", "id": "msg_67ccd3acc8d48190a77525dc6de64b4104becb25c5c1c5b5", "status": "completed",
         "role": "assistant", "content": [{"type": "output_text", "text": "Let me look that up.", "annotations": []}]},
        {"type": "function_call", "id": "fc_12345xyz", "call_id": "call_12345xyz", "name": "get_weather",
         "arguments": "{\"location\":\"Paris, France\"}", "status": "completed"}],
    "usage": RESPONSES_USAGE,
}


def responses_read(reply: dict[str, object]) -> CallRecord:
    call = tap("/openai/v1/responses", {"model": "o3", "input": "Weather in Paris?"})
    fed(call, JSON, json.dumps(reply).encode(), 9)
    return call.ended()


def test_a_non_streamed_openai_response_is_read_item_by_item() -> None:
    record = responses_read(RESPONSES_REPLY)
    assert record.error is None and record.text == "Let me look that up."
    assert [(c.id, c.name, c.arguments) for c in record.tool_calls] == [
        ("call_12345xyz", "get_weather", "{\"location\":\"Paris, France\"}")]
    assert record.reasoning == "**Checking the weather** I need a tool."
    [item] = record.reasoning_to_send()
    assert (item.id, item.data) == ("rs_6876cf02e0bc8192b74af0fb64b715ff", "gAAAAABo")
    assert (record.finish, record.finish_raw) == (FinishReason.TOOL_CALLS, "completed")
    assert record.usage is not None and (record.usage.input_tokens, record.usage.output_tokens) == (75, 1186)
    assert (record.usage.cache_read_tokens, record.usage.reasoning_tokens) == (64, 1024)

    refused = responses_read({**RESPONSES_REPLY, "output": [{
        "type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
        "content": [{"type": "refusal", "refusal": "I'm sorry, I cannot help with that."}]}]})
    assert refused.refusal == "I'm sorry, I cannot help with that." and refused.text == ""
    assert refused.finish is FinishReason.CONTENT_FILTER

    cut = responses_read({**RESPONSES_REPLY, "status": "incomplete",
                          "incomplete_details": {"reason": "max_output_tokens"}, "output": [{
                              "type": "message", "id": "msg_1", "status": "incomplete", "role": "assistant",
                              "content": [{"type": "output_text", "text": "Partly", "annotations": []}]}]})
    assert (cut.text, cut.finish, cut.finish_raw) == ("Partly", FinishReason.LENGTH, "max_output_tokens")

    failed = responses_read({**RESPONSES_REPLY, "status": "failed", "output": [], "usage": None,
                             "error": {"code": "server_error", "message": "The model failed."}})
    assert failed.status == "error" and "The model failed." in str(failed.error)


def test_a_gemini_stream_without_alt_sse_is_read_as_its_json_array_of_chunks() -> None:
    # streamGenerateContent without ?alt=sse answers a pretty-printed JSON array of the chunks (application/json).
    found = route("/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent", PROVIDERS,
                  {"GOOGLE_GEMINI_BASE_URL": "https://gemini.example.com"})
    assert found is not None and found.wire == "gemini"
    call = CallTap(found, {"contents": [{"role": "user", "parts": [{"text": "Count to 3"}]}]}, 1)
    chunks = [{"candidates": [{"content": {"parts": [{"text": "1, 2"}], "role": "model"}, "index": 0}],
               "modelVersion": "gemini-2.5-flash"},
              {"candidates": [{"content": {"parts": [{"text": ", 3"}], "role": "model"}, "finishReason": "STOP",
                               "index": 0}],
               "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 7, "totalTokenCount": 38,
                                 "thoughtsTokenCount": 23}, "modelVersion": "gemini-2.5-flash"}]
    fed(call, JSON, json.dumps(chunks, indent=2).replace("\n", "\r\n").encode(), 11)
    record = call.ended()
    assert record.error is None and record.text == "1, 2, 3" and record.finish is FinishReason.STOP
    assert record.usage is not None and (record.usage.input_tokens, record.usage.output_tokens) == (8, 30)
