"""The fake provider server over real HTTP on 127.0.0.1: framing, scenarios, faults, log."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from tests.timing_slack import LoopLateness, eventually
from workbench.fakeserver import (
    FakeServer,
    ScenarioError,
    count_input_tokens,
    expected_reasoning,
    expected_text,
    parse_model,
    split_model,
)

PROMPT = "tell me something"
MESSAGES = [{"role": "user", "content": PROMPT}]
IN_TOKENS = count_input_tokens([PROMPT])


@pytest.fixture
async def client(server: FakeServer) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=server.base_url, timeout=5) as c:
        yield c


def chat_body(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES, "stream": True, **extra}


def sse_events(raw: bytes, sep: bytes = b"\n\n") -> list[bytes]:
    assert raw.endswith(sep)
    return raw[: -len(sep)].split(sep)


def sse_data(raw: bytes) -> list[str]:
    out = []
    for event in sse_events(raw):
        lines = event.split(b"\n")
        data = [ln[6:] for ln in lines if ln.startswith(b"data: ")]
        assert len(data) == 1, event
        out.append(data[0].decode())
    return out


def named_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for event in sse_events(raw):
        name, data = event.split(b"\n")
        assert name.startswith(b"event: ") and data.startswith(b"data: ")
        out.append((name[7:].decode(), json.loads(data[6:])))
    return out


# ----------------------------------------------------------------------------------- unit: scenario
def test_scenario_defaults_and_keys() -> None:
    sc = parse_model("gpt-4o")
    assert (sc.name, sc.ttft_ms, sc.tps, sc.tokens, sc.usage, sc.reasoning) == ("gpt-4o", 0.0, None, 32, True, 0)
    assert sc.status is None and sc.fail == 0 and sc.hang is None and sc.disconnect is None and not sc.malformed
    sc = parse_model("m@ttft=12.5,tps=40,tokens=7,usage=0,reasoning=3,status=429,retry_after=2,id=t1,hang=stream")
    assert (sc.name, sc.ttft_ms, sc.tps, sc.tokens, sc.usage, sc.reasoning) == ("m", 12.5, 40.0, 7, False, 3)
    assert (sc.status, sc.fail, sc.retry_after, sc.id, sc.hang) == (429, 1, "2", "t1", "stream")
    assert parse_model("m@status=503,fail=3").fail == 3
    assert parse_model("m@fail=2").status == 500
    assert parse_model("m@disconnect=4,malformed=1").disconnect == 4
    # a Vertex-style '@version' without '=' is part of the name
    assert split_model("claude-3-5-sonnet@20240620") == ("claude-3-5-sonnet@20240620", "")
    assert parse_model("claude@20240620@tokens=2").name == "claude@20240620"
    a = parse_model("m@status=429,id=x").counter_key("openai_chat")
    assert a == parse_model("m@id=x,status=429").counter_key("openai_chat")
    assert a != parse_model("m@status=429,id=y").counter_key("openai_chat")


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("m@foo=1", "foo"),
        ("m@ttft=-1", "ttft"),
        ("m@tps=0", "tps"),
        ("m@tokens=x", "tokens"),
        ("m@usage=2", "usage"),
        ("m@status=200", "status"),
        ("m@hang=forever", "hang"),
        ("m@tokens=1,tokens=2", "tokens"),
        ("m@retry_after=soon", "retry_after"),
        ("m@tools=1,tool_deltas=0", "tool_deltas"),
    ],
)
def test_scenario_rejects(model: str, key: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_model(model)
    assert info.value.key == key
    assert f"'{key}'" in str(info.value)


def test_expected_text_is_deterministic() -> None:
    a = expected_text("gpt-4o", "hi", 40)
    assert a == expected_text("gpt-4o@ttft=5,tps=9", "hi", 40)
    assert expected_text("gpt-4o", "hi", 10) == a[: len(expected_text("gpt-4o", "hi", 10))]
    assert a != expected_text("gpt-4o", "hello", 40) and a != expected_text("claude", "hi", 40)
    assert len(a.split(" ")) == 40 and not a.startswith(" ")
    assert expected_reasoning("m", "hi", 5) != expected_text("m", "hi", 5)
    assert count_input_tokens(["be brief", "hello world foo"]) == 2 + 3 + 3 + 3


# ------------------------------------------------------------------------------------ openai chat
async def test_chat_stream_framing(client: httpx2.AsyncClient) -> None:
    body = chat_body("gpt-4o@tokens=5", stream_options={"include_usage": True})
    r = await client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.headers["x-request-id"].startswith("req_")
    assert b"\r" not in r.content
    data = sse_data(r.content)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-4o@tokens=5" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:-2])
    assert text == expected_text("gpt-4o", PROMPT, 5)
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    usage = chunks[-1]["usage"]
    assert usage["prompt_tokens"] == IN_TOKENS and usage["completion_tokens"] == 5
    assert usage["total_tokens"] == IN_TOKENS + 5
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


async def test_chat_usage_flags_and_length(client: httpx2.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json=chat_body("m@tokens=3"))
    chunks = [json.loads(d) for d in sse_data(r.content)[:-1]]
    assert all("usage" not in c for c in chunks)  # no include_usage: no usage key at all

    body = chat_body("m@tokens=3,usage=0", stream_options={"include_usage": True})
    chunks = [json.loads(d) for d in sse_data((await client.post("/v1/chat/completions", json=body)).content)[:-1]]
    assert all(c["choices"] and c["usage"] is None for c in chunks)  # the usage chunk is dropped

    body = chat_body("m@tokens=10,reasoning=2", max_completion_tokens=6, stream_options={"include_usage": True})
    chunks = [json.loads(d) for d in sse_data((await client.post("/v1/chat/completions", json=body)).content)[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks[1:-2]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == expected_reasoning("m", PROMPT, 2)
    assert "".join(d.get("content", "") for d in deltas) == expected_text("m", PROMPT, 4)
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 6
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2

    r = await client.post("/v1/chat/completions", json={**chat_body("m@tokens=4"), "stream": False, "max_tokens": 3})
    assert r.headers["content-type"] == "application/json" and "content-length" in r.headers
    full = r.json()
    assert full["object"] == "chat.completion" and full["choices"][0]["finish_reason"] == "length"
    assert full["choices"][0]["message"]["content"] == expected_text("m", PROMPT, 3)


async def test_chat_json_mode_replies_with_a_json_object_of_the_same_words(client: httpx2.AsyncClient) -> None:
    """With ``json=1``, ``response_format`` ``json_object`` / ``json_schema`` answers JSON, as OpenAI does:
    ``{"answer": text}``, streamed in as many tokens as the plain reply (the braces ride on the first and last);
    without it, or without a ``response_format``, the plain words."""
    plain = await client.post("/v1/chat/completions", json={**chat_body("m@tokens=4,json=1"), "stream": False})
    assert plain.json()["choices"][0]["message"]["content"] == expected_text("m", PROMPT, 4)
    unasked = await client.post("/v1/chat/completions", json={**chat_body("m@tokens=4"), "stream": False,
                                                              "response_format": {"type": "json_object"}})
    assert unasked.json()["choices"][0]["message"]["content"] == expected_text("m", PROMPT, 4)
    for fmt in ({"type": "json_object"}, {"type": "json_schema", "json_schema": {"name": "a", "schema": {}}}):
        r = await client.post("/v1/chat/completions", json={**chat_body("m@tokens=4,json=1"), "stream": False,
                                                            "response_format": fmt})
        assert json.loads(r.json()["choices"][0]["message"]["content"]) == {"answer": expected_text("m", PROMPT, 4)}
        body = chat_body("m@tokens=4,json=1", response_format=fmt, stream_options={"include_usage": True})
        chunks = [json.loads(d) for d in sse_data((await client.post("/v1/chat/completions", json=body)).content)[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        assert json.loads(text) == {"answer": expected_text("m", PROMPT, 4)}
        assert chunks[-1]["usage"]["completion_tokens"] == 4


# -------------------------------------------------------------------------------- openai responses
async def test_responses_stream_framing(client: httpx2.AsyncClient) -> None:
    body = {"model": "gpt-5@tokens=4,reasoning=2", "instructions": "be brief", "input": PROMPT, "stream": True}
    r = await client.post("/v1/responses", json=body)
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert b"[DONE]" not in r.content
    events = named_events(r.content)
    assert all(name == data["type"] for name, data in events)
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    names = [n for n, _ in events]
    assert names[:2] == ["response.created", "response.in_progress"]
    assert names[-1] == "response.completed"
    i = names.index("response.output_item.added", 3)
    assert names[i : i + 2] == ["response.output_item.added", "response.content_part.added"]
    assert names[-4:-1] == ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    reasoning = "".join(d["delta"] for n, d in events if n == "response.reasoning_summary_text.delta")
    assert reasoning == expected_reasoning("gpt-5", PROMPT, 2)
    text = "".join(d["delta"] for n, d in events if n == "response.output_text.delta")
    assert text == expected_text("gpt-5", PROMPT, 4)
    final = events[-1][1]["response"]
    assert final["status"] == "completed" and final["output"][1]["content"][0]["text"] == text
    assert final["usage"] == {
        "input_tokens": count_input_tokens(["be brief", PROMPT]),
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": count_input_tokens(["be brief", PROMPT]) + 6,
    }

    body = {"model": "gpt-5@tokens=9", "input": [{"role": "user", "content": PROMPT}], "max_output_tokens": 3}
    r = await client.post("/v1/responses", json={**body, "stream": True})
    name, last = named_events(r.content)[-1]
    assert name == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["usage"]["output_tokens"] == 3
    r = await client.post("/v1/responses", json=body)
    assert r.json()["status"] == "incomplete" and r.json()["output"][0]["content"][0]["text"] == expected_text(
        "gpt-5", PROMPT, 3
    )


# --------------------------------------------------------------------------------------- anthropic
async def test_anthropic_stream_framing(client: httpx2.AsyncClient) -> None:
    body = {"model": "claude@tokens=3,reasoning=2", "max_tokens": 100, "messages": MESSAGES, "stream": True}
    r = await client.post("/v1/messages", json=body)
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert r.headers["request-id"].startswith("req_")
    assert b'event: content_block_start\ndata: {"type":"content_block_start","index":0' in r.content
    assert b'"thinking","thinking":"","signature":""}}\n\nevent: ping\ndata: {"type": "ping"}\n\n' in r.content
    assert r.content.count(b"event: ping") == 1
    events = named_events(r.content)
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert events[0][1]["message"]["usage"] == {
        "input_tokens": IN_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 1,
        "service_tier": "standard",
    }
    deltas = [(d["index"], d["delta"]) for n, d in events if n == "content_block_delta"]
    assert "".join(x["thinking"] for i, x in deltas if x["type"] == "thinking_delta") == expected_reasoning(
        "claude", PROMPT, 2
    )
    assert [i for i, x in deltas if x["type"] == "signature_delta"] == [0]
    assert "".join(x["text"] for i, x in deltas if i == 1) == expected_text("claude", PROMPT, 3)
    message_delta = events[-2][1]
    assert message_delta["delta"]["stop_reason"] == "end_turn"
    assert message_delta["usage"]["output_tokens"] == 5 and message_delta["usage"]["input_tokens"] == IN_TOKENS

    r = await client.post("/v1/messages", json={**body, "model": "claude@tokens=9", "max_tokens": 4})
    assert named_events(r.content)[-2][1]["delta"]["stop_reason"] == "max_tokens"

    r = await client.post("/v1/messages", json={"model": "claude", "messages": MESSAGES})
    assert r.status_code == 400
    assert r.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
        "request_id": r.headers["request-id"],
    }


# ------------------------------------------------------------------------------------------ gemini
async def test_gemini_stream_framing(client: httpx2.AsyncClient) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    url = "/v1beta/models/gemini-2.5-flash%40tokens%3D4%2Creasoning%3D2:streamGenerateContent?alt=sse"
    r = await client.post(url, json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    events = sse_events(r.content, b"\r\n\r\n")
    assert b"\n\n" not in r.content.replace(b"\r\n\r\n", b"")
    assert b"[DONE]" not in r.content
    chunks = [json.loads(e.removeprefix(b"data: ")) for e in events]
    assert all(c["modelVersion"] == "gemini-2.5-flash@tokens=4,reasoning=2" for c in chunks)
    parts = [c["candidates"][0]["content"]["parts"][0] for c in chunks]
    assert all(c["candidates"][0]["content"]["role"] == "model" for c in chunks)
    assert "".join(p["text"] for p in parts if p.get("thought")) == expected_reasoning("gemini-2.5-flash", PROMPT, 2)
    assert "".join(p["text"] for p in parts if not p.get("thought")) == expected_text("gemini-2.5-flash", PROMPT, 4)
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None] * 6 + ["STOP"]
    usage = [c["usageMetadata"] for c in chunks]
    assert [u["candidatesTokenCount"] for u in usage] == [0, 0, 1, 2, 3, 4, 4]
    assert [u["thoughtsTokenCount"] for u in usage] == [1, 2, 2, 2, 2, 2, 2]
    assert usage[-1]["promptTokenCount"] == IN_TOKENS and usage[-1]["totalTokenCount"] == IN_TOKENS + 6
    assert b'"usageMetadata": {"promptTokenCount": ' in r.content  # Google's ": " separators

    capped = {**body, "generationConfig": {"maxOutputTokens": 2}}
    r = await client.post("/v1beta/models/g@tokens=5:streamGenerateContent?alt=sse", json=capped)
    last = json.loads(sse_events(r.content, b"\r\n\r\n")[-1].removeprefix(b"data: "))
    assert last["candidates"][0]["finishReason"] == "MAX_TOKENS" and last["usageMetadata"]["candidatesTokenCount"] == 2

    r = await client.post("/v1beta/models/g@tokens=5:generateContent", json=body)
    full = r.json()
    assert full["candidates"][0]["content"]["parts"][0]["text"] == expected_text("g", PROMPT, 5)
    r = await client.post("/v1beta/models/g@tokens=3:streamGenerateContent", json=body)  # no alt=sse: a JSON array
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in r.json()][-1] == ""


# ------------------------------------------------------------------------------------------ ollama
async def test_ollama_ndjson(client: httpx2.AsyncClient) -> None:
    body = {"model": "llama3.2@tokens=3,reasoning=1", "messages": MESSAGES}
    r = await client.post("/api/chat", json=body)
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = r.content.split(b"\n")
    assert lines[-1] == b""
    objs = [json.loads(ln) for ln in lines[:-1]]
    assert [o["done"] for o in objs] == [False] * 4 + [True]
    assert objs[0]["message"] == {
        "role": "assistant",
        "content": "",
        "thinking": expected_reasoning("llama3.2", PROMPT, 1),
    }
    assert "".join(o["message"]["content"] for o in objs) == expected_text("llama3.2", PROMPT, 3)
    assert objs[0]["created_at"].endswith("Z") and "T" in objs[0]["created_at"]
    final = objs[-1]
    assert final["done_reason"] == "stop" and final["prompt_eval_count"] == IN_TOKENS and final["eval_count"] == 4
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(final[key], int) and final[key] > 0

    r = await client.post("/api/chat", json={**body, "stream": False, "options": {"num_predict": 2}})
    one = r.json()
    assert one["done"] is True and one["done_reason"] == "length" and one["eval_count"] == 2
    assert one["message"]["content"] == expected_text("llama3.2", PROMPT, 1)


async def test_input_tokens_consistent_across_wires(client: httpx2.AsyncClient) -> None:
    system, user = "be brief please", "hello there world"
    want = count_input_tokens([system, user])
    r = await client.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]},
    )
    assert r.json()["usage"]["prompt_tokens"] == want
    r = await client.post("/v1/responses", json={"model": "m", "instructions": system, "input": user})
    assert r.json()["usage"]["input_tokens"] == want
    r = await client.post(
        "/v1/messages",
        json={
            "model": "m",
            "max_tokens": 50,
            "system": [{"type": "text", "text": system}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": user}]}],
        },
    )
    assert r.json()["usage"]["input_tokens"] == want
    r = await client.post(
        "/v1beta/models/m:generateContent",
        json={"systemInstruction": {"parts": [{"text": system}]}, "contents": [{"parts": [{"text": user}]}]},
    )
    assert r.json()["usageMetadata"]["promptTokenCount"] == want
    r = await client.post(
        "/api/chat",
        json={
            "model": "m",
            "stream": False,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        },
    )
    assert r.json()["prompt_eval_count"] == want


# ------------------------------------------------------------------------------- errors and counters
async def test_status_fail_retry_after_and_id(server: FakeServer, client: httpx2.AsyncClient) -> None:
    model = "gpt-4o@status=429,fail=2,retry_after=3,id=t1"
    codes = []
    for _ in range(3):
        r = await client.post("/v1/chat/completions", json=chat_body(model))
        codes.append(r.status_code)
        if r.status_code == 429:
            assert r.headers["retry-after"] == "3" and r.headers["x-request-id"].startswith("req_")
            err = r.json()["error"]
            assert err["code"] == "rate_limit_exceeded" and err["type"] == "tokens" and err["param"] is None
            assert "Rate limit reached for gpt-4o" in err["message"]
    assert codes == [429, 429, 200]
    # a different id has its own counter, another path too
    assert (await client.post("/v1/chat/completions", json=chat_body(model.replace("t1", "t2")))).status_code == 429
    r = await client.post("/v1/responses", json={"model": model, "input": "x"})
    assert r.status_code == 429
    # reset clears the counters
    assert (await client.post("/_fake/reset")).status_code == 200
    assert server.log == []
    assert (await client.post("/v1/chat/completions", json=chat_body(model))).status_code == 429
    assert server.log[-1]["outcome"] == "error" and server.log[-1]["status"] == 429
    assert server.log[-1]["scenario_id"] == "t1"


@pytest.mark.parametrize(
    ("path", "body", "status", "check"),
    [
        (
            "/v1/messages",
            {"model": "c@status=529", "max_tokens": 5, "messages": MESSAGES},
            529,
            lambda b: b["type"] == "error" and b["error"] == {"type": "overloaded_error", "message": "Overloaded"},
        ),
        (
            "/v1/messages",
            {"model": "c@status=429", "max_tokens": 5, "messages": MESSAGES},
            429,
            lambda b: b["error"]["type"] == "rate_limit_error" and b["request_id"].startswith("req_"),
        ),
        (
            "/v1/chat/completions",
            {"model": "g@status=500", "messages": MESSAGES},
            500,
            lambda b: b["error"]["type"] == "server_error" and b["error"]["code"] is None,
        ),
        (
            "/v1/chat/completions",
            {"model": "g@status=401", "messages": MESSAGES},
            401,
            lambda b: b["error"]["code"] == "invalid_api_key",
        ),
        (
            "/v1beta/models/g@status=503:streamGenerateContent?alt=sse",
            {"contents": [{"parts": [{"text": "x"}]}]},
            503,
            lambda b: b["error"]["code"] == 503 and b["error"]["status"] == "UNAVAILABLE",
        ),
        (
            "/v1beta/models/g@status=429:generateContent",
            {"contents": [{"parts": [{"text": "x"}]}]},
            429,
            lambda b: b["error"]["status"] == "RESOURCE_EXHAUSTED",
        ),
        ("/api/chat", {"model": "l@status=500", "messages": MESSAGES}, 500, lambda b: list(b) == ["error"]),
    ],
)
async def test_injected_error_bodies(
    client: httpx2.AsyncClient, path: str, body: dict[str, Any], status: int, check: Any
) -> None:
    r = await client.post(path, json=body)
    assert r.status_code == status
    assert check(r.json())
    assert (await client.post(path, json=body)).status_code == 200  # fail defaults to 1


@pytest.mark.parametrize(
    ("path", "body", "check"),
    [
        ("/v1/chat/completions", {"messages": MESSAGES}, lambda b: b["error"]["type"] == "invalid_request_error"),
        ("/v1/messages", {"max_tokens": 5}, lambda b: b["error"]["type"] == "invalid_request_error"),
        ("/v1beta/models/g:generateContent", {}, lambda b: b["error"]["status"] == "INVALID_ARGUMENT"),
        ("/api/chat", {}, lambda b: b == {"error": "model is required"}),
    ],
)
async def test_bad_requests(client: httpx2.AsyncClient, path: str, body: dict[str, Any], check: Any) -> None:
    r = await client.post(path, json=body)
    assert r.status_code == 400 and check(r.json())
    r = await client.post(path, content=b"{not json")
    assert r.status_code == 400 and r.json()


async def test_bad_scenario_is_a_400_naming_the_key(client: httpx2.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json=chat_body("m@bogus=1"))
    assert r.status_code == 400 and "'bogus'" in r.json()["error"]["message"] and r.json()["error"]["param"] == "model"
    r = await client.post("/v1/messages", json={"model": "m@tps=-3", "max_tokens": 5, "messages": MESSAGES})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert "'tps'" in r.json()["error"]["message"]
    r = await client.post("/v1beta/models/m@hang=x:generateContent", json={"contents": [{"parts": [{"text": "x"}]}]})
    assert r.status_code == 400 and "'hang'" in r.json()["error"]["message"]
    r = await client.post("/api/chat", json={"model": "m@usage=9", "messages": MESSAGES})
    assert r.status_code == 400 and "'usage'" in r.json()["error"]


# -------------------------------------------------------------------------------------- pacing
async def test_ttft_and_tps_pacing(server: FakeServer, client: httpx2.AsyncClient) -> None:
    arrivals: list[int] = []
    start = time.monotonic_ns()
    body = chat_body("m@ttft=60,tps=100,tokens=6")
    async with LoopLateness() as late, client.stream("POST", "/v1/chat/completions", json=body) as r:
        async for chunk in r.aiter_raw():
            if b'"content":"' in chunk and b'"content":""' not in chunk:
                arrivals.append(time.monotonic_ns())
    entry = server.log[-1]
    ttft_ms = (entry["first_token_ns"] - entry["received_ns"]) / 1e6
    last_ms = (entry["last_token_ns"] - entry["received_ns"]) / 1e6
    slack_ms = late.allowance_ms(8)  # 8 ms on an idle machine, more if this loop was woken late meanwhile
    assert 60 <= ttft_ms < 60 + slack_ms, (ttft_ms, slack_ms)
    # absolute deadlines, 60 ms + 5 gaps of 10 ms: late wake-ups do not add up over the stream
    assert 110 <= last_ms < 110 + slack_ms, (last_ms, slack_ms)
    assert entry["tokens_sent"] == 6 and entry["outcome"] == "ok"
    assert (arrivals[0] - start) / 1e6 >= 60
    assert len(arrivals) == 6


async def test_concurrent_paced_streams(server: FakeServer) -> None:
    async def one(i: int, client: httpx2.AsyncClient) -> None:
        body = {"model": f"m@ttft=30,tps=200,tokens=10,id=s{i}", "max_tokens": 50, "messages": MESSAGES, "stream": True}
        async with client.stream("POST", "/v1/messages", json=body) as r:
            await r.aread()

    async with (LoopLateness() as late,
                httpx2.AsyncClient(base_url=server.base_url, limits=httpx2.Limits(max_connections=16)) as client):
        await asyncio.gather(*(one(i, client) for i in range(16)))
    assert len(server.log) == 16
    slack_ms = late.allowance_ms(10)  # 10 ms on an idle machine, more if this loop was woken late meanwhile
    for entry in server.log:
        assert 30 <= (entry["first_token_ns"] - entry["received_ns"]) / 1e6 < 30 + slack_ms, slack_ms
        assert 75 <= (entry["last_token_ns"] - entry["received_ns"]) / 1e6 < 75 + slack_ms, slack_ms


async def test_unpaced_large_stream_is_fast(server: FakeServer, client: httpx2.AsyncClient) -> None:
    start = time.perf_counter()
    r = await client.post("/v1/chat/completions", json=chat_body("m@tokens=20000"))
    elapsed = time.perf_counter() - start
    assert r.content.count(b"\n\n") == 20000 + 3
    assert elapsed < 2.0
    assert server.log[-1]["tokens_sent"] == 20000


# -------------------------------------------------------------------------------------- faults
async def test_hang_headers(server: FakeServer) -> None:
    async with httpx2.AsyncClient(base_url=server.base_url, timeout=httpx2.Timeout(5, read=0.2)) as client:
        with pytest.raises(httpx2.ReadTimeout):
            await client.post("/v1/chat/completions", json=chat_body("m@hang=headers"))
    await eventually(lambda: server.log and server.log[-1]["outcome"] == "hang", "the hang logged")
    entry = server.log[-1]
    assert entry["outcome"] == "hang" and entry["status"] is None and entry["first_token_ns"] is None


async def test_hang_stream(server: FakeServer) -> None:
    async with httpx2.AsyncClient(base_url=server.base_url, timeout=httpx2.Timeout(5, read=0.2)) as client:
        body = {"model": "c@hang=stream", "max_tokens": 50, "messages": MESSAGES, "stream": True}
        got = b""
        with pytest.raises(httpx2.ReadTimeout):
            async with client.stream("POST", "/v1/messages", json=body) as r:
                assert r.status_code == 200
                async for chunk in r.aiter_raw():
                    got += chunk
    assert got.count(b"text_delta") == 1 and b"message_stop" not in got
    assert server.log[-1]["outcome"] == "hang" and server.log[-1]["tokens_sent"] == 1


async def test_disconnect(server: FakeServer, client: httpx2.AsyncClient) -> None:
    got = b""
    with pytest.raises(httpx2.RemoteProtocolError):
        async with client.stream("POST", "/v1/chat/completions", json=chat_body("m@disconnect=3")) as r:
            async for chunk in r.aiter_raw():
                got += chunk
    contents = [json.loads(d)["choices"][0]["delta"].get("content") for d in sse_data(got)]
    assert contents[1:] == expected_text("m", PROMPT, 3).replace(" ", "\0 ").split("\0")
    assert b"[DONE]" not in got
    entry = server.log[-1]
    assert entry["outcome"] == "disconnect" and entry["tokens_sent"] == 3
    # N beyond the reply: every token, then cut before the terminal events
    with pytest.raises(httpx2.RemoteProtocolError):
        await client.post("/api/chat", json={"model": "m@tokens=2,disconnect=5", "messages": MESSAGES})
    assert server.log[-1]["tokens_sent"] == 2 and server.log[-1]["outcome"] == "disconnect"


async def test_malformed(server: FakeServer, client: httpx2.AsyncClient) -> None:
    r = await client.post("/v1/chat/completions", json=chat_body("m@malformed=1,tokens=4"))
    data = sse_data(r.content)
    assert data[-1] == "[DONE]"
    with pytest.raises(json.JSONDecodeError):
        json.loads(data[2])
    json.loads(data[1])
    assert server.log[-1]["outcome"] == "malformed"
    r = await client.post(
        "/v1beta/models/g@malformed=1:streamGenerateContent?alt=sse", json={"contents": [{"parts": [{"text": "x"}]}]}
    )
    events = sse_events(r.content, b"\r\n\r\n")
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[1].removeprefix(b"data: "))


# ----------------------------------------------------------------------------- http and endpoints
async def test_log_and_lists(server: FakeServer, client: httpx2.AsyncClient) -> None:
    await client.post("/v1/chat/completions", json=chat_body("m@tokens=2,id=abc"))
    log = (await client.get("/_fake/log")).json()
    assert len(log) == 1
    entry = log[0]
    assert set(entry) >= {
        "seq",
        "path",
        "wire",
        "model",
        "scenario_id",
        "status",
        "received_ns",
        "first_token_ns",
        "last_token_ns",
        "tokens_sent",
        "outcome",
    }
    assert entry["path"] == "/v1/chat/completions" and entry["wire"] == "openai_chat"
    assert entry["model"] == "m@tokens=2,id=abc" and entry["scenario_id"] == "abc" and entry["status"] == 200
    assert entry["received_ns"] <= entry["first_token_ns"] <= entry["last_token_ns"] <= time.monotonic_ns()
    assert entry == server.log[0]
    models = (await client.get("/v1/models")).json()
    assert models["object"] == "list" and models["data"][0]["object"] == "model"
    assert all(m["owned_by"] == "workbench-fake" for m in models["data"])
    assert (await client.get("/api/tags")).json()["models"]
    gemini = (await client.get("/v1beta/models")).json()["models"]
    assert "models/gemini-2.5-flash" in [m["name"] for m in gemini]
    assert all(m["inputTokenLimit"] > 0 and "generateContent" in m["supportedGenerationMethods"] for m in gemini)
    one = (await client.get("/v1beta/models/gemini-2.5-flash")).json()
    assert one["name"] == "models/gemini-2.5-flash" and one["baseModelId"] == "gemini-2.5-flash"
    claude = (await client.get("/v1/models", headers={"anthropic-version": "2023-06-01"})).json()
    assert claude["has_more"] is False and claude["data"][0]["type"] == "model" and "object" not in claude
    assert claude["first_id"] == claude["data"][0]["id"] and claude["last_id"] == claude["data"][-1]["id"]
    r = await client.get("/v1/nope")
    assert r.status_code == 404 and r.json()["error"]["message"] == "Invalid URL (GET /v1/nope)"


def _raw_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


async def test_keep_alive_pipelining_and_connection_close(server: FakeServer) -> None:
    body = json.dumps({"model": "m@tokens=2", "messages": MESSAGES, "stream": True}).encode()
    req = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body)
    last = req.replace(b"host: x\r\n", b"host: x\r\nconnection: close\r\n")
    data = await asyncio.to_thread(_raw_exchange, server.port, req + req + last)
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.count(b"data: [DONE]") == 3 and data.endswith(b"0\r\n\r\n")
    assert data.count(b"connection: keep-alive") == 2 and data.count(b"connection: close") == 1
    # HTTP/1.0: no chunking, closed at the end
    data = await asyncio.to_thread(_raw_exchange, server.port, req.replace(b"HTTP/1.1", b"HTTP/1.0"))
    assert b"transfer-encoding" not in data and data.endswith(b"data: [DONE]\n\n")


async def test_garbage_does_not_crash(server: FakeServer, client: httpx2.AsyncClient) -> None:
    data = await asyncio.to_thread(_raw_exchange, server.port, b"NONSENSE\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400")
    r = await client.post("/v1/chat/completions", json=[1, 2])
    assert r.status_code == 400
    r = await client.post("/v1/chat/completions", json=chat_body("m@tokens=1"))
    assert r.status_code == 200


def test_in_thread_from_sync_code() -> None:
    with FakeServer.in_thread() as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        with httpx2.Client(base_url=server.base_url) as c:
            r = c.post("/api/chat", json={"model": "m@tokens=3", "messages": MESSAGES, "stream": False})
        assert r.json()["message"]["content"] == expected_text("m", PROMPT, 3)
        assert server.log[-1]["wire"] == "ollama"
