"""The fake server's OpenAI ``POST /v1/embeddings``: deterministic vectors, close for texts sharing words.

A text's vector is a hashed bag of words: every lower-cased word (``\\w+``) adds +1 or -1 to one of
:data:`DIMENSIONS` components, both chosen by BLAKE2b of the word; the vector is then scaled to length 1
(all zeros for a text without words). So equal texts get equal vectors, texts with many words in common a
cosine similarity near 1, and texts with none near 0. The body is OpenAI's: ``{"object": "list", "data":
[{"object": "embedding", "index": i, "embedding": [...]}], "model": ..., "usage": {"prompt_tokens": n,
"total_tokens": n}}`` with ``n`` the number of words. ``input`` is a string or a list of strings; anything
else is a 400 in OpenAI's error body.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

DIMENSIONS = 256
_WORD = re.compile(r"\w+")


def vector(text: str) -> list[float]:
    """The hashed bag-of-words vector of ``text`` (unit length, or all zeros without words)."""
    values = [0.0] * DIMENSIONS
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        values[int.from_bytes(digest[:4], "big") % DIMENSIONS] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values] if norm else values


def answer(body: bytes) -> tuple[int, dict[str, Any]]:
    """The status and JSON body answering an embeddings request."""
    try:
        data = json.loads(body)
    except ValueError:
        return 400, _error("the body is not JSON")
    inputs = data.get("input") if isinstance(data, dict) else None
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(item, str) for item in inputs):
        return 400, _error("'input' must be a string or a non-empty list of strings")
    words = sum(len(_WORD.findall(text)) for text in inputs)
    return 200, {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": vector(text)} for i, text in enumerate(inputs)],
        "model": str(data.get("model", "")),
        "usage": {"prompt_tokens": words, "total_tokens": words},
    }


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": "input", "code": None}}
