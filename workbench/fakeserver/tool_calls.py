"""The tool calls of a fake reply (scenario key ``tools=N``): the tools a request offered, and the N
deterministic calls the reply makes, and the input tokens the tools' definitions count (:func:`definition_tokens`).

Call ``i`` names tool ``i % len(tools)`` (the first tools first) and its arguments are a small JSON object
holding every required property of that tool's schema, with a value of the property's type (the first
``enum`` value when there is one). Its id is derived from the model, the prompt and ``i``. How each wire reads
the tools of a request and streams the calls: :mod:`workbench.fakeserver.wire.tools` and the wire modules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workbench.fakeserver.text import count_input_tokens

__all__ = ["FakeToolCall", "ToolSpec", "definition_text", "definition_tokens", "plan_calls"]

MAX_DEPTH = 4


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    schema: Mapping[str, Any] | None
    description: str = ""


def definition_text(tool: ToolSpec) -> str:
    """A tool's definition as the fake tokenizer reads it: its name, description and schema as JSON
    (``json.dumps``: about a word per key and value)."""
    return " ".join((tool.name, tool.description, json.dumps(tool.schema or {})))


def definition_tokens(tools: list[ToolSpec]) -> int:
    """The input tokens of a request's tool definitions, on every wire and its count endpoint alike: each tool
    counts as one text (:func:`definition_text`)."""
    return count_input_tokens(definition_text(t) for t in tools)


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
        arguments = json.dumps(_object(tool.schema, i), ensure_ascii=False, separators=(",", ":"))
        calls.append(FakeToolCall(i, digest, tool.name, arguments))
    return tuple(calls)
