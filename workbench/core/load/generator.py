"""The load generator: requests sent on a schedule (open loop) or by N workers (closed loop), each through the
resilient call path the product uses everywhere (:class:`~workbench.core.resilience.caller.Caller`: the policy's
rate limits, retries honouring ``Retry-After``, breakers and fallbacks), settled, counted and traced under the run's
id (the tags ``load`` and ``load:RUN``).

Open loop: one scheduler task sleeps until each arrival is due and starts its call as a task of its own, never
waiting for a reply, so in-flight calls pile up when the provider slows down (as real traffic would) and the
schedule's lateness (start minus due) measures the generator itself. Closed loop: ``N`` workers, each sending its
next request when its previous call ended; the provider's pace sets the rate, so it measures throughput at a
concurrency, not behaviour at an arrival rate.

Stopping: the schedule's end (the calls in flight are waited for); ``max_cost`` (no new call once the spend reaches
it; the calls in flight finish); cancellation (Ctrl-C: no new call, the calls in flight are cancelled, settled and
traced as cancelled, then the cancellation goes on; :attr:`LoadRun.stop_reason` says ``interrupted``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from workbench.core.call_record import CallRecord
from workbench.core.load.schedule import ClosedLoop, OpenLoop, Shape
from workbench.core.load.stats import LoadStats
from workbench.core.policy import PolicySet
from workbench.core.pricing import PriceBook
from workbench.core.registry import ProviderSpec
from workbench.core.request import ChatRequest
from workbench.core.resilience.caller import CallPath
from workbench.core.settled_call import settled_call, was_sent
from workbench.core.traces.context import CallContext
from workbench.core.traces.ids import new_id
from workbench.core.traces.writer import TraceWriter

LOAD_TAG = "load"
"""Every load test's calls carry this tag (and ``load:RUN``), so replays and peak rates can leave them out."""


def run_tag(run_id: str) -> str:
    """The tag of one load test's calls: ``workbench traces list --tag load:RUN``."""
    return f"{LOAD_TAG}:{run_id}"


@dataclass(frozen=True, slots=True)
class Planned:
    """One request of the plan, to one target (a prompt's name and version traced with it when it has them)."""

    target: str
    request: ChatRequest
    prompt_name: str | None = None
    prompt_version: int | None = None


CallHook = Callable[[CallRecord], None]


class LoadRun:
    """One load test: ``plan`` sent round and round in ``shape``; see the module docstring."""

    def __init__(self, plan: Sequence[Planned], shape: Shape, *, policies: PolicySet | None = None,
                 prices: PriceBook | None = None, providers: Mapping[str, ProviderSpec] | None = None,
                 max_cost: float | None = None, run_id: str | None = None, on_call: CallHook | None = None) -> None:
        if not plan:
            raise ValueError("a load test needs at least one request")
        self.plan, self.shape, self.max_cost = tuple(plan), shape, max_cost
        self.policies = policies or PolicySet()
        self.prices = prices or PriceBook()
        self.providers, self.on_call = providers, on_call
        self.id = run_id or new_id()
        self.stats = LoadStats()
        self.stop_reason: str | None = None
        self.started_at: float | None = None
        """Wall-clock start (epoch seconds)."""
        self._caller: CallPath | None = None
        self._env: Mapping[str, str] | None = None
        self._writer: TraceWriter | None = None
        self._next = itertools.count()

    @property
    def tags(self) -> tuple[str, str]:
        return LOAD_TAG, run_tag(self.id)

    def _item(self) -> Planned:
        return self.plan[next(self._next) % len(self.plan)]

    def _over_budget(self) -> bool:
        if self.max_cost is None or self.stats.spend_usd < self.max_cost:
            return False
        if self.stop_reason is None:
            self.stop_reason = f"max cost: spent ${self.stats.spend_usd:.4f} of ${self.max_cost:g}"
        return True

    async def run(self, caller: CallPath, env: Mapping[str, str] | None = None,
                  writer: TraceWriter | None = None) -> LoadStats:
        """Send the plan through ``caller`` (targets resolve against ``env``; calls traced to ``writer``) until the
        shape ends or ``max_cost`` is spent; returns the figures once every call has ended."""
        self._caller, self._env, self._writer = caller, env, writer
        self.started_at = time.time()
        self.stats = LoadStats(origin=time.monotonic())
        calls: set[asyncio.Task[None]] = set()
        try:
            if isinstance(self.shape, OpenLoop):
                await self._open_loop(self.shape, calls)
            else:
                await self._closed_loop(self.shape, calls)
            while calls:
                await asyncio.gather(*calls)
        except asyncio.CancelledError:
            self.stop_reason = "interrupted"
            for task in calls:
                task.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
            raise
        return self.stats

    async def _open_loop(self, shape: OpenLoop, calls: set[asyncio.Task[None]]) -> None:
        loop = asyncio.get_running_loop()
        start = self.stats.origin
        for offset in shape.offsets():
            if self._over_budget():
                return
            due = start + offset
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = loop.create_task(self._call(self._item(), due))
            calls.add(task)
            task.add_done_callback(calls.discard)

    async def _closed_loop(self, shape: ClosedLoop, calls: set[asyncio.Task[None]]) -> None:
        end = self.stats.origin + shape.duration_s

        async def worker() -> None:  # each sends once at least, as an open loop's first arrival is due at once
            while not self._over_budget():
                await self._call(self._item(), None)
                if time.monotonic() >= end:
                    return

        loop = asyncio.get_running_loop()
        for _ in range(shape.workers):
            task = loop.create_task(worker())
            calls.add(task)
            task.add_done_callback(calls.discard)

    async def _call(self, item: Planned, due: float | None) -> None:
        """One request: started now (``due``: when the schedule wanted it), settled, counted, traced."""
        started = time.monotonic()
        self.stats.started(started, None if due is None else started - due)
        record = CallRecord(item.target, item.request)
        assert self._caller is not None
        try:
            await settled_call(self._caller, record, policies=self.policies, prices=self.prices, env=self._env,
                               providers=self.providers)
        except asyncio.CancelledError:
            if was_sent(record):
                self._count(item, record, started)
            raise
        self._count(item, record, started)

    def _count(self, item: Planned, record: CallRecord, started: float) -> None:
        self.stats.ended(record, started, time.monotonic())
        if self._writer is not None:
            context = CallContext(prompt_name=item.prompt_name, prompt_version=item.prompt_version, tags=self.tags)
            with contextlib.suppress(Exception):  # the trace writer says its own trouble; the run goes on
                self._writer.write(record, context)
        if self.on_call is not None:
            self.on_call(record)
