"""Token-counting endpoints of the fake server over real HTTP: Anthropic count_tokens, Gemini
countTokens, llama.cpp and vLLM /tokenize — shapes, "count before == usage after", errors, log."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
import pytest

from workbench.fakeserver import FakeServer, RateLimits, count_input_tokens, tokenize_chat, tokenize_text
from workbench.fakeserver.text import BOS_ID, FIRST_WORD_ID, TOKENIZER_VOCAB_SIZE

SYSTEM = "you are terse"
MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": "hello  there\nfriend"},
    {"role": "assistant", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "again you"}]},
    {"role": "user", "content": [{"type": "text", "text": "count   these words please"}]},
]
TEXTS = ["hello  there\nfriend", "hi again you", "count   these words please"]
CHAT_TOKENS = count_input_tokens(TEXTS)
TOOLS = [{"name": "get_weather", "description": "w", "input_schema": {"type": "object", "properties": {}}}]
TOOL_TEXT = 'get_weather w {"type": "object", "properties": {}}'  # a tool counts its name, description and schema


@pytest.fixture
async def client(server: FakeServer) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=server.base_url, timeout=5) as c:
        yield c


def sse_json(raw: bytes, sep: bytes = b"\n\n") -> list[dict[str, Any]]:
    out = []
    for event in raw.split(sep):
        for line in event.split(b"\n"):
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                out.append(json.loads(line[6:]))
    return out


# ------------------------------------------------------------------------------------ tokenization
def test_tokenize_text_is_one_token_per_word() -> None:
    text = "  a b\x1fc\xa0d\u3000e\t\tf  \n"
    tokens = tokenize_text(text)
    assert len(tokens) == len(text.split()) == 6
    assert "".join(p for _, p in tokens) == text.rstrip()
    assert tokens == tokenize_text(text)  # deterministic
    assert all(FIRST_WORD_ID <= i < TOKENIZER_VOCAB_SIZE for i, _ in tokens)
    assert tokenize_text("") == [] and tokenize_text(" \n ") == []
    assert tokenize_text("x\ud800y")[0][1] == "x\ud800y"  # a lone surrogate does not break hashing
    chat = tokenize_chat([("user", t) for t in TEXTS])
    assert len(chat) == CHAT_TOKENS
    assert [p for _, p in chat[:3]] == ["<|im_start|>", "user\n", "hello"] and chat[-1][1] == "<|im_end|>"


# --------------------------------------------------------------------------------------- Anthropic
async def test_anthropic_count_equals_streamed_usage(client: httpx2.AsyncClient) -> None:
    system_blocks = [{"type": "text", "text": SYSTEM}, {"type": "text", "text": "and kind"}]
    for system, texts in ((None, TEXTS), (SYSTEM, [SYSTEM, *TEXTS]), (system_blocks, [SYSTEM + " and kind", *TEXTS])):
        body: dict[str, Any] = {"model": "claude-sonnet-4-5", "messages": MESSAGES, "tools": TOOLS}
        if system is not None:
            body["system"] = system
        r = await client.post("/v1/messages/count_tokens", json=body)
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.headers["request-id"].startswith("req_011C")
        expected = count_input_tokens([TOOL_TEXT, *texts])
        assert r.content == b'{"input_tokens":%d}' % expected

        stream = await client.post("/v1/messages", json={**body, "max_tokens": 64, "stream": True})
        events = sse_json(stream.content)
        start = next(e for e in events if e["type"] == "message_start")
        delta = next(e for e in events if e["type"] == "message_delta")
        assert start["message"]["usage"]["input_tokens"] == delta["usage"]["input_tokens"] == expected


async def test_anthropic_count_errors(client: httpx2.AsyncClient) -> None:
    r = await client.post("/v1/messages/count_tokens", json={"model": "claude-sonnet-4-5"})
    assert r.status_code == 400
    body = r.json()
    assert body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "messages: Field required"},
        "request_id": r.headers["request-id"],
    }
    r = await client.post("/v1/messages/count_tokens", json={"messages": MESSAGES})
    assert r.status_code == 400 and r.json()["error"]["message"] == "model: Field required"
    r = await client.post("/v1/messages/count_tokens", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = await client.post("/v1/messages/count_tokens", json={"model": "m@bogus=1", "messages": MESSAGES})
    assert r.status_code == 400 and "bogus" in r.json()["error"]["message"]


async def test_anthropic_count_scenarios(client: httpx2.AsyncClient, server: FakeServer) -> None:
    body = {"model": "claude@status=529,fail=2,retry_after=3,id=ct", "messages": MESSAGES}
    for _ in range(2):
        r = await client.post("/v1/messages/count_tokens", json=body)
        assert r.status_code == 529 and r.headers["retry-after"] == "3"
        assert r.json()["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    r = await client.post("/v1/messages/count_tokens", json=body)
    assert r.status_code == 200 and r.json() == {"input_tokens": CHAT_TOKENS}
    # the Messages wire keeps its own fail counter for the same model string
    r = await client.post("/v1/messages", json={**body, "max_tokens": 8})
    assert r.status_code == 529

    r = await client.post("/v1/messages/count_tokens", json={"model": "claude@malformed=1", "messages": MESSAGES})
    whole = b'{"input_tokens":%d}' % CHAT_TOKENS
    assert r.status_code == 200 and r.content == whole[: len(whole) // 2]
    with pytest.raises(httpx2.RemoteProtocolError):
        await client.post("/v1/messages/count_tokens", json={"model": "claude@disconnect=0", "messages": MESSAGES})
    t0 = time.monotonic()
    r = await client.post("/v1/messages/count_tokens", json={"model": "claude@ttft=150", "messages": MESSAGES})
    assert r.status_code == 200 and time.monotonic() - t0 >= 0.15
    outcomes = [(e["wire"], e["status"], e["outcome"]) for e in server.log]
    assert outcomes == [
        ("anthropic_count", 529, "error"),
        ("anthropic_count", 529, "error"),
        ("anthropic_count", 200, "ok"),
        ("anthropic", 529, "error"),
        ("anthropic_count", 200, "malformed"),
        ("anthropic_count", None, "disconnect"),
        ("anthropic_count", 200, "ok"),
    ]


async def test_anthropic_sdk_count_tokens(server: FakeServer) -> None:
    async with anthropic.AsyncAnthropic(base_url=server.base_url, api_key="x", max_retries=0) as sdk:
        count = await sdk.messages.count_tokens(
            model="claude-fake",
            system=SYSTEM,
            messages=[{"role": "user", "content": "what is streaming"}],
            tools=[{"name": "t", "input_schema": {"type": "object"}}],
        )
        assert count.input_tokens == count_input_tokens(['t  {"type": "object"}', SYSTEM, "what is streaming"])
        async with sdk.messages.stream(
            model="claude-fake",
            system=SYSTEM,
            messages=[{"role": "user", "content": "what is streaming"}],
            tools=[{"name": "t", "input_schema": {"type": "object"}}],
            max_tokens=16,
        ) as stream:
            final = await stream.get_final_message()
        assert final.usage.input_tokens == count.input_tokens
        with pytest.raises(anthropic.APIStatusError) as info:
            await sdk.messages.count_tokens(model="claude@status=529", messages=[{"role": "user", "content": "x"}])
        assert info.value.status_code == 529
        assert info.value.request_id is not None and info.value.request_id.startswith("req_011C")


# ------------------------------------------------------------------------------------------ Gemini
def gemini_contents() -> list[dict[str, Any]]:
    return [
        {"role": "user", "parts": [{"text": "hello  there\nfriend"}]},
        {"role": "model", "parts": [{"text": "hi"}, {"text": "again you"}]},
        {"parts": [{"text": "count   these words please"}]},
    ]


async def test_gemini_count_equals_streamed_usage(client: httpx2.AsyncClient) -> None:
    system = {"parts": [{"text": SYSTEM}]}
    url = "/v1beta/models/gemini-2.5-flash:countTokens"
    r = await client.post(url, json={"contents": gemini_contents()})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=UTF-8"
    n = CHAT_TOKENS
    expected = {"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]}
    assert r.content == (json.dumps(expected, indent=2) + "\n").encode()

    inner = {"model": "models/gemini-2.5-flash", "contents": gemini_contents(), "systemInstruction": system}
    r = await client.post(url, json={"generateContentRequest": inner})
    counted = r.json()["totalTokens"]
    assert counted == count_input_tokens([SYSTEM, *TEXTS]) == r.json()["promptTokensDetails"][0]["tokenCount"]

    body = {"contents": gemini_contents(), "systemInstruction": system}
    stream = await client.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", json=body)
    chunks = sse_json(stream.content, b"\r\n\r\n")
    assert {c["usageMetadata"]["promptTokenCount"] for c in chunks} == {counted}
    plain = await client.post(
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", json={"contents": gemini_contents()}
    )
    assert sse_json(plain.content, b"\r\n\r\n")[-1]["usageMetadata"]["promptTokenCount"] == n
    # also under /v1/models/
    r = await client.post("/v1/models/gemini-2.5-flash:countTokens", json={"contents": gemini_contents()})
    assert r.json()["totalTokens"] == n


async def test_gemini_count_errors(client: httpx2.AsyncClient) -> None:
    url = "/v1beta/models/gemini-2.5-flash:countTokens"
    r = await client.post(url, json={})
    assert r.status_code == 400 and r.headers["content-type"] == "application/json; charset=UTF-8"
    error = r.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT" and "contents" in error["message"]
    both = {"contents": gemini_contents(), "generateContentRequest": {"contents": gemini_contents()}}
    r = await client.post(url, json=both)
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    r = await client.post(url, json={"generateContentRequest": "nope"})
    assert r.status_code == 400
    r = await client.post("/v1beta/models/g@status=503:countTokens", json={"contents": gemini_contents()})
    assert r.status_code == 503
    assert r.json() == {"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                                  "status": "UNAVAILABLE"}}
    r = await client.post("/v1beta/models/g@status=503:countTokens", json={"contents": gemini_contents()})
    assert r.status_code == 200


# --------------------------------------------------------------------------------------- llama.cpp
async def test_llamacpp_tokenize(client: httpx2.AsyncClient, server: FakeServer) -> None:
    text = "The quick  brown\tfox café 日本語 "
    r = await client.post("/tokenize", json={"content": text})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json; charset=utf-8"
    ids = r.json()["tokens"]
    assert ids == [i for i, _ in tokenize_text(text)] and len(ids) == len(text.split()) == 6
    assert r.content == json.dumps({"tokens": ids}, separators=(",", ":")).encode()

    r = await client.post("/tokenize", json={"content": text, "with_pieces": True})
    pieces = r.json()["tokens"]
    assert [p["id"] for p in pieces] == ids and list(pieces[0]) == ["id", "piece"]
    assert "".join(p["piece"] for p in pieces) == text.rstrip()
    assert "café" in r.text  # raw UTF-8, as llama.cpp writes it

    r = await client.post("/tokenize", json={"content": text, "add_special": True})
    assert r.json()["tokens"] == [BOS_ID, *ids]
    r = await client.post("/tokenize", json={"content": ["a b", 7, " c"], "with_pieces": True})
    assert [(p["id"], p["piece"]) for p in r.json()["tokens"]] == [
        *tokenize_text("a b"), (7, ""), *tokenize_text(" c")
    ]
    r = await client.post("/tokenize", json={"content": ""})
    assert r.json() == {"tokens": []}
    r = await client.post("/tokenize", json={})  # llama.cpp answers an empty list without content
    assert r.status_code == 200 and r.json() == {"tokens": []}

    r = await client.post("/tokenize", content=b"{bad json")
    assert r.status_code == 500
    error = r.json()["error"]
    assert list(error) == ["code", "message", "type"] and error["code"] == 500 and error["type"] == "server_error"
    r = await client.post("/tokenize", json={"content": 3.5})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    assert [(e["wire"], e["outcome"]) for e in server.log][-2:] == [
        ("llamacpp_tokenize", "error"),
        ("llamacpp_tokenize", "error"),
    ]
    assert server.log[0]["input_tokens"] == 6 and server.log[0]["status"] == 200


# -------------------------------------------------------------------------------------------- vLLM
async def test_vllm_tokenize_prompt_and_messages(client: httpx2.AsyncClient, server: FakeServer) -> None:
    text = "one two  three"
    r = await client.post("/tokenize", json={"model": "fake-model", "prompt": text})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    ids = [i for i, _ in tokenize_text(text)]
    assert r.content == b'{"count":3,"max_model_len":32768,"tokens":%s,"token_strs":null}' % (
        json.dumps(ids, separators=(",", ":")).encode()
    )
    r = await client.post("/tokenize", json={"prompt": text, "return_token_strs": True})
    assert r.json()["token_strs"] == ["one", " two", "  three"]

    chat = [{"role": "system", "content": SYSTEM}, *MESSAGES]
    r = await client.post("/tokenize", json={"model": "fake-model", "messages": chat, "add_generation_prompt": True})
    counted = r.json()
    assert counted["count"] == len(counted["tokens"]) == count_input_tokens([SYSTEM, *TEXTS])

    body = {"model": "fake-model", "messages": chat, "stream": True, "stream_options": {"include_usage": True}}
    stream = await client.post("/v1/chat/completions", json=body)
    usage = [c["usage"] for c in sse_json(stream.content) if c.get("usage")]
    assert usage[-1]["prompt_tokens"] == counted["count"]
    assert [e["wire"] for e in server.log] == ["vllm_tokenize", "vllm_tokenize", "vllm_tokenize", "openai_chat"]


async def test_vllm_tokenize_errors(client: httpx2.AsyncClient) -> None:
    r = await client.post("/tokenize", json={"model": "m", "prompt": 5})
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    assert r.json() == {
        "error": {"message": "prompt: Input should be a valid string", "type": "BadRequestError", "param": "prompt",
                  "code": 400}
    }
    r = await client.post("/tokenize", json={"model": "m", "messages": [{"content": "x"}]})
    assert r.status_code == 400 and r.json()["error"]["type"] == "BadRequestError"
    r = await client.post("/tokenize", json={"model": "m@status=404", "prompt": "x"})
    assert r.status_code == 404
    assert r.json()["error"] == {"message": "The model `m` does not exist.", "type": "NotFoundError", "param": None,
                                 "code": 404}
    r = await client.post("/tokenize", json={"model": "m@status=500", "messages": []})
    assert r.status_code == 500 and r.json()["error"]["type"] == "InternalServerError"


# ------------------------------------------------------------------------------------- rate limits
async def test_counting_skips_rate_limits() -> None:
    server = FakeServer(limits=RateLimits(rpm=60, tpm=600, burst_s=1))  # a bucket of 1 request, 10 tokens
    await server.start()
    try:
        async with httpx2.AsyncClient(base_url=server.base_url, timeout=5) as c:
            for _ in range(3):
                r = await c.post("/v1/messages/count_tokens", json={"model": "claude", "messages": MESSAGES})
                assert r.status_code == 200
                assert not any(k.startswith("anthropic-ratelimit") for k in r.headers)
                r = await c.post("/v1beta/models/g:countTokens", json={"contents": gemini_contents()})
                assert r.status_code == 200
                assert (await c.post("/tokenize", json={"content": "a b"})).status_code == 200
                assert (await c.post("/tokenize", json={"model": "m", "prompt": "a b"})).status_code == 200
            limits = (await c.get("/_fake/limits")).json()
            assert (limits["admitted"], limits["rejected"]) == (0, 0)
            assert limits["requests"]["remaining"] == 1
            log = (await c.get("/_fake/log")).json()
            assert len(log) == 12
            assert all(e["cost_tokens"] == 0 and not e["rate_limited"] and e["outcome"] == "ok" for e in log)
            assert {e["wire"] for e in log} == {"anthropic_count", "gemini_count", "llamacpp_tokenize", "vllm_tokenize"}
            assert [e["input_tokens"] for e in log[:4]] == [CHAT_TOKENS, CHAT_TOKENS, 2, 2]
    finally:
        await server.stop()


async def test_tools_count_as_input_and_sit_in_every_cached_prefix(client: httpx2.AsyncClient) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "w",
                                               "parameters": {"type": "object", "properties": {}}}}]
    body: dict[str, Any] = {"model": "m@cache=1", "messages": MESSAGES, "tools": tools, "stream": True,
                            "stream_options": {"include_usage": True}}
    usages = []
    for _ in range(2):
        usages.append(sse_json((await client.post("/v1/chat/completions", json=body)).content)[-1]["usage"])
    assert [u["prompt_tokens"] for u in usages] == [count_input_tokens([TOOL_TEXT, *TEXTS])] * 2
    cached = [u["prompt_tokens_details"]["cached_tokens"] for u in usages]
    assert cached == [0, count_input_tokens([TOOL_TEXT, *TEXTS[:-1]])]
    other = [{"type": "function", "function": {**tools[0]["function"], "name": "get_time"}}]
    third = sse_json((await client.post("/v1/chat/completions", json={**body, "tools": other})).content)
    assert third[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 0  # other tools: another prefix
    vllm = await client.post("/tokenize", json={"model": "m", "messages": MESSAGES, "tools": tools})
    assert vllm.json()["count"] == usages[0]["prompt_tokens"]
