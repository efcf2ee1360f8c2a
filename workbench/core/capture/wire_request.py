"""A proxied request body read as a :class:`~workbench.core.request.ChatRequest`: the system prompt, the turns'
text and the sampling parameters workbench knows, so a captured call shows (and later replays) like a workbench
call. Best effort: a part workbench has no field for is left out; a conversation it cannot hold (tool turns it
cannot pair) keeps its turns' text as plain user/assistant turns."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from workbench.core.request import ChatRequest, Message, Params

_ROLES = {"user": "user", "assistant": "assistant", "model": "assistant", "tool": "tool"}
_SYSTEM_ROLES = ("system", "developer")


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text of a list of parts (OpenAI, Anthropic, Gemini)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(text_of(part) for part in content)
    if isinstance(content, dict):
        if isinstance(content.get("text"), str):
            return str(content["text"])
        if isinstance(content.get("content"), str | list):  # a tool result block
            return text_of(content["content"])
    return ""


def _turns(raw: list[Any]) -> tuple[list[str], list[tuple[str, str, str | None]]]:
    system: list[str] = []
    turns: list[tuple[str, str, str | None]] = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        role = str(item.get("role") or "user")
        text = text_of(item.get("content", item.get("parts")))
        if role in _SYSTEM_ROLES:
            system.append(text)
        elif role in _ROLES:
            call_id = item.get("tool_call_id")
            turns.append((_ROLES[role], text, str(call_id) if call_id is not None else None))
    return system, turns


def _params(body: dict[str, Any]) -> Params:
    options: dict[str, Any] = body["options"] if isinstance(body.get("options"), dict) else {}
    config: dict[str, Any] = body["generationConfig"] if isinstance(body.get("generationConfig"), dict) else {}
    merged = {**config, **options, **body}
    stop = merged.get("stop", merged.get("stop_sequences", merged.get("stopSequences")))
    fields: dict[str, Any] = {
        "temperature": merged.get("temperature"),
        "top_p": merged.get("top_p", merged.get("topP")),
        "max_tokens": merged.get("max_tokens") or merged.get("max_completion_tokens")
        or merged.get("max_output_tokens") or merged.get("maxOutputTokens") or merged.get("num_predict"),
        "seed": merged.get("seed"),
        "stop": (stop,) if isinstance(stop, str) else tuple(stop or ()),
    }
    try:
        return Params.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError:
        return Params()


def chat_request(wire: str, body: dict[str, Any]) -> ChatRequest:
    """The request ``body`` of a chat call on ``wire`` as a :class:`ChatRequest` (best effort, never raises)."""
    if wire == "gemini":
        raw: Any = body.get("contents") or []
        instruction = body.get("systemInstruction") or body.get("system_instruction")
        system = [text_of(instruction.get("parts"))] if isinstance(instruction, dict) else []
    elif wire == "openai_responses":
        raw = body.get("input") or []
        if isinstance(raw, str):
            raw = [{"role": "user", "content": raw}]
        system = [body["instructions"]] if isinstance(body.get("instructions"), str) else []
    else:
        raw = body.get("messages") or []
        system = [text_of(body["system"])] if body.get("system") else []
    more, turns = _turns(raw if isinstance(raw, list) else [])
    system_text = "\n\n".join(s for s in system + more if s) or None
    params = _params(body)
    try:
        return ChatRequest(system=system_text, params=params, messages=tuple(
            Message(role=role, content=text, tool_call_id=call_id if role == "tool" else None)  # type: ignore[arg-type]
            for role, text, call_id in turns))
    except ValidationError:  # tool turns without their calls: their text as plain turns
        return ChatRequest(system=system_text, params=params, messages=tuple(
            Message(role="assistant" if role == "assistant" else "user", content=text) for role, text, _ in turns))


def json_body(content: bytes) -> dict[str, Any]:
    """The request's JSON object, or ``{}`` when it is not one."""
    try:
        value = json.loads(content) if content else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
