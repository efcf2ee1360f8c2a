"""Embeddings for the ``similar`` and ``answer-relevance`` assertions: OpenAI's ``POST {base}/embeddings`` on
any OpenAI-compatible target (the endpoint, key and base URL resolved as for a chat call), and cosine
similarity.

promptfoo's default embedding model is OpenAI's ``text-embedding-3-large``: :data:`DEFAULT_EMBEDDING_TARGET`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import httpx2

from workbench.core.errors import ConfigError, one_line, scrub_key
from workbench.core.providers.base import with_headers
from workbench.core.registry import ProviderSpec, resolve
from workbench.core.request import ModelRef

DEFAULT_EMBEDDING_TARGET = "openai/text-embedding-3-large"
_TIMEOUT_S = 60.0


class EmbeddingError(Exception):
    """An embeddings call that failed; the message is one line, without the key."""


async def embed(target: str, texts: Sequence[str], *, env: Mapping[str, str] | None = None,
                providers: Mapping[str, ProviderSpec] | None = None) -> list[list[float]]:
    """One vector per text from ``target``'s embeddings endpoint; :class:`EmbeddingError` when it fails."""
    try:
        endpoint = resolve(ModelRef.parse(target), env, providers)
    except ConfigError as exc:
        raise EmbeddingError(f"{exc.message} ({exc.hint})" if exc.hint else exc.message) from None
    if endpoint.wire != "openai_chat":
        raise EmbeddingError(f"{target}: embeddings need an OpenAI-compatible provider, not the {endpoint.wire} wire")
    headers = with_headers({"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {},
                           endpoint.headers)
    body = {"model": endpoint.model, "input": list(texts)}
    try:
        async with httpx2.AsyncClient(timeout=_TIMEOUT_S) as client:
            response = await client.post(f"{endpoint.base_url.rstrip('/')}/embeddings", json=body, headers=headers)
    except httpx2.HTTPError as exc:
        raise EmbeddingError(_clean(f"{target}: {type(exc).__name__}: {exc}", endpoint.api_key)) from None
    if response.status_code != 200:
        raise EmbeddingError(_clean(f"{target}: HTTP {response.status_code}: {response.text}", endpoint.api_key))
    return _vectors(target, response, len(texts))


def _vectors(target: str, response: httpx2.Response, count: int) -> list[list[float]]:
    try:
        data: Any = response.json()
        rows = sorted(data["data"], key=lambda row: row["index"])
        vectors = [[float(x) for x in row["embedding"]] for row in rows]
    except (ValueError, KeyError, TypeError) as exc:
        raise EmbeddingError(f"{target}: not an embeddings answer ({type(exc).__name__}: {exc})") from None
    if len(vectors) != count:
        raise EmbeddingError(f"{target}: {len(vectors)} embeddings for {count} texts")
    return vectors


def _clean(text: str, key: str | None) -> str:
    return one_line(scrub_key(text, key))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity (0.0 when either vector is all zeros, as no direction is similar to anything)."""
    if len(a) != len(b):
        raise ValueError(f"vectors of different lengths ({len(a)} and {len(b)})")
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0
