"""One call to one target: its record (text, usage, finish, raw timing, error) and how it is collected.

A :class:`CallRecord` is filled in place on the network thread while the stream runs; other threads
(a UI) may read it at any time and see a consistent-enough snapshot (appends and attribute writes are
atomic under the GIL). Metrics are never stored: they are derived from the raw timestamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal

from workbench.core.errors import (
    CallCancelledError,
    ProviderStreamError,
    ProviderTimeoutError,
    SeveralChoicesError,
    UnexpectedError,
    WorkbenchError,
)
from workbench.core.events import (
    BlockDelta,
    ErrorEvent,
    FinishEvent,
    FinishReason,
    ReasoningDelta,
    ReasoningItemDelta,
    RefusalDelta,
    ResponseStart,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from workbench.core.policy import Timeouts
from workbench.core.providers.base import Provider
from workbench.core.reasoning_items import ReasoningItem
from workbench.core.request import ChatRequest
from workbench.core.timing import CallTiming


@dataclass(slots=True)
class Attempt:
    """One try at one target, as the timeline shows it: ``429 → waited 1.7 s (retry-after) → retry → …``."""

    target: str
    kind: str
    """``first``, ``retry``, ``fallback`` or ``hedge``."""
    status: int | None = None
    """The HTTP status (``None`` when no response arrived)."""
    error: str | None = None
    error_class: str | None = None
    wait_ms: float = 0.0
    """Time waited before this attempt started: backoff, Retry-After, or the rate-limit queue."""
    wait_reason: str | None = None
    ttft_ms: float | None = None
    latency_ms: float | None = None
    output: str | None = None
    """The reply, kept only when it was rejected (a schema violation) so it can be inspected."""

    def summary(self) -> dict[str, object]:
        return {"target": self.target, "kind": self.kind, "status": self.status, "error": self.error,
                "wait_ms": round(self.wait_ms, 3), "ttft_ms": _ms(self.ttft_ms)}


@dataclass(slots=True)
class ToolCall:
    """One tool call of a reply: its id and name, and its arguments as the JSON text received (in pieces)."""

    id: str = ""
    name: str = ""
    argument_parts: list[str] = field(default_factory=list)
    signature: str = ""
    """An opaque token to send back with the call when the conversation goes on (Gemini's ``thoughtSignature``);
    not in :meth:`summary`."""

    @property
    def arguments(self) -> str:
        return "".join(self.argument_parts)

    def summary(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(slots=True)
class ReasoningPart:
    """A reasoning item of the reply as it streams in (:class:`~workbench.core.events.ReasoningItemDelta`); its
    frozen form, sent back when the conversation goes on, is :meth:`item`."""

    kind: str
    before_call: int
    text_parts: list[str] = field(default_factory=list)
    id: str | None = None
    data: str | None = None
    signature: str | None = None
    summary: tuple[str, ...] | None = None

    def item(self) -> ReasoningItem | None:
        """The item to send back (``None``: a kind this version does not send back)."""
        if self.kind not in ("thinking", "redacted_thinking", "reasoning"):
            return None
        return ReasoningItem(kind=self.kind, text="".join(self.text_parts), summary=self.summary,  # type: ignore[arg-type]
                             id=self.id, signature=self.signature, data=self.data, before_call=self.before_call)


@dataclass(slots=True)
class ProviderBlock:
    """A block of the reply that is neither text, reasoning nor a tool call of the user's: a server tool's call
    or result, a model fallback, a compaction, redacted thinking (Anthropic). Shown, never run nor answered."""

    type: str
    id: str = ""
    name: str = ""
    content_parts: list[str] = field(default_factory=list)

    @property
    def content(self) -> str:
        return "".join(self.content_parts)

    def summary(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id, "name": self.name, "content": self.content}


@dataclass(slots=True)
class CallRecord:
    target: str
    request: ChatRequest
    text_parts: list[str] = field(default_factory=list)
    reasoning_parts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    """The reply's tool calls, in the order they began."""
    reasoning_items: list[ReasoningPart] = field(default_factory=list)
    """The reply's reasoning items (signed thinking, encrypted reasoning), sent back with its tool calls."""
    origin: str | None = None
    """The provider and wire that answered (:func:`~workbench.core.reasoning_items.origin`)."""
    refusal_parts: list[str] | None = None
    """The refusal's text in pieces once the model refused or the provider's filter blocked the reply (``None``:
    no refusal); see :attr:`refusal`."""
    refusal_category: str | None = None
    blocks: list[ProviderBlock] = field(default_factory=list)
    """The reply's provider blocks (:class:`ProviderBlock`), in the order they began."""
    usage: Usage | None = None
    usage_estimated: bool = False
    finish: FinishReason | None = None
    finish_raw: str | None = None
    error: WorkbenchError | None = None
    request_id: str | None = None
    timing: CallTiming = field(default_factory=CallTiming)
    done: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    started_at: float | None = None
    """Wall-clock start (epoch seconds): picks the price in force at the time of the call."""
    cost_usd: Decimal | None = None
    """From the usage once the call ended; ``None`` while running, or when the model's price is unknown."""
    served_by: str | None = None
    """The target that produced the reply (differs from ``target`` after a fallback or a won hedge)."""
    call_started_ns: int | None = None
    """The call began (before any rate-limit queue, retry or fallback): the origin of ``total_ms``."""
    settled: bool = False
    """Final, its usage estimated where the provider sent none (or not all of it) and priced: its numbers
    no longer change (:func:`workbench.core.race.settle`)."""

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    def reasoning_to_send(self) -> tuple[ReasoningItem, ...]:
        """The reply's reasoning items as its turn sends them back (:mod:`~workbench.core.reasoning_items`)."""
        return tuple(item for part in self.reasoning_items if (item := part.item()) is not None)

    @property
    def refusal(self) -> str | None:
        """The refusal's text (``""``: a refusal without words) when the reply was refused or blocked (finish
        ``content_filter``), else ``None``."""
        if self.refusal_parts is None:
            return "" if self.finish is FinishReason.CONTENT_FILTER else None
        return "".join(self.refusal_parts)

    @property
    def status(self) -> str:
        if not self.done:
            return "running"
        return "error" if self.error is not None else "ok"

    @property
    def total_ms(self) -> float | None:
        """What the user waited: the call's start → its end (queueing, retries, ``Retry-After`` waits,
        hedges and fallbacks included); ``latency_ms`` is the serving attempt's wire time."""
        end = self.timing.end_ns
        return None if end is None or self.call_started_ns is None else (end - self.call_started_ns) / 1e6

    @property
    def total_ttft_ms(self) -> float | None:
        """The call's start → the first content the user saw (``ttft_ms`` is the serving attempt's)."""
        first = self.timing.first_content_ns
        return None if first is None or self.call_started_ns is None else (first - self.call_started_ns) / 1e6

    @property
    def output_tokens(self) -> int | None:
        return self.usage.output_tokens if self.usage else None

    @property
    def tokens_per_s(self) -> float | None:
        return self.timing.tokens_per_s(self.usage.output_tokens) if self.usage else None

    def restart(self) -> None:
        """Forget the stream of a previous attempt (its account stays in ``attempts``)."""
        self.text_parts, self.reasoning_parts, self.tool_calls, self.reasoning_items = [], [], [], []
        self.refusal_parts, self.refusal_category, self.blocks = None, None, []
        self.usage, self.usage_estimated, self.finish, self.finish_raw = None, False, None, None
        self.error, self.request_id, self.timing, self.done = None, None, CallTiming(), False

    def update_from(self, other: CallRecord) -> None:
        """Take every field of ``other`` (a copy of this call finished elsewhere), keeping this object."""
        for f in fields(self):
            setattr(self, f.name, getattr(other, f.name))

    def fail(self, error: WorkbenchError) -> None:
        self.error = error
        self.finish = FinishReason.ERROR
        self.timing.end_ns = time.perf_counter_ns()
        self.done = True


def _reasoning_item(record: CallRecord, event: ReasoningItemDelta) -> None:
    items = record.reasoning_items
    while len(items) <= event.index:  # bounded: StreamBudget caps the index
        items.append(ReasoningPart(event.kind, len(record.tool_calls)))
    item = items[event.index]
    for name in ("id", "data", "signature", "summary"):
        value = getattr(event, name)
        if value is not None:
            setattr(item, name, value)


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
    elif isinstance(event, ReasoningItemDelta):
        _reasoning_item(record, event)
        return
    elif isinstance(event, ReasoningDelta):
        if event.item is not None and 0 <= event.item < len(record.reasoning_items):
            record.reasoning_items[event.item].text_parts.append(event.text)
        if timing.first_content_ns is None:
            timing.first_content_ns = event.at_ns
        if timing.first_reasoning_ns is None:
            timing.first_reasoning_ns = event.at_ns
        timing.chunk_ns.append(event.at_ns)
        record.reasoning_parts.append(event.text)
    elif isinstance(event, ToolCallDelta):
        if timing.first_content_ns is None:
            timing.first_content_ns = event.at_ns
        timing.chunk_ns.append(event.at_ns)
        calls = record.tool_calls
        while len(calls) <= event.index:  # bounded: StreamBudget caps the index
            calls.append(ToolCall())
        call = calls[event.index]
        if event.id:
            call.id = event.id
        if event.name:
            call.name = event.name
        if event.arguments:
            call.argument_parts.append(event.arguments)
        if event.signature:
            call.signature = event.signature
    elif isinstance(event, RefusalDelta):
        if event.text:
            if timing.first_content_ns is None:
                timing.first_content_ns = event.at_ns
            timing.chunk_ns.append(event.at_ns)
        if record.refusal_parts is None:
            record.refusal_parts = []
        record.refusal_parts.append(event.text)
        if event.category:
            record.refusal_category = event.category
    elif isinstance(event, BlockDelta):
        timing.chunk_ns.append(event.at_ns)
        blocks = record.blocks
        while len(blocks) <= event.index:  # bounded: StreamBudget caps the index
            blocks.append(ProviderBlock(event.kind))
        block = blocks[event.index]
        if event.id:
            block.id = event.id
        if event.name:
            block.name = event.name
        if event.text:
            block.content_parts.append(event.text)
    elif isinstance(event, UsageEvent):
        record.usage = event.usage
    elif isinstance(event, FinishEvent):
        record.finish, record.finish_raw = event.reason, event.raw
    elif isinstance(event, ResponseStart):
        timing.started_ns, timing.sent_ns = event.started_ns, event.sent_ns
        timing.headers_ns, record.request_id, record.origin = event.at_ns, event.request_id, event.origin
        return
    elif isinstance(event, ErrorEvent):
        if event.kind == "several_choices":
            record.error = SeveralChoicesError(record.target, event.message,
                                               "a retry answers the same: fix the request or the server's defaults")
        else:
            record.error = ProviderStreamError(record.target, f"{event.kind}: {event.message}",
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
    timeouts: Timeouts | None = None,
) -> CallRecord:
    """Stream ``request`` through ``provider`` into ``record``; never raises for a failed call.

    Errors end up in ``record.error`` with the partial output kept. With ``estimate_usage`` a call whose
    provider sent no usage gets a tokenizer estimate (in a worker thread, off the network loop).
    ``on_event`` sees every event after it was applied (to mirror the record elsewhere). With
    ``timeouts`` the first-token, idle and total deadlines are enforced; one that fires ends the call
    with a :class:`ProviderTimeoutError` naming it.
    """
    record = record or CallRecord(provider.target, request)
    record.timing.started_ns = time.perf_counter_ns()  # refined by the provider's own stamps once sent
    if record.call_started_ns is None:
        record.call_started_ns = record.timing.started_ns
    events = provider.stream(request)
    try:
        if timeouts is None:
            async for event in events:
                apply_event(record, event)
                if on_event is not None:
                    on_event(event)
        else:
            await _consume_with_deadlines(events, record, timeouts, on_event, provider)
    except WorkbenchError as exc:
        record.fail(exc)
    except asyncio.CancelledError:
        record.fail(CallCancelledError(record.target))
        raise
    except Exception as exc:  # a decoder, a parser, a hook, the HTTP library: this target's failure alone
        record.fail(UnexpectedError(record.target, exc))
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
    if not record.done:
        record.timing.end_ns = time.perf_counter_ns()
        record.done = True
        if record.error is not None:
            record.finish = FinishReason.ERROR
    if record.usage is None and record.error is None:
        await _count_on_server(provider, request, record)
    if estimate_usage and record.usage is None:
        await asyncio.to_thread(estimate_usage_of, record)
    return record


async def _count_on_server(provider: Provider, request: ChatRequest, record: CallRecord) -> None:
    """A call that ended well with no usage from its server: the server's own count when it offers one
    (:meth:`~workbench.core.providers.base.HttpProvider.served_usage`, bounded in time), flagged
    ``usage_estimated`` as an offline count is; anything wrong leaves the call to the offline estimate."""
    try:
        usage = await provider.served_usage(request, record.text)
    except (WorkbenchError, TimeoutError, LookupError, TypeError, ValueError):
        return
    if usage is not None and usage.input_tokens > 0 and usage.output_tokens >= 0:
        record.usage, record.usage_estimated = usage, True


async def _consume_with_deadlines(
    events: AsyncIterator[StreamEvent], record: CallRecord, timeouts: Timeouts,
    on_event: Callable[[StreamEvent], None] | None, provider: Provider,
) -> None:
    """Apply events while a watchdog enforces the deadlines. It reads the chunk stamps the record keeps
    anyway, so the per-chunk cost is nothing; it wakes only when a deadline could have passed, and once
    more when the first content arrives (from then on the idle deadline, usually the shorter, applies).

    The first-token deadline counts from the moment the request went out (``provider.sent_ns``, stamped
    before any response header), so a server that never answers costs ``ttft``, not connect + ``ttft``;
    until the request is out, connecting has its own ``connect`` deadline (plus a margin for the pool)."""
    loop = asyncio.get_running_loop()
    timing = record.timing
    start_ns = time.perf_counter_ns()
    total_ns = start_ns + int(timeouts.total * 1e9)
    ttft_ns = int(timeouts.ttft * 1e9)
    fired: list[str] = []

    def deadline() -> tuple[int, str]:
        sent_ns = timing.sent_ns if timing.sent_ns is not None else provider.sent_ns
        if sent_ns is None:  # still connecting (httpx2's own connect timeout normally fires first)
            at, which = start_ns + int((timeouts.connect + _CONNECT_MARGIN_S) * 1e9), "connect"
        elif timing.first_content_ns is None:
            at, which = sent_ns + ttft_ns, "first-token"
        else:
            at, which = timing.chunk_ns[-1] + int(timeouts.idle * 1e9), "idle"
        return (at, which) if at < total_ns else (total_ns, "total")

    handles: list[asyncio.TimerHandle] = []
    try:
        async with asyncio.timeout(None) as scope:

            def wake_at(at: int, now: int) -> int:
                """When to look again: the deadline, or sooner while the request is not out (once it is,
                its first-token deadline may come before the connect one)."""
                if timing.sent_ns is None and provider.sent_ns is None:
                    return min(at, now + ttft_ns)
                return at

            def watchdog() -> None:
                at, which = deadline()
                now = time.perf_counter_ns()
                if now >= at:
                    fired.append(which)
                    scope.reschedule(loop.time())
                else:
                    handles.append(loop.call_later((wake_at(at, now) - now) / 1e9, watchdog))

            def arm() -> None:
                at, _ = deadline()
                if handles:
                    handles[-1].cancel()
                now = time.perf_counter_ns()
                handles.append(loop.call_later(max(wake_at(at, now) - now, 0) / 1e9, watchdog))

            arm()  # the watchdog re-arms itself as needed
            async for event in events:
                had_content = timing.first_content_ns is not None
                apply_event(record, event)
                if not had_content and timing.first_content_ns is not None:
                    arm()
                if on_event is not None:
                    on_event(event)
    except TimeoutError:
        if not fired:
            raise
        raise ProviderTimeoutError(record.target, fired[0], _TIMEOUT_HINTS[fired[0]]) from None
    finally:
        if handles:
            handles[-1].cancel()


_CONNECT_MARGIN_S = 5.0
"""Beyond the connect timeout before a request that never went out counts as failed (a pool wait, a proxy)."""

_TIMEOUT_HINTS = {
    "connect": "the connection could not be made in time: check the network, the proxy and the base URL",
    "first-token": "no output arrived in time: raise the first-token timeout for slow (reasoning) models",
    "idle": "the stream stalled: retry, or raise the idle timeout",
    "total": "the call took too long overall: raise the total timeout or lower max_tokens",
}


def estimate_usage_of(record: CallRecord) -> None:
    """Fill a missing usage with tokenizer counts and flag it ``usage_estimated``. A call that did not end
    normally (cancelled, failed mid-stream) keeps the provider's input count but gets the larger of the
    provider's output count and the tokenizer's: a stream cut short never sent its final usage, only what
    its first event said (Anthropic's ``message_start``: one output token). Tool calls count as output
(their names and arguments)."""
    partial = record.usage is not None and record.error is not None and bool(record.text_parts or
                                                                              record.reasoning_parts or
                                                                              record.tool_calls or
                                                                              record.refusal_parts)
    if record.usage is not None and not partial:
        return
    from workbench.core.tokens.encodings import count_chat, count_text, encoding_name_for  # tiktoken: only when needed

    provider, _, model = record.target.partition("/")
    encoding, _exact = encoding_name_for(provider, model)
    reasoning = count_text(record.reasoning, encoding) if record.reasoning_parts else 0
    output = count_text(record.text, encoding) + reasoning
    output += sum(count_text(call.name + call.arguments, encoding) for call in record.tool_calls)
    if record.refusal_parts:
        output += count_text("".join(record.refusal_parts), encoding)
    if record.usage is not None:
        if record.usage.output_tokens >= output:
            return
        record.usage = replace(record.usage, output_tokens=output,
                               reasoning_tokens=max(record.usage.reasoning_tokens, reasoning))
    else:
        attached = 0
        if any(m.attachments for m in record.request.messages):  # by the provider's rule
            from workbench.core.tokens.estimate import attached_tokens

            attached = sum(attached_tokens(m, record.target) for m in record.request.messages)
        record.usage = Usage(input_tokens=count_chat(record.request, encoding) + attached, output_tokens=output,
                             reasoning_tokens=reasoning)
    record.usage_estimated = True


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def reasoning_tokens(record: CallRecord) -> int | None:
    """The reply's reasoning tokens as counted (by the provider, else the estimate); ``None`` when unknown: no
    usage, or reasoning text came but the count says none (a provider that does not count it apart)."""
    usage = record.usage
    if usage is None or (not usage.reasoning_tokens and record.reasoning_parts):
        return None
    return usage.reasoning_tokens


def summary(record: CallRecord) -> dict[str, object]:
    """The stable, machine-readable summary of a call (``workbench run --json`` prints one per target).

    Fields are only ever added, never renamed.
    """
    usage = record.usage
    tps = record.tokens_per_s
    return {
        "target": record.target,
        "text": record.text,
        "tool_calls": [call.summary() for call in record.tool_calls],
        "refusal": record.refusal,
        "refusal_category": record.refusal_category,
        "blocks": [block.summary() for block in record.blocks],
        "reasoning": record.reasoning,
        "reasoning_tokens": reasoning_tokens(record),
        "ttft_ms": _ms(record.timing.ttft_ms),
        "ttft_reasoning_ms": _ms(record.timing.ttft_reasoning_ms),
        "ttft_answer_ms": _ms(record.timing.ttft_answer_ms),
        "latency_ms": _ms(record.timing.latency_ms),
        "tokens_per_s": None if tps is None else round(tps, 2),
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "cache_read_tokens": usage.cache_read_tokens if usage else None,
        "cache_write_tokens": usage.cache_write_tokens if usage else None,
        "usage_estimated": record.usage_estimated,
        "finish_reason": record.finish.value if record.finish else None,
        "status": "error" if record.error is not None else "ok",
        "error": str(record.error) if record.error is not None else None,
        "error_hint": record.error.hint if record.error is not None else None,
        "cost_usd": None if record.cost_usd is None else float(record.cost_usd),
        "attempts": [a.summary() for a in record.attempts],
        "served_by": record.served_by,
        "queue_ms": _ms(record.timing.queue_ms),
        "total_ms": _ms(record.total_ms),
        "total_ttft_ms": _ms(record.total_ttft_ms),
    }
