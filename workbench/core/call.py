"""One call to one target: its record (text, usage, finish, raw timing, error) and how it is collected.

A :class:`CallRecord` is filled in place on the network thread while the stream runs; other threads
(a UI) may read it at any time and see a consistent-enough snapshot (appends and attribute writes are
atomic under the GIL). Metrics are never stored: they are derived from the raw timestamps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from workbench.core.errors import ProviderError, WorkbenchError
from workbench.core.events import (
    ErrorEvent,
    FinishEvent,
    FinishReason,
    ReasoningDelta,
    ResponseStart,
    StreamEvent,
    TextDelta,
    Usage,
    UsageEvent,
)
from workbench.core.providers.base import Provider
from workbench.core.request import ChatRequest
from workbench.core.timing import CallTiming
from workbench.core.tokenizer import count_chat, count_text, encoding_name_for


@dataclass(slots=True)
class CallRecord:
    target: str
    request: ChatRequest
    text_parts: list[str] = field(default_factory=list)
    reasoning_parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    usage_estimated: bool = False
    finish: FinishReason | None = None
    finish_raw: str | None = None
    error: WorkbenchError | None = None
    request_id: str | None = None
    timing: CallTiming = field(default_factory=CallTiming)
    done: bool = False

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    @property
    def status(self) -> str:
        if not self.done:
            return "running"
        return "error" if self.error is not None else "ok"

    @property
    def output_tokens(self) -> int | None:
        return self.usage.output_tokens if self.usage else None

    @property
    def tokens_per_s(self) -> float | None:
        return self.timing.tokens_per_s(self.usage.output_tokens) if self.usage else None

    def update_from(self, other: CallRecord) -> None:
        """Take every field of ``other`` (a copy of this call finished elsewhere), keeping this object."""
        for f in fields(self):
            setattr(self, f.name, getattr(other, f.name))

    def fail(self, error: WorkbenchError) -> None:
        self.error = error
        self.finish = FinishReason.ERROR
        self.timing.end_ns = time.perf_counter_ns()
        self.done = True


def apply_event(record: CallRecord, event: StreamEvent) -> None:
    """Fold one stream event into the record (raw stamps, text, usage, finish)."""
    timing = record.timing
    if isinstance(event, TextDelta):
        if timing.first_content_ns is None:
            timing.first_content_ns = event.at_ns
        if timing.first_text_ns is None:
            timing.first_text_ns = event.at_ns
        timing.chunk_ns.append(event.at_ns)
        record.text_parts.append(event.text)
    elif isinstance(event, ReasoningDelta):
        if timing.first_content_ns is None:
            timing.first_content_ns = event.at_ns
        timing.chunk_ns.append(event.at_ns)
        record.reasoning_parts.append(event.text)
    elif isinstance(event, UsageEvent):
        record.usage = event.usage
    elif isinstance(event, FinishEvent):
        record.finish, record.finish_raw = event.reason, event.raw
    elif isinstance(event, ResponseStart):
        timing.started_ns, timing.sent_ns = event.started_ns, event.sent_ns
        timing.headers_ns, record.request_id = event.at_ns, event.request_id
        return
    elif isinstance(event, ErrorEvent):
        record.error = ProviderError(record.target, f"{event.kind}: {event.message}",
                                     "the provider failed mid-stream: retry")
        record.finish, record.finish_raw = FinishReason.ERROR, event.kind
    if timing.first_event_ns is None:
        timing.first_event_ns = getattr(event, "at_ns", None)


async def collect(
    provider: Provider,
    request: ChatRequest,
    record: CallRecord | None = None,
    *,
    estimate_usage: bool = True,
    on_event: Callable[[StreamEvent], None] | None = None,
) -> CallRecord:
    """Stream ``request`` through ``provider`` into ``record``; never raises for a failed call.

    Errors end up in ``record.error`` with the partial output kept. With ``estimate_usage`` a call whose
    provider sent no usage gets a tokenizer estimate (in a worker thread, off the network loop).
    ``on_event`` sees every event after it was applied (to mirror the record elsewhere).
    """
    record = record or CallRecord(provider.target, request)
    record.timing.started_ns = time.perf_counter_ns()  # refined by the provider's own stamps once sent
    try:
        async for event in provider.stream(request):
            apply_event(record, event)
            if on_event is not None:
                on_event(event)
    except WorkbenchError as exc:
        record.fail(exc)
    except asyncio.CancelledError:
        record.fail(ProviderError(record.target, "cancelled"))
        raise
    else:
        record.timing.end_ns = time.perf_counter_ns()
        record.done = True
        if record.error is not None:
            record.finish = FinishReason.ERROR
    if estimate_usage and record.usage is None:
        await asyncio.to_thread(estimate_usage_of, record)
    return record


def estimate_usage_of(record: CallRecord) -> None:
    """Fill a missing usage with tokenizer counts and flag it ``usage_estimated``."""
    if record.usage is not None:
        return
    provider, _, model = record.target.partition("/")
    encoding, _exact = encoding_name_for(provider, model)
    reasoning = count_text(record.reasoning, encoding) if record.reasoning_parts else 0
    record.usage = Usage(
        input_tokens=count_chat(record.request, encoding),
        output_tokens=count_text(record.text, encoding) + reasoning,
        reasoning_tokens=reasoning,
    )
    record.usage_estimated = True


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def summary(record: CallRecord) -> dict[str, object]:
    """The stable, machine-readable summary of a call (``workbench run --json`` prints one per target).

    Fields are only ever added, never renamed.
    """
    usage = record.usage
    tps = record.tokens_per_s
    return {
        "target": record.target,
        "text": record.text,
        "ttft_ms": _ms(record.timing.ttft_ms),
        "latency_ms": _ms(record.timing.latency_ms),
        "tokens_per_s": None if tps is None else round(tps, 2),
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "usage_estimated": record.usage_estimated,
        "finish_reason": record.finish.value if record.finish else None,
        "status": "error" if record.error is not None else "ok",
        "error": str(record.error) if record.error is not None else None,
    }
