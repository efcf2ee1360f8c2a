"""The proxy as a plain ASGI app: ``/<provider>/...`` forwarded to the provider (:mod:`.routes`) through the
shared HTTP client (:func:`workbench.core.httpclient.new_client`: proxies, CA, trust store), each upstream chunk
sent on as it arrives; chat calls traced (:mod:`.recording`) through ``sink``. A pass-through call's upstream
silence is bounded by the client's read timeout as one idle watchdog per stream (:mod:`.idle`), not by httpx2's
timer around every read.

Status and headers pass through but the hop-by-hop ones; the application's own key header is forwarded and never
stored; ``X-Workbench-Tags`` (comma-separated) and ``X-Workbench-Session`` are read into the trace's context and
not forwarded. The proxy token and the user's keys: :mod:`.access`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import httpx2

from workbench.core.call_record import CallRecord
from workbench.core.capture.access import TOKEN_HEADER, Access, refusal
from workbench.core.capture.idle import IdleTimeout
from workbench.core.capture.recording import CallTap
from workbench.core.capture.resilient import NoAnswerError, Resilience
from workbench.core.capture.routes import Route, route
from workbench.core.capture.wire_request import json_body
from workbench.core.errors import ProviderConnectionError, ProviderTimeoutError, WorkbenchError
from workbench.core.registry import ProviderSpec
from workbench.core.traces.context import CallContext

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Sink = Callable[[CallRecord, CallContext], None]

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "host", "content-length"})
TAGS_HEADER = "x-workbench-tags"
SESSION_HEADER = "x-workbench-session"
MAX_REQUEST_BYTES = 64 * 1024 * 1024


def context_of(headers: Mapping[str, str]) -> CallContext:
    tags = tuple(t.strip() for t in headers.get(TAGS_HEADER, "").split(",") if t.strip())
    return CallContext(session_id=headers.get(SESSION_HEADER) or None, tags=tags)


def _forwarded(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items()
            if k not in HOP_BY_HOP and k not in (TAGS_HEADER, SESSION_HEADER, TOKEN_HEADER)}


class ProxyApp:
    """The ASGI app. ``specs``/``env``: what routes resolve against; ``client``: the shared HTTP client (closed
    by the caller); ``sink``: where each traced call goes (already settled: usage estimated, cost)."""

    def __init__(self, specs: Mapping[str, ProviderSpec], env: Mapping[str, str], client: httpx2.AsyncClient,
                 sink: Sink, *, resilience: Resilience | None = None, resilient: frozenset[str] = frozenset(),
                 access: Access | None = None) -> None:
        self.specs, self.env, self.client, self.sink = specs, env, client, sink
        self.access = access or Access()
        """The proxy token every request must carry, and the user's keys it may add (:mod:`.access`)."""
        self.resilience, self.resilient = resilience, resilient
        """The routes (provider names) whose chat calls ``resilience`` sends (:mod:`.resilient`)."""
        timeout = client.timeout
        self.idle_s = timeout.read
        """How long the upstream may stay silent (the client's read timeout): before its headers, and between
        two chunks of its answer."""
        self.unread = httpx2.Timeout(connect=timeout.connect, read=None, write=timeout.write, pool=timeout.pool)
        """A pass-through request's timeouts: the client's but ``read``, which :attr:`idle_s` enforces."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        found = route(scope["path"], self.specs, self.env)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not self.access.granted(headers):
            await _answer(send, 401, refusal(self.specs[found.provider].wire if found else None))
            return
        if found is None:
            await _answer(send, 404, b'{"error": {"message": "workbench proxy: no provider route for this path; '
                                     b'use /<provider>/... (e.g. /openai/v1, /anthropic)"}}')
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > MAX_REQUEST_BYTES:
                await _answer(send, 413, b'{"error": {"message": "workbench proxy: request body too large"}}')
                return
            if not message.get("more_body"):
                break
        query = scope.get("query_string", b"").decode("latin-1")
        url = found.upstream + (f"?{query}" if query else "")
        sent = {**_forwarded(headers), **self.access.key_headers(self.specs[found.provider], headers, query)}
        resilient = self.resilience is not None and found.provider in self.resilient
        # A resilient route's attempts keep the client's timeouts: its policy reads them (:mod:`.resilient`).
        request = (self.client.build_request(scope["method"], url, headers=sent, content=bytes(body)) if resilient
                   else self.client.build_request(scope["method"], url, headers=sent, content=bytes(body),
                                                  timeout=self.unread))
        parsed = json_body(bytes(body)) if found.wire else {}
        if found.wire == "ollama":
            parsed.setdefault("stream", True)
        tap = CallTap(found, parsed, time.perf_counter_ns()) if found.wire else None
        # The application going away cancels the exchange (traced as cancelled), even while the upstream is silent.
        exchange = asyncio.create_task(self._exchange(request, send, tap, headers,
                                                      (found, parsed) if resilient else None))
        watch = asyncio.create_task(_disconnect(receive))
        try:
            await asyncio.wait((exchange, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
            if not exchange.done():
                exchange.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await exchange

    async def _exchange(self, request: httpx2.Request, send: Send, tap: CallTap | None, headers: Mapping[str, str],
                        resilient: tuple[Route, dict[str, Any]] | None) -> None:
        """The request sent upstream (by the route's resilient policy, else once) and its answer relayed; no
        answer: a 504 (timeout) or 502 of the proxy's."""
        release: Callable[[], None] | None = None
        target = tap.record.target if tap is not None else request.url.host
        try:
            if resilient is not None and tap is not None and self.resilience is not None:
                response, release = await self.resilience.send(resilient[0], request, resilient[1], tap.record)
            else:
                response = await self._headers(request)
        except NoAnswerError as exc:  # every attempt of the resilient policy went unanswered
            await self._no_answer(send, tap, headers, exc.error)
            return
        except _NoHeaders:  # the provider stayed silent for the read timeout
            await self._no_answer(send, tap, headers, ProviderTimeoutError(target, "read"))
            return
        except httpx2.HTTPError as exc:
            await self._no_answer(send, tap, headers, ProviderTimeoutError(target, _timeout_kind(exc))
                                  if isinstance(exc, httpx2.TimeoutException) else
                                  ProviderConnectionError(target, f"upstream unreachable ({type(exc).__name__})"))
            return
        except BaseException:  # the application went away (or shutdown) before the provider answered
            if tap is not None:
                self._trace(tap.ended(cancelled=True), headers)
            raise
        try:
            # A resilient route's requests keep httpx2's read timeout: no watchdog for them.
            await self._relay(response, send, tap, headers, None if resilient is not None else self.idle_s)
        finally:
            if release is not None:
                release()

    async def _headers(self, request: httpx2.Request) -> httpx2.Response:
        """The pass-through request sent, its answer's headers read within :attr:`idle_s` (else :class:`_NoHeaders`;
        httpx2's connect, write and pool timeouts apply as they are)."""
        try:
            async with IdleTimeout(self.idle_s):
                return await self.client.send(request, stream=True)
        except TimeoutError:
            raise _NoHeaders from None

    async def _no_answer(self, send: Send, tap: CallTap | None, headers: Mapping[str, str],
                         error: WorkbenchError) -> None:
        """The proxy's own answer when the provider's never came (504 after a timeout, else 502), traced."""
        timeout = isinstance(error, ProviderTimeoutError)
        await _answer(send, 504 if timeout else 502,
                      json.dumps({"error": {"message": f"workbench proxy: {error}"}}).encode())
        if tap is not None:
            self._trace(tap.failed(error), headers)

    async def _relay(self, response: httpx2.Response, send: Send, tap: CallTap | None, headers: Mapping[str, str],
                     idle_s: float | None) -> None:
        """The answer sent on to the application as it comes; ``idle_s``: how long the upstream may go silent
        between two chunks (the request has no read timeout of its own), or ``None``."""
        upstream = {k.lower(): v for k, v in response.headers.items()}
        if tap is not None:
            tap.started(response.status_code, upstream, time.perf_counter_ns())
        cancelled, cut = False, None
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(k.encode("latin-1"), v.encode("latin-1"))
                                    for k, v in response.headers.multi_items()
                                    if k.lower() not in HOP_BY_HOP or k.lower() == "content-length"]})
            try:
                async with IdleTimeout(idle_s) as idle:
                    async for chunk in response.aiter_raw():
                        idle.pause()
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                        if tap is not None:
                            tap.feed(chunk)
                        idle.touch()
            except httpx2.HTTPError as exc:
                cut = f"the upstream stream broke ({type(exc).__name__})"
            except TimeoutError:  # the provider went silent mid-answer for the read timeout
                cut = "the upstream stream broke (ReadTimeout)"
            if cut is None:  # else the application's connection is closed unfinished too, as the provider's was
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the application went away (uvicorn's ClientDisconnected)
            cancelled = True
        except BaseException:  # shut down mid-stream: traced as cancelled, then let go
            if tap is not None:
                self._trace(tap.ended(cancelled=True), headers)
            raise
        finally:
            await response.aclose()
        if tap is not None:
            self._trace(tap.ended(cancelled=cancelled, cut=cut), headers)

    def _trace(self, record: CallRecord, headers: Mapping[str, str]) -> None:
        self.sink(record, context_of(headers))


class _NoHeaders(Exception):
    """No answer from the provider within the read timeout."""


def _timeout_kind(exc: httpx2.HTTPError) -> str:
    kinds: dict[type[httpx2.HTTPError], str] = {httpx2.ConnectTimeout: "connect", httpx2.WriteTimeout: "write",
                                                 httpx2.PoolTimeout: "pool"}
    return kinds.get(type(exc), "read")


async def _disconnect(receive: Receive) -> None:
    """Returns once the application closed its connection."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
