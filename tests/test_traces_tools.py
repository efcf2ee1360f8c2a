"""The trace log keeps a reply's tool calls: stored beside its text, shown by ``traces show``, exported to OTLP."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_traces_otlp import attrs
from workbench.core.call_record import CallRecord, ToolCall
from workbench.core.events import FinishReason
from workbench.core.request import ChatRequest
from workbench.core.traces import otlp
from workbench.core.traces.context import CallContext
from workbench.core.traces.redact import Redactor
from workbench.core.traces.store import TraceStore
from workbench.core.traces.writer import TraceWriter
from workbench.figures import trace_detail


def tool_record() -> CallRecord:
    record = CallRecord("openai/gpt-4o", ChatRequest.from_prompt("weather?"))
    record.started_at = 1_700_000_000.0
    record.tool_calls = [ToolCall("call_1", "get_weather", ['{"city":', '"Paris"}']), ToolCall("", "get_time", [])]
    record.finish, record.finish_raw = FinishReason.TOOL_CALLS, "tool_calls"
    return record


def write(path: Path, record: CallRecord, redactor: Redactor | None = None) -> str:
    writer = TraceWriter(path, redactor)
    call_id = writer.write(record, CallContext())
    writer.close()
    return call_id


def test_tool_calls_are_stored_shown_and_exported(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    call_id = write(path, tool_record())
    store = TraceStore(path)
    call = store.get(call_id)
    assert call is not None and call["finish_reason"] == "tool_calls"
    assert json.loads(call["payload"]["tool_calls_json"]) == [
        {"id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"id": "", "name": "get_time", "arguments": ""}]
    shown = trace_detail(call).plain
    assert "── tool calls ──" in shown and 'get_weather({"city":"Paris"})  id call_1' in shown
    row = next(otlp.with_tags(store.conn, store.export()))
    output = json.loads(attrs(otlp.span_for(row, content=True))["gen_ai.output.messages"])
    assert output[0]["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "tool_call", "id": "", "name": "get_time", "arguments": ""}]
    assert output[0]["finish_reason"] == "tool_calls"


def test_a_reply_without_tool_calls_stores_none_and_metadata_only_keeps_no_arguments(tmp_path: Path) -> None:
    plain = CallRecord("openai/gpt-4o", ChatRequest.from_prompt("hi"))
    plain.text_parts = ["hello"]
    store_path = tmp_path / "p.db"
    call = TraceStore(store_path).get(write(store_path, plain))
    assert call is not None and call["payload"]["tool_calls_json"] is None
    meta_path = tmp_path / "m.db"
    meta = TraceStore(meta_path).get(write(meta_path, tool_record(), Redactor.build(metadata_only=True)))
    assert meta is not None
    assert [c["arguments"] for c in json.loads(meta["payload"]["tool_calls_json"])] == [None, None]
