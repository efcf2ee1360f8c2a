"""What the provider layer relies on from httpx2, checked over real sockets (a contract: if an upgrade
changes one of these, a test here fails instead of the product silently misreporting)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx2
import pytest

from workbench.core.httpclient import new_client

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    await reader.readexactly(length)
    return head


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def _ok(body: bytes = b"ok", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body


async def test_the_trace_hook_names_the_moment_the_request_goes_out(serve: Callable[[Handler], Awaitable[str]]) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_ok())
        await writer.drain()

    url = await serve(handler)
    names: list[str] = []

    async def trace(name: str, info: dict[str, object]) -> None:
        names.append(name)

    async with new_client() as client:
        response = await client.post(url, content=b"{}", extensions={"trace": trace})
    assert response.text == "ok"
    sent = names.index("http11.send_request_headers.started")  # HttpProvider stamps sent_ns on it
    assert sent < names.index("http11.receive_response_headers.started")


@pytest.mark.parametrize("close_after_first", [False, True], ids=["kept-alive", "closed-by-the-server"])
async def test_kept_alive_connections_are_reused_and_one_the_server_closed_is_not(
    serve: Callable[[Handler], Awaitable[str]], close_after_first: bool
) -> None:
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            try:
                await _read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(_ok())
            await writer.drain()
            if close_after_first:  # an idle connection the server drops (its keep-alive timeout)
                writer.close()
                await writer.wait_closed()
                return

    url = await serve(handler)
    async with new_client() as client:
        assert (await client.get(url)).text == "ok"
        assert (await client.get(url)).text == "ok"  # a dropped idle connection is never reused
    assert len(connections) == (2 if close_after_first else 1)


@pytest.mark.parametrize("value", ["sk-a\nb", "sk-a\rb"])
async def test_a_header_value_with_a_line_break_is_a_local_protocol_error_that_quotes_it(
    serve: Callable[[Handler], Awaitable[str]], value: str
) -> None:
    """httpx2 (h11) quotes the value in its message: so ``HttpProvider`` maps the type and never passes the
    text on (tests/test_providers.py checks that no key reaches an error)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):
            await _read_request(reader)

    url = await serve(handler)
    async with new_client() as client:
        with pytest.raises(httpx2.LocalProtocolError) as caught:
            await client.get(url, headers={"authorization": f"Bearer {value}"})
    assert "Illegal header value" in str(caught.value)


def test_a_non_ascii_header_value_is_refused_when_the_request_is_built() -> None:
    with pytest.raises(UnicodeEncodeError):
        httpx2.Request("POST", "http://127.0.0.1:9/", headers={"authorization": "Bearer sk-\u200bx"})


async def test_a_body_cut_short_and_a_bad_gzip_body_raise_the_errors_we_map(
    serve: Callable[[Handler], Awaitable[str]]
) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 100\r\n\r\n{\"error\":")
        await writer.drain()
        writer.close()

    async def bad_gzip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_ok(gzip.compress(b"data: x\n\n")[:10] + b"\xff" * 20, b"content-encoding: gzip\r\n"))
        await writer.drain()

    async with new_client() as client:
        async with client.stream("GET", await serve(cut)) as response:
            with pytest.raises(httpx2.RemoteProtocolError):
                await response.aread()
        async with client.stream("GET", await serve(bad_gzip)) as response:
            with pytest.raises(httpx2.DecodingError):
                async for _ in response.aiter_bytes():
                    pass


async def test_timeouts_and_refusals_have_their_own_types(serve: Callable[[Handler], Awaitable[str]],
                                                          unreachable_port: int) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await reader.read()  # never answers

    async with new_client(timeout=httpx2.Timeout(5.0, read=0.2)) as client:
        with pytest.raises(httpx2.ReadTimeout):
            await client.get(await serve(silent))
        with pytest.raises(httpx2.ConnectError):
            await client.get(f"http://127.0.0.1:{unreachable_port}/")
