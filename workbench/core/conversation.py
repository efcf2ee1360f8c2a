"""Continuing a conversation after a reply: the reply becomes an assistant turn (its text and tool calls), each
tool call gets its result as a ``tool`` turn, and an optional user turn follows; the request is sent again.

A reply is continued from what a call left: a :class:`~workbench.core.call_record.CallRecord`, or a call of the
trace log (:func:`traced_reply`). A tool call without an id (Gemini and Ollama may send none) is named ``call_N``,
N counting the conversation's tool calls from 0 (:func:`~workbench.core.tool_turns.unnamed_call_id`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from workbench.core.call_record import CallRecord, ToolCall
from workbench.core.errors import ConfigError
from workbench.core.reasoning_items import ReasoningItem
from workbench.core.request import ChatRequest, Message
from workbench.core.tool_turns import TurnToolCall, tool_turn_problem, unnamed_call_id
from workbench.core.traces.replay import traced_request
from workbench.core.validate import validated


def reply_turn(request: ChatRequest, text: str, calls: Sequence[ToolCall], items: Sequence[ReasoningItem] = (),
               origin: str | None = None) -> Message:
    """The assistant turn of the reply to ``request``: its ``text``, its tool ``calls`` (a call record's) and its
    reasoning ``items`` (signed thinking, encrypted reasoning), sent back to ``origin`` only (the provider and wire
    that produced the reply: :mod:`~workbench.core.reasoning_items`)."""
    try:
        return Message(role="assistant", content=text, reasoning_items=tuple(items), origin=origin, tool_calls=tuple(
            TurnToolCall(id=call.id or unnamed_call_id(request.messages, i), name=call.name,
                         arguments=call.arguments or "{}", signature=call.signature or None)
            for i, call in enumerate(calls)))
    except ValueError as exc:
        raise ConfigError(f"the reply's tool calls cannot be sent back: {exc}",
                          "only a reply whose tool-call arguments are a whole JSON object can be continued") from None


def record_turn(request: ChatRequest, record: CallRecord) -> Message:
    """The assistant turn of a call record's reply to ``request`` (:func:`reply_turn`), with its reasoning items and
    the provider and wire that produced them."""
    return reply_turn(request, record.text, record.tool_calls, record.reasoning_to_send(), record.origin)


def continued(request: ChatRequest, reply: Message, results: Mapping[str, str],
              follow_up: str | None = None) -> ChatRequest:
    """``request`` with ``reply`` and a tool turn per call of it (``results`` by call id, in the reply's order),
    then ``follow_up`` as a user turn. Every call needs a result, and every result a call."""
    ids = [call.id for call in reply.tool_calls]
    missing = [call_id for call_id in ids if call_id not in results]
    if missing:
        raise ConfigError(f"no result for the tool call{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                          "give each one: --tool-result ID=TEXT or --tool-result ID=@FILE")
    unknown = [call_id for call_id in results if call_id not in ids]
    if unknown:
        held = f"its calls are {', '.join(ids)}" if ids else "it made no tool call"
        raise ConfigError(f"the reply has no tool call {', '.join(unknown)}", f"{held} (see `workbench traces show`)")
    if not ids and not (follow_up and follow_up.strip()):
        raise ConfigError("the reply made no tool call: nothing to continue with",
                          "give the next user message as the prompt")
    turns = [reply, *(Message(role="tool", tool_call_id=call_id, content=results[call_id]) for call_id in ids)]
    if follow_up and follow_up.strip():
        turns.append(Message(role="user", content=follow_up))
    messages = (*request.messages, *turns)
    problem = tool_turn_problem(messages)
    if problem is not None:  # the reply reused a call id of the conversation
        raise ConfigError(f"the conversation cannot go on: message {problem[0] + 1}: {problem[1]}")
    return replace(request, messages=messages)


def traced_reply(call: Mapping[str, Any]) -> tuple[ChatRequest, Message]:
    """The request and the reply turn of a call of the trace log (as :meth:`TraceStore.get` returns it)."""
    payload = call.get("payload") or {}
    if not payload.get("request_json"):
        traced_request(call.get("id"), None, "continue")
    if call.get("status") != "ok":
        raise ConfigError(f"call {call.get('id')} failed: there is no reply to continue", "pick a call that ended ok")
    request = traced_request(call.get("id"), payload["request_json"], "continue")
    calls = json.loads(payload.get("tool_calls_json") or "[]")
    first = calls[0] if calls and isinstance(calls[0], dict) else {}
    return request, reply_turn(request, payload.get("response_text") or "", [
        ToolCall(c.get("id") or "", c.get("name") or "", [c.get("arguments") or ""], c.get("signature") or "")
        for c in calls], _traced_items(first, payload.get("reasoning_text") or ""), first.get("origin"))


def _traced_items(first: Mapping[str, Any], reasoning: str) -> tuple[ReasoningItem, ...]:
    """The reasoning items a traced reply keeps with its first tool call (``reasoning_items``); a trace written
    before them kept one Anthropic signature (``thinking_signature``) that signs the whole reasoning text."""
    if first.get("thinking_signature"):
        return (ReasoningItem(kind="thinking", text=reasoning, signature=first["thinking_signature"]),)
    try:
        return tuple(validated(ReasoningItem, item) for item in first.get("reasoning_items") or ())
    except ValidationError:
        return ()
