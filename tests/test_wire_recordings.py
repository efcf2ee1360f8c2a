"""Adapters read real recorded provider streams (payloads copied from public recordings of live APIs)."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest

from workbench.core.errors import StreamDecodeError
from workbench.core.events import (
    ErrorEvent,
    FinishEvent,
    FinishReason,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    Usage,
    UsageEvent,
)
from workbench.core.ndjson import NDJSONDecoder
from workbench.core.providers.anthropic import AnthropicParser
from workbench.core.providers.base import WireParser, error_fields, retry_after_seconds, scrub
from workbench.core.providers.gemini import GeminiParser
from workbench.core.providers.ollama import OllamaParser
from workbench.core.providers.openai_chat import ChatParser
from workbench.core.providers.openai_responses import ResponsesParser
from workbench.core.sse import SSEDecoder


def sse_events(parser: WireParser, raw: bytes) -> list[StreamEvent]:
    """The events of ``raw`` as a call reads them: a last event without its blank line still counts."""
    decoder = SSEDecoder(bare_json=parser.bare_json)
    out = [e for m in decoder.feed(raw) for e in parser.feed(m, 1)]
    if not parser.done:
        out += [e for m in decoder.close() for e in parser.feed(m, 2)]
    return out


def texts(events: Iterable[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def last_usage(events: Iterable[StreamEvent]) -> Usage:
    return [e for e in events if isinstance(e, UsageEvent)][-1].usage


def finish(events: Iterable[StreamEvent]) -> FinishEvent:
    return next(e for e in events if isinstance(e, FinishEvent))


OPENAI_GPT4O = b"""data: {"id":"chatcmpl-ABfw3Oqj8RD0z6aJiiX37oTjV2HFh","object":"chat.completion.chunk","created":1727346171,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_7568d46099","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-ABfw3Oqj8RD0z6aJiiX37oTjV2HFh","object":"chat.completion.chunk","created":1727346171,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_7568d46099","choices":[{"index":0,"delta":{"content":"{\\""},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-ABfw3Oqj8RD0z6aJiiX37oTjV2HFh","object":"chat.completion.chunk","created":1727346171,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_7568d46099","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]}

data: {"id":"chatcmpl-ABfw3Oqj8RD0z6aJiiX37oTjV2HFh","object":"chat.completion.chunk","created":1727346171,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_7568d46099","choices":[],"usage":{"prompt_tokens":79,"completion_tokens":1,"total_tokens":80,"completion_tokens_details":{"reasoning_tokens":0}}}

data: [DONE]

"""


def test_openai_chat_recording_role_chunk_is_not_content() -> None:
    parser = ChatParser()
    events = sse_events(parser, OPENAI_GPT4O)
    assert parser.done
    assert texts(events) == '{"'
    assert [type(e) for e in events] == [TextDelta, FinishEvent, UsageEvent]
    assert finish(events).reason is FinishReason.LENGTH and finish(events).raw == "length"
    assert last_usage(events) == Usage(input_tokens=79, output_tokens=1)


def test_openai_chat_cached_and_reasoning_parts_and_usage_null_chunks() -> None:
    raw = (b'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":null}\n\n'
           b'data: {"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":30,"total_tokens":130,'
           b'"prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":20}}}\n\n'
           b"data: [DONE]\n\n")
    events = sse_events(ChatParser(), raw)
    assert last_usage(events) == Usage(100, 30, cache_read_tokens=64, reasoning_tokens=20)


def test_openai_chat_mid_stream_error_then_done() -> None:
    raw = (b'data: {"choices":[{"index":0,"delta":{"content":"par"}}]}\n\n'
           b'data: {"error":{"message":"The server experienced an error while processing your request.",'
           b'"type":"server_error","param":null,"code":null}}\n\ndata: [DONE]\n\n')
    events = sse_events(ChatParser(), raw)
    error = next(e for e in events if isinstance(e, ErrorEvent))
    assert error.kind == "server_error" and "experienced an error" in error.message


def test_vllm_reasoning_field_and_int_error_code() -> None:
    raw = (b'data: {"choices":[{"index":0,"delta":{"reasoning":"think"}}]}\n\n'
           b'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
    events = sse_events(ChatParser(), raw)
    assert isinstance(events[0], ReasoningDelta) and texts(events) == "ok"
    assert error_fields(b'{"error":{"message":"bad","type":"BadRequestError","param":null,"code":400}}') == (
        "BadRequestError", "bad")


RESPONSES = b"""event: response.created
data: {"type":"response.created","response":{"id":"resp_1","object":"response","status":"in_progress","usage":null},"sequence_number":0}

event: response.output_text.delta
data: {"type":"response.output_text.delta","content_index":0,"delta":"OK","item_id":"msg_1","logprobs":[],"output_index":0,"sequence_number":4}

event: response.completed
data: {"type":"response.completed","response":{"id":"resp_1","status":"completed","usage":{"input_tokens":12,"input_tokens_details":{"cache_write_tokens":0,"cached_tokens":0},"output_tokens":2,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":14}},"sequence_number":8}

"""


def test_openai_responses_recording() -> None:
    parser = ResponsesParser()
    events = sse_events(parser, RESPONSES)
    assert parser.done and texts(events) == "OK"
    assert last_usage(events) == Usage(12, 2, cache_read_tokens=0, cache_write_tokens=0)  # said 0: 0
    assert finish(events).reason is FinishReason.STOP


@pytest.mark.parametrize("payload", [
    b'{"type":"error","sequence_number":2,"error":{"type":"insufficient_quota","code":"insufficient_quota",'
    b'"message":"You exceeded your current quota","param":null}}',
    b'{"type":"error","code":"insufficient_quota","message":"You exceeded your current quota","param":null,'
    b'"sequence_number":2}',
])
def test_openai_responses_error_nested_and_flat(payload: bytes) -> None:
    events = sse_events(ResponsesParser(), b"event: error\ndata: " + payload + b"\n\n")
    assert isinstance(events[0], ErrorEvent)
    assert events[0].kind == "insufficient_quota" and "quota" in events[0].message


def test_openai_responses_incomplete_is_a_length_finish() -> None:
    raw = (b'event: response.incomplete\ndata: {"type":"response.incomplete","response":{"status":"incomplete",'
           b'"incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":5,"output_tokens":9}}}\n\n')
    assert finish(sse_events(ResponsesParser(), raw)).reason is FinishReason.LENGTH


ANTHROPIC = b"""event: message_start
data: {"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929","id":"msg_01QC4g3HwBThD4BaNtBckFDJ","type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard","inference_geo":"not_available"}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0  }

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":30}}

event: message_stop
data: {"type":"message_stop"}

"""


def test_anthropic_recording() -> None:
    parser = AnthropicParser()
    events = sse_events(parser, ANTHROPIC)
    assert parser.done and texts(events) == "Hello"
    assert last_usage(events) == Usage(12, 30, cache_read_tokens=0, cache_write_tokens=0,
                                         cache_write_1h_tokens=0)  # the recording reports its 1-hour part: 0
    assert finish(events).raw == "end_turn" and finish(events).reason is FinishReason.STOP


def test_anthropic_cache_parts_are_added_to_input_and_delta_values_win() -> None:
    raw = (b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":43,'
           b'"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":1}}}\n\n'
           b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
           b'"delta":{"type":"thinking_delta","thinking":""}}\n\n'
           b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
           b'"delta":{"type":"thinking_delta","thinking":"hmm"}}\n\n'
           b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"max_tokens"},'
           b'"usage":{"input_tokens":61,"output_tokens":50}}\n\n'
           b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    events = sse_events(AnthropicParser(), raw)
    assert [e.text for e in events if isinstance(e, ReasoningDelta)] == ["hmm"]  # empty deltas are not content
    assert last_usage(events) == Usage(61 + 100 + 2000, 50, cache_read_tokens=2000, cache_write_tokens=100)
    assert finish(events).reason is FinishReason.LENGTH


def test_anthropic_overloaded_error_event() -> None:
    raw = b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    parser = AnthropicParser()
    events = sse_events(parser, raw)
    assert parser.done and isinstance(events[0], ErrorEvent) and events[0].kind == "overloaded_error"


GEMINI = (b'data: {"candidates": [{"content": {"parts": [{"text": "1, 2, 3"}],"role": "model"},"finishReason": "STOP",'
          b'"index": 0}],"usageMetadata": {"promptTokenCount": 8,"candidatesTokenCount": 7,"totalTokenCount": 38,'
          b'"promptTokensDetails": [{"modality": "TEXT","tokenCount": 8}],"thoughtsTokenCount": 23},'
          b'"modelVersion": "gemini-2.5-flash","responseId": "4HkhaaajEJaY0-kPyI_b2A4"}\r\n\r\n')


def test_gemini_recording_crlf_and_thoughts_billed_as_output() -> None:
    parser = GeminiParser()
    events = sse_events(parser, GEMINI)
    assert parser.done and texts(events) == "1, 2, 3"
    assert last_usage(events) == Usage(8, 7 + 23, reasoning_tokens=23)
    assert finish(events).reason is FinishReason.STOP


def test_gemini_signature_only_part_is_not_content_and_prompt_block_finishes() -> None:
    raw = (b'data: {"candidates":[{"content":{"parts":[{"text":"","thoughtSignature":"abc"}],"role":"model"},'
           b'"finishReason":"MAX_TOKENS","index":0}]}\r\n\r\n')
    events = sse_events(GeminiParser(), raw)
    assert texts(events) == "" and finish(events).reason is FinishReason.LENGTH
    blocked = sse_events(GeminiParser(), b'data: {"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"}}\r\n\r\n')
    assert finish(blocked).reason is FinishReason.CONTENT_FILTER and finish(blocked).raw == "PROHIBITED_CONTENT"


def test_ollama_docs_example_and_mid_stream_error() -> None:
    raw = (b'{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00","message":{"role":"assistant",'
           b'"content":"The","images":null},"done":false}\n'
           b'{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","message":{"role":"assistant","content":""},'
           b'"done":true,"total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,'
           b'"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}\n')
    parser = OllamaParser()
    events = [e for v in NDJSONDecoder().feed(raw) for e in parser.feed(v, 1)]
    assert parser.done and texts(events) == "The"
    assert last_usage(events) == Usage(26, 282)
    assert finish(events).raw == "stop"
    error = list(OllamaParser().feed(json.loads('{"error":"an error was encountered while running the model"}'), 1))
    assert isinstance(error[0], ErrorEvent) and "running the model" in error[0].message


def test_malformed_payload_is_a_decode_error() -> None:
    with pytest.raises(StreamDecodeError):
        sse_events(ChatParser(), b'data: {"choices": [\n\n')


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after-ms": "1500"}, 1.5), ({"retry-after": "7"}, 7.0), ({"retry-after": "2.5"}, 2.5),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0), ({"retry-after": "soon"}, None), ({}, None),
])
def test_retry_after_forms(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}',
     ("overloaded_error", "Overloaded")),
    (b'{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}',
     ("RESOURCE_EXHAUSTED", "Resource has been exhausted")),
    (b'{"error":"model \'llama3.2\' not found"}', (None, "model 'llama3.2' not found")),
    (b"<html>502 Bad Gateway</html>", (None, "<html>502 Bad Gateway</html>")),
])
def test_error_bodies_of_every_provider(body: bytes, expected: tuple[str | None, str]) -> None:
    assert error_fields(body) == expected


def test_keys_quoted_back_by_a_provider_are_scrubbed() -> None:
    message = ("Incorrect API key provided: sk-proj-****************************************abcd. "
               "You can find your API key at https://platform.openai.com/account/api-keys.")
    assert scrub(message) == ("Incorrect API key provided: [key]. "
                              "You can find your API key at https://platform.openai.com/account/api-keys.")
    assert scrub("bad key sk-live-123456 given", "sk-live-123456") == "bad key [key] given"
