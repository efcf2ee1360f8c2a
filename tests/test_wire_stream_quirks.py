"""Adapters read the quirks of real provider streams: errors written outside the SSE framing, tool calls
without their index, streams cut without a last blank line (bytes as recorded in public bug reports)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.test_wire_recordings import ANTHROPIC, GEMINI, OPENAI_GPT4O, RESPONSES, finish, sse_events, texts
from tests.test_wire_tools import calls, folded
from workbench.core.errors import ProviderStreamError, StreamDecodeError
from workbench.core.events import ErrorEvent, FinishReason, StreamEvent
from workbench.core.providers.anthropic import AnthropicParser
from workbench.core.providers.base import WireParser
from workbench.core.providers.gemini import GeminiParser
from workbench.core.providers.openai_chat import ChatParser
from workbench.core.providers.openai_responses import ResponsesParser
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


def chat_stream(*chunks: str, done: bool = True) -> bytes:
    return b"".join(b"data: " + c.encode() + b"\n\n" for c in chunks) + (b"data: [DONE]\n\n" if done else b"")


def test_gemini_openai_compatible_calls_without_index_or_id_stay_apart() -> None:
    # Gemini's OpenAI-compatible endpoint (meilisearch#5712, googleapis/python-genai#2868): each call whole, "index"
    # null and "id" "" (or no index at all), and the reply ends "stop".
    raw = chat_stream(
        '{"id":"SKpbaNfgG_7rkdUPhs3joQg","choices":[{"index":0,"delta":{"content":null,"function_call":null,'
        '"tool_calls":[{"index":null,"id":"","type":"function","function":{"name":"search",'
        '"arguments":"{\\"q\\":\\"a\\"}"}}],"role":"assistant"},"finish_reason":null}],'
        '"object":"chat.completion.chunk"}',
        '{"choices":[{"delta":{"role":"assistant","tool_calls":[{"extra_content":{"google":{"thought_signature":"c2ln"}},'
        '"function":{"arguments":"{\\"path\\":\\"/app/SKILL.md\\"}","name":"read"},"id":"","type":"function"}]},'
        '"index":0}],"model":"gemini-3-flash","object":"chat.completion.chunk"}',
        '{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":"stop"}],"object":"chat.completion.chunk"}')
    record = folded(sse_events(ChatParser(), raw))
    assert calls(record) == [("", "search", '{"q":"a"}'), ("", "read", '{"path":"/app/SKILL.md"}')]
    assert record.finish is FinishReason.TOOL_CALLS and record.finish_raw == "stop"


def test_ollama_openai_compatible_calls_all_at_index_zero_stay_apart() -> None:
    # vercel/ai#14277: Ollama labels every call of a turn index 0, each whole with its own id.
    raw = chat_stream(*(
        f'{{"id":"chatcmpl-74","object":"chat.completion.chunk","created":1744000000,"model":"qwen3-coder:30b",'
        f'"system_fingerprint":"fp_ollama","choices":[{{"index":0,"delta":{{"role":"assistant","content":"",'
        f'"tool_calls":[{{"id":"call_{n}","index":0,"type":"function","function":{{"name":"read_file",'
        f'"arguments":"{{\\"path\\":\\"{n}\\"}}"}}}}]}},"finish_reason":null}}]}}' for n in ("a", "b")),
        '{"id":"chatcmpl-74","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant",'
        '"content":""},"finish_reason":"tool_calls"}]}')
    record = folded(sse_events(ChatParser(), raw))
    assert calls(record) == [("call_a", "read_file", '{"path":"a"}'), ("call_b", "read_file", '{"path":"b"}')]


def test_indexless_argument_fragments_continue_their_call() -> None:
    # open-webui/computer#224: Gemini splits one call's arguments across deltas without an index.
    raw = chat_stream(
        '{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"function-call-1","type":"function",'
        '"function":{"name":"get_weather","arguments":"{\\"location\\":"}}]}}]}',
        '{"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"\\"Sydney\\"}"}}]}}]}',
        '{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"function-call-2","type":"function",'
        '"function":{"name":"get_time","arguments":"{}"}}]}}]}',
        '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}', done=False)  # no [DONE]: the finish ends it
    parser = ChatParser()
    record = folded(sse_events(parser, raw))
    assert calls(record) == [("function-call-1", "get_weather", '{"location":"Sydney"}'),
                             ("function-call-2", "get_time", "{}")]
    assert parser.complete_at_eof() and record.finish is FinishReason.TOOL_CALLS


def test_openai_ids_on_every_fragment_do_not_split_a_call() -> None:
    raw = chat_stream(*(
        f'{{"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":0,"id":"call_1","function":{{"name":"f",'
        f'"arguments":"{piece}"}}}}]}}}}]}}' for piece in ('{\\"a\\"', ":1}")))
    assert calls(folded(sse_events(ChatParser(), raw))) == [("call_1", "f", '{"a":1}')]


def shape(events: list[StreamEvent]) -> list[tuple[str, dict[str, object]]]:
    """The events without their arrival times."""
    return [(type(e).__name__, {f.name: getattr(e, f.name) for f in dataclasses.fields(e) if f.name != "at_ns"})
            for e in events]


def in_pieces(parser: WireParser, raw: bytes, size: int) -> list[StreamEvent]:
    """``raw`` fed ``size`` bytes at a time (a CRLF and a UTF-8 sequence split across chunks), as a call reads it."""
    decoder = SSEDecoder(bare_json=parser.bare_json)
    out = [e for i in range(0, len(raw), size) for m in decoder.feed(raw[i:i + size]) for e in parser.feed(m, 1)]
    if not parser.done:
        out += [e for m in decoder.close() for e in parser.feed(m, 2)]
    return out


@pytest.mark.parametrize(("make", "raw"), [
    (ChatParser, OPENAI_GPT4O), (ResponsesParser, RESPONSES), (AnthropicParser, ANTHROPIC),
    (GeminiParser, GEMINI), (GeminiParser, GEMINI_OVERLOADED)])
@pytest.mark.parametrize("size", [1, 7, 4096])
def test_recordings_read_alike_with_crlf_without_the_last_blank_line_and_in_pieces(
        make: type[WireParser], raw: bytes, size: int) -> None:
    expected = shape(sse_events(make(), raw))
    assert expected
    crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").rstrip(b"\r\n")  # ends on its last data line
    parser = make()
    assert shape(in_pieces(parser, crlf, size)) == expected
    assert parser.complete_at_eof()


def test_a_byte_order_mark_opening_the_stream_is_dropped_even_split_across_chunks() -> None:
    raw = "\ufeff".encode() + OPENAI_GPT4O
    expected = shape(sse_events(ChatParser(), OPENAI_GPT4O))
    assert shape(in_pieces(ChatParser(), raw, 1)) == expected
    assert SSEDecoder().feed(b'data: {}\n\n\xef\xbb\xbfdata: {"a": 1}\n\n') == [SSEMessage("", "{}")]  # only the first


def responses_stream(*events: str) -> bytes:
    return b"".join(b"event: " + json.loads(e)["type"].encode() + b"\ndata: " + e.encode() + b"\n\n" for e in events)


def test_responses_function_call_sent_whole_in_its_items() -> None:
    # A compatible server that sends no arguments events: the item's output_item.done carries them.
    raw = responses_stream(
        '{"type":"response.output_item.added","output_index":0,"item":{"id":"fc_1","type":"function_call",'
        '"status":"in_progress","arguments":"","call_id":"call_1","name":"get_weather"},"sequence_number":1}',
        '{"type":"response.output_item.done","output_index":0,"item":{"id":"fc_1","type":"function_call",'
        '"status":"completed","arguments":"{\\"city\\":\\"Oslo\\"}","call_id":"call_1","name":"get_weather"},'
        '"sequence_number":2}',
        '{"type":"response.completed","response":{"status":"completed","usage":{"input_tokens":5,"output_tokens":7}},'
        '"sequence_number":3}')
    record = folded(sse_events(ResponsesParser(), raw))
    assert calls(record) == [("call_1", "get_weather", '{"city":"Oslo"}')]
    assert record.finish is FinishReason.TOOL_CALLS


def test_responses_failed_recording_and_a_failure_without_a_reason() -> None:
    # vercel/ai openai-response-failed-only.1 (gpt-4o-mini): response.created, then response.failed.
    raw = responses_stream(
        '{"type":"response.created","sequence_number":0,"response":{"id":"resp_test_failed_001","object":"response",'
        '"status":"in_progress","error":null,"incomplete_details":null,"model":"gpt-4o-mini","output":[],"usage":null}}',
        '{"type":"response.failed","sequence_number":1,"response":{"id":"resp_test_failed_001","object":"response",'
        '"status":"failed","error":{"code":"rate_limit_exceeded","message":"Request too large for gpt-4o-mini in '
        'organization on tokens per min (TPM): Limit 30000, Requested 35364."},"incomplete_details":null,'
        '"model":"gpt-4o-mini","output":[],"usage":null}}')
    parser = ResponsesParser()
    events = sse_events(parser, raw)
    assert parser.done and isinstance(events[-1], ErrorEvent)
    assert events[-1].kind == "rate_limit_exceeded" and "Limit 30000" in events[-1].message
    bare = sse_events(ResponsesParser(), responses_stream(
        '{"type":"response.failed","response":{"status":"failed","error":null,"usage":null}}'))
    assert isinstance(bare[0], ErrorEvent) and bare[0].message == "the response failed without a reason"


def test_chat_errors_that_are_no_error_key_still_fail_the_call() -> None:
    # OpenRouter and vLLM end a failed generation with finish_reason "error"; FastChat-style servers send the error
    # object itself ({"object": "error", ...}) as a chunk.
    failed = sse_events(ChatParser(), chat_stream(
        '{"id":"gen-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"par"}}]}',
        '{"id":"gen-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":""},'
        '"finish_reason":"error"}]}'))
    record = folded(failed)
    assert record.text == "par" and isinstance(record.error, ProviderStreamError)
    bare = sse_events(ChatParser(), chat_stream(
        '{"object":"error","message":"This model\'s maximum context length is 4096 tokens.",'
        '"type":"BadRequestError","param":null,"code":400}'))
    assert isinstance(bare[0], ErrorEvent) and bare[0].kind == "BadRequestError" and "4096" in bare[0].message


def gemini_stream(*chunks: str) -> bytes:
    return b"".join(b"data: " + c.encode() + b"\r\n\r\n" for c in chunks)


def gemini_call_chunk(call: str, *, signature: str = "", end: str = "") -> str:
    signed = f',"thoughtSignature":"{signature}"' if signature else ""
    return (f'{{"candidates":[{{"content":{{"role":"model","parts":[{{"functionCall":{call}{signed}}}]}}{end}}}],'
            '"usageMetadata":{"trafficType":"ON_DEMAND"},"modelVersion":"gemini-3.1-pro-preview",'
            '"createTime":"2026-04-02T17:03:50.399550Z","responseId":"dqHOab6xGLzWodAPkPuViA4"}')


def test_gemini_streamed_function_call_arguments_are_assembled() -> None:
    # vercel/ai google-stream-tool-call-arguments (gemini-3.1-pro-preview, streamFunctionCallArguments): two calls,
    # each named with willContinue, its arguments as partialArgs pieces, ended by an empty functionCall.
    usage = (',"usageMetadata":{"promptTokenCount":26,"candidatesTokenCount":23,"totalTokenCount":181,'
             '"thoughtsTokenCount":132}')
    raw = gemini_stream(
        gemini_call_chunk('{"name":"getWeather","willContinue":true}', signature="CiMBjz1rX25K"),
        gemini_call_chunk('{"partialArgs":[{"jsonPath":"$.location","stringValue":"Boston","willContinue":true}],'
                          '"willContinue":true}'),
        gemini_call_chunk('{"partialArgs":[{"jsonPath":"$.location","stringValue":""}],"willContinue":true}'),
        gemini_call_chunk("{}"),
        gemini_call_chunk('{"name":"getWeather","willContinue":true}'),
        gemini_call_chunk('{"partialArgs":[{"jsonPath":"$.location","stringValue":"San Francisco",'
                          '"willContinue":true}],"willContinue":true}'),
        gemini_call_chunk('{"partialArgs":[{"jsonPath":"$.location","stringValue":""}],"willContinue":true}'),
        gemini_call_chunk("{}", end=',"finishReason":"STOP"').replace(',"usageMetadata":{"trafficType":"ON_DEMAND"}',
                                                                       usage))
    record = folded(sse_events(GeminiParser(), raw))
    assert calls(record) == [("", "getWeather", '{"location":"Boston"}'),
                             ("", "getWeather", '{"location":"San Francisco"}')]
    assert record.tool_calls[0].signature == "CiMBjz1rX25K"
    assert record.finish is FinishReason.TOOL_CALLS
    assert record.usage is not None and record.usage.output_tokens == 23 + 132


def test_gemini_streamed_arguments_into_arrays_ended_by_the_finish() -> None:
    # vercel/ai google-stream-tool-call-array-arguments-missing-terminal-function-call (gemini-3-flash-preview): the
    # last piece has no willContinue and no empty functionCall follows; nested objects in an array, numbers.
    pieces = [("$.operations[0].action", '"stringValue":"add","willContinue":true'),
              ("$.operations[0].action", '"stringValue":""'),
              ("$.operations[0].price", '"numberValue":0.5'),
              ("$.operations[1].action", '"stringValue":"remo","willContinue":true'),
              ("$.operations[1].action", '"stringValue":"ve","willContinue":true'),
              ("$.operations[1].action", '"stringValue":""'),
              ("$.operations[1].in_stock", '"boolValue":false')]
    raw = gemini_stream(
        gemini_call_chunk('{"name":"writeItems","willContinue":true}'),
        *(gemini_call_chunk(f'{{"partialArgs":[{{"jsonPath":"{path}",{value}}}],"willContinue":true}}')
          for path, value in pieces),
        gemini_call_chunk('{"partialArgs":[{"jsonPath":"$.note","nullValue":null}]}'),
        '{"candidates":[{"content":{"role":"model","parts":[{"text":""}]},"finishReason":"STOP"}]}')
    assert calls(folded(sse_events(GeminiParser(), raw))) == [(
        "", "writeItems", '{"operations":[{"action":"add","price":0.5},{"action":"remove","in_stock":false}],'
        '"note":null}')]
    cut = gemini_stream(gemini_call_chunk('{"name":"f","willContinue":true}'),
                        gemini_call_chunk('{"partialArgs":[{"jsonPath":"$.a","numberValue":1}],"willContinue":true}'),
                        '{"candidates":[{"content":{"role":"model","parts":[]},"finishReason":"STOP"}]}')
    assert calls(folded(sse_events(GeminiParser(), cut))) == [("", "f", '{"a":1}')]  # the finish ends it


@pytest.mark.parametrize("path", ["location", "$.items[3].name", "$.a[0]", "$" + ".a" * 65])
def test_gemini_streamed_arguments_that_do_not_fit_are_refused(path: str) -> None:
    raw = gemini_stream(
        gemini_call_chunk('{"name":"f","willContinue":true}'),
        gemini_call_chunk('{"partialArgs":[{"jsonPath":"$.a","stringValue":"x"}],"willContinue":true}'),
        gemini_call_chunk(f'{{"partialArgs":[{{"jsonPath":"{path}","stringValue":"y"}}]}}'))
    with pytest.raises(StreamDecodeError):
        sse_events(GeminiParser(), raw)
