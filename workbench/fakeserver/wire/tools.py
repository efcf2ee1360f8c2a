"""Tool calls on the fake server's wires: the tools a request offers, read from each wire's own request
fields, and a call's arguments split into pieces (:data:`FRAGMENTS`, or the scenario's ``tool_deltas``) where
the wire streams them in pieces (the calls themselves: :mod:`workbench.fakeserver.tool_calls`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.fakeserver.tool_calls import ToolSpec
from workbench.fakeserver.wire.base import WireError

__all__ = ["FRAGMENTS", "fragments", "tools_of"]

FRAGMENTS = 3
"""How many argument deltas a call's arguments are split into by default (fewer when the text is shorter)."""


def fragments(text: str, pieces: int = FRAGMENTS) -> list[str]:
    """``text`` in up to ``pieces`` consecutive pieces, none empty."""
    size = max(1, -(-len(text) // pieces))
    return [text[at:at + size] for at in range(0, len(text), size)] or [""]


def _spec(name: Any, schema: Any, where: str, description: Any = None) -> ToolSpec:
    if not isinstance(name, str) or not name:
        raise WireError(f"Missing required parameter: '{where}.name'.", f"{where}.name")
    if schema is not None and not isinstance(schema, Mapping):
        raise WireError(f"Invalid type for '{where}': expected an object.", where)
    return ToolSpec(name, schema, description if isinstance(description, str) else "")


def tools_of(wire: str, body: Mapping[str, Any]) -> list[ToolSpec]:
    """The tools a request offers, in ``wire``'s own shape (a malformed list is a :class:`WireError`); a count
    endpoint (``anthropic_count``, ``gemini_count``) reads its wire's."""
    wire = wire.removesuffix("_count")
    raw = body.get("tools")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise WireError("Invalid type for 'tools': expected an array.", "tools")
    out: list[ToolSpec] = []
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(tool, Mapping):
            raise WireError(f"Invalid type for '{where}': expected an object.", where)
        if wire in ("openai_chat", "ollama"):
            function = tool.get("function")
            if not isinstance(function, Mapping):
                raise WireError(f"Missing required parameter: '{where}.function'.", f"{where}.function")
            out.append(_spec(function.get("name"), function.get("parameters"), f"{where}.function",
                             function.get("description")))
        elif wire == "openai_responses":
            if tool.get("type") == "function":
                out.append(_spec(tool.get("name"), tool.get("parameters"), where, tool.get("description")))
        elif wire == "anthropic":
            out.append(_spec(tool.get("name"), tool.get("input_schema"), where, tool.get("description")))
        elif wire == "gemini":
            declarations = tool.get("functionDeclarations") or tool.get("function_declarations") or []
            if not isinstance(declarations, list):
                raise WireError(f"Invalid type for '{where}.functionDeclarations': expected an array.", where)
            for j, declaration in enumerate(declarations):
                if not isinstance(declaration, Mapping):
                    raise WireError(f"Invalid type for '{where}.functionDeclarations[{j}]'.", where)
                schema = declaration.get("parametersJsonSchema", declaration.get("parameters"))
                out.append(_spec(declaration.get("name"), schema, f"{where}.functionDeclarations[{j}]",
                                 declaration.get("description")))
    return out
