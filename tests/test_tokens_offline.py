"""The encodings are tiktoken's own (pattern, special tokens, rank file hash), read offline from the shipped
rank files. These fail the day tiktoken moves its rank files or renames its cache entries."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import tiktoken.load

from workbench.core.tokens import encodings


@pytest.mark.parametrize("name", encodings.ENCODINGS)
def test_tiktoken_asks_its_cache_for_the_name_we_give_the_shipped_file(name: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """With an empty cache, tiktoken's constructor asks for a URL: its sha1 must be our cache name."""
    from tiktoken_ext.openai_public import ENCODING_CONSTRUCTORS  # type: ignore[import-untyped]  # no py.typed

    asked: list[str] = []

    def offline(blobpath: str) -> bytes:
        asked.append(blobpath)
        raise OSError("network refused")

    monkeypatch.setattr(tiktoken.load, "read_file", offline)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    with pytest.raises(OSError, match="network refused"):
        ENCODING_CONSTRUCTORS[name]()
    assert [hashlib.sha1(url.encode()).hexdigest() for url in asked] == [encodings.tiktoken_cache_name(name)]


@pytest.mark.parametrize("name", encodings.ENCODINGS)
def test_every_encoding_loads_from_the_shipped_file_with_the_network_refused(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(blobpath: str) -> bytes:
        raise OSError(f"tiktoken tried to fetch {blobpath}")

    monkeypatch.setattr(tiktoken.load, "read_file", offline)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "/nonexistent/user-cache")
    enc = encodings._load.__wrapped__(name)  # a fresh load, not the process-wide one
    assert os.environ["TIKTOKEN_CACHE_DIR"] == "/nonexistent/user-cache"  # the user's setting is back
    assert enc.name == name and enc.encode("<|endoftext|>", allowed_special="all") == [enc.eot_token]
    assert enc.encode_ordinary("hello world") == {"o200k_base": [24912, 2375], "cl100k_base": [15339, 1917]}[name]


def test_no_pattern_or_special_token_is_copied_here() -> None:
    source = Path(encodings.__file__).read_text(encoding="utf-8")
    assert r"\p{L}" not in source and "<|endoftext|>" not in source
    with pytest.raises(ValueError, match="unknown encoding"):
        encodings._load.__wrapped__("p50k_base")
