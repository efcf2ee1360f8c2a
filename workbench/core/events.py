"""Stream events every provider adapter yields, and the normalised usage and finish reason they carry.

Plain slotted dataclasses: one is created per streamed chunk, so they must be cheap.
Every event carries ``at_ns``: the ``time.perf_counter_ns()`` at which the bytes that produced it
arrived from the network (all events decoded from one network read share that instant).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FinishReason(StrEnum):
    """Finish reasons, normalised across providers (the raw value is kept beside it)."""

    STOP = "stop"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"
    TOOL_CALLS = "tool_calls"
    PAUSE_TURN = "pause_turn"
    """Anthropic ``pause_turn``: a server-tool turn the provider will continue when the request is sent again."""
    ERROR = "error"


@dataclass(slots=True)
class Usage:
    """Token usage normalised to the OpenTelemetry GenAI rules.

    ``input_tokens`` includes the cached-read and cache-write parts; ``output_tokens`` includes the
    reasoning part. The parts are kept so cost and cache hit ratio can be derived. A cache part is
    ``None`` when the provider did not say (no such field), ``0`` only when it said 0.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int | None = None
    """The part of ``cache_write_tokens`` written with a 1-hour TTL (Anthropic's
    ``cache_creation.ephemeral_1h_input_tokens``), priced at the 1-hour write rate; ``None``: not reported."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class ResponseStart:
    """The HTTP response headers arrived (status 2xx).

    ``started_ns``: the request was handed to the HTTP client (before any pool wait or connect);
    ``sent_ns``: its first byte was written to an open connection; ``at_ns``: the headers arrived.
    """

    started_ns: int
    sent_ns: int
    at_ns: int
    request_id: str | None = None
    rate_limits: dict[str, str] = field(default_factory=dict)
    """The provider's rate-limit headers (``x-ratelimit-*``, ``anthropic-ratelimit-*``), if any."""
    origin: str | None = None
    """The provider and wire that answer (:func:`~workbench.core.reasoning_items.origin`)."""


@dataclass(slots=True)
class TextDelta:
    text: str
    at_ns: int


@dataclass(slots=True)
class ReasoningDelta:
    """A piece of the reply's reasoning; ``item``: the reasoning item it belongs to (:class:`ReasoningItemDelta`),
    when the wire sends its reasoning as items to be sent back."""

    text: str
    at_ns: int
    item: int | None = None


@dataclass(slots=True)
class ReasoningItemDelta:
    """The ``index``-th reasoning item of the reply (counted from 0 as they began) begins, or gets its opaque parts:
    an Anthropic ``thinking`` block's ``signature``, a ``redacted_thinking`` block's ``data``, a Responses
    ``reasoning`` item's ``id``, ``summary`` and ``encrypted_content`` (as ``data``). Fields left ``None`` are not
    in this piece. Kept to be sent back (:mod:`workbench.core.reasoning_items`), never shown."""

    index: int
    kind: str
    at_ns: int
    id: str | None = None
    data: str | None = None
    signature: str | None = None
    summary: tuple[str, ...] | None = None


@dataclass(slots=True)
class RefusalDelta:
    """The model refused (or the provider's filter blocked the reply): a piece of the refusal's text (may be
    empty: a refusal without words), and its ``category`` where the provider names one (Anthropic's
    ``stop_details.category``, Gemini's blocked safety category)."""

    text: str
    at_ns: int
    category: str | None = None


@dataclass(slots=True)
class BlockDelta:
    """A piece of the ``index``-th provider block of the reply that is neither text, reasoning nor a tool call
    of the user's (Anthropic ``server_tool_use``, ``web_search_tool_result``, ``fallback``, ``compaction``,
    ``redacted_thinking``…): ``kind`` is the block's type as sent, ``id``/``name`` arrive once, ``text`` is the
    next piece of its content as readable text (a server tool's input JSON, a result, a summary)."""

    index: int
    kind: str
    id: str | None
    name: str | None
    text: str
    at_ns: int


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of the ``index``-th tool call of the reply (counted from 0 in the order the calls began).

    ``id`` and ``name`` arrive once (usually with the first piece; ``None`` when this piece lacks them);
    ``arguments`` is the next fragment of the call's arguments, JSON text exactly as received (may be empty);
    ``signature`` is an opaque token the provider wants back with the call when the conversation goes on
    (Gemini's ``thoughtSignature``).
    """

    index: int
    id: str | None
    name: str | None
    arguments: str
    at_ns: int
    signature: str | None = None


@dataclass(slots=True)
class UsageEvent:
    """Usage as the provider reported it so far; a later event replaces an earlier one."""

    usage: Usage
    at_ns: int


@dataclass(slots=True)
class FinishEvent:
    reason: FinishReason
    raw: str | None
    at_ns: int


@dataclass(slots=True)
class ErrorEvent:
    """An error the provider reported inside a stream that had already started (HTTP 200)."""

    kind: str
    message: str
    at_ns: int
    details: dict[str, object] = field(default_factory=dict)


StreamEvent = (ResponseStart | TextDelta | ReasoningDelta | ReasoningItemDelta | ToolCallDelta | RefusalDelta
               | BlockDelta | UsageEvent | FinishEvent | ErrorEvent)
