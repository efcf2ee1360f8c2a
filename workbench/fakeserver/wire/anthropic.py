"""Anthropic Messages: ``POST /v1/messages``.

Stream: ``event: X\\ndata: {"type":"X",...}\\n\\n`` — message_start (input usage,
``output_tokens`` 1), [thinking block at index 0: content_block_start, thinking_delta*,
signature_delta, content_block_stop], text block (index 0, or 1 after thinking):
content_block_start, text_delta*, content_block_stop, [with ``tools=N`` one ``tool_use`` block per
call after it: content_block_start (``id``, ``name``, ``input: {}``), an empty ``input_json_delta``, the
arguments in pieces, content_block_stop; stop_reason ``tool_use``; with ``interleaved=1`` and thinking on, a
``redacted_thinking`` block and a signed ``thinking`` block between two calls], [with ``pause=1`` a
``server_tool_use`` block (``web_search``, its input in ``input_json_delta`` pieces) and its
``web_search_tool_result`` block; stop_reason
``pause_turn``], message_delta (stop_reason ``end_turn`` / ``max_tokens``, or ``refusal`` with ``stop_details``,
cumulative usage, with ``output_tokens_details.thinking_tokens`` after a thinking block), message_stop.
``event: ping\\ndata: {"type": "ping"}`` follows the first content_block_start. ``usage=0`` drops the usage
object from message_delta (message_start keeps it: the real API always sends it there).

With server-side rate limits every answer carries ``anthropic-ratelimit-{requests,tokens}-{limit,
remaining,reset}`` (reset: RFC 3339 UTC time when the bucket is full again, rounded up to the second).

``POST /v1/messages/count_tokens`` (:class:`AnthropicCountWire`): a Messages body without
``max_tokens`` / ``stream`` (other fields ignored) -> ``{"input_tokens": N}``, N being the ``input_tokens`` a
Messages call with the same ``system``, ``messages`` and ``tools`` reports without a cache.

``GET /v1/models`` with Anthropic's headers (``x-api-key`` or ``anthropic-version``): :func:`models_list`, the
Models API's page (``data`` of ``{"type": "model", "id", "display_name", "created_at", ...}``, ``has_more``,
``first_id``, ``last_id``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from workbench.fakeserver.limits import LimitState
from workbench.fakeserver.wire.base import (
    CountWire,
    ErrorInfo,
    Generation,
    Prompt,
    StreamRenderer,
    Template,
    WireError,
    WireFormat,
    broken,
    compact,
    content_text,
    jstr,
    new_id,
    optional_int,
    slot,
)
from workbench.fakeserver.wire.tool_turns import redacted_data, sign_thinking
from workbench.fakeserver.wire.tools import fragments, tools_of

__all__ = ["AnthropicCountWire", "AnthropicWire"]

PING = b'event: ping\ndata: {"type": "ping"}\n\n'

# status -> (error.type, message)
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: (
        "billing_error",
        "Your credit balance is too low to access the Anthropic API. "
        "Please go to Plans & Billing to upgrade or purchase credits.",
    ),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 30,000 input tokens per minute. "
        "For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers "
        "for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later.",
    ),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


def models_list(names: Sequence[str], created_at: str) -> dict[str, Any]:
    """The Models API's answer for ``names``, all of one page."""
    data = [{"type": "model", "id": name, "display_name": name, "created_at": created_at, "lifecycle": "active",
             "max_input_tokens": 200_000, "max_tokens": 64_000} for name in names]
    return {"data": data, "has_more": False, "first_id": names[0] if names else None,
            "last_id": names[-1] if names else None}


def _cache_usage(gen: Generation) -> dict[str, int]:
    """``input_tokens`` (what follows the cached prefix: Anthropic's excludes the cache) and the cache counts."""
    return {
        "input_tokens": gen.input_tokens - gen.cache_read - gen.cache_write,
        "cache_creation_input_tokens": gen.cache_write,
        "cache_read_input_tokens": gen.cache_read,
    }


def _thinking_usage(gen: Generation) -> dict[str, Any]:
    """``output_tokens_details.thinking_tokens`` when the reply thought (part of ``output_tokens``)."""
    return {"output_tokens_details": {"thinking_tokens": gen.reasoning_count}} if gen.reasoning_count else {}


def _usage(gen: Generation, output_tokens: int) -> dict[str, Any]:
    one_hour = gen.cache_write if gen.cache_ttl == "1h" else 0
    return {
        **_cache_usage(gen),
        "cache_creation": {"ephemeral_5m_input_tokens": gen.cache_write - one_hour,
                           "ephemeral_1h_input_tokens": one_hour},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _signature(gen: Generation) -> str:
    return sign_thinking(gen.reasoning())


INTERLEAVED_THINKING = "Now the next call."
"""The thinking between two tool calls of an ``interleaved=1`` reply (after a ``redacted_thinking`` block)."""


def _interleaved(gen: Generation, call: int) -> list[dict[str, Any]]:
    """``interleaved=1`` with thinking on: the blocks between call ``call`` and the next one (none after the last)."""
    if not (gen.scenario.interleaved and gen.reasoning_count) or call >= len(gen.tool_calls) - 1:
        return []
    return [{"type": "redacted_thinking", "data": redacted_data(call)},
            {"type": "thinking", "thinking": INTERLEAVED_THINKING, "signature": sign_thinking(INTERLEAVED_THINKING)}]


def _stop_reason(gen: Generation) -> str:
    if gen.scenario.refusal:
        return "refusal"
    if gen.scenario.pause:
        return "pause_turn"
    return "tool_use" if gen.tool_calls else "max_tokens" if gen.truncated else "end_turn"


REFUSAL_DETAILS = {"type": "refusal", "category": "cyber", "explanation": "This request was refused due to policy."}
"""``stop_details`` of a ``refusal=1`` reply (the shape of the Anthropic SDK's refusal recording)."""


def _stop_delta(gen: Generation) -> dict[str, Any]:
    """``message_delta.delta``: the stop reason, and a refusal's ``stop_details``."""
    delta: dict[str, Any] = {"stop_reason": _stop_reason(gen), "stop_sequence": None}
    if gen.scenario.refusal:
        delta["stop_details"] = REFUSAL_DETAILS
    return delta


def _server_search(gen: Generation) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A ``pause=1`` reply's ``server_tool_use`` block (its input empty: it streams), its
    ``web_search_tool_result`` block, and the input as JSON text."""
    tool_id = "srvtoolu_01" + hashlib.sha256(gen.prompt.last_user.encode()).hexdigest()[:22]
    query = compact({"query": gen.prompt.last_user[:80] or "workbench"})
    result = {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": [
        {"type": "web_search_result", "url": "https://example.com/", "title": "Example Domain",
         "encrypted_content": base64.b64encode(query.encode()).decode(), "page_age": None}]}
    return {"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {}}, result, query


def _message(gen: Generation, message_id: str, content: list[dict[str, Any]], stop: str | None) -> dict[str, Any]:
    return {
        "model": gen.model,
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {**_usage(gen, gen.output_tokens), **_thinking_usage(gen)} if stop else _usage(gen, 1),
    }


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + compact(payload).encode() + b"\n\n"


def _conversation(body: Mapping[str, Any]) -> tuple[list[str], str]:
    """The texts (system first, then every message) and the last user text of ``system`` + ``messages``."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise WireError(
            "messages: Field required" if messages is None else "messages: Input should be a valid list"
        )
    texts: list[str] = []
    system = body.get("system")
    if system is not None:
        if not isinstance(system, str | list):
            raise WireError("system: Input should be a valid string or a list of text blocks", "system")
        system_text = content_text(system)
        if system_text:
            texts.append(system_text)
    last_user = ""
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping) or msg.get("role") not in ("user", "assistant"):
            raise WireError(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        text = content_text(msg.get("content"))
        texts.append(text)
        if msg["role"] == "user":
            last_user = text
    return texts, last_user


class AnthropicRenderer(StreamRenderer):
    def __init__(self, gen: Generation) -> None:
        super().__init__(gen)
        self.message_id = new_id("msg_01", 11)
        self.text_index = 1 if gen.reasoning_count else 0
        self.after_tools = self.text_index + 1
        """The index of the first block after the tool calls (:meth:`tool_blocks` sets it)."""
        self.pinged = False

        def delta(index: int, kind: str, field: str) -> Template:
            return Template(
                {"type": "content_block_delta", "index": index, "delta": {"type": kind, field: slot("t")}},
                prefix=b"event: content_block_delta\ndata: ",
                suffix=b"\n\n",
            )

        self._thinking = delta(0, "thinking_delta", "thinking")
        self._text = delta(self.text_index, "text_delta", "text")

    def _block_start(self, index: int, block: dict[str, Any]) -> list[bytes]:
        events = [
            _event("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
        ]
        if not self.pinged:
            self.pinged = True
            events.append(PING)
        return events

    def start(self) -> list[bytes]:
        gen = self.gen
        return [_event("message_start", {"type": "message_start", "message": _message(gen, self.message_id, [], None)})]

    def reasoning_start(self) -> list[bytes]:
        return self._block_start(0, {"type": "thinking", "thinking": "", "signature": ""})

    def reasoning_token(self, token: str) -> bytes:
        return self._thinking.render(jstr(token))

    def reasoning_end(self) -> list[bytes]:
        signature = {"type": "signature_delta", "signature": _signature(self.gen)}
        return [
            _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": signature}),
            _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ]

    def text_start(self) -> list[bytes]:
        return self._block_start(self.text_index, {"type": "text", "text": ""})

    def text_token(self, token: str) -> bytes:
        return self._text.render(jstr(token))

    def text_token_raw(self, value: bytes) -> bytes:
        return self._text.render(value)

    def bad_container(self, token: str) -> bytes:
        return _event("content_block_delta", {"type": "content_block_delta", "index": self.text_index, "delta": "nope"})

    def text_end(self) -> list[bytes]:
        return [_event("content_block_stop", {"type": "content_block_stop", "index": self.text_index})]

    def tool_blocks(self) -> list[bytes]:
        """A ``tool_use`` block per call (with ``interleaved=1``, redacted and signed thinking between them)."""
        events: list[bytes] = []
        index = self.text_index
        for call in self.gen.tool_calls:
            index += 1
            events.extend(self._block_start(index, {"type": "tool_use", "id": f"toolu_01{call.id}", "name": call.name,
                                                    "input": {}}))
            for piece in ("", *fragments(call.arguments, self.gen.scenario.tool_deltas)):
                delta = {"type": "input_json_delta", "partial_json": piece}
                events.append(_event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                             "delta": delta}))
            events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
            for block in _interleaved(self.gen, call.index):
                index += 1
                events.extend(self._thinking_block(index, block))
        self.after_tools = index + 1
        return events

    def _thinking_block(self, index: int, block: dict[str, Any]) -> list[bytes]:
        """A whole ``redacted_thinking`` block, or a ``thinking`` block streamed: its text, then its signature."""
        if block["type"] == "redacted_thinking":
            return [*self._block_start(index, block), _event("content_block_stop", {"type": "content_block_stop",
                                                                                     "index": index})]
        deltas = ({"type": "thinking_delta", "thinking": block["thinking"]},
                  {"type": "signature_delta", "signature": block["signature"]})
        return [*self._block_start(index, {"type": "thinking", "thinking": "", "signature": ""}),
                *(_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                  for d in deltas),
                _event("content_block_stop", {"type": "content_block_stop", "index": index})]

    def server_blocks(self) -> list[bytes]:
        """``pause=1``: a web search the provider runs (its input streamed), and its result, whole."""
        use, result, query = _server_search(self.gen)
        index = self.after_tools
        events = self._block_start(index, use)
        pieces = ("", *fragments(query, self.gen.scenario.tool_deltas))
        events.extend(_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {
            "type": "input_json_delta", "partial_json": piece}}) for piece in pieces)
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.extend(self._block_start(index + 1, result))
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index + 1}))
        return events

    def finish(self) -> list[bytes]:
        gen = self.gen
        delta: dict[str, Any] = {"type": "message_delta", "delta": _stop_delta(gen)}
        if gen.usage:
            delta["usage"] = {**_cache_usage(gen), "output_tokens": gen.output_tokens, **_thinking_usage(gen)}
        blocks = [*self.tool_blocks(), *(self.server_blocks() if gen.scenario.pause else ())]
        return [*blocks, _event("message_delta", delta), _event("message_stop", {"type": "message_stop"})]

    def malformed(self) -> bytes:
        prefix = b"event: content_block_delta\ndata: "
        return broken(prefix, self._text.render(jstr(" broken"))[len(prefix) : -2], b"\n\n")


class AnthropicWire(WireFormat):
    name = "anthropic"
    text_container = "content"
    bad_json_message = "There was an error parsing the body of your request: the body is not valid JSON."

    def new_request_id(self) -> str:
        return new_id("req_011C", 11)

    def headers(self, request_id: str) -> list[tuple[str, str]]:
        return [("request-id", request_id), ("anthropic-organization-id", "00000000-0000-4000-8000-00000000fa4e")]

    def ratelimit_headers(self, state: LimitState) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        now = time.time()
        for kind, bucket in (("requests", state.requests), ("tokens", state.tokens)):
            if bucket is not None:
                reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(now + bucket.reset_s)))
                out.append((f"anthropic-ratelimit-{kind}-limit", bucket.limit_text))
                out.append((f"anthropic-ratelimit-{kind}-remaining", str(bucket.remaining)))
                out.append((f"anthropic-ratelimit-{kind}-reset", reset))
        return out

    def parse(self, body: Mapping[str, Any], path_model: str | None, params: Mapping[str, str]) -> Prompt:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise WireError("model: Field required", "model")
        if body.get("max_tokens") is None:
            raise WireError("max_tokens: Field required", "max_tokens")
        max_tokens = optional_int(body, "max_tokens")
        texts, last_user = _conversation(body)
        return Prompt(model, texts, last_user, max_tokens, body.get("stream") is True, tools=tools_of(self.name, body))

    def renderer(self, gen: Generation) -> StreamRenderer:
        return AnthropicRenderer(gen)

    def text_field(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        return body["content"][-1], "text"

    def body(self, gen: Generation) -> bytes:
        content: list[dict[str, Any]] = []
        if gen.reasoning_count:
            content.append({"type": "thinking", "thinking": gen.reasoning(), "signature": _signature(gen)})
        content.append({"type": "text", "text": gen.text()})
        for c in gen.tool_calls:
            content.append({"type": "tool_use", "id": f"toolu_01{c.id}", "name": c.name, "input": c.args})
            content.extend(_interleaved(gen, c.index))
        if gen.scenario.pause:
            use, result, query = _server_search(gen)
            content += [{**use, "input": json.loads(query)}, result]
        message = _message(gen, new_id("msg_01", 11), content, _stop_reason(gen))
        if gen.scenario.refusal:
            message["stop_details"] = REFUSAL_DETAILS
        if not gen.usage:
            del message["usage"]
        return compact(message).encode()

    def error_body(self, err: ErrorInfo) -> bytes:
        default = _ERRORS[400] if err.status < 500 else _ERRORS[500]
        etype, message = _ERRORS.get(err.status, default)
        if err.message is not None:
            message = err.message
        message = message.replace("{model}", err.model)
        return compact(
            {"type": "error", "error": {"type": etype, "message": message}, "request_id": err.request_id}
        ).encode()


class AnthropicCountWire(CountWire, AnthropicWire):
    """``POST /v1/messages/count_tokens``."""

    name = "anthropic_count"

    def parse(self, body: Mapping[str, Any], path_model: str | None, params: Mapping[str, str]) -> Prompt:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise WireError("model: Field required", "model")
        texts, last_user = _conversation(body)
        return Prompt(model, texts, last_user, None, False, tools=tools_of(self.name, body))

    def count_body(self, prompt: Prompt) -> bytes:
        return compact({"input_tokens": self.count(prompt)}).encode()
