"""Conversation turns on every wire: an assistant turn's tool calls and the tool results after it, in each wire's
documented form. Every other turn is the wire's own (``plain``: text, attachments), so these encoders only add
the tool turns around it.

- OpenAI chat: assistant ``tool_calls`` (``content`` null when the turn has no text; a call's signature from
  Gemini's OpenAI-compatible endpoint back in ``extra_content.google.thought_signature``), then one ``role: tool``
  message per result (``tool_call_id``).
- Responses: the turn's ``reasoning`` items (with their ``encrypted_content``), its text as an assistant message,
  a ``function_call`` item per call, a ``function_call_output`` item per result.
- Anthropic: assistant ``tool_use`` blocks (``input`` an object), the turn's signed ``thinking`` and
  ``redacted_thinking`` blocks in their places among them (interleaved thinking), then consecutive results as
  ``tool_result`` blocks of one user turn.

Reasoning items go in the order they came (:func:`~workbench.core.reasoning_items.placed`), and only to the wire
that produced them: the provider drops another's first (:meth:`~workbench.core.request.ChatRequest.for_origin`).
- Gemini: ``functionCall`` parts in a ``model`` turn (with the ``thoughtSignature`` the call came with; on Gemini 3,
  a turn Gemini did not produce gets Google's placeholder signature on its first call),
  consecutive results as ``functionResponse`` parts of one ``user`` turn (``response`` a JSON object:
  :func:`~workbench.core.tool_turns.result_object`).
- Ollama: assistant ``tool_calls`` (``arguments`` an object), ``role: tool`` messages naming the tool
  (``tool_name``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from workbench.core.reasoning_items import ANTHROPIC_KINDS, RESPONSES_KINDS, ReasoningItem, placed
from workbench.core.request import Message
from workbench.core.tool_turns import TurnToolCall, result_object, runs, tool_names

Plain = Callable[[Message], dict[str, Any]]
"""A wire's encoding of a turn without tool calls or results."""


def openai_chat_turns(messages: Sequence[Message], plain: Plain, *, signatures: bool = False) -> list[dict[str, Any]]:
    """With ``signatures`` (a request to the provider and wire the turns came from), each call's signature goes back
    where Gemini's OpenAI-compatible endpoint put it: ``extra_content.google.thought_signature``."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
        elif m.tool_calls:
            out.append({"role": "assistant", "content": m.content or None, "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments},
                 **({"extra_content": {"google": {"thought_signature": c.signature}}}
                    if signatures and c.signature else {})}
                for c in m.tool_calls]})
        else:
            out.append(plain(m))
    return out


def _interleaved(m: Message, text: list[dict[str, Any]], kinds: frozenset[str],
                 item: Callable[[ReasoningItem], dict[str, Any]],
                 call: Callable[[TurnToolCall], dict[str, Any]]) -> list[dict[str, Any]]:
    """An assistant turn's parts in the order they came: its reasoning items of ``kinds`` before any call, the
    ``text`` parts, then each call followed by the items that came after it (interleaved thinking)."""
    slots = placed(m.reasoning_items, len(m.tool_calls), kinds)
    out = [*map(item, slots[0]), *text]
    for c, after in zip(m.tool_calls, slots[1:], strict=True):
        out.append(call(c))
        out.extend(map(item, after))
    return out


def _responses_item(item: ReasoningItem) -> dict[str, Any]:
    summary = item.summary if item.summary is not None else (item.text,) if item.text else ()
    return {"type": "reasoning", "id": item.id, "summary": [{"type": "summary_text", "text": t} for t in summary],
            "encrypted_content": item.data}


def responses_input(messages: Sequence[Message], plain: Plain) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"type": "function_call_output", "call_id": m.tool_call_id, "output": m.content})
        elif m.tool_calls or m.reasoning_items:
            text = [plain(m)] if m.content or not m.tool_calls else []
            out.extend(_interleaved(m, text, RESPONSES_KINDS, _responses_item, lambda c: {
                "type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments}))
        else:
            out.append(plain(m))
    return out


def _anthropic_block(item: ReasoningItem) -> dict[str, Any]:
    if item.kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": item.data}
    return {"type": "thinking", "thinking": item.text, "signature": item.signature}


def anthropic_turns(messages: Sequence[Message], plain: Plain) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for results, run in runs(messages):
        if results:
            out.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content} for m in run]})
            continue
        m = run[0]
        if not m.tool_calls:
            out.append(plain(m))
            continue
        # The signed thinking that preceded each call, as it came (required with thinking on).
        out.append({"role": "assistant", "content": _interleaved(
            m, [{"type": "text", "text": m.content}] if m.content else [], ANTHROPIC_KINDS, _anthropic_block,
            lambda c: {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments_object()})})
    return out


FOREIGN_SIGNATURE = "skip_thought_signature_validator"
"""Google's documented placeholder for a function call Gemini did not produce (another provider's turn, one written
by hand): Gemini 3 refuses a step's first call without a ``thoughtSignature``."""


def gemini_contents(messages: Sequence[Message], plain: Plain, *, placeholder: bool = False) -> list[dict[str, Any]]:
    """The ``contents``; with ``placeholder`` (Gemini 3 and later), a model turn whose calls carry no signature gets
    :data:`FOREIGN_SIGNATURE` on its first."""
    names = tool_names(messages)
    out: list[dict[str, Any]] = []
    for results, run in runs(messages):
        if results:
            out.append({"role": "user", "parts": [{"functionResponse": {
                "id": m.tool_call_id, "name": names.get(m.tool_call_id or "", ""),
                "response": result_object(m.content)}} for m in run]})
            continue
        m = run[0]
        if not m.tool_calls:
            out.append(plain(m))
            continue
        parts: list[dict[str, Any]] = [{"text": m.content}] if m.content else []
        unsigned = placeholder and not any(c.signature for c in m.tool_calls)
        parts.extend({"functionCall": {"id": c.id, "name": c.name, "args": c.arguments_object()},
                      **({"thoughtSignature": c.signature} if c.signature else {}),
                      **({"thoughtSignature": FOREIGN_SIGNATURE} if unsigned and i == 0 else {})}
                     for i, c in enumerate(m.tool_calls))
        out.append({"role": "model", "parts": parts})
    return out


def ollama_messages(messages: Sequence[Message], plain: Plain) -> list[dict[str, Any]]:
    names = tool_names(messages)
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            out.append({"role": "tool", "content": m.content, "tool_name": names.get(m.tool_call_id or "", "")})
        elif m.tool_calls:
            out.append({"role": "assistant", "content": m.content, "tool_calls": [
                {"function": {"name": c.name, "arguments": c.arguments_object()}} for c in m.tool_calls]})
        else:
            out.append(plain(m))
    return out
