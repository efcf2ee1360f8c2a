"""The fake server's hostile scenarios, byte by byte on all five wires, over raw httpx2.

``cut_error_body``, ``bad_gzip``, ``bad_shape``, ``huge_error``, ``huge_line``, ``overrun``,
``redirect`` and ``html`` (see :mod:`workbench.fakeserver.scenario`). Endless answers are read up to
a bound, dropped, and the server must notice (``wait_idle``), keep its buffers bounded and answer
the next request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from workbench.fakeserver import FakeServer, ScenarioError, expected_text, iter_tokens, parse_model
from workbench.fakeserver.process import FakeServerProcess
from workbench.fakeserver.scenario import FAIL_ALWAYS
from workbench.fakeserver.wire import (
    AnthropicWire,
    GeminiWire,
    OllamaWire,
    OpenAIChatWire,
    OpenAIResponsesWire,
    WireFormat,
)
from workbench.fakeserver.wire.base import ErrorInfo

PROMPT = "tell me something"
MESSAGES = [{"role": "user", "content": PROMPT}]
MIB = 1024 * 1024
GZIP_JUNK = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\xff"
JSON = dict[str, Any]


# ------------------------------------------------------------------------------------------ wires
@dataclass(frozen=True)
class Wire:
    name: str
    wire: WireFormat
    stream_type: str
    sep: bytes  # between events (SSE) or lines (NDJSON)
    request: Callable[[str, bool, int | None], tuple[str, JSON]]
    first_text: Callable[[list[JSON]], int]  # index of the first text token's event
    text: Callable[[JSON], str]  # the text of a (normal) event, "" when it has none
    finished: Callable[[list[JSON], bytes], bool]  # the stream ended the normal way
    finish_markers: tuple[bytes, ...]  # bytes only a finishing event contains
    text_key: bytes  # what the huge line's last bytes before the endless text are
    body_text: Callable[[JSON], tuple[Any, str]]  # (holder, key) of a non-streaming body's text
    container: str  # the body's top-level container (bad_shape=choices)


def _chat_request(model: str, stream: bool, cap: int | None) -> tuple[str, JSON]:
    body: JSON = {"model": model, "messages": MESSAGES, "stream": stream}
    if cap is not None:
        body["max_completion_tokens"] = cap
    return "/v1/chat/completions", body


def _responses_request(model: str, stream: bool, cap: int | None) -> tuple[str, JSON]:
    body: JSON = {"model": model, "input": PROMPT, "stream": stream}
    if cap is not None:
        body["max_output_tokens"] = cap
    return "/v1/responses", body


def _anthropic_request(model: str, stream: bool, cap: int | None) -> tuple[str, JSON]:
    return "/v1/messages", {"model": model, "max_tokens": cap or 1000, "messages": MESSAGES, "stream": stream}


def _gemini_request(model: str, stream: bool, cap: int | None) -> tuple[str, JSON]:
    body: JSON = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    if cap is not None:
        body["generationConfig"] = {"maxOutputTokens": cap}
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{model}:{action}", body


def _ollama_request(model: str, stream: bool, cap: int | None) -> tuple[str, JSON]:
    body: JSON = {"model": model, "messages": MESSAGES, "stream": stream}
    if cap is not None:
        body["options"] = {"num_predict": cap}
    return "/api/chat", body


def _first_typed(kind: str) -> Callable[[list[JSON]], int]:
    return lambda events: next(i for i, e in enumerate(events) if e.get("type") == kind)


def _chat_text(e: JSON) -> str:
    choices = e.get("choices")
    if not isinstance(choices, list) or not choices:
        return ""
    content = choices[0]["delta"].get("content")
    return content if isinstance(content, str) else ""


def _gemini_text(e: JSON) -> str:
    return str(e["candidates"][0]["content"]["parts"][0]["text"])


WIRES: dict[str, Wire] = {
    w.name: w
    for w in (
        Wire(
            "openai_chat", OpenAIChatWire(), "text/event-stream; charset=utf-8", b"\n\n", _chat_request,
            lambda events: 1,  # after the role chunk
            _chat_text,
            lambda events, raw: raw.endswith(b"data: [DONE]\n\n")
            and events[-1]["choices"][0]["finish_reason"] == "stop",  # no usage chunk: not asked for
            (b'"finish_reason":"', b"[DONE]"),
            b'"delta":{"content":"',
            lambda body: (body["choices"][0]["message"], "content"),
            "choices",
        ),
        Wire(
            "openai_responses", OpenAIResponsesWire(), "text/event-stream; charset=utf-8", b"\n\n", _responses_request,
            _first_typed("response.output_text.delta"),
            lambda e: e["delta"] if e.get("type") == "response.output_text.delta" else "",
            lambda events, raw: events[-1]["type"] == "response.completed",
            (b"response.completed", b"response.incomplete", b"response.output_text.done"),
            b'"delta":"',
            lambda body: (body["output"][-1]["content"][0], "text"),
            "output",
        ),
        Wire(
            "anthropic", AnthropicWire(), "text/event-stream; charset=utf-8", b"\n\n", _anthropic_request,
            _first_typed("content_block_delta"),
            lambda e: e["delta"]["text"] if e.get("type") == "content_block_delta" else "",
            lambda events, raw: events[-1]["type"] == "message_stop"
            and events[-2]["delta"]["stop_reason"] == "end_turn",
            (b"message_delta", b"message_stop", b"content_block_stop"),
            b'"delta":{"type":"text_delta","text":"',
            lambda body: (body["content"][-1], "text"),
            "content",
        ),
        Wire(
            "gemini", GeminiWire(), "text/event-stream", b"\r\n\r\n", _gemini_request,
            lambda events: 0,
            _gemini_text,
            lambda events, raw: events[-1]["candidates"][0].get("finishReason") == "STOP",
            (b"finishReason",),
            b'"parts": [{"text": "',
            lambda body: (body["candidates"][0]["content"]["parts"][-1], "text"),
            "candidates",
        ),
        Wire(
            "ollama", OllamaWire(), "application/x-ndjson", b"\n", _ollama_request,
            lambda events: 0,
            lambda e: "" if e["done"] else e["message"]["content"],
            lambda events, raw: events[-1]["done"] is True and events[-1]["done_reason"] == "stop",
            (b'"done":true',),
            b'"message":{"role":"assistant","content":"',
            lambda body: (body["message"], "content"),
            "message",
        ),
    )
}  # fmt: skip
WIRE_NAMES = list(WIRES)
wires = pytest.mark.parametrize("w", WIRE_NAMES, indirect=True)


@pytest.fixture
def w(request: pytest.FixtureRequest) -> Wire:
    return WIRES[request.param]


@pytest.fixture
async def client(server: FakeServer) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=server.base_url, timeout=5) as c:
        yield c


def events_of(w: Wire, raw: bytes) -> list[JSON]:
    """Every event's JSON (SSE ``data:`` payloads but ``[DONE]``; NDJSON lines), checking the framing."""
    assert raw.endswith(w.sep), raw[-200:]
    out = []
    for event in raw[: -len(w.sep)].split(w.sep):
        if w.name == "ollama":
            out.append(json.loads(event))
            continue
        data = [line[6:] for line in event.splitlines() if line.startswith(b"data: ")]
        assert len(data) == 1, event
        if data[0] != b"[DONE]":
            out.append(json.loads(data[0]))
    return out


def tokens(n: int) -> list[str]:
    return list(iter_tokens("m", PROMPT, n))


async def read_at_least(response: httpx2.Response, limit: int) -> bytes:
    """At least ``limit`` raw body bytes (then stop reading: the caller drops the connection)."""
    parts: list[bytes] = []
    got = 0
    async for chunk in response.aiter_raw():
        parts.append(chunk)
        got += len(chunk)
        if got > limit:
            break
    return b"".join(parts)


async def assert_recovers(server: FakeServer, client: httpx2.AsyncClient, w: Wire) -> None:
    """The handler of the dropped endless answer has ended, and the server answers the next request."""
    await asyncio.wait_for(server.wait_idle(), 2)
    assert server.write_buffer_size() == 0
    path, body = w.request("m@tokens=3", True, None)
    r = await client.post(path, json=body)
    assert r.status_code == 200 and w.finished(events_of(w, r.content), r.content)


# ----------------------------------------------------------------------------------- parsing
def test_parse_hostile_keys() -> None:
    sc = parse_model("m@cut_error_body=1")
    assert (sc.cut_error_body, sc.status, sc.fail) == (True, 500, FAIL_ALWAYS)
    sc = parse_model("m@huge_error=1,status=503,fail=2")
    assert (sc.huge_error, sc.status, sc.fail) == (True, 503, 2)
    sc = parse_model("m@html=1")
    assert (sc.html, sc.status, sc.fail) == (True, None, 0)
    assert parse_model("m@html=1,status=502").fail == FAIL_ALWAYS
    assert parse_model("m@html=0,status=502").fail == 1
    sc = parse_model("m@redirect=308,bad_gzip=true,bad_shape=list,overrun=1")
    assert (sc.redirect, sc.bad_gzip, sc.bad_shape, sc.overrun, sc.status) == (308, True, "list", True, None)
    assert parse_model("m@huge_line=1,html=0").huge_line


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("m@cut_error_body=yes", "cut_error_body"),
        ("m@bad_gzip=2", "bad_gzip"),
        ("m@bad_shape=dict", "bad_shape"),
        ("m@bad_shape=", "bad_shape"),
        ("m@huge_error=x", "huge_error"),
        ("m@huge_line=-1", "huge_line"),
        ("m@overrun=forever", "overrun"),
        ("m@redirect=304", "redirect"),
        ("m@redirect=abc", "redirect"),
        ("m@redirect=200", "redirect"),
        ("m@html=maybe", "html"),
        ("m@html=1,huge_error=1", "huge_error"),
        ("m@cut_error_body=1,huge_line=1", "huge_line"),
    ],
)
def test_parse_rejects(model: str, key: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_model(model)
    assert info.value.key == key and f"'{key}'" in str(info.value)


@wires
async def test_bad_value_is_a_400_naming_the_key(w: Wire, client: httpx2.AsyncClient) -> None:
    for model, key in (("m@redirect=304", "redirect"), ("m@bad_shape=dict", "bad_shape"), ("m@html=2", "html")):
        path, body = w.request(model, True, None)
        r = await client.post(path, json=body)
        assert r.status_code == 400
        assert f"'{key}'" in r.text


# ------------------------------------------------------------------------------ cut_error_body
@wires
@pytest.mark.parametrize("stream", [True, False])
async def test_cut_error_body(w: Wire, stream: bool, server: FakeServer, client: httpx2.AsyncClient) -> None:
    path, body = w.request("m@cut_error_body=1", stream, None)
    for _ in range(2):  # every request (no fail count given)
        async with client.stream("POST", path, json=body) as r:
            assert r.status_code == 500
            assert r.headers["content-type"] == w.wire.error_content_type
            whole = w.wire.error_body(ErrorInfo(500, model="m", request_id=r.headers.get("request-id", "")))
            assert int(r.headers["content-length"]) == len(whole)
            got = bytearray()
            with pytest.raises(httpx2.RemoteProtocolError):
                async for chunk in r.aiter_raw():
                    got += chunk
        assert bytes(got) == whole[: len(whole) // 2]
    assert [(e["status"], e["outcome"]) for e in server.log] == [(500, "error")] * 2
    path, body = w.request("m@cut_error_body=1,status=503,fail=1,tokens=3", stream, None)
    with pytest.raises(httpx2.RemoteProtocolError):
        await client.post(path, json=body)
    assert (await client.post(path, json=body)).status_code == 200  # fail=1: only the first


# ------------------------------------------------------------------------------------ bad_gzip
@wires
@pytest.mark.parametrize("stream", [True, False])
async def test_bad_gzip(w: Wire, stream: bool, client: httpx2.AsyncClient) -> None:
    path, body = w.request("m@bad_gzip=1,tokens=3", stream, None)
    async with client.stream("POST", path, json=body, headers={"accept-encoding": "identity"}) as r:
        assert r.status_code == 200
        assert r.headers["content-encoding"] == "gzip"
        assert r.headers["content-type"] == (w.stream_type if stream else w.wire.json_content_type)
        assert ("transfer-encoding" in r.headers) is stream
        raw = b"".join([chunk async for chunk in r.aiter_raw()])
    assert raw.startswith(GZIP_JUNK)
    plain = raw[len(GZIP_JUNK) :]  # the normal answer, uncompressed
    if stream:
        events = events_of(w, plain)
        assert "".join(map(w.text, events)) == expected_text("m", PROMPT, 3) and w.finished(events, plain)
    else:
        holder, key = w.body_text(json.loads(plain))
        assert holder[key] == expected_text("m", PROMPT, 3)
    async with client.stream("POST", path, json=body) as r:  # a decoding client fails on the first bytes
        with pytest.raises(httpx2.DecodingError):
            async for _ in r.aiter_bytes():
                pass


# ----------------------------------------------------------------------------------- bad_shape
def _check_shape(w: Wire, kind: str, event: JSON, token: str) -> None:
    if w.name == "openai_chat":
        if kind == "choices":
            assert event["choices"] == "nope" and event["object"] == "chat.completion.chunk"
            return
        value = event["choices"][0]["delta"]["content"]
    elif w.name == "openai_responses":
        assert event["type"] == "response.output_text.delta"
        value = event["delta"]
        if kind == "choices":
            assert value == 42
            return
    elif w.name == "anthropic":
        assert event["type"] == "content_block_delta"
        if kind == "choices":
            assert event["delta"] == "nope"
            return
        assert event["delta"]["type"] == "text_delta"
        value = event["delta"]["text"]
    elif w.name == "gemini":
        if kind == "choices":
            assert event["candidates"] == "nope" and event["usageMetadata"]["candidatesTokenCount"] == 1
            return
        value = event["candidates"][0]["content"]["parts"][0]["text"]
    else:
        assert event["done"] is False
        if kind == "choices":
            assert event["message"] == "nope"
            return
        value = event["message"]["content"]
    assert value == (42 if kind == "int" else [token])


@wires
@pytest.mark.parametrize("kind", ["choices", "int", "list"])
async def test_bad_shape_stream(w: Wire, kind: str, server: FakeServer, client: httpx2.AsyncClient) -> None:
    path, body = w.request(f"m@bad_shape={kind},tokens=4", True, None)
    r = await client.post(path, json=body)
    assert r.status_code == 200 and r.headers["content-type"] == w.stream_type
    events = events_of(w, r.content)  # framed right, valid JSON
    first = w.first_text(events)
    toks = tokens(4)
    _check_shape(w, kind, events[first], toks[0])
    assert all(isinstance(e, dict) for e in events)
    rest = "".join(w.text(e) for e in events[first + 1 :])
    assert rest == "".join(toks[1:])  # then the normal stream
    assert w.finished(events, r.content)
    assert server.log[-1]["outcome"] == "bad_shape" and server.log[-1]["tokens_sent"] == 4


@wires
@pytest.mark.parametrize("kind", ["choices", "int", "list"])
async def test_bad_shape_body(w: Wire, kind: str, client: httpx2.AsyncClient) -> None:
    path, body = w.request(f"m@bad_shape={kind},tokens=4", False, None)
    r = await client.post(path, json=body)
    assert r.status_code == 200 and r.headers["content-type"] == w.wire.json_content_type
    reply = json.loads(r.content)
    if kind == "choices":
        assert reply[w.container] == "nope"
        return
    holder, key = w.body_text(reply)
    assert holder[key] == (42 if kind == "int" else [expected_text("m", PROMPT, 4)])


async def test_bad_shape_with_reasoning_hits_the_first_text_token(client: httpx2.AsyncClient) -> None:
    w = WIRES["anthropic"]
    path, body = w.request("m@bad_shape=int,tokens=2,reasoning=2", True, None)
    events = events_of(w, (await client.post(path, json=body)).content)
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert [d["type"] for d in deltas] == ["thinking_delta", "thinking_delta", "signature_delta"] + ["text_delta"] * 2
    assert deltas[3]["text"] == 42 and deltas[4]["text"] == tokens(2)[1]


# ---------------------------------------------------------------------------------- huge_error
@wires
async def test_huge_error(w: Wire, server: FakeServer, client: httpx2.AsyncClient) -> None:
    path, body = w.request("m@huge_error=1", True, None)
    async with client.stream("POST", path, json=body) as r:
        assert r.status_code == 500
        assert r.headers["content-type"] == w.wire.error_content_type
        assert r.headers["transfer-encoding"] == "chunked" and "content-length" not in r.headers
        raw = await read_at_least(r, MIB)
    whole = w.wire.error_body(ErrorInfo(500, "\x01", model="m", request_id=r.headers.get("request-id", "")))
    head = whole[: whole.index(b"\\u0001")]  # the real error body up to its message's opening quote
    assert head.endswith(b'"') and b"error" in head
    assert raw.startswith(head)
    assert raw[len(head) :] == b"a" * (len(raw) - len(head))
    await assert_recovers(server, client, w)
    assert (server.log[0]["status"], server.log[0]["outcome"]) == (500, "error")


# ----------------------------------------------------------------------------------- huge_line
@wires
async def test_huge_line(w: Wire, server: FakeServer, client: httpx2.AsyncClient) -> None:
    path, body = w.request("m@huge_line=1", True, None)
    async with client.stream("POST", path, json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == w.stream_type and r.headers["transfer-encoding"] == "chunked"
        raw = await read_at_least(r, MIB)
    assert b"\n" not in raw and b"\r" not in raw
    head, _, filler = raw.partition(w.text_key)
    assert filler and filler == b"a" * len(filler)
    assert head.startswith(b"{" if w.name == "ollama" else b"data: {")
    assert len(head) < 1000
    await assert_recovers(server, client, w)
    assert (server.log[0]["status"], server.log[0]["outcome"]) == (200, "huge_line")


@wires
async def test_huge_line_body(w: Wire, server: FakeServer, client: httpx2.AsyncClient) -> None:
    path, body = w.request("m@huge_line=1", False, None)
    async with client.stream("POST", path, json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"] == w.wire.json_content_type
        assert "content-length" not in r.headers
        raw = await read_at_least(r, MIB)
    head = raw.rstrip(b"a")
    assert head.endswith(b'"') and len(head) < 2000 and len(raw) > MIB
    await assert_recovers(server, client, w)


async def test_huge_line_against_the_server_process(fake_server: FakeServerProcess) -> None:
    w = WIRES["openai_chat"]
    path, body = w.request("m@huge_line=1", True, None)
    async with httpx2.AsyncClient(base_url=fake_server.base_url, timeout=5) as c:
        async with c.stream("POST", path, json=body) as r:
            assert len(await read_at_least(r, 2 * MIB)) > 2 * MIB
        r = await c.post(path, json={**body, "model": "m@tokens=2"})
        assert r.status_code == 200 and r.content.endswith(b"data: [DONE]\n\n")


# ------------------------------------------------------------------------------------- overrun
@wires
async def test_overrun(w: Wire, server: FakeServer, client: httpx2.AsyncClient) -> None:
    path, body = w.request("m@overrun=1,tokens=3", True, 5)
    async with client.stream("POST", path, json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"] == w.stream_type
        raw = await read_at_least(r, MIB)
    assert not any(marker in raw for marker in w.finish_markers)
    complete = raw[: raw.rindex(w.sep) + len(w.sep)]
    events = events_of(w, complete)
    texts = [w.text(e) for e in events[w.first_text(events) :]]
    assert len(texts) > 1000 and all(texts)  # content deltas only, far beyond the cap of 5
    assert "".join(texts[:40]) == expected_text("m", PROMPT, 40)
    await assert_recovers(server, client, w)
    assert server.log[0]["outcome"] == "overrun" and server.log[0]["tokens_sent"] > 1000


@wires
async def test_overrun_body_ignores_the_cap(w: Wire, client: httpx2.AsyncClient) -> None:
    path, body = w.request("m@overrun=1,tokens=9", False, 2)
    holder, key = w.body_text((await client.post(path, json=body)).json())
    assert holder[key] == expected_text("m", PROMPT, 9)


# ---------------------------------------------------------------------------- back-pressure
@pytest.mark.parametrize("model", ["m@huge_error=1", "m@huge_line=1", "m@overrun=1"])
async def test_endless_answers_wait_for_a_slow_reader(model: str, server: FakeServer) -> None:
    w = WIRES["anthropic"]
    path, body = w.request(model, True, None)
    async with httpx2.AsyncClient(base_url=server.base_url, timeout=5) as c, c.stream("POST", path, json=body) as r:
        chunks = r.aiter_raw()  # kept alive: a dropped iterator would be finalised, closing the connection
        got = 0
        while got < 256 * 1024:
            got += len(await anext(chunks))
        for _ in range(3000):  # the client reads nothing more; the server gets every chance to run ahead
            await asyncio.sleep(0)
        # still connected and waiting for the reader, with the transport at its high-water mark
        # (one 64 KiB chunk beyond it at most); without back-pressure this would be ~190 MB by now
        assert 0 < server.write_buffer_size() < 512 * 1024
    await asyncio.wait_for(server.wait_idle(), 2)


# ------------------------------------------------------------------------------------ redirect
@wires
@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_redirect(w: Wire, code: int, server: FakeServer, client: httpx2.AsyncClient) -> None:
    model = f"m@redirect={code},tokens=3"
    path, body = w.request(model, True, None)
    r = await client.post(path, json=body)
    assert r.status_code == code
    target = "/_redirected" + path
    assert r.headers["location"] == target
    assert r.headers["content-type"] == "text/html"
    r = await client.post(path, json=body, follow_redirects=True)
    assert [h.status_code for h in r.history] == [code]
    assert r.url.raw_path.decode() == target
    if code in (307, 308):  # the body is sent again: the normal stream, redirect ignored there
        assert r.status_code == 200 and r.request.method == "POST"
        events = events_of(w, r.content)
        assert "".join(map(w.text, events)) == expected_text("m", PROMPT, 3) and w.finished(events, r.content)
    else:  # turned into a GET by the client
        assert r.request.method == "GET" and r.status_code == 404
    redirected = (code, "redirect", path.split("?")[0])
    followed = (200, "ok", target.split("?")[0]) if code in (307, 308) else None
    log = [(e["status"], e["outcome"], e["path"]) for e in server.log]
    assert log == [redirected, redirected, followed] if followed else log == [redirected, redirected]


# ----------------------------------------------------------------------------------------- html
@wires
@pytest.mark.parametrize("stream", [True, False])
async def test_html(w: Wire, stream: bool, server: FakeServer, client: httpx2.AsyncClient) -> None:
    path, body = w.request("m@html=1", stream, None)
    for _ in range(2):
        r = await client.post(path, json=body)
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert int(r.headers["content-length"]) == len(r.content) < 2000
        assert r.content.startswith(b"<!DOCTYPE html>") and b"</html>" in r.content
    path, body = w.request("m@html=1,status=503", stream, None)
    for _ in range(2):  # every request: no fail count given
        r = await client.post(path, json=body)
        assert r.status_code == 503 and r.headers["content-type"] == "text/html; charset=utf-8"
    path, body = w.request("m@html=1,status=502,fail=1,tokens=2", stream, None)
    r = await client.post(path, json=body)
    assert r.status_code == 502 and r.headers["content-type"] == "text/html; charset=utf-8"
    r = await client.post(path, json=body)
    assert r.status_code == 200 and r.headers["content-type"] != "text/html; charset=utf-8"
    assert [e["outcome"] for e in server.log] == ["html"] * 5 + ["ok"]


# ---------------------------------------------------------------------------- counting endpoints
async def test_counting_endpoint_honours_the_error_styles(server: FakeServer, client: httpx2.AsyncClient) -> None:
    body = {"model": "m@redirect=308", "messages": MESSAGES}
    r = await client.post("/v1/messages/count_tokens", json=body, follow_redirects=True)
    assert [h.status_code for h in r.history] == [308] and r.status_code == 200 and "input_tokens" in r.json()
    r = await client.post("/v1/messages/count_tokens", json={**body, "model": "m@html=1"})
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    with pytest.raises(httpx2.RemoteProtocolError):
        await client.post("/v1/messages/count_tokens", json={**body, "model": "m@cut_error_body=1"})
    async with client.stream("POST", "/v1/messages/count_tokens", json={**body, "model": "m@huge_error=1"}) as r:
        assert r.status_code == 500
        assert (await read_at_least(r, MIB)).startswith(b'{"type":"error","error":{"type":"api_error","message":"aaa')
    await asyncio.wait_for(server.wait_idle(), 2)
    r = await client.post("/v1/messages/count_tokens", json={**body, "model": "m@bad_gzip=1,huge_line=1,overrun=1"})
    assert r.status_code == 200 and "content-encoding" not in r.headers  # ignored there
