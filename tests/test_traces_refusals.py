"""The trace log keeps a refused reply's refusal and a reply's provider blocks: stored beside its text, shown by
``traces show``, the refusal exported to OTLP as a part of the output message; metadata-only tracing keeps none of
their text."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_traces_otlp import attrs
from tests.test_traces_tools import write
from workbench.core.call_record import CallRecord, ProviderBlock
from workbench.core.events import FinishReason
from workbench.core.request import ChatRequest
from workbench.core.traces import otlp
from workbench.core.traces.redact import Redactor
from workbench.core.traces.store import TraceStore
from workbench.figures import trace_detail


def refused_record() -> CallRecord:
    record = CallRecord("anthropic/claude-x", ChatRequest.from_prompt("how do I…"))
    record.started_at = 1_700_000_000.0
    record.text_parts, record.refusal_parts, record.refusal_category = ["I can"], ["Refused due to policy."], "cyber"
    record.blocks = [ProviderBlock("server_tool_use", "srvtoolu_1", "web_search", ['{"query":', '"x"}']),
                     ProviderBlock("web_search_tool_result", "srvtoolu_1", "", ['[{"title":"X"}]']),
                     ProviderBlock("fallback", "", "", ["claude-opus-4-5 → claude-sonnet-4-5 (overloaded)"])]
    record.finish, record.finish_raw = FinishReason.CONTENT_FILTER, "refusal"
    return record


def test_a_refusal_and_blocks_are_stored_shown_and_exported(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = TraceStore(path)
    call = store.get(write(path, refused_record()))
    assert call is not None and call["finish_reason"] == "content_filter" and call["finish_raw"] == "refusal"
    payload = call["payload"]
    assert (payload["refusal_text"], payload["refusal_category"]) == ("Refused due to policy.", "cyber")
    assert json.loads(payload["blocks_json"])[0] == {"type": "server_tool_use", "id": "srvtoolu_1",
                                                     "name": "web_search", "content": '{"query":"x"}'}
    shown = trace_detail(call).plain
    assert "refused [cyber]: Refused due to policy." in shown and '⚙ server_tool_use web_search: {"query":"x"}' in shown
    row = next(otlp.with_tags(store.conn, store.export()))
    output = json.loads(attrs(otlp.span_for(row, content=True))["gen_ai.output.messages"])
    assert output[0]["parts"] == [
        {"type": "server_tool_call", "id": "srvtoolu_1", "name": "web_search", "arguments": '{"query":"x"}'},
        {"type": "server_tool_call_response", "id": "srvtoolu_1", "response": '[{"title":"X"}]',
         "result_type": "web_search_tool_result"},
        {"type": "fallback", "content": "claude-opus-4-5 → claude-sonnet-4-5 (overloaded)"},
        {"type": "text", "content": "I can"}, {"type": "refusal", "content": "Refused due to policy."}]
    assert output[0]["finish_reason"] == "content_filter"


def test_a_plain_reply_stores_no_refusal_and_metadata_only_keeps_no_refusal_text(tmp_path: Path) -> None:
    plain = CallRecord("openai/gpt-4o", ChatRequest.from_prompt("hi"))
    plain.text_parts = ["hello"]
    call = TraceStore(tmp_path / "p.db").get(write(tmp_path / "p.db", plain))
    assert call is not None and call["payload"]["refusal_text"] is None and call["payload"]["blocks_json"] is None
    meta = TraceStore(tmp_path / "m.db").get(write(tmp_path / "m.db", refused_record(), Redactor(metadata_only=True)))
    assert meta is not None and meta["payload"]["refusal_text"] is None
    assert meta["payload"]["refusal_category"] == "cyber"
    assert [b["content"] for b in json.loads(meta["payload"]["blocks_json"])] == [None, None, None]
