"""TokenMeter: an exact incremental token count under arbitrary edits, for o200k_base and cl100k_base."""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Any

import pytest
import regex  # type: ignore[import-untyped]
import tiktoken
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core.tokens import encodings as tokenizer
from workbench.core.tokens.meter import TokenMeter, split_chunks

ENCODINGS = ("o200k_base", "cl100k_base")


@pytest.fixture(scope="module", params=ENCODINGS)
def enc(request: pytest.FixtureRequest) -> tiktoken.Encoding:
    return tokenizer.get_encoding(request.param)


def full(enc: tiktoken.Encoding, text: str) -> int:
    return len(enc.encode_ordinary(text))


# Fragments that stress the pre-tokenizer around line ends: newline runs, CRLF, spaces before and after
# newlines, "/" after newlines (o200k's [\r\n/]*), Unicode whitespace (NBSP, ideographic space, U+2028,
# the U+001C separators Python counts as space), combining marks, CJK, emoji, contractions, digits, code.
FRAGMENTS = [
    "\n", "\n\n", "\n\n\n", "\r\n", "\r", " ", "  ", "\t", " \n", "\n ", "a", "word", "Hello", "HTTPServer",
    "/", "//", "./", ".", ",", "!", "'s", "'ll", "'", '"', "123", "4567", "é", "e\u0301", "日本語", "😀", "👍🏽",
    "\u3000", "\xa0", "\x1c", "\u2028", "\x85", "{", "}", "def f(x):\n    return x\n", "- item\n", "# H\n",
    "x/y", "::", "->", "Привет", "مرحبا", "。", "，", "中文", "好的", "（", "）", "_", "__init__", "²", "½", "Ⅻ",
    '{"id":12,"k":"v"}', "foo(bar)", "a.b", "it's", "I'LL", "ſ", "K", "ǅ", "ʰ", "ab1", "9x", "\x00", "\x7f",
]

fragment_texts = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=40).map("".join)


def apply(text: str, start: int, end: int, replacement: str) -> str:
    return text[:start] + replacement + text[end:]


# -- known tiktoken outputs --------------------------------------------------------------------------

MULTILINGUAL = "Héllo, 世界! Привет, мир. こんにちは 🌍"
KNOWN_IDS = {
    "o200k_base": {
        "hello world": [24912, 2375],
        MULTILINGUAL: [39, 377, 72807, 11, 185558, 0, 14917, 131903, 11, 37934, 13, 220, 95839, 130321, 235],
    },
    "cl100k_base": {
        "hello world": [15339, 1917],
        MULTILINGUAL: [39, 19010, 385, 11, 220, 3574, 244, 98220, 0, 80584, 28089, 8341, 11, 11562, 78746, 13,
                       220, 90115, 11410, 234, 235],
    },
}


@pytest.mark.parametrize("name", ENCODINGS)
def test_known_token_ids(name: str) -> None:
    enc = tokenizer.get_encoding(name)
    for text, ids in KNOWN_IDS[name].items():
        assert enc.encode_ordinary(text) == ids
        meter = TokenMeter(enc, text, chunk_chars=1)
        assert meter.count == len(ids)
    # the same strings as separate paragraphs of one text: counts add up through the cuts
    text = "hello world\n" + MULTILINGUAL + "\nhello world"
    meter = TokenMeter(enc, text, chunk_chars=1)
    assert meter.chunk_count > 3
    assert meter.count == full(enc, text) == 2 + len(KNOWN_IDS[name][MULTILINGUAL]) + 2 + 2


# -- the boundary rule ---------------------------------------------------------------------------------


def pieces(pattern: Any, text: str) -> list[str]:
    return [m.group() for m in pattern.finditer(text)]


@pytest.fixture(scope="module")
def pre_tokenizers() -> list[Any]:
    """Both pre-tokenizer regexes, run by the Python ``regex`` module (``$`` pinned to the text's end)."""
    return [regex.compile(tokenizer.get_encoding(n)._pat_str.replace("$", r"\Z")) for n in ENCODINGS]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=fragment_texts)
def test_every_cut_is_a_pre_tokenizer_piece_boundary(pre_tokenizers: list[Any], text: str) -> None:
    """Stronger than equal counts: at every cut, pieces(T) == pieces(T[:p]) + pieces(T[p:])."""
    cuts = [0]
    for chunk in split_chunks(text, 1):  # chunk_chars=1 cuts at every safe position
        cuts.append(cuts[-1] + len(chunk))
    assert cuts[-1] == len(text)
    for pattern in pre_tokenizers:
        whole = pieces(pattern, text)
        for p in cuts[1:-1]:
            assert whole == pieces(pattern, text[:p]) + pieces(pattern, text[p:]), (text, p)


def test_unsafe_cuts_are_not_made(enc: tiktoken.Encoding) -> None:
    # o200k makes "\n\n \n" one token and takes the "/" into ".\n\n/": a cut after the blank line
    # (the (?<=\n\n)(?=[^\n]) rule) would be wrong there; so is one before whitespace after a newline.
    for text in ["a\n\n \nb", "a.\n\n/b", "a\n\n\u3000\nb", "x.\n\n\rb", "a\n\n\tb", "a \n b", "a  b"]:
        chunks = split_chunks(text, 1)
        assert sum(full(enc, c) for c in chunks) == full(enc, text), chunks
        assert TokenMeter(enc, text, chunk_chars=1).count == full(enc, text)
    o200k = tokenizer.get_encoding("o200k_base")
    assert full(o200k, "a\n\n \nb") == 3 != full(o200k, "a\n\n") + full(o200k, " \nb")
    assert split_chunks("a\n\n \nb", 1) == ["a", "\n\n \n", "b"]  # never a cut inside a whitespace run
    assert split_chunks("one\ntwo three", 1) == ["one", "\n", "two", " three"]
    assert split_chunks("x.\n\n/y 'z'", 1) == ["x", ".\n\n/y", " 'z'"]  # not after "/", nor before "'"


def test_python_whitespace_covers_unicode_white_space() -> None:
    """The cut rule tests whitespace with str.isspace; the tokenizers use White_Space: must be a superset."""
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    white_space = regex.findall(r"\s", everything)
    assert len(white_space) >= 25
    assert all(c.isspace() for c in white_space)


def test_python_letters_are_letters_in_newer_unicode_tables() -> None:
    """Rule L trusts str.isalpha (Unicode 14 in 3.11) to imply \\p{L} in the tokenizer's newer tables."""
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    letters = set(regex.findall(r"\p{L}", everything))
    python_letters = [c for c in everything if c.isalpha()]
    assert len(python_letters) > 130_000
    assert all(c in letters for c in python_letters)


def test_long_lines_without_newlines_are_still_cut() -> None:
    """Compact JSON and CJK prose have no newlines or spaces; rule L cuts them before punctuation."""
    compact = '[{"id":1,"name":"x1","tags":["a","b"]}' + ',{"id":2,"name":"x2","tags":[]}' * 500 + "]"
    cjk = "这是一个很长的段落，没有换行。它用中文标点分句：逗号、句号和问号？" * 300
    for text in (compact, cjk):
        chunks = split_chunks(text)
        assert len(chunks) > len(text) // 600
        for name in ENCODINGS:
            enc = tokenizer.get_encoding(name)
            assert sum(full(enc, c) for c in chunks) == full(enc, text)


@settings(max_examples=200, deadline=None)
@given(text=fragment_texts | st.text(max_size=200), chunk_chars=st.sampled_from([1, 2, 5, 16, 256]))
def test_chunk_counts_add_up(text: str, chunk_chars: int) -> None:
    chunks = split_chunks(text, chunk_chars)
    assert "".join(chunks) == text
    assert all(chunks)
    for name in ENCODINGS:
        enc = tokenizer.get_encoding(name)
        assert sum(full(enc, c) for c in chunks) == full(enc, text)


# -- random edits ----------------------------------------------------------------------------------------

edit_ops = st.lists(
    st.tuples(
        st.floats(0, 1),  # start, as a fraction of the current length
        st.sampled_from([0, 0, 0, 1, 1, 2, 3, 10, 1000]),  # characters deleted
        st.sampled_from(["", "", "\n", "\n\n", " ", "a", "/", "\r\n"]) | fragment_texts,
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=600, deadline=None)
@given(
    name=st.sampled_from(ENCODINGS),
    text=fragment_texts,
    ops=edit_ops,
    chunk_chars=st.sampled_from([1, 2, 3, 5, 8, 32]),
    block_chunks=st.sampled_from([2, 3, 4, 64]),
)
def test_random_edits_stay_exact(name: str, text: str, ops: list[tuple[float, int, str]], chunk_chars: int,
                                 block_chunks: int) -> None:
    enc = tokenizer.get_encoding(name)
    meter = TokenMeter(enc, text, chunk_chars=chunk_chars, block_chunks=block_chunks)
    assert meter.count == full(enc, text)
    for where, deleted, replacement in ops:
        start = round(where * len(text))
        end = min(len(text), start + deleted)
        text = apply(text, start, end, replacement)
        assert meter.edit(start, end, replacement) == full(enc, text)
        assert meter.text == text
        assert meter.count == full(enc, text)
        assert len(meter) == len(text)


_WORDS = ("the model prompt token latency stream provider request response context window cache retry "
          "limit cost input output we you it is are not and or if then because however naïve café Zürich")


def realistic_text(rng: random.Random, chars: int) -> str:
    words = _WORDS.split()
    blocks: list[str] = []
    size = 0
    while size < chars:
        kind = rng.random()
        if kind < 0.15:
            lines = ["```python", "def f(items: list[int]) -> int:"]
            lines += [f"    total = sum(x * {rng.randint(1, 9)} for x in items)  # {rng.choice(words)}"] * 2
            lines += ["    if total > 10:\n        return total // 2", "    return total", "```"]
            block = "\n".join(lines)
        elif kind < 0.3:
            block = "\n".join(f"- {' '.join(rng.choices(words, k=rng.randint(3, 9)))}" for _ in range(4))
        else:
            block = " ".join(
                " ".join(rng.choices(words, k=rng.randint(5, 15))).capitalize() + rng.choice(".?!:")
                for _ in range(rng.randint(2, 5))
            )
        blocks.append(block)
        size += len(block) + 2
    return "\n\n".join(blocks) + "\n"


@pytest.mark.parametrize("name", ENCODINGS)
def test_keystrokes_in_a_realistic_text(name: str) -> None:
    """~30 kB of prose, lists and code, default chunking, 300 keystrokes and a few pastes and cuts."""
    enc = tokenizer.get_encoding(name)
    rng = random.Random(name)
    text = realistic_text(rng, 30_000)
    meter = TokenMeter(enc, text)
    assert meter.count == full(enc, text)
    assert meter.chunk_count > 50
    for i in range(300):
        pos = rng.randint(0, len(text))
        if i % 50 == 49:  # paste a block / cut a range
            start, end, rep = pos, min(len(text), pos + rng.randint(0, 3000)), realistic_text(rng, 800)
        elif rng.random() < 0.1 and pos > 0:
            start, end, rep = pos - 1, pos, ""
        else:
            start, end, rep = pos, pos, rng.choice("abcxyz  ,./'\n") if rng.random() < 0.9 else "\n\n"
        text = apply(text, start, end, rep)
        assert meter.edit(start, end, rep) == full(enc, text)
    assert meter.text == text


def test_edge_cases(enc: tiktoken.Encoding) -> None:
    meter = TokenMeter(enc)
    assert (meter.count, meter.text, len(meter), meter.chunk_count) == (0, "", 0, 0)
    assert meter.edit(0, 0, "") == 0
    assert meter.insert(0, "hello world\n\nsecond paragraph") == full(enc, "hello world\n\nsecond paragraph")
    assert meter.delete(0, len(meter)) == 0
    assert meter.text == "" and meter.chunk_count == 0
    assert meter.insert(0, "x") == 1
    with pytest.raises(ValueError):
        meter.edit(0, 2, "")
    with pytest.raises(ValueError):
        meter.edit(1, 0, "")
    with pytest.raises(ValueError):
        meter.edit(-1, 0, "")
    with pytest.raises(ValueError):
        TokenMeter(enc, chunk_chars=0)
    big = "word " * 5000 + "\n\n" + "line\n" * 2000
    assert meter.set_text(big) == full(enc, big)
    assert meter.text == big


@pytest.mark.parametrize("name", ENCODINGS)
def test_surrogates_are_counted_as_encode_ordinary_counts_them(name: str) -> None:
    """encode_ordinary repairs lone surrogates (and joins split pairs); cuts never split a pair."""
    enc = tokenizer.get_encoding(name)
    text = "a \ud83d\n\ude00 b\n\n\ud800 x"
    meter = TokenMeter(enc, text, chunk_chars=1)
    assert meter.count == full(enc, text)
    for start, end, rep in [(2, 2, "\ud83d"), (3, 3, "\ude00"), (0, 0, "\ude00\n"), (5, 6, ""), (1, 1, "\ud83d")]:
        text = apply(text, start, end, rep)
        assert meter.edit(start, end, rep) == full(enc, text)


# -- no network --------------------------------------------------------------------------------------------


def test_counting_never_touches_the_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setenv("DATA_GYM_CACHE_DIR", str(cache))

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with pytest.raises(OSError, match="network access attempted"):
        socket.create_connection(("example.com", 443))

    load = tokenizer._load.__wrapped__  # build fresh encodings, bypassing the process-wide cache
    for name in ENCODINGS:
        enc = load(name)
        assert enc is not tokenizer.get_encoding(name)
        meter = TokenMeter(enc, "hello world\n\nsecond paragraph", chunk_chars=1)
        meter.edit(0, 5, "goodbye")
        assert meter.count == len(enc.encode_ordinary("goodbye world\n\nsecond paragraph"))
        assert TokenMeter(enc, "hello world").count == len(KNOWN_IDS[name]["hello world"])
    # (tiktoken may copy the packaged rank files into the cache dir; that is a local read, not a download)


class CountingEncoding:
    """An encoding stand-in that records how many characters each edit made it encode."""

    def __init__(self, enc: tiktoken.Encoding) -> None:
        self.enc = enc
        self.chars = 0

    def encode_ordinary(self, text: str) -> list[int]:
        self.chars += len(text)
        result: list[int] = self.enc.encode_ordinary(text)
        return result


def test_a_keystroke_re_encodes_only_nearby_chunks(enc: tiktoken.Encoding) -> None:
    rng = random.Random(3)
    text = realistic_text(rng, 100_000)
    counting = CountingEncoding(enc)
    meter = TokenMeter(counting, text)  # type: ignore[arg-type]
    assert counting.chars == len(text)
    worst = 0
    for _ in range(300):
        pos = rng.randint(0, len(text))
        rep = rng.choice("ab \n/.")
        counting.chars = 0
        text = apply(text, pos, pos, rep)
        meter.edit(pos, pos, rep)
        worst = max(worst, counting.chars)
    assert meter.count == full(enc, text)
    assert worst <= 4 * 256 + 200  # at most two neighbouring chunks of ~256-512 characters
