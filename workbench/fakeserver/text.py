"""Deterministic reply tokens and the input-token approximation of the fake server.

Reply text
    The reply is a sequence of tokens. Each token is one word of :data:`VOCAB` (64 words, a few of
    them multi-byte UTF-8 so clients exercise split code points); every token but the first has a
    leading space, so ``"".join(tokens)`` is the reply text.

    What determines it: the model NAME (the model string with any ``@scenario`` suffix removed, so
    ``gpt-4o@ttft=50`` and ``gpt-4o`` answer the same), the text of the LAST user message (see
    below), the kind (``"text"`` or ``"reasoning"``) and the number of tokens. Token ``i`` is
    ``VOCAB[b[i] % 64]`` where ``b`` is the concatenation of
    ``BLAKE2b-512(NAME + "\\0" + last_user_text + "\\0" + kind + "\\0" + str(block))`` for
    ``block = 0, 1, 2, ...``. A longer reply therefore starts with the shorter one.

    "Last user message text" per wire: the last ``messages[]`` entry with role ``user``
    (OpenAI Chat, Anthropic, Ollama), the last ``input`` item with role ``user`` or the ``input``
    string itself (Responses), the last ``contents[]`` entry whose role is ``user`` or absent (Gemini).
    Content given as a list of parts is the text parts joined with a single space. No user
    message gives ``""``.

Input tokens
    ``count_input_tokens(texts)`` = sum over every text of (number of whitespace-separated words + 3),
    where ``texts`` are the system prompt / instructions (if any, one text) followed by every
    message's text in order (all roles). Every wire reports this same number, and the counting
    endpoints (Anthropic ``count_tokens``, Gemini ``countTokens``, vLLM ``/tokenize`` with
    ``messages``) return it for the same content.

Raw-text tokenization (``/tokenize``)
    ``tokenize_text(text)`` splits a text into one token per whitespace-separated word, each piece
    carrying the whitespace before it (``re.findall(r"\\s*\\S+", text)``, BPE-style), so
    ``len(tokenize_text(t)) == len(t.split())`` and the pieces join to ``t.rstrip()``. A piece's id
    is ``FIRST_WORD_ID + int.from_bytes(BLAKE2b-64(piece as UTF-8)) % (TOKENIZER_VOCAB_SIZE -
    FIRST_WORD_ID)``; ids below ``FIRST_WORD_ID`` are the specials of :data:`SPECIAL_TOKENS`
    (``<s>`` = BOS). ``tokenize_chat(messages)`` renders ChatML-style: per ``(role, text)``
    ``<|im_start|>``, ``"{role}\\n"``, the text's word tokens, ``<|im_end|>`` — exactly
    :data:`MESSAGE_OVERHEAD` + words tokens per message, i.e. ``count_input_tokens`` of the texts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator

from workbench.fakeserver.scenario import split_model

__all__ = [
    "BOS_ID",
    "FIRST_WORD_ID",
    "MESSAGE_OVERHEAD",
    "SPECIAL_TOKENS",
    "TOKENIZER_VOCAB_SIZE",
    "VOCAB",
    "count_input_tokens",
    "expected_reasoning",
    "expected_text",
    "iter_tokens",
    "token_id",
    "tokenize_chat",
    "tokenize_text",
]

VOCAB: tuple[str, ...] = (
    "the", "model", "stream", "token", "latency", "fast", "quiet", "river",
    "signal", "window", "bright", "cache", "vector", "garden", "orbit", "paper",
    "simple", "careful", "north", "engine", "yellow", "answer", "batch", "cloud",
    "delta", "echo", "forest", "gentle", "harbor", "island", "jungle", "kernel",
    "lemon", "marble", "number", "ocean", "planet", "quartz", "rocket", "silver",
    "timber", "under", "velvet", "winter", "xenon", "yonder", "zephyr", "and",
    "of", "to", "in", "is", "with", "for", "café", "naïve",
    "известни", "日本語", "über", "señal", "that", "it", "on", "as",
)  # fmt: skip
assert len(VOCAB) == 64

MESSAGE_OVERHEAD = 3
_BLOCK = 64  # bytes per BLAKE2b-512 digest


def _base_name(model: str) -> str:
    return split_model(model)[0]


def iter_tokens(model: str, prompt: str, count: int, kind: str = "text") -> Iterator[str]:
    """Yield ``count`` reply tokens (lazily, so huge replies cost no memory up front)."""
    prefix = f"{_base_name(model)}\0{prompt}\0{kind}\0".encode()
    spaced = tuple(" " + w for w in VOCAB)
    emitted = 0
    block = 0
    while emitted < count:
        digest = hashlib.blake2b(prefix + str(block).encode(), digest_size=_BLOCK).digest()
        block += 1
        take = min(_BLOCK, count - emitted)
        for b in digest[:take]:
            yield VOCAB[b & 63] if emitted == 0 else spaced[b & 63]
            emitted += 1


def expected_text(model: str, prompt: str, tokens: int = 32) -> str:
    """The visible reply for ``model`` (scenario suffix ignored) to the last user message ``prompt``.

    ``tokens`` is the number of text tokens actually produced: the scenario's ``tokens`` (default 32)
    or fewer when the request's max-tokens cap cut it (cap minus the reasoning tokens).
    """
    return "".join(iter_tokens(model, prompt, tokens, "text"))


def expected_reasoning(model: str, prompt: str, tokens: int) -> str:
    """The reasoning/thinking text streamed before the reply when the scenario has ``reasoning=N``."""
    return "".join(iter_tokens(model, prompt, tokens, "reasoning"))


def count_input_tokens(texts: Iterable[str]) -> int:
    """Deterministic input-token approximation: words + :data:`MESSAGE_OVERHEAD` per text."""
    return sum(len(t.split()) + MESSAGE_OVERHEAD for t in texts)


# ------------------------------------------------------------------------------------ tokenization
SPECIAL_TOKENS: tuple[str, ...] = ("<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>")
BOS_ID = 1
_IM_START, _IM_END = 3, 4
FIRST_WORD_ID = 16  # ids below are reserved for special tokens
TOKENIZER_VOCAB_SIZE = 32_000
_PIECE_RE = re.compile(r"\s*\S+")  # \s is str.isspace(), so one piece per str.split() word


def token_id(piece: str) -> int:
    """The stable id of a (non-special) piece."""
    digest = hashlib.blake2b(piece.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return FIRST_WORD_ID + int.from_bytes(digest, "big") % (TOKENIZER_VOCAB_SIZE - FIRST_WORD_ID)


def tokenize_text(text: str) -> list[tuple[int, str]]:
    """``(id, piece)`` per whitespace-separated word of ``text`` (raw text: no specials, no overhead)."""
    return [(token_id(piece), piece) for piece in _PIECE_RE.findall(text)]


def tokenize_chat(messages: Iterable[tuple[str, str]]) -> list[tuple[int, str]]:
    """``(id, piece)`` of ``(role, text)`` messages rendered ChatML-style (:data:`MESSAGE_OVERHEAD` per message)."""
    out: list[tuple[int, str]] = []
    for role, text in messages:
        out.append((_IM_START, SPECIAL_TOKENS[_IM_START]))
        out.append((token_id(role + "\n"), role + "\n"))
        out.extend(tokenize_text(text))
        out.append((_IM_END, SPECIAL_TOKENS[_IM_END]))
    return out
