"""Refusals, finish reasons, Anthropic's other blocks and second choices, read from streams written as each provider
documents them (the shapes of the official SDKs' recordings): a refusal is kept apart from the text and finishes
``content_filter`` on every wire, ``pause_turn`` is its own state, server-tool, fallback and compaction blocks are
shown, and a second choice is never merged into the first."""

from __future__ import annotations

import json

import pytest

from tests.test_wire_recordings import sse_events
from tests.test_wire_tools import anthropic_event, folded
from workbench.core.call_record import CallRecord, ProviderBlock, estimate_usage_of, summary
from workbench.core.errors import ProviderStreamError, StreamDecodeError
from workbench.core.events import BlockDelta, FinishReason, RefusalDelta
from workbench.core.providers.anthropic import AnthropicParser
from workbench.core.providers.bounds import MAX_TOOL_CALLS, StreamBudget
from workbench.core.providers.gemini import GeminiParser
from workbench.core.providers.openai_chat import ChatParser
from workbench.core.providers.openai_responses import ResponsesParser
from workbench.core.resilience.caller import transient


def sse(chunks: list[dict[str, object]]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def chat_chunk(delta: dict[str, object], finish: str | None = None, index: int = 0) -> dict[str, object]:
    return {"id": "chatcmpl-ABfw3", "object": "chat.completion.chunk", "created": 1727346171,
            "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_7568d46099",
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}


# gpt-4o's refusal stream (openai-python's recording): content null, the refusal on its own key, a plain ``stop``.
OPENAI_REFUSAL = sse([
    chat_chunk({"role": "assistant", "content": None, "refusal": ""}),
    chat_chunk({"refusal": "I'm very sorry, but I can't"}),
    chat_chunk({"refusal": " assist with that request."}),
    chat_chunk({}, "stop"),
    {"id": "chatcmpl-ABfw3", "object": "chat.completion.chunk", "created": 1727346171, "model": "gpt-4o-2024-08-06",
     "choices": [], "usage": {"prompt_tokens": 79, "completion_tokens": 12, "total_tokens": 91}},
])


def test_openai_chat_refusal_is_kept_out_of_the_text() -> None:
    parser = ChatParser()
    record = folded(sse_events(parser, OPENAI_REFUSAL))
    assert parser.done and record.text == ""
    assert record.refusal == "I'm very sorry, but I can't assist with that request."
    assert record.finish is FinishReason.CONTENT_FILTER and record.finish_raw == "stop"
    row = summary(record)
    assert row["refusal"] == record.refusal and row["text"] == "" and row["finish_reason"] == "content_filter"


def test_openai_content_filter_without_words_is_a_refusal_without_text() -> None:
    record = folded(sse_events(ChatParser(), sse([chat_chunk({"role": "assistant", "content": "Once"}),
                                                   chat_chunk({}, "content_filter")])))
    assert record.text == "Once" and record.refusal == "" and record.finish_raw == "content_filter"
    assert summary(record)["refusal"] == ""


def test_a_plain_reply_has_no_refusal() -> None:
    record = folded(sse_events(ChatParser(), sse([chat_chunk({"role": "assistant", "content": "Hi", "refusal": None}),
                                                   chat_chunk({}, "stop")])))
    assert record.refusal is None and summary(record)["refusal"] is None and record.finish is FinishReason.STOP


def responses_event(payload: dict[str, object]) -> bytes:
    return b"event: " + str(payload["type"]).encode() + b"\ndata: " + json.dumps(payload).encode() + b"\n\n"


def responses_refusal(deltas: list[str]) -> bytes:
    """A Responses stream whose message holds a ``refusal`` part (the API reference's event shapes)."""
    whole = "".join(deltas) or "I can't help with that."
    events: list[dict[str, object]] = [
        {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}, "sequence_number": 0},
        {"type": "response.output_item.added", "output_index": 0, "sequence_number": 1, "item": {
            "id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}},
        {"type": "response.content_part.added", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "part": {"type": "refusal", "refusal": ""}, "sequence_number": 2},
        *({"type": "response.refusal.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": d,
           "sequence_number": 3 + i} for i, d in enumerate(deltas)),
        {"type": "response.refusal.done", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "refusal": whole, "sequence_number": 10},
        {"type": "response.completed", "sequence_number": 11, "response": {
            "id": "resp_1", "status": "completed", "output": [{"id": "msg_1", "type": "message", "role": "assistant",
                                                               "content": [{"type": "refusal", "refusal": whole}]}],
            "usage": {"input_tokens": 20, "output_tokens": 9, "total_tokens": 29}}},
    ]
    return b"".join(responses_event(e) for e in events)


@pytest.mark.parametrize(("deltas", "expected"), [
    (["I can't ", "help with that."], "I can't help with that."),
    ([], "I can't help with that."),  # only the .done event: its whole text
], ids=["deltas", "done-only"])
def test_openai_responses_refusal_part(deltas: list[str], expected: str) -> None:
    parser = ResponsesParser()
    record = folded(sse_events(parser, responses_refusal(deltas)))
    assert parser.done and record.text == "" and record.refusal == expected
    assert record.finish is FinishReason.CONTENT_FILTER and record.finish_raw == "completed"


# anthropic-sdk-python's refusal recording: an empty text block, then stop_reason refusal with stop_details.
ANTHROPIC_REFUSAL = b"".join(anthropic_event(e) for e in [
    {"type": "message_start", "message": {"id": "msg_01Refusal", "type": "message", "role": "assistant", "content": [],
                                          "model": "claude-opus-4-7", "stop_reason": None, "stop_sequence": None,
                                          "usage": {"input_tokens": 20, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "refusal", "stop_sequence": None, "stop_details": {
        "type": "refusal", "category": "cyber", "explanation": "This request was refused due to policy."}},
     "usage": {"output_tokens": 120, "output_tokens_details": {"thinking_tokens": 67}}},
    {"type": "message_stop"},
])


def test_anthropic_refusal_keeps_its_stop_details() -> None:
    parser = AnthropicParser()
    record = folded(sse_events(parser, ANTHROPIC_REFUSAL))
    assert parser.done and record.text == ""
    assert (record.refusal, record.refusal_category) == ("This request was refused due to policy.", "cyber")
    assert record.finish is FinishReason.CONTENT_FILTER and record.finish_raw == "refusal"
    assert record.usage is not None and record.usage.output_tokens == 120
    assert summary(record)["refusal_category"] == "cyber"


def test_anthropic_refusal_without_details_and_stop_details_of_a_normal_end() -> None:
    bare = ANTHROPIC_REFUSAL.replace(b'"category": "cyber", "explanation": "This request was refused due to policy."',
                                     b'"category": null, "explanation": null')
    record = folded(sse_events(AnthropicParser(), bare))
    assert record.refusal == "" and record.refusal_category is None and record.finish_raw == "refusal"
    # anthropic-sdk-python's stop_details recording: message_start says stop_details, the message ends end_turn
    ended = ANTHROPIC_REFUSAL.replace(b'"stop_reason": "refusal"', b'"stop_reason": "end_turn"')
    record = folded(sse_events(AnthropicParser(), ended))
    assert record.refusal is None and record.finish is FinishReason.STOP


def anthropic_stream(blocks: list[list[dict[str, object]]], stop: str) -> bytes:
    events: list[dict[str, object]] = [{"type": "message_start", "message": {
        "id": "msg_01", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5",
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 25, "output_tokens": 1}}}]
    for index, (start, *deltas) in enumerate(blocks):
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
        events.append({"type": "content_block_stop", "index": index})
    events += [{"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 8}}, {"type": "message_stop"}]
    return b"".join(anthropic_event(e) for e in events)


def text_block(text: str) -> list[dict[str, object]]:
    return [{"type": "text", "text": ""}, {"type": "text_delta", "text": text}]


def blocks(record: CallRecord) -> list[tuple[str, str, str, str]]:
    return [(b.type, b.id, b.name, b.content) for b in record.blocks]


def test_anthropic_server_tool_use_streams_its_input_and_is_no_tool_call() -> None:
    """anthropic-sdk-python's server_tool_use recording: a web search the provider runs, its input in pieces."""
    raw = anthropic_stream([text_block("Let me search for that."), [
        {"type": "server_tool_use", "id": "srvtoolu_01WebSearch", "name": "web_search", "input": {}},
        {"type": "input_json_delta", "partial_json": ""},
        {"type": "input_json_delta", "partial_json": "{\"query\": "},
        {"type": "input_json_delta", "partial_json": "\"weather "},
        {"type": "input_json_delta", "partial_json": "in Paris\"}"}]], "end_turn")
    record = folded(sse_events(AnthropicParser(), raw))
    assert record.text == "Let me search for that." and record.tool_calls == []
    assert blocks(record) == [("server_tool_use", "srvtoolu_01WebSearch", "web_search",
                               '{"query": "weather in Paris"}')]
    assert summary(record)["blocks"] == [{"type": "server_tool_use", "id": "srvtoolu_01WebSearch",
                                          "name": "web_search", "content": '{"query": "weather in Paris"}'}]


def test_anthropic_tool_results_are_blocks_without_their_encrypted_content() -> None:
    """anthropic-sdk-python's server_tool_result recording: server tool, a client tool_use, two results."""
    raw = anthropic_stream([
        [{"type": "server_tool_use", "id": "svu_web_001", "name": "web_search", "input": {}}],
        [{"type": "tool_use", "id": "tu_client_001", "name": "ask_internal_tool", "caller": {"type": "direct"},
          "input": {}}, {"type": "input_json_delta", "partial_json": "{\"query\":\"test\"}"}],
        [{"type": "web_search_tool_result", "tool_use_id": "svu_web_001", "content": [
            {"type": "web_search_result", "url": "https://example.com", "title": "Example Result",
             "encrypted_content": "enc_abc123", "page_age": None}]}],
        [{"type": "code_execution_tool_result", "tool_use_id": "svu_code_001", "content": {
            "type": "code_execution_result", "return_code": 0, "stdout": "hello", "stderr": "", "content": []}}],
    ], "tool_use")
    record = folded(sse_events(AnthropicParser(), raw))
    assert [(c.id, c.name, c.arguments) for c in record.tool_calls] == [("tu_client_001", "ask_internal_tool",
                                                                          '{"query":"test"}')]
    assert blocks(record) == [
        ("server_tool_use", "svu_web_001", "web_search", ""),
        ("web_search_tool_result", "svu_web_001", "",
         '[{"url":"https://example.com","title":"Example Result","page_age":null}]'),
        ("code_execution_tool_result", "svu_code_001", "",
         '{"return_code":0,"stdout":"hello","stderr":"","content":[]}'),
    ]
    assert "enc_abc123" not in json.dumps(summary(record))
    assert record.finish is FinishReason.TOOL_CALLS


def test_anthropic_fallback_compaction_and_redacted_thinking_are_shown() -> None:
    """anthropic-sdk-python's fallback and compaction recordings, and a redacted_thinking block."""
    raw = anthropic_stream([
        [{"type": "fallback", "from": {"model": "claude-opus-4-7"}, "to": {"model": "claude-sonnet-4-5"},
          "trigger": {"type": "refusal", "category": None}}],
        [{"type": "compaction", "content": None, "encrypted_content": None},
         {"type": "compaction_delta", "content": "Earlier conversation summarized.",
          "encrypted_content": "EpwBCioIDxgCEAEYASJALd_opaque_compaction_payload"}],
        [{"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT"}],
        [{"type": "mystery_block", "detail": "kept", "data": "opaque"}],
        text_block("Hello there!"),
    ], "end_turn")
    record = folded(sse_events(AnthropicParser(), raw))
    assert record.text == "Hello there!" and record.finish is FinishReason.STOP
    assert blocks(record) == [
        ("fallback", "", "", "claude-opus-4-7 → claude-sonnet-4-5 (refusal)"),
        ("compaction", "", "", "Earlier conversation summarized."),
        ("redacted_thinking", "", "", "(encrypted)"),
        ("mystery_block", "", "", '{"detail":"kept"}'),  # a block type this version does not know: shown
    ]
    shown = json.dumps(summary(record))
    assert "opaque" not in shown and "EmwK" not in shown


@pytest.mark.parametrize(("raw", "reason"), [
    ("pause_turn", FinishReason.PAUSE_TURN), ("model_context_window_exceeded", FinishReason.LENGTH),
    ("max_tokens", FinishReason.LENGTH), ("stop_sequence", FinishReason.STOP), ("refusal", FinishReason.CONTENT_FILTER),
])
def test_anthropic_stop_reasons(raw: str, reason: FinishReason) -> None:
    stream = anthropic_stream([
        [{"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {"query": "news"}}],
        text_block("Searching")], raw)
    record = folded(sse_events(AnthropicParser(), stream))
    assert record.finish is reason and record.finish_raw == raw and record.error is None
    assert record.blocks[0].content == '{"query":"news"}'  # an input sent whole in the block's start
    assert summary(record)["status"] == "ok"


def gemini_chunk(payload: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\r\n\r\n"


RATINGS = [{"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
           {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]


@pytest.mark.parametrize("raw", ["SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"])
def test_gemini_blocked_candidate_is_a_refusal_with_its_category(raw: str) -> None:
    stream = (gemini_chunk({"candidates": [{"content": {"parts": [{"text": "Here is"}], "role": "model"},
                                            "index": 0}]})
              + gemini_chunk({"candidates": [{"finishReason": raw, "index": 0, "safetyRatings": RATINGS}],
                              "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2,
                                                "totalTokenCount": 10}}))
    parser = GeminiParser()
    record = folded(sse_events(parser, stream))
    assert parser.done and record.text == "Here is"
    assert record.refusal == "" and record.refusal_category == "HARM_CATEGORY_DANGEROUS_CONTENT"
    assert record.finish is FinishReason.CONTENT_FILTER and record.finish_raw == raw


def test_gemini_blocked_prompt_is_a_refusal() -> None:
    """vercel/ai's issue-19758-prompt-block recording: one chunk, no candidates, the prompt's feedback."""
    stream = gemini_chunk({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT",
                                              "blockReasonMessage": "The prompt was blocked."},
                           "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
                           "modelVersion": "gemini-2.5-flash", "responseId": "abc"})
    parser = GeminiParser()
    record = folded(sse_events(parser, stream))
    assert parser.done and record.text == "" and record.refusal == "The prompt was blocked."
    assert record.finish is FinishReason.CONTENT_FILTER and record.finish_raw == "PROHIBITED_CONTENT"


def test_a_second_openai_choice_fails_the_call_and_is_never_merged() -> None:
    """openai-python's n=3 recording interleaves the choices: the first chunk of choice 1 ends the reading."""
    stream = sse([chat_chunk({"role": "assistant", "content": ""}), chat_chunk({"content": "One"}),
                  chat_chunk({"role": "assistant", "content": ""}, index=1), chat_chunk({"content": "Two"}, index=1),
                  chat_chunk({}, "stop"), chat_chunk({}, "stop", index=1)])
    parser = ChatParser()
    record = folded(sse_events(parser, stream))
    assert parser.done and record.text == "One"
    assert isinstance(record.error, ProviderStreamError) and "several choices" in str(record.error)
    assert record.error.error_class == "several_choices"  # not transient: never retried, no breaker count
    assert not transient(record.error) and summary(record)["status"] == "error"


def test_a_second_gemini_candidate_fails_the_call() -> None:
    stream = gemini_chunk({"candidates": [
        {"content": {"parts": [{"text": "One"}], "role": "model"}, "index": 0},
        {"content": {"parts": [{"text": "Two"}], "role": "model"}, "index": 1}]})
    parser = GeminiParser()
    record = folded(sse_events(parser, stream))
    assert parser.done and record.text == "" and record.error is not None and "several choices" in str(record.error)


@pytest.mark.parametrize("event", [
    RefusalDelta(42, 1),  # type: ignore[arg-type]
    RefusalDelta("no", 1, 7),  # type: ignore[arg-type]
    BlockDelta(MAX_TOOL_CALLS, "server_tool_use", None, None, "", 1),
    BlockDelta(0, "server_tool_use", None, None, 5, 1),  # type: ignore[arg-type]
])
def test_a_malformed_refusal_or_block_is_a_decode_error(event: RefusalDelta | BlockDelta) -> None:
    with pytest.raises(StreamDecodeError):
        StreamBudget("t/m", 16).checked(event)


def test_refusal_text_counts_against_the_output_budget_a_tool_result_does_not() -> None:
    budget = StreamBudget("t/m", 1)
    with pytest.raises(Exception, match="past max_tokens"):
        for _ in range(10_000):
            budget.checked(RefusalDelta("x" * 1000, 1))
    budget = StreamBudget("t/m", 1)  # a fetched page far longer than max_tokens: the byte budget bounds it
    page = BlockDelta(0, "web_fetch_tool_result", "srvtoolu_01", None, "x" * 200_000, 1)
    assert budget.checked(page) is page


def test_restart_forgets_a_previous_attempts_refusal_and_blocks() -> None:
    record = folded(sse_events(AnthropicParser(), ANTHROPIC_REFUSAL))
    record.blocks.append(ProviderBlock("fallback", content_parts=["a → b"]))
    assert record.refusal is not None and record.refusal_category == "cyber"
    record.restart()
    assert record.refusal is None and record.refusal_category is None and record.blocks == []


def test_an_estimated_usage_counts_the_refusal_as_output() -> None:
    stream = OPENAI_REFUSAL.replace(b'"usage": {"prompt_tokens": 79, "completion_tokens": 12, "total_tokens": 91}',
                                    b'"usage": null')
    record = folded(sse_events(ChatParser(), stream))
    assert record.usage is None
    estimate_usage_of(record)
    assert record.usage_estimated and record.usage is not None and record.usage.output_tokens >= 8


@pytest.mark.parametrize("raw", ["RECITATION", "LANGUAGE", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"])
def test_gemini_withheld_candidate_reads_as_a_refusal(raw: str) -> None:
    """Google's FinishReason enum: recitation, an unsupported language and an image's safety withhold the reply."""
    stream = gemini_chunk({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"},
                                           "finishReason": raw, "index": 0}],
                           "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}})
    parser = GeminiParser()
    record = folded(sse_events(parser, stream))
    assert parser.done and record.error is None and record.refusal == ""
    assert record.finish is FinishReason.CONTENT_FILTER and record.finish_raw == raw


@pytest.mark.parametrize("raw", ["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"])
def test_gemini_failed_tool_call_ends_the_call_in_error(raw: str) -> None:
    """pydantic-ai's recorded MALFORMED_FUNCTION_CALL chunk: no content, the finish and the usage only."""
    stream = gemini_chunk({"candidates": [{"finishReason": raw, "index": 0}],
                           "usageMetadata": {"promptTokenCount": 2595, "totalTokenCount": 2595},
                           "modelVersion": "gemini-2.5-flash"})
    parser = GeminiParser()
    record = folded(sse_events(parser, stream))
    assert parser.done and record.text == "" and record.tool_calls == []
    assert isinstance(record.error, ProviderStreamError) and raw in str(record.error)
    assert record.finish is FinishReason.ERROR and record.finish_raw == raw
    assert record.usage is not None and record.usage.input_tokens == 2595


@pytest.mark.parametrize("raw", ["OTHER", "NO_IMAGE", "FINISH_REASON_UNSPECIFIED"])
def test_gemini_other_ends_read_stop_with_the_raw_kept(raw: str) -> None:
    stream = gemini_chunk({"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"},
                                           "finishReason": raw, "index": 0}]})
    parser = GeminiParser()
    record = folded(sse_events(parser, stream))
    assert parser.done and record.error is None and record.text == "Hi"
    assert record.finish is FinishReason.STOP and record.finish_raw == raw
