"""Reasoning that goes back in the next turn of a tool loop, read from recorded streams written from the documented
formats: Anthropic ``thinking`` blocks interleaved between ``tool_use`` blocks and ``redacted_thinking`` blocks,
OpenAI Responses ``reasoning`` items with their ``encrypted_content``; each sent back, in its place, only to the
provider and wire that produced it (a mixed race drops them, as it drops Gemini's thought signatures)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.test_wire_reasoning import anthropic
from workbench.core.call_record import CallRecord, apply_event
from workbench.core.conversation import continued, record_turn, traced_reply
from workbench.core.events import ResponseStart
from workbench.core.providers.anthropic import AnthropicParser
from workbench.core.providers.base import HttpProvider, WireParser
from workbench.core.providers.openai_responses import ResponsesParser
from workbench.core.providers.turns import FOREIGN_SIGNATURE
from workbench.core.reasoning_items import ReasoningItem, origin
from workbench.core.registry import PROVIDERS, ProviderSpec, make_provider, resolve
from workbench.core.request import ChatRequest, Message, ModelRef, Params
from workbench.core.sse import SSEDecoder
from workbench.core.tool_turns import TurnToolCall
from workbench.core.validate import validated

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
REQUEST = ChatRequest.from_prompt("Weather in Paris and Rome?",
                                  params=Params(tools=(WEATHER,), thinking_budget=2048, max_tokens=4096))
ENV = {"ANTHROPIC_API_KEY": "k", "OPENAI_API_KEY": "k", "GEMINI_API_KEY": "k"}
# Another provider on the same wire (a gateway): it cannot verify the first one's signatures.
OTHERS = {**PROVIDERS, "gateway": ProviderSpec("gateway", "anthropic", "https://gw.example", ("GW_KEY",)),
          "azure": ProviderSpec("azure", "openai_responses", "https://az.example/v1", ("AZ_KEY",)),
          "vertex": ProviderSpec("vertex", "gemini", "https://vx.example", ("VX_KEY",))}


def recorded(parser: WireParser, raw: bytes, here: str) -> CallRecord:
    record = CallRecord("t/m", REQUEST)
    apply_event(record, ResponseStart(0, 0, 0, origin=here))
    decoder = SSEDecoder()
    for message in [*decoder.feed(raw), *decoder.close()]:
        for event in parser.feed(message, 1):
            apply_event(record, event)
    return record


def body(target: str, request: ChatRequest) -> dict[str, Any]:
    provider = make_provider(resolve(ModelRef.parse(target), {**ENV, "GW_KEY": "k", "AZ_KEY": "k", "VX_KEY": "k"},
                                     OTHERS), httpx2.AsyncClient())
    assert isinstance(provider, HttpProvider)
    return provider.body(provider.resolve(request))


def tool_use(index: int, call_id: str, city: str) -> list[bytes]:
    return [anthropic("content_block_start", {"index": index, "content_block": {
                "type": "tool_use", "id": call_id, "name": "get_weather", "input": {}}}),
            anthropic("content_block_delta", {"index": index, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps({"city": city})}}),
            anthropic("content_block_stop", {"index": index})]


def thinking(index: int, text: str, signature: str) -> list[bytes]:
    return [anthropic("content_block_start", {"index": index, "content_block": {
                "type": "thinking", "thinking": "", "signature": ""}}),
            anthropic("content_block_delta", {"index": index, "delta": {"type": "thinking_delta", "thinking": text}}),
            anthropic("content_block_delta", {"index": index, "delta": {"type": "signature_delta",
                                                                         "signature": signature}}),
            anthropic("content_block_stop", {"index": index})]


# Claude with interleaved thinking (beta interleaved-thinking-2025-05-14): it thinks, calls, thinks again (part of
# it redacted by the safety systems), calls again; the Messages API's documented stream events.
INTERLEAVED = b"".join([
    anthropic("message_start", {"message": {"id": "msg_01", "type": "message", "role": "assistant", "content": [],
                                            "model": "claude-sonnet-4-5", "stop_reason": None,
                                            "usage": {"input_tokens": 410, "output_tokens": 1}}}),
    *thinking(0, "Paris first.", "EqQBCkgIARABGAIiQL1"),
    *tool_use(1, "toolu_01A", "Paris"),
    anthropic("content_block_start", {"index": 2, "content_block": {
        "type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"}}),
    anthropic("content_block_stop", {"index": 2}),
    *thinking(3, "Now Rome.", "EqQBCkgIARABGAIiQL2"),
    *tool_use(4, "toolu_01B", "Rome"),
    anthropic("message_delta", {"delta": {"stop_reason": "tool_use", "stop_sequence": None},
                                "usage": {"output_tokens": 180}}),
    anthropic("message_stop", {}),
])


def test_interleaved_and_redacted_thinking_go_back_in_their_places() -> None:
    here = origin("anthropic", "anthropic")
    record = recorded(AnthropicParser(), INTERLEAVED, here)
    assert record.reasoning == "Paris first.Now Rome." and [c.id for c in record.tool_calls] == ["toolu_01A",
                                                                                                  "toolu_01B"]
    assert [b.type for b in record.blocks] == ["redacted_thinking"]  # still shown as encrypted
    request = continued(REQUEST, record_turn(REQUEST, record), {"toolu_01A": "sunny", "toolu_01B": "rain"})
    sent = body("anthropic/claude-sonnet-4-5", request)["messages"][1]["content"]
    assert [(b["type"], b.get("id") or b.get("signature") or b.get("data", "")[:8]) for b in sent] == [
        ("thinking", "EqQBCkgIARABGAIiQL1"), ("tool_use", "toolu_01A"), ("redacted_thinking", "EmwKAhgB"),
        ("thinking", "EqQBCkgIARABGAIiQL2"), ("tool_use", "toolu_01B")]
    assert sent[0]["thinking"] == "Paris first." and sent[3]["thinking"] == "Now Rome."
    assert sent[2]["data"] == "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"
    elsewhere = body("gateway/claude-sonnet-4-5", request)["messages"][1]["content"]
    assert [b["type"] for b in elsewhere] == ["tool_use", "tool_use"]  # the gateway could not verify them


def responses(kind: str, **fields: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


ENCRYPTED = "gAAAAABo1_4yExampleEncryptedReasoningContent=="
REASONING_ITEM = {"id": "rs_68a1", "type": "reasoning", "summary": [
    {"type": "summary_text", "text": "**Looking up**\n\nThe user wants Paris."}], "encrypted_content": ENCRYPTED}
CALL_ITEM = {"id": "fc_68a2", "type": "function_call", "status": "completed", "arguments": '{"city":"Paris"}',
             "call_id": "call_Xy1", "name": "get_weather"}
# An o4-mini call with include: ["reasoning.encrypted_content"] and store: false: the reasoning item's summary
# streams, its output_item.done holds the whole item with its encrypted content, then the function call.
RESPONSES_STREAM = b"".join([
    responses("response.created", sequence_number=0, response={"id": "resp_1", "status": "in_progress",
                                                               "output": []}),
    responses("response.output_item.added", sequence_number=1, output_index=0,
              item={"id": "rs_68a1", "type": "reasoning", "summary": []}),
    responses("response.reasoning_summary_part.added", sequence_number=2, item_id="rs_68a1", output_index=0,
              summary_index=0, part={"type": "summary_text", "text": ""}),
    responses("response.reasoning_summary_text.delta", sequence_number=3, item_id="rs_68a1", output_index=0,
              summary_index=0, delta="**Looking up**\n\nThe user wants Paris."),
    responses("response.reasoning_summary_text.done", sequence_number=4, item_id="rs_68a1", output_index=0,
              summary_index=0, text="**Looking up**\n\nThe user wants Paris."),
    responses("response.output_item.done", sequence_number=5, output_index=0, item=REASONING_ITEM),
    responses("response.output_item.added", sequence_number=6, output_index=1,
              item={**CALL_ITEM, "status": "in_progress", "arguments": ""}),
    responses("response.function_call_arguments.delta", sequence_number=7, item_id="fc_68a2", output_index=1,
              delta='{"city":"Paris"}'),
    responses("response.function_call_arguments.done", sequence_number=8, item_id="fc_68a2", output_index=1,
              arguments='{"city":"Paris"}'),
    responses("response.output_item.done", sequence_number=9, output_index=1, item=CALL_ITEM),
    responses("response.completed", sequence_number=10, response={
        "id": "resp_1", "status": "completed", "output": [REASONING_ITEM, CALL_ITEM],
        "usage": {"input_tokens": 75, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 150,
                  "output_tokens_details": {"reasoning_tokens": 128}, "total_tokens": 225}}),
])


def test_a_responses_reasoning_item_goes_back_with_its_encrypted_content() -> None:
    request = ChatRequest.from_prompt("Weather in Paris?", params=Params(tools=(WEATHER,), reasoning_effort="low"))
    assert body("openai-responses/o4-mini", request)["include"] == ["reasoning.encrypted_content"]
    record = recorded(ResponsesParser(), RESPONSES_STREAM, origin("openai-responses", "openai_responses"))
    assert record.reasoning == "**Looking up**\n\nThe user wants Paris." and record.tool_calls[0].id == "call_Xy1"
    follow = continued(request, record_turn(request, record), {"call_Xy1": "sunny"})
    sent = body("openai-responses/o4-mini", follow)["input"]
    assert sent[1:] == [
        {"type": "reasoning", "id": "rs_68a1", "encrypted_content": ENCRYPTED,
         "summary": [{"type": "summary_text", "text": "**Looking up**\n\nThe user wants Paris."}]},
        {"type": "function_call", "call_id": "call_Xy1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_Xy1", "output": "sunny"}]
    assert [i["type"] for i in body("azure/o4-mini", follow)["input"][1:]] == ["function_call",
                                                                               "function_call_output"]
    assert all(i.get("type") != "reasoning" for i in body("anthropic/claude-sonnet-4-5", follow)["messages"])


def test_a_reasoning_item_without_encrypted_content_is_not_sent_back() -> None:
    """With ``store: false`` OpenAI keeps nothing an id could name: the id alone would be a 404."""
    bare = RESPONSES_STREAM.replace(f', "encrypted_content": "{ENCRYPTED}"'.encode(), b"")
    record = recorded(ResponsesParser(), bare, origin("openai-responses", "openai_responses"))
    follow = continued(REQUEST, record_turn(REQUEST, record), {"call_Xy1": "sunny"})
    assert [i.get("type") for i in body("openai-responses/o4-mini", follow)["input"][1:]] == [
        "function_call", "function_call_output"]


@pytest.mark.parametrize(("target", "sent"), [
    ("gemini/gemini-3-flash", "CiQB0e2Kb3sig=="),
    ("vertex/gemini-3-flash", FOREIGN_SIGNATURE),  # Google's placeholder for a call Gemini 3 did not make here
    ("vertex/gemini-2.5-flash", None)])
def test_a_gemini_thought_signature_goes_back_to_its_own_provider_only(target: str, sent: str | None) -> None:
    turn = Message(role="assistant", content="", origin=origin("gemini", "gemini"), tool_calls=(
        TurnToolCall(id="call_0", name="get_weather", arguments='{"city":"Paris"}', signature="CiQB0e2Kb3sig=="),))
    request = replace(REQUEST, messages=(*REQUEST.messages, turn,
                                                      Message(role="tool", tool_call_id="call_0", content="sunny")))
    part = body(target, request)["contents"][1]["parts"][0]
    assert part.get("thoughtSignature") == sent


def test_a_turn_written_by_hand_keeps_what_it_holds() -> None:
    """A prompt file's turn names no origin: its signature, if it wrote one, is the user's to send."""
    turn = Message(role="assistant", content="", reasoning_items=(
        ReasoningItem(kind="thinking", text="t", signature="sig"),), tool_calls=(
        TurnToolCall(id="toolu_1", name="get_weather", arguments="{}"),))
    request = replace(REQUEST, messages=(*REQUEST.messages, turn,
                                                      Message(role="tool", tool_call_id="toolu_1", content="ok")))
    assert body("gateway/claude-sonnet-4-5", request)["messages"][1]["content"][0]["type"] == "thinking"
    # each wire sends its own kind only: Anthropic's thinking is no Responses reasoning item
    assert [i.get("type") for i in body("openai-responses/o4-mini", request)["input"][1:]] == [
        "function_call", "function_call_output"]


def test_the_trace_log_keeps_the_items_and_their_origin_to_continue() -> None:
    """What ``run --continue`` reads: the reply's items and origin with its first tool call, and an earlier turn's
    in the request (a second round sends the first round's signatures again)."""
    from workbench.core.traces.context import NO_CONTEXT
    from workbench.core.traces.ids import new_id
    from workbench.core.traces.redact import Redactor
    from workbench.core.traces.writer import rows_for

    here = origin("anthropic", "anthropic")
    record = recorded(AnthropicParser(), INTERLEAVED, here)
    record.done = True
    call, payload, _ = rows_for(record, NO_CONTEXT, Redactor(), new_id())
    request, reply = traced_reply({**call, "payload": payload})
    assert reply.origin == here and reply.reasoning_items == record_turn(REQUEST, record).reasoning_items
    again = continued(request, reply, {"toolu_01A": "a", "toolu_01B": "b"})
    record2 = CallRecord("t/m", again)
    record2.done = True
    _, payload2, _ = rows_for(record2, NO_CONTEXT, Redactor(), new_id())
    stored = json.loads(str(payload2["request_json"]))["messages"][1]
    assert stored["origin"] == here and len(stored["reasoning_items"]) == 3
    assert validated(ChatRequest, {"messages": json.loads(str(payload2["request_json"]))["messages"]}
                     ).messages[1].reasoning_items == reply.reasoning_items


def test_only_a_replied_assistant_turn_of_a_prompt_file_holds_reasoning_items(tmp_path: Path) -> None:
    from workbench.core.prompts.model import PromptFileError, load_prompt_file

    (tmp_path / "bad.yaml").write_text("name: bad\nmessages:\n  - role: user\n    content: hi\n"
                                       "    origin: 'anthropic:anthropic'\n")
    with pytest.raises(PromptFileError, match=r"bad.yaml:3: .*a user turn has no reasoning items nor origin"):
        load_prompt_file(tmp_path / "bad.yaml")


# Gemini's OpenAI-compatible endpoint (generativelanguage.googleapis.com/v1beta/openai/): a streamed tool call
# carries its thought signature in extra_content.google, which Gemini 3 wants back with the call.
GEMINI_COMPAT = b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in (
    {"choices": [{"delta": {"role": "assistant", "tool_calls": [{
        "extra_content": {"google": {"thought_signature": "EjQKMgEcsig=="}},
        "function": {"arguments": '{"city":"Paris"}', "name": "get_weather"}, "id": "function-call-1",
        "type": "function"}]}, "index": 0}], "created": 1764000000, "id": "x", "model": "gemini-3-pro-preview",
     "object": "chat.completion.chunk"},
    {"choices": [{"delta": {"role": "assistant"}, "finish_reason": "tool_calls", "index": 0}],
     "created": 1764000000, "id": "x", "model": "gemini-3-pro-preview", "object": "chat.completion.chunk",
     "usage": {"completion_tokens": 14, "prompt_tokens": 40, "total_tokens": 54}},
)) + b"data: [DONE]\n\n"


def test_a_gemini_compatible_tool_call_signature_goes_back_on_the_openai_wire_only_to_its_provider() -> None:
    from workbench.core.providers.openai_chat import ChatParser

    compat = {**OTHERS, "gcompat": ProviderSpec("gcompat", "openai_chat", "https://g.example/v1beta/openai", ("GC",)),
              "vllm": ProviderSpec("vllm", "openai_chat", "https://v.example/v1", ("VL",))}
    here = origin("gcompat", "openai_chat")
    record = recorded(ChatParser(), GEMINI_COMPAT, here)
    assert [(c.id, c.name, c.signature) for c in record.tool_calls] == [
        ("function-call-1", "get_weather", "EjQKMgEcsig==")]
    turn = record_turn(REQUEST, record)
    request = continued(REQUEST, turn, {"function-call-1": "sunny"})

    def sent(target: str) -> dict[str, Any]:
        provider = make_provider(resolve(ModelRef.parse(target), {**ENV, "GC": "k", "VL": "k"}, compat),
                                 httpx2.AsyncClient())
        assert isinstance(provider, HttpProvider)
        return provider.body(provider.resolve(request))["messages"][1]["tool_calls"][0]

    assert sent("gcompat/gemini-3-pro-preview")["extra_content"] == {"google": {"thought_signature": "EjQKMgEcsig=="}}
    assert "extra_content" not in sent("vllm/qwen3")  # another provider on the same wire never gets it
