"""Finish reasons of every provider, normalised; the raw value always travels beside the result.

A refusal reads ``content_filter`` on every wire, whoever refused: the model (OpenAI's ``refusal`` text, Anthropic's
``stop_reason: refusal``) or the provider's filter (OpenAI's ``content_filter``, Gemini's ``SAFETY``,
``PROHIBITED_CONTENT``, ``BLOCKLIST``, ``SPII``…, a blocked prompt); the record's ``refusal`` holds its text.
Anthropic's ``pause_turn`` (a server-tool turn the provider continues when asked again) is its own reason.
Gemini's failed tool calls (``MALFORMED_FUNCTION_CALL``, ``UNEXPECTED_TOOL_CALL``, ``TOO_MANY_TOOL_CALLS``: the model
produced no valid call) read ``error``: the wire adapter ends such a call in error, never ``ok``."""

from __future__ import annotations

from workbench.core.events import FinishReason

_STOP, _LENGTH, _FILTER, _TOOLS, _PAUSE, _ERROR = (
    FinishReason.STOP, FinishReason.LENGTH, FinishReason.CONTENT_FILTER, FinishReason.TOOL_CALLS,
    FinishReason.PAUSE_TURN, FinishReason.ERROR,
)

_TABLES: dict[str, dict[str, FinishReason]] = {
    "openai": {"stop": _STOP, "length": _LENGTH, "content_filter": _FILTER, "tool_calls": _TOOLS,
               "function_call": _TOOLS},
    "responses": {"completed": _STOP, "max_output_tokens": _LENGTH, "content_filter": _FILTER},
    "anthropic": {"end_turn": _STOP, "stop_sequence": _STOP, "pause_turn": _PAUSE, "max_tokens": _LENGTH,
                  "model_context_window_exceeded": _LENGTH, "tool_use": _TOOLS, "refusal": _FILTER},
    # Google's FinishReason enum: the provider withheld the reply (safety, recitation, an unsupported language, an
    # image's safety) → a refusal; the model failed to make a valid tool call → error; OTHER, NO_IMAGE, IMAGE_OTHER
    # and FINISH_REASON_UNSPECIFIED fall to ``stop`` with the raw value kept.
    "gemini": {"STOP": _STOP, "MAX_TOKENS": _LENGTH, "SAFETY": _FILTER, "RECITATION": _FILTER,
               "LANGUAGE": _FILTER, "BLOCKLIST": _FILTER, "PROHIBITED_CONTENT": _FILTER, "SPII": _FILTER,
               "IMAGE_SAFETY": _FILTER, "IMAGE_PROHIBITED_CONTENT": _FILTER, "IMAGE_RECITATION": _FILTER,
               "MALFORMED_FUNCTION_CALL": _ERROR, "UNEXPECTED_TOOL_CALL": _ERROR, "TOO_MANY_TOOL_CALLS": _ERROR},
    "ollama": {"stop": _STOP, "length": _LENGTH, "load": _STOP, "unload": _STOP},
}


def finish_reason(wire: str, raw: str, *, tool_calls: bool = False) -> FinishReason:
    """Map a provider's raw finish reason; anything unknown counts as ``stop`` (the raw value is kept).

    ``tool_calls``: the reply holds a tool call, so a normal end reads ``tool_calls`` (the Responses API,
    Gemini and Ollama end such a reply as any other: ``completed``, ``STOP``, ``stop``)."""
    reason = _TABLES[wire].get(raw, _STOP)
    return _TOOLS if tool_calls and reason is _STOP else reason
