"""OpenAI Chat Completions: ``POST /v1/chat/completions``.

Stream: ``data: {chunk}\\n\\n`` — a role chunk (``"content":""``), reasoning chunks
(``delta.reasoning_content``), content chunks, a finish chunk (``delta:{}``, ``finish_reason``
``stop``/``length``; ``tool_calls`` after the ``delta.tool_calls`` chunks of ``tools=N``: per call one
with ``index``, ``id``, ``type`` and ``function.name`` (empty arguments), then its arguments in
pieces), with ``stream_options.include_usage`` a ``choices:[]`` usage chunk (and ``"usage":null``
on every other chunk), then ``data: [DONE]\\n\\n``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.fakeserver.wire.base import (
    Generation,
    Prompt,
    StreamRenderer,
    Template,
    WireError,
    broken,
    compact,
    content_text,
    jstr,
    new_id,
    optional_int,
    slot,
)
from workbench.fakeserver.wire.openai_common import OpenAIWire
from workbench.fakeserver.wire.tools import fragments, tools_of

__all__ = ["OpenAIChatWire"]

FINGERPRINT = "fp_workbench"
DONE = b"data: [DONE]\n\n"


def chat_usage(gen: Generation) -> dict[str, Any]:
    return {
        "prompt_tokens": gen.input_tokens,
        "completion_tokens": gen.output_tokens,
        "total_tokens": gen.input_tokens + gen.output_tokens,
        "prompt_tokens_details": {"cached_tokens": gen.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": gen.reasoning_count,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def finish_reason(gen: Generation) -> str:
    return "tool_calls" if gen.tool_calls else "length" if gen.truncated else "stop"


class ChatRenderer(StreamRenderer):
    def __init__(self, gen: Generation) -> None:
        super().__init__(gen)
        self.chunk_id = new_id("chatcmpl-", 15)
        self.include_usage = gen.prompt.include_usage

        def chunk(delta: Any, finish: str | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": self.chunk_id,
                "object": "chat.completion.chunk",
                "created": gen.created,
                "model": gen.model,
                "service_tier": "default",
                "system_fingerprint": FINGERPRINT,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if self.include_usage:
                out["usage"] = None
            return out

        self._chunk = chunk
        text_field = "refusal" if gen.scenario.refusal else "content"
        self._content = Template(chunk({text_field: slot("t")}), prefix=b"data: ", suffix=b"\n\n")
        self._reasoning = Template(chunk({"reasoning_content": slot("t")}), prefix=b"data: ", suffix=b"\n\n")

    def _event(self, obj: Any) -> bytes:
        return b"data: " + compact(obj).encode() + b"\n\n"

    def start(self) -> list[bytes]:
        if self.gen.scenario.refusal:  # gpt-4o's refusal stream: content null, the refusal text on its own key
            return [self._event(self._chunk({"role": "assistant", "content": None, "refusal": ""}))]
        return [self._event(self._chunk({"role": "assistant", "content": "", "refusal": None}))]

    def reasoning_token(self, token: str) -> bytes:
        return self._reasoning.render(jstr(token))

    def text_token(self, token: str) -> bytes:
        return self._content.render(jstr(token))

    def text_token_raw(self, value: bytes) -> bytes:
        return self._content.render(value)

    def bad_container(self, token: str) -> bytes:
        return self._event({**self._chunk({"content": token}), "choices": "nope"})

    def tool_calls(self) -> list[bytes]:
        events = []
        for call in self.gen.tool_calls:
            events.append(self._event(self._chunk({"tool_calls": [{
                "index": call.index, "id": f"call_{call.id}", "type": "function",
                "function": {"name": call.name, "arguments": ""}}]})))
            events.extend(self._event(self._chunk({"tool_calls": [{"index": call.index,
                                                                   "function": {"arguments": piece}}]}))
                          for piece in fragments(call.arguments, self.gen.scenario.tool_deltas))
        return events

    def finish(self) -> list[bytes]:
        gen = self.gen
        events = [*self.tool_calls(), self._event(self._chunk({}, finish_reason(gen)))]
        if self.include_usage and gen.usage:
            last = self._chunk({})
            last["choices"] = []
            last["usage"] = chat_usage(gen)
            events.append(self._event(last))
        events.append(DONE)
        return events

    def malformed(self) -> bytes:
        return broken(b"data: ", self._content.render(jstr(" broken"))[6:-2], b"\n\n")


class OpenAIChatWire(OpenAIWire):
    name = "openai_chat"
    text_container = "choices"

    def parse(self, body: Mapping[str, Any], path_model: str | None, params: Mapping[str, str]) -> Prompt:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise WireError("you must provide a model parameter", None)
        messages = body.get("messages")
        if messages is None:
            raise WireError("Missing required parameter: 'messages'.", "messages", code="missing_required_parameter")
        if not isinstance(messages, list):
            raise WireError("Invalid type for 'messages': expected an array.", "messages", code="invalid_type")
        texts: list[str] = []
        last_user = ""
        for i, msg in enumerate(messages):
            if not isinstance(msg, Mapping) or not isinstance(msg.get("role"), str):
                raise WireError(f"Invalid value for 'messages[{i}]': expected an object with a role.", f"messages[{i}]")
            text = content_text(msg.get("content"))
            texts.append(text)
            if msg["role"] == "user":
                last_user = text
        max_tokens = optional_int(body, "max_completion_tokens")
        if max_tokens is None:
            max_tokens = optional_int(body, "max_tokens")
        options = body.get("stream_options")
        include_usage = isinstance(options, Mapping) and options.get("include_usage") is True
        fmt = body.get("response_format")
        json_reply = isinstance(fmt, Mapping) and fmt.get("type") in ("json_object", "json_schema")
        return Prompt(model, texts, last_user, max_tokens, body.get("stream") is True, include_usage,
                      tools=tools_of(self.name, body), json_reply=json_reply)

    def renderer(self, gen: Generation) -> StreamRenderer:
        return ChatRenderer(gen)

    def text_field(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        return body["choices"][0]["message"], "content"

    def body(self, gen: Generation) -> bytes:
        message: dict[str, Any] = {"role": "assistant", "content": gen.text(), "refusal": None, "annotations": []}
        if gen.scenario.refusal:
            message["content"], message["refusal"] = None, gen.text()
        if gen.reasoning_count:
            message["reasoning_content"] = gen.reasoning()
        if gen.tool_calls:
            message["content"] = message["content"] or None
            message["tool_calls"] = [{"id": f"call_{c.id}", "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments}} for c in gen.tool_calls]
        out: dict[str, Any] = {
            "id": new_id("chatcmpl-", 15),
            "object": "chat.completion",
            "created": gen.created,
            "model": gen.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason(gen)}],
        }
        if gen.usage:
            out["usage"] = chat_usage(gen)
        out["service_tier"] = "default"
        out["system_fingerprint"] = FINGERPRINT
        return compact(out).encode()
