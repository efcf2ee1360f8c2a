"""Anthropic content blocks that are neither text, thinking nor a tool call of the user's, read as
:class:`~workbench.core.events.BlockDelta` pieces so they are shown, never silently skipped: ``server_tool_use``
(and ``mcp_tool_use``: a tool the provider runs; its input streams as ``input_json_delta``), every
``*_tool_result`` (``web_search_tool_result``, ``web_fetch_tool_result``, ``code_execution_tool_result``…: whole in
``content_block_start``), ``fallback`` (the provider answered with another model: ``from``, ``to``, ``trigger``),
``compaction`` (its summary streams as ``compaction_delta``), ``redacted_thinking`` (encrypted: shown as such),
and any block type this version does not know (its fields as JSON). Encrypted payloads (``encrypted_content``,
``data``, signatures) are never kept: they are opaque and large. Also the readable form of a refusal's
``stop_details`` (category and explanation)."""

from __future__ import annotations

from typing import Any

from workbench.core.providers.tools import compact_json

KNOWN = frozenset({"text", "thinking", "tool_use"})
"""Blocks read elsewhere: text, reasoning, the user's tool calls."""
_OPAQUE = frozenset({"type", "data", "signature", "encrypted_content", "encrypted_index", "citations"})


def _readable(value: Any) -> Any:
    """``value`` without its opaque (encrypted) fields, at any depth."""
    if isinstance(value, dict):
        return {k: _readable(v) for k, v in value.items() if k not in _OPAQUE}
    if isinstance(value, list):
        return [_readable(item) for item in value]
    return value


def _model(side: Any) -> str:
    return str(side.get("model") or "?") if isinstance(side, dict) else "?"


def block_start(block: dict[str, Any]) -> tuple[str, str | None, str | None, str]:
    """(type, id, name, first content) of a ``content_block_start``'s block that :data:`KNOWN` does not cover."""
    kind = str(block.get("type") or "unknown")
    if kind in ("server_tool_use", "mcp_tool_use"):
        tool_input = block.get("input")
        return kind, block.get("id"), block.get("name"), compact_json(tool_input) if tool_input else ""
    if kind.endswith("_tool_result"):
        return kind, block.get("tool_use_id"), None, compact_json(_readable(block.get("content")))
    if kind == "fallback":
        trigger = block.get("trigger") or {}
        why = trigger.get("type") if isinstance(trigger, dict) else None
        return kind, None, None, f"{_model(block.get('from'))} → {_model(block.get('to'))}" + (f" ({why})" if why
                                                                                                    else "")
    if kind == "compaction":
        return kind, None, None, str(block.get("content") or "")
    if kind == "redacted_thinking":
        return kind, None, None, "(encrypted)"
    rest = _readable(block)
    return kind, None, None, compact_json(rest) if rest else ""


def delta_text(delta: dict[str, Any]) -> str:
    """The readable piece a ``content_block_delta`` adds to such a block (a server tool's input JSON, a
    compaction's summary); ``""`` for anything else (a signature, encrypted content)."""
    kind = delta.get("type")
    if kind == "input_json_delta":
        return str(delta.get("partial_json") or "")
    if kind == "compaction_delta":
        return str(delta.get("content") or "")
    return ""


def refusal_details(stop_details: Any) -> tuple[str, str | None]:
    """(explanation, category) of a refusal's ``stop_details`` (``""``/``None`` where the provider gave none)."""
    if not isinstance(stop_details, dict):
        return "", None
    category = stop_details.get("category")
    return str(stop_details.get("explanation") or ""), None if category is None else str(category)
