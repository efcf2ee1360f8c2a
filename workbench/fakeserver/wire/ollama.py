"""Ollama: ``POST /api/chat`` (NDJSON, ``application/x-ndjson``).

One JSON object per line: ``{"model","created_at"(RFC3339Nano),"message":{"role":"assistant",
"content":tok},"done":false}`` (thinking tokens in ``message.thinking`` with empty content), then
``{"done":true,"done_reason":"stop"|"length","total_duration","load_duration","prompt_eval_count",
"prompt_eval_duration","eval_count","eval_duration"}`` (nanoseconds; with ``tools=N`` one line per
call before it, ``message.tool_calls: [{"function": {"index", "name", "arguments": {...}}}]``, the
arguments a whole object; with ``usage=0`` the counts and
durations are omitted, which Ollama's ``omitempty`` allows). ``"stream": false`` gives the final
object with the whole message. ``options.num_predict`` is the max-tokens cap (negative = none).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from workbench.fakeserver.fixed import FIXED_DURATION_NS, is_fixed, wall_ns
from workbench.fakeserver.wire.base import (
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
    slot,
)
from workbench.fakeserver.wire.tools import tools_of

__all__ = ["OllamaWire", "rfc3339_nano"]

_ERRORS: dict[int, str] = {
    400: "invalid request",
    401: "unauthorized",
    403: "forbidden",
    404: 'model "{model}" not found, try pulling it first',
    429: "too many requests: you have reached your usage limit, please try again later",
    500: "an error was encountered while running the model",
    502: "bad gateway: the cloud model could not be reached",
    503: "server busy, please try again.  maximum pending requests exceeded",
}

_stamp_cache: tuple[int, str] = (-1, "")


def rfc3339_nano(ns: int | None = None) -> str:
    """Go's ``time.RFC3339Nano`` in UTC, e.g. ``2023-08-04T19:22:45.499127Z`` (trailing zeros trimmed)."""
    global _stamp_cache
    ns = wall_ns() if ns is None else ns
    sec, frac = divmod(ns, 1_000_000_000)
    if _stamp_cache[0] != sec:
        _stamp_cache = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    digits = f"{frac:09d}".rstrip("0")
    return f"{_stamp_cache[1]}.{digits}Z" if digits else f"{_stamp_cache[1]}Z"


def _final(gen: Generation, message: dict[str, Any], first_ns: int | None, start_ns: int | None) -> dict[str, Any]:
    now = time.monotonic_ns()
    out: dict[str, Any] = {
        "model": gen.model,
        "created_at": rfc3339_nano(),
        "message": message,
        "done": True,
        "done_reason": "length" if gen.truncated else "stop",
    }
    if gen.usage:
        start = start_ns if start_ns is not None else gen.received_ns
        first = first_ns if first_ns is not None else now
        durations = (max(now - gen.received_ns, 1), max(start - gen.received_ns, 1), max(first - start, 1),
                     max(now - first, 1))
        if is_fixed():
            durations = (FIXED_DURATION_NS,) * 4
        out.update(
            total_duration=durations[0],
            load_duration=durations[1],
            prompt_eval_count=gen.input_tokens,
            prompt_eval_duration=durations[2],
            eval_count=gen.output_tokens,
            eval_duration=durations[3],
        )
    return out


class OllamaRenderer(StreamRenderer):
    def __init__(self, gen: Generation) -> None:
        super().__init__(gen)
        self.start_ns: int | None = None
        self.first_ns: int | None = None

        def line(message: dict[str, Any]) -> Template:
            obj = {"model": gen.model, "created_at": slot("c"), "message": message, "done": False}
            return Template(obj, suffix=b"\n")

        self._text = line({"role": "assistant", "content": slot("t")})
        self._thinking = line({"role": "assistant", "content": "", "thinking": slot("t")})

    def start(self) -> list[bytes]:
        self.start_ns = time.monotonic_ns()
        return []

    def _token(self, template: Template, value: bytes) -> bytes:
        if self.first_ns is None:
            self.first_ns = time.monotonic_ns()
        return template.render(b'"' + rfc3339_nano().encode() + b'"', value)

    def reasoning_token(self, token: str) -> bytes:
        return self._token(self._thinking, jstr(token))

    def text_token(self, token: str) -> bytes:
        return self._token(self._text, jstr(token))

    def text_token_raw(self, value: bytes) -> bytes:
        return self._token(self._text, value)

    def bad_container(self, token: str) -> bytes:
        if self.first_ns is None:
            self.first_ns = time.monotonic_ns()
        line = {"model": self.gen.model, "created_at": rfc3339_nano(), "message": "nope", "done": False}
        return compact(line).encode() + b"\n"

    def tool_lines(self) -> list[bytes]:
        if self.gen.tool_calls and self.first_ns is None:
            self.first_ns = time.monotonic_ns()
        return [compact({"model": self.gen.model, "created_at": rfc3339_nano(), "message": {
            "role": "assistant", "content": "", "tool_calls": [{"function": {
                "index": call.index, "name": call.name, "arguments": call.args}}]}, "done": False}).encode() + b"\n"
            for call in self.gen.tool_calls]

    def finish(self) -> list[bytes]:
        calls = self.tool_lines()
        final = _final(self.gen, {"role": "assistant", "content": ""}, self.first_ns, self.start_ns)
        return [*calls, compact(final).encode() + b"\n"]

    def malformed(self) -> bytes:
        return broken(b"", self._text.render(b'"' + rfc3339_nano().encode() + b'"', jstr(" broken"))[:-1], b"\n")


class OllamaWire(WireFormat):
    name = "ollama"
    text_container = "message"
    stream_content_type = "application/x-ndjson"
    json_content_type = "application/json; charset=utf-8"
    error_content_type = "application/json; charset=utf-8"
    bad_json_message = "invalid character looking for beginning of value"

    def parse(self, body: Mapping[str, Any], path_model: str | None, params: Mapping[str, str]) -> Prompt:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise WireError("model is required")
        messages = body.get("messages", [])
        if messages is None:
            messages = []
        if not isinstance(messages, list):
            raise WireError("json: cannot unmarshal messages into Go struct field ChatRequest.messages")
        texts: list[str] = []
        last_user = ""
        for msg in messages:
            if not isinstance(msg, Mapping):
                raise WireError("json: cannot unmarshal message into Go struct field ChatRequest.messages")
            text = content_text(msg.get("content"))
            texts.append(text)
            if msg.get("role") == "user":
                last_user = text
        max_tokens = None
        options = body.get("options")
        if isinstance(options, Mapping):
            value = options.get("num_predict")
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                max_tokens = value
        return Prompt(model, texts, last_user, max_tokens, body.get("stream") is not False,
                      tools=tools_of(self.name, body))

    def renderer(self, gen: Generation) -> StreamRenderer:
        return OllamaRenderer(gen)

    def text_field(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        return body["message"], "content"

    def body(self, gen: Generation) -> bytes:
        message: dict[str, Any] = {"role": "assistant", "content": gen.text()}
        if gen.reasoning_count:
            message["thinking"] = gen.reasoning()
        if gen.tool_calls:
            message["tool_calls"] = [{"function": {"index": c.index, "name": c.name, "arguments": c.args}}
                                     for c in gen.tool_calls]
        ttft = gen.received_ns + int(gen.scenario.ttft_ms * 1e6)
        return compact(_final(gen, message, ttft, gen.received_ns)).encode()

    def error_body(self, err: ErrorInfo) -> bytes:
        default = _ERRORS[400] if err.status < 500 else _ERRORS[500]
        message = err.message if err.message is not None else _ERRORS.get(err.status, default)
        return compact({"error": message.replace("{model}", err.model)}).encode()
