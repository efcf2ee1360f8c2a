"""A minimal HTTP/1.1 server on asyncio streams, just enough for the fake LLM providers.

* keep-alive (many requests per connection, pipelining-safe), ``Connection: close`` honoured,
  HTTP/1.0 clients get ``close`` semantics and un-chunked streams;
* request bodies by ``Content-Length`` or ``Transfer-Encoding: chunked``; ``Expect: 100-continue``;
* plain responses with ``Content-Length``; streamed responses with ``Transfer-Encoding: chunked``
  where every event is one HTTP chunk (several chunks may share one socket write when unpaced);
* faults: a ``Content-Length`` body cut short (:meth:`Responder.send_truncated`);
* :meth:`HttpServer.wait_idle` (no request being answered) and :meth:`HttpServer.write_buffer_size`
  (bytes queued in the transports, not yet taken by the kernel) for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import SupportsIndex

__all__ = ["ClientGone", "HttpServer", "Request", "Responder"]

log = logging.getLogger(__name__)

MAX_HEAD = 256 * 1024
MAX_BODY = 64 * 1024 * 1024
_EXTRA_REASONS = {529: "Site Overloaded", 499: "Client Closed Request"}


class ClientGone(ConnectionError):
    """The peer closed the connection while we were writing."""


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _EXTRA_REASONS.get(status, "Unknown")


_date_cache: tuple[int, bytes] = (0, b"")


def _date_header() -> bytes:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode())
    return _date_cache[1]


@dataclass(slots=True)
class Request:
    method: str
    target: str
    path: str
    query: str
    version: str
    headers: dict[str, str]
    body: bytes
    received_ns: int
    keep_alive: bool = True
    params: dict[str, str] = field(default_factory=dict)


class Responder:
    """Writes the response to one request. Either :meth:`send` once, or :meth:`start_stream` then
    :meth:`add` / :meth:`flush` events and :meth:`end`; :meth:`close` drops the connection."""

    __slots__ = (
        "_buf",
        "_chunked",
        "_reader",
        "_writer",
        "buffered",
        "closed",
        "headers_sent",
        "keep_alive",
        "status",
    )

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: Request) -> None:
        self._reader = reader
        self._writer = writer
        self._buf: list[bytes] = []
        self._chunked = request.version != "HTTP/1.0"
        self.keep_alive = request.keep_alive
        self.buffered = 0
        self.headers_sent = False
        self.closed = False
        self.status: int | None = None

    def _head(self, status: int, headers: Iterable[tuple[str, str]], framing: bytes) -> bytes:
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status).encode())]
        lines.extend(b"%s: %s\r\n" % (k.encode(), v.encode("latin-1", "replace")) for k, v in headers)
        lines.append(b"date: %s\r\n" % _date_header())
        lines.append(framing)
        lines.append(b"connection: keep-alive\r\n\r\n" if self.keep_alive else b"connection: close\r\n\r\n")
        return b"".join(lines)

    def check_open(self) -> None:
        if self.closed or self._writer.transport.is_closing():
            self.closed = True
            raise ClientGone("client closed the connection")

    async def send(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        """A complete response with ``Content-Length`` (``headers`` should include content-type)."""
        self.check_open()
        self.status = status
        self.headers_sent = True
        self._writer.write(self._head(status, headers, b"content-length: %d\r\n" % len(body)) + body)
        await self.drain()

    async def send_truncated(
        self, status: int, body: bytes, sent: int, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Promise all of ``body`` with ``Content-Length``, send only ``body[:sent]``, then close the connection."""
        self.check_open()
        self.status = status
        self.headers_sent = True
        self._writer.write(self._head(status, headers, b"content-length: %d\r\n" % len(body)) + body[:sent])
        await self.drain()
        self.close()

    def start_stream(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.check_open()
        self.status = status
        self.headers_sent = True
        if not self._chunked:
            self.keep_alive = False
        framing = b"transfer-encoding: chunked\r\n" if self._chunked else b""
        self._buf.append(self._head(status, headers, framing))

    def add(self, event: bytes) -> None:
        """Buffer one event as one HTTP chunk (call :meth:`write` or :meth:`flush` to send)."""
        if self._chunked:
            event = b"%x\r\n%b\r\n" % (len(event), event)
        self._buf.append(event)
        self.buffered += len(event)

    def write(self) -> None:
        """Hand the buffered bytes to the transport now (raises :class:`ClientGone`)."""
        if not self._buf:
            return
        self.check_open()
        data = self._buf[0] if len(self._buf) == 1 else b"".join(self._buf)
        self._buf.clear()
        self.buffered = 0
        self._writer.write(data)

    async def drain(self) -> None:
        try:
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            self.closed = True
            raise ClientGone(str(exc)) from exc

    async def flush(self) -> None:
        self.write()
        await self.drain()

    async def end(self) -> None:
        """Terminate a streamed body (zero-length chunk, or close for HTTP/1.0)."""
        if self._chunked:
            self._buf.append(b"0\r\n\r\n")
        await self.flush()
        if not self._chunked:
            self.close()

    def close(self) -> None:
        """Close the TCP connection after the already-written bytes (no terminator is sent)."""
        self._buf.clear()
        self.closed = True
        self.keep_alive = False
        self._writer.close()

    async def wait_peer_closed(self) -> None:
        """Stay silent until the peer closes the connection (used by ``hang``)."""
        self._buf.clear()
        self.keep_alive = False
        with contextlib.suppress(ConnectionError):
            while await self._reader.read(65536):
                pass
        self.closed = True


Handler = Callable[[Request, Responder], Awaitable[None]]


class HttpServer:
    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._active = 0  # requests being answered
        self._idle = asyncio.Event()
        self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no request is being answered (a handler that outlives its client ends soon after it)."""
        await self._idle.wait()

    def write_buffer_size(self) -> int:
        """Bytes written to the connections' transports that the kernel has not taken yet."""
        return sum(w.transport.get_write_buffer_size() for w in self._writers if not w.transport.is_closing())

    async def start(self) -> int:
        loop = asyncio.get_running_loop()

        def protocol() -> asyncio.StreamReaderProtocol:
            return asyncio.StreamReaderProtocol(_StampingReader(limit=MAX_HEAD, loop=loop), self._connection)

        self._server = await loop.create_server(protocol, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:  # never let one connection kill the server
            log.exception("fake server connection failed")
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                request = await _read_request(reader, writer)
            except _BadRequest as exc:
                body = f"{exc}\n".encode()
                writer.write(
                    b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                    b"connection: close\r\n\r\n%b" % (exc.status, reason_phrase(exc.status).encode(), len(body), body)
                )
                await writer.drain()
                return
            if request is None:
                return
            responder = Responder(reader, writer, request)
            self._active += 1
            self._idle.clear()
            try:
                try:
                    await self._handler(request, responder)
                except ClientGone:
                    return
                except Exception:
                    log.exception("fake server handler failed for %s %s", request.method, request.target)
                    if responder.headers_sent:
                        return
                    await responder.send(500, b"internal fake server error\n", [("content-type", "text/plain")])
                if not responder.headers_sent and not responder.closed:
                    await responder.send(500, b"no response\n", [("content-type", "text/plain")])
            finally:
                self._active -= 1
                if not self._active:
                    self._idle.set()
            if responder.closed or not responder.keep_alive:
                return


class _StampingReader(asyncio.StreamReader):
    """Notes when a request's first bytes arrived, in the transport's callback (not a task wake-up later).

    That instant is the request's ``received_ns``: the truth TTFT is measured from, as little delayed by
    the server's own event loop as asyncio allows.
    """

    arrived_ns: int | None = None

    def feed_data(self, data: Iterable[SupportsIndex]) -> None:
        if self.arrived_ns is None:
            self.arrived_ns = time.monotonic_ns()
        super().feed_data(data)

    def request_consumed(self) -> None:
        # Bytes of a pipelined next request may already be buffered: they arrived now-ish, not later.
        self.arrived_ns = time.monotonic_ns() if len(self._buffer) else None  # type: ignore[attr-defined]


async def _read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise _BadRequest(431, "request header too large") from None
    stamped = reader.arrived_ns if isinstance(reader, _StampingReader) else None
    received_ns = stamped if stamped is not None else time.monotonic_ns()
    head = head.lstrip(b"\r\n")
    if not head:
        return None
    try:
        text = head.decode("latin-1")
        request_line, *header_lines = text.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        raise _BadRequest(400, "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise _BadRequest(505, "HTTP version not supported")
    headers: dict[str, str] = {}
    for line in header_lines:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise _BadRequest(400, "malformed header line")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    conn = headers.get("connection", "").lower()
    keep_alive = "close" not in conn if version != "HTTP/1.0" else "keep-alive" in conn
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await _read_body(reader, headers)
    if isinstance(reader, _StampingReader):
        reader.request_consumed()
    path, _, query = target.partition("?")
    return Request(method.upper(), target, path, query, version, headers, body, received_ns, keep_alive)


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400, "bad chunk size") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise _BadRequest(413, "request body too large")
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length_text = headers.get("content-length")
    if not length_text:
        return b""
    try:
        length = int(length_text)
    except ValueError:
        raise _BadRequest(400, "bad content-length") from None
    if length < 0:
        raise _BadRequest(400, "bad content-length")
    if length > MAX_BODY:
        raise _BadRequest(413, "request body too large")
    return await reader.readexactly(length) if length else b""
