"""Http11Transport against real servers on 127.0.0.1: framing, keep-alive, pool limits, timeouts, errors, TLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from workbench.core import http11
from workbench.core.http11 import Http11Transport
from workbench.core.httpclient import new_client
from workbench.fakeserver.process import FakeServerProcess

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
FAST = httpx.Timeout(2.0)


# -------------------------------------------------------------------------------------------- a scripted server
@dataclass
class RawRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


async def read_request(reader: asyncio.StreamReader) -> RawRequest | None:
    """One request (head up to the blank line, then a Content-Length or chunked body); None at end of input."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")  # the blank line after the last chunk (no trailers)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RawRequest(method, target, headers, body)


def response(body: bytes = b"", status: int = 200, reason: str = "OK", headers: tuple[str, ...] = ()) -> bytes:
    """A whole HTTP/1.1 response with a Content-Length body."""
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


async def wait_eof(reader: asyncio.StreamReader) -> None:
    """Read (and drop) until the client closes the connection."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass


class RawServer:
    """An ``asyncio.start_server`` on 127.0.0.1 (port 0) whose ``handler`` serves each connection.

    Counts accepted connections and the most open at once (a connection is open while its handler runs)."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.accepted = 0
        self.open = 0
        self.max_open = 0
        self.port = 0
        self.alpn: list[str | None] = []
        """The protocol each TLS connection negotiated (ALPN)."""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.accepted += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        tls = writer.get_extra_info("ssl_object")
        if tls is not None:
            self.alpn.append(tls.selected_alpn_protocol())
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a client that went away, or the server stopping (a cancelled handler would be logged)
        finally:
            self.open -= 1
            writer.close()
            self._tasks.discard(task)


def keep_alive(respond: Callable[[RawRequest], bytes], delay: float = 0.0) -> Handler:
    """A handler answering every request of a connection with ``respond(request)`` (after ``delay`` s) until the
    client closes it, or until a response says ``Connection: close``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            if delay:
                await asyncio.sleep(delay)
            data = respond(request)
            writer.write(data)
            await writer.drain()
            if b"\r\nconnection: close\r\n" in data.split(b"\r\n\r\n", 1)[0].lower() + b"\r\n":
                return

    return handler


def client_for(limits: httpx.Limits | None = None, timeout: httpx.Timeout = FAST,
               verify: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    transport = Http11Transport(limits=limits or httpx.Limits(), verify=verify)
    return httpx.AsyncClient(transport=transport, timeout=timeout)


# -------------------------------------------------------------------------------------------- 1. bodies
async def test_content_length_body_status_headers_and_version() -> None:
    body = b"x" * 10_000 + b"end"
    reply = response(body, 201, "Made It", ("X-Custom-Thing: Some Value", "Content-Type: text/plain"))
    async with RawServer(keep_alive(lambda request: reply)) as server, client_for() as client:
        r = await client.get(f"{server.url}/path?q=1")
    assert r.status_code == 201
    assert r.reason_phrase == "Made It"
    assert r.http_version == "HTTP/1.1"
    assert r.content == body
    assert r.headers["x-custom-thing"] == "Some Value"
    assert r.headers["X-CUSTOM-THING"] == "Some Value"
    assert r.headers["content-length"] == str(len(body))
    assert (b"X-Custom-Thing", b"Some Value") in r.headers.raw  # the name as the server spelled it


async def test_post_json_reaches_the_server_and_chunked_reply_is_read_in_full() -> None:
    seen: list[RawRequest] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert request is not None
        seen.append(request)
        writer.write(CHUNKED_HEAD + chunk(b"you sent ") + chunk(request.body) + chunk(b" ok") + b"0\r\n\r\n")
        await writer.drain()
        await wait_eof(reader)

    payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    async with RawServer(handler) as server, client_for() as client:
        r = await client.post(f"{server.url}/v1/echo", json=payload)
    assert r.status_code == 200 and r.reason_phrase == "OK" and r.http_version == "HTTP/1.1"
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert len(seen) == 1
    assert seen[0].method == "POST" and seen[0].target == "/v1/echo"
    assert seen[0].headers["content-type"] == "application/json"
    assert seen[0].headers["host"] == f"127.0.0.1:{server.port}"
    assert json.loads(seen[0].body) == payload
    assert r.content == b"you sent " + seen[0].body + b" ok"


async def test_close_delimited_body_is_read_to_the_end_and_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the ")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"end")
        await writer.drain()  # then close: the end of the body

    async with RawServer(handler) as server, client_for() as client:
        first = await client.get(f"{server.url}/a")
        second = await client.get(f"{server.url}/b")
    assert first.content == second.content == b"until the end"
    assert server.accepted == 2


async def test_head_response_has_no_body_and_keeps_the_connection() -> None:
    def respond(request: RawRequest) -> bytes:
        if request.method == "HEAD":  # the length of the body a GET would get, and no body
            return b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
        return response(b"after head")

    async with RawServer(keep_alive(respond)) as server, client_for() as client:
        head = await client.head(f"{server.url}/h")
        assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == "1000"
        after = await client.get(f"{server.url}/g")
        assert after.content == b"after head"
        assert server.accepted == 1


async def test_informational_response_is_skipped() -> None:
    def respond(request: RawRequest) -> bytes:
        return b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"final", 202, "Accepted")

    async with RawServer(keep_alive(respond)) as server, client_for() as client:
        r = await client.post(f"{server.url}/p", content=b"data")
        again = await client.get(f"{server.url}/p")
    assert (r.status_code, r.reason_phrase, r.content) == (202, "Accepted", b"final")
    assert again.status_code == 202
    assert server.accepted == 1


# -------------------------------------------------------------------------------------------- 2. keep-alive
async def test_sequential_requests_share_one_connection() -> None:
    async with RawServer(keep_alive(lambda request: response(request.target.encode()))) as server, \
            client_for() as client:
        bodies = [(await client.get(f"{server.url}/n{i}")).content for i in range(5)]
    assert bodies == [f"/n{i}".encode() for i in range(5)]
    assert server.accepted == 1


async def test_connection_close_response_is_not_reused() -> None:
    def respond(request: RawRequest) -> bytes:
        if request.target == "/close":
            return response(b"bye", headers=("Connection: close",))
        return response(b"hello")

    async with RawServer(keep_alive(respond)) as server, client_for() as client:
        first = await client.get(f"{server.url}/close")
        assert first.content == b"bye" and first.headers["connection"] == "close"
        assert server.accepted == 1
        second = await client.get(f"{server.url}/other")
        assert second.content == b"hello"
        assert server.accepted == 2
        third = await client.get(f"{server.url}/other")  # the second connection is kept alive
        assert third.content == b"hello"
        assert server.accepted == 2


@pytest.mark.parametrize("later", [False, True], ids=["with-the-response", "while-idle"])
async def test_bytes_no_request_asked_for_are_never_taken_for_the_next_response(later: bool) -> None:
    stale = response(b"stale")

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert request is not None
        if request.target == "/first":
            writer.write(response(b"first") + (b"" if later else stale))
            await writer.drain()
            if later:
                await asyncio.sleep(0.05)
                writer.write(stale)
                await writer.drain()
            await wait_eof(reader)
            return
        writer.write(response(b"fresh"))
        await writer.drain()
        await wait_eof(reader)

    async with RawServer(handler) as server, client_for() as client:
        assert (await client.get(f"{server.url}/first")).content == b"first"
        if later:
            await asyncio.sleep(0.1)
        assert (await client.get(f"{server.url}/second")).content == b"fresh"
        assert server.accepted == 2


def _stale_second_request(seen: list[tuple[int, str, bytes]], *, partial: bool = False) -> Handler:
    """The first connection answers ``/first``, then closes on the next request without a byte of answer (or,
    ``partial``, after half a status line); later connections answer every request with its body."""
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        number = connections
        while (request := await read_request(reader)) is not None:
            seen.append((number, request.target, request.body))
            if number == 1 and request.target != "/first":
                if partial:
                    writer.write(b"HTTP/1.1 200 O")
                    await writer.drain()
                return
            writer.write(response(b"got " + request.body))
            await writer.drain()

    return handler


async def test_reused_connection_closed_without_an_answer_is_retried_on_a_new_one() -> None:
    seen: list[tuple[int, str, bytes]] = []
    async with RawServer(_stale_second_request(seen)) as server, client_for() as client:
        assert (await client.get(f"{server.url}/first")).content == b"got "
        r = await client.post(f"{server.url}/second", content=b"payload")
        assert r.status_code == 200 and r.content == b"got payload"
        assert seen == [(1, "/first", b""), (1, "/second", b"payload"), (2, "/second", b"payload")]
        assert server.accepted == 2


async def test_reused_connection_closed_mid_answer_is_not_retried() -> None:
    seen: list[tuple[int, str, bytes]] = []
    async with RawServer(_stale_second_request(seen, partial=True)) as server, client_for() as client:
        assert (await client.get(f"{server.url}/first")).content == b"got "
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"{server.url}/second", content=b"payload")
        assert seen == [(1, "/first", b""), (1, "/second", b"payload")]
        assert server.accepted == 1


async def test_retry_of_a_streamed_request_body() -> None:
    """A body from an async generator can be iterated once: when the kept-alive connection fails unanswered,
    the request goes again with the same bytes or fails with the connection's error, never StreamConsumed."""
    seen: list[tuple[int, str, bytes]] = []

    async def body() -> AsyncIterator[bytes]:
        yield b"part one, "
        yield b"part two"

    async with RawServer(_stale_second_request(seen)) as server, client_for() as client:
        assert (await client.get(f"{server.url}/first")).content == b"got "
        try:
            r = await client.post(f"{server.url}/second", content=body())
        except httpx.RemoteProtocolError:
            assert seen == [(1, "/first", b""), (1, "/second", b"part one, part two")]
        else:
            assert r.content == b"got part one, part two"
            assert seen[-1] == (2, "/second", b"part one, part two")


# -------------------------------------------------------------------------------------------- 3. streaming
async def test_stream_yields_chunks_as_they_arrive() -> None:
    log: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD)
        for i in range(3):
            log.append(f"sent {i}")
            writer.write(chunk(f"part{i}".encode()))
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await wait_eof(reader)

    async with (RawServer(handler) as server, client_for() as client,
                client.stream("GET", f"{server.url}/s") as r):
        assert r.status_code == 200
        parts = []
        async for data in r.aiter_raw():
            log.append(f"got {data.decode()}")
            parts.append(data)
    assert parts == [b"part0", b"part1", b"part2"]
    assert log == ["sent 0", "got part0", "sent 1", "got part1", "sent 2", "got part2"]


def _partial_or_whole(gone: asyncio.Event) -> Handler:
    """``/partial`` gets the head and one chunk, then nothing until the client closes (which sets ``gone``);
    every other path a whole response, kept alive."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            if request.target == "/partial":
                writer.write(CHUNKED_HEAD + chunk(b"first"))
                await writer.drain()
                await wait_eof(reader)
                gone.set()
                return
            writer.write(response(b"whole"))
            await writer.drain()

    return handler


async def test_breaking_out_of_a_stream_closes_its_connection_and_frees_the_slot() -> None:
    gone = asyncio.Event()
    async with RawServer(_partial_or_whole(gone)) as server, \
            client_for(httpx.Limits(max_connections=1)) as client:
        async with client.stream("GET", f"{server.url}/partial") as r:
            async for data in r.aiter_raw():
                assert data == b"first"
                break
        await asyncio.wait_for(gone.wait(), 1)  # the server saw the connection closed
        after = await client.get(f"{server.url}/next")  # the only slot was given back
        assert after.content == b"whole"
        assert server.accepted == 2


# -------------------------------------------------------------------------------------------- 4. errors
async def test_refused_connection_is_connect_error(unreachable_port: int) -> None:
    async with client_for() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{unreachable_port}/")


async def test_no_answer_is_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await wait_eof(reader)

    async with RawServer(handler) as server, client_for(timeout=httpx.Timeout(5, read=0.2)) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{server.url}/")
        assert 0.15 < loop.time() - start < 1.0


@pytest.mark.parametrize(("server_closes", "error"), [(False, httpx.ReadTimeout), (True, httpx.RemoteProtocolError)],
                         ids=["stalls", "closes"])
async def test_a_body_cut_short_fails_after_the_bytes_that_came(server_closes: bool,
                                                                 error: type[httpx.TransportError]) -> None:
    """10 of 100 promised bytes, then the server stalls (a read timeout) or closes (a protocol error)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
        await writer.drain()
        if not server_closes:
            await wait_eof(reader)

    async with RawServer(handler) as server, client_for(timeout=httpx.Timeout(5, read=0.2)) as client:
        with pytest.raises(error):
            await client.get(f"{server.url}/")
        received = b""
        async with client.stream("GET", f"{server.url}/") as r:
            assert r.status_code == 200
            with pytest.raises(error):
                async for data in r.aiter_raw():
                    received += data
        assert received == b"a" * 10


async def test_close_without_a_response_is_remote_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)  # then close without a word

    async with RawServer(handler) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await client.get(f"{server.url}/")
        assert caught.type is httpx.RemoteProtocolError  # not a ReadError
        assert server.accepted == 1  # a new connection is not tried again


async def test_a_large_response_head_is_read_up_to_100_kib() -> None:
    def respond(request: RawRequest) -> bytes:
        size = 50_000 if request.target == "/large" else 200_000
        return response(b"ok", headers=(f"x-padding: {'p' * size}",))

    async with RawServer(keep_alive(respond)) as server, client_for() as client:
        large = await client.get(f"{server.url}/large")
        assert large.content == b"ok" and len(large.headers["x-padding"]) == 50_000
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"{server.url}/huge")


async def test_garbage_status_line_is_remote_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6 hello there\r\n\r\n")
        await writer.drain()
        await wait_eof(reader)

    async with RawServer(handler) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"{server.url}/")


async def test_a_header_value_http_forbids_fails_without_quoting_it() -> None:
    canary = "sk-canary-7f3a"
    seen: list[RawRequest] = []
    async with RawServer(keep_alive(lambda r: seen.append(r) or response(b"never"))) as server, \
            client_for() as client:
        for value in (f"Bearer {canary}\nx", f"Bearer {canary} "):
            with pytest.raises(httpx.LocalProtocolError) as caught:
                await client.get(server.url, headers={"Authorization": value})
            assert "'authorization'" in str(caught.value).lower()
            assert canary not in str(caught.value) and canary not in repr(caught.value)
    assert seen == []  # nothing was sent: the request could not be framed


async def test_unsupported_scheme() -> None:
    transport = Http11Transport()
    with pytest.raises(httpx.UnsupportedProtocol, match="ftp"):
        await transport.handle_async_request(httpx.Request("GET", "ftp://127.0.0.1/file"))
    async with httpx.AsyncClient(transport=transport, timeout=FAST) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("ftp://127.0.0.1/file")


# -------------------------------------------------------------------------------------------- 5. pool limits
async def test_max_connections_bounds_open_connections() -> None:
    handler = keep_alive(lambda request: response(request.target.encode()), delay=0.05)
    async with RawServer(handler) as server, client_for(httpx.Limits(max_connections=2)) as client:
        replies = await asyncio.gather(*(client.get(f"{server.url}/r{i}") for i in range(6)))
    assert sorted(r.content for r in replies) == sorted(f"/r{i}".encode() for i in range(6))
    assert all(r.status_code == 200 for r in replies)
    assert server.max_open <= 2
    assert server.accepted == 2


async def test_pool_timeout_when_the_only_connection_is_busy() -> None:
    arrived = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            if request.target == "/hang":
                arrived.set()
                await wait_eof(reader)
                return
            writer.write(response(b"fine"))
            await writer.drain()

    async with RawServer(handler) as server, client_for(httpx.Limits(max_connections=1)) as client:
        first = asyncio.create_task(client.get(f"{server.url}/hang"))
        await asyncio.wait_for(arrived.wait(), 1)
        with pytest.raises(httpx.PoolTimeout):
            await client.get(f"{server.url}/next", timeout=httpx.Timeout(5, pool=0.1))
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        after = await client.get(f"{server.url}/next", timeout=httpx.Timeout(5, pool=0.5))
        assert after.content == b"fine"  # the cancelled request gave its slot back


# -------------------------------------------------------------------------------------------- 6. backpressure
async def test_large_body_read_slowly_arrives_intact() -> None:
    assert http11._PAUSE_AT < 2 * 1024 * 1024
    body = os.urandom(2 * 1024 * 1024)
    async with RawServer(keep_alive(lambda request: response(body))) as server, client_for() as client:
        received = bytearray()
        chunks = 0
        async with client.stream("GET", f"{server.url}/big") as r:
            async for data in r.aiter_raw():
                received += data
                chunks += 1
                await asyncio.sleep(0.003)
        assert bytes(received) == body
        assert chunks > 1
        again = await client.get(f"{server.url}/small")  # the connection still works after pausing
        assert again.content == body
        assert server.accepted == 1


async def test_server_closing_an_idle_connection_after_a_paused_read() -> None:
    """A body that arrives while nothing reads it pauses reading; the server then closes the kept-alive
    connection while it idles in the pool: the next request still succeeds, on a new connection."""
    body = os.urandom(http11._PAUSE_AT + 40_000)
    close_now = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert request is not None
        writer.write(response(body if request.target == "/big" else b"small"))
        await writer.drain()
        await close_now.wait()  # then close, as a server does when its keep-alive timeout passes

    async with RawServer(handler) as server, client_for() as client:
        async with client.stream("GET", f"{server.url}/big") as r:
            await asyncio.sleep(0.05)  # the whole body arrives unread
            assert await r.aread() == body
        close_now.set()
        await asyncio.sleep(0.05)
        after = await client.get(f"{server.url}/small")
        assert after.content == b"small"
        assert server.accepted == 2


# -------------------------------------------------------------------------------------------- 7. write timeout
async def test_write_timeout_when_the_server_never_reads() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)  # accept, never read

    async with RawServer(handler) as server, client_for(timeout=httpx.Timeout(5, write=0.2)) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(httpx.WriteTimeout):
            await client.post(f"{server.url}/upload", content=b"\0" * (64 * 1024 * 1024))
        assert loop.time() - start < 2.0


# -------------------------------------------------------------------------------------------- 8. trace
async def test_trace_extension_gets_httpcore_event_names() -> None:
    names: list[list[str]] = []

    async def trace(name: str, info: dict[str, Any]) -> None:
        names[-1].append(name)

    async with RawServer(keep_alive(lambda request: response(b"traced"))) as server, client_for() as client:
        for _ in range(2):
            names.append([])
            async with client.stream("GET", f"{server.url}/t", extensions={"trace": trace}) as r:
                assert await r.aread() == b"traced"
    first, second = names
    for expected in ("http11.send_request_headers.started", "http11.receive_response_headers.started",
                     "http11.receive_response_headers.complete"):
        assert expected in first and expected in second
    assert first[0] == "connection.connect_tcp.started" and "connection.connect_tcp.complete" in first
    assert first.index("connection.connect_tcp.complete") < first.index("http11.send_request_headers.started")
    assert first.index("http11.send_request_headers.started") < first.index("http11.receive_response_headers.complete")
    assert "connection.connect_tcp.started" not in second  # the kept-alive connection
    assert server.accepted == 1


# -------------------------------------------------------------------------------------------- 9. cancellation
async def test_cancelling_a_stream_mid_body_closes_its_connection() -> None:
    gone = asyncio.Event()
    got_first = asyncio.Event()

    async def reader_task(client: httpx.AsyncClient, url: str) -> None:
        async with client.stream("GET", f"{url}/partial") as r:
            async for _ in r.aiter_raw():
                got_first.set()

    async with RawServer(_partial_or_whole(gone)) as server, client_for() as client:
        task = asyncio.create_task(reader_task(client, server.url))
        await asyncio.wait_for(got_first.wait(), 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(gone.wait(), 1)  # the server saw the connection closed
        after = await client.get(f"{server.url}/next")
        assert after.content == b"whole"
        assert server.accepted == 2


async def test_closing_the_client_closes_idle_and_streaming_connections() -> None:
    gone = asyncio.Event()
    async with RawServer(_partial_or_whole(gone)) as server:
        client = client_for()
        response = await client.send(client.build_request("GET", f"{server.url}/partial"), stream=True)
        chunks = response.aiter_raw()
        assert await chunks.__anext__() == b"first"
        assert (await client.get(f"{server.url}/idle")).content == b"whole"  # a second connection, now idle
        await client.aclose()
        await asyncio.wait_for(gone.wait(), 1)  # the streaming connection was closed by the client
        with pytest.raises(httpx.ReadError):
            await chunks.__anext__()
        for _ in range(50):  # the idle one too: no handler is left running
            if server.open == 0:
                break
            await asyncio.sleep(0.01)
        assert server.open == 0 and server.accepted == 2


# -------------------------------------------------------------------------------------------- 10. the fake provider
async def test_fake_provider_stream_and_keep_alive(fake_server: FakeServerProcess,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    connects: list[str] = []

    async def trace(name: str, info: dict[str, Any]) -> None:
        if name == "connection.connect_tcp.started":
            connects.append(name)

    url = f"{fake_server.base_url}/v1/chat/completions"
    payload = {"model": "m@tokens=5", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with new_client() as client:
        async with client.stream("POST", url, json=payload, extensions={"trace": trace}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            text = (await r.aread()).decode()
        events = [line.removeprefix("data: ") for line in text.split("\n") if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        content = "".join(choice["delta"].get("content") or ""
                          for event in events[:-1] for choice in json.loads(event)["choices"])
        assert len(content.split()) == 5
        for _ in range(20):
            reply = await client.post(url, json={**payload, "stream": False}, extensions={"trace": trace})
            assert reply.status_code == 200
            assert reply.json()["choices"][0]["message"]["content"]
        assert connects == ["connection.connect_tcp.started"]
        transport = client._transport
        assert isinstance(transport, Http11Transport)
        assert [len(pool.idle) for pool in transport._pools.values()] == [1]


# -------------------------------------------------------------------------------------------- 11. TLS
def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate it signs (for localhost and 127.0.0.1): CA file, cert file, key file."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "workbench test CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_file, cert_file, key_file


async def test_tls_with_a_trusted_certificate_and_without(tmp_path: Path) -> None:
    ca_file, cert_file, key_file = _certificates(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_file, key_file)
    server_ctx.set_alpn_protocols(["h2", "http/1.1"])
    seen: list[RawRequest] = []

    def respond(request: RawRequest) -> bytes:
        seen.append(request)
        return response(b"secret", reason="Fine")

    async with RawServer(keep_alive(respond), ssl_context=server_ctx) as server:
        trusting = ssl.create_default_context(cafile=str(ca_file))
        async with client_for(verify=trusting) as client:
            r = await client.get(f"https://localhost:{server.port}/tls")
            assert (r.status_code, r.reason_phrase, r.content) == (200, "Fine", b"secret")
            assert r.url.scheme == "https"
            assert seen[0].headers["host"] == f"localhost:{server.port}"
            assert server.alpn == ["http/1.1"]  # offered by the client, so an h2-first server speaks HTTP/1.1
        async with client_for() as client:  # httpx's default trust store knows nothing of this CA
            with pytest.raises(httpx.ConnectError):
                await client.get(f"https://localhost:{server.port}/tls")
        assert len(seen) == 1
