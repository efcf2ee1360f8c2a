"""Anthropic Messages streaming (``/v1/messages``).

Events are routed by name: ``message_start`` (input usage), ``content_block_delta`` (``text_delta``,
``thinking_delta``, ``input_json_delta`` of a ``tool_use`` block begun by ``content_block_start``; ``thinking``
and ``redacted_thinking`` blocks, anywhere among the tool calls, are reasoning items to send back with them),
``message_delta`` (stop reason and cumulative usage, merged over the input usage
of ``message_start``; a stream without it has its usage estimated),
``message_stop``; ``ping`` is skipped and ``error`` ends the stream. Anthropic's input tokens exclude
the cache parts, so they are added back to follow the OpenTelemetry rule (input includes cache).
Other blocks (server tools and their results, a model fallback, a compaction, redacted thinking) are shown as
provider blocks (:mod:`~workbench.core.providers.anthropic_blocks`); ``stop_reason: refusal`` brings the refusal's
``stop_details`` (category, explanation).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from workbench.core.events import (
    BlockDelta,
    FinishEvent,
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
from workbench.core.providers.anthropic_blocks import KNOWN, block_start, delta_text, refusal_details
from workbench.core.providers.base import HttpProvider, WireParser, loads_object, reported_count, sampling, stream_error
from workbench.core.providers.cache_control import anthropic_cache_control
from workbench.core.providers.reasoning import anthropic_max_tokens, anthropic_thinking
from workbench.core.providers.tools import anthropic_tools
from workbench.core.providers.turns import anthropic_turns
from workbench.core.request import ChatRequest
from workbench.core.sse import SSEMessage

API_VERSION = "2023-06-01"
_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _iterations(raw: Any) -> dict[str, int]:
    """A compaction's ``usage.iterations`` (one entry per sampling step: the compaction, then the message), summed
    field by field: the top-level counts leave the compaction step out, and every step is billed."""
    steps = [step for step in raw if isinstance(step, dict)] if isinstance(raw, list) else []
    return {name: sum(step.get(name) or 0 for step in steps)
            for name in _USAGE_FIELDS if any(step.get(name) is not None for step in steps)}


class AnthropicParser(WireParser):
    __slots__ = ("_usage", "done", "other_blocks", "thinking", "tool_blocks")

    def __init__(self) -> None:
        self.done = False
        self._usage: dict[str, int] = {}
        self.tool_blocks: dict[object, int] = {}
        """The ``tool_use`` content blocks: their tool call index by block index."""
        self.thinking: dict[object, int] = {}
        """The ``thinking`` and ``redacted_thinking`` blocks (interleaved between tool calls too): their reasoning
        item index by block index."""
        self.other_blocks: dict[object, int] = {}
        """Server-tool, fallback, compaction… blocks (:mod:`~workbench.core.providers.anthropic_blocks`): their
        provider block index by block index."""

    def _merge_usage(self, raw: dict[str, Any] | None, at_ns: int) -> tuple[StreamEvent, ...]:
        if not raw:
            return ()
        for name in _USAGE_FIELDS:
            if raw.get(name) is not None:
                self._usage[name] = raw[name]
        self._usage.update(_iterations(raw.get("iterations")))
        thinking = (raw.get("output_tokens_details") or {}).get("thinking_tokens")
        if thinking is not None:
            self._usage["thinking_tokens"] = thinking
        one_hour = reported_count(raw.get("cache_creation") or {}, "ephemeral_1h_input_tokens")
        if one_hour is not None:  # the writes made with a 1-hour TTL, priced at their own rate
            self._usage["cache_write_1h"] = one_hour
        u = self._usage
        cache_write = reported_count(u, "cache_creation_input_tokens")
        cache_read = reported_count(u, "cache_read_input_tokens")
        return (UsageEvent(Usage(
            input_tokens=u.get("input_tokens", 0) + (cache_write or 0) + (cache_read or 0),
            output_tokens=u.get("output_tokens", 0),
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            reasoning_tokens=u.get("thinking_tokens", 0),
            cache_write_1h_tokens=u.get("cache_write_1h"),
        ), at_ns),)

    def feed(self, message: SSEMessage, at_ns: int) -> Iterable[StreamEvent]:
        name = message.event
        if name == "ping" or self.done:
            return ()
        data = loads_object(message.data)
        name = name or data.get("type", "")
        if name == "content_block_delta":
            delta = data.get("delta") or {}
            kind = delta.get("type")
            if kind == "text_delta":
                text = delta.get("text")
                return (TextDelta(text, at_ns),) if text else ()
            if kind == "thinking_delta":
                thinking = delta.get("thinking")
                return (ReasoningDelta(thinking, at_ns, self.thinking.get(data.get("index"))),) if thinking else ()
            if kind == "signature_delta":  # signs the thinking block: wanted back with the tool calls after it
                signature = delta.get("signature")
                item = self.thinking.get(data.get("index"))
                if item is None:  # a signature for a block that did not start as thinking
                    item = self.thinking[data.get("index")] = len(self.thinking)
                return (ReasoningItemDelta(item, "thinking", at_ns, signature=signature),) if signature else ()
            other = self.other_blocks.get(data.get("index"))
            if other is not None:
                piece = delta_text(delta)
                return (BlockDelta(other, "", None, None, piece, at_ns),) if piece else ()
            if kind == "input_json_delta":
                partial = delta.get("partial_json")
                call = self.tool_blocks.get(data.get("index"))
                return (ToolCallDelta(call, None, None, partial, at_ns),) if partial and call is not None else ()
            return ()
        if name == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") in ("thinking", "redacted_thinking"):  # reasoning items, sent back after
                item = self.thinking[data.get("index")] = len(self.thinking)
                started = ReasoningItemDelta(item, block["type"], at_ns, data=block.get("data"),
                                             signature=block.get("signature") or None)
                if block["type"] == "thinking":
                    return (started,)
                other = self.other_blocks[data.get("index")] = len(self.other_blocks)  # shown as encrypted
                return (started, BlockDelta(other, *block_start(block), at_ns))
            if block.get("type") in KNOWN:
                if block.get("type") != "tool_use":
                    return ()
                call = self.tool_blocks[data.get("index")] = len(self.tool_blocks)
                return (ToolCallDelta(call, block.get("id"), block.get("name"), "", at_ns),)
            other = self.other_blocks[data.get("index")] = len(self.other_blocks)
            return (BlockDelta(other, *block_start(block), at_ns),)
        if name == "message_start":
            # Its output_tokens is a placeholder: usage is reported once message_delta brings the real count.
            self._merge_usage((data.get("message") or {}).get("usage"), at_ns)
            return ()
        if name == "message_delta":
            out = list(self._merge_usage(data.get("usage"), at_ns))
            raw = (data.get("delta") or {}).get("stop_reason")
            if raw == "refusal":  # its stop_details (category, explanation) are the refusal's
                explanation, category = refusal_details(data["delta"].get("stop_details"))
                out.append(RefusalDelta(explanation, at_ns, category))
            if raw:
                out.append(FinishEvent(finish_reason("anthropic", raw), raw, at_ns))
            return out
        if name == "message_stop":
            self.done = True
            return ()
        if name == "error":
            self.done = True
            error = data.get("error") or {}
            return (stream_error(error.get("type"), str(error.get("message")), at_ns),)
        return ()


COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config")
"""The Messages body's fields that ``count_tokens`` takes too (it refuses ``max_tokens``, ``stream`` and the
sampling parameters)."""


class AnthropicProvider(HttpProvider):
    models_path = "/v1/models"

    def url(self, request: ChatRequest) -> str:
        return f"{self.endpoint.base_url}/v1/messages"

    def headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self.endpoint.api_key:
            headers["x-api-key"] = self.endpoint.api_key
        return headers

    def body(self, request: ChatRequest) -> dict[str, Any]:
        p = request.params
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "max_tokens": p.max_tokens,
            "messages": anthropic_turns(request.messages, attachments.anthropic),
            "stream": True,
            **sampling(p, {"temperature": "temperature", "top_p": "top_p", "stop": "stop_sequences"}),  # no seed
        }
        if "temperature" in body:
            body["temperature"] = min(body["temperature"], 1.0)  # Anthropic's range is 0-1
        if request.system:
            body["system"] = request.system
        if p.json_schema is not None:
            body["output_config"] = {"format": {"type": "json_schema", "schema": p.json_schema}}
        body.update(anthropic_tools(p))
        body.update(anthropic_thinking(p, self.target))
        anthropic_cache_control(body, request)
        return body

    def resolve(self, request: ChatRequest) -> ChatRequest:
        """``max_tokens`` explicit, and above the thinking budget (:func:`anthropic_max_tokens`)."""
        return anthropic_max_tokens(super().resolve(request))

    def parser(self) -> WireParser:
        return AnthropicParser()

    async def count_tokens(self, request: ChatRequest, *, raw: bool = False) -> int | None:
        """``/v1/messages/count_tokens`` with the fields of the Messages body it takes (:data:`COUNT_FIELDS`): the
        turns with their attachments, tool calls and results and cache breakpoints, the system prompt, the tools,
        the tool choice and thinking, as :meth:`body` sends them."""
        body = {k: v for k, v in self.body(self.resolve(request)).items() if k in COUNT_FIELDS}
        reply = await self._post_json(f"{self.endpoint.base_url}/v1/messages/count_tokens", body)
        return int(reply["input_tokens"])
