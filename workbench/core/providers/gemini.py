"""Gemini ``streamGenerateContent?alt=sse``: CRLF-framed SSE, no ``[DONE]``, cumulative usage.

The stream ends with the chunk carrying ``finishReason`` followed by EOF, so the parser is done once
a finish reason arrived. Thought parts (``"thought": true``) are reasoning; parts carrying only a
``thoughtSignature`` are not content; a ``functionCall`` part is a whole tool call (its ``args`` object
kept as compact JSON text). Output tokens are candidates + thoughts (both billed as output).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from workbench.core.events import FinishEvent, ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta, Usage, UsageEvent
from workbench.core.finish import finish_reason
from workbench.core.providers.base import HttpProvider, WireParser, loads_object, sampling, stream_error
from workbench.core.providers.tools import compact_json, gemini_tools
from workbench.core.request import ChatRequest
from workbench.core.sse import SSEMessage


def gemini_usage(raw: dict[str, Any]) -> Usage:
    thoughts = raw.get("thoughtsTokenCount") or 0
    return Usage(
        input_tokens=(raw.get("promptTokenCount") or 0) + (raw.get("toolUsePromptTokenCount") or 0),
        output_tokens=(raw.get("candidatesTokenCount") or 0) + thoughts,
        cache_read_tokens=raw.get("cachedContentTokenCount") or 0,
        reasoning_tokens=thoughts,
    )


class GeminiParser(WireParser):
    __slots__ = ("calls", "done")

    def __init__(self) -> None:
        self.done = False
        self.calls = 0
        """``functionCall`` parts so far (each is a whole tool call)."""

    def feed(self, message: SSEMessage, at_ns: int) -> Iterable[StreamEvent]:
        chunk = loads_object(message.data)
        error = chunk.get("error")
        if error:
            self.done = True
            return (stream_error(error.get("status"), str(error.get("message")), at_ns),)
        out: list[StreamEvent] = []
        candidates = chunk.get("candidates") or ()
        for candidate in candidates[:1]:
            for part in (candidate.get("content") or {}).get("parts") or ():
                text = part.get("text")
                if text:
                    out.append(ReasoningDelta(text, at_ns) if part.get("thought") else TextDelta(text, at_ns))
                call = part.get("functionCall")
                if call:
                    out.append(ToolCallDelta(self.calls, call.get("id"), call.get("name"),
                                             compact_json(call.get("args") or {}), at_ns))
                    self.calls += 1
            raw = candidate.get("finishReason")
            if raw:
                self.done = True
                out.append(FinishEvent(finish_reason("gemini", raw, tool_calls=self.calls > 0), raw, at_ns))
        if chunk.get("usageMetadata"):
            out.append(UsageEvent(gemini_usage(chunk["usageMetadata"]), at_ns))
        if not candidates and (chunk.get("promptFeedback") or {}).get("blockReason"):
            self.done = True
            raw = chunk["promptFeedback"]["blockReason"]
            out.append(FinishEvent(finish_reason("gemini", "SAFETY"), raw, at_ns))
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
        body: dict[str, Any] = {
            "contents": [
                {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
                for m in request.messages
            ],
            "generationConfig": config,
        }
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        body.update(gemini_tools(p))
        return body

    def parser(self) -> WireParser:
        return GeminiParser()

    async def count_tokens(self, request: ChatRequest, *, raw: bool = False) -> int | None:
        body = self.body(self.resolve(request))
        inner = {"model": f"models/{self.endpoint.model}", "contents": body["contents"]}
        if "systemInstruction" in body:
            inner["systemInstruction"] = body["systemInstruction"]
        reply = await self._post_json(f"{self._model_url()}:countTokens", {"generateContentRequest": inner})
        return int(reply["totalTokens"])
