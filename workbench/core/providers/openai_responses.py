"""OpenAI Responses API streaming (``/v1/responses``): typed events, usage on the terminal event.

Chosen per provider (the ``openai-responses`` provider, or a provider configured with this wire) for
models best used through it. ``reasoning`` items (their summary streamed as reasoning text) are kept with their
``encrypted_content`` (asked for with ``include``: the workbench sends ``store: false``) to be sent back in the
next turn of a tool loop. No ``[DONE]``: the stream ends after ``response.completed``,
``response.incomplete`` or ``response.failed``. Errors inside the stream come nested
(``{"type":"error","error":{...}}``) in real streams and flat in the documented schema: both are read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from workbench.core.events import (
    FinishEvent,
    FinishReason,
    ReasoningDelta,
    ReasoningItemDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from workbench.core.finish import finish_reason
from workbench.core.providers import attachments
from workbench.core.providers.base import WireParser, loads_object, reported_count, sampling, stream_error
from workbench.core.providers.openai_chat import OpenAIChatProvider
from workbench.core.providers.reasoning import responses_reasoning
from workbench.core.providers.tools import responses_tools
from workbench.core.providers.turns import responses_input
from workbench.core.request import ChatRequest
from workbench.core.sse import SSEMessage

_REFUSAL_EVENTS = frozenset({"response.refusal.delta", "response.refusal.done"})
_REASONING_EVENTS = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
_TOOL_EVENTS = frozenset({"response.output_item.added", "response.function_call_arguments.delta",
                          "response.function_call_arguments.done", "response.output_item.done"})
_ITEM_EVENTS = frozenset({"response.output_item.added", "response.output_item.done"})
_TERMINAL = frozenset({"response.completed", "response.incomplete"})


def responses_usage(raw: dict[str, Any]) -> Usage:
    in_details = raw.get("input_tokens_details") or {}
    out_details = raw.get("output_tokens_details") or {}
    return Usage(
        input_tokens=raw.get("input_tokens") or 0,
        output_tokens=raw.get("output_tokens") or 0,
        cache_read_tokens=reported_count(in_details, "cached_tokens"),
        cache_write_tokens=reported_count(in_details, "cache_write_tokens"),
        reasoning_tokens=out_details.get("reasoning_tokens") or 0,
    )


class ResponsesParser(WireParser):
    __slots__ = ("calls", "done", "reasoning", "refused")

    def __init__(self) -> None:
        self.done = False
        self.refused = False
        """A ``refusal`` content part came (``response.refusal.delta``/``.done``): the response's end (``completed``
        on the wire) is a refusal."""
        self.reasoning: dict[object, int] = {}
        """Each ``reasoning`` item by its ``output_index``: its reasoning item index."""
        self.calls: dict[object, list[Any]] = {}
        """Each ``function_call`` item by its ``output_index``: [its tool call index, arguments delta seen]."""

    def _reasoning_item(self, kind: str, data: dict[str, Any], at_ns: int) -> tuple[StreamEvent, ...]:
        """A ``reasoning`` item: begun by ``output_item.added`` (its id); its ``output_item.done`` holds the whole
        item: the summary and, when asked for (``include``), the ``encrypted_content`` sent back with it."""
        item, key = data["item"], data.get("output_index")
        index = self.reasoning.get(key)
        if index is None:
            index = self.reasoning[key] = len(self.reasoning)
        if kind == "response.output_item.added":
            return (ReasoningItemDelta(index, "reasoning", at_ns, id=item.get("id")),)
        summary = tuple(str(part.get("text") or "") for part in item.get("summary") or () if isinstance(part, dict))
        return (ReasoningItemDelta(index, "reasoning", at_ns, id=item.get("id"),
                                   data=item.get("encrypted_content") or None, summary=summary),)

    def _tool_call(self, kind: str, data: dict[str, Any], at_ns: int) -> tuple[StreamEvent, ...]:
        """``function_call`` items: begun by ``output_item.added`` (id, name), then arguments deltas; a
        ``.done`` without any delta before it carries the whole arguments, and so does the item's
        ``output_item.done`` when neither came (a compatible server that sends the item whole)."""
        key = data.get("output_index")
        if kind == "response.output_item.added":
            item = data.get("item") or {}
            if item.get("type") != "function_call":
                return ()
            self.calls[key] = [len(self.calls), bool(item.get("arguments"))]
            return (ToolCallDelta(len(self.calls) - 1, item.get("call_id") or item.get("id"), item.get("name"),
                                  item.get("arguments") or "", at_ns),)
        call = self.calls.get(key)
        if call is None:
            return ()
        if kind == "response.function_call_arguments.delta":
            call[1] = True
            delta = data.get("delta")
            return (ToolCallDelta(call[0], None, None, delta, at_ns),) if delta else ()
        if call[1]:  # response.function_call_arguments.done after its deltas
            return ()
        call[1] = True
        source = data.get("item") or {} if kind == "response.output_item.done" else data
        return (ToolCallDelta(call[0], None, None, source.get("arguments") or "", at_ns),)

    def feed(self, message: SSEMessage, at_ns: int) -> Iterable[StreamEvent]:
        if self.done:
            return ()
        data = loads_object(message.data)
        kind = data.get("type") or message.event
        if kind == "response.output_text.delta":
            delta = data.get("delta")
            return (TextDelta(delta, at_ns),) if delta else ()
        if kind in _REFUSAL_EVENTS:  # a refusal part: its deltas, or its whole text on .done when none came
            refused, self.refused = self.refused, True
            piece = data.get("delta") if kind == "response.refusal.delta" else None if refused else data.get("refusal")
            return (RefusalDelta(piece or "", at_ns),) if piece or not refused else ()
        if kind in _REASONING_EVENTS:
            delta = data.get("delta")
            return (ReasoningDelta(delta, at_ns, self.reasoning.get(data.get("output_index"))),) if delta else ()
        if kind in _ITEM_EVENTS and ((data.get("item") or {}).get("type") == "reasoning"):
            return self._reasoning_item(kind, data, at_ns)
        if kind in _TOOL_EVENTS:
            return self._tool_call(kind, data, at_ns)
        if kind in _TERMINAL:
            self.done = True
            response = data.get("response") or {}
            out: list[StreamEvent] = []
            if response.get("usage"):
                out.append(UsageEvent(responses_usage(response["usage"]), at_ns))
            raw = (response.get("incomplete_details") or {}).get("reason") or response.get("status") or "completed"
            reason = (FinishReason.CONTENT_FILTER if self.refused
                      else finish_reason("responses", raw, tool_calls=bool(self.calls)))
            out.append(FinishEvent(reason, raw, at_ns))
            return out
        if kind == "error" or kind == "response.failed":
            self.done = True
            nested = data.get("error") or (data.get("response") or {}).get("error")
            if nested:
                error_kind, error_message = nested.get("type") or nested.get("code"), nested.get("message")
            else:  # the documented flat shape: {"type": "error", "code": ..., "message": ...}
                error_kind, error_message = data.get("code"), data.get("message")
            return (stream_error(error_kind, str(error_message or "the response failed without a reason"), at_ns),)
        return ()


COUNT_FIELDS = ("model", "input", "instructions", "tools", "tool_choice", "reasoning", "text")
"""The Responses body's fields that ``POST /responses/input_tokens`` takes too."""


class OpenAIResponsesProvider(OpenAIChatProvider):
    def url(self, request: ChatRequest) -> str:
        return f"{self.endpoint.base_url}/responses"

    async def count_tokens(self, request: ChatRequest, *, raw: bool = False) -> int | None:
        """OpenAI's input token count (``POST /responses/input_tokens``) of the fields of :meth:`body` it takes
        (:data:`COUNT_FIELDS`: the input with its attachments and tool turns, instructions, tools, tool choice,
        reasoning); ``None`` for raw text, which it does not count."""
        if raw:
            return None
        body = {k: v for k, v in self.body(self.resolve(request)).items() if k in COUNT_FIELDS}
        return int((await self._post_json(f"{self.endpoint.base_url}/responses/input_tokens", body))["input_tokens"])

    def body(self, request: ChatRequest) -> dict[str, Any]:
        p = request.params
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "input": responses_input(request.messages, attachments.responses),
            "stream": True,
            "store": False,
            "max_output_tokens": p.max_tokens,
            **sampling(p, {"temperature": "temperature", "top_p": "top_p"}),  # no stop or seed here
        }
        if request.system:
            body["instructions"] = request.system
        if p.json_schema is not None:
            body["text"] = {"format": {"type": "json_schema", "name": "output", "schema": p.json_schema,
                                       "strict": True}}
        body.update(responses_tools(p))
        body.update(responses_reasoning(p))
        return body

    def parser(self) -> WireParser:
        return ResponsesParser()

