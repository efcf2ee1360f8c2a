"""The bytes of a proxied chat call read into a :class:`~workbench.core.call_record.CallRecord`, with the wire
parsers the providers use (:mod:`workbench.core.providers`) over the SSE and NDJSON decoders.

A streamed reply is parsed as it passes, each chunk stamped with its arrival at the proxy (TTFT is its first
content's) and read in batches of :data:`BATCH` chunks (a batch read at once costs the proxy less CPU per chunk
than one read per chunk; the call's record is complete once it ended); a non-streamed one (a single JSON object)
is read once it ended, by the same parser: an OpenAI choice's ``message`` is read as a ``delta``, an Anthropic
message and an OpenAI Response as the events their streams would have sent.
Parsing never touches what is forwarded: a reply the parser cannot read is still passed through, and traced with
the reason it could not be read.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from workbench.core.call_record import Attempt, CallRecord, apply_event
from workbench.core.capture.routes import Route
from workbench.core.capture.wire_request import chat_request
from workbench.core.errors import (
    CallCancelledError,
    MalformedStreamError,
    ProviderError,
    ProviderHTTPError,
    StreamDecodeError,
    TruncatedStreamError,
    WorkbenchError,
)
from workbench.core.events import ResponseStart
from workbench.core.ndjson import NDJSONDecoder
from workbench.core.providers.anthropic import AnthropicParser
from workbench.core.providers.base import WireParser, error_fields
from workbench.core.providers.bounds import MAX_ERROR_BODY_BYTES, MAX_REPLY_BYTES
from workbench.core.providers.gemini import GeminiParser
from workbench.core.providers.ollama import OllamaParser
from workbench.core.providers.openai_chat import ChatParser
from workbench.core.providers.openai_responses import ResponsesParser
from workbench.core.reasoning_items import origin
from workbench.core.sse import SSEDecoder, SSEMessage


class ApplicationGoneError(CallCancelledError):
    """The application closed its connection before the proxied call ended (its upstream request was closed)."""

    def __init__(self, target: str, when: str) -> None:
        ProviderError.__init__(self, target, f"cancelled: the application went away {when}")


BATCH = 32
"""Chunks held (with their arrival times) before they are read: the work of reading them is done in one go, a
fraction of a millisecond on the event loop that relays every stream."""

PARSERS: dict[str, Callable[[], WireParser]] = {
    "openai_chat": ChatParser, "openai_responses": ResponsesParser, "anthropic": AnthropicParser,
    "gemini": GeminiParser, "ollama": OllamaParser,
}


def _anthropic_events(message: dict[str, Any]) -> Iterable[SSEMessage]:
    """A non-streamed Anthropic message as the events its stream would have sent."""
    yield SSEMessage("message_start", json.dumps({"message": {"usage": message.get("usage") or {}}}))
    for index, block in enumerate(message.get("content") or ()):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            delta: dict[str, Any] = {"type": "text_delta", "text": block.get("text") or ""}
        elif kind in ("thinking", "redacted_thinking"):  # begun whole: its signature or data, kept to send back
            yield SSEMessage("content_block_start", json.dumps({"index": index, "content_block": block}))
            if kind == "redacted_thinking":
                continue
            delta = {"type": "thinking_delta", "thinking": block.get("thinking") or ""}
        elif kind == "tool_use":
            start = {**block, "input": {}}
            yield SSEMessage("content_block_start", json.dumps({"index": index, "content_block": start}))
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block.get("input") or {})}
        else:
            continue
        yield SSEMessage("content_block_delta", json.dumps({"index": index, "delta": delta}))
    yield SSEMessage("message_delta", json.dumps({"delta": {"stop_reason": message.get("stop_reason")},
                                                  "usage": message.get("usage") or {}}))
    yield SSEMessage("message_stop", "{}")


def _openai_chat_events(reply: dict[str, Any]) -> Iterable[SSEMessage]:
    """A non-streamed Chat Completion as one chunk: each choice's ``message`` as its ``delta``."""
    choices = [{**choice, "delta": choice.get("message") or {}} for choice in reply.get("choices") or ()
               if isinstance(choice, dict)]
    yield SSEMessage("", json.dumps({**reply, "choices": choices}))
    yield SSEMessage("", "[DONE]")


def _responses_event(kind: str, **fields: Any) -> SSEMessage:
    return SSEMessage(kind, json.dumps({"type": kind, **fields}))


def _responses_item_events(index: int, item: dict[str, Any]) -> Iterable[SSEMessage]:
    """One output item of a non-streamed Response as the events its stream would have sent."""
    kind = item.get("type")
    if kind == "message":
        for part in item.get("content") or ():
            if isinstance(part, dict) and part.get("type") == "output_text":
                yield _responses_event("response.output_text.delta", output_index=index, delta=part.get("text") or "")
            elif isinstance(part, dict) and part.get("type") == "refusal":
                yield _responses_event("response.refusal.delta", output_index=index, delta=part.get("refusal") or "")
    elif kind == "function_call":  # added with its whole arguments
        yield _responses_event("response.output_item.added", output_index=index, item=item)
    elif kind == "reasoning":
        yield _responses_event("response.output_item.added", output_index=index, item=item)
        for event, parts in (("response.reasoning_summary_text.delta", item.get("summary")),
                             ("response.reasoning_text.delta", item.get("content"))):
            for part in parts or ():
                if isinstance(part, dict) and part.get("text"):
                    yield _responses_event(event, output_index=index, delta=part["text"])
        yield _responses_event("response.output_item.done", output_index=index, item=item)


def _openai_responses_events(reply: dict[str, Any]) -> Iterable[SSEMessage]:
    """A non-streamed Response as its stream's events: each ``output`` item's (text and refusal parts, function
    calls, reasoning items with their summary), then the terminal event its ``status`` names, with the whole
    response (usage, ``incomplete_details``, ``error``)."""
    for index, item in enumerate(reply.get("output") or ()):
        if isinstance(item, dict):
            yield from _responses_item_events(index, item)
    status = reply.get("status")
    terminal = f"response.{status}" if status in ("incomplete", "failed") else "response.completed"
    yield _responses_event(terminal, response=reply)


def whole_reply(wire: str, body: bytes) -> Iterable[Any]:
    """What the parser of ``wire`` reads for a non-streamed reply ``body`` (Gemini's ``streamGenerateContent``
    without ``alt=sse``: the JSON array of its chunks, pretty-printed, read once it ended)."""
    reply = json.loads(body)
    if wire == "gemini" and isinstance(reply, list):  # streamGenerateContent without alt=sse: one JSON array
        return (SSEMessage("", json.dumps(chunk)) for chunk in reply)
    if not isinstance(reply, dict):
        raise ValueError("the reply is not a JSON object")
    if wire == "anthropic":
        return _anthropic_events(reply)
    if wire == "openai_chat":
        return _openai_chat_events(reply)
    if wire == "openai_responses":
        return _openai_responses_events(reply)
    if wire == "gemini":
        return (SSEMessage("", body.decode()),)
    return (reply,)  # ollama: the last line of its stream


class CallTap:
    """Reads one proxied chat call as it passes: :meth:`started` when the upstream headers arrived, :meth:`feed`
    for every body chunk (raw bytes, as forwarded), :meth:`ended` once; :attr:`record` is the call."""

    def __init__(self, route: Route, body: dict[str, Any], started_ns: int) -> None:
        assert route.wire is not None
        self.wire = route.wire
        self.origin = origin(route.provider, route.wire)
        """The provider and wire answering: whose reasoning items and signatures a continued call sends back."""
        model = route.model or str(body.get("model") or "unknown")
        self.record = CallRecord(f"{route.provider}/{model}", chat_request(self.wire, body),
                                 started_at=time.time(), call_started_ns=started_ns)
        self.record.timing.started_ns = started_ns
        self.started_ns = started_ns
        self.parser = PARSERS[self.wire]()
        self.decoder: SSEDecoder | NDJSONDecoder | None = None
        self.status = 0
        self.headers: Mapping[str, str] = {}
        self.buffer = bytearray()
        self.unzip: Any = None
        self.problem: str | None = None
        self.pending: list[tuple[int, bytes]] = []
        """The chunks fed and not read yet, with their arrival times."""

    def started(self, status: int, headers: Mapping[str, str], at_ns: int) -> None:
        """The upstream's status and headers (lower-case names) arrived."""
        self.status, self.headers = status, headers
        request_id = headers.get("x-request-id") or headers.get("request-id")
        apply_event(self.record, ResponseStart(self.started_ns, self.started_ns, at_ns, request_id, {}, self.origin))
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding in ("gzip", "deflate"):
            self.unzip = zlib.decompressobj(wbits=47)
        elif encoding != "identity":
            self.problem = f"the reply is encoded ({encoding[:40]}): its content was not read"
        kind = headers.get("content-type", "").lower()
        if status < 400 and "text/event-stream" in kind:
            self.decoder = SSEDecoder(bare_json=self.parser.bare_json)
        elif status < 400 and "ndjson" in kind:
            self.decoder = NDJSONDecoder()

    def feed(self, chunk: bytes) -> None:
        """A body chunk arrived (now): read with the others of its batch."""
        if self.problem is not None:
            return
        pending = self.pending
        pending.append((time.perf_counter_ns(), chunk))
        if len(pending) >= BATCH:
            self._read_pending()

    def _read_pending(self) -> None:
        pending, self.pending = self.pending, []
        if self.problem is not None:
            return
        try:
            for at_ns, chunk in pending:
                data = self.unzip.decompress(chunk) if self.unzip is not None else chunk
                if self.decoder is None:
                    limit = MAX_ERROR_BODY_BYTES if self.status >= 400 else MAX_REPLY_BYTES
                    self.buffer += data[:max(0, limit - len(self.buffer))]
                    continue
                for item in self.decoder.feed(data):
                    self._apply(self.parser.feed(item, at_ns))
        except (StreamDecodeError, zlib.error, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            self.problem = f"the reply could not be read ({type(exc).__name__})"

    def _apply(self, events: Iterable[Any]) -> None:
        for event in events:
            apply_event(self.record, event)

    def failed(self, error: WorkbenchError) -> CallRecord:
        """The provider was not reached, or sent no answer in time: the call ends in ``error``."""
        self.record.fail(error)
        return self.record

    def _gone_when(self) -> str:
        timing = self.record.timing
        if self.status == 0:
            waited = (time.perf_counter_ns() - self.started_ns) / 1e9
            return f"before the provider answered (no response headers after {waited:.1f} s)"
        if timing.first_content_ns is None:
            return f"after the provider's headers (HTTP {self.status}), before any content"
        return "mid-stream"

    def ended(self, *, cancelled: bool = False, cut: str | None = None) -> CallRecord:
        """The call ended: completely, ``cancelled`` by the application (it went away), or ``cut`` short upstream."""
        record = self.record
        self._read_pending()
        at_ns = time.perf_counter_ns()
        if self.problem is None and self.status < 400:
            try:
                if self.decoder is not None:
                    if not self.parser.done:
                        for item in self.decoder.close():
                            self._apply(self.parser.feed(item, at_ns))
                else:
                    for item in whole_reply(self.wire, bytes(self.buffer)):
                        self._apply(self.parser.feed(item, at_ns))
            except (StreamDecodeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
                if self.decoder is not None:  # the bytes ended inside an event: cut short
                    cut = cut or "the stream ended inside an event"
                else:
                    self.problem = f"the reply could not be read ({type(exc).__name__})"
        record.timing.end_ns = at_ns
        record.done = True
        if cancelled:
            record.fail(ApplicationGoneError(record.target, self._gone_when()))
        elif self.status >= 400:
            kind, detail = error_fields(bytes(self.buffer))
            record.fail(ProviderHTTPError(record.target, self.status, kind, detail, request_id=record.request_id))
        elif cut is not None:
            record.fail(TruncatedStreamError(record.target, cut, "the provider or a proxy dropped the stream"))
        elif self.problem is not None:
            record.fail(MalformedStreamError(record.target, self.problem, "the reply was passed through as it came"))
        elif record.error is None and self.decoder is not None and not self.parser.complete_at_eof():
            record.fail(TruncatedStreamError(record.target, "stream ended before the provider's final event",
                                             "the provider or a proxy dropped the stream"))
        record.timing.end_ns = at_ns
        if not record.attempts and self.status:  # passed through: one attempt, with the upstream's status
            error = record.error
            record.attempts.append(Attempt(record.target, "first", status=self.status,
                                           error=None if error is None else str(error),
                                           error_class=None if error is None else error.error_class,
                                           ttft_ms=record.timing.ttft_ms, latency_ms=record.timing.latency_ms))
        return record
