"""Keystroke → exact token count on a big prompt: the incremental TokenMeter vs a full re-encode.

Builds deterministic ~10k- and ~100k-token prompts (prose paragraphs, fenced code blocks, lists,
headings), replays KEYS keystrokes at random positions (mostly single-character inserts, some
backspaces, some Enter keys, a few of them paragraph breaks) and times, per keystroke,
(a) ``TokenMeter.edit`` including its bookkeeping and (b) ``encode_ordinary`` of the whole new text.
Checks that the meter's count equals a full count at the end. Target: p99 ≤ 2 ms at 100k tokens.
Then the same for 20k-character lines without newlines or spaces (CJK prose, compact JSON, and the
worst case: CJK letters without punctuation, which is one pre-tokenizer piece and cannot be cut).

    python -m bench.token_meter [--keys 500] [--seed 7] [--chunk-chars 512] [--encodings o200k_base,cl100k_base]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from workbench.core.tokens.encodings import get_encoding
from workbench.core.tokens.meter import DEFAULT_CHUNK_CHARS, TokenMeter

_WORDS = (
    "the model prompt token latency budget stream evaluation provider request response context window "
    "system user assistant message cache retry limit cost price input output batch queue worker thread "
    "editor cursor keystroke frame render widget pane trace record schema field value error timeout "
    "a an of to in on for with by from as at is are was were be been it this that these those we you "
    "they not only also but and or if then else when while because although however therefore thus "
    "quickly carefully exactly roughly nearly always never often sometimes usually measure compare "
    "configure validate serialize parse encode decode compute estimate report summarize translate "
    "Überprüfung naïve café façade résumé coöperate Zürich São Paulo Kraków"
)
_CODE_NAMES = "client request response tokens count meter chunk offset length result items value"
WORDS = _WORDS.split()
CODE_NAMES = _CODE_NAMES.split()


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 22))]
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words)), f"{rng.randint(2, 9999)}")
    if rng.random() < 0.1:
        words.insert(rng.randrange(len(words)), f"`{rng.choice(CODE_NAMES)}()`")
    s = " ".join(words)
    if rng.random() < 0.3:
        i = rng.randrange(1, len(words))
        s = " ".join(words[:i]) + ", " + " ".join(words[i:])
    return s[0].upper() + s[1:] + rng.choice([".", ".", ".", "?", "!", ":"])


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(2, 7)))


def code_block(rng: random.Random) -> str:
    name, arg = f"{rng.choice(CODE_NAMES)}_{rng.randint(1, 99)}", rng.choice(CODE_NAMES)
    lines = ["```python", f"def {name}(self, {arg}: int) -> int:"]
    for _ in range(rng.randint(3, 12)):
        a, b = rng.choice(CODE_NAMES), rng.choice(CODE_NAMES)
        lines.append(
            rng.choice(
                [
                    f"    {a} = {b} + {rng.randint(0, 100)}",
                    f"    if {a} > {b}:\n        return {a}",
                    f"    for {a} in range(len({b})):\n        {b}[{a}] += 1",
                    f'    print(f"{{{a}}}: {{{b}!r}}")  # {rng.choice(WORDS)}',
                    f"    {a}.append({{'{b}': {rng.random():.3f}}})",
                ]
            )
        )
    lines.append(f"    return {rng.choice(CODE_NAMES)}\n```")
    return "\n".join(lines)


def bullet_list(rng: random.Random) -> str:
    marker = rng.choice(["-", "*", "1."])
    return "\n".join(f"{marker} {sentence(rng)}" for _ in range(rng.randint(2, 6)))


def build_prompt(tokens: int, count: Callable[[str], int], seed: int) -> str:
    """A deterministic Markdown-ish prompt of about ``tokens`` tokens."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < tokens:
        r = rng.random()
        if r < 0.06:
            block = f"## {sentence(rng).rstrip('.?!:')}"
        elif r < 0.2:
            block = code_block(rng)
        elif r < 0.32:
            block = bullet_list(rng)
        else:
            block = paragraph(rng)
        parts.append(block)
        total += count(block) + 1
    return "\n\n".join(parts) + "\n"


Keystroke = tuple[int, int, str]


def keystrokes(text_len: int, keys: int, seed: int) -> list[Keystroke]:
    """(start, end, replacement) edits: ~80% a typed character, ~10% backspace, ~10% Enter."""
    rng = random.Random(seed)
    typed = "abcdefghijklmnopqrstuvwxyz      ,.()'-/eaiou"
    out: list[Keystroke] = []
    n = text_len
    for _ in range(keys):
        pos = rng.randint(0, n)
        r = rng.random()
        if r < 0.8:
            out.append((pos, pos, rng.choice(typed)))
            n += 1
        elif r < 0.9 and pos > 0:
            out.append((pos - 1, pos, ""))
            n -= 1
        else:
            enter = "\n\n" if rng.random() < 0.5 else "\n"  # a paragraph break, or a line break
            out.append((pos, pos, enter))
            n += len(enter)
    return out


def percentiles(ns: list[int]) -> tuple[float, float, float]:
    s = sorted(ns)
    p50 = statistics.median(s)
    p99 = s[min(len(s) - 1, round(0.99 * (len(s) - 1)))]
    return p50 / 1e3, p99 / 1e3, s[-1] / 1e3


@dataclass
class Row:
    encoding: str
    tokens: int
    chars: int
    chunks: int
    load_ms: float
    inc: tuple[float, float, float]  # p50, p99, max in µs
    full: tuple[float, float, float]
    exact: bool


def run(encoding_name: str, tokens: int, keys: int, seed: int, chunk_chars: int) -> Row:
    enc = get_encoding(encoding_name)
    text = build_prompt(tokens, lambda s: len(enc.encode_ordinary(s)), seed)
    full_tokens = len(enc.encode_ordinary(text))
    edits = keystrokes(len(text), keys, seed + 1)

    t0 = time.perf_counter_ns()
    meter = TokenMeter(enc, text, chunk_chars=chunk_chars)
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    assert meter.count == full_tokens

    clock = time.perf_counter_ns
    inc: list[int] = []
    for start, end, rep in edits:
        t = clock()
        meter.edit(start, end, rep)
        inc.append(clock() - t)

    full: list[int] = []
    current = text
    encode = enc.encode_ordinary
    for start, end, rep in edits:
        current = current[:start] + rep + current[end:]
        t = clock()
        n = len(encode(current))
        full.append(clock() - t)

    exact = meter.text == current and meter.count == n == len(enc.encode_ordinary(meter.text))
    return Row(encoding_name, full_tokens, len(text), meter.chunk_count, load_ms, percentiles(inc), percentiles(full),
               exact)


def long_lines(keys: int, seed: int, chunk_chars: int) -> None:
    enc = get_encoding("o200k_base")
    rng = random.Random(seed)
    hanzi = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她"
    sentences = "这是一个很长的段落，没有换行。它用中文标点分句：逗号、句号和问号？"
    lines = {
        "CJK prose with punctuation": (sentences * 700)[:20_000],
        "compact JSON": json.dumps([{"id": i, "name": f"x{i}", "tags": ["a", "b"]} for i in range(600)],
                                   separators=(",", ":"))[:20_000],
        "CJK letters, no punctuation": "".join(rng.choice(hanzi) for _ in range(20_000)),
    }
    print(f"\n20,000-character lines without newlines or spaces, o200k_base, {keys} single-character inserts (µs)")
    print(f"{'line':<30} {'chunks':>6} | {'meter p50':>9} {'p99':>6} | {'full p50':>8} | exact")
    for label, line in lines.items():
        text = f"Intro paragraph.\n\n{line}\n\nEnd.\n"
        meter = TokenMeter(enc, text, chunk_chars=chunk_chars)
        inc: list[int] = []
        full: list[int] = []
        for _ in range(keys):
            pos = rng.randint(18, 18 + len(line))
            t = time.perf_counter_ns()
            meter.edit(pos, pos, "x")
            inc.append(time.perf_counter_ns() - t)
            if len(full) < 50:
                t = time.perf_counter_ns()
                enc.encode_ordinary(meter.text)
                full.append(time.perf_counter_ns() - t)
        ip50, ip99, _ = percentiles(inc)
        fp50 = percentiles(full)[0]
        exact = meter.count == len(enc.encode_ordinary(meter.text))
        print(f"{label:<30} {meter.chunk_count:>6} | {ip50:>9.0f} {ip99:>6.0f} | {fp50:>8.0f} | {exact}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk-chars", type=int, default=DEFAULT_CHUNK_CHARS)
    parser.add_argument("--encodings", default="o200k_base,cl100k_base")
    args = parser.parse_args()

    rows = [
        run(name, size, args.keys, args.seed, args.chunk_chars)
        for name in args.encodings.split(",")
        for size in (10_000, 100_000)
    ]
    print(f"{args.keys} keystrokes per row, chunk_chars={args.chunk_chars}; times in µs per keystroke")
    head = (
        f"{'encoding':<12} {'tokens':>7} {'chunks':>6} {'load ms':>8} | {'meter p50':>9} {'p99':>6} {'max':>6} "
        f"| {'full p50':>8} {'p99':>6} {'max':>6} | {'p50 ratio':>9} | exact"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        ip50, ip99, imax = r.inc
        fp50, fp99, fmax = r.full
        print(
            f"{r.encoding:<12} {r.tokens:>7,} {r.chunks:>6} {r.load_ms:>8.1f} | {ip50:>9.0f} {ip99:>6.0f} "
            f"{imax:>6.0f} | {fp50:>8.0f} {fp99:>6.0f} {fmax:>6.0f} | {fp50 / ip50:>8.0f}x | {r.exact}"
        )
    big = [r for r in rows if r.tokens >= 90_000]
    met = bool(big) and all(r.inc[1] <= 2000 for r in big) and all(r.exact for r in rows)
    print(f"target p99 ≤ 2 ms at 100k tokens (and exact): {'met' if met else 'NOT met'}")
    long_lines(200, args.seed, args.chunk_chars)


if __name__ == "__main__":
    main()
