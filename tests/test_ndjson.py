"""The NDJSON decoder: split-invariance under any byte split; garbage gives a typed error."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_sse import split_at
from workbench.core.errors import InvalidLineError, StreamDecodeError, TruncatedInputError
from workbench.core.ndjson import NDJSONDecoder


def run(chunks: list[bytes]) -> tuple[list[Any], type | None]:
    decoder = NDJSONDecoder()
    out: list[Any] = []
    try:
        for chunk in chunks:
            out.extend(decoder.feed(chunk))
        out.extend(decoder.close())
    except StreamDecodeError as exc:
        return out, type(exc)
    return out, None


def test_objects_split_inside_a_multibyte_character() -> None:
    raw = '{"message":{"content":"известни"},"done":false}\n{"done":true}\n'.encode()
    cut = raw.index("в".encode()) + 1
    assert run([raw[:cut], raw[cut:]]) == ([{"message": {"content": "известни"}, "done": False}, {"done": True}], None)


def test_crlf_and_blank_lines_are_tolerated() -> None:
    assert run([b'{"a":1}\r\n\n{"b":2}\n']) == ([{"a": 1}, {"b": 2}], None)


def test_a_bad_line_raises_after_the_good_ones() -> None:
    assert run([b'{"a":1}\n{"b": [\n{"c":3}\n']) == ([{"a": 1}], InvalidLineError)


def test_unterminated_complete_value_is_accepted_but_a_partial_one_is_truncated() -> None:
    assert run([b'{"a":1}\n{"b":2}']) == ([{"a": 1}, {"b": 2}], None)
    assert run([b'{"a":1}\n{"b":']) == ([{"a": 1}], TruncatedInputError)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(json_values, max_size=8), st.lists(st.integers(min_value=0, max_value=5000), max_size=8))
def test_any_byte_split_gives_the_same_values(values: list[Any], cuts: list[int]) -> None:
    stream = b"".join(json.dumps(v, ensure_ascii=False).encode() + b"\n" for v in values)
    assert run(split_at(stream, cuts)) == (values, None)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_garbage_gives_a_typed_error_never_a_crash(garbage: bytes, cuts: list[int]) -> None:
    assert run(split_at(garbage, cuts)) == run([garbage])
