"""Offline token counting with tiktoken, from the encodings shipped in ``workbench/core/data``.

Nothing here touches the network: the BPE rank files are package data. The pre-tokenizer pattern,
the special tokens and the rank file's sha256 come from tiktoken itself: the constructors of
``tiktoken_ext.openai_public`` (the plugin interface tiktoken's registry uses, documented in its README),
which read the ranks through tiktoken's cache from the shipped copy. Loading an encoding takes ~150 ms
of CPU, so it happens on first use, once per process, and callers on a latency-sensitive loop run it in
a worker thread.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.request import ChatRequest
from workbench.core.tool_turns import turn_text

if TYPE_CHECKING:
    import tiktoken

_CL100K_MODEL_PREFIXES = ("gpt-4-", "gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada")
_O200K_MODEL_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-", "gpt-oss")

_load_lock = threading.Lock()


ENCODINGS = ("o200k_base", "cl100k_base")
"""The encodings shipped in ``workbench/core/data``."""

_SOURCE = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"


def tiktoken_cache_name(name: str) -> str:
    """The file name tiktoken's rank cache (``TIKTOKEN_CACHE_DIR``) gives encoding ``name``'s rank file.

    The one tiktoken detail we depend on that is not a public name: the URL its constructor loads the
    ranks from, and that the cache names a file by the sha1 of that URL (tiktoken 0.7 … 0.14).
    ``tests/test_token_count.py`` loads every encoding with the network refused, so the day tiktoken
    changes either, it fails there rather than fetching at run time."""
    return hashlib.sha1(_SOURCE.format(name=name).encode()).hexdigest()


@cache
def _load(name: str) -> tiktoken.Encoding:
    """Encoding ``name`` built by tiktoken's own constructor (its pattern, special tokens and the rank
    file's sha256 are tiktoken's), its ranks read from the copy shipped here through tiktoken's cache."""
    import tiktoken  # with its encoding, on first use: a process that never counts never loads it
    from tiktoken_ext.openai_public import ENCODING_CONSTRUCTORS  # type: ignore[import-untyped]  # no py.typed

    if name not in ENCODINGS:
        raise ValueError(f"unknown encoding {name!r}: the shipped ones are {', '.join(ENCODINGS)}")
    shipped = resources.files("workbench.core.data").joinpath(f"{name}.tiktoken")
    with resources.as_file(shipped) as local, tempfile.TemporaryDirectory(prefix="workbench-tiktoken-") as cache_dir:
        cached = Path(cache_dir, tiktoken_cache_name(name))
        try:
            cached.symlink_to(local)
        except OSError:  # no symlinks (Windows without the privilege): a copy
            shutil.copyfile(local, cached)
        before = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = cache_dir  # read when the constructor loads the ranks (under _load_lock)
        try:
            spec: dict[str, Any] = ENCODING_CONSTRUCTORS[name]()
        finally:
            if before is None:
                del os.environ["TIKTOKEN_CACHE_DIR"]
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = before
        fetched = sorted(p.name for p in Path(cache_dir).iterdir() if p.name != cached.name)
    if fetched:
        raise RuntimeError(f"tiktoken fetched {name} instead of reading the shipped copy: "
                           "update workbench.core.tokens.encodings.tiktoken_cache_name")
    return tiktoken.Encoding(**spec)


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
    texts = ([request.system] if request.system else []) + [turn_text(m) for m in request.messages]
    return chat_tokens(len(enc.encode_ordinary(t)) for t in texts)


def chat_tokens(message_tokens: Iterable[int]) -> int:
    """Chat input tokens from each message's own count (the system prompt is a message when present)."""
    return sum(_TOKENS_PER_MESSAGE + n for n in message_tokens) + _REPLY_PRIMING
