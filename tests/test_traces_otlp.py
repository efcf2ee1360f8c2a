"""OTLP export of the trace log, checked by real receivers: every payload is decoded by the official
``opentelemetry-proto`` classes (never by our own code), and, when the ``rotel`` package is installed,
also accepted and forwarded by a real OpenTelemetry collector (Rotel)."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.test_cli import workbench
from tests.test_traces import synthetic
from workbench.core.call_record import Attempt, CallRecord
from workbench.core.errors import ProviderHTTPError
from workbench.core.events import FinishReason, Usage
from workbench.core.request import ChatRequest, Params
from workbench.core.traces import otlp
from workbench.core.traces.context import CallContext
from workbench.core.traces.filters import Filters
from workbench.core.traces.otlp import OtlpExportError, export_calls, export_store, headers_from_env, traces_url
from workbench.core.traces.store import TraceStore
from workbench.core.traces.writer import TraceWriter

CONTEXT = CallContext(prompt_name="greeter", prompt_version=3, session_id="s-1", eval_run_id="e-1",
                      tags=("nightly", "demo"))
START = 1_790_000_000.25


class Receiver:
    """A minimal OTLP/HTTP traces receiver: decodes each body with the official ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes, ExportTraceServiceRequest]] = []
        self.statuses: list[int] = []
        """Statuses to answer with, one per request, before falling back to 200."""
        self.rejected = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if self.path != "/v1/traces" or headers.get("content-type") != "application/x-protobuf":
                    status = 404 if self.path != "/v1/traces" else 415
                if status == 200:
                    decoded = ExportTraceServiceRequest.FromString(body)  # raises on invalid bytes
                    receiver.requests.append((headers, body, decoded))
                    partial = ExportTracePartialSuccess(rejected_spans=receiver.rejected,
                                                        error_message="too old" if receiver.rejected else "")
                    reply = ExportTraceServiceResponse(partial_success=partial).SerializeToString()
                    kind = "application/x-protobuf"
                else:
                    reply, kind = b'{"message": "nope"}', "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(reply)))
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def spans(self) -> list[Span]:
        return [span for _, _, request in self.requests for rs in request.resource_spans
                for ss in rs.scope_spans for span in ss.spans]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def failed_record() -> CallRecord:
    request = ChatRequest.from_prompt("What is the secret plan?", system="Be brief.",
                                      params=Params(max_tokens=50, temperature=0.2, top_p=0.9, seed=7, stop=("END",)))
    record = CallRecord("anthropic/claude-x", request)
    record.started_at = START + 100
    record.error = ProviderHTTPError("anthropic/claude-x", 503, "overloaded", "try again later")
    record.finish = FinishReason.ERROR
    record.attempts = [Attempt("anthropic/claude-x", "first", 503), Attempt("anthropic/claude-x", "retry", 503)]
    record.timing.started_ns, record.timing.sent_ns, record.timing.end_ns = 0, 0, 250_000_000
    return record


def reasoning_record() -> CallRecord:
    record = CallRecord("openai/o-mini", ChatRequest.from_prompt("Think about plums"))
    record.started_at = START + 200
    record.text_parts, record.reasoning_parts = ["Plums are purple."], ["Plums... colour..."]
    record.usage = Usage(input_tokens=20, output_tokens=30, cache_write_tokens=4, reasoning_tokens=12)
    record.finish = FinishReason.STOP
    record.served_by = "groq/llama-fallback"
    record.timing.started_ns, record.timing.sent_ns = 0, 0
    record.timing.first_content_ns, record.timing.end_ns = 80_000_000, 400_000_000
    record.timing.chunk_ns = [80_000_000, 240_000_000, 400_000_000]
    return record


def build_store(path: Path, n: int = 12) -> tuple[TraceStore, list[str]]:
    writer = TraceWriter(path)
    ids = [writer.write(r, CONTEXT) for r in synthetic(n, START)]
    ids += [writer.write(failed_record(), CONTEXT), writer.write(reasoning_record())]
    writer.close()
    return TraceStore(path), ids


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    assert kind is not None
    return [value(x) for x in v.array_value.values] if kind == "array_value" else getattr(v, kind)


def attrs(span: Span) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in span.attributes}


def kinds(span: Span) -> dict[str, str]:
    return {kv.key: kv.value.WhichOneof("value") for kv in span.attributes}


def by_call(spans: list[Span]) -> dict[str, Span]:
    return {attrs(s)["workbench.call_id"]: s for s in spans}


def test_spans_are_valid_otlp_with_genai_attributes(receiver: Receiver, tmp_path: Path) -> None:
    store, ids = build_store(tmp_path / "t.db")
    result = export_store(store, Filters(), receiver.url, batch_size=5)
    assert (result.spans, result.requests, result.rejected) == (14, 3, 0)
    assert result.url == f"{receiver.url}/v1/traces"
    assert [len(r.resource_spans[0].scope_spans[0].spans) for _, _, r in receiver.requests] == [5, 5, 4]
    headers, _, first = receiver.requests[0]
    assert headers["content-type"] == "application/x-protobuf" and "content-encoding" not in headers
    resource = {kv.key: value(kv.value) for kv in first.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "workbench" and resource["telemetry.sdk.name"] == "workbench"
    assert first.resource_spans[0].scope_spans[0].scope.name == "workbench.traces"

    spans = by_call(receiver.spans())
    assert sorted(spans) == sorted(ids)
    ok = spans[ids[1]]  # synthetic #1: openai/m1, started at START + 1, 11 ms, 100 in / 11 out
    assert ok.name == "chat m1" and ok.kind == Span.SPAN_KIND_CLIENT and ok.parent_span_id == b""
    assert ok.start_time_unix_nano == 1_790_000_001_250_000_000  # START + 1 s, exact in int ns
    assert ok.end_time_unix_nano - ok.start_time_unix_nano == 11_000_000
    assert ok.status.code == Status.STATUS_CODE_UNSET
    a, k = attrs(ok), kinds(ok)
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "m1" and a["gen_ai.response.finish_reasons"] == ["stop"]
    assert k["gen_ai.response.finish_reasons"] == "array_value"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (100, 11)
    assert k["gen_ai.usage.input_tokens"] == k["gen_ai.usage.output_tokens"] == "int_value"
    assert a["gen_ai.usage.cache_read.input_tokens"] == 0 and a["workbench.attempt_count"] == 1
    assert a["workbench.cost_usd"] == pytest.approx(0.001) and k["workbench.cost_usd"] == "double_value"
    assert a["workbench.ttft_ms"] == pytest.approx(2.0) and k["workbench.ttft_ms"] == "double_value"
    assert a["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.002)
    assert "workbench.tokens_per_s" not in a  # unknown for this call (no chunk times): left out
    assert (a["workbench.prompt.name"], a["workbench.prompt.version"]) == ("greeter", 3)
    assert k["workbench.prompt.version"] == "int_value"
    assert (a["workbench.session_id"], a["workbench.eval_run_id"]) == ("s-1", "e-1")
    assert a["workbench.tags"] == ["demo", "nightly"] and k["workbench.tags"] == "array_value"
    assert "error.type" not in a and "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
    assert spans[ids[0]].name == "chat m0" and attrs(spans[ids[0]])["gen_ai.provider.name"] == "anthropic"
    assert attrs(spans[ids[0]])["gen_ai.response.finish_reasons"] == ["length"]
    assert "workbench.cost_usd" not in attrs(spans[ids[0]])  # unpriced: left out, not 0

    failed = spans[ids[-2]]
    fa = attrs(failed)
    assert failed.name == "chat claude-x" and failed.status.code == Status.STATUS_CODE_ERROR
    assert "HTTP 503 overloaded: try again later" in failed.status.message
    assert fa["error.type"] == "http_503" and fa["workbench.attempt_count"] == 2
    assert failed.end_time_unix_nano - failed.start_time_unix_nano == 250_000_000
    assert (fa["gen_ai.request.max_tokens"], fa["gen_ai.request.seed"]) == (50, 7)
    assert kinds(failed)["gen_ai.request.max_tokens"] == "int_value"
    assert (fa["gen_ai.request.temperature"], fa["gen_ai.request.top_p"]) == (0.2, 0.9)
    assert fa["gen_ai.request.stop_sequences"] == ["END"]
    assert "gen_ai.usage.input_tokens" not in fa

    reasoned = attrs(spans[ids[-1]])
    assert reasoned["gen_ai.usage.reasoning.output_tokens"] == 12
    assert reasoned["gen_ai.usage.cache_creation.input_tokens"] == 4
    assert reasoned["gen_ai.response.model"] == "llama-fallback"
    assert reasoned["workbench.served_by"] == "groq/llama-fallback" and "workbench.tags" not in reasoned
    assert reasoned["workbench.tokens_per_s"] > 0 and kinds(spans[ids[-1]])["workbench.tokens_per_s"] == "double_value"

    raw = b"".join(body for _, body, _ in receiver.requests)
    for text in (b"question number", b"secret plan", b"Be brief", b"Plums are purple", b"answer 1"):
        assert text not in raw  # no prompt or reply text leaves without the flag


def test_ids_are_stable_across_exports(receiver: Receiver, tmp_path: Path) -> None:
    store, ids = build_store(tmp_path / "t.db", n=4)
    export_store(store, Filters(), receiver.url)
    first = {attrs(s)["workbench.call_id"]: (s.trace_id, s.span_id) for s in receiver.spans()}
    receiver.requests.clear()
    export_store(store, Filters(), receiver.url + "/v1/traces/")
    second = {attrs(s)["workbench.call_id"]: (s.trace_id, s.span_id) for s in receiver.spans()}
    assert first == second and len(first) == len(ids) == 6
    assert all(len(t) == 16 and len(s) == 8 for t, s in first.values())
    assert len({t for t, _ in first.values()}) == 6 and len({s for _, s in first.values()}) == 6


def test_text_only_with_content_flag_and_gzip(receiver: Receiver, tmp_path: Path) -> None:
    store, ids = build_store(tmp_path / "t.db", n=2)
    result = export_store(store, Filters(), receiver.url, content=True, gzip=True)
    assert result.spans == 4 and receiver.requests[0][0]["content-encoding"] == "gzip"
    spans = by_call(receiver.spans())
    failed = attrs(spans[ids[-2]])
    assert json.loads(failed["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(failed["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "What is the secret plan?"}]}]
    reasoned = json.loads(attrs(spans[ids[-1]])["gen_ai.output.messages"])
    assert reasoned == [{"role": "assistant", "finish_reason": "stop",
                         "parts": [{"type": "reasoning", "content": "Plums... colour..."},
                                   {"type": "text", "content": "Plums are purple."}]}]
    first = attrs(spans[ids[0]])
    assert json.loads(first["gen_ai.output.messages"])[0]["parts"][0]["content"] == "answer 0"
    assert kinds(spans[ids[0]])["gen_ai.input.messages"] == "string_value"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_failures_are_one_clear_line(receiver: Receiver, tmp_path: Path) -> None:
    rows = [{"id": "01JTEST0000000000000000000", "ts": START, "provider": "openai", "model": "m", "status": "ok"}]
    with pytest.raises(OtlpExportError) as refused:
        export_calls(rows, f"http://127.0.0.1:{free_port()}", timeout_s=2)
    assert "cannot reach the OTLP endpoint" in str(refused.value) and "\n" not in str(refused.value)
    assert refused.value.hint and "collector" in refused.value.hint

    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(OtlpExportError, match=r"did not answer within 0\.3 s"):
            export_calls(rows, f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.3)

    receiver.statuses = [401]
    with pytest.raises(OtlpExportError, match=r"HTTP 401 \(\{\"message\": \"nope\"\}\)") as denied:
        export_calls(rows, f"http://user:pw@{receiver.url.removeprefix('http://')}")
    assert "OTEL_EXPORTER_OTLP_HEADERS" in (denied.value.hint or "") and "pw" not in str(denied.value)

    with pytest.raises(OtlpExportError, match="not an http"):
        export_calls(rows, "localhost:4318")

    receiver.statuses = [503, 503]  # retried (Retry-After: 0), then accepted
    assert export_calls(rows, receiver.url).spans == 1 and len(receiver.requests) == 1

    receiver.rejected = 1
    result = export_calls(rows, receiver.url, headers={"Authorization": "Basic abc"})
    assert (result.spans, result.rejected, result.message) == (0, 1, "too old")
    assert receiver.requests[-1][0]["authorization"] == "Basic abc"


def test_urls_and_env_headers() -> None:
    assert traces_url("http://h:4318") == traces_url("http://h:4318/") == "http://h:4318/v1/traces"
    assert traces_url("http://h:4318/v1/traces") == "http://h:4318/v1/traces"
    assert traces_url("https://lf.example/api/public/otel") == "https://lf.example/api/public/otel/v1/traces"
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic%20eHk=, x-team = a"}
    assert headers_from_env(env) == {"Authorization": "Basic eHk=", "x-team": "a"}
    assert headers_from_env({**env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "k=v"}) == {"k": "v"}
    assert otlp.trace_id("x") == otlp.trace_id("x") != otlp.trace_id("y")


def test_a_live_exporter_can_send_writer_rows(receiver: Receiver) -> None:
    from workbench.core.traces.redact import Redactor
    from workbench.core.traces.writer import rows_for

    row = otlp.call_row(*rows_for(failed_record(), CONTEXT, Redactor.build(), "01JLIVE0000000000000000000"))
    assert export_calls([row], receiver.url).spans == 1
    [span] = receiver.spans()
    assert span.status.code == Status.STATUS_CODE_ERROR and attrs(span)["workbench.tags"] == ["demo", "nightly"]


def test_a_real_collector_accepts_and_forwards_the_spans(receiver: Receiver, tmp_path: Path) -> None:
    rotel = pytest.importorskip("rotel", reason="the Rotel collector (pip install rotel) is not installed")
    agent = Path(rotel.__file__).parent / "rotel-agent"
    http_port, grpc_port = free_port(), free_port()
    proc = subprocess.Popen(
        [str(agent), "start", "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
         "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}", "--exporter", "otlp",
         "--otlp-exporter-endpoint", receiver.url, "--otlp-exporter-protocol", "http", "--batch-timeout", "50ms",
         "--pid-file", str(tmp_path / "rotel.pid"), "--log-file", str(tmp_path / "rotel.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "the collector did not start"
                time.sleep(0.05)
        store, ids = build_store(tmp_path / "t.db", n=6)
        result = export_store(store, Filters(), f"http://127.0.0.1:{http_port}", batch_size=3, gzip=True)
        assert (result.spans, result.requests, result.rejected) == (8, 3, 0)
        while len(receiver.spans()) < 8:
            assert time.monotonic() < deadline + 15, "the collector did not forward the spans"
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(10)
    forwarded = by_call(receiver.spans())
    assert sorted(forwarded) == sorted(ids)
    expected = {row["id"]: otlp.span_for(row) for row in otlp.with_tags(store.conn, store.export())}
    for call_id, span in forwarded.items():
        mine = expected[call_id]
        assert (span.trace_id, span.span_id, span.name, span.kind) == (mine.trace_id, mine.span_id, mine.name,
                                                                        mine.kind)
        assert (span.start_time_unix_nano, span.end_time_unix_nano) == (mine.start_time_unix_nano,
                                                                        mine.end_time_unix_nano)
        assert attrs(span) == attrs(mine) and kinds(span) == kinds(mine) and span.status == mine.status


def test_cli_export_otlp(receiver: Receiver, tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    build_store(path, n=5)[0].close()
    sent = workbench("traces", "--db", str(path), "export", "--otlp", receiver.url, "--otlp-batch", "4")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith(f"sent 7 spans to {receiver.url}/v1/traces in 2 requests")
    assert len(receiver.spans()) == 7 and not any("gen_ai.input.messages" in attrs(s) for s in receiver.spans())

    errors = workbench("traces", "--db", str(path), "export", "--status", "error", "--otlp-content",
                       "--otlp", f"{receiver.url}/v1/traces", env={"OTEL_EXPORTER_OTLP_HEADERS": "x-team=qa"})
    assert errors.returncode == 0 and "sent 1 spans" in errors.stdout
    [failed] = receiver.spans()[7:]
    assert failed.status.code == Status.STATUS_CODE_ERROR and "secret plan" in attrs(failed)["gen_ai.input.messages"]
    assert receiver.requests[-1][0]["x-team"] == "qa"

    none = workbench("traces", "--db", str(path), "export", "--tag", "absent", "--otlp", receiver.url)
    assert none.returncode == 0 and none.stdout.startswith("no calls match") and len(receiver.spans()) == 8

    down = workbench("traces", "--db", str(path), "export", "--otlp", f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 1 and down.stdout == ""
    assert down.stderr.count("\n") == 1 and "cannot reach the OTLP endpoint" in down.stderr
    assert "Traceback" not in down.stderr


def test_tool_turns_export_as_tool_call_and_tool_call_response_parts(receiver: Receiver, tmp_path: Path) -> None:
    from workbench.core.request import Message
    from workbench.core.tool_turns import TurnToolCall

    request = ChatRequest(messages=(
        Message(role="user", content="Weather?"),
        Message(role="assistant", content="", tool_calls=(TurnToolCall(id="call_1", name="get_weather",
                                                                       arguments='{"city":"Paris"}'),)),
        Message(role="tool", tool_call_id="call_1", content="sunny")))
    record = CallRecord(target="fake/m", request=request, text_parts=["Sunny."], done=True,
                        finish=FinishReason.STOP, started_at=START)
    writer = TraceWriter(tmp_path / "t.db")
    writer.write(record)
    writer.close()
    export_store(TraceStore(tmp_path / "t.db"), Filters(), receiver.url, content=True)
    [span] = receiver.spans()
    assert json.loads(attrs(span)["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather",
                                         "arguments": '{"city":"Paris"}'}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny"}]}]
