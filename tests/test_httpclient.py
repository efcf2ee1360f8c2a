"""The shared client: the environment's proxies still apply next to the HTTP/1.1 transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2
import pytest

from workbench.core.httpclient import new_client


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A stand-in forward proxy on 127.0.0.1: records each request line, answers 200 "via proxy"."""
    lines: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines.append(head.split(b"\r\n", 1)[0])
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\nconnection: close\r\n\r\nvia proxy")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", lines


async def test_http_proxy_from_the_environment_carries_the_request(proxy: tuple[str, list[bytes]],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url, lines = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    async with new_client() as client:
        response = await client.get("http://provider.invalid/v1/models")
    assert response.text == "via proxy"
    assert lines == [b"GET http://provider.invalid/v1/models HTTP/1.1"]  # absolute form: a proxy request


async def test_no_proxy_hosts_are_reached_directly(proxy: tuple[str, list[bytes]],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    url, lines = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.setenv("NO_PROXY", "provider.invalid")
    async with new_client() as client:
        with pytest.raises(httpx2.ConnectError, match=r"provider\.invalid"):
            await client.get("http://provider.invalid/v1/models")
    assert lines == []


async def test_without_proxy_variables_requests_go_straight_to_the_origin(proxy: tuple[str, list[bytes]],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url, lines = proxy  # here the stand-in is the origin server itself
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with new_client() as client:
        response = await client.get(f"{url}/v1/models")
    assert response.status_code == 200 and response.http_version == "HTTP/1.1"
    assert lines == [b"GET /v1/models HTTP/1.1"]  # origin form: no proxy in between
