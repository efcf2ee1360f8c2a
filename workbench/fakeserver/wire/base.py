"""What every wire module shares: the parsed prompt, the generation plan, the renderer interface,
byte templates for fast event rendering, and small request-parsing helpers.

A wire module only parses its request shape and renders bytes; pacing and fault injection live in
:mod:`workbench.fakeserver.playback`, routing and counters in :mod:`workbench.fakeserver.app`.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from workbench.fakeserver.fixed import new_id
from workbench.fakeserver.limits import LimitState
from workbench.fakeserver.scenario import Scenario
from workbench.fakeserver.text import count_input_tokens, iter_tokens
from workbench.fakeserver.tool_calls import FakeToolCall, ToolSpec, definition_tokens, plan_calls

__all__ = [
    "CountWire",
    "ErrorInfo",
    "Generation",
    "Prompt",
    "StreamRenderer",
    "Template",
    "WireError",
    "WireFormat",
    "broken",
    "compact",
    "content_text",
    "jstr",
    "new_id",
    "optional_int",
    "plan",
    "slot",
]


# --------------------------------------------------------------------------------------------- JSON
def compact(obj: Any) -> str:
    """Compact JSON with raw UTF-8 (how OpenAI, Anthropic and Ollama write their payloads)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


_jstr_cache: dict[str, bytes] = {}


def jstr(text: str) -> bytes:
    """A JSON string literal as UTF-8 bytes (memoised: reply tokens come from a small vocabulary)."""
    out = _jstr_cache.get(text)
    if out is None:
        out = json.dumps(text, ensure_ascii=False).encode()
        if len(_jstr_cache) < 4096:
            _jstr_cache[text] = out
    return out


def slot(name: str) -> str:
    """A placeholder for :class:`Template`; it replaces the whole JSON value, quotes included."""
    return f"\0{name}\0"


_SLOT_RE = re.compile(r'"\\u0000([A-Za-z_]+)\\u0000"')


class Template:
    """A JSON payload pre-rendered once, with slots filled per event by already-encoded bytes.

    ``Template({"delta": slot("d")}, prefix=b"data: ", suffix=b"\\n\\n").render(jstr("hi"))``.
    """

    __slots__ = ("_first", "_rest", "names")

    def __init__(
        self, obj: Any, dumps: Callable[[Any], str] = compact, prefix: bytes = b"", suffix: bytes = b""
    ) -> None:
        pieces = _SLOT_RE.split(dumps(obj))
        literals = [p.encode() for p in pieces[0::2]]
        literals[0] = prefix + literals[0]
        literals[-1] = literals[-1] + suffix
        self.names: tuple[str, ...] = tuple(pieces[1::2])
        self._first = literals[0]
        self._rest = tuple(literals[1:])

    def render(self, *values: bytes) -> bytes:
        if len(values) != len(self.names):
            raise TypeError(f"template needs {len(self.names)} values, got {len(values)}")
        if not values:
            return self._first
        if len(values) == 1:
            return self._first + values[0] + self._rest[0]
        parts = [self._first]
        for value, literal in zip(values, self._rest, strict=True):
            parts.append(value)
            parts.append(literal)
        return b"".join(parts)


# ------------------------------------------------------------------------------------------ requests
class WireError(Exception):
    """A request the real provider would reject with a 4xx (rendered in that provider's error body)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.code = code

    def info(self, model: str = "", request_id: str = "") -> ErrorInfo:
        return ErrorInfo(self.status, self.message, self.param, model, request_id, code=self.code)


@dataclass(slots=True)
class Prompt:
    """A request in provider-neutral terms."""

    model: str
    texts: list[str]  # system/instructions first (if any), then every message's text
    last_user: str
    max_tokens: int | None = None
    stream: bool = True
    include_usage: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    tools: list[ToolSpec] = field(default_factory=list)
    """The tools the request offers (:func:`workbench.fakeserver.wire.tools.tools_of`)."""
    attached_tokens: int = 0
    """The input tokens of the request's images and PDFs (:func:`workbench.fakeserver.wire.attachments.
    attached_tokens`), on top of its texts'."""
    answers_tools: bool = False
    """The history ends with tool results (:func:`workbench.fakeserver.wire.tool_turns.answers_tools`): the reply
    is text, so a tool loop ends."""
    reasoning_off: bool = False
    """The request turned reasoning off (:func:`workbench.fakeserver.wire.reasoning.reasoning_off`): none streams."""
    json_reply: bool = False
    """The request asks for JSON (OpenAI Chat's ``response_format`` ``json_object`` or ``json_schema``): with the
    scenario's ``json``, the reply text is ``{"answer": "<the reply's words>"}``, its braces on the first and last
    token."""


def content_text(content: Any) -> str:
    """Text of a message content: a string, a list of parts (text parts joined with a space) or ``None``."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        text = content.get("text")
        return text if isinstance(text, str) else ""
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return " ".join(texts)
    return ""


def optional_int(body: Mapping[str, Any], key: str, param: str | None = None) -> int | None:
    """An optional non-negative integer field (a float with an integral value is accepted)."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 0:
        raise WireError(f"Invalid '{param or key}': expected a non-negative integer, got {value!r}.", param or key)
    return int(value)


# -------------------------------------------------------------------------------------- generation
@dataclass(slots=True)
class Generation:
    """Everything a renderer needs to know about the reply it is rendering."""

    model: str  # as requested, echoed back in payloads
    scenario: Scenario
    prompt: Prompt
    request_id: str
    created: int  # unix seconds
    received_ns: int
    input_tokens: int
    reasoning_count: int
    text_count: int
    truncated: bool  # the max-tokens cap cut the reply
    tool_calls: tuple[FakeToolCall, ...] = ()
    cache_read: int = 0
    """Input tokens read from the prompt cache (scenario ``cache``, :mod:`workbench.fakeserver.prompt_cache`)."""
    cache_write: int = 0
    """Input tokens written to it (Anthropic breakpoints only)."""
    cache_ttl: str = "5m"
    """The longest ``ttl`` of the request's breakpoints: which ``cache_creation`` bucket the writes go to."""

    @property
    def usage(self) -> bool:
        return self.scenario.usage

    @property
    def output_tokens(self) -> int:
        return self.reasoning_count + self.text_count + sum(call.tokens for call in self.tool_calls)

    def text_tokens(self) -> Iterator[str]:
        tokens = iter_tokens(self.model, self.prompt.last_user, self.text_count, "text")
        return json_tokens(list(tokens)) if self.prompt.json_reply and self.scenario.json else tokens

    def reasoning_tokens(self) -> Iterator[str]:
        return iter_tokens(self.model, self.prompt.last_user, self.reasoning_count, "reasoning")

    def text(self) -> str:
        return "".join(self.text_tokens())

    def reasoning(self) -> str:
        return "".join(self.reasoning_tokens())


def json_tokens(tokens: list[str]) -> Iterator[str]:
    """``tokens`` as the JSON object ``{"answer": "..."}`` (a reply in JSON mode), as many tokens as before."""
    if not tokens:
        return iter(())
    tokens[0] = '{"answer": "' + tokens[0]
    tokens[-1] += '"}'
    return iter(tokens)


def plan(prompt: Prompt, scenario: Scenario, request_id: str, created: int, received_ns: int) -> Generation:
    """Apply the max-tokens cap to reasoning first, then to the text (tool calls are not cut). A reply that
    calls tools holds no text unless the scenario gives ``tokens``."""
    calls = (plan_calls(prompt.tools, scenario.tools, prompt.model, prompt.last_user)
             if scenario.tools and not prompt.answers_tools else ())
    reasoning = 0 if prompt.reasoning_off else scenario.reasoning
    text = 0 if calls and not any(key == "tokens" for key, _ in scenario.pairs) else scenario.tokens
    truncated = False
    cap = prompt.max_tokens
    if cap is not None and reasoning + text > cap:
        truncated = True
        reasoning = min(reasoning, cap)
        text = min(text, cap - reasoning)
    return Generation(
        model=prompt.model,
        scenario=scenario,
        prompt=prompt,
        request_id=request_id,
        created=created,
        received_ns=received_ns,
        input_tokens=count_input_tokens(prompt.texts) + prompt.attached_tokens + definition_tokens(prompt.tools),
        reasoning_count=reasoning,
        text_count=text,
        truncated=truncated,
        tool_calls=calls,
    )


# ------------------------------------------------------------------------------------------ renderers
class StreamRenderer(ABC):
    """Renders one streamed reply. Every method returns fully framed event bytes (SSE / NDJSON
    line); the playback loop wraps each event in one HTTP chunk. Call order:
    ``start``, [``reasoning_start``, ``reasoning_token``*, ``reasoning_end``], ``text_start``,
    ``text_token``*, ``text_end``, ``finish``. ``malformed`` may come after the first token;
    ``text_token_raw`` / ``bad_container`` stand in for a ``text_token`` (same counters)."""

    def __init__(self, gen: Generation) -> None:
        self.gen = gen

    def start(self) -> list[bytes]:
        return []

    def reasoning_start(self) -> list[bytes]:
        return []

    @abstractmethod
    def reasoning_token(self, token: str) -> bytes: ...

    def reasoning_end(self) -> list[bytes]:
        return []

    def text_start(self) -> list[bytes]:
        return []

    @abstractmethod
    def text_token(self, token: str) -> bytes: ...

    @abstractmethod
    def text_token_raw(self, value: bytes) -> bytes:
        """A text token's event with ``value`` (raw JSON bytes, e.g. ``b"42"``) as its text field (``bad_shape``)."""

    @abstractmethod
    def bad_container(self, token: str) -> bytes:
        """A text token's event whose container (``choices``, ``delta``, ...) is of the wrong type (``bad_shape``)."""

    def text_end(self) -> list[bytes]:
        return []

    @abstractmethod
    def finish(self) -> list[bytes]: ...

    @abstractmethod
    def malformed(self) -> bytes:
        """A broken event: correct framing around truncated JSON."""


@dataclass(slots=True)
class ErrorInfo:
    status: int
    message: str | None = None  # None: the provider's stock message for that status
    param: str | None = None
    model: str = ""
    request_id: str = ""
    retry_after: str | None = None
    code: str | None = None  # OpenAI's machine-readable code when not the stock one
    masked_key: str = "sk-fake"  # the presented key as OpenAI echoes it in a 401: its ends, stars between
    retry_after_ms: int | None = None  # the precise wait of a server-side rate limit (``retry-after-ms``)


def broken(prefix: bytes, payload: bytes, terminator: bytes) -> bytes:
    """A malformed event: the framing is right but the JSON is cut in half."""
    return prefix + payload[: max(1, len(payload) // 2)] + terminator


class WireFormat(ABC):
    """One provider's request parsing and response rendering."""

    name: ClassVar[str]
    stream_content_type: ClassVar[str] = "text/event-stream; charset=utf-8"
    json_content_type: ClassVar[str] = "application/json"
    error_content_type: ClassVar[str] = "application/json"
    bad_json_message: ClassVar[str] = "Invalid JSON body."
    bad_json_status: ClassVar[int] = 400
    text_container: ClassVar[str] = ""  # the body's top-level key holding the reply (``bad_shape=choices``)

    @abstractmethod
    def parse(self, body: Mapping[str, Any], path_model: str | None, params: Mapping[str, str]) -> Prompt:
        """Validate the decoded JSON body (raise :class:`WireError`)."""

    def new_request_id(self) -> str:
        return new_id("req_", 16)

    def headers(self, request_id: str) -> list[tuple[str, str]]:
        """Provider response headers sent with every answer (content-type excluded)."""
        return []

    def stream_headers(self, gen: Generation) -> list[tuple[str, str]]:
        return [("content-type", self.stream_content_type), *self.headers(gen.request_id)]

    def ratelimit_headers(self, state: LimitState) -> list[tuple[str, str]]:
        """The provider's rate-limit headers for the server's buckets, sent with every answer (none by default)."""
        return []

    @abstractmethod
    def renderer(self, gen: Generation) -> StreamRenderer: ...

    @abstractmethod
    def body(self, gen: Generation) -> bytes:
        """The non-streaming response body."""

    def dump(self, obj: Any) -> bytes:
        """JSON the way :meth:`body` writes it."""
        return compact(obj).encode()

    def text_field(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The object and key holding the visible text in a decoded :meth:`body`."""
        raise TypeError(f"{self.name} does not generate")

    @abstractmethod
    def error_body(self, err: ErrorInfo) -> bytes: ...

    def error_headers(self, err: ErrorInfo) -> list[tuple[str, str]]:
        out = [("content-type", self.error_content_type), *self.headers(err.request_id)]
        if err.retry_after is not None:
            out.append(("retry-after", err.retry_after))
        return out


class CountWire(WireFormat):
    """A token-counting endpoint: parses its request into a :class:`Prompt` and answers with a count.

    It never generates, so :meth:`renderer` and :meth:`body` are unused; the router answers with
    :meth:`count_body` (status 200, :attr:`json_content_type`, :meth:`headers`) instead, and logs
    :meth:`count`.
    """

    def count(self, prompt: Prompt) -> int:
        """The number the answer reports (by default the input tokens of the same content, tools included)."""
        return count_input_tokens(prompt.texts) + prompt.attached_tokens + definition_tokens(prompt.tools)

    @abstractmethod
    def count_body(self, prompt: Prompt) -> bytes: ...

    def renderer(self, gen: Generation) -> StreamRenderer:
        raise TypeError(f"{self.name} does not generate")

    def body(self, gen: Generation) -> bytes:
        raise TypeError(f"{self.name} does not generate")
