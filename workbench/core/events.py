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
    ERROR = "error"


@dataclass(slots=True)
class Usage:
    """Token usage normalised to the OpenTelemetry GenAI rules.

    ``input_tokens`` includes the cached-read and cache-write parts; ``output_tokens`` includes the
    reasoning part. The parts are kept so cost and cache hit ratio can be derived.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

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


@dataclass(slots=True)
class TextDelta:
    text: str
    at_ns: int


@dataclass(slots=True)
class ReasoningDelta:
    text: str
    at_ns: int


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of the ``index``-th tool call of the reply (counted from 0 in the order the calls began).

    ``id`` and ``name`` arrive once (usually with the first piece; ``None`` when this piece lacks them);
    ``arguments`` is the next fragment of the call's arguments, JSON text exactly as received (may be empty).
    """

    index: int
    id: str | None
    name: str | None
    arguments: str
    at_ns: int


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


StreamEvent = ResponseStart | TextDelta | ReasoningDelta | ToolCallDelta | UsageEvent | FinishEvent | ErrorEvent
