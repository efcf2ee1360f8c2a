"""Ollama's native ``/api/chat``: newline-delimited JSON, counts and durations on the last line.

Metric fields are omitted when zero, so a missing count reads as 0; a final line without any count
means the call's usage must be estimated. ``message.thinking`` is reasoning; each ``message.tool_calls``
entry is a whole tool call (its ``arguments`` object kept as compact JSON text).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from workbench.core.events import FinishEvent, ReasoningDelta, StreamEvent, ToolCallDelta, Usage, UsageEvent
from workbench.core.finish import finish_reason
from workbench.core.providers import attachments
from workbench.core.providers.base import HttpProvider, WireParser, sampling, stream_error
from workbench.core.providers.reasoning import ollama_think
from workbench.core.providers.think_tags import ThinkSplitter
from workbench.core.providers.tools import compact_json, ollama_tools
from workbench.core.providers.turns import ollama_messages
from workbench.core.request import ChatRequest


class OllamaParser(WireParser):
    __slots__ = ("calls", "done", "think")

    def __init__(self) -> None:
        self.done = False
        self.calls = 0
        """``message.tool_calls`` entries so far (each is a whole tool call)."""
        self.think = ThinkSplitter()
        """``<think>…</think>`` opening the content (a model whose thinking Ollama does not split out)."""

    def feed(self, value: Any, at_ns: int) -> Iterable[StreamEvent]:
        if self.done or not isinstance(value, dict):
            return ()
        if value.get("error"):
            self.done = True
            return (stream_error(None, str(value["error"]), at_ns),)
        out: list[StreamEvent] = []
        message = value.get("message") or {}
        if message.get("thinking"):
            out.append(ReasoningDelta(message["thinking"], at_ns))
        if message.get("content"):
            out.extend(self.think.feed(message["content"], at_ns))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            arguments = function.get("arguments")
            out.append(ToolCallDelta(self.calls, call.get("id"), function.get("name"),
                                     arguments if isinstance(arguments, str) else compact_json(arguments or {}), at_ns))
            self.calls += 1
        if value.get("done"):
            self.done = True
            out.extend(self.think.flush(at_ns))
            if "prompt_eval_count" in value or "eval_count" in value:
                out.append(UsageEvent(Usage(
                    input_tokens=value.get("prompt_eval_count") or 0,
                    output_tokens=value.get("eval_count") or 0,
                ), at_ns))
            raw = value.get("done_reason") or "stop"
            out.append(FinishEvent(finish_reason("ollama", raw, tool_calls=self.calls > 0), raw, at_ns))
        return out


class OllamaProvider(HttpProvider):
    decoding = "ndjson"
    models_path = "/api/tags"
    models_field = "models"
    model_name_field = "name"

    def url(self, request: ChatRequest) -> str:
        return f"{self.endpoint.base_url}/api/chat"

    def headers(self) -> dict[str, str]:
        key = self.endpoint.api_key
        return {"authorization": f"Bearer {key}"} if key else {}

    def body(self, request: ChatRequest) -> dict[str, Any]:
        attachments.check_attachments(request.messages, self.endpoint.wire, self.target)  # images only
        p = request.params
        options: dict[str, Any] = {"num_predict": p.max_tokens, **sampling(p)}
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": ([{"role": "system", "content": request.system}] if request.system else [])
            + ollama_messages(request.messages, attachments.ollama),
            "stream": True,
            "options": options,
        }
        if p.json_schema is not None:
            body["format"] = p.json_schema
        body.update(ollama_tools(p, self.target))
        body.update(ollama_think(p))
        return body

    def parser(self) -> WireParser:
        return OllamaParser()

    def not_found_hint(self) -> str:
        """Ollama answers 404 for a model it has not pulled."""
        return f"a model Ollama does not have yet: `ollama pull {self.endpoint.model}`"
