"""The one resilient call path: every call the product makes goes through :meth:`Caller.call`.

For each target of the chain (the requested one, then its fallbacks in order):

1. the endpoint's circuit breaker may refuse at once (no network call) → fall back;
2. the provider's rate limiter may queue the call (queue time is recorded apart from latency);
3. the attempt streams with first-token, idle and total deadlines;
4. a failure before any output reached the user is retried when it is transient (408, 409, 429, 5xx,
   529, connection errors, timeouts, broken streams), with tenacity: exponential backoff with full
   jitter, a longer profile for 429/529, ``Retry-After`` honoured up to a cap;
5. exhausted retries, an open circuit, a ``Retry-After`` beyond the cap or a prompt too long for the
   model move on to the next target; other errors (400, 401, 403, 404, 413, 422) end the call;
6. once output has reached the user, nothing is retried: the partial output and the error are kept.

With a hedge deadline, a call with no content by then is started again on the backup target; the
first to produce content wins and the other is cancelled. A reply that breaks the request's JSON
schema is asked for again a bounded number of times (a refusal never; a reply cut at ``max_tokens`` only
with more room). Every attempt is recorded on the call record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from workbench.core.call_record import Attempt, CallRecord, collect
from workbench.core.endpoint import Endpoint
from workbench.core.errors import (
    CircuitOpenError,
    ContextTooLongError,
    ProviderHTTPError,
    UnexpectedError,
    WorkbenchError,
)
from workbench.core.events import ResponseStart, StreamEvent
from workbench.core.policy import CallPolicy, PolicySet, RetryPolicy
from workbench.core.pricing import PriceBook
from workbench.core.registry import ProviderSpec, make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef
from workbench.core.resilience.breaker import TRANSIENT_STATUSES, Breakers, unhealthy
from workbench.core.resilience.clock import Clock, SystemClock
from workbench.core.resilience.ratelimit import RateLimiters
from workbench.core.resilience.structured import judge_structured
from workbench.core.tokens.estimate import count_input

_SMALLEST_WINDOW = 4_096
RETRY_STATUSES = TRANSIENT_STATUSES
RATE_LIMIT_STATUSES = frozenset({429, 529})
_CHARS_PER_TOKEN = 4

EventHook = Callable[[StreamEvent], None]
UpdateHook = Callable[[CallRecord], None]


class CallPath(Protocol):
    """What runs one call: :class:`Caller` here, or :class:`~workbench.core.remote_caller.RemoteCaller`
    through the network process."""

    async def call(self, record: CallRecord, *, policies: PolicySet | None = None,
                   env: Mapping[str, str] | None = None, providers: Mapping[str, ProviderSpec] | None = None,
                   prices: PriceBook | None = None, on_event: EventHook | None = None,
                   on_update: UpdateHook | None = None) -> CallRecord: ...


class _Retry(Exception):
    """A transient failure before any output: tenacity may try again."""

    def __init__(self, error: WorkbenchError) -> None:
        self.error = error


class _NextTarget(Exception):
    """Give up on this target and move to the next one of the chain."""

    def __init__(self, error: WorkbenchError) -> None:
        self.error = error


class _Stop(Exception):
    """End the call: the error is the caller's to see (a 401, or output already shown)."""


def health_failure(error: WorkbenchError) -> bool:
    """Does this failure say the endpoint is unhealthy (counts for its circuit breaker)?"""
    return unhealthy(error.error_class)


def transient(error: WorkbenchError) -> bool:
    """Worth retrying, if no output has reached the user yet."""
    if isinstance(error, ProviderHTTPError) and error.should_retry is not None:
        return error.should_retry
    return unhealthy(error.error_class)


def estimate_tokens(request: ChatRequest, max_tokens: int) -> int:
    """Cheap token estimate for rate-limit admission (~4 characters a token, plus the output bound)."""
    chars = len(request.system or "") + sum(len(m.content) for m in request.messages)
    return chars // _CHARS_PER_TOKEN + max_tokens


@dataclass
class Caller:
    """What every call shares: the HTTP client (pool), breakers and rate limiters, the clock."""

    client: httpx2.AsyncClient
    clock: Clock = field(default_factory=SystemClock)
    breakers: Breakers = field(init=False)
    limiters: RateLimiters = field(init=False)

    def __post_init__(self) -> None:
        self.breakers = Breakers(self.clock)
        self.limiters = RateLimiters(self.clock)

    async def call(self, record: CallRecord, *, policies: PolicySet | None = None,
                   env: Mapping[str, str] | None = None, providers: Mapping[str, ProviderSpec] | None = None,
                   prices: PriceBook | None = None, on_event: EventHook | None = None,
                   on_update: UpdateHook | None = None) -> CallRecord:
        """Run the call for ``record.target`` (with its policy's fallbacks) into ``record``; never raises
        for a failed call. Targets resolve against ``env`` (default: the process environment).
        ``on_update`` sees the record after every attempt (its timeline changed)."""
        run = _Run(self, record, policies or PolicySet(), env, providers, on_event, on_update)
        run.prices = prices
        record.started_at = time.time()
        record.call_started_ns = time.perf_counter_ns()
        try:
            await run.chain()
        except Exception as exc:  # never raised past here: it is this call's failure and no other's
            record.fail(UnexpectedError(record.target, exc))
        finally:
            record.done = True
        return record


class _Run:
    """One call: walks the chain, owns the waits between attempts."""

    def __init__(self, caller: Caller, record: CallRecord, policies: PolicySet, env: Mapping[str, str] | None,
                 providers: Mapping[str, ProviderSpec] | None, on_event: EventHook | None,
                 on_update: UpdateHook | None) -> None:
        self.caller, self.record, self.policies, self.env = caller, record, policies, env
        self.providers = providers
        self.policy = policies.for_target(record.target)
        self.on_event, self.on_update = on_event, on_update
        self.pending_wait_ms: float = 0.0
        self.pending_reason: str | None = None
        self.structured_left = self.policy.structured_retries
        self.prices: PriceBook | None = None

    def _updated(self) -> None:
        if self.on_update is not None:
            self.on_update(self.record)

    async def chain(self) -> None:
        targets = [self.record.target, *self.policy.fallbacks]
        last: WorkbenchError | None = None
        for position, target in enumerate(targets):
            kind = "first" if position == 0 else "fallback"
            try:
                endpoint = resolve(ModelRef.parse(target), self.env, self.providers)
            except WorkbenchError as exc:
                last = exc
                self._account(Attempt(target, kind, error=str(exc), error_class=exc.error_class))
                continue
            too_long = await self._too_long(target, endpoint)
            if too_long is not None:
                last = too_long
                self._account(Attempt(target, kind, error=str(too_long), error_class=too_long.error_class))
                continue
            backup = self._hedge_backup(targets, position)
            try:
                await self._with_retries(target, endpoint, kind, backup)
                return
            except _NextTarget as give_up:
                last = give_up.error
            except _Stop:
                return
        if last is not None and self.record.error is not last:
            self.record.fail(last)  # the record keeps the last attempt's timing and partial output

    async def _too_long(self, target: str, endpoint: Endpoint) -> ContextTooLongError | None:
        """Does the request surely exceed the target's context window? (Then skip it: no call is made.)

        A token is at least one character, so a request shorter than the smallest window in use is never
        counted; a longer one is counted exactly, in a worker thread, against the window the price data
        (or the user's table) gives for the model."""
        request = self.record.request
        max_tokens = request.params.max_tokens or endpoint.default_max_tokens
        chars = len(request.system or "") + sum(len(m.content) for m in request.messages)
        if self.prices is None or chars + max_tokens <= _SMALLEST_WINDOW:
            return None
        prices = self.prices

        def check() -> ContextTooLongError | None:
            window = prices.facts(target).context_window
            if window is None or chars + max_tokens <= window:
                return None
            needed = count_input(request, target)[0] + max_tokens
            return ContextTooLongError(target, needed, window) if needed > window else None

        return await asyncio.to_thread(check)

    def _hedge_backup(self, targets: list[str], position: int) -> str | None:
        if self.policy.hedge_after_ms is None or position != 0:
            return None
        return targets[1] if len(targets) > 1 else targets[0]

    async def _with_retries(self, target: str, endpoint: Endpoint, kind: str, backup: str | None) -> None:
        policy = self.policies.for_target(target)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.retry.max_retries + 1),
            retry=retry_if_exception_type(_Retry),
            wait=_RetryWait(policy.retry),
            sleep=self.caller.clock.sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    this_kind = kind if attempt.retry_state.attempt_number == 1 else "retry"
                    if backup is not None and this_kind == "first":
                        await self._hedged(target, endpoint, policy, backup)
                    else:
                        await self._attempt(target, endpoint, policy, this_kind)
        except _Retry as exhausted:
            raise _NextTarget(exhausted.error) from None

    def _before_sleep(self, state: RetryCallState) -> None:
        seconds = state.next_action.sleep if state.next_action else 0.0
        error = state.outcome.exception() if state.outcome else None
        retry_after = error.error.retry_after_s if isinstance(error, _Retry) and isinstance(
            error.error, ProviderHTTPError) else None
        self.pending_wait_ms = seconds * 1000
        self.pending_reason = "retry-after" if retry_after else "backoff"

    def _take_wait(self) -> tuple[float, str | None]:
        wait = (self.pending_wait_ms, self.pending_reason)
        self.pending_wait_ms, self.pending_reason = 0.0, None
        return wait

    def _account(self, attempt: Attempt) -> None:
        self.record.attempts.append(attempt)
        self.record.done = False  # the call goes on until Caller.call returns
        self._updated()

    async def _attempt(self, target: str, endpoint: Endpoint, policy: CallPolicy, kind: str) -> None:
        """One attempt streaming straight into the call record; raises to steer what happens next."""
        record = self.record
        wait_ms, reason = self._take_wait()
        breaker = self.caller.breakers.get((endpoint.provider, endpoint.base_url, endpoint.model), policy.breaker)
        if not breaker.allow():
            refused = CircuitOpenError(target, breaker.retry_in_s)
            self._account(Attempt(target, kind, error=str(refused), error_class=refused.error_class,
                                  wait_ms=wait_ms, wait_reason=reason))
            raise _NextTarget(refused)
        limiter = self.caller.limiters.get((endpoint.provider, endpoint.base_url), policy.rate_limit)
        record.restart()
        queued_ns = time.perf_counter_ns()
        if limiter is not None:
            await limiter.acquire(estimate_tokens(record.request, record.request.params.max_tokens
                                                  or endpoint.default_max_tokens))
            queue_ms = (time.perf_counter_ns() - queued_ns) / 1e6
            if queue_ms >= 1:
                wait_ms, reason = wait_ms + queue_ms, reason or "rate limit"
        outcome_known = False
        try:
            provider = make_provider(endpoint, self.caller.client,
                                     httpx2.Timeout(30.0, connect=policy.timeouts.connect, read=None))
            await collect(provider, record.request, record, estimate_usage=False, on_event=self._events(limiter),
                          timeouts=policy.timeouts)
            if limiter is not None:
                record.timing.queued_ns = queued_ns
            error = record.error
            breaker.record(error is None or not health_failure(error))
            outcome_known = True
        finally:
            if limiter is not None:
                limiter.release()
            if not outcome_known:
                breaker.release()
        attempt = Attempt(target, kind, status=_status(error), error=None if error is None else str(error),
                          error_class=None if error is None else error.error_class, wait_ms=wait_ms,
                          wait_reason=reason, ttft_ms=record.timing.ttft_ms, latency_ms=record.timing.latency_ms)
        if error is None:
            if limiter is not None:
                limiter.on_success()
            self._check_structured(attempt, policy, endpoint.default_max_tokens)
            record.served_by = target
            self._account(attempt)
            return
        self._account(attempt)
        self._steer(error, limiter, policy)

    def _events(self, limiter: Any) -> EventHook | None:
        on_event = self.on_event
        if limiter is None:
            return on_event

        def hook(event: StreamEvent) -> None:
            if isinstance(event, ResponseStart) and event.rate_limits:
                limiter.on_headers(event.rate_limits, time.time())
            if on_event is not None:
                on_event(event)

        return hook

    def _steer(self, error: WorkbenchError, limiter: Any, policy: CallPolicy) -> None:
        """Decide what a failed attempt leads to (the record keeps the error and any partial output)."""
        if isinstance(error, ProviderHTTPError):
            if limiter is not None and error.status in RATE_LIMIT_STATUSES:
                limiter.on_rate_limited(error.retry_after_s)
                if error.rate_limits:
                    limiter.on_headers(error.rate_limits, time.time())
            if error.context_too_long:
                raise _NextTarget(error)
            if error.retry_after_s is not None and error.retry_after_s > policy.retry.retry_after_cap_s:
                raise _NextTarget(error)
        if self.record.timing.first_content_ns is not None:
            raise _Stop  # output reached the user: no silent retry
        if transient(error):
            raise _Retry(error)
        raise _Stop

    def _check_structured(self, attempt: Attempt, policy: CallPolicy, default_max_tokens: int) -> None:
        """A reply to a request with a JSON schema: a refusal is reported as one and never retried; a reply cut
        at ``max_tokens`` is asked for again only with more room (``structured_more_room``); any other reply
        that breaks the schema is asked for again while ``structured_retries`` last."""
        record = self.record
        verdict = judge_structured(record, attempt.target, policy, default_max_tokens)
        if verdict is None:
            return
        error, retry_request = verdict
        attempt.error, attempt.error_class, attempt.output = str(error), error.error_class, record.text
        if retry_request is not None and self.structured_left > 0:
            self.structured_left -= 1
            record.request = retry_request  # the next attempt asks for what this one lacked
            self._account(attempt)
            raise _Retry(error)
        record.error = error
        self._account(attempt)
        raise _Stop

    async def _hedged(self, target: str, endpoint: Endpoint, policy: CallPolicy, backup: str) -> None:
        """Race the first attempt against a backup started after ``hedge_after_ms`` with no content."""
        await _Hedge(self, target, endpoint, policy, backup).run()


class _Hedge:
    """Two attempts on private records; the first to produce content is mirrored into the call record."""

    def __init__(self, run: _Run, target: str, endpoint: Endpoint, policy: CallPolicy, backup: str) -> None:
        self.run_, self.target, self.endpoint, self.policy, self.backup = run, target, endpoint, policy, backup
        self.winner: _Leg | None = None
        self.first_content = asyncio.Event()

    async def run(self) -> None:
        primary = _Leg(self, self.target, self.endpoint, "first")
        legs = [primary]
        primary.task = asyncio.create_task(primary.go())
        assert self.policy.hedge_after_ms is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._content_or_done(primary)), self.policy.hedge_after_ms / 1000)
        except TimeoutError:
            try:
                endpoint = resolve(ModelRef.parse(self.backup), self.run_.env, self.run_.providers)
            except WorkbenchError:
                endpoint = None
            if endpoint is not None:
                second = _Leg(self, self.backup, endpoint, "hedge")
                second.task = asyncio.create_task(second.go())
                legs.append(second)
        try:
            await self._settle(legs)
        finally:
            for leg in legs:
                if leg.task and not leg.task.done():
                    leg.task.cancel()
            await asyncio.gather(*(leg.task for leg in legs if leg.task), return_exceptions=True)
        winner = self.winner or next((leg for leg in legs if leg.record.error is None), legs[-1])
        for leg in legs:
            lost = leg is not winner and leg.record.error is not None and self.winner is not None
            self.run_._account(Attempt(
                leg.target, leg.kind, status=_status(leg.record.error),
                error="cancelled: the other request answered first" if lost else (
                    None if leg.record.error is None else str(leg.record.error)),
                error_class="hedge_lost" if lost else (None if leg.record.error is None else
                                                       leg.record.error.error_class),
                ttft_ms=leg.record.timing.ttft_ms, latency_ms=leg.record.timing.latency_ms))
        record = self.run_.record
        attempts = record.attempts
        record.update_from(winner.record)
        record.attempts = attempts
        record.served_by = winner.target if winner.record.error is None else None
        if winner.record.error is not None:
            self.run_._steer(winner.record.error, None, self.policy)

    async def _content_or_done(self, leg: _Leg) -> None:
        assert leg.task is not None
        waiter = asyncio.create_task(self.first_content.wait())
        await asyncio.wait([waiter, leg.task], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()

    async def _settle(self, legs: list[_Leg]) -> None:
        """Wait for the winner to finish once one produced content (the loser is cancelled then)."""
        while True:
            if self.winner is not None:
                for leg in legs:
                    if leg is not self.winner and leg.task and not leg.task.done():
                        leg.task.cancel()
                if self.winner.task:
                    await asyncio.gather(self.winner.task, return_exceptions=True)
                return
            pending = [leg.task for leg in legs if leg.task and not leg.task.done()]
            if not pending:
                return
            waiter = asyncio.create_task(self.first_content.wait())
            await asyncio.wait([waiter, *pending], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()


class _Leg:
    def __init__(self, hedge: _Hedge, target: str, endpoint: Endpoint, kind: str) -> None:
        self.hedge, self.target, self.endpoint, self.kind = hedge, target, endpoint, kind
        self.record = CallRecord(target, hedge.run_.record.request)
        self.record.call_started_ns = hedge.run_.record.call_started_ns
        self.task: asyncio.Task[None] | None = None

    async def go(self) -> None:
        caller = self.hedge.run_.caller
        provider = make_provider(self.endpoint, caller.client,
                                 httpx2.Timeout(30.0, connect=self.hedge.policy.timeouts.connect, read=None))
        await collect(provider, self.record.request, self.record, estimate_usage=False, on_event=self._event,
                      timeouts=self.hedge.policy.timeouts)

    def _event(self, event: StreamEvent) -> None:
        hedge = self.hedge
        if hedge.winner is None and self.record.timing.first_content_ns is not None:
            hedge.winner = self
            hedge.first_content.set()
            self._mirror()
            hedge.run_._updated()  # everything so far in one snapshot; then event by event
        elif hedge.winner is self:
            self._mirror()
            if hedge.run_.on_event is not None:
                hedge.run_.on_event(event)

    def _mirror(self) -> None:
        """The call record shows the winning leg (sharing its lists: the leg alone appends to them)."""
        main = self.hedge.run_.record
        attempts = main.attempts
        main.update_from(self.record)
        main.attempts, main.done = attempts, False


class _RetryWait:
    """tenacity wait: ``Retry-After`` when the provider sent one (capped), else full-jitter backoff."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.normal = wait_random_exponential(multiplier=policy.base_s, max=policy.cap_s)
        self.rate_limited = wait_random_exponential(multiplier=policy.rate_limit_base_s, max=policy.rate_limit_cap_s)

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        inner = error.error if isinstance(error, _Retry) else None
        if isinstance(inner, ProviderHTTPError):
            if inner.retry_after_s is not None:
                return min(inner.retry_after_s, self.policy.retry_after_cap_s)
            if inner.status in RATE_LIMIT_STATUSES:
                return float(self.rate_limited(state))
        return float(self.normal(state))


def _status(error: WorkbenchError | None) -> int | None:
    if error is None:
        return 200
    return error.status if isinstance(error, ProviderHTTPError) else None


