"""Prompt text in the editor: ``{{variables}}`` and their substitution, target lists, parameter errors (no
Textual: the text area is :mod:`workbench.ui.widgets.editor.prompt_area`)."""

from __future__ import annotations

import json
import re
from typing import Any

from workbench.core.errors import WorkbenchError

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
"""A ``{{name}}`` placeholder in the system prompt or the user message."""


def variable_names(*texts: str) -> list[str]:
    """The placeholder names in ``texts``, in order of first appearance, each once."""
    return list(dict.fromkeys(m.group(1) for text in texts for m in VARIABLE.finditer(text)))


def substitute(text: str, values: dict[str, str]) -> str:
    """``text`` with every ``{{name}}`` that has a value replaced by it (others are left as they are)."""
    return VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def validation_problem(exc: Exception) -> str:
    """A pydantic ``ValidationError`` as ``field: message; …`` (other errors: their text)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())) or 'params'}: {e.get('msg')}"
                     .removeprefix("params: Value error, ").replace(": Value error, ", ": ") for e in errors())


def split_targets(raw: str) -> list[str]:
    """``a/x@ttft=1,tps=2, b/y`` → two targets: a comma starts a new target only before ``provider/``."""
    return [t.strip() for t in re.split(r",\s*(?=[A-Za-z0-9_.-]+/)", raw) if t.strip()]


def parse_number(field: str, raw: str, kind: type) -> Any:
    """An optional number field: ``None`` when empty; a bad value raises a ``WorkbenchError`` naming it."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise WorkbenchError(f"{field.replace('-', '_')} is not {noun}: {raw!r}", "fix it or leave it empty") from None


def parse_json_schema(raw: str) -> dict[str, Any] | None:
    """The optional JSON schema field: ``None`` when empty; it must be a JSON object."""
    if not raw.strip():
        return None
    try:
        schema = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise WorkbenchError(f"json_schema is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                             "fix the schema or clear it") from None
    if not isinstance(schema, dict):
        raise WorkbenchError(f"json_schema must be a JSON object, not {type(schema).__name__}",
                             'write an object such as {"type": "object", ...}')
    return schema


def parse_tools_field(raw: str, choice: str) -> tuple[tuple[dict[str, Any], ...], str | None]:
    """The Tools panel: its tools (a JSON or YAML list in OpenAI's function format; none when empty) and tool
    choice (none when empty), checked as a prompt file's are; a one-line ``WorkbenchError`` otherwise."""
    from workbench.core.tool_specs import parse_tools, tool_choice_problem

    tools = parse_tools(raw, "tools") if raw.strip() else ()
    choice = choice.strip()
    problem = tool_choice_problem(choice, tools) if choice else None
    if problem is not None:
        raise WorkbenchError(problem, "type auto, none, required or one tool's name, or leave it empty")
    return tools, choice or None
