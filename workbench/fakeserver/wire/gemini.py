"""Gemini: ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse`` and ``:generateContent``.

Stream (``alt=sse``): ``data: {json}\\r\\n\\r\\n`` (CRLF, no ``[DONE]``), JSON written the Google way
(``": "`` after keys, ``,`` without space). One chunk per token with
``candidates[0].content.parts[{text}]`` (thought parts carry ``"thought": true``), ``role``
``model``, ``index`` 0 and cumulative ``usageMetadata`` (``promptTokenCount``,
``candidatesTokenCount``, ``totalTokenCount``, ``thoughtsTokenCount`` when reasoning); a last chunk
with an empty text part and ``finishReason`` ``STOP`` / ``MAX_TOKENS`` (with ``tools=N``, before it one
chunk whose parts are the N ``functionCall`` objects: ``name`` and the whole ``args``, the first part with a
``thoughtSignature`` as Gemini 3 sends it). Without ``alt=sse`` the
same chunks stream as one JSON array (``[{..}\\r\\n,{..}]``), as the real API does.

``:countTokens`` (:class:`GeminiCountWire`): ``{"contents": [...]}`` (a top-level
``systemInstruction`` is tolerated and counted) or ``{"generateContentRequest": {"model", "contents",
"systemInstruction"?, ...}}`` -> ``{"totalTokens": N, "promptTokensDetails": [{"modality": "TEXT",
"tokenCount": N}]}``, N being the ``promptTokenCount`` generateContent reports for the same
system instruction + contents. Giving both forms is a 400.

``GET /v1beta/models`` (:func:`models_list`: ``{"models": [Model, ...]}``) and ``GET /v1beta/models/{model}``
(:func:`model_info`: one ``Model``: ``name`` ``models/{model}``, ``baseModelId``, ``version``, ``displayName``,
``description``, ``inputTokenLimit``, ``outputTokenLimit``, ``supportedGenerationMethods``, sampling defaults).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

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
    content_text,
    jstr,
    new_id,
    optional_int,
    slot,
)
from workbench.fakeserver.wire.tools import tools_of

__all__ = ["GeminiCountWire", "GeminiWire"]

ACTION = ":action"  # params key the router uses for the method after the ':' in the path

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: (
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
        "valid authentication credential.",
    ),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: (
        "NOT_FOUND",
        "models/{model} is not found for API version v1beta, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods.",
    ),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more information on "
        "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}


def google_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ": "))


def model_info(name: str) -> dict[str, Any]:
    """The Models API's ``Model`` for ``name`` (with or without its ``models/`` prefix)."""
    base = name.removeprefix("models/")
    return {"name": f"models/{base}", "baseModelId": base, "version": "001", "displayName": base,
            "description": f"{base} (workbench fake server)", "inputTokenLimit": 1_048_576,
            "outputTokenLimit": 65_536, "supportedGenerationMethods": ["generateContent", "countTokens"],
            "temperature": 1.0, "maxTemperature": 2.0, "topP": 0.95, "topK": 64}


def models_list(names: Sequence[str]) -> dict[str, Any]:
    """The Models API's ``models.list`` answer for ``names``, all of one page (no ``nextPageToken``)."""
    return {"models": [model_info(name) for name in names]}


SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]
"""A ``refusal=1`` candidate's ratings: dangerous content blocked it."""


def cache_usage(gen: Generation) -> dict[str, Any]:
    """``cachedContentTokenCount`` (part of ``promptTokenCount``) and its modality breakdown, left out as
    Gemini leaves them out when nothing was read from a cache."""
    if not gen.cache_read:
        return {}
    return {"cachedContentTokenCount": gen.cache_read,
            "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": gen.cache_read}]}


def _finish_reason(gen: Generation) -> str:
    return "SAFETY" if gen.scenario.refusal else "MAX_TOKENS" if gen.truncated else "STOP"


class GeminiRenderer(StreamRenderer):
    def __init__(self, gen: Generation, sse: bool) -> None:
        super().__init__(gen)
        self.sse = sse
        self.first = True
        self.response_id = new_id("", 11)
        self.text_sent = 0
        self.thoughts_sent = 0
        usage: dict[str, Any] | None = None
        if gen.usage:
            usage = {
                "promptTokenCount": gen.input_tokens,
                "candidatesTokenCount": slot("c"),
                "totalTokenCount": slot("s"),
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": gen.input_tokens}],
            }
            if gen.reasoning_count:
                usage["thoughtsTokenCount"] = slot("h")
            usage.update(cache_usage(gen))
        self._usage = usage

        def chunk(part: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}}
            if finish:
                candidate["finishReason"] = finish
            candidate["index"] = 0
            out: dict[str, Any] = {"candidates": [candidate]}
            if usage is not None:
                out["usageMetadata"] = usage
            out["modelVersion"] = gen.model
            out["responseId"] = self.response_id
            return out

        self._chunk = chunk
        self._text = Template(chunk({"text": slot("t")}), google_json)
        self._thought = Template(chunk({"text": slot("t"), "thought": True}), google_json)

    def _frame(self, payload: bytes) -> bytes:
        if self.sse:
            return b"data: " + payload + b"\r\n\r\n"
        head = b"[" if self.first else b",\r\n"
        self.first = False
        return head + payload

    def _payload(self, template: Template, value: bytes) -> bytes:
        if self._usage is None:
            return template.render(value)
        total = str(self.gen.input_tokens + self.text_sent + self.thoughts_sent).encode()
        counts = [value, str(self.text_sent).encode(), total]
        if self.gen.reasoning_count:
            counts.append(str(self.thoughts_sent).encode())
        return template.render(*counts)

    def _render(self, template: Template, text: str) -> bytes:
        return self._frame(self._payload(template, jstr(text)))

    def reasoning_token(self, token: str) -> bytes:
        self.thoughts_sent += 1
        return self._render(self._thought, token)

    def text_token(self, token: str) -> bytes:
        self.text_sent += 1
        return self._render(self._text, token)

    def text_token_raw(self, value: bytes) -> bytes:
        self.text_sent += 1
        return self._frame(self._payload(self._text, value))

    def bad_container(self, token: str) -> bytes:
        self.text_sent += 1
        chunk = json.loads(self._payload(self._text, jstr(token)))
        chunk["candidates"] = "nope"
        return self._frame(google_json(chunk).encode())

    def tool_chunk(self) -> bytes:
        """One chunk holding every call as a ``functionCall`` part (Gemini sends whole calls)."""
        gen = self.gen
        chunk = self._chunk({})
        chunk["candidates"][0]["content"]["parts"] = call_parts(gen)
        self.text_sent += sum(c.tokens for c in gen.tool_calls)
        return self._frame(google_json(self._with_usage(chunk)).encode())

    def _with_usage(self, chunk: dict[str, Any]) -> dict[str, Any]:
        """``chunk`` with the usage so far (when the scenario reports usage)."""
        gen = self.gen
        if self._usage is not None:
            usage = dict(self._usage, candidatesTokenCount=self.text_sent,
                         totalTokenCount=gen.input_tokens + self.text_sent + self.thoughts_sent)
            if gen.reasoning_count:
                usage["thoughtsTokenCount"] = self.thoughts_sent
            chunk["usageMetadata"] = usage
        return chunk

    def refusal_chunk(self) -> bytes:
        """``refusal=1``'s last chunk: a candidate with no content, ``SAFETY``, the blocking rating marked."""
        chunk = self._chunk({})
        chunk["candidates"] = [{"finishReason": "SAFETY", "index": 0, "safetyRatings": SAFETY_RATINGS}]
        return self._frame(google_json(self._with_usage(chunk)).encode())

    def finish(self) -> list[bytes]:
        calls = [self.tool_chunk()] if self.gen.tool_calls else []
        if self.gen.scenario.refusal:
            event = self.refusal_chunk()
        else:
            event = self._render(Template(self._chunk({"text": slot("t")}, _finish_reason(self.gen)), google_json), "")
        return [*calls, event] if self.sse else [*calls, event + b"]"]

    def malformed(self) -> bytes:
        payload = self._text.render(*([b'" broken"'] + [b"0"] * (len(self._text.names) - 1)))
        return broken(b"data: " if self.sse else b",\r\n", payload, b"\r\n\r\n" if self.sse else b"")


def call_parts(gen: Generation) -> list[dict[str, Any]]:
    """The reply's calls as ``functionCall`` parts; the first carries a ``thoughtSignature`` (an opaque token, here
    derived from the call), which Gemini 3 wants back with the call (:mod:`workbench.fakeserver.wire.tool_turns`)."""
    parts: list[dict[str, Any]] = [{"functionCall": {"name": c.name, "args": c.args}} for c in gen.tool_calls]
    if parts:
        parts[0]["thoughtSignature"] = base64.b64encode(f"sig:{gen.tool_calls[0].id}".encode()).decode()
    return parts


class GeminiWire(WireFormat):
    name = "gemini"
    text_container = "candidates"
    stream_content_type = "text/event-stream"
    json_content_type = "application/json; charset=UTF-8"
    error_content_type = "application/json; charset=UTF-8"
    bad_json_message = "Invalid JSON payload received. Unexpected token."

    def parse(self, body: Mapping[str, Any], path_model: str | None, params: Mapping[str, str]) -> Prompt:
        if not path_model:
            raise WireError("Model name is required.", status=400)
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise WireError("* GenerateContentRequest.contents: contents is not specified\n")
        texts: list[str] = []
        system = body.get("systemInstruction", body.get("system_instruction"))
        if isinstance(system, Mapping):
            system_text = content_text(system.get("parts"))
            if system_text:
                texts.append(system_text)
        elif isinstance(system, str) and system:
            texts.append(system)
        last_user = ""
        for i, content in enumerate(contents):
            if not isinstance(content, Mapping):
                raise WireError(f"Invalid value at 'contents[{i}]': expected a Content object.")
            text = content_text(content.get("parts"))
            texts.append(text)
            if content.get("role", "user") == "user":
                last_user = text
        config = body.get("generationConfig", body.get("generation_config"))
        max_tokens = None
        if isinstance(config, Mapping):
            key = "maxOutputTokens" if "maxOutputTokens" in config else "max_output_tokens"
            max_tokens = optional_int(config, key, f"generation_config.{key}")
        stream = params.get(ACTION) == "streamGenerateContent"
        return Prompt(path_model, texts, last_user, max_tokens, stream, True, {"sse": params.get("alt") == "sse"},
                      tools=tools_of(self.name, body))

    def stream_headers(self, gen: Generation) -> list[tuple[str, str]]:
        sse = bool(gen.prompt.extra.get("sse"))
        return [("content-type", self.stream_content_type if sse else self.json_content_type)]

    def renderer(self, gen: Generation) -> StreamRenderer:
        return GeminiRenderer(gen, bool(gen.prompt.extra.get("sse")))

    def dump(self, obj: Any) -> bytes:
        return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode()

    def text_field(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        return body["candidates"][0]["content"]["parts"][-1], "text"

    def body(self, gen: Generation) -> bytes:
        parts: list[dict[str, Any]] = []
        if gen.reasoning_count:
            parts.append({"text": gen.reasoning(), "thought": True})
        parts.append({"text": gen.text()})
        parts.extend(call_parts(gen))
        out: dict[str, Any] = {
            "candidates": [
                {"content": {"parts": parts, "role": "model"}, "finishReason": _finish_reason(gen), "index": 0}
            ]
        }
        if gen.scenario.refusal:
            out["candidates"] = [{"finishReason": "SAFETY", "index": 0, "safetyRatings": SAFETY_RATINGS}]
        if gen.usage:
            usage: dict[str, Any] = {
                "promptTokenCount": gen.input_tokens,
                "candidatesTokenCount": gen.output_tokens - gen.reasoning_count,
                "totalTokenCount": gen.input_tokens + gen.output_tokens,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": gen.input_tokens}],
            }
            if gen.reasoning_count:
                usage["thoughtsTokenCount"] = gen.reasoning_count
            usage.update(cache_usage(gen))
            out["usageMetadata"] = usage
        out["modelVersion"] = gen.model
        out["responseId"] = new_id("", 11)
        return self.dump(out)

    def error_body(self, err: ErrorInfo) -> bytes:
        default = _ERRORS[400] if err.status < 500 else _ERRORS[500]
        rpc, message = _ERRORS.get(err.status, default)
        if err.message is not None:
            message = err.message
        error: dict[str, Any] = {"code": err.status, "message": message.replace("{model}", err.model), "status": rpc}
        if err.status == 429 and err.retry_after is not None:
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{err.retry_after}s"}
            ]
        return self.dump({"error": error})


_BOTH_FORMS = "* CountTokensRequest: only one of contents and generate_content_request may be set\n"


class GeminiCountWire(CountWire, GeminiWire):
    """``POST /v1beta/models/{model}:countTokens``."""

    name = "gemini_count"

    def parse(self, body: Mapping[str, Any], path_model: str | None, params: Mapping[str, str]) -> Prompt:
        inner = body.get("generateContentRequest", body.get("generate_content_request"))
        if inner is not None:
            if body.get("contents") is not None:
                raise WireError(_BOTH_FORMS)
            if not isinstance(inner, Mapping):
                raise WireError("Invalid value at 'generate_content_request': expected a GenerateContentRequest.")
            body = inner
        return super().parse(body, path_model, {})

    def count_body(self, prompt: Prompt) -> bytes:
        n = self.count(prompt)
        out = {"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]}
        return self.dump(out)
