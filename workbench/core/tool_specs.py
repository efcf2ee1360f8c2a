"""A tools file (``run --tools FILE``): a JSON or YAML list of tools in OpenAI's function format, checked
with ``path:line`` errors, and the ``--tool-choice`` values it allows."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import ConfigError

if TYPE_CHECKING:
    from workbench.core.yaml_lines import Loc

TOOL_CHOICES = ("auto", "none", "required")
"""``--tool-choice`` keywords; any other value names one of the tools."""
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FUNCTION_KEYS = frozenset({"name", "description", "parameters", "strict"})
_HINT = 'each tool is {"type": "function", "function": {"name": ..., "description": ..., "parameters": {...}}}'


class ToolsFileError(ConfigError):
    """A malformed tools file: ``str(err)`` is ``path:line: problem``."""

    def __init__(self, path: Path | str, line: int, problem: str, hint: str = _HINT) -> None:
        super().__init__(f"{path}:{line}: {problem}", hint)


def load_tools(path: Path) -> tuple[dict[str, Any], ...]:
    """The tools of ``path`` (JSON or YAML), each checked: a one-line :class:`ToolsFileError` otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the tools file {path}: {exc}", "pass a readable JSON or YAML file") from None
    return parse_tools(text, path, json_only=path.suffix.lower() == ".json")


def parse_tools(text: str, where: Path | str, *, json_only: bool = False) -> tuple[dict[str, Any], ...]:
    """The tools a JSON or YAML text lists (``json_only``: JSON), each checked; a one-line :class:`ToolsFileError`
    naming ``where`` and the line otherwise (a file, or the editor's Tools panel)."""
    import yaml  # here: a call's path (the tool choice keywords) needs no YAML parser

    from workbench.core.yaml_lines import compose, load, node_line, syntax_error

    try:
        data = json.loads(text) if json_only else load(text)
    except json.JSONDecodeError as exc:
        raise ToolsFileError(where, exc.lineno, f"not valid JSON: {exc.msg}") from None
    except yaml.YAMLError as exc:
        line, problem = syntax_error(exc)
        raise ToolsFileError(where, line, f"not valid YAML: {problem}") from None

    def fail(loc: Loc, problem: str) -> ToolsFileError:
        try:
            line = node_line(compose(text), loc)
        except yaml.YAMLError:
            line = 1
        return ToolsFileError(where, line, problem)

    found = tool_problem(data)
    if found is not None:
        loc, problem = found
        raise fail(loc, "a tools file is a non-empty list of tools" if not loc else problem)
    return tuple(data)


def tool_problem(data: Any) -> tuple[Loc, str] | None:
    """Where and why ``data`` is not a non-empty list of tools in OpenAI's function format, or None."""
    if not isinstance(data, list) or not data:
        return (), "a non-empty list of tools"
    names: set[str] = set()
    for i, tool in enumerate(data):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            return (i,), f'tool {i + 1} is not {{"type": "function", ...}}'
        extra = set(tool) - {"type", "function"}
        if extra:
            return (i, sorted(extra)[0]), f"tool {i + 1}: unknown key '{sorted(extra)[0]}'"
        function = tool.get("function")
        if not isinstance(function, dict):
            return (i,), f"tool {i + 1} has no 'function' object"
        name = function.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            return ((i, "function", "name") if "name" in function else (i, "function"),
                    f"tool {i + 1}: its name must be 1-64 letters, digits, '_' or '-' (got {name!r})")
        if name in names:
            return (i, "function", "name"), f"tool {i + 1}: '{name}' is named twice"
        names.add(name)
        unknown = set(function) - _FUNCTION_KEYS
        if unknown:
            key = sorted(unknown)[0]
            return (i, "function", key), f"tool '{name}': unknown key '{key}'"
        if "description" in function and not isinstance(function["description"], str):
            return (i, "function", "description"), f"tool '{name}': description must be text"
        parameters = function.get("parameters")
        if parameters is not None and (not isinstance(parameters, dict)
                                       or parameters.get("type", "object") != "object"):
            return (i, "function", "parameters"), f"tool '{name}': parameters must be a JSON schema of an object"
        if "strict" in function and not isinstance(function["strict"], bool):
            return (i, "function", "strict"), f"tool '{name}': strict must be true or false"
    return None


def tool_choice_problem(choice: str, tools: Sequence[dict[str, Any]]) -> str | None:
    """Why ``choice`` does not fit ``tools`` (no tools; neither a keyword nor one tool's name), or None."""
    if not tools:
        return f"tool choice {choice} needs tools"
    names = [tool["function"]["name"] for tool in tools]
    if choice not in TOOL_CHOICES and choice not in names:
        return f"tool choice {choice} is neither auto, none, required nor a tool's name ({', '.join(names)})"
    return None


def check_tool_choice(choice: str | None, tools: tuple[dict[str, Any], ...]) -> str | None:
    """``choice`` if it fits ``tools`` (a keyword, or one tool's name); a :class:`ConfigError` otherwise."""
    if choice is None:
        return None
    if not tools:
        raise ConfigError(f"--tool-choice {choice} needs tools", "pass them with --tools FILE")
    problem = tool_choice_problem(choice, tools)
    if problem is not None:
        names = [tool["function"]["name"] for tool in tools]
        raise ConfigError(f"--tool-choice {choice} is neither auto, none, required nor a tool's name",
                          f"the tools are: {', '.join(names)}")
    return choice
