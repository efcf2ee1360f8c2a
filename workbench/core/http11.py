"""An HTTP/1.1 transport for httpx on asyncio's protocols: what every provider call goes through.

httpx's default transport (httpcore on anyio) spends most of a streamed call's CPU in plumbing: a
cancel scope around every read and write, an async-library lookup for every lock and event, and a
connection pool that scans every connection whenever a request starts or ends. At 50 calls in
flight that plumbing, not the network, set an eval's pace. This transport keeps the protocol work
(h11 parses and frames every message) and drops the plumbing:

- **One protocol object per connection.** asyncio delivers bytes to :meth:`_Connection.data_received`;
  the reader waits on one future, with a timer for the read timeout (no task, no cancel scope).
- **Keep-alive pools per origin**, last in first out; a connection goes back to its pool only when
  its response was read to the end and both sides may go on. ``max_connections`` bounds the open
  connections of each origin (a request waits up to the pool timeout for one).
- **Timeouts** are httpx's (``connect``, ``read``, ``write``, ``pool``) and fail with httpx's
  exceptions, as do refused connections, resets and protocol errors.
- The ``trace`` extension gets httpcore's event names, so request timing works the same.

Proxies stay httpx's: a client built with this transport still mounts httpx's own transport for the
origins the environment's proxy variables cover.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import h11
import httpx

Origin = tuple[bytes, bytes, int]
Trace = Callable[[str, dict[str, Any]], Awaitable[None]]

DEFAULT_LIMITS = httpx.Limits()
_MAX_HEAD = 100 * 1024
"""The largest response head accepted (httpcore's limit; h11's own is 16 KiB)."""
_PAUSE_AT = 256 * 1024
"""Bytes received but not yet read at which the connection stops reading from the socket."""


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: h11's state machine fed by asyncio's callbacks."""

    def __init__(self, live: set[_Connection]) -> None:
        self._live = live
        """The transport's open connections: this one is in it from connect to close."""
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        self.closed = False
        self.closed_here = False
        """Closed by this side (the response was dropped, or the client closed)."""
        self.idle_since = 0.0
        self._waiter: asyncio.Future[bool] | None = None
        self._unread = 0
        self._paused = False
        self._drained: asyncio.Future[bool] | None = None
        self.request: httpx.Request | None = None
        self.answered = False
        """Whether any byte arrived since the current request began."""
        self.stray = False
        """Whether bytes arrived that no request asked for (the connection is then never reused)."""
        self._read_s: float | None = None
        self._write_s: float | None = None

    # -- asyncio's side ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._live.add(self)

    def data_received(self, data: bytes) -> None:
        if self.request is None:
            self.stray = True  # bytes while idle: they would pass for the next request's response
        self.h11.receive_data(data)
        self.answered = True
        self._unread += len(data)
        if self._unread > _PAUSE_AT and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.h11.receive_data(b"")
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._live.discard(self)
        self.closed = True
        self.lost = exc
        self.h11.receive_data(b"")  # end of input: h11 now reports a complete or a cut-off message
        self._wake()
        _settle(self._drained)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        _settle(self._drained)
        self._drained = None

    def _wake(self) -> None:
        _settle(self._waiter)

    # -- the request's side -----------------------------------------------------------------------
    @property
    def reusable(self) -> bool:
        return (not self.closed and not self.stray and self.h11.our_state is h11.IDLE
                and self.h11.their_state is h11.IDLE and not self.h11.trailing_data[0]
                and self.transport is not None and not self.transport.is_closing())

    def begin(self, request: httpx.Request, timeouts: dict[str, float | None]) -> None:
        """Serve ``request`` next, under its httpx timeouts (``read`` per wait for bytes, ``write``)."""
        self.request, self._read_s, self._write_s = request, timeouts.get("read"), timeouts.get("write")
        self.answered = False

    async def write(self, data: bytes) -> None:
        request = self.request
        if self.closed or self.transport is None:
            raise httpx.WriteError("the connection is closed", request=request)
        self.transport.write(data)
        if self._drained is not None and not await _within(self._drained, self._write_s):
            raise httpx.WriteTimeout("timed out sending the request", request=request)

    async def next_event(self) -> Any:
        """h11's next event, waiting up to the read timeout for each arrival of bytes; raises httpx's errors."""
        request = self.request
        while True:
            if self.closed_here:
                raise httpx.ReadError("the connection was closed on this side (the client was closed)",
                                      request=request)
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc), request=request) from None
            if event is not h11.NEED_DATA:
                return event
            if self.closed:
                why = f" ({type(self.lost).__name__}: {self.lost})" if self.lost is not None else ""
                raise httpx.ReadError(f"the connection was lost{why}", request=request)
            self._unread = 0
            if self._paused and self.transport is not None:
                self._paused = False
                self.transport.resume_reading()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                if not await _within(self._waiter, self._read_s):
                    raise httpx.ReadTimeout("timed out waiting for the response", request=request)
            finally:
                self._waiter = None

    def close(self) -> None:
        self.closed = self.closed_here = True
        self._live.discard(self)
        if self.transport is not None:
            self.transport.close()


def _settle(future: asyncio.Future[bool] | None, value: bool = True) -> None:
    if future is not None and not future.done():
        future.set_result(value)


async def _within(future: asyncio.Future[bool], seconds: float | None) -> bool:
    """Wait for ``future`` to be settled: True when it was, False when ``seconds`` passed first (no limit:
    None). One timer, no task and no cancel scope: this runs for every wait of every call."""
    if seconds is None:
        return await future
    timer = asyncio.get_running_loop().call_later(seconds, _settle, future, False)
    try:
        return await future
    finally:
        timer.cancel()


class _Pool:
    """The connections to one origin: idle ones kept for reuse, and a bound on how many are open."""

    def __init__(self, limit: int | None) -> None:
        self.idle: list[_Connection] = []
        """Kept-alive connections, the most recently used last (taken first)."""
        self.slots = asyncio.Semaphore(limit) if limit else None


class Http11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio's protocols, with keep-alive pools per origin (see the module docstring)."""

    def __init__(self, *, verify: ssl.SSLContext | None = None, limits: httpx.Limits = DEFAULT_LIMITS) -> None:
        self._ssl = verify
        if verify is not None:
            _http11_only(verify)
        self._limits = limits
        self._pools: dict[Origin, _Pool] = {}
        self._live: set[_Connection] = set()

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = _http11_only(httpx.create_ssl_context())  # httpx's own (certifi, SSL_CERT_FILE)
        return self._ssl

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}", request=request)
        origin: Origin = (scheme, url.raw_host, url.port or (443 if scheme == b"https" else 80))
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        trace: Trace | None = request.extensions.get("trace")
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = _Pool(self._limits.max_connections)
        if pool.slots is not None:
            await _acquire(pool.slots, timeouts.get("pool"), request)
        connection: _Connection | None = None
        try:
            connection = self._idle_connection(pool)
            if connection is not None:
                await request.aread()  # the body in memory (it is sent in one write anyway), so it can go twice
                try:
                    return await self._exchange(connection, pool, request, timeouts, trace)
                except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
                    if connection.answered:
                        raise
                    # A kept-alive connection the server had closed as it was reused: nothing of the
                    # request was answered, so it goes once more on a new connection.
                    connection.close()
            connection = await self._connect(origin, timeouts.get("connect"), request, trace)
            return await self._exchange(connection, pool, request, timeouts, trace)
        except BaseException:
            if connection is not None:
                connection.close()
            if pool.slots is not None:
                pool.slots.release()
            raise

    def _idle_connection(self, pool: _Pool) -> _Connection | None:
        expiry = self._limits.keepalive_expiry
        now = time.monotonic()
        while pool.idle:
            connection = pool.idle.pop()
            if connection.reusable and (expiry is None or now - connection.idle_since < expiry):
                return connection
            connection.close()
        return None

    async def _connect(self, origin: Origin, seconds: float | None, request: httpx.Request,
                       trace: Trace | None) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        connection = _Connection(self._live)
        name = host.decode("ascii")
        tls = self._tls() if scheme == b"https" else None
        if trace is not None:
            await trace("connection.connect_tcp.started", {"host": name, "port": port})
        try:
            await asyncio.wait_for(loop.create_connection(lambda: connection, name, port, ssl=tls,
                                                          server_hostname=name if tls else None), seconds)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {name}:{port}", request=request) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"cannot connect to {name}:{port}: {exc}", request=request) from None
        if trace is not None:
            await trace("connection.connect_tcp.complete", {"host": name, "port": port})
        return connection

    async def _exchange(self, connection: _Connection, pool: _Pool, request: httpx.Request,
                        timeouts: dict[str, float | None], trace: Trace | None) -> httpx.Response:
        """Send ``request`` on ``connection`` and read the response's head; the body streams later."""
        assert isinstance(request.stream, httpx.AsyncByteStream)  # as in httpx's own async transport
        connection.begin(request, timeouts)
        state = connection.h11
        if trace is not None:
            await trace("http11.send_request_headers.started", {"request": request})
        try:
            head = state.send(h11.Request(method=request.method, target=request.url.raw_path,
                                          headers=request.headers.raw))
            body = b"".join([state.send(h11.Data(data=part)) or b"" async for part in request.stream if part])
            end = state.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(_unsendable(request, exc), request=request) from None
        await connection.write((head or b"") + body + (end or b""))
        if trace is not None:
            await trace("http11.receive_response_headers.started", {"request": request})
        while True:
            event = await connection.next_event()
            if isinstance(event, h11.Response):
                break
            if not isinstance(event, h11.InformationalResponse):  # h11 raises for anything else out of order
                raise httpx.RemoteProtocolError("server disconnected without sending a response", request=request)
        if trace is not None:
            await trace("http11.receive_response_headers.complete", {"request": request})
        return httpx.Response(event.status_code, headers=event.headers.raw_items(),
                              stream=_ResponseStream(self, connection, pool),
                              extensions={"http_version": b"HTTP/1.1", "reason_phrase": event.reason})

    def _done(self, connection: _Connection, pool: _Pool, *, reuse: bool) -> None:
        """A response is over: keep its connection for the next request when it may go on, else close it."""
        connection.request = None
        if reuse and connection.h11.our_state is h11.DONE and connection.h11.their_state is h11.DONE:
            connection.h11.start_next_cycle()
        keep = self._limits.max_keepalive_connections
        if reuse and connection.reusable and (keep is None or len(pool.idle) < keep):
            connection.idle_since = time.monotonic()
            pool.idle.append(connection)
        else:
            connection.close()
        if pool.slots is not None:
            pool.slots.release()

    async def aclose(self) -> None:
        """Close every connection, idle or still streaming (a response left open then fails to read)."""
        for connection in list(self._live):
            connection.close()
        self._pools.clear()


def _unsendable(request: httpx.Request, exc: h11.LocalProtocolError) -> str:
    """Why ``request`` cannot be framed, without h11's message: that quotes the offending header value,
    which may be an API key."""
    for name, value in request.headers.raw:
        if value != value.strip(b" \t") or any(c in value for c in b"\r\n\x00"):
            return (f"the request header {name.decode('latin-1')!r} has a value HTTP forbids (a line break, a NUL, "
                    "or a leading or trailing space)")
    return f"the request cannot be sent as HTTP/1.1 ({type(exc).__name__})"


def _http11_only(context: ssl.SSLContext) -> ssl.SSLContext:
    """Offer only HTTP/1.1 in the TLS handshake (ALPN), as httpcore does: a server that prefers h2 must not
    pick it for a client that speaks HTTP/1.1."""
    context.set_alpn_protocols(["http/1.1"])
    return context


async def _acquire(slots: asyncio.Semaphore, seconds: float | None, request: httpx.Request) -> None:
    if not slots.locked():
        await slots.acquire()  # free: returns at once
        return
    try:
        await asyncio.wait_for(slots.acquire(), seconds)
    except TimeoutError:
        raise httpx.PoolTimeout("timed out waiting for a free connection", request=request) from None


class _ResponseStream(httpx.AsyncByteStream):
    """A response body read from its connection; closing it returns the connection to the pool when
    the body was read to the end, and closes it otherwise."""

    def __init__(self, transport: Http11Transport, connection: _Connection, pool: _Pool) -> None:
        self._transport, self._connection, self._pool = transport, connection, pool
        self._complete = self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        try:
            while not self._complete:
                event = await connection.next_event()
                if type(event) is h11.Data:
                    yield event.data
                elif type(event) is h11.EndOfMessage:
                    self._complete = True
                else:
                    raise httpx.RemoteProtocolError("server disconnected mid-response", request=connection.request)
        except BaseException:
            self._release()
            raise

    async def aclose(self) -> None:
        self._release()

    def _release(self) -> None:
        if not self._closed:
            self._closed = True
            self._transport._done(self._connection, self._pool, reuse=self._complete)
