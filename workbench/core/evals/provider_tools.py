"""A promptfoo provider's ``tools`` and ``tool_choice``: the request's tools (OpenAI's function format, which each
wire translates) and its tool choice, sent with every cell of that provider.

``tools`` is a list, or ``file://tools.json`` / ``.yaml`` holding one; each tool is OpenAI's ``{type: function,
function: {name, description, parameters}}``, Anthropic's ``{name, description, input_schema}`` or Gemini's
``{functionDeclarations: [{name, description, parameters}]}`` (its schema's upper-case types lowered), translated.
``tool_choice`` is ``auto``, ``none``, ``required`` (Anthropic's ``any``), a tool's name, or the providers'
mappings: OpenAI's ``{type: function, function: {name}}`` (or the Responses API's ``{type: function, name}``) and
Anthropic's ``{type: auto | any | none | tool, name}``. Anything else fails at its ``file:line``.
"""

from __future__ import annotations

from typing import Any

from workbench.core.evals.suite_promptfoo import FILE, Context, Src, expect
from workbench.core.tool_specs import TOOL_CHOICES, tool_problem
from workbench.core.yaml_lines import Loc

_ANTHROPIC_KEYS = frozenset({"name", "description", "input_schema"})
_ANTHROPIC_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
_HINT = ("each tool is {type: function, function: {name, description, parameters}} (OpenAI), "
         "{name, description, input_schema} (Anthropic) or {functionDeclarations: [...]} (Gemini)")


def config_tools(ctx: Context, src: Src, loc: Loc, value: Any) -> tuple[dict[str, Any], ...]:
    """The tools of a provider's ``config.tools`` (at ``loc``): a list, or a ``file://`` JSON or YAML file of one."""
    if isinstance(value, str):
        if not value.startswith(FILE):
            raise src.error(loc, "config.tools: expected a list of tools or file://tools.json (or .yaml)", _HINT)
        paths = ctx.files(src, loc, value)
        if len(paths) != 1:
            raise src.error(loc, f"config.tools: '{value}' names {len(paths)} files, not one")
        data, file_src = ctx.parse_yaml(paths[0], ctx.read(src, loc, paths[0]))
        return _tools(file_src, (), data)
    return _tools(src, loc, value)


def _tools(src: Src, loc: Loc, data: Any) -> tuple[dict[str, Any], ...]:
    items = expect(src, loc, data, list, "a list of tools")
    if not items:
        raise src.error(loc, "config.tools is empty", _HINT)
    tools: list[Any] = []
    places: list[Loc] = []  # where each translated tool was written
    for i, item in enumerate(items):
        declared = item.get("functionDeclarations") if isinstance(item, dict) else None
        if isinstance(declared, list) and set(item) == {"functionDeclarations"}:  # Gemini's: one tool per function
            tools += [{"type": "function", "function": _lowered(function)} for function in declared]
            places += [(i, "functionDeclarations", j) for j in range(len(declared))]
        else:
            tools.append(_openai_form(src, (*loc, i), item))
            places.append((i,))
    found = tool_problem(tools)
    if found is not None:
        at, problem = found
        index = at[0] if at and isinstance(at[0], int) else None
        if index is not None and places[index] != (index,):  # Gemini's: the declaration
            at = places[index]
        elif index is not None and "function" not in items[index] and len(at) > 2:  # Anthropic's: its own key
            at = (index, "input_schema" if at[2] == "parameters" else at[2])
        raise src.error((*loc, *at), f"config.tools: {problem}", _HINT)
    return tuple(tools)


def _lowered(schema: Any) -> Any:
    """Gemini's schema (OpenAPI's upper-case ``type`` names, ``OBJECT``) as JSON Schema's (``object``)."""
    if isinstance(schema, dict):
        return {key: value.lower() if key == "type" and isinstance(value, str) else _lowered(value)
                for key, value in schema.items()}
    if isinstance(schema, list):
        return [_lowered(item) for item in schema]
    return schema


def _openai_form(src: Src, loc: Loc, item: Any) -> Any:
    """``item`` in OpenAI's function format: Anthropic's ``{name, description, input_schema}`` translated."""
    if not isinstance(item, dict) or "function" in item or "type" in item:
        return item
    unknown = sorted(set(map(str, item)) - _ANTHROPIC_KEYS)
    if unknown:
        raise src.error((*loc, unknown[0]), f"config.tools: unknown key '{unknown[0]}' in a tool", _HINT)
    function = {key: item[key] for key in ("name", "description") if key in item}
    if "input_schema" in item:
        function["parameters"] = item["input_schema"]
    return {"type": "function", "function": function}


def config_tool_choice(src: Src, loc: Loc, value: Any) -> str:
    """A provider's ``config.tool_choice`` as a request's: ``auto``, ``none``, ``required`` or a tool's name."""
    if isinstance(value, str):
        return _ANTHROPIC_CHOICES.get(value, value)
    choice = expect(src, loc, value, dict, "auto, none, required, or a mapping such as {type: tool, name: ...}")
    kind = choice.get("type")
    if kind == "function" and isinstance(choice.get("function"), dict) and set(choice) == {"type", "function"}:
        name = choice["function"].get("name")
    elif kind in ("function", "tool") and set(choice) == {"type", "name"}:
        name = choice.get("name")
    elif kind in _ANTHROPIC_CHOICES and set(choice) == {"type"}:
        return _ANTHROPIC_CHOICES[str(kind)]
    else:
        raise src.error(loc, f"config.tool_choice: {value!r} is not a tool choice this can send",
                        "use auto, none, required, {type: function, function: {name: ...}} or {type: tool, name: ...}")
    if not isinstance(name, str):
        raise src.error(loc, "config.tool_choice: the tool's name must be a text")
    return name


def check_tool_choice(src: Src, where: Loc, choice: str, tools: tuple[dict[str, Any], ...]) -> None:
    """``choice`` (written at ``where``) fits the provider's tools: a keyword, or one tool's name."""
    if not tools:
        raise src.error(where, f"config.tool_choice {choice} needs tools", "set config.tools")
    names = [tool["function"]["name"] for tool in tools]
    if choice not in TOOL_CHOICES and choice not in names:
        raise src.error(where, f"config.tool_choice {choice!r} is neither auto, none, required nor a tool's name",
                        f"the tools are: {', '.join(names)}")
