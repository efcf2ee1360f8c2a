"""OpenTelemetry export of the trace log: one OTLP span per call, sent to an OTLP/HTTP traces endpoint.

Any OpenTelemetry collector, Langfuse (``…/api/public/otel``) or Arize Phoenix can then hold a team's
traces. A span follows the GenAI semantic conventions for an inference call: name
``chat {gen_ai.request.model}``, kind CLIENT, start at the call's ``ts``, end after its latency, status
ERROR (with the error message) for a failed call, ``gen_ai.*`` attributes for what the conventions
define and ``workbench.*`` ones for the rest (cost, TTFT, prompt version, session, eval run, tags). The
trace and span ids are hashes of the call id, so exporting a call again yields the same ids and
collectors dedupe. Prompt and reply text leave the machine only when asked (``content=True``), as the
conventions' opt-in ``gen_ai.system_instructions`` / ``gen_ai.input.messages`` /
``gen_ai.output.messages`` JSON strings; the text is the stored one, already redacted when written.

Encoding: binary protobuf (``application/x-protobuf``), built with the official generated classes of
``opentelemetry-proto`` (a ~70 KB pure-Python package whose only dependency is ``protobuf``). Binary
protobuf is OTLP/HTTP's default encoding and the one every receiver takes, while OTLP/JSON is optional
and some receivers refuse it; and the official classes enforce the schema, where a hand-written JSON
mapping (hex ids, int64 as strings, ``intValue`` strings) is easy to get subtly wrong. The OpenTelemetry
SDK is not used: it would mint its own ids and clocks, and these spans describe calls that are over.

:func:`export_calls` takes plain rows (``TraceStore.export`` rows, or :func:`call_row` applied to the
writer's ``rows_for`` output), so a live exporter can reuse it; :func:`export_store` streams a store.
"""

from __future__ import annotations

import gzip as gzip_module
import hashlib
import json
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

import httpx2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from workbench import __version__
from workbench.core.errors import WorkbenchError
from workbench.core.traces.columns import CALLS
from workbench.core.traces.filters import Filters
from workbench.core.traces.store import TraceStore

TRACES_PATH = "/v1/traces"
CONTENT_TYPE = "application/x-protobuf"
DEFAULT_BATCH = 512
DEFAULT_TIMEOUT_S = 10.0
SCOPE_NAME = "workbench.traces"
_RETRYABLE = frozenset({429, 502, 503, 504})
_MAX_RETRIES = 2
_MAX_WAIT_S = 5.0
# W3C "sampled" trace flag, and "has is_remote" with is_remote false: these are root spans made here.
_SPAN_FLAGS = 0x01 | 0x100

PROVIDER_NAMES: dict[str, str] = {
    "openai": "openai", "openai-responses": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini",
    "mistral": "mistral_ai", "groq": "groq", "deepseek": "deepseek",
}
"""Workbench provider names that have a well-known ``gen_ai.provider.name`` value; others pass unchanged."""

_PARAMS = (("max_tokens", "gen_ai.request.max_tokens"), ("temperature", "gen_ai.request.temperature"),
           ("top_p", "gen_ai.request.top_p"), ("seed", "gen_ai.request.seed"))
_COLUMNS = tuple((c.name, c.attribute) for c in CALLS if c.attribute)
"""The columns a span carries as they are (the definition names the attribute); the rest are mapped below."""
_FLOATS = frozenset(c.name for c in CALLS if c.sql == "FLOAT")
_INTS = frozenset(c.name for c in CALLS if c.sql == "INTEGER")

class OtlpExportError(WorkbenchError):
    """The endpoint could not be reached or refused the spans; ``sent`` spans had been accepted before."""

    error_class = "otlp_export"

    def __init__(self, message: str, hint: str | None = None, sent: int = 0) -> None:
        super().__init__(message, hint)
        self.sent = sent


@dataclass(frozen=True, slots=True)
class ExportResult:
    url: str
    """The traces endpoint, without any credential it held."""
    spans: int = 0
    """Spans the endpoint accepted (sent less the ones it reported as rejected)."""
    requests: int = 0
    rejected: int = 0
    message: str = ""
    """The endpoint's explanation of a partial success, if any."""


# --- ids and URLs ---------------------------------------------------------------------------------------


def trace_id(call_id: str) -> bytes:
    """16 bytes derived from the call id alone: the same call always lands in the same trace."""
    return _nonzero(hashlib.sha256(f"workbench.trace:{call_id}".encode()).digest()[:16])


def span_id(call_id: str) -> bytes:
    """8 bytes derived from the call id alone."""
    return _nonzero(hashlib.sha256(f"workbench.span:{call_id}".encode()).digest()[:8])


def _nonzero(raw: bytes) -> bytes:
    return raw if any(raw) else raw[:-1] + b"\x01"  # all-zero ids are invalid


def traces_url(url: str) -> str:
    """The traces endpoint for ``url``: used as is when it ends in ``/v1/traces``, else taken as a base."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OtlpExportError(f"'{url}' is not an http(s) URL",
                              "give the collector's URL, e.g. http://localhost:4318 or http://localhost:4318/v1/traces")
    path = parts.path.rstrip("/")
    if not path.endswith(TRACES_PATH):
        path += TRACES_PATH
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _shown(url: str) -> str:
    """``url`` without any user:password part (never echo a credential)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def headers_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """Extra request headers (e.g. ``Authorization`` for Langfuse) from the standard OpenTelemetry variables.

    ``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` wins over ``OTEL_EXPORTER_OTLP_HEADERS``; both are
    ``key=value`` pairs separated by commas, values percent-encoded."""
    raw = env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or env.get("OTEL_EXPORTER_OTLP_HEADERS") or ""
    headers: dict[str, str] = {}
    for pair in raw.split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            headers[key.strip()] = urllib.parse.unquote(value.strip())
    return headers


# --- rows to spans --------------------------------------------------------------------------------------


def call_row(call: Mapping[str, Any], payload: Mapping[str, Any] | None = None,
             tags: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A row as :func:`export_calls` takes it, from the rows ``writer.rows_for`` makes (for a live export)."""
    row = dict(call)
    if payload is not None:
        row.update((k, v) for k, v in payload.items() if k != "call_id")
    row["tags"] = [tag["tag"] for tag in tags]
    return row


def _value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[_value(v) for v in value]))
    return AnyValue(string_value=str(value))


def _attributes(pairs: Iterable[tuple[str, Any]]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_value(value)) for key, value in pairs if value is not None]


def _json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        loaded = json.loads(text)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def span_attributes(row: Mapping[str, Any], *, content: bool = False) -> list[tuple[str, Any]]:
    """The (name, value) attributes of a call's span, ``None`` values left out; text only with ``content``."""
    provider = str(row["provider"])
    served_by = row.get("served_by")
    served_model = (served_by.partition("/")[2] or served_by) if served_by else None
    attrs: list[tuple[str, Any]] = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", PROVIDER_NAMES.get(provider, provider)),
        ("gen_ai.request.model", row["model"]),
        ("gen_ai.response.model", served_model),
    ]
    if row.get("finish_reason"):
        attrs.append(("gen_ai.response.finish_reasons", [row["finish_reason"]]))
    if row.get("status") == "error":
        attrs.append(("error.type", row.get("error_class") or "_OTHER"))
    request = _json(row.get("request_json"))
    raw_params = request.get("params")
    params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
    for key, name in _PARAMS:
        attrs.append((name, params.get(key)))
    if params.get("stop"):
        attrs.append(("gen_ai.request.stop_sequences", [str(s) for s in params["stop"]]))
    for column, name in _COLUMNS:
        value = row.get(column)
        if value is not None and column in _FLOATS:
            value = float(value)
        elif value is not None and column in _INTS:
            value = int(value)
        attrs.append((name, value))
    if row.get("ttft_ms") is not None:
        attrs.append(("gen_ai.response.time_to_first_chunk", float(row["ttft_ms"]) / 1000))
    if served_by and served_by != row.get("target"):
        attrs.append(("workbench.served_by", served_by))  # a fallback or a hedge answered instead
    if row.get("usage_estimated"):
        attrs.append(("workbench.usage_estimated", True))
    tags = row.get("tags")
    if tags:
        attrs.append(("workbench.tags", sorted(str(t) for t in tags)))
    if content:
        attrs.extend(_content(request, row))
    return attrs


def _content(request: Mapping[str, Any], row: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The opt-in message attributes, as JSON strings in the conventions' role/parts shape."""
    out: list[tuple[str, Any]] = []
    if request.get("system"):
        out.append(("gen_ai.system_instructions",
                    _dumps([{"type": "text", "content": request["system"]}])))
    messages = [_input_message(m) for m in request.get("messages") or () if isinstance(m, dict)]
    if messages:
        out.append(("gen_ai.input.messages", _dumps(messages)))
    parts = []
    if row.get("reasoning_text"):
        parts.append({"type": "reasoning", "content": row["reasoning_text"]})
    if row.get("blocks_json"):  # the provider's own blocks (server tools, fallback, compaction), as they came
        parts.extend(_block_part(b) for b in json.loads(row["blocks_json"]))
    if row.get("response_text"):
        parts.append({"type": "text", "content": row["response_text"]})
    if row.get("refusal_text"):  # a generic part of the conventions: the refusal's own words
        parts.append({"type": "refusal", "content": row["refusal_text"]})
    if row.get("tool_calls_json"):  # arguments kept as the JSON text received
        parts.extend({"type": "tool_call", "id": c.get("id"), "name": c.get("name"), "arguments": c.get("arguments")}
                     for c in json.loads(row["tool_calls_json"]))
    if parts:
        reply = {"role": "assistant", "parts": parts, "finish_reason": row.get("finish_reason") or "stop"}
        out.append(("gen_ai.output.messages", _dumps([reply])))
    return out


def _block_part(block: Mapping[str, Any]) -> dict[str, Any]:
    """A provider block as an output part: a server tool's call (its input JSON as received) or result in the
    ``tool_call`` / ``tool_call_response`` style, anything else (fallback, compaction, redacted thinking) a generic
    part of its own type holding its readable content."""
    kind, content = str(block.get("type")), block.get("content")
    if kind in ("server_tool_use", "mcp_tool_use"):
        return {"type": "server_tool_call", "id": block.get("id"), "name": block.get("name"), "arguments": content}
    if kind.endswith("_tool_result"):
        return {"type": "server_tool_call_response", "id": block.get("id"), "response": content, "result_type": kind}
    return {"type": kind, "content": content}


def _input_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A stored turn in the conventions' shape: its text, an assistant turn's ``tool_call`` parts, a tool result as a
    ``tool_call_response`` part."""
    if message.get("tool_call_id") is not None:
        return {"role": "tool", "parts": [{"type": "tool_call_response", "id": message["tool_call_id"],
                                           "response": message.get("content")}]}
    calls = message.get("tool_calls") or []
    parts = [{"type": "text", "content": message.get("content")}] if message.get("content") or not calls else []
    parts.extend({"type": "tool_call", "id": c.get("id"), "name": c.get("name"), "arguments": c.get("arguments")}
                 for c in calls if isinstance(c, dict))
    return {"role": message.get("role"), "parts": parts}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def span_for(row: Mapping[str, Any], *, content: bool = False) -> Span:
    """One call as an OTLP span."""
    start = round(float(row["ts"]) * 1e6) * 1000  # µs precision, kept exact in int nanoseconds
    latency = row.get("latency_ms")
    end = start + (round(float(latency) * 1e6) if latency is not None and latency > 0 else 0)
    status = (Status(code=Status.STATUS_CODE_ERROR, message=str(row.get("error") or row.get("error_class") or "error"))
              if row.get("status") == "error" else Status(code=Status.STATUS_CODE_UNSET))
    return Span(trace_id=trace_id(row["id"]), span_id=span_id(row["id"]), flags=_SPAN_FLAGS,
                name=f"chat {row['model']}", kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start,
                end_time_unix_nano=end, attributes=_attributes(span_attributes(row, content=content)),
                status=status)


def resource() -> Resource:
    return Resource(attributes=_attributes([
        ("service.name", "workbench"), ("service.version", __version__), ("telemetry.sdk.name", "workbench"),
        ("telemetry.sdk.language", "python"), ("telemetry.sdk.version", __version__)]))


def request_for(rows: Iterable[Mapping[str, Any]], *, content: bool = False) -> ExportTraceServiceRequest:
    """One OTLP export request holding a span per row."""
    scope = ScopeSpans(scope=InstrumentationScope(name=SCOPE_NAME, version=__version__),
                       spans=[span_for(row, content=content) for row in rows])
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource(), scope_spans=[scope])])


# --- sending --------------------------------------------------------------------------------------------


def export_calls(rows: Iterable[Mapping[str, Any]], url: str, *, content: bool = False,
                 batch_size: int = DEFAULT_BATCH, gzip: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S,
                 headers: Mapping[str, str] | None = None, client: httpx2.Client | None = None) -> ExportResult:
    """Send every row as a span, ``batch_size`` spans per request; rows are consumed lazily.

    Raises :class:`OtlpExportError` (with a one-line message and a hint) when the endpoint cannot be
    reached, times out or refuses a batch; 429/502/503/504 are retried twice, honouring Retry-After."""
    if batch_size < 1:
        raise OtlpExportError(f"batch size {batch_size} is not positive", "send at least one span per request")
    endpoint = traces_url(url)
    send_headers = {**(headers or {}), "Content-Type": CONTENT_TYPE, "User-Agent": f"workbench/{__version__}"}
    if gzip:
        send_headers["Content-Encoding"] = "gzip"
    own = client is None
    http = client or httpx2.Client(timeout=timeout_s)
    sent = requests = rejected = 0
    messages: list[str] = []
    try:
        iterator = iter(rows)
        while batch := list(islice(iterator, batch_size)):
            body = request_for(batch, content=content).SerializeToString()
            if gzip:
                body = gzip_module.compress(body)
            refused, message = _post(http, endpoint, body, send_headers, timeout_s, sent)
            requests += 1
            sent += len(batch) - refused
            rejected += refused
            if message:
                messages.append(message)
    finally:
        if own:
            http.close()
    return ExportResult(url=_shown(endpoint), spans=sent, requests=requests, rejected=rejected,
                        message="; ".join(messages))


def _post(http: httpx2.Client, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float,
          sent: int) -> tuple[int, str]:
    """POST one batch; returns (spans the endpoint rejected, its message) or raises OtlpExportError."""
    shown = _shown(url)
    before = f" ({sent} spans were sent before this)" if sent else ""
    for attempt in range(_MAX_RETRIES + 1):
        try:
            response = http.post(url, content=body, headers=headers, timeout=timeout_s)
        except httpx2.TimeoutException:
            raise OtlpExportError(f"the OTLP endpoint {shown} did not answer within {timeout_s:g} s{before}",
                                  "check that the collector is up, or allow longer with --otlp-timeout",
                                  sent) from None
        except httpx2.HTTPError as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise OtlpExportError(f"cannot reach the OTLP endpoint {shown}: {reason}{before}",
                                  "start the collector (or Langfuse / Phoenix), or check the URL and port",
                                  sent) from None
        if response.status_code in _RETRYABLE and attempt < _MAX_RETRIES:
            time.sleep(_retry_wait(response, attempt))
            continue
        break
    if response.is_success:
        return _partial(response)
    raise OtlpExportError(f"the OTLP endpoint {shown} refused the spans: HTTP {response.status_code}"
                          f"{_excerpt(response)}{before}", _hint(response), sent)


def _retry_wait(response: httpx2.Response, attempt: int) -> float:
    try:
        wait = float(response.headers.get("retry-after", ""))
    except ValueError:
        return min(0.5 * 2.0**attempt, _MAX_WAIT_S)
    return min(max(wait, 0.0), _MAX_WAIT_S)


def _partial(response: httpx2.Response) -> tuple[int, str]:
    if not response.content or "protobuf" not in response.headers.get("content-type", CONTENT_TYPE):
        return 0, ""
    try:
        reply = ExportTraceServiceResponse.FromString(response.content)
    except Exception:  # a reply we cannot read to a batch that was accepted: nothing to report
        return 0, ""
    partial = reply.partial_success
    return int(partial.rejected_spans), partial.error_message


def _excerpt(response: httpx2.Response) -> str:
    kind = response.headers.get("content-type", "")
    if not response.content or not ("json" in kind or kind.startswith("text/")):
        return ""
    text = " ".join(response.text.split())
    return f" ({text[:200]}{'…' if len(text) > 200 else ''})"


def _hint(response: httpx2.Response) -> str:
    status = response.status_code
    if response.is_redirect and response.headers.get("location"):
        target = urllib.parse.urljoin(str(response.request.url), response.headers["location"])
        return f"the endpoint redirects to {_shown(target)}: give that URL instead"
    if status in (401, 403):
        return "the endpoint wants credentials: set them in OTEL_EXPORTER_OTLP_HEADERS (e.g. Authorization=Basic …)"
    if status == 404:
        return "check the URL: an OTLP/HTTP traces endpoint usually ends in /v1/traces"
    if status == 413:
        return "send smaller requests with --otlp-batch"
    if status == 415:
        return "the endpoint does not take OTLP protobuf: point at an OTLP/HTTP traces receiver"
    if status in _RETRYABLE:
        return "the endpoint is overloaded or down: try again later"
    return "check the collector's log"


# --- a whole store --------------------------------------------------------------------------------------


def with_tags(conn: sqlite3.Connection, rows: Iterable[dict[str, Any]],
              chunk: int = DEFAULT_BATCH) -> Iterator[dict[str, Any]]:
    """``rows`` with their ``tags`` looked up from ``call_tags``, a chunk at a time (still streamed)."""
    iterator = iter(rows)
    while batch := list(islice(iterator, chunk)):
        tags: dict[str, list[str]] = {}
        marks = ", ".join("?" * len(batch))
        for call_id, tag in conn.execute(f"SELECT call_id, tag FROM call_tags WHERE call_id IN ({marks})",
                                         [row["id"] for row in batch]):
            tags.setdefault(call_id, []).append(tag)
        for row in batch:
            yield {**row, "tags": tags.get(row["id"], [])}


def export_store(store: TraceStore, filters: Filters, url: str, *, batch_size: int = DEFAULT_BATCH,
                 **options: Any) -> ExportResult:
    """Every call of ``store`` matching ``filters``, oldest first, with its tags, sent by :func:`export_calls`.

    The payload is always read: the request parameters live there (the text is sent only with ``content``)."""
    rows = with_tags(store.conn, store.export(filters, with_payload=True), min(batch_size, 900))
    return export_calls(rows, url, batch_size=batch_size, **options)
