"""Adapters read each wire's prompt-cache usage, as each provider documents it, into ``cache_read_tokens`` and
``cache_write_tokens`` (``None`` when the provider did not say; 0 only when it said 0), and ``run --json``
carries both."""

from __future__ import annotations

import json

import pytest

from tests.test_wire_recordings import last_usage, sse_events
from tests.test_wire_tools import folded
from workbench.core.call_record import summary
from workbench.core.events import StreamEvent, Usage
from workbench.core.ndjson import NDJSONDecoder
from workbench.core.providers.anthropic import AnthropicParser
from workbench.core.providers.gemini import GeminiParser
from workbench.core.providers.ollama import OllamaParser
from workbench.core.providers.openai_chat import ChatParser
from workbench.core.providers.openai_responses import ResponsesParser


def sse(*payloads: dict[str, object], events: bool = False) -> bytes:
    """SSE frames, named after their ``type`` when ``events`` (Anthropic, Responses)."""
    out = b""
    for payload in payloads:
        name = f"event: {payload['type']}\n".encode() if events else b""
        out += name + b"data: " + json.dumps(payload).encode() + b"\n\n"
    return out


# OpenAI's prompt caching guide: a 2006-token prompt, 1920 of it read from the cache (whole 128-token blocks
# after the first 1024), in the include_usage chunk (choices: []).
OPENAI_CHAT_CACHED = sse(
    {"id": "chatcmpl-c1", "object": "chat.completion.chunk", "created": 1770933892, "model": "gpt-4o-2024-08-06",
     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None},
                  "logprobs": None, "finish_reason": None}], "usage": None},
    {"id": "chatcmpl-c1", "object": "chat.completion.chunk", "created": 1770933892, "model": "gpt-4o-2024-08-06",
     "choices": [{"index": 0, "delta": {"content": "Sure."}, "logprobs": None, "finish_reason": None}],
     "usage": None},
    {"id": "chatcmpl-c1", "object": "chat.completion.chunk", "created": 1770933892, "model": "gpt-4o-2024-08-06",
     "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}], "usage": None},
    {"id": "chatcmpl-c1", "object": "chat.completion.chunk", "created": 1770933892, "model": "gpt-4o-2024-08-06",
     "choices": [], "usage": {
         "prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
         "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                       "rejected_prediction_tokens": 0}}},
) + b"data: [DONE]\n\n"

# DeepSeek's context caching guide: its own prompt_cache_hit_tokens / prompt_cache_miss_tokens (hit + miss =
# prompt_tokens), no prompt_tokens_details.
DEEPSEEK_CACHED = sse(
    {"id": "ds-1", "object": "chat.completion.chunk", "created": 1770933892, "model": "deepseek-chat",
     "choices": [{"index": 0, "delta": {"content": "Sure."}, "logprobs": None, "finish_reason": "stop"}]},
    {"id": "ds-1", "object": "chat.completion.chunk", "created": 1770933892, "model": "deepseek-chat",
     "choices": [], "usage": {"prompt_tokens": 1300, "completion_tokens": 40, "total_tokens": 1340,
                              "prompt_cache_hit_tokens": 1280, "prompt_cache_miss_tokens": 20}},
) + b"data: [DONE]\n\n"

RESPONSES_CACHED = sse(
    {"type": "response.created", "sequence_number": 0,
     "response": {"id": "resp_c1", "object": "response", "status": "in_progress", "usage": None}},
    {"type": "response.output_text.delta", "sequence_number": 4, "item_id": "msg_c1", "output_index": 0,
     "content_index": 0, "delta": "Sure.", "logprobs": []},
    {"type": "response.completed", "sequence_number": 8, "response": {
        "id": "resp_c1", "object": "response", "status": "completed", "usage": {
            "input_tokens": 2006, "input_tokens_details": {"cached_tokens": 1920},
            "output_tokens": 300, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2306}}},
    events=True)


def anthropic_stream(start_usage: dict[str, object], delta_usage: dict[str, object]) -> bytes:
    return sse(
        {"type": "message_start", "message": {
            "model": "claude-sonnet-4-5-20250929", "id": "msg_01Cache", "type": "message", "role": "assistant",
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Sure."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": delta_usage},
        {"type": "message_stop"},
        events=True)


# Anthropic's prompt caching docs: the first request with cache_control writes the prefix (1888 tokens, 5-minute
# TTL); the same prefix within the TTL is read. ``input_tokens`` counts only what follows the last breakpoint.
ANTHROPIC_WRITE = anthropic_stream(
    {"input_tokens": 21, "cache_creation_input_tokens": 1888, "cache_read_input_tokens": 0,
     "cache_creation": {"ephemeral_5m_input_tokens": 1888, "ephemeral_1h_input_tokens": 0},
     "output_tokens": 1, "service_tier": "standard"},
    {"input_tokens": 21, "cache_creation_input_tokens": 1888, "cache_read_input_tokens": 0, "output_tokens": 393})
ANTHROPIC_READ = anthropic_stream(
    {"input_tokens": 21, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1888,
     "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
     "output_tokens": 1, "service_tier": "standard"},
    {"output_tokens": 393})
ANTHROPIC_COMPATIBLE = anthropic_stream({"input_tokens": 21, "output_tokens": 1}, {"output_tokens": 393})
"""An Anthropic-compatible server that reports no cache fields at all."""

# Gemini's implicit (or explicit) cache: cachedContentTokenCount is part of promptTokenCount, with its modality
# breakdown in cacheTokensDetails; the field is left out when nothing was read from a cache.
GEMINI_CACHED = (
    b'data: {"candidates": [{"content": {"parts": [{"text": "Sure."}],"role": "model"},"finishReason": "STOP",'
    b'"index": 0}],"usageMetadata": {"promptTokenCount": 2100,"candidatesTokenCount": 300,'
    b'"totalTokenCount": 2400,"cachedContentTokenCount": 2048,'
    b'"promptTokensDetails": [{"modality": "TEXT","tokenCount": 2100}],'
    b'"cacheTokensDetails": [{"modality": "TEXT","tokenCount": 2048}]},'
    b'"modelVersion": "gemini-2.5-flash","responseId": "c1"}\r\n\r\n')
GEMINI_UNCACHED = (
    b'data: {"candidates": [{"content": {"parts": [{"text": "Sure."}],"role": "model"},"finishReason": "STOP",'
    b'"index": 0}],"usageMetadata": {"promptTokenCount": 2100,"candidatesTokenCount": 300,'
    b'"totalTokenCount": 2400,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 2100}]},'
    b'"modelVersion": "gemini-2.5-flash","responseId": "c2"}\r\n\r\n')

OLLAMA = (b'{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","message":{"role":"assistant",'
          b'"content":"Sure."},"done":false}\n'
          b'{"model":"llama3.2","created_at":"2023-08-04T19:22:45.5Z","message":{"role":"assistant","content":""},'
          b'"done":true,"done_reason":"stop","total_duration":4883583458,"load_duration":1334875,'
          b'"prompt_eval_count":26,"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}\n')


def ollama_events(raw: bytes) -> list[StreamEvent]:
    parser = OllamaParser()
    return [e for v in NDJSONDecoder().feed(raw) for e in parser.feed(v, 1)]


@pytest.mark.parametrize(("events", "usage"), [
    (lambda: sse_events(ChatParser(), OPENAI_CHAT_CACHED), Usage(2006, 300, cache_read_tokens=1920)),
    (lambda: sse_events(ChatParser(), DEEPSEEK_CACHED), Usage(1300, 40, cache_read_tokens=1280)),
    (lambda: sse_events(ResponsesParser(), RESPONSES_CACHED), Usage(2006, 300, cache_read_tokens=1920)),
    # Anthropic's input_tokens excludes the cache: ours includes it (the OpenTelemetry rule)
    (lambda: sse_events(AnthropicParser(), ANTHROPIC_WRITE),
     Usage(21 + 1888, 393, cache_read_tokens=0, cache_write_tokens=1888, cache_write_1h_tokens=0)),
    (lambda: sse_events(AnthropicParser(), ANTHROPIC_READ),
     Usage(21 + 1888, 393, cache_read_tokens=1888, cache_write_tokens=0, cache_write_1h_tokens=0)),
    (lambda: sse_events(AnthropicParser(), ANTHROPIC_COMPATIBLE), Usage(21, 393)),
    (lambda: sse_events(GeminiParser(), GEMINI_CACHED), Usage(2100, 300, cache_read_tokens=2048)),
    (lambda: sse_events(GeminiParser(), GEMINI_UNCACHED), Usage(2100, 300)),
    (lambda: ollama_events(OLLAMA), Usage(26, 282)),
], ids=["openai-chat", "deepseek", "responses", "anthropic-write", "anthropic-read", "anthropic-compatible-no-fields",
        "gemini-cached", "gemini-no-field", "ollama"])
def test_each_wire_reads_its_cache_fields(events: object, usage: Usage) -> None:
    assert callable(events)
    assert last_usage(events()) == usage


@pytest.mark.parametrize(("raw", "read", "write"), [
    (ANTHROPIC_WRITE, 0, 1888),
    (ANTHROPIC_READ, 1888, 0),
    (ANTHROPIC_COMPATIBLE, None, None),
])
def test_run_json_carries_cache_read_and_write_null_when_unknown(raw: bytes, read: int | None,
                                                                 write: int | None) -> None:
    row = summary(folded(sse_events(AnthropicParser(), raw)))
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (read, write)
    assert row["input_tokens"] == 21 + (read or 0) + (write or 0)


def test_run_json_cache_fields_are_null_without_usage() -> None:
    row = summary(folded([]))
    assert row["cache_read_tokens"] is None and row["cache_write_tokens"] is None and row["input_tokens"] is None
