"""The SSE decoder: WHATWG line rules, split-invariance under any byte split, typed errors only."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.errors import StreamDecodeError
from workbench.core.sse import SSEDecoder, SSEMessage


def decode(*chunks: bytes, close: bool = True) -> list[SSEMessage]:
    decoder = SSEDecoder()
    out = [m for chunk in chunks for m in decoder.feed(chunk)]
    if close:
        decoder.close()
    return out


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def test_lf_crlf_and_cr_line_endings_all_end_lines() -> None:
    assert decode(b"data: a\n\ndata: b\r\n\r\ndata: c\r\rdata: d\n\r\n") == [
        SSEMessage("", "a"), SSEMessage("", "b"), SSEMessage("", "c"), SSEMessage("", "d")]


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    assert decode(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n") == [SSEMessage("", "a"), SSEMessage("", "b")]


def test_multiline_data_is_joined_with_newlines_and_empty_data_contributes_a_line() -> None:
    body = b'data: {\ndata: "foo":\ndata:\ndata: \ndata: true}\n\n'
    assert decode(body) == [SSEMessage("", '{\n"foo":\n\n\ntrue}')]


def test_only_one_leading_space_is_stripped_and_no_space_is_valid() -> None:
    assert decode(b"data:x\n\ndata:  y\n\n") == [SSEMessage("", "x"), SSEMessage("", " y")]


def test_comments_and_unknown_fields_are_ignored_and_event_names_kept() -> None:
    body = b": OPENROUTER PROCESSING\n\nfoo: bar\nevent: message_start\ndata: {}\n\n: keep-alive\n\n"
    assert decode(body) == [SSEMessage("message_start", "{}")]


def test_event_without_data_yields_empty_data() -> None:
    assert decode(b"event: ping\n\n") == [SSEMessage("ping", "")]


def test_id_is_kept_and_ignored_when_it_contains_nul() -> None:
    assert decode(b"id: 7\ndata: a\n\nid: x\x00y\ndata: b\n\n") == [SSEMessage("", "a", "7"), SSEMessage("", "b", "7")]


def test_u2028_inside_json_is_not_a_line_break() -> None:
    payload = '{"text":"a\u2028b\u2029c\x85d"}'.encode()
    assert decode(b"data: " + payload + b"\n\n") == [SSEMessage("", payload.decode())]


def test_multibyte_character_split_across_three_chunks() -> None:
    raw = "data: известни\n\n".encode()
    cut = raw.index("з".encode()) + 1
    assert decode(raw[:cut], raw[cut:cut + 1], raw[cut + 1:]) == [SSEMessage("", "известни")]


def test_a_last_event_without_its_blank_line_is_dispatched_at_the_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\nevent: message_stop\ndata: b\n") == [SSEMessage("", "a")]
    assert decoder.close() == [SSEMessage("message_stop", "b")]


def test_a_partial_last_line_is_handed_on_for_the_wire_parser_to_judge() -> None:
    decoder = SSEDecoder()
    decoder.feed(b'data: {"choices": [')
    assert decoder.close() == [SSEMessage("", '{"choices": [')]
    assert decoder.close() == []


def test_an_endless_line_or_event_is_refused_before_it_grows_without_bound() -> None:
    decoder = SSEDecoder()
    with pytest.raises(StreamDecodeError, match="line longer than"):
        for _ in range(10):
            decoder.feed(b"x" * (1024 * 1024))
    decoder = SSEDecoder()
    with pytest.raises(StreamDecodeError, match="event longer than"):
        for _ in range(20):
            decoder.feed(b"data: " + b"y" * (512 * 1024) + b"\n")


def test_done_sentinel_is_passed_through_as_data() -> None:
    assert decode(b"data: [DONE]\n\n") == [SSEMessage("", "[DONE]")]


event_lines = st.lists(
    st.tuples(
        st.sampled_from([b"data", b"event", b"id", b"retry", b"", b"x"]),
        st.binary(max_size=12).filter(lambda b: b"\r" not in b and b"\n" not in b),
    ),
    max_size=6,
)
newline = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    events = draw(st.lists(event_lines, max_size=8))
    out = b""
    for lines in events:
        for name, value in lines:
            out += (name + b": " + value if name else b":" + value) + draw(newline)
        out += draw(newline)
    return out


@settings(max_examples=300, deadline=None)
@given(sse_streams(), st.lists(st.integers(min_value=0, max_value=10_000), max_size=8))
def test_any_byte_split_gives_the_same_events(stream: bytes, cuts: list[int]) -> None:
    whole = decode(stream, close=False)
    assert decode(*split_at(stream, cuts), close=False) == whole


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_garbage_gives_events_or_a_typed_error_never_a_crash(garbage: bytes, cuts: list[int]) -> None:
    def run(chunks: list[bytes]) -> tuple[list[SSEMessage], type | None]:
        decoder = SSEDecoder()
        events = [m for c in chunks for m in decoder.feed(c)]
        try:
            decoder.close()
        except StreamDecodeError as exc:
            return events, type(exc)
        return events, None

    assert run(split_at(garbage, cuts)) == run([garbage])
