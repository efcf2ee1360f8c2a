"""A reply with tool calls as an eval grades it: promptfoo's output of such a reply, and its calls.

promptfoo's output of an OpenAI chat reply that only calls tools is the ``tool_calls`` list (``[{id, type:
"function", function: {name, arguments}}]``); with text besides, the whole message (``{role, content,
tool_calls}``). Code assertions get that structure; text assertions its JSON text. An Anthropic reply's output is
its blocks in order, text as it is and each ``tool_use`` block as JSON (``{type, id, name, input}``), joined by a
blank line. The other wires (Responses, Gemini, Ollama) give the OpenAI chat form here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from workbench.core.templating import StructuredVar

Call = Mapping[str, str]
"""One tool call as an observation keeps it: ``{id, name, arguments}`` (the arguments the JSON text received)."""


def parsed_arguments(call: Call) -> Any:
    """The call's arguments as JSON data, or their text when it is not JSON."""
    try:
        return json.loads(call.get("arguments") or "{}")
    except ValueError:
        return call.get("arguments", "")


def _compact(data: Any) -> str:
    """JSON as JavaScript's ``JSON.stringify`` writes it (what promptfoo's outputs hold)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def reply_output(wire: str, text: str, calls: Sequence[Call]) -> str:
    """promptfoo's output of a reply of ``text`` and ``calls`` on ``wire`` (``text`` when it called no tool)."""
    if not calls:
        return text
    if wire == "anthropic":
        blocks = [text] if text else []
        blocks += [_compact({"type": "tool_use", "id": call.get("id", ""), "name": call.get("name", ""),
                             "input": parsed_arguments(call)}) for call in calls]
        return "\n\n".join(blocks)
    openai = [{"id": call.get("id", ""), "type": "function",
               "function": {"name": call.get("name", ""), "arguments": call.get("arguments", "")}} for call in calls]
    data: Any = openai if not text else {"role": "assistant", "content": text, "tool_calls": openai}
    return StructuredVar(data, _compact(data))


def structured_output(wire: str, output: str, calls: Sequence[Call]) -> str:
    """``output`` (a stored :func:`reply_output`) with its structure again for code assertions: a cached or resumed
    reply reads as a fresh one does."""
    if not calls or wire == "anthropic" or isinstance(output, StructuredVar):
        return output
    try:
        return StructuredVar(json.loads(output), output)
    except ValueError:
        return output
