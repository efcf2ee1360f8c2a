"""Non-streamed OpenAI Responses calls (``client.responses.create`` without ``stream``) through ``workbench proxy``:
the official openai SDK reads the same reply through the proxy as straight from the fake server, and each call's
trace holds what the SDK read: its text, function calls, refusal, reasoning summary, finish and usage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.responses import Response

from tests.test_cli import workbench
from tests.test_proxy import CANARY, Proxy, start_proxy, traces
from workbench.fakeserver.process import FakeServerProcess

TOOLS: Any = [{"type": "function", "name": "get_weather", "description": "Weather", "strict": False,
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


@pytest.fixture
def proxy(fake_server: FakeServerProcess) -> Iterator[Proxy]:
    yield from start_proxy(OPENAI_BASE_URL=f"{fake_server.base_url}/v1")


def shown(row: dict[str, Any]) -> dict[str, Any]:
    result = workbench("traces", "show", str(row["id"]), "--json")
    assert result.returncode == 0, result.stderr
    detail: dict[str, Any] = json.loads(result.stdout)
    return detail


def summary(reply: Response) -> str:
    return "".join(part.text for item in reply.output if item.type == "reasoning" for part in item.summary)


def test_non_streamed_responses_through_the_proxy_are_traced_with_what_the_sdk_read(
        proxy: Proxy, fake_server: FakeServerProcess) -> None:
    direct = openai.OpenAI(base_url=f"{fake_server.base_url}/v1", api_key=CANARY, max_retries=0)
    through = openai.OpenAI(base_url=f"{proxy.url}/openai/v1", api_key=CANARY, max_retries=0)
    calls: list[dict[str, Any]] = [
        {"model": "r@tokens=9,reasoning=5,fixed=1", "input": "Say something",
         "include": ["reasoning.encrypted_content"]},
        {"model": "r@tools=2,fixed=1", "input": "Weather in Paris?", "tools": TOOLS},
        {"model": "r@refusal=1,tokens=6,fixed=1", "input": "Say something"},
        {"model": "r@tokens=50,fixed=1", "input": "Say something", "max_output_tokens": 16},
    ]
    replies = []
    for call in calls:
        reply = through.responses.create(**call)
        assert reply.model_dump() == direct.responses.create(**call).model_dump()
        replies.append(reply)
    proxy.stop()
    rows = list(reversed(traces()))  # oldest first
    assert [row["target"] for row in rows] == [f"openai/{call['model']}" for call in calls]
    for reply, row in zip(replies, rows, strict=True):
        detail = shown(row)
        assert reply.usage is not None and row["usage_estimated"] is False
        assert (row["input_tokens"], row["output_tokens"]) == (reply.usage.input_tokens, reply.usage.output_tokens)
        assert row["reasoning_tokens"] == reply.usage.output_tokens_details.reasoning_tokens
        assert (detail["response"] or "") == reply.output_text
        calls_read = [(c.call_id, c.name, c.arguments) for c in reply.output if c.type == "function_call"]
        assert [(c["id"], c["name"], c["arguments"]) for c in detail["tool_calls"]] == calls_read
    thinking, _, refusal, cut = replies
    assert shown(rows[0])["reasoning"] == summary(thinking) != ""
    assert rows[0]["finish_reason"] == "stop" and rows[0]["reasoning_tokens"] == 5
    assert rows[1]["finish_reason"] == "tool_calls" and len(shown(rows[1])["tool_calls"]) == 2
    refused = [part.refusal for item in refusal.output if item.type == "message" for part in item.content
               if part.type == "refusal"]
    assert shown(rows[2])["refusal"] == refused[0] != "" and rows[2]["finish_reason"] == "content_filter"
    assert cut.status == "incomplete" and cut.incomplete_details is not None
    assert (rows[3]["finish_reason"], shown(rows[3])["response"]) == ("length", cut.output_text)
