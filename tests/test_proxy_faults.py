"""Faults through ``workbench proxy`` (pass-through, the default): what the provider does (an error status with
its headers and body, a stream cut short, a hang) reaches the application as the provider did it, and the call is
traced as an error with the reason; the proxy survives 200 concurrent streams and applications that go away."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.test_cli import json_lines, workbench
from tests.test_proxy import CANARY, Proxy, start_proxy, traces
from tests.test_proxy_conformance import MESSAGES, curl, end_to_end
from tests.timing_slack import eventually
from workbench.fakeserver.process import FakeServerProcess


@pytest.fixture
def proxy(fake_server: FakeServerProcess) -> Iterator[Proxy]:
    yield from start_proxy(OPENAI_BASE_URL=f"{fake_server.base_url}/v1", ANTHROPIC_BASE_URL=fake_server.base_url,
                           GEMINI_BASE_URL=fake_server.base_url, OLLAMA_HOST=fake_server.base_url)


def call(wire: str, model: str) -> tuple[str, str, dict[str, Any]]:
    """(proxy path, upstream path, body) of a streamed chat call on ``wire``."""
    if wire == "gemini":
        path = f"v1beta/models/{model}:streamGenerateContent?alt=sse"
        return f"gemini/{path}", path, {"contents": [{"role": "user", "parts": [{"text": "Say something"}]}]}
    if wire == "ollama":
        return "ollama/api/chat", "api/chat", {"model": model, "messages": MESSAGES}
    if wire == "anthropic":
        return "anthropic/v1/messages", "v1/messages", {"model": model, "max_tokens": 100, "messages": MESSAGES,
                                                        "stream": True}
    return "openai/v1/chat/completions", "v1/chat/completions", {"model": model, "messages": MESSAGES,
                                                                   "stream": True}


WIRES = ("openai", "anthropic", "gemini", "ollama")


def test_error_statuses_reach_the_application_as_the_provider_sent_them_and_are_traced_with_the_reason(
        proxy: Proxy, fake_server: FakeServerProcess, tmp_path: Path) -> None:
    expected = []
    for wire in WIRES:
        for status, extra in ((429, ",retry_after=7"), (503, "")):
            # fail=1000: the direct call and the proxied one both get the error
            model = f"e{status}@status={status},fail=1000{extra},fixed=1"
            path, upstream, body = call(wire, model)
            headers = ("anthropic-version: 2023-06-01", f"x-api-key: {CANARY}")
            direct = curl(f"{fake_server.base_url}/{upstream}", body, tmp_path, *headers)
            through = curl(f"{proxy.url}/{path}", body, tmp_path, *headers)
            assert through[0] == direct[0] == status
            assert through[2] == direct[2] and through[2]
            assert end_to_end(through[1]) == end_to_end(direct[1])
            assert (dict(through[1]).get("retry-after") == "7") is (status == 429)
            expected.append((wire, status))
    proxy.stop()
    rows = list(reversed(json_lines(workbench("traces", "list", "--json", "--limit", "100").stdout)))
    assert [(r["provider"], r["status"], r["error_class"]) for r in rows] == [
        (wire, "error", f"http_{status}") for wire, status in expected]
    assert all(f"HTTP {s}" in str(r["error"]) for r, (_, s) in zip(rows, expected, strict=True)), rows
    assert all(r["finish_reason"] == "error" and r["output_tokens"] in (None, 0) for r in rows)


@pytest.mark.parametrize("wire", WIRES)
def test_a_stream_the_provider_cuts_is_cut_for_the_application_too_and_traced_as_truncated(
        proxy: Proxy, fake_server: FakeServerProcess, tmp_path: Path, wire: str) -> None:
    path, upstream, body = call(wire, "d@tokens=30,disconnect=5,fixed=1")
    headers = ("anthropic-version: 2023-06-01",)
    direct = curl(f"{fake_server.base_url}/{upstream}", body, tmp_path, *headers, exit_code=18)
    through = curl(f"{proxy.url}/{path}", body, tmp_path, *headers, exit_code=18)
    assert through[0] == direct[0] == 200
    assert through[2] == direct[2] and through[2]  # the same partial stream, no terminator added
    # the proxy goes on serving
    path, upstream, body = call(wire, "ok@tokens=3")
    assert curl(f"{proxy.url}/{path}", body, tmp_path, *headers)[0] == 200
    proxy.stop()
    first, after = reversed(traces())
    assert (first["status"], first["error_class"]) == ("error", "truncated")
    assert "upstream stream broke" in str(first["error"])
    assert (after["status"], after["error_class"]) == ("ok", None)


def test_an_error_body_the_provider_cuts_is_cut_for_the_application_too(
        proxy: Proxy, fake_server: FakeServerProcess, tmp_path: Path) -> None:
    path, upstream, body = call("openai", "c@cut_error_body=1,status=502,fixed=1")
    direct = curl(f"{fake_server.base_url}/{upstream}", body, tmp_path, exit_code=18)
    through = curl(f"{proxy.url}/{path}", body, tmp_path, exit_code=18)
    assert through[0] == direct[0] == 502 and through[2] == direct[2] and through[2]
    assert dict(through[1])["content-length"] == dict(direct[1])["content-length"]  # promised, not delivered
    proxy.stop()
    [row] = traces()
    assert (row["status"], row["error_class"]) == ("error", "http_502")


def fake_log(fake_server: FakeServerProcess) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = httpx2.get(f"{fake_server.base_url}/_fake/log", timeout=10).json()
    return log


async def test_a_hanging_provider_hangs_for_the_application_which_may_give_up_and_the_upstream_is_closed(
        proxy: Proxy, fake_server: FakeServerProcess) -> None:
    """No headers at all, or a stream that stalls after its first token: the application sees the same (here it
    gives up after its own 1 s read timeout), its going away closes the upstream request, the call is traced as
    cancelled with when it happened, and the proxy goes on serving."""
    timeout = httpx2.Timeout(30, read=1)
    async with httpx2.AsyncClient(timeout=timeout) as client:
        path, _, body = call("openai", "h@hang=headers,id=faults-headers")
        with pytest.raises(httpx2.ReadTimeout):
            await client.post(f"{proxy.url}/{path}", json=body)
        path, _, body = call("openai", "s@hang=stream,tokens=20,id=faults-stream")
        async with client.stream("POST", f"{proxy.url}/{path}", json=body) as response:
            assert response.status_code == 200
            chunks = response.aiter_raw()
            assert b"data: " in await anext(chunks)  # the first token came through
            with pytest.raises(httpx2.ReadTimeout):
                async for _ in chunks:
                    pass

        def closed() -> bool:  # the fake server saw the proxy close both upstream requests
            ours = [e for e in fake_log(fake_server) if e["scenario_id"] in ("faults-headers", "faults-stream")]
            return len(ours) == 2 and all(e["outcome"] in ("hang", "disconnect") for e in ours)

        await eventually(closed, "the upstream requests closed")
        path, _, body = call("openai", "ok@tokens=3")
        assert (await client.post(f"{proxy.url}/{path}", json=body, timeout=30)).status_code == 200
    proxy.stop()
    rows = {r["model"]: r for r in traces()}
    assert (rows["ok@tokens=3"]["status"], len(rows)) == ("ok", 3)
    gone = rows["h@hang=headers,id=faults-headers"]
    assert (gone["status"], gone["error_class"]) == ("error", "cancelled")
    assert "went away before the provider answered (no response headers after" in str(gone["error"])
    stalled = rows["s@hang=stream,tokens=20,id=faults-stream"]
    assert (stalled["status"], stalled["error_class"]) == ("error", "cancelled")
    assert "went away mid-stream" in str(stalled["error"]) and stalled["ttft_ms"] is not None


async def test_an_application_going_away_mid_stream_closes_the_upstream_stream(
        proxy: Proxy, fake_server: FakeServerProcess) -> None:
    async with httpx2.AsyncClient(timeout=30) as client:
        path, _, body = call("anthropic", "g@tokens=100000,tps=200,id=faults-gone")
        async with client.stream("POST", f"{proxy.url}/{path}", json=body,
                                 headers={"anthropic-version": "2023-06-01"}) as response:
            assert b"event: " in await anext(response.aiter_raw())

        def closed() -> bool:
            return any(e["scenario_id"] == "faults-gone" and e["outcome"] == "disconnect"
                       for e in fake_log(fake_server))

        await eventually(closed, "the upstream stream closed")
        path, _, body = call("anthropic", "ok@tokens=3")
        assert (await client.post(f"{proxy.url}/{path}", json=body,
                                  headers={"anthropic-version": "2023-06-01"})).status_code == 200
    proxy.stop()
    rows = {r["model"]: r for r in traces()}
    assert (rows["g@tokens=100000,tps=200,id=faults-gone"]["error_class"], rows["ok@tokens=3"]["status"]) == (
        "cancelled", "ok")


@pytest.mark.timeout(300)
async def test_200_concurrent_streams_through_the_proxy_all_complete_and_are_all_traced(
        proxy: Proxy, fake_server: FakeServerProcess) -> None:
    model = "many@tokens=20,tps=100,fixed=1"
    path, upstream, body = call("openai", model)
    limits = httpx2.Limits(max_connections=250, max_keepalive_connections=250)
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(120), limits=limits) as client:
        direct = (await client.post(f"{fake_server.base_url}/{upstream}", json=body)).content

        async def one() -> tuple[int, bytes]:
            response = await client.post(f"{proxy.url}/{path}", json=body)
            return response.status_code, response.content

        answers = await asyncio.gather(*(one() for _ in range(200)))
    assert answers == [(200, direct)] * 200
    proxy.stop()
    rows = json_lines(workbench("traces", "list", "--json", "--limit", "500").stdout)
    assert len(rows) == 200
    assert {(r["model"], r["status"], r["output_tokens"], r["finish_reason"]) for r in rows} == {
        (model, "ok", 20, "stop")}


def test_a_provider_that_cannot_be_reached_gets_the_application_a_502_of_the_proxys_traced_as_connection(
        unreachable_port: int, tmp_path: Path) -> None:
    for proxy in start_proxy(OPENAI_BASE_URL=f"http://127.0.0.1:{unreachable_port}/v1"):
        path, _, body = call("openai", "m@tokens=3")
        status, _, answer = curl(f"{proxy.url}/{path}", body, tmp_path)
        assert status == 502 and b"workbench proxy: openai/m@tokens=3: upstream unreachable (ConnectError)" in answer
        proxy.stop()
    [row] = traces()
    assert (row["status"], row["error_class"]) == ("error", "connection")
