"""The shortest prompt prefix a provider caches: Anthropic documents a minimum cacheable length per model (a
breakpoint whose prefix is shorter is neither written nor read, however marked)."""

from __future__ import annotations

import re

ANTHROPIC_MINIMUMS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"claude-(opus-4-[5-9]|haiku-4-[5-9])"), 4096),
    (re.compile(r"claude-sonnet-4-[6-9]"), 2048),
    (re.compile(r"claude-(3-5-haiku|3-haiku|haiku-3)"), 2048),
)
"""Anthropic's table (prompt caching, "cache limitations"): Opus 4.5 and later and Haiku 4.5, 4096 tokens;
Sonnet 4.6, Haiku 3.5 and Haiku 3, 2048; every other model (Sonnet 4.5, Opus 4.1, Opus 4, Sonnet 4, Sonnet 3.7…),
:data:`ANTHROPIC_DEFAULT_MINIMUM`."""
ANTHROPIC_DEFAULT_MINIMUM = 1024


def anthropic_cache_minimum(model: str) -> int:
    """The minimum cacheable prompt length of an Anthropic ``model`` (``claude-opus-4.5`` reads as ``-4-5``)."""
    name = model.rsplit("/", 1)[-1].split("@", 1)[0].lower().replace(".", "-")
    return next((tokens for pattern, tokens in ANTHROPIC_MINIMUMS if pattern.search(name)), ANTHROPIC_DEFAULT_MINIMUM)
