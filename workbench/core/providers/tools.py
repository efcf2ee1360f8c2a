"""Tool calling on every wire: the request's tools and tool choice in each wire's request body, and the
arguments of a whole-object tool call (Gemini, Ollama) as JSON text."""

from __future__ import annotations

import json
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.request import Params
from workbench.core.tool_specs import TOOL_CHOICES


def compact_json(value: object) -> str:
    """A tool call's arguments object (Gemini ``functionCall.args``, Ollama ``function.arguments``) as compact
    JSON text, the form the OpenAI wires stream: no spaces, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _functions(params: Params) -> list[dict[str, Any]]:
    return [tool["function"] for tool in params.tools]


def _keyword(params: Params) -> str | None:
    """``auto``, ``none`` or ``required``; ``None`` when the choice names a tool (or is not set)."""
    choice = params.tool_choice
    return choice if choice in TOOL_CHOICES else None


def openai_chat_tools(params: Params) -> dict[str, Any]:
    """``tools`` as given and ``tool_choice`` (a keyword, or ``{"type": "function", "function": {"name"}}``)."""
    if not params.tools:
        return {}
    out: dict[str, Any] = {"tools": list(params.tools)}
    if params.tool_choice is not None:
        out["tool_choice"] = _keyword(params) or {"type": "function", "function": {"name": params.tool_choice}}
    return out


def responses_tools(params: Params) -> dict[str, Any]:
    """The Responses API's flattened tools (``{"type": "function", "name", ...}``) and ``tool_choice``."""
    if not params.tools:
        return {}
    out: dict[str, Any] = {"tools": [{"type": "function", **function} for function in _functions(params)]}
    if params.tool_choice is not None:
        out["tool_choice"] = _keyword(params) or {"type": "function", "name": params.tool_choice}
    return out


_ANTHROPIC_CHOICE = {"auto": "auto", "none": "none", "required": "any"}
_EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


def anthropic_tools(params: Params) -> dict[str, Any]:
    """Anthropic's tools (``input_schema``; a tool without parameters takes an empty object) and
    ``tool_choice`` ``{"type": auto|none|any|tool}``."""
    if not params.tools:
        return {}
    tools = []
    for function in _functions(params):
        tool: dict[str, Any] = {"name": function["name"]}
        if "description" in function:
            tool["description"] = function["description"]
        tool["input_schema"] = function.get("parameters") or _EMPTY_OBJECT
        if "strict" in function:
            tool["strict"] = function["strict"]
        tools.append(tool)
    out: dict[str, Any] = {"tools": tools}
    keyword = _keyword(params)
    if keyword is not None:
        out["tool_choice"] = {"type": _ANTHROPIC_CHOICE[keyword]}
    elif params.tool_choice is not None:
        out["tool_choice"] = {"type": "tool", "name": params.tool_choice}
    return out


_GEMINI_MODE = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def gemini_tools(params: Params) -> dict[str, Any]:
    """``tools: [{"functionDeclarations": [...]}]`` (each tool's JSON schema as ``parametersJsonSchema``)
    and ``toolConfig.functionCallingConfig``: mode ``AUTO``/``NONE``/``ANY``, or ``ANY`` limited to one
    tool by ``allowedFunctionNames``."""
    if not params.tools:
        return {}
    declarations = []
    for function in _functions(params):
        declaration: dict[str, Any] = {"name": function["name"]}
        if "description" in function:
            declaration["description"] = function["description"]
        if function.get("parameters"):
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    out: dict[str, Any] = {"tools": [{"functionDeclarations": declarations}]}
    keyword = _keyword(params)
    if keyword is not None:
        out["toolConfig"] = {"functionCallingConfig": {"mode": _GEMINI_MODE[keyword]}}
    elif params.tool_choice is not None:
        out["toolConfig"] = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [params.tool_choice]}}
    return out


def ollama_tools(params: Params, target: str) -> dict[str, Any]:
    """Ollama's ``tools`` (OpenAI's format). Ollama has no ``tool_choice``: ``auto`` is its behaviour and
    ``none`` sends no tools; ``required`` or a tool's name cannot be asked of it (a :class:`ConfigError`)."""
    if not params.tools or params.tool_choice == "none":
        return {}
    if params.tool_choice not in (None, "auto"):
        raise ConfigError(f"{target}: Ollama cannot be made to call a tool (--tool-choice {params.tool_choice})",
                          "use --tool-choice auto or none with Ollama, or another provider")
    return {"tools": list(params.tools)}
