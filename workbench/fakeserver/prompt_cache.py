"""The fake server's prompt cache (scenario ``cache=1``): which prefixes of a prompt it saw before.

A prompt is its texts (system first, then every message, :attr:`~workbench.fakeserver.wire.base.Prompt.texts`),
after its tools' definitions, which every cached prefix holds.
Its cacheable prefixes end at text boundaries: on Anthropic the ``cache_control`` breakpoints of the request
(:func:`anthropic_marks`), elsewhere every boundary before the last message (the provider caches on its own).
The longest prefix seen before is read; on Anthropic what lies between it and the last breakpoint is written.
Prefixes are kept as hashes, per wire and model name, at most :data:`MAX_PREFIXES` of them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from workbench.fakeserver.text import count_input_tokens
from workbench.fakeserver.tool_calls import definition_tokens
from workbench.fakeserver.wire.base import Generation, content_text

__all__ = ["MAX_PREFIXES", "PromptCache", "anthropic_marks", "breakpoints_of"]

MAX_PREFIXES = 100_000
"""Beyond this many remembered prefixes the cache starts over (a long-running server stays bounded)."""


def _marked(block: Any) -> str | None:
    """The TTL of a block's ``cache_control`` (``5m`` when it gives none), ``None`` without one."""
    if not isinstance(block, Mapping):
        return None
    control = block.get("cache_control")
    if not isinstance(control, Mapping) or control.get("type") != "ephemeral":
        return None
    return "1h" if control.get("ttl") == "1h" else "5m"


def _blocks(content: Any) -> list[Any]:
    return content if isinstance(content, list) else []


def breakpoints_of(wire: str, body: Mapping[str, Any]) -> tuple[tuple[int, ...], str] | None:
    """Where ``wire`` caches the prompt of ``body``: its breakpoints on Anthropic (none: nothing is cached),
    ``None`` for the wires that cache by themselves."""
    return anthropic_marks(body) if wire == "anthropic" else None


def anthropic_marks(body: Mapping[str, Any]) -> tuple[tuple[int, ...], str]:
    """The breakpoints of an Anthropic Messages body as prefix lengths (in texts: a mark on the system prompt
    is 1, on message ``i`` the system's texts + ``i + 1``; one on a tool, which comes first, is 0) and the
    longest TTL among them (none: no marks)."""
    system = body.get("system")
    has_system = bool(content_text(system)) if isinstance(system, str | list) else False
    offset = 1 if has_system else 0
    marks: list[int] = []
    ttls: list[str] = []
    for tool in body.get("tools") or ():
        ttl = _marked(tool)
        if ttl:
            marks.append(0)
            ttls.append(ttl)
    for block in _blocks(system):
        ttl = _marked(block)
        if ttl:
            marks.append(offset)
            ttls.append(ttl)
    messages = body.get("messages")
    for i, message in enumerate(messages if isinstance(messages, list) else ()):
        content = message.get("content") if isinstance(message, Mapping) else None
        for block in _blocks(content):
            ttl = _marked(block)
            if ttl:
                marks.append(offset + i + 1)
                ttls.append(ttl)
    return tuple(sorted(set(marks))), "1h" if "1h" in ttls else "5m"


class PromptCache:
    """The prefixes one server saw, as hashes keyed by wire and model name."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def clear(self) -> None:
        self._seen.clear()

    def apply(self, wire: str, gen: Generation, breakpoints: tuple[tuple[int, ...], str] | None) -> None:
        """Fill ``gen``'s cache reads and writes and shorten its TTFT; remember its prefixes.

        ``breakpoints``: the request's (:func:`anthropic_marks`), ``None`` for a provider that caches by itself."""
        texts = gen.prompt.texts
        marks = None if breakpoints is None else breakpoints[0]
        if breakpoints is not None:
            gen.cache_ttl = breakpoints[1]
        ends = range(1, len(texts)) if marks is None else [m for m in marks if 0 < m <= len(texts)]
        digest = hashlib.sha256(f"{wire}\0{gen.scenario.name}".encode())
        tools = definition_tokens(gen.prompt.tools)  # sent first: in every prefix
        for tool in gen.prompt.tools:
            digest.update(json.dumps([tool.name, tool.description, tool.schema]).encode())
        keys: dict[int, bytes] = {}
        done = 0
        for end in ends:
            for text in texts[done:end]:
                digest.update(text.encode())
                digest.update(b"\0\1")
            keys[end] = digest.digest()
            done = end
        read_end = max((end for end, key in keys.items() if key in self._seen), default=0)
        gen.cache_read = count_input_tokens(texts[:read_end]) + (tools if read_end else 0)
        last = max(keys, default=0)
        written = count_input_tokens(texts[read_end:last]) + (tools if last and not read_end else 0)
        gen.cache_write = written if marks is not None else 0
        if len(self._seen) + len(keys) > MAX_PREFIXES:
            self._seen.clear()
        self._seen.update(keys.values())
        if gen.cache_read and gen.input_tokens:
            share = min(gen.cache_read / gen.input_tokens, 1.0)
            gen.scenario = dataclasses.replace(gen.scenario, ttft_ms=gen.scenario.ttft_ms * (1 - share / 2))
