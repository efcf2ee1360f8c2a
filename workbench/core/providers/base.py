"""The provider protocol and the HTTP machinery every wire format shares.

An adapter only says how to build its request, how to read its error bodies, and how to turn one
decoded wire message into stream events (:class:`WireParser`). Sending, timing, byte decoding and the
mapping of transport failures to typed errors live here, once.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal, Protocol

import httpx2

from workbench.core.endpoint import Endpoint
from workbench.core.errors import (
    MalformedStreamError,
    NotAnLLMAPIError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeoutError,
    RedirectError,
    ServerProtocolError,
    StreamDecodeError,
    TruncatedInputError,
    TruncatedStreamError,
    one_line,
    scrub_key,
)
from workbench.core.events import (
    ErrorEvent,
    ResponseStart,
    StreamEvent,
    Usage,
)
from workbench.core.ndjson import NDJSONDecoder
from workbench.core.providers.bounds import MAX_ERROR_BODY_BYTES, MAX_REPLY_BYTES, StreamBudget, read_bounded
from workbench.core.reasoning_items import origin
from workbench.core.request import ChatRequest, Params
from workbench.core.sse import SSEDecoder


class Provider(Protocol):
    @property
    def target(self) -> str: ...

    sent_ns: int | None
    """When the current request's first byte went out (before any response), or ``None`` until then."""

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    async def served_usage(self, request: ChatRequest, text: str) -> Usage | None: ...


SERVED_COUNT_TIMEOUT_S = 1.0
"""The longest counting a reply on its server may take (:meth:`HttpProvider.served_usage`): llama-cpp-python's
server queues its requests behind the calls it is generating, and a busy one is not waited for."""


class WireParser:
    """Per-stream state machine turning decoded wire messages into events.

    ``done`` becomes true once the provider's terminal message arrived; a stream that ends before it
    is truncated. :meth:`feed` takes what the wire's decoder yields: an :class:`SSEMessage` for SSE
    wires, a decoded JSON value for NDJSON.
    """

    done = False
    bare_json: ClassVar[bool] = False
    """Does this wire write JSON outside the SSE framing (Gemini's errors)? Its decoder then reads it
    (:class:`~workbench.core.sse.SSEDecoder`'s ``bare_json``)."""

    def feed(self, item: Any, at_ns: int) -> Iterable[StreamEvent]:
        raise NotImplementedError

    def complete_at_eof(self) -> bool:
        """Did the wire format's final event arrive, now that the bytes ended? (``done``, unless a format's
        servers commonly leave out a last sentinel after the real final event.)"""
        return self.done


def merged_body(body: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with ``extra``'s fields over it; where both hold an object, merged key by key (so
    ``{"generationConfig": {"topK": 3}}`` keeps the wire's own generation settings)."""
    out = dict(body)
    for key, value in extra.items():
        mine = out.get(key)
        out[key] = merged_body(mine, value) if isinstance(mine, Mapping) and isinstance(value, Mapping) else value
    return out


def with_headers(headers: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with ``extra`` over them, names compared in any letter case (HTTP's rule)."""
    replaced = {name.lower() for name in extra}
    return {**{k: v for k, v in headers.items() if k.lower() not in replaced}, **extra}


SAME_NAMES = {"temperature": "temperature", "top_p": "top_p", "stop": "stop", "seed": "seed"}


def sampling(params: Params, names: Mapping[str, str] = SAME_NAMES) -> dict[str, Any]:
    """The sampling parameters that are set, under the provider's field ``names``.

    A parameter missing from ``names`` is one the provider does not support: it is not sent.
    """
    values = {"temperature": params.temperature, "top_p": params.top_p, "stop": list(params.stop) or None,
              "seed": params.seed}
    return {names[key]: value for key, value in values.items() if value is not None and key in names}


def loads_object(data: str | bytes) -> dict[str, Any]:
    """Parse one event payload that must be a JSON object."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise StreamDecodeError(f"malformed event: {str(data)[:80]!r}") from exc
    if not isinstance(value, dict):
        raise StreamDecodeError(f"event is not a JSON object: {str(data)[:80]!r}")
    return value


def reported_count(raw: Mapping[str, Any], key: str) -> int | None:
    """A usage count the provider sent (``None`` when the field is missing, null or not a whole number): a
    cache count the provider did not report stays unknown instead of reading 0."""
    value = raw.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


_RATE_LIMIT_HEADERS = ("x-ratelimit-", "anthropic-ratelimit-")
_MASKED_SECRET = re.compile(r"(?<![\w\-])[\w\-]*\*{3,}[\w\-]*")  # from the start of a run: linear time


def scrub(text: str, key: str | None = None) -> str:
    """Provider text without any echo of a key: the key in its common encodings (verbatim, URL-encoded, in another
    letter case, base64: :func:`~workbench.core.errors.scrub_key`), or a masked form such as ``sk-ab***wxyz``
    (OpenAI quotes the first and last characters of a rejected key)."""
    text = scrub_key(text, key)
    return _MASKED_SECRET.sub("[key]", text) if "***" in text else text


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``retry-after-ms`` (ms) first, else ``retry-after`` as seconds or an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


_SCRUBBED_BYTES = 8192
"""How much of a body that is not a provider's error object is scrubbed and kept (2,000 characters of it at most,
so a key cut at this bound is never in what is kept)."""


def error_fields(body: bytes, key: str | None = None) -> tuple[str | None, str]:
    """(kind, message) from the error bodies of every supported provider; falls back to the raw text. Any echo
    of ``key`` is scrubbed before anything is cut short (a cut never leaves part of the key)."""
    kind, message = _error_fields(body, key)
    return (None if kind is None else one_line(kind, 80)), one_line(message) or "(empty body)"


def _error_fields(body: bytes, key: str | None) -> tuple[str | None, str]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None, scrub(body[:_SCRUBBED_BYTES].decode("utf-8", "replace"), key)[:2000]
    if isinstance(payload, list) and payload:  # Gemini sometimes wraps the error in a list
        payload = payload[0]
    if isinstance(payload, dict):
        err = payload.get("error", payload)
        if isinstance(err, str):  # Ollama: {"error": "model 'x' not found"}
            return None, scrub(err, key)
        if isinstance(err, dict):
            code = err.get("code")  # OpenAI's string code is the precise one ("rate_limit_exceeded")
            kind = code if isinstance(code, str) and code else err.get("type") or err.get("status")
            message = err.get("message") or scrub(json.dumps(err), key)[:300]
            return (None if kind is None else scrub(str(kind), key)), scrub(str(message), key)
    return None, scrub(body[:_SCRUBBED_BYTES].decode("utf-8", "replace"), key)[:300]


class HttpProvider:
    """Base of every adapter: POST a JSON body, decode the streamed reply, time every byte."""

    decoding: ClassVar[Literal["sse", "ndjson"]] = "sse"

    def __init__(self, endpoint: Endpoint, client: httpx2.AsyncClient, timeout: httpx2.Timeout | None = None) -> None:
        self.endpoint = endpoint
        self.client = client
        self.timeout = timeout
        """Per-request transport timeouts (connect, write); first-token and idle ones are the caller's."""
        self.sent_ns: int | None = None

    @property
    def target(self) -> str:
        return self.endpoint.target

    # -- what each wire format supplies ---------------------------------------------------------
    def url(self, request: ChatRequest) -> str:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    def body(self, request: ChatRequest) -> dict[str, Any]:
        raise NotImplementedError

    def parser(self) -> WireParser:
        raise NotImplementedError

    def request_id(self, headers: httpx2.Headers) -> str | None:
        value = headers.get("x-request-id") or headers.get("request-id")
        return str(value) if value else None

    async def count_tokens(self, request: ChatRequest, *, raw: bool = False) -> int | None:
        """Exact input tokens from the provider's own counting endpoint; ``None`` where it has none.

        Raises the same typed errors as a call when the endpoint fails."""
        return None

    async def served_usage(self, request: ChatRequest, text: str) -> Usage | None:
        """For a server that streamed no usage: the usage of ``request`` and its reply ``text`` counted with the
        server's own endpoints (its chat template, its tokenizer), within :data:`SERVED_COUNT_TIMEOUT_S`; ``None``
        where it has none.

        Raises the same typed errors as a call when an endpoint fails, :class:`TimeoutError` past the bound."""
        return None

    models_path: ClassVar[str] = "/models"
    models_field: ClassVar[str] = "data"
    model_name_field: ClassVar[str] = "id"

    async def list_models(self) -> tuple[int, dict[str, str]]:
        """A cheap authenticated call (the model list): (how many models, the rate-limit headers)."""
        reply, headers = await self._request("GET", f"{self.endpoint.base_url}{self.models_path}")
        limits = {k: v for k, v in headers.items() if k.startswith(_RATE_LIMIT_HEADERS)}
        return len(reply.get(self.models_field) or ()), limits

    async def model_names(self) -> list[str]:
        """The names of the models this endpoint serves."""
        reply, _ = await self._request("GET", f"{self.endpoint.base_url}{self.models_path}")
        return [str(m[self.model_name_field]) for m in reply.get(self.models_field) or () if
                isinstance(m, dict) and m.get(self.model_name_field)]

    async def _post_json(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        """A small non-streaming POST with this provider's headers and typed errors."""
        return (await self._request("POST", url, body))[0]

    async def _request(self, method: str, url: str, body: dict[str, Any] | None = None,
                       ) -> tuple[dict[str, Any], httpx2.Headers]:
        """A small non-streamed exchange, bounded in size and in time as a whole (a server dripping one byte
        at a time within the read timeout cannot hold a command up)."""
        timeout = self.timeout if self.timeout is not None else httpx2.Timeout(10.0)
        whole_s = sum(t for t in (timeout.connect, timeout.write, timeout.read, timeout.pool) if t is not None)
        try:
            async with asyncio.timeout(whole_s):
                return await self._exchange(method, url, body, limits=timeout)
        except TimeoutError:
            raise ProviderTimeoutError(self.target, "total", "the provider is slow or unreachable: retry later",
                                       ) from None

    async def _exchange(self, method: str, url: str, body: dict[str, Any] | None, *,
                        limits: httpx2.Timeout) -> tuple[dict[str, Any], httpx2.Headers]:
        response = await self._open(method, url, json=body, headers=with_headers(self.headers(), self.endpoint.headers),
                                    timeout=limits)
        try:
            if response.status_code >= 400:
                raise await self._http_error(response)
            self._check_content_type(response)
            content, cut = await read_bounded(response, MAX_REPLY_BYTES)
        finally:
            await response.aclose()
        if cut:
            raise MalformedStreamError(self.target, f"the reply was cut short or is over {MAX_REPLY_BYTES:,} bytes")
        try:
            return loads_object(content), response.headers
        except StreamDecodeError as exc:
            raise MalformedStreamError(self.target, self._scrub(str(exc))) from None

    async def _open(self, method: str, url: str, **request: Any) -> httpx2.Response:
        """Build and send one request, its response streamed; failures before the response are typed."""
        try:
            http_request = self.client.build_request(method, url, **request)
        except (UnicodeEncodeError, httpx2.LocalProtocolError):
            raise self._unsendable() from None
        try:
            return await self.client.send(http_request, stream=True)
        except httpx2.TransportError as exc:
            raise self._not_sent(exc) from None

    # -- shared machinery -----------------------------------------------------------------------
    @property
    def origin(self) -> str:
        """This provider and wire (:func:`~workbench.core.reasoning_items.origin`): whose reasoning items and
        signatures its requests carry back."""
        return origin(self.endpoint.provider, self.endpoint.wire)

    def resolve(self, request: ChatRequest) -> ChatRequest:
        """The request with ``max_tokens`` always explicit, and without the reasoning items and signatures of turns
        another provider or wire produced (:meth:`~workbench.core.request.ChatRequest.for_origin`)."""
        return request.for_origin(self.origin).with_max_tokens(self.endpoint.default_max_tokens)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        request = self.resolve(request)
        self.sent_ns = None

        async def trace(name: str, info: dict[str, Any]) -> None:
            if name.endswith("send_request_headers.started"):
                self.sent_ns = time.perf_counter_ns()

        url = self.url(request)
        content = json.dumps(merged_body(self.body(request), self.endpoint.body)).encode()
        started_ns = time.perf_counter_ns()
        for _hop in range(MAX_REDIRECTS + 1):
            response = await self._open(
                "POST", url, content=content, extensions={"trace": trace},
                headers=with_headers({"accept-encoding": "identity", "content-type": "application/json",
                                      **self.headers()}, self.endpoint.headers),
                timeout=self.timeout if self.timeout is not None else httpx2.USE_CLIENT_DEFAULT,
            )
            if response.status_code not in _REDIRECTS:
                break
            await response.aclose()
            url = self._redirected(url, request, response)
        else:
            raise RedirectError(self.target, f"more than {MAX_REDIRECTS} redirects", "check the provider's base URL")
        try:
            headers_ns = time.perf_counter_ns()
            if response.status_code >= 400:
                raise await self._http_error(response)
            self._check_content_type(response)
            sent_ns = self.sent_ns if self.sent_ns is not None else started_ns
            limits = {k: v for k, v in response.headers.items() if k.startswith(_RATE_LIMIT_HEADERS)}
            yield ResponseStart(started_ns, sent_ns, headers_ns, self.request_id(response.headers), limits, self.origin)
            async for event in self._events(response, request.params.max_tokens or self.endpoint.default_max_tokens):
                yield event
        finally:
            await response.aclose()

    async def _events(self, response: httpx2.Response, max_tokens: int) -> AsyncIterator[StreamEvent]:
        parser = self.parser()
        decoder: SSEDecoder | NDJSONDecoder = (SSEDecoder(bare_json=parser.bare_json) if self.decoding == "sse"
                                              else NDJSONDecoder())
        chunks = response.aiter_raw() if _is_identity(response) else response.aiter_bytes()
        budget = StreamBudget(self.target, max_tokens)
        closing = False
        cut: str | None = None
        try:
            try:
                async for chunk in chunks:
                    at_ns = time.perf_counter_ns()
                    items = decoder.feed(chunk)  # an endless line is refused here, before the byte budget
                    budget.received(len(chunk))
                    for item in items:
                        for event in parser.feed(item, at_ns):
                            yield budget.checked(self._scrubbed(event))
            except (httpx2.RemoteProtocolError, httpx2.ReadError) as exc:
                cut = f"connection closed mid-stream ({type(exc).__name__})"
            if not parser.done:
                closing = True  # a last event without its blank line (or line break) still counts
                for item in decoder.close():
                    for event in parser.feed(item, time.perf_counter_ns()):
                        yield budget.checked(self._scrubbed(event))
        except TruncatedInputError as exc:
            raise TruncatedStreamError(self.target, self._scrub(str(exc)), "the stream was cut off: retry") from None
        except StreamDecodeError as exc:
            if closing:
                raise TruncatedStreamError(self.target, cut or self._scrub(f"the stream ended inside an event ({exc})"),
                                           "the stream was cut off: retry") from None
            raise MalformedStreamError(self.target, self._scrub(str(exc)),
                                       "the provider sent a broken event: retry") from None
        except httpx2.TimeoutException as exc:
            raise self._timeout(exc) from None
        except httpx2.DecodingError:
            encoding = response.headers.get("content-encoding", "?")[:40]
            raise MalformedStreamError(self.target, f"the body could not be decoded (Content-Encoding: {encoding})",
                                       "the provider or a proxy broke the reply: retry") from None
        except httpx2.HTTPError as exc:
            raise TruncatedStreamError(self.target, f"the stream broke ({type(exc).__name__})", "retry") from None
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
            raise MalformedStreamError(
                self.target, f"malformed event: a field of the wrong shape ({type(exc).__name__})",
                "the provider sent an event this wire format does not allow") from None
        if not parser.complete_at_eof():
            raise TruncatedStreamError(self.target, cut or "stream ended before the provider's final event",
                                       "the provider or a proxy dropped the stream: retry")

    def _scrub(self, text: str) -> str:
        """Text a server sent, as an error may hold it: no echo of this endpoint's key (see :func:`scrub`)."""
        return scrub(text, self.endpoint.api_key)

    def _scrubbed(self, event: StreamEvent) -> StreamEvent:
        """An in-stream error as an error may hold it: no echo of the key (the parsers do not know it), one clean
        line (no escape sequence of the server's); other events as they are."""
        if isinstance(event, ErrorEvent):
            event.kind, event.message = one_line(self._scrub(event.kind), 80), one_line(self._scrub(event.message))
        return event

    def _redirected(self, url: str, request: ChatRequest, response: httpx2.Response) -> str:
        """Where a redirect leads, when it is followed: a 307/308 to the same origin (the body is sent again).
        Anything else is a :class:`RedirectError` naming the new place and the base URL to set."""
        status = response.status_code
        location = response.headers.get("location")
        if not location:
            raise RedirectError(self.target, f"HTTP {status} without a Location", "check the provider's base URL")
        try:
            new = httpx2.URL(url).join(location)
        except httpx2.InvalidURL:
            raise RedirectError(self.target, f"HTTP {status} to an invalid URL", "check the base URL") from None
        old = httpx2.URL(url)
        if status in (307, 308) and (new.scheme, new.host, new.port) == (old.scheme, old.host, old.port):
            return str(new)
        shown = self._scrub(str(new.copy_with(query=None)))[:300]
        suffix = url[len(self.endpoint.base_url):].split("?", 1)[0]
        base = shown[: -len(suffix)] if suffix and shown.endswith(suffix) else None
        hint = (f"set the provider's base URL to {base}" if base else
                "set the provider's base URL to where the server moved")
        raise RedirectError(self.target, f"HTTP {status}: the server moved to {shown}", hint)

    def _check_content_type(self, response: httpx2.Response) -> None:
        """An HTML page (or a 511) instead of an API reply: a captive portal, a login page, a wrong base URL."""
        if response.status_code == 511 or "text/html" in response.headers.get("content-type", "").lower():
            raise NotAnLLMAPIError(
                self.target, f"not an LLM API: the server answered with an HTML page (HTTP {response.status_code})",
                f"a captive portal, a proxy's login page or a wrong base URL: open {self.endpoint.base_url} "
                "in a browser, or fix the base URL",
            )

    async def _http_error(self, response: httpx2.Response) -> ProviderHTTPError:
        if response.status_code == 511:
            self._check_content_type(response)
        body, cut = await read_bounded(response, MAX_ERROR_BODY_BYTES)
        kind, message = error_fields(body, self.endpoint.api_key)  # the key's echoes scrubbed
        if cut:
            message = f"{message[:300]} (error body cut short)"
        should_retry = response.headers.get("x-should-retry")
        hint = None
        if response.status_code == 401 and self.endpoint.key_env:
            hint = f"the API key was rejected: check {self.endpoint.key_env}"
        elif response.status_code == 404:
            hint = self.not_found_hint()
        return ProviderHTTPError(
            self.target,
            response.status_code,
            kind,
            message,
            retry_after_s=retry_after_seconds(response.headers),
            request_id=self.request_id(response.headers),
            hint=hint,
            should_retry=None if should_retry is None else should_retry.lower() == "true",
            rate_limits={k: v for k, v in response.headers.items() if k.startswith(_RATE_LIMIT_HEADERS)},
        )

    def not_found_hint(self) -> str | None:
        """The next step after a 404 from this provider, if it has one of its own."""
        return None

    def _timeout(self, exc: httpx2.TimeoutException) -> ProviderError:
        which = {
            httpx2.ConnectTimeout: "connect",
            httpx2.ReadTimeout: "read",
            httpx2.WriteTimeout: "write",
            httpx2.PoolTimeout: "pool",
        }.get(type(exc), "network")
        return ProviderTimeoutError(self.target, which, "the provider is slow or unreachable: retry later")

    def _not_sent(self, exc: httpx2.TransportError) -> ProviderError:
        """The typed error for a request that failed before its response began."""
        if isinstance(exc, httpx2.TimeoutException):
            return self._timeout(exc)
        if isinstance(exc, httpx2.LocalProtocolError):
            return self._unsendable()
        if isinstance(exc, httpx2.RemoteProtocolError):
            return self._not_http(exc)
        if _cause(exc, (ConnectionResetError, BrokenPipeError)) is not None:
            return ProviderConnectionError(self.target, f"{self.endpoint.base_url} reset the connection before "
                                           "answering", "the server, a proxy or a firewall cut it: retry; if it "
                                           "keeps happening, check the proxy settings and the base URL")
        return self._unreachable(exc)

    def _not_http(self, exc: httpx2.RemoteProtocolError) -> ProviderError:
        """The server answered with no response at all, or with bytes that are not an HTTP response."""
        url, detail = self.endpoint.base_url, str(exc)
        if "without sending a response" in detail:  # h11: the connection closed before any byte of a response
            return ProviderConnectionError(self.target, f"{url} closed the connection without answering",
                                           "the server or a proxy dropped the request: retry; if it keeps "
                                           "happening, check the base URL and the proxy settings")
        what = ("response headers too large to read" if "buffer too long" in detail  # h11's header size limit
                else f"a reply that is not HTTP ({one_line(self._scrub(detail), 80)})")
        return ServerProtocolError(self.target, f"{url} sent {what}",
                                   "something other than an HTTP API answers there (a wrong port or scheme, a "
                                   "broken proxy): check the base URL and the proxy settings")

    def _unsendable(self) -> ProviderError:
        """The request could not be framed: a header value HTTP forbids. Not retried (it would fail the same
        way), and the transport's message is not quoted: it may hold the value, which may be the key."""
        where = f"the API key ({self.endpoint.key_env}) or " if self.endpoint.key_env else ""
        return ProviderError(self.target, "the request could not be sent: a header value has a line break or a "
                             "character HTTP forbids", f"check {where}any custom headers for stray characters")

    def _unreachable(self, exc: httpx2.TransportError) -> ProviderError:
        import ssl

        url, cause = self.endpoint.base_url, _cause(exc, ssl.SSLError)
        if isinstance(cause, ssl.SSLCertVerificationError):  # the TLS error is one line; the fix names the setting
            detail = f"CERTIFICATE_VERIFY_FAILED: {cause.verify_message or 'certificate verify failed'}"
            if cause.verify_code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
                return ProviderConnectionError(self.target, f"TLS certificate of {url} is for another host ({detail})",
                                               "check the provider's base URL: its host must match the certificate")
            if cause.verify_code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
                return ProviderConnectionError(self.target, f"TLS certificate of {url} has expired ({detail})",
                                               "the server's certificate must be renewed (or check the clock)")
            return ProviderConnectionError(
                self.target, f"TLS certificate not trusted ({detail}) at {url}: set [network] ca_bundle or "
                "SSL_CERT_FILE to your CA bundle",
                "a private CA or a TLS-inspecting proxy signed the certificate: trust that CA's PEM file")
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or cause.strerror or type(cause).__name__
            return ProviderConnectionError(self.target, f"TLS handshake with {url} failed ({reason})",
                                           "check that the base URL's scheme and port are right, and [network] "
                                           "client_cert if the server requires a client certificate")
        import socket

        reason = ("connection refused" if _cause(exc, ConnectionRefusedError) is not None else
                  "host not found" if _cause(exc, socket.gaierror) is not None else type(exc).__name__)
        return ProviderConnectionError(
            self.target,
            f"cannot reach {url} ({reason})",
            "check the network, that the server is running, and the provider's base URL",
        )


def _cause(exc: BaseException, kinds: type[BaseException] | tuple[type[BaseException], ...]) -> Any:
    """The first exception of ``kinds`` among what caused ``exc`` (a few links down), else ``None``."""
    cause, seen = exc.__cause__ or exc.__context__, 0
    while cause is not None and not isinstance(cause, kinds) and seen < 8:
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return cause


MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
def _is_identity(response: httpx2.Response) -> bool:
    return response.headers.get("content-encoding", "identity") in ("identity", "")


def stream_error(kind: str | None, message: str, at_ns: int, details: dict[str, Any] | None = None) -> ErrorEvent:
    return ErrorEvent(kind or "error", scrub(message), at_ns, details or {})


def several_choices(at_ns: int) -> ErrorEvent:
    """A stream that carries a second choice (``n`` or ``candidateCount`` over 1 reached the provider): the call
    fails rather than merge it into the first, or drop it while the usage counts it."""
    return ErrorEvent("several_choices", "the provider sent several choices (n > 1); workbench reads one choice "
                      "per call: remove n / candidateCount from the request (use --repeat for several samples)",
                      at_ns)
