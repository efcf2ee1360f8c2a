"""Offline token counting with tiktoken, from the encodings shipped in ``workbench/core/data``.

Nothing here touches the network: the BPE rank files are package data, checked against their
published sha256. Loading an encoding takes ~150 ms of CPU, so it happens on first use, once per
process, and callers on a latency-sensitive loop run it in a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from workbench.core.request import ChatRequest

if TYPE_CHECKING:
    import tiktoken

_ENDOFTEXT = "<|endoftext|>"
_ENDOFPROMPT = "<|endofprompt|>"

_SPECS: dict[str, tuple[str, str, dict[str, int]]] = {
    "o200k_base": (
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
    "cl100k_base": (
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        {_ENDOFTEXT: 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
         "<|fim_suffix|>": 100260, _ENDOFPROMPT: 100276},
    ),
}

_CL100K_MODEL_PREFIXES = ("gpt-4-", "gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada")
_O200K_MODEL_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-", "gpt-oss")

_load_lock = threading.Lock()


@cache
def _load(name: str) -> tiktoken.Encoding:
    import tiktoken  # with its encoding, on first use: a process that never counts never loads it
    from tiktoken.load import load_tiktoken_bpe

    sha256, pattern, special = _SPECS[name]
    path = resources.files("workbench.core.data").joinpath(f"{name}.tiktoken")
    with resources.as_file(path) as local:
        ranks = load_tiktoken_bpe(str(local), expected_hash=sha256)
    return tiktoken.Encoding(name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special)


def get_encoding(name: str) -> tiktoken.Encoding:
    with _load_lock:  # two threads asking at once load it once
        return _load(name)


def encoding_name_for(provider: str, model: str) -> tuple[str, bool]:
    """The encoding to count ``model`` with, and whether the count is exact for it.

    OpenAI models map to their real encoding (exact); every other model is counted with o200k_base
    as an approximation.
    """
    base = model.split("@", 1)[0].lower()
    if provider in ("openai", "azure"):
        if base.startswith(_O200K_MODEL_PREFIXES):
            return "o200k_base", True
        if base.startswith(_CL100K_MODEL_PREFIXES):
            return "cl100k_base", True
    return "o200k_base", False


def count_text(text: str, encoding: str = "o200k_base") -> int:
    return len(get_encoding(encoding).encode_ordinary(text))


_TOKENS_PER_MESSAGE = 3
_REPLY_PRIMING = 3


def count_chat(request: ChatRequest, encoding: str = "o200k_base") -> int:
    """Input tokens of a chat request, with OpenAI's per-message overhead (3 per message, 3 to prime the reply)."""
    enc = get_encoding(encoding)
    texts = ([request.system] if request.system else []) + [m.content for m in request.messages]
    return chat_tokens(len(enc.encode_ordinary(t)) for t in texts)


def chat_tokens(message_tokens: Iterable[int]) -> int:
    """Chat input tokens from each message's own count (the system prompt is a message when present)."""
    return sum(_TOKENS_PER_MESSAGE + n for n in message_tokens) + _REPLY_PRIMING
