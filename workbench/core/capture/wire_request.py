"""A proxied request body read as a :class:`~workbench.core.request.ChatRequest`: the system prompt, the turns
(their text, their images and PDFs, an assistant turn's tool calls, the tool results), the tools and the tool
choice, and the sampling parameters workbench knows, so a captured call is stored, shown, replayed in the editor
and promoted to a test like a workbench call.

Tools become OpenAI's function format (Anthropic's ``input_schema``, Gemini's ``functionDeclarations`` and the
Responses API's flat tools translated); tool calls and results without ids (Gemini, Ollama) get ``call_N`` ids,
paired in order. Best effort, never raising: a part workbench has no field for (a remote image URL, a server tool)
is left out; a conversation it cannot hold (a tool result without its call) keeps its turns' text as plain
user/assistant turns.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from workbench.core.attachments import Attachment, attachment_from_bytes
from workbench.core.errors import ConfigError
from workbench.core.request import ChatRequest, Message, Params
from workbench.core.tool_specs import tool_choice_problem, tool_problem
from workbench.core.tool_turns import TurnToolCall
from workbench.core.validate import validated

_ROLES = {"user": "user", "assistant": "assistant", "model": "assistant", "tool": "tool", "function": "tool"}
_SYSTEM_ROLES = ("system", "developer")
_TEXT_TYPES = (None, "text", "input_text", "output_text")


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text of a list of parts (OpenAI, Anthropic, Gemini)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(text_of(part) for part in content)
    if isinstance(content, dict):
        if isinstance(content.get("text"), str) and content.get("type") in _TEXT_TYPES:
            return str(content["text"])
        if isinstance(content.get("content"), str | list):  # a tool result block
            return text_of(content["content"])
    return ""


@dataclass
class _Turn:
    role: str
    text: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    calls: list[TurnToolCall] = field(default_factory=list)
    """Tool calls; one sent without an id has :data:`_UNNUMBERED`, numbered with the conversation's calls."""
    results: list[tuple[str | None, str | None, str]] = field(default_factory=list)
    """Tool results: (call id or None, the tool's name or None, the result's text)."""


def _attachment(encoded: Any, index: int, name: Any = None) -> Attachment | None:
    """An attachment from base64 (or a ``data:`` URL); ``None`` for a remote URL or bytes workbench cannot attach."""
    if not isinstance(encoded, str):
        return None
    if encoded.startswith("data:"):
        head, _, encoded = encoded.partition(",")
        if not head.endswith(";base64"):
            return None
    elif "://" in encoded[:12]:
        return None
    try:
        data = base64.b64decode(encoded, validate=True)
        return attachment_from_bytes(data, name if isinstance(name, str) and name else f"attachment-{index + 1}")
    except (binascii.Error, ValueError, ConfigError):
        return None


_UNNUMBERED = "\x00"
"""The id of a call sent without one (Gemini, Ollama) until it is numbered (``call_N``)."""


def _call(call_id: Any, name: Any, arguments: Any) -> TurnToolCall | None:
    if isinstance(arguments, str) and not arguments.strip():
        arguments = "{}"
    try:
        return validated(TurnToolCall, {"id": str(call_id or "") or _UNNUMBERED, "name": str(name or ""),
                                        "arguments": arguments if isinstance(arguments, str | dict) else {}})
    except ValidationError:
        return None


def _read_part(part: Any, turn: _Turn) -> None:
    """One content part (any wire's) into ``turn``."""
    if not isinstance(part, dict):
        turn.text += text_of(part)
        return
    kind = part.get("type")
    index = len(turn.attachments)
    found: Attachment | None = None
    if kind in ("image_url", "input_image"):
        url = part.get("image_url")
        found = _attachment(url.get("url") if isinstance(url, dict) else url, index)
    elif kind in ("file", "input_file"):
        file: dict[str, Any] = part["file"] if isinstance(part.get("file"), dict) else part
        found = _attachment(file.get("file_data"), index, file.get("filename"))
    elif kind in ("image", "document"):
        source: dict[str, Any] = part["source"] if isinstance(part.get("source"), dict) else {}
        if source.get("type") == "base64":
            found = _attachment(source.get("data"), index, part.get("title"))
    elif isinstance(inline := part.get("inlineData") or part.get("inline_data"), dict):
        found = _attachment(inline.get("data"), index)
    elif kind == "tool_use":
        call = _call(part.get("id"), part.get("name"), part.get("input") or {})
        if call is not None:
            turn.calls.append(call)
    elif kind == "tool_result":
        turn.results.append((part.get("tool_use_id"), None, text_of(part.get("content", ""))))
    elif isinstance(part.get("functionCall"), dict):
        function = part["functionCall"]
        call = _call(function.get("id"), function.get("name"), function.get("args") or {})
        if call is not None:
            turn.calls.append(call)
    elif isinstance(part.get("functionResponse"), dict):
        response = part["functionResponse"]
        turn.results.append((response.get("id"), response.get("name"),
                             json.dumps(response.get("response"), ensure_ascii=False)))
    elif part.get("thought") is not True:
        turn.text += text_of(part)
    if found is not None:
        turn.attachments.append(found)


def _message_turn(item: dict[str, Any]) -> _Turn | None:
    """A chat message (OpenAI, Anthropic, Gemini, Ollama, a Responses message item) as a turn; ``None`` for a role
    workbench has no turn for."""
    role = str(item.get("role") or "user")
    if role not in _ROLES and role not in _SYSTEM_ROLES:
        return None
    turn = _Turn(_ROLES.get(role, role))
    content = item.get("content", item.get("parts"))
    for part in content if isinstance(content, list) else [content]:
        _read_part(part, turn)
    for encoded in item.get("images") or ():  # Ollama
        found = _attachment(encoded, len(turn.attachments))
        if found is not None:
            turn.attachments.append(found)
    for raw in item.get("tool_calls") or ():  # OpenAI, Ollama
        function = raw.get("function") if isinstance(raw, dict) else None
        if isinstance(function, dict):
            call = _call(raw.get("id"), function.get("name"), function.get("arguments") or {})
            if call is not None:
                turn.calls.append(call)
    if role == "tool":
        turn.results.append((item.get("tool_call_id"), item.get("tool_name") or item.get("name"), turn.text))
    return turn


def _responses_turns(raw: list[Any]) -> Iterator[_Turn]:
    """The Responses API's input items: messages, and function calls and their outputs."""
    for item in raw:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "function_call":
            call = _call(item.get("call_id"), item.get("name"), item.get("arguments") or "{}")
            if call is not None:
                yield _Turn("assistant", calls=[call])
        elif kind == "function_call_output":
            output = item.get("output")
            yield _Turn("tool", results=[(item.get("call_id"), None, output if isinstance(output, str)
                                          else text_of(output))])
        elif kind in (None, "message"):
            turn = _message_turn(item)
            if turn is not None:
                yield turn


def _messages(turns: list[_Turn]) -> tuple[list[str], list[Message]]:
    """System texts and the conversation: consecutive assistant turns merged (a Responses reply's text and calls),
    every call given an id, each tool result its call's."""
    system: list[str] = []
    out: list[Message] = []
    pending: list[TurnToolCall] = []
    numbered = 0
    for turn in turns:
        if turn.role in _SYSTEM_ROLES:
            system.append(turn.text)
            continue
        if turn.role == "assistant":
            calls = []
            for call in turn.calls:
                if call.id == _UNNUMBERED:
                    call = replace(call, id=f"call_{numbered}")
                numbered += 1
                calls.append(call)
            pending.extend(calls)
            last = out[-1] if out else None
            if last is not None and last.role == "assistant" and not turn.text and not last.tool_calls:
                out[-1] = replace(last, tool_calls=tuple(calls))
            elif last is not None and last.role == "assistant" and not turn.text:
                out[-1] = replace(last, tool_calls=last.tool_calls + tuple(calls))
            else:
                out.append(Message(role="assistant", content=turn.text, tool_calls=tuple(calls),
                                   attachments=tuple(turn.attachments)))
            continue
        for call_id, name, text in turn.results:
            match = next((c for c in pending if c.id == call_id), None) or next(
                (c for c in pending if name is None or c.name == name), None)
            if match is not None:
                pending.remove(match)
            out.append(Message(role="tool", content=text, tool_call_id=str(call_id or (match.id if match else ""))))
        if turn.role == "user" and (turn.text or turn.attachments or not turn.results):
            out.append(Message(role="user", content=turn.text, attachments=tuple(turn.attachments)))
    return system, out


def _function(name: Any, description: Any, parameters: Any) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if isinstance(description, str):
        function["description"] = description
    if isinstance(parameters, dict):
        function["parameters"] = parameters
    return {"type": "function", "function": function}


def _tools(wire: str, body: dict[str, Any]) -> tuple[tuple[dict[str, Any], ...], str | None]:
    """The request's tools in OpenAI's function format and its tool choice (a keyword or a tool's name); tools
    workbench cannot send (server tools, a malformed one) are left out."""
    raw: list[Any] = body["tools"] if isinstance(body.get("tools"), list) else []
    found: list[dict[str, Any]] = []
    for tool in raw:
        if not isinstance(tool, dict):
            continue
        if wire == "anthropic" and tool.get("type", "custom") == "custom":
            found.append(_function(tool.get("name"), tool.get("description"), tool.get("input_schema")))
        elif wire == "gemini":
            for declared in tool.get("functionDeclarations") or tool.get("function_declarations") or ():
                if isinstance(declared, dict):
                    found.append(_function(declared.get("name"), declared.get("description"),
                                           declared.get("parameters") or declared.get("parametersJsonSchema")))
        elif tool.get("type") == "function" and isinstance(tool.get("function"), dict):
            function = tool["function"]
            found.append(_function(function.get("name"), function.get("description"), function.get("parameters")))
        elif tool.get("type") == "function":  # the Responses API's flat function tool
            found.append(_function(tool.get("name"), tool.get("description"), tool.get("parameters")))
    tools: list[dict[str, Any]] = []
    for tool in found:
        if tool_problem([*tools, tool]) is None:
            tools.append(tool)
    choice = _tool_choice(wire, body)
    if choice is not None and tool_choice_problem(choice, tools) is not None:
        choice = None
    return tuple(tools), choice


def _tool_choice(wire: str, body: dict[str, Any]) -> str | None:
    choice = body.get("tool_choice")
    if wire == "gemini":
        config = (body.get("toolConfig") or body.get("tool_config") or {})
        calling = config.get("functionCallingConfig") or config.get("function_calling_config") or {} \
            if isinstance(config, dict) else {}
        mode = str(calling.get("mode") or "").lower() if isinstance(calling, dict) else ""
        names = calling.get("allowedFunctionNames") or calling.get("allowed_function_names") or []
        if mode == "any" and isinstance(names, list) and len(names) == 1:
            return str(names[0])
        return {"auto": "auto", "any": "required", "none": "none"}.get(mode)
    if isinstance(choice, str):
        return choice
    if not isinstance(choice, dict):
        return None
    if wire == "anthropic":
        kind = choice.get("type")
        return str(choice.get("name")) if kind == "tool" else {"auto": "auto", "any": "required",
                                                               "none": "none"}.get(str(kind))
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else choice.get("name")
    return str(name) if name else None


def _params(wire: str, body: dict[str, Any]) -> Params:
    """The sampling parameters, tools and tool choice; a value workbench would refuse is left out alone."""
    options: dict[str, Any] = body["options"] if isinstance(body.get("options"), dict) else {}
    config: dict[str, Any] = body["generationConfig"] if isinstance(body.get("generationConfig"), dict) else {}
    merged = {**config, **options, **body}
    stop = merged.get("stop", merged.get("stop_sequences", merged.get("stopSequences")))
    reasoning = body.get("reasoning")
    tools, choice = _tools(wire, body)
    fields: dict[str, Any] = {
        "temperature": merged.get("temperature"),
        "top_p": merged.get("top_p", merged.get("topP")),
        "max_tokens": merged.get("max_tokens") or merged.get("max_completion_tokens")
        or merged.get("max_output_tokens") or merged.get("maxOutputTokens") or merged.get("num_predict"),
        "seed": merged.get("seed"),
        "stop": (stop,) if isinstance(stop, str) else tuple(stop) if isinstance(stop, list) else None,
        "reasoning_effort": body.get("reasoning_effort") or (reasoning.get("effort") if isinstance(reasoning, dict)
                                                             else None),
        "tools": tools or None, "tool_choice": choice,
    }
    kept: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            continue
        try:
            validated(Params, {name: value})
        except ValidationError:
            continue
        kept[name] = value
    return validated(Params, kept)


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
    items = [item for item in raw if isinstance(item, dict)] if isinstance(raw, list) else []
    turns = list(_responses_turns(items)) if wire == "openai_responses" else [
        turn for item in items if (turn := _message_turn(item)) is not None]
    params = _params(wire, body)
    try:
        more, messages = _messages(turns)
        system_text = "\n\n".join(s for s in system + more if s) or None
        return ChatRequest(system=system_text, params=params, messages=tuple(messages))
    except ValueError:  # tool turns without their calls: their text as plain turns
        system_text = "\n\n".join(s for s in system + [t.text for t in turns if t.role in _SYSTEM_ROLES] if s) or None
        return ChatRequest(system=system_text, params=params, messages=tuple(
            Message(role="assistant" if t.role == "assistant" else "user",
                    content=t.text or "".join(text for _, _, text in t.results))
            for t in turns if t.role not in _SYSTEM_ROLES))


def json_body(content: bytes) -> dict[str, Any]:
    """The request's JSON object, or ``{}`` when it is not one."""
    try:
        value = json.loads(content) if content else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
