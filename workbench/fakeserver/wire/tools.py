"""Tool calls of the fake server (scenario key ``tools=N``): the tools a request offers, read from each wire's
own request fields, and the N deterministic calls the reply makes.

Call ``i`` names tool ``i % len(tools)`` (the first tools first) and its arguments are a small JSON object
holding every required property of that tool's schema, with a value of the property's type (the first
``enum`` value when there is one). Its id is derived from the model, the prompt and ``i``.
Streamed arguments are split into :data:`FRAGMENTS` pieces where the wire streams them in pieces.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workbench.fakeserver.wire.base import WireError, compact

__all__ = ["FRAGMENTS", "FakeToolCall", "ToolSpec", "fragments", "plan_calls", "tools_of"]

FRAGMENTS = 3
"""How many argument deltas a call's arguments are split into (fewer when the text is shorter)."""
MAX_DEPTH = 4


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    schema: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class FakeToolCall:
    index: int
    id: str
    """The id's random-looking part (each wire adds its own prefix: ``call_``, ``toolu_01``, ``fc_``)."""
    name: str
    arguments: str
    """Compact JSON text of the arguments object."""

    @property
    def args(self) -> Any:
        return json.loads(self.arguments)

    @property
    def tokens(self) -> int:
        """What the call counts as output tokens (about four characters a token, as the text's usage counts)."""
        return 1 + (len(self.name) + len(self.arguments)) // 4


def _value(schema: Any, name: str, i: int, depth: int) -> Any:
    if not isinstance(schema, Mapping):
        return f"{name}-{i}"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "integer":
        return i + 1
    if kind == "number":
        return i + 1.5
    if kind == "boolean":
        return i % 2 == 0
    if kind == "null":
        return None
    if kind == "array":
        return [_value(schema.get("items"), name, i, depth + 1)] if depth < MAX_DEPTH else []
    if kind == "object" or "properties" in schema:
        return _object(schema, i, depth + 1) if depth < MAX_DEPTH else {}
    return f"{name}-{i}"


def _object(schema: Mapping[str, Any] | None, i: int, depth: int = 0) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        return {}
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    required = schema.get("required")
    names = [n for n in required if isinstance(n, str)] if isinstance(required, list) else []
    return {n: _value(properties.get(n), n, i, depth) for n in names}


def plan_calls(tools: list[ToolSpec], count: int, model: str, prompt: str) -> tuple[FakeToolCall, ...]:
    """``count`` calls of ``tools`` (none when the request offered no tools)."""
    if not tools:
        return ()
    calls = []
    for i in range(count):
        tool = tools[i % len(tools)]
        digest = hashlib.sha256(f"{model}\0{prompt}\0{i}".encode()).hexdigest()[:24]
        calls.append(FakeToolCall(i, digest, tool.name, compact(_object(tool.schema, i))))
    return tuple(calls)


def fragments(text: str) -> list[str]:
    """``text`` in up to :data:`FRAGMENTS` consecutive pieces, none empty."""
    size = max(1, -(-len(text) // FRAGMENTS))
    return [text[at:at + size] for at in range(0, len(text), size)] or [""]


def _spec(name: Any, schema: Any, where: str) -> ToolSpec:
    if not isinstance(name, str) or not name:
        raise WireError(f"Missing required parameter: '{where}.name'.", f"{where}.name")
    if schema is not None and not isinstance(schema, Mapping):
        raise WireError(f"Invalid type for '{where}': expected an object.", where)
    return ToolSpec(name, schema)


def tools_of(wire: str, body: Mapping[str, Any]) -> list[ToolSpec]:
    """The tools a request offers, in ``wire``'s own shape (a malformed list is a :class:`WireError`)."""
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
            out.append(_spec(function.get("name"), function.get("parameters"), f"{where}.function"))
        elif wire == "openai_responses":
            if tool.get("type") == "function":
                out.append(_spec(tool.get("name"), tool.get("parameters"), where))
        elif wire == "anthropic":
            out.append(_spec(tool.get("name"), tool.get("input_schema"), where))
        elif wire == "gemini":
            declarations = tool.get("functionDeclarations") or tool.get("function_declarations") or []
            if not isinstance(declarations, list):
                raise WireError(f"Invalid type for '{where}.functionDeclarations': expected an array.", where)
            for j, declaration in enumerate(declarations):
                if not isinstance(declaration, Mapping):
                    raise WireError(f"Invalid type for '{where}.functionDeclarations[{j}]'.", where)
                schema = declaration.get("parametersJsonSchema", declaration.get("parameters"))
                out.append(_spec(declaration.get("name"), schema, f"{where}.functionDeclarations[{j}]"))
    return out
