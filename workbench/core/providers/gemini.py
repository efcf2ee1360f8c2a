"""Gemini ``streamGenerateContent?alt=sse``: CRLF-framed SSE, no ``[DONE]``, cumulative usage.

The stream ends with the chunk carrying ``finishReason`` followed by EOF, so the parser is done once
a finish reason arrived. An error ends it as a ``data:`` event or, when Gemini aborts a stream (overloaded, quota),
as a pretty-printed ``{"error": {...}}`` outside the SSE framing: both are the call's error. Thought parts
(``"thought": true``) are reasoning; parts carrying only a ``thoughtSignature`` are not content; a
``functionCall`` part is a whole tool call (its ``args`` object kept as compact JSON text), or a piece of one whose
arguments stream (:mod:`~workbench.core.providers.gemini_streamed_args`). Output tokens are
candidates + thoughts (both billed as output).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from workbench.core.events import (
    FinishEvent,
    FinishReason,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from workbench.core.finish import finish_reason
from workbench.core.providers import attachments
from workbench.core.providers.base import (
    HttpProvider,
    WireParser,
    loads_object,
    reported_count,
    sampling,
    several_choices,
    stream_error,
)
from workbench.core.providers.gemini_streamed_args import StreamedArguments, is_streamed
from workbench.core.providers.reasoning import gemini_levelled, gemini_thinking
from workbench.core.providers.tools import compact_json, gemini_tools
from workbench.core.providers.turns import gemini_contents
from workbench.core.request import ChatRequest
from workbench.core.sse import SSEMessage


def gemini_usage(raw: dict[str, Any]) -> Usage:
    thoughts = raw.get("thoughtsTokenCount") or 0
    return Usage(
        input_tokens=(raw.get("promptTokenCount") or 0) + (raw.get("toolUsePromptTokenCount") or 0),
        output_tokens=(raw.get("candidatesTokenCount") or 0) + thoughts,
        cache_read_tokens=reported_count(raw, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def _blocked_category(ratings: Any) -> str | None:
    """The safety category that blocked a candidate or a prompt (``safetyRatings[].blocked``), if one is named."""
    for rating in ratings or ():
        if isinstance(rating, dict) and rating.get("blocked"):
            return str(rating.get("category") or "") or None
    return None


class GeminiParser(WireParser):
    __slots__ = ("calls", "done", "streamed")
    bare_json = True  # a stream aborted mid-way ends with a pretty-printed {"error": ...} outside the framing

    def __init__(self) -> None:
        self.done = False
        self.calls = 0
        """Tool calls so far: whole ``functionCall`` parts and streamed calls begun."""
        self.streamed: tuple[int, StreamedArguments] | None = None
        """The streamed call being received (:mod:`~workbench.core.providers.gemini_streamed_args`): its index and
        its arguments so far."""

    def _call(self, part: dict[str, Any], call: dict[str, Any], at_ns: int) -> tuple[StreamEvent, ...]:
        """A ``functionCall`` part: a whole call, or a piece of a streamed one (its arguments given when it ends)."""
        streamed, named = is_streamed(call), bool(call.get("name"))
        out = list(self._end_streamed(at_ns)) if named or not streamed else []  # a call left open ends here
        if not streamed:
            if named or call.get("args") is not None:  # a whole call ({} only ended a streamed one)
                out.append(ToolCallDelta(self.calls, call.get("id"), call.get("name"),
                                         compact_json(call.get("args") or {}), at_ns, part.get("thoughtSignature")))
                self.calls += 1
            return tuple(out)
        if named or (self.streamed is None and "partialArgs" in call):  # a streamed call begins
            self.streamed = (self.calls, StreamedArguments())
            self.calls += 1
            out.append(ToolCallDelta(self.streamed[0], call.get("id"), call.get("name"), "", at_ns,
                                     part.get("thoughtSignature")))
        if self.streamed is not None:  # ({"willContinue": true} outside a call has nothing to add to)
            self.streamed[1].add(call.get("partialArgs"))
            if not call.get("willContinue"):  # its last piece
                out.extend(self._end_streamed(at_ns))
        return tuple(out)

    def _end_streamed(self, at_ns: int) -> tuple[StreamEvent, ...]:
        if self.streamed is None:
            return ()
        (index, arguments), self.streamed = self.streamed, None
        return (ToolCallDelta(index, None, None, compact_json(arguments.value), at_ns),)

    def feed(self, message: SSEMessage, at_ns: int) -> Iterable[StreamEvent]:
        chunk = loads_object(message.data)
        error = chunk.get("error")
        if error:  # a data: event, or JSON written outside the framing (a stream aborted after some chunks)
            self.done = True
            if not isinstance(error, dict):
                return (stream_error(None, str(error), at_ns),)
            return (stream_error(error.get("status"), str(error.get("message") or error.get("code")), at_ns),)
        out: list[StreamEvent] = []
        candidates = chunk.get("candidates") or ()
        if any(c.get("index", 0) for c in candidates):  # candidateCount > 1: never merged into the first
            self.done = True
            return (several_choices(at_ns),)
        for candidate in candidates[:1]:
            for part in (candidate.get("content") or {}).get("parts") or ():
                text = part.get("text")
                if text:
                    out.append(ReasoningDelta(text, at_ns) if part.get("thought") else TextDelta(text, at_ns))
                call = part.get("functionCall")
                if call or (call is not None and self.streamed is not None):  # {} ends a streamed call
                    out.extend(self._call(part, call, at_ns))
            raw = candidate.get("finishReason")
            if raw:
                self.done = True
                out.extend(self._end_streamed(at_ns))
                reason = finish_reason("gemini", raw, tool_calls=self.calls > 0)
                if reason is FinishReason.CONTENT_FILTER:  # SAFETY, PROHIBITED_CONTENT, BLOCKLIST, SPII…: a refusal
                    out.append(RefusalDelta(str(candidate.get("finishMessage") or ""), at_ns,
                                            _blocked_category(candidate.get("safetyRatings"))))
                if reason is FinishReason.ERROR:  # MALFORMED_FUNCTION_CALL…: the model made no valid tool call
                    out.append(stream_error(raw, str(candidate.get("finishMessage")
                                                     or "the model's tool call was not valid"), at_ns))
                else:
                    out.append(FinishEvent(reason, raw, at_ns))
        if chunk.get("usageMetadata"):
            out.append(UsageEvent(gemini_usage(chunk["usageMetadata"]), at_ns))
        feedback = chunk.get("promptFeedback") or {}
        if not candidates and feedback.get("blockReason"):  # the prompt was blocked: a refusal of the whole call
            self.done = True
            raw = feedback["blockReason"]
            out.append(RefusalDelta(str(feedback.get("blockReasonMessage") or ""), at_ns,
                                    _blocked_category(feedback.get("safetyRatings"))))
            out.append(FinishEvent(FinishReason.CONTENT_FILTER, raw, at_ns))
        return out


class GeminiProvider(HttpProvider):
    models_path = "/v1beta/models"
    models_field = "models"
    model_name_field = "name"

    def _model_url(self) -> str:
        return f"{self.endpoint.base_url}/v1beta/models/{quote(self.endpoint.model, safe='@=,.-_')}"

    def url(self, request: ChatRequest) -> str:
        return f"{self._model_url()}:streamGenerateContent?alt=sse"

    def headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.endpoint.api_key} if self.endpoint.api_key else {}

    def request_id(self, headers: Any) -> str | None:
        value = headers.get("x-request-id") or headers.get("x-goog-request-id")
        return str(value) if value else None

    def body(self, request: ChatRequest) -> dict[str, Any]:
        p = request.params
        config: dict[str, Any] = {
            "maxOutputTokens": p.max_tokens,
            **sampling(p, {"temperature": "temperature", "top_p": "topP", "stop": "stopSequences", "seed": "seed"}),
        }
        if p.json_schema is not None:
            config["responseMimeType"] = "application/json"
            config["responseJsonSchema"] = p.json_schema
        config.update(gemini_thinking(p, self.endpoint.model))
        body: dict[str, Any] = {
            "contents": gemini_contents(request.messages, attachments.gemini,
                                        placeholder=gemini_levelled(self.endpoint.model)),
            "generationConfig": config,
        }
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        body.update(gemini_tools(p))
        return body

    def parser(self) -> WireParser:
        return GeminiParser()

    async def count_tokens(self, request: ChatRequest, *, raw: bool = False) -> int | None:
        """``:countTokens`` of the whole ``generateContentRequest`` :meth:`body` makes (contents with their
        attachments and tool turns, system instruction, tools and tool config, generation config)."""
        inner = {"model": f"models/{self.endpoint.model}", **self.body(self.resolve(request))}
        reply = await self._post_json(f"{self._model_url()}:countTokens", {"generateContentRequest": inner})
        return int(reply["totalTokens"])
