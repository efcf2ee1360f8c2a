"""Conversation turns that carry tool calls and their results: an assistant turn's calls (:class:`TurnToolCall`),
the rules a conversation holding them follows (:func:`tool_turn_problem`), and the small conversions every wire
needs (a call's arguments as an object, a result as a JSON object, consecutive results grouped).

A tool-result turn is a :class:`Turn` of role ``tool`` with ``tool_call_id``; it follows
the assistant turn whose call it answers, and every call of that turn is answered before the next other turn (the
rule OpenAI and Anthropic enforce with a 400).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from workbench.core.bounds import FieldError, check_text

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema


def _object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _arguments_text(value: Any) -> Any:
    """A call's ``arguments`` given as a mapping (a file's YAML) as compact JSON text."""
    if isinstance(value, Mapping) and isinstance(value.get("arguments"), Mapping):
        return {**value, "arguments": json.dumps(dict(value["arguments"]), separators=(",", ":"), ensure_ascii=False)}
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnToolCall:
    """One tool call of an assistant turn: its id, the tool's name and the arguments as JSON text (an object)."""

    __pydantic_config__: ClassVar[dict[str, str]] = {"extra": "forbid"}

    id: str
    name: str
    arguments: str = "{}"
    """The arguments object as JSON text, kept as written (a mapping given in a file is written as compact JSON)."""
    signature: str | None = None
    """The opaque token the provider sent with the call, sent back with it (Gemini's ``thoughtSignature``, which
    Gemini 3 requires)."""

    def __post_init__(self) -> None:
        check_text("id", self.id)
        check_text("name", self.name)
        if isinstance(self.arguments, Mapping):  # written in a file as a mapping
            object.__setattr__(self, "arguments", json.dumps(dict(self.arguments), separators=(",", ":"),
                                                             ensure_ascii=False))
        if _object(self.arguments) is None:
            shown = repr(self.arguments[:60])
            raise FieldError("arguments", self.arguments, f"{shown} are not a JSON object",
                             f"arguments {shown} are not a JSON object")

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[Any], handler: GetCoreSchemaHandler) -> CoreSchema:
        """Validated at an edge, ``arguments`` may be a mapping too (written as compact JSON text)."""
        from pydantic_core import core_schema

        return core_schema.no_info_before_validator_function(_arguments_text, handler(source))

    def arguments_object(self) -> dict[str, Any]:
        """The arguments as an object (Anthropic's ``input``, Gemini's ``args``, Ollama's ``arguments``)."""
        return _object(self.arguments) or {}


class Turn(Protocol):
    """What these rules read of a conversation turn (:class:`workbench.core.request.Message` is one)."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...

    @property
    def tool_calls(self) -> Sequence[TurnToolCall]: ...

    @property
    def tool_call_id(self) -> str | None: ...


T = TypeVar("T", bound=Turn)


def unnamed_call_id(messages: Sequence[Turn], index: int) -> str:
    """The id a reply's ``index``-th tool call gets when the wire sent none (Gemini and Ollama may not): ``call_N``,
    N counting the tool calls of the conversation before the reply from 0 (unique across rounds of calls)."""
    return f"call_{sum(len(m.tool_calls) for m in messages) + index}"


def result_object(content: str) -> dict[str, Any]:
    """A tool result as the JSON object Gemini's ``functionResponse.response`` must be: the result itself when it
    is a JSON object, else ``{"result": content}`` (the text as given)."""
    value = _object(content)
    return value if value is not None else {"result": content}


def tool_names(messages: Sequence[Turn]) -> dict[str, str]:
    """Each tool call's id → its tool's name (a result names its tool on Gemini and Ollama)."""
    return {call.id: call.name for message in messages for call in message.tool_calls}


def runs(messages: Sequence[T]) -> Iterator[tuple[bool, list[T]]]:
    """The messages in runs: ``(True, [tool results...])`` for consecutive tool-result turns (Anthropic and Gemini
    send them as one user turn), ``(False, [message])`` for every other turn."""
    results: list[T] = []
    for message in messages:
        if message.role == "tool":
            results.append(message)
            continue
        if results:
            yield True, results
            results = []
        yield False, [message]
    if results:
        yield True, results


def tool_turn_problem(messages: Sequence[Turn]) -> tuple[int, str] | None:
    """The first message (its index) that breaks the tool-turn rules, and why; ``None`` when there is none.

    A tool result answers a call of the assistant turn before it (only other results between); every call of
    an assistant turn is answered right after it, before any other turn; a call id is used once."""
    open_calls: dict[str, str] = {}
    opened_at = 0
    seen: set[str] = set()
    for i, message in enumerate(messages):
        if message.role == "tool":
            if message.tool_call_id not in open_calls:
                return i, f"the tool result for '{message.tool_call_id}' answers no tool call of the turn before it"
            del open_calls[message.tool_call_id]
            continue
        if open_calls:
            return opened_at, f"tool calls without a result: {', '.join(open_calls)}"
        for call in message.tool_calls:
            if call.id in seen:
                return i, f"the tool call id '{call.id}' is used twice"
            seen.add(call.id)
            open_calls[call.id] = call.name
        opened_at = i
    if open_calls:
        return opened_at, f"tool calls without a result: {', '.join(open_calls)}"
    return None


def turn_text(message: Turn) -> str:
    """What a turn's tokens are counted from: its text, then each tool call's name and arguments (a tool result's
    text is its content)."""
    if not message.tool_calls:
        return message.content
    return "\n".join([message.content, *(call.name + call.arguments for call in message.tool_calls)])
