"""Conversation histories holding tool calls and tool results, checked per wire the way the real APIs check
them (a 400 with the provider's own wording), and whether the history ends with tool results: a reply to tool
results is text, never another tool call, so a tool loop ends.

- OpenAI chat: a ``role: tool`` message answers a ``tool_calls`` entry of the assistant message before it; every
  call is answered before the next other message.
- Responses: a ``function_call_output`` item answers an earlier ``function_call`` item with its ``call_id``; every
  call is answered; a ``reasoning`` item sent back carries the ``encrypted_content`` this server made for it.
- Anthropic: the user turn after an assistant turn with ``tool_use`` blocks holds a ``tool_result`` block for
  each of them (and none for another id); ``input`` is an object; a request holding either defines ``tools``;
  with thinking on, the last assistant turn that calls tools starts with its (signed) thinking block; every
  ``thinking`` block sent back carries the signature the fake made for its text, every ``redacted_thinking`` block
  the fake's data.
- Gemini: the turn after a ``functionCall`` turn holds as many ``functionResponse`` parts as there were calls,
  each ``response`` a JSON object; on Gemini 3 and later models (``gemini-3…``) the first ``functionCall`` part of
  each model turn since the last user text carries the ``thoughtSignature`` it came with.
- Ollama: an assistant ``tool_calls`` entry's ``arguments`` is an object.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from workbench.fakeserver.wire.base import WireError

__all__ = ["answers_tools", "anthropic_history", "gemini_history", "ollama_history", "openai_chat_history",
           "redacted_data", "responses_history", "seal_reasoning", "sign_thinking"]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _missing_results(ids: Sequence[str]) -> WireError:
    return WireError("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                     f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(ids)}",
                     "messages")


def openai_chat_history(messages: Sequence[Any]) -> bool:
    """Check a Chat Completions ``messages`` list; ``True`` when it ends with tool results."""
    pending: list[str] = []
    opened = False  # the messages since the last non-tool one answer an assistant ``tool_calls`` message
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            continue
        if msg.get("role") == "tool":
            if not opened:
                raise WireError("Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                                "message with 'tool_calls'.", f"messages.[{i}].role")
            call_id = msg.get("tool_call_id")
            if call_id not in pending:
                raise WireError(f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of "
                                "previous message.", f"messages.[{i}].tool_call_id")
            pending.remove(call_id)
            continue
        if pending:
            raise _missing_results(pending)
        calls = _list(msg.get("tool_calls")) if msg.get("role") == "assistant" else []
        for j, call in enumerate(calls):
            function = call.get("function") if isinstance(call, Mapping) else None
            if not isinstance(function, Mapping) or not isinstance(function.get("arguments"), str):
                raise WireError(f"Invalid type for 'messages[{i}].tool_calls[{j}].function.arguments': expected a "
                                "string.", f"messages[{i}].tool_calls[{j}].function.arguments", code="invalid_type")
            pending.append(str(call.get("id")))
        opened = bool(calls)
    if pending:
        raise _missing_results(pending)
    return bool(messages) and isinstance(messages[-1], Mapping) and messages[-1].get("role") == "tool"


def sign_thinking(text: str) -> str:
    """The fake's signature of a thinking block's text: a block sent back must carry it (Anthropic verifies each)."""
    return base64.b64encode(hashlib.sha256(f"fake-thinking\0{text}".encode()).digest() * 3).decode()


REDACTED_PREFIX = b"fake-redacted\0"


def redacted_data(n: int) -> str:
    """The fake's encrypted ``data`` of its ``n``-th ``redacted_thinking`` block of a reply."""
    return base64.b64encode(REDACTED_PREFIX + hashlib.sha256(f"redacted\0{n}".encode()).digest()).decode()


def _anthropic_reasoning(i: int, msg: Mapping[str, Any]) -> None:
    """An assistant turn's thinking blocks sent back as the fake made them: each ``thinking`` block with its
    signature, each ``redacted_thinking`` block with its data (a 400 in Anthropic's words otherwise)."""
    for j, block in _blocks(msg, "thinking"):
        if block.get("signature") != sign_thinking(str(block.get("thinking") or "")):
            raise WireError(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
    for j, block in _blocks(msg, "redacted_thinking"):
        try:
            valid = base64.b64decode(str(block.get("data") or ""), validate=True).startswith(REDACTED_PREFIX)
        except ValueError:
            valid = False
        if not valid:
            raise WireError(f"messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block")


def seal_reasoning(item_id: str) -> str:
    """The fake's ``encrypted_content`` of a reasoning item: only the fake that made it reads it back."""
    return "fake-sealed:" + base64.b64encode(item_id.encode()).decode()


def _reasoning_item(item: Mapping[str, Any]) -> None:
    """A reasoning item sent back: with ``store: false`` (the fake keeps nothing) only its encrypted content names
    it, and that content must be this server's for that item."""
    item_id, content = str(item.get("id")), item.get("encrypted_content")
    if not content:
        raise WireError(f"Item with id '{item_id}' not found. Items are not persisted when `store` is set to false. "
                        "Try again with `store` set to true, or remove this item from your input.", "input",
                        status=404)
    if content != seal_reasoning(item_id):
        raise WireError(f"The encrypted content for item {item_id} could not be verified.", "input",
                        code="invalid_encrypted_content")


def responses_history(items: Sequence[Any]) -> bool:
    """Check a Responses ``input`` list; ``True`` when it ends with a ``function_call_output`` item."""
    calls: list[str] = []
    answered: set[str] = set()
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "reasoning":
            _reasoning_item(item)
        elif item.get("type") == "function_call":
            if not isinstance(item.get("arguments"), str):
                raise WireError("Invalid type for 'input[].arguments': expected a string.", "input")
            calls.append(str(item.get("call_id")))
        elif item.get("type") == "function_call_output":
            call_id = str(item.get("call_id"))
            if call_id not in calls:
                raise WireError(f"No tool call found for function call output with call_id {call_id}.", "input")
            answered.add(call_id)
    for call_id in calls:
        if call_id not in answered:
            raise WireError(f"No tool output found for function call {call_id}.", "input")
    return bool(items) and isinstance(items[-1], Mapping) and items[-1].get("type") == "function_call_output"


def _blocks(msg: Mapping[str, Any], kind: str) -> list[tuple[int, Mapping[str, Any]]]:
    return [(j, b) for j, b in enumerate(_list(msg.get("content"))) if isinstance(b, Mapping) and b.get("type") == kind]


def anthropic_history(messages: Sequence[Any]) -> bool:
    """Check a Messages ``messages`` list; ``True`` when it ends with a user turn of ``tool_result`` blocks."""
    pending: list[str] = []
    results: list[tuple[int, Mapping[str, Any]]] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            continue
        results = _blocks(msg, "tool_result") if msg.get("role") == "user" else []
        for j, block in results:
            if block.get("tool_use_id") not in pending:
                raise WireError(f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                                f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                                "`tool_use` block in the previous message.")
        missing = [call_id for call_id in pending if call_id not in {b.get("tool_use_id") for _, b in results}]
        if missing:
            raise WireError(f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                            f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                            "`tool_result` block in the next message.")
        if msg.get("role") == "assistant":
            _anthropic_reasoning(i, msg)
        uses = _blocks(msg, "tool_use") if msg.get("role") == "assistant" else []
        for j, block in uses:
            if not isinstance(block.get("input"), Mapping):
                raise WireError(f"messages.{i}.content.{j}.tool_use.input: Input should be a valid dictionary")
        pending = [str(block.get("id")) for _, block in uses]
    if pending:
        raise WireError(f"messages.{len(messages) - 1}: `tool_use` ids were found without `tool_result` blocks "
                        f"immediately after: {', '.join(pending)}. Each `tool_use` block must have a corresponding "
                        "`tool_result` block in the next message.")
    return bool(results)


def anthropic_thinking_first(messages: Sequence[Any]) -> None:
    """With thinking on: the last assistant turn, when it holds ``tool_use`` blocks answered after it, starts with a
    ``thinking`` or ``redacted_thinking`` block."""
    turns = [(i, m) for i, m in enumerate(messages) if isinstance(m, Mapping) and m.get("role") == "assistant"]
    if not turns:
        return
    i, last = turns[-1]
    content = _list(last.get("content"))
    if not _blocks(last, "tool_use") or i + 1 >= len(messages):
        return
    first = content[0].get("type") if content and isinstance(content[0], Mapping) else None
    if first not in ("thinking", "redacted_thinking"):
        raise WireError(f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                        f"`{first}`. When `thinking` is enabled, a final `assistant` message must start with a "
                        "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We "
                        "recommend you include thinking blocks from previous turns. To avoid this requirement, "
                        "disable `thinking`.")


def gemini_history(contents: Sequence[Any]) -> bool:
    """Check a ``contents`` list; ``True`` when it ends with ``functionResponse`` parts."""
    pending = 0
    responses: list[Any] = []
    for i, content in enumerate(contents):
        parts = [p for p in _list(content.get("parts") if isinstance(content, Mapping) else None)
                 if isinstance(p, Mapping)]
        responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
        if pending and len(responses) != pending:
            raise WireError("Please ensure that the number of function response parts is equal to the number of "
                            "function call parts of the function call turn.")
        if responses and not pending:
            raise WireError("Please ensure that function response turn comes immediately after a function call turn.")
        for j, response in enumerate(responses):
            if not isinstance(response, Mapping) or not isinstance(response.get("response"), Mapping):
                raise WireError(f"Invalid value at 'contents[{i}].parts[{j}].function_response.response' "
                                "(type.googleapis.com/google.protobuf.Struct), expected a JSON object")
        pending = sum(1 for p in parts if "functionCall" in p)
    if pending:
        raise WireError("Please ensure that the number of function response parts is equal to the number of "
                        "function call parts of the function call turn.")
    return bool(responses)


_SIGNING_MODEL = re.compile(r"gemini-([3-9]|\d{2,})")


def gemini_signatures(contents: Sequence[Any], model: str) -> None:
    """Gemini 3's rule: each model turn of the current turn (since the last user text) that calls functions carries
    a ``thoughtSignature`` on its first ``functionCall`` part."""
    if not _SIGNING_MODEL.match(model):
        return
    parts_of = [[p for p in _list(c.get("parts") if isinstance(c, Mapping) else None) if isinstance(p, Mapping)]
                for c in contents]
    asked = max((i for i, parts in enumerate(parts_of) if any("text" in p for p in parts)
                 and isinstance(contents[i], Mapping) and contents[i].get("role", "user") == "user"), default=-1)
    for i, parts in enumerate(parts_of[asked + 1:], asked + 1):
        calls = [p for p in parts if "functionCall" in p]
        if calls and not calls[0].get("thoughtSignature"):
            name = calls[0]["functionCall"].get("name") if isinstance(calls[0]["functionCall"], Mapping) else None
            raise WireError("Function call is missing a thought_signature in functionCall parts. This is required "
                            "for tools to work correctly, and missing thought_signature may lead to degraded model "
                            f"performance. Additional data, function call `default_api:{name}`, position {i + 1}. "
                            "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more "
                            "details.")


def ollama_history(messages: Sequence[Any]) -> bool:
    """Check an ``/api/chat`` ``messages`` list; ``True`` when it ends with a ``role: tool`` message."""
    for msg in messages:
        if not isinstance(msg, Mapping):
            continue
        for call in _list(msg.get("tool_calls")):
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping) and not isinstance(function.get("arguments"), Mapping | None):
                raise WireError("json: cannot unmarshal string into Go struct field ToolCallFunction.messages."
                                "tool_calls.function.arguments of type api.ToolCallFunctionArguments")
    return bool(messages) and isinstance(messages[-1], Mapping) and messages[-1].get("role") == "tool"


_HISTORIES = {"openai_chat": ("messages", openai_chat_history), "openai_responses": ("input", responses_history),
              "anthropic": ("messages", anthropic_history), "gemini": ("contents", gemini_history),
              "ollama": ("messages", ollama_history)}


def answers_tools(wire: str, body: Mapping[str, Any], model: str = "") -> bool:
    """Check the tool turns of a generating request's history on ``wire`` for ``model`` (a :class:`WireError` when
    the real API would refuse it); ``True`` when the history ends with tool results (the reply is then text)."""
    found = _HISTORIES.get(wire)
    if found is None:
        return False
    key, check = found
    history = body.get(key)
    if not isinstance(history, list):
        return False
    if wire == "anthropic" and not body.get("tools") and any(
            _blocks(msg, "tool_use") or _blocks(msg, "tool_result") for msg in history if isinstance(msg, Mapping)):
        raise WireError("Requests which include `tool_use` or `tool_result` blocks must define tools.")
    thinking = body.get("thinking")
    if wire == "anthropic" and isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive"):
        anthropic_thinking_first(history)
    if wire == "gemini":
        gemini_signatures(history, model)
    return check(history)
