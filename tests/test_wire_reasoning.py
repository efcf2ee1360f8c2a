"""Reasoning in every shape the providers document, read from recorded streams: ``<think>`` tags in the content
(cut across chunks), Mistral's thinking parts, ``reasoning_content``/``reasoning`` deltas; the time to first
reasoning and to first answer; usage where vendors put it (Groq ``x_groq``, Anthropic compaction iterations, an
OpenRouter error chunk)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.test_wire_recordings import sse_events
from workbench.core.call_record import CallRecord, apply_event, reasoning_tokens, summary
from workbench.core.events import FinishReason, ResponseStart, UsageEvent
from workbench.core.ndjson import NDJSONDecoder
from workbench.core.providers.anthropic import AnthropicParser
from workbench.core.providers.base import WireParser
from workbench.core.providers.ollama import OllamaParser
from workbench.core.providers.openai_chat import ChatParser
from workbench.core.providers.think_tags import ThinkSplitter
from workbench.core.request import ChatRequest
from workbench.core.sse import SSEDecoder

MS = 1_000_000


def timed(parser: WireParser, messages: list[bytes], *, ndjson: bool = False) -> CallRecord:
    """The record of ``messages`` (each one network read), the i-th arriving i ms after the request was sent."""
    record = CallRecord("t/m", ChatRequest.from_prompt("hi"))
    apply_event(record, ResponseStart(0, 0, 0))
    decoder: Any = NDJSONDecoder() if ndjson else SSEDecoder()
    for i, raw in enumerate(messages, start=1):
        for item in decoder.feed(raw):
            for event in parser.feed(item, i * MS):
                apply_event(record, event)
    return record


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1738000000, "model": "m",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


# DeepSeek-R1 served by an OpenAI-compatible host that leaves the reasoning in the content: the tags arrive cut.
R1_IN_CONTENT = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "<thi"}), chunk({"content": "nk>\nThe user greets"}), chunk({"content": " me.</th"}),
    chunk({"content": "ink>\n\n"}), chunk({"content": "Hello"}), chunk({"content": "! <think> stays"}),
    chunk({}, "stop"),
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1738000000,"model":"m","choices":[],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":21,"total_tokens":30}}\n\n',
    b"data: [DONE]\n\n",
]


def test_think_tags_in_openai_chat_content_split_into_reasoning_and_text() -> None:
    record = timed(ChatParser(), R1_IN_CONTENT)
    assert record.reasoning == "\nThe user greets me."
    assert record.text == "Hello! <think> stays"  # only a tag that opens the reply is one
    assert record.finish is FinishReason.STOP
    row = summary(record)
    assert row["ttft_ms"] == row["ttft_reasoning_ms"] == 3.0  # "<thi" alone was not yet known to be reasoning
    assert row["ttft_answer_ms"] == 6.0
    assert row["reasoning"] == "\nThe user greets me." and row["reasoning_tokens"] is None  # not counted apart


def test_think_tags_in_ollama_content() -> None:
    pieces = ("<think>", "Two plus two.", "</think>", "\n\n4")
    lines = [json.dumps({"model": "deepseek-r1", "message": {"role": "assistant", "content": piece},
                         "done": False}).encode() + b"\n" for piece in pieces]
    lines.append(b'{"model":"deepseek-r1","message":{"role":"assistant","content":""},"done":true,'
                 b'"done_reason":"stop","prompt_eval_count":6,"eval_count":12}\n')
    record = timed(OllamaParser(), lines, ndjson=True)
    assert (record.reasoning, record.text) == ("Two plus two.", "4")
    assert record.timing.ttft_reasoning_ms == 2.0 and record.timing.ttft_answer_ms == 4.0


@pytest.mark.parametrize(("pieces", "reasoning", "text"), [
    (["<", "b>bold</b>"], "", "<b>bold</b>"),
    (["  ", "<think>a</think>b"], "a", "b"),
    (["<think>unclosed", " to the end</thi"], "unclosed to the end</thi", ""),
    (["<thin"], "", "<thin"),  # the reply ended while it could still have been a tag
    (["plain"], "", "plain"),
])
def test_the_splitter_holds_back_only_what_could_be_a_tag(pieces: list[str], reasoning: str, text: str) -> None:
    splitter = ThinkSplitter()
    events = [e for piece in pieces for e in splitter.feed(piece, 1)] + splitter.flush(2)
    record = CallRecord("t/m", ChatRequest.from_prompt("hi"))
    for event in events:
        apply_event(record, event)
    assert (record.reasoning, record.text) == (reasoning, text)


# Mistral's Magistral: content as a list of parts, the thinking ones holding text chunks of their own.
MAGISTRAL = [
    chunk({"role": "assistant", "content": [{"type": "thinking", "thinking": [{"type": "text", "text": "Okay, "}]}]}),
    chunk({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "a greeting."}]}]}),
    chunk({"content": [{"type": "text", "text": "Hello"}]}),
    chunk({"content": " there"}, "stop",
          usage={"prompt_tokens": 11, "total_tokens": 31, "completion_tokens": 20}),
    b"data: [DONE]\n\n",
]


def test_mistral_thinking_parts_are_reasoning() -> None:
    record = timed(ChatParser(), MAGISTRAL)
    assert (record.reasoning, record.text) == ("Okay, a greeting.", "Hello there")
    assert record.timing.ttft_reasoning_ms == 1.0 and record.timing.ttft_answer_ms == 3.0
    assert record.usage is not None and record.usage.output_tokens == 20


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_deltas_of_compatible_servers(field: str) -> None:
    """DeepSeek and llama.cpp send ``reasoning_content``; vLLM, Groq and OpenRouter ``reasoning``."""
    record = timed(ChatParser(), [
        chunk({"role": "assistant", "content": None, field: "Let me"}), chunk({field: " see."}),
        chunk({"content": "Yes."}), chunk({}, "stop"),
        b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9,'
        b'"completion_tokens_details":{"reasoning_tokens":4}}}\n\n', b"data: [DONE]\n\n"])
    assert (record.reasoning, record.text) == ("Let me see.", "Yes.")
    row = summary(record)
    assert row["reasoning_tokens"] == 4 and row["ttft_reasoning_ms"] == 1.0 and row["ttft_answer_ms"] == 3.0


def test_groq_usage_in_x_groq() -> None:
    record = timed(ChatParser(), [
        chunk({"role": "assistant", "content": ""}, x_groq={"id": "req_01"}), chunk({"content": "Hi"}),
        chunk({}, "stop", x_groq={"id": "req_01", "usage": {
            "queue_time": 0.02, "prompt_tokens": 40, "prompt_time": 0.002, "completion_tokens": 12,
            "completion_time": 0.01, "total_tokens": 52, "total_time": 0.012}}),
        b"data: [DONE]\n\n"])
    assert record.usage is not None and (record.usage.input_tokens, record.usage.output_tokens) == (40, 12)


def test_an_openrouter_error_chunk_keeps_its_usage() -> None:
    parser = ChatParser()
    events = sse_events(parser, chunk({"role": "assistant", "content": "Par"}) + chunk(
        {"content": ""}, "error", error={"code": 502, "message": "Provider disconnected unexpectedly"},
        usage={"prompt_tokens": 14, "completion_tokens": 3, "total_tokens": 17}))
    usage = [e.usage for e in events if isinstance(e, UsageEvent)]
    assert parser.done and [(u.input_tokens, u.output_tokens) for u in usage] == [(14, 3)]
    record = CallRecord("t/m", ChatRequest.from_prompt("hi"))
    for event in events:
        apply_event(record, event)
    assert record.error is not None and "Provider disconnected" in str(record.error)
    assert record.usage is not None and record.usage.output_tokens == 3


def anthropic(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


def test_anthropic_compaction_iterations_are_summed() -> None:
    """The top-level counts leave the compaction step out; the iterations hold every step billed."""
    raw = b"".join([
        anthropic("message_start", {"message": {"id": "msg_1", "type": "message", "role": "assistant",
                                                "content": [], "usage": {"input_tokens": 23000, "output_tokens": 1}}}),
        anthropic("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        anthropic("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Based on"}}),
        anthropic("content_block_stop", {"index": 0}),
        anthropic("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {
            "input_tokens": 23000, "output_tokens": 1000, "iterations": [
                {"type": "compaction", "input_tokens": 180000, "output_tokens": 3500},
                {"type": "message", "input_tokens": 23000, "output_tokens": 1000}]}}),
        anthropic("message_stop", {}),
    ])
    events = sse_events(AnthropicParser(), raw)
    usage = [e.usage for e in events if isinstance(e, UsageEvent)][-1]
    assert (usage.input_tokens, usage.output_tokens) == (203000, 4500)


def test_anthropic_thinking_stream_times_reasoning_and_answer_apart() -> None:
    record = timed(AnthropicParser(), [
        anthropic("message_start", {"message": {"id": "msg_1", "usage": {"input_tokens": 12, "output_tokens": 1}}}),
        anthropic("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": "",
                                                                        "signature": ""}}),
        anthropic("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}}),
        anthropic("content_block_delta", {"index": 0, "delta": {"type": "signature_delta", "signature": "EqQB"}}),
        anthropic("content_block_stop", {"index": 0}),
        anthropic("content_block_start", {"index": 1, "content_block": {"type": "text", "text": ""}}),
        anthropic("content_block_delta", {"index": 1, "delta": {"type": "text_delta", "text": "Yes"}}),
        anthropic("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {
            "output_tokens": 30, "output_tokens_details": {"thinking_tokens": 20}}}),
        anthropic("message_stop", {}),
    ])
    assert (record.reasoning, record.text) == ("Hmm.", "Yes")
    assert (record.timing.ttft_reasoning_ms, record.timing.ttft_answer_ms) == (3.0, 7.0)
    assert reasoning_tokens(record) == 20


def test_no_reasoning_reads_as_none_and_zero() -> None:
    record = timed(ChatParser(), [chunk({"content": "Hi"}), chunk({}, "stop", usage={
        "prompt_tokens": 3, "completion_tokens": 1, "completion_tokens_details": {"reasoning_tokens": 0}})])
    row = summary(record)
    assert row["reasoning"] == "" and row["reasoning_tokens"] == 0
    assert row["ttft_reasoning_ms"] is None and row["ttft_answer_ms"] == row["ttft_ms"] == 1.0
