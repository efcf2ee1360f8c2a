"""Prompt-cache breakpoints on the Anthropic wire: ``cache_control: {"type": "ephemeral"}`` (with ``ttl: "1h"``
when asked) on the last tool, on the system prompt (sent as one text block) and on the last block of each
marked turn (a plain text turn becomes one text block). Consecutive tool results travel as one user turn, so a
breakpoint on any of them lands on that turn's last result.

The other wires take no breakpoints: OpenAI, Gemini and the OpenAI-compatible servers cache a repeated prefix
on their own, so :class:`~workbench.core.request.CacheBreakpoints` changes nothing they are sent.
"""

from __future__ import annotations

from typing import Any

from workbench.core.request import ChatRequest
from workbench.core.tool_turns import runs


def _control(request: ChatRequest) -> dict[str, str]:
    return {"type": "ephemeral", "ttl": "1h"} if request.cache.ttl == "1h" else {"type": "ephemeral"}


def _turn_of_message(request: ChatRequest) -> list[int]:
    """For each request message, the index of the Anthropic turn that carries it."""
    out: list[int] = []
    for turn, (_, run) in enumerate(runs(request.messages)):
        out.extend([turn] * len(run))
    return out


def _marked(blocks: Any, control: dict[str, str]) -> list[dict[str, Any]]:
    """The turn's content as blocks, its last one carrying ``control``."""
    if isinstance(blocks, str):
        return [{"type": "text", "text": blocks, "cache_control": control}]
    out = [dict(block) for block in blocks]
    if out:
        out[-1]["cache_control"] = control
    return out


def anthropic_cache_control(body: dict[str, Any], request: ChatRequest) -> None:
    """Put the request's breakpoints into an Anthropic Messages ``body`` (in place)."""
    points = request.cache
    if not points:
        return
    control = _control(request)
    if points.tools and body.get("tools"):
        body["tools"] = [*body["tools"][:-1], {**body["tools"][-1], "cache_control": control}]
    if points.system and body.get("system"):
        body["system"] = _marked(body["system"], control)
    turns = _turn_of_message(request)
    messages = body.get("messages") or []
    for index in sorted({turns[i] for i in points.messages if 0 <= i < len(turns)}):
        if index < len(messages):
            messages[index] = {**messages[index], "content": _marked(messages[index]["content"], control)}
