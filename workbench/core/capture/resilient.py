"""The opt-in resilient policy of a proxy route (``[proxy.routes.NAME] policy = "resilient"`` or ``workbench proxy
--resilient NAME``): the call's ``[policy]`` (:mod:`workbench.core.policy`) applied before the first byte goes to
the application, with the resilience layer's circuit breakers and client-side rate limiters
(:mod:`workbench.core.resilience`).

An upstream answer that workbench's own calls would retry (408, 409, 429, 5xx, 529 unless the provider's
``x-should-retry: false`` says otherwise; a connection error or timeout) is read (its body up to
:data:`~workbench.core.providers.bounds.MAX_ERROR_BODY_BYTES`) and tried again after the provider's
``Retry-After`` (when it is within ``retry.retry_after_cap_s``) or a full-jitter backoff (the longer profile for
429/529); so is a provider whose headers have not come within ``timeouts.connect`` + ``timeouts.ttft`` (the
policy's other timeouts, ``idle`` and ``total``, bound a stream, and nothing is retried once one has begun: they do
not apply here, the application's own timeouts do). Retries used up, an open circuit or a ``Retry-After``
beyond the cap move to the policy's next fallback on the same provider: the request's model swapped (the body's
``model``, Gemini's path), as the application's request and key are for that provider (a fallback on another
provider is skipped, its attempt saying why). No target left: the last answer goes to the application as the
provider sent it (a 504 of the proxy's when none came in time, 502 when the provider was unreachable). Every
attempt is on the call record, as a race's attempts are (``traces show``: ``attempts``)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2

from workbench.core.call_record import Attempt, CallRecord
from workbench.core.capture.routes import Route
from workbench.core.errors import (
    CircuitOpenError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderTimeoutError,
    WorkbenchError,
)
from workbench.core.policy import CallPolicy, PolicySet
from workbench.core.providers.base import error_fields, retry_after_seconds
from workbench.core.providers.bounds import MAX_ERROR_BODY_BYTES
from workbench.core.registry import default_max_tokens
from workbench.core.resilience.breaker import Breakers
from workbench.core.resilience.caller import RATE_LIMIT_STATUSES, RETRY_STATUSES, estimate_tokens
from workbench.core.resilience.clock import Clock, SystemClock
from workbench.core.resilience.ratelimit import RateLimiter, RateLimiters

Release = Callable[[], None]


def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class _Failure:
    """An answer worth retrying (``status`` ``None``: none came), kept to pass on when no target is left."""

    status: int | None
    headers: list[tuple[str, str]]
    body: bytes
    error: WorkbenchError
    retry_after_s: float | None = None


class NoAnswerError(Exception):
    """No attempt got an answer (every one timed out or found the provider unreachable): ``error`` is the last."""

    def __init__(self, error: WorkbenchError) -> None:
        super().__init__(str(error))
        self.error = error


class _Body(httpx2.AsyncByteStream):
    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body


def _replayed(failure: _Failure, request: httpx2.Request) -> httpx2.Response:
    """The last failure as a response, as the provider sent it (its body as read); :class:`NoAnswerError` when
    none came."""
    if failure.status is None:
        raise NoAnswerError(failure.error)
    headers = [(k, v) for k, v in failure.headers if k.lower() not in ("content-length", "transfer-encoding")]
    return httpx2.Response(failure.status, headers=[*headers, ("content-length", str(len(failure.body)))],
                           stream=_Body(failure.body), request=request)


async def _error_body(response: httpx2.Response) -> bytes:
    body = bytearray()
    try:
        async for chunk in response.aiter_raw():
            body += chunk[:MAX_ERROR_BODY_BYTES - len(body)]
            if len(body) >= MAX_ERROR_BODY_BYTES:
                break
    except httpx2.HTTPError:
        pass  # a cut error body: what came is what is passed on
    finally:
        await response.aclose()
    return bytes(body)


def _retryable(response: httpx2.Response) -> bool:
    return (response.status_code in RETRY_STATUSES
            and response.headers.get("x-should-retry", "").lower() != "false")


def _transport_error(target: str, exc: httpx2.HTTPError) -> WorkbenchError:
    if isinstance(exc, httpx2.TimeoutException):
        return ProviderTimeoutError(target, "connect" if isinstance(exc, httpx2.ConnectTimeout) else "read")
    return ProviderConnectionError(target, f"the provider could not be reached ({type(exc).__name__})")


class Resilience:
    """The breakers and rate limiters the resilient routes of one proxy share, and their policies."""

    def __init__(self, client: httpx2.AsyncClient, policies: PolicySet, clock: Clock | None = None) -> None:
        self.client, self.policies = client, policies
        self.clock = clock or SystemClock()
        self.breakers = Breakers(self.clock)
        self.limiters = RateLimiters(self.clock)

    async def send(self, route: Route, request: httpx2.Request, body: Mapping[str, Any], record: CallRecord
                   ) -> tuple[httpx2.Response, Release]:
        """The answer to relay to the application (a success, an error not worth retrying, or the last failure)
        and what to call once it was relayed (a rate limiter's concurrency slot); :class:`NoAnswerError` when no
        attempt got one."""
        model = record.target.partition("/")[2]
        policy = self.policies.for_target(record.target)
        last: _Failure | None = None
        for position, target in enumerate((record.target, *policy.fallbacks)):
            kind = "first" if position == 0 else "fallback"
            provider, _, fallback_model = target.partition("/")
            if provider != route.provider:
                record.attempts.append(Attempt(target, kind, error_class="config", error=(
                    f"{target}: skipped: the application's request and key are for {route.provider}")))
                continue
            attempt = request if fallback_model == model else self._with_model(route, request, body, fallback_model)
            answered = await self._target(route, target, attempt, record, kind)
            if isinstance(answered, tuple):
                record.served_by = target if answered[0].status_code < 400 else None
                return answered
            last = answered or last
        if last is None:  # every fallback was skipped
            last = _Failure(None, [], b"", ProviderConnectionError(record.target, "no target could be tried"))
        return _replayed(last, request), _nothing

    async def _target(self, route: Route, target: str, request: httpx2.Request, record: CallRecord, kind: str
                      ) -> tuple[httpx2.Response, Release] | _Failure | None:
        """Attempts at one target: its answer, or its last failure (``None``: its circuit was open at once)."""
        policy = self.policies.for_target(target)
        model = target.partition("/")[2]
        base = route.upstream
        wait_ms, reason = 0.0, None
        last: _Failure | None = None
        for number in range(policy.retry.max_retries + 1):
            this_kind = kind if number == 0 else "retry"
            breaker = self.breakers.get((route.provider, base, model), policy.breaker)
            if not breaker.allow():
                refused = CircuitOpenError(target, breaker.retry_in_s)
                record.attempts.append(Attempt(target, this_kind, error=str(refused), error_class=refused.error_class,
                                               wait_ms=wait_ms, wait_reason=reason))
                return last
            limiter = self.limiters.get((route.provider, base), policy.rate_limit)
            if limiter is not None:
                queued = self.clock.now()
                max_tokens = record.request.params.max_tokens or default_max_tokens(model)
                await limiter.acquire(estimate_tokens(record.request, max_tokens))
                if (queue_ms := (self.clock.now() - queued) * 1000) >= 1:
                    wait_ms, reason = wait_ms + queue_ms, reason or "rate limit"
            failure = await self._try(target, request, limiter, policy)
            if isinstance(failure, httpx2.Response):
                breaker.record(failure.status_code < 500)
                record.attempts.append(Attempt(target, this_kind, status=failure.status_code, wait_ms=wait_ms,
                                               wait_reason=reason))
                return failure, (limiter.release if limiter is not None else _nothing)
            breaker.record(False)
            record.attempts.append(Attempt(target, this_kind, status=failure.status, error=str(failure.error),
                                           error_class=failure.error.error_class, wait_ms=wait_ms,
                                           wait_reason=reason))
            last = failure
            after = failure.retry_after_s
            if number == policy.retry.max_retries or (after is not None and after > policy.retry.retry_after_cap_s):
                break
            delay = after if after is not None else self._backoff(policy, number, failure.status)
            wait_ms, reason = delay * 1000, "retry-after" if after is not None else "backoff"
            await self.clock.sleep(delay)
        return last

    async def _try(self, target: str, request: httpx2.Request, limiter: RateLimiter | None, policy: CallPolicy
                   ) -> httpx2.Response | _Failure:
        """One attempt: the response to relay, or a failure worth retrying (read and closed). The provider's
        headers must come within the policy's ``timeouts.connect`` + ``timeouts.ttft``."""
        try:
            async with asyncio.timeout(policy.timeouts.connect + policy.timeouts.ttft):
                response = await self.client.send(request, stream=True)
        except (httpx2.HTTPError, TimeoutError) as exc:
            if limiter is not None:
                limiter.release()
            error = (ProviderTimeoutError(target, "ttft") if isinstance(exc, TimeoutError)
                     else _transport_error(target, exc))
            return _Failure(None, [], b"", error)
        if limiter is not None:
            limiter.on_headers({k.lower(): v for k, v in response.headers.items()}, self.clock.now())
        if not _retryable(response):
            if limiter is not None and response.status_code < 400:
                limiter.on_success()
            return response
        body = await _error_body(response)
        if limiter is not None:
            limiter.release()
        headers = list(response.headers.multi_items())
        after = retry_after_seconds({k.lower(): v for k, v in headers})
        kind, detail = error_fields(body)
        error = ProviderHTTPError(target, response.status_code, kind, detail, retry_after_s=after)
        if limiter is not None and response.status_code in RATE_LIMIT_STATUSES:
            limiter.on_rate_limited(after)
        return _Failure(response.status_code, headers, body, error, after)

    def _backoff(self, policy: CallPolicy, number: int, status: int | None) -> float:
        """Full jitter, exponential in the attempt number: the longer profile after a 429 or 529."""
        retry = policy.retry
        limited = status in RATE_LIMIT_STATUSES
        base, cap = (retry.rate_limit_base_s, retry.rate_limit_cap_s) if limited else (retry.base_s, retry.cap_s)
        return random.uniform(0, min(cap, base * 2 ** number))

    def _with_model(self, route: Route, request: httpx2.Request, body: Mapping[str, Any],
                    model: str) -> httpx2.Request:
        """The request asking ``model`` instead (a fallback): Gemini's path names it, the other wires' body."""
        url, content = str(request.url), request.content
        if route.model is not None:
            url = url.replace(f"models/{route.model}:", f"models/{model}:", 1)
        else:
            content = json.dumps({**body, "model": model}).encode()
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length"]
        return self.client.build_request(request.method, url, headers=headers, content=content)
