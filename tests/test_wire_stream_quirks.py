"""Adapters read the quirks of real provider streams: errors written outside the SSE framing, tool calls
without their index, streams cut without a last blank line (bytes as recorded in public bug reports)."""

from __future__ import annotations

import pytest

from tests.test_wire_recordings import finish, sse_events, texts
from tests.test_wire_tools import folded
from workbench.core.errors import ProviderStreamError, StreamDecodeError
from workbench.core.events import ErrorEvent, FinishReason
from workbench.core.providers.gemini import GeminiParser
from workbench.core.sse import SSEDecoder, SSEMessage

# vercel/ai issue #5217 (gemini-2.0-flash): Gemini aborts the stream with a pretty-printed error, no "data:".
GEMINI_OVERLOADED = (
    b'data: {"candidates": [{"content": {"parts": [{"text": "Okay"}],"role": "model"}}],"usageMetadata": '
    b'{"promptTokenCount": 2304,"totalTokenCount": 2304,"promptTokensDetails": [{"modality": "TEXT","tokenCount": '
    b'2304}]},"modelVersion": "gemini-2.0-flash"}\r\n\r\n'
    b'{\n  "error": {\n    "code": 503,\n    "message": "The model is overloaded. Please try again later.",\n'
    b'    "status": "UNAVAILABLE"\n  }\n}\n')


def test_gemini_error_outside_the_framing_fails_the_call() -> None:
    parser = GeminiParser()
    events = sse_events(parser, GEMINI_OVERLOADED)
    assert parser.done and texts(events) == "Okay"
    error = events[-1]
    assert isinstance(error, ErrorEvent) and error.kind == "UNAVAILABLE" and "overloaded" in error.message
    record = folded(events)
    assert isinstance(record.error, ProviderStreamError) and record.finish is FinishReason.ERROR


def test_gemini_error_tail_without_a_line_break_after_crlf_chunks() -> None:
    # theopenco/llmgateway#3616: a Flex-tier stream shed after a chunk; the body ends on the error's last brace.
    raw = (b'data: {"candidates": [{"content": {"parts": [{"text": "Hi"}],"role": "model"},"index": 0}]}\r\n\r\n'
           b'{\r\n  "error": {\r\n    "code": 429,\r\n    "message": "Resource has been exhausted (e.g. check quota).",'
           b'\r\n    "status": "RESOURCE_EXHAUSTED"\r\n  }\r\n}')
    events = sse_events(GeminiParser(), raw)
    assert texts(events) == "Hi"
    assert isinstance(events[-1], ErrorEvent) and events[-1].kind == "RESOURCE_EXHAUSTED"


def test_gemini_data_error_event_and_a_string_error() -> None:
    raw = b'data: {"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}\r\n\r\n'
    events = sse_events(GeminiParser(), raw)
    assert isinstance(events[0], ErrorEvent) and events[0].kind == "INTERNAL"
    plain = sse_events(GeminiParser(), b'data: {"error": "backend unavailable"}\r\n\r\n')
    assert isinstance(plain[0], ErrorEvent) and plain[0].message == "backend unavailable"


def test_gemini_bare_error_after_the_finish_chunk_still_fails_the_call() -> None:
    raw = (b'data: {"candidates": [{"content": {"parts": [{"text": ""}],"role": "model"},"finishReason": "STOP"}]}'
           b'\r\n\r\n{\n  "error": {\n    "code": 503,\n    "message": "Overloaded",\n    "status": "UNAVAILABLE"\n'
           b'  }\n}\n')
    events = sse_events(GeminiParser(), raw)
    assert finish(events).reason is FinishReason.STOP
    assert folded(events).finish is FinishReason.ERROR


def test_bare_json_cut_short_is_refused_not_swallowed() -> None:
    with pytest.raises(StreamDecodeError):
        sse_events(GeminiParser(), b'data: {"candidates": []}\r\n\r\n{\n  "error": {\n    "code": 503,\n')


def test_other_wires_ignore_lines_outside_the_framing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'{\n  "error": {}\n}\n\ndata: {"a": 1}\n\n') == [SSEMessage("", '{"a": 1}')]
    gemini = SSEDecoder(bare_json=True)
    assert [m.data for m in gemini.feed(b'[{\n"error": {"message": "a } inside"}\n}]\ndata: {}\n\n')] == [
        '[{\n"error": {"message": "a } inside"}\n}]', "{}"]
