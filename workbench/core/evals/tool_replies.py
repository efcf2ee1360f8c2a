"""A reply with tool calls as an eval grades it: promptfoo's output of such a reply on each provider, and its calls.

- OpenAI chat: the ``tool_calls`` list (``[{id, type: "function", function: {name, arguments}}]``); with text
  besides, the whole message (``{role, content, tool_calls}``).
- Anthropic: its blocks in order, text as it is and each ``tool_use`` block as JSON (``{type, id, name, input}``),
  joined by a blank line.
- OpenAI Responses: its output items joined by a line break, the message's text as it is and each
  ``function_call`` item as JSON (``{type, status, arguments, call_id, name}``; the item's own ``fc_`` id is not
  kept): promptfoo's ``ResponsesProcessor`` without a callback. A string, as there.
- Gemini: the candidate's parts (``[{text}, {functionCall: {name, args}}]``, ``id`` when the API gave one), since a
  part that is not text makes promptfoo's output the parts themselves.
- Ollama: the message's ``tool_calls`` (``[{function: {name, arguments}}]``, ``id`` when given); with text besides,
  ``{content, tool_calls}``.

Code assertions get the structure where promptfoo's output is one (all but Anthropic and Responses); text
assertions its compact JSON text.
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


def _openai_chat(text: str, calls: Sequence[Call]) -> Any:
    listed = [{"id": call.get("id", ""), "type": "function",
               "function": {"name": call.get("name", ""), "arguments": call.get("arguments", "")}} for call in calls]
    return listed if not text else {"role": "assistant", "content": text, "tool_calls": listed}


def _gemini(text: str, calls: Sequence[Call]) -> Any:
    parts: list[Any] = [{"text": text}] if text else []
    parts += [{"functionCall": {**({"id": call["id"]} if call.get("id") else {}), "name": call.get("name", ""),
                                "args": parsed_arguments(call)}} for call in calls]
    return parts


def _ollama(text: str, calls: Sequence[Call]) -> Any:
    listed = [{**({"id": call["id"]} if call.get("id") else {}),
               "function": {"name": call.get("name", ""), "arguments": parsed_arguments(call)}} for call in calls]
    return {"content": text, "tool_calls": listed} if text.strip() else listed


_STRUCTURED = {"gemini": _gemini, "ollama": _ollama}
_TEXT_ONLY = frozenset({"anthropic", "openai_responses"})
"""Wires whose promptfoo output of a tool-call reply is text, not a structure."""


def reply_output(wire: str, text: str, calls: Sequence[Call]) -> str:
    """promptfoo's output of a reply of ``text`` and ``calls`` on ``wire`` (``text`` when it called no tool)."""
    if not calls:
        return text
    if wire == "anthropic":
        blocks = [text] if text else []
        blocks += [_compact({"type": "tool_use", "id": call.get("id", ""), "name": call.get("name", ""),
                             "input": parsed_arguments(call)}) for call in calls]
        return "\n\n".join(blocks)
    if wire == "openai_responses":
        items = [text] if text else []
        items += [_compact({"type": "function_call", "status": "completed", "arguments": call.get("arguments", ""),
                            "call_id": call.get("id", ""), "name": call.get("name", "")}) for call in calls]
        return "\n".join(items)
    data = _STRUCTURED.get(wire, _openai_chat)(text, calls)
    return StructuredVar(data, _compact(data))


def structured_output(wire: str, output: str, calls: Sequence[Call]) -> str:
    """``output`` (a stored :func:`reply_output`) with its structure again for code assertions: a cached or resumed
    reply reads as a fresh one does."""
    if not calls or wire in _TEXT_ONLY or isinstance(output, StructuredVar):
        return output
    try:
        return StructuredVar(json.loads(output), output)
    except ValueError:
        return output
