"""``eval --batch``: a run's cells through the providers' batch APIs (:mod:`.batch_api`), at the batch price.

1. **Plan**: the cells the run has still to do are rendered as the runner renders them (:meth:`EvalRunner.prepare`);
   those whose target has a batch API (OpenAI, Anthropic, and the fake server's) go in batches, one target per batch
   (OpenAI's files hold one model), split within the API's limits (:data:`~.batch_api.LIMITS`). Cells the response
   cache answers, cells of local providers and of targets without a batch API are left to the online run (said up
   front, with what the batch saves: :class:`BatchPlan`).
2. **Submit**: each batch is stored in the eval store as soon as the provider took it (its id, the cells it holds),
   so a process left (Ctrl-C) or killed is resumed from the store (``evals resume RUN``).
3. **Wait**: every batch's state is read, then again after 1 s, 2 s, 4 s … up to a minute between reads; each change
   of state is reported (:class:`BatchEvent`) and stored.
4. **Collect**: each request's result is read into a call, priced at the batch rate (:data:`BATCH_RATE` of the online
   price: the price data holds no batch prices, and OpenAI and Anthropic both bill batches at half), traced with the
   run and its cell as an online call is (tag ``batch``), and handed to the runner as a traced answer: the runner grades
   it with the cell's assertions, as it grades a resumed run's answers. A request that errored, expired or was
   cancelled is that cell's error, never the run's. Then the runner runs what is left online.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx2

from workbench.core.call_record import CallRecord
from workbench.core.endpoint_overrides import providers_with
from workbench.core.errors import ProviderError, ProviderHTTPError, WorkbenchError
from workbench.core.evals.batch_api import (
    ENDED_STATES,
    LIMITS,
    BatchApi,
    BatchLimits,
    BatchStatus,
    batch_api,
    record_of,
)
from workbench.core.evals.model import CellResult, RunInfo, StoredBatch, SuiteTarget
from workbench.core.evals.node_bridge import node_session
from workbench.core.evals.runner import EvalRunner, Prepared, answered, cache_key, observed
from workbench.core.evals.traced import TracedAnswer
from workbench.core.race import settle
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ModelRef
from workbench.core.tokens.estimate import estimate
from workbench.core.traces.context import CallContext
from workbench.core.traces.writer import TraceWriter

__all__ = ["BATCH_RATE", "BatchEval", "BatchEvent", "BatchPlan", "batch_price", "custom_id"]

BATCH_RATE = Decimal("0.5")
"""A batch call's price as a share of the online call's (OpenAI's and Anthropic's published discount: 50%)."""
MISSING = "missing"
"""The state of a batch its provider no longer knows (404): ended, its cells in error."""
FIRST_WAIT_S = 1.0
LONGEST_WAIT_S = 60.0
ENDED = ENDED_STATES | {MISSING}


def batch_price(online: Decimal | None) -> Decimal | None:
    return None if online is None else online * BATCH_RATE


def custom_id(identity: str) -> str:
    """A cell's id in a batch (``[a-zA-Z0-9_-]{1,64}``, as Anthropic requires): a digest of its identity."""
    return "cell-" + hashlib.sha256(identity.encode()).hexdigest()[:40]


@dataclass(slots=True)
class BatchEvent:
    """What the batch phase tells its face: ``submitted``, ``state`` (a batch's state changed), ``collected``,
    ``unsubmitted`` (the provider refused a batch: its cells run online), ``unread`` (a state could not be read:
    read again later), ``left`` (its target is no longer in the suite: not waited for)."""

    kind: str
    batch: StoredBatch | None = None
    status: BatchStatus | None = None
    target: str = ""
    error: str | None = None
    cells: int = 0


@dataclass(slots=True)
class BatchPlan:
    """What goes in batches, what runs online, and what the batched cells cost at both rates."""

    batched: dict[str, list[Prepared]] = field(default_factory=dict)
    """Per target label, the cells its batches will hold (not yet submitted)."""
    splits: dict[str, list[list[tuple[str, dict[str, Any]]]]] = field(default_factory=dict)
    """Per target label, its requests split into batches within the API's limits."""
    routes: dict[str, str] = field(default_factory=dict)
    """Per batched target, the batch API (and endpoint) its cells go through."""
    online: dict[str, int] = field(default_factory=dict)
    """Cells left to the online run, per target without a batch API."""
    waiting: int = 0
    """Cells in batches submitted before (a resumed run)."""
    online_low: Decimal = Decimal(0)
    online_high: Decimal = Decimal(0)
    unpriced: set[str] = field(default_factory=set)
    over_budget: int = 0
    """Cells left to the online run because their worst case at the batch rate would pass ``--max-cost`` (a batch
    cannot be stopped half-way; the online run stops at the budget)."""

    @property
    def cells(self) -> int:
        return sum(len(cells) for cells in self.batched.values())

    @property
    def batches(self) -> int:
        return sum(len(parts) for parts in self.splits.values())

    def summary(self) -> dict[str, object]:
        priced = not self.unpriced
        return {"batched": self.cells, "batches": self.batches, "waiting": self.waiting, "routes": dict(self.routes),
                "online": dict(self.online),
                "over_budget": self.over_budget,
                "online_cost_usd": [float(self.online_low), float(self.online_high)] if priced else None,
                "batch_cost_usd": [float(self.online_low * BATCH_RATE), float(self.online_high * BATCH_RATE)]
                if priced else None, "unpriced": sorted(self.unpriced)}


def split(requests: Sequence[tuple[str, dict[str, Any]]], limit: BatchLimits,
          size_of: Callable[[str, dict[str, Any]], int]) -> list[list[tuple[str, dict[str, Any]]]]:
    """``requests`` in batches of at most ``limit``'s requests and bytes (``size_of``: a request's bytes)."""
    out: list[list[tuple[str, dict[str, Any]]]] = [[]]
    size = 0
    for item in requests:
        grows = size_of(*item)
        if out[-1] and (len(out[-1]) >= limit.requests or size + grows > limit.bytes):
            out.append([])
            size = 0
        out[-1].append(item)
        size += grows
    return [part for part in out if part]


class BatchEval:
    """The batch phase of one run (see the module docstring); :meth:`run` returns the answers it collected."""

    def __init__(self, runner: EvalRunner, run: RunInfo, client: httpx2.AsyncClient, env: Mapping[str, str],
                 writer: TraceWriter | None, *, on_event: Callable[[BatchEvent], None] = lambda event: None,
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self.runner, self.run, self.client, self.env, self.writer = runner, run, client, env, writer
        self.store = runner.store
        self.on_event, self.sleep = on_event, sleep
        self._apis: dict[str, BatchApi | None] = {}
        self._targets = {t.label: t for t in (runner.options.targets or runner.suite.targets)}

    def api(self, target: SuiteTarget) -> BatchApi | None:
        """The batch API of ``target`` (None: it has none, it is no model, or it cannot be resolved)."""
        if target.label not in self._apis:
            found = None
            if target.local is None:
                try:
                    endpoint = resolve(ModelRef.parse(target.ref), self.env,
                                       providers_with(self.runner.providers, target.ref, target.endpoint))
                except WorkbenchError:  # the online run says why, as it does without --batch
                    endpoint = None
                if endpoint is not None:
                    found = batch_api(make_provider(endpoint, self.client), self.client)
            self._apis[target.label] = found
        return self._apis[target.label]

    async def plan(self, reuse: Mapping[str, TracedAnswer]) -> BatchPlan:
        """What the batches hold: the run's cells not done, not answered by the trace log or the cache, not in a
        batch already, whose target has a batch API."""
        plan = BatchPlan()
        done = self.store.done_cells(self.run.id)
        submitted = {identity for batch in self.store.batches(self.run.id) for identity in batch.cells.values()}
        plan.waiting = sum(batch.requests for batch in self.store.batches(self.run.id) if batch.collected_at is None)
        use_cache = self.runner.options.use_cache
        max_cost = self.runner.options.max_cost
        budget = None if max_cost is None else Decimal(str(max_cost)) - Decimal(str(self.run.cost_usd))
        async with node_session(self.runner.base_dir):
            for cell in self.runner.plan():
                identity = cell.identity
                if (cell.key, cell.repeat) in done or identity in reuse or identity in submitted:
                    continue
                api = self.api(cell.target)
                if api is None:
                    if cell.target.local is None:
                        plan.online[cell.target.ref] = plan.online.get(cell.target.ref, 0) + 1
                    continue
                ready = await self.runner.prepare(cell)
                if isinstance(ready, CellResult):  # its transform failed: the online run records it
                    continue
                if use_cache and self.store.cached(cache_key(cell.target.cache_ref, ready.request, cell.repeat)):
                    continue
                guess = estimate(ready.request, cell.target.ref, self.runner.prices)
                if budget is not None and (guess.cost_max_usd is None or
                                           (plan.online_high + guess.cost_max_usd) * BATCH_RATE > budget):
                    plan.over_budget += 1
                    continue
                plan.batched.setdefault(cell.target.label, []).append(ready)
                plan.routes[cell.target.ref] = api.route
                if guess.cost_input_usd is None or guess.cost_max_usd is None:
                    plan.unpriced.add(cell.target.ref)
                else:
                    plan.online_low += guess.cost_input_usd
                    plan.online_high += guess.cost_max_usd
        for label, cells in plan.batched.items():
            api = self.api(self._targets[label])
            assert api is not None
            plan.splits[label] = split([(custom_id(p.cell.identity), api.body(p.request)) for p in cells],
                                       LIMITS[api.name], api.size)
        return plan

    async def submit(self, plan: BatchPlan) -> None:
        """Submit the plan's batches, each stored once the provider took it; a batch the provider refuses leaves its
        cells to the online run (said as ``unsubmitted``)."""
        for label, parts in plan.splits.items():
            target = self._targets[label]
            api = self.api(target)
            assert api is not None
            identities = {custom_id(p.cell.identity): p.cell.identity for p in plan.batched[label]}
            for part in parts:
                try:
                    batch_id = await api.submit(part, self.run.id)
                except (WorkbenchError, httpx2.HTTPError) as exc:
                    self.on_event(BatchEvent("unsubmitted", target=target.ref, error=str(exc), cells=len(part)))
                    continue
                stored = StoredBatch(self.run.id, batch_id, api.name, label, time.time(),
                                     {cid: identities[cid] for cid, _ in part})
                self.store.add_batch(stored)
                self.on_event(BatchEvent("submitted", stored, target=target.ref, cells=len(part)))

    async def wait(self) -> None:
        """Read every uncollected batch's state until all have ended, waiting longer between reads each time."""
        pending = []
        for batch in self.store.batches(self.run.id):
            if batch.collected_at is not None:
                continue
            if self._api_of(batch) is None:  # its target left the suite: not waited for, its cells not in the plan
                self.on_event(BatchEvent("left", batch, error=f"target {batch.target} is no longer in the run"))
                continue
            pending.append(batch)
        delay = FIRST_WAIT_S
        while True:
            for batch in pending:
                api = self._api_of(batch)
                if batch.state in ENDED or api is None:
                    continue
                try:
                    status = await api.status(batch.batch_id)
                except ProviderHTTPError as exc:
                    if exc.status != 404:
                        self.on_event(BatchEvent("unread", batch, target=api.target, error=str(exc)))
                        continue
                    status = BatchStatus(MISSING, 0, batch.requests, batch.requests)  # its cells end in error
                except (WorkbenchError, httpx2.HTTPError) as exc:
                    self.on_event(BatchEvent("unread", batch, target=api.target, error=str(exc)))
                    continue
                if (status.state, status.done, status.failed) != (batch.state, batch.succeeded, batch.failed):
                    changed = status.state != batch.state
                    batch.state, batch.succeeded, batch.failed = status.state, status.done, status.failed
                    self.store.update_batch(batch)
                    if changed:
                        self.on_event(BatchEvent("state", batch, status, target=api.target))
            if all(batch.state in ENDED for batch in pending):
                return
            await self.sleep(delay)
            delay = min(delay * 2, LONGEST_WAIT_S)

    def _api_of(self, batch: StoredBatch) -> BatchApi | None:
        """The batch API ``batch`` went to: its target's (a target no longer in the suite: its label as a reference)."""
        return self.api(self._targets.get(batch.target) or SuiteTarget(batch.target, batch.target))

    async def cancel(self) -> int:
        """Ask the providers to cancel the run's batches still running (each new state reported and stored); how
        many were asked. What they finished is collected later (:meth:`collect`); the rest are their cells' errors."""
        asked = 0
        for batch in self.store.batches(self.run.id):
            if batch.collected_at is not None or batch.state in ENDED:
                continue
            api = self._api_of(batch)
            if api is None:
                self.on_event(BatchEvent("left", batch, error=f"target {batch.target} is no longer in the run"))
                continue
            try:
                status = await api.cancel(batch.batch_id)
            except (WorkbenchError, httpx2.HTTPError) as exc:
                self.on_event(BatchEvent("unread", batch, target=api.target, error=str(exc)))
                continue
            asked += 1
            batch.state, batch.succeeded, batch.failed = status.state, status.done, status.failed
            self.store.update_batch(batch)
            self.on_event(BatchEvent("state", batch, status, target=api.target))
        return asked

    async def collect(self) -> dict[str, TracedAnswer]:
        """The results of every ended, uncollected batch: traced, priced at the batch rate, added to the run's spend,
        by cell identity."""
        answers: dict[str, TracedAnswer] = {}
        batches = [b for b in self.store.batches(self.run.id) if b.collected_at is None and b.state in ENDED]
        if not batches:
            return answers
        wanted = {identity for batch in batches for identity in batch.cells.values()}
        prepared: dict[str, Prepared] = {}
        async with node_session(self.runner.base_dir):
            for cell in self.runner.plan():
                if cell.identity in wanted:
                    ready = await self.runner.prepare(cell)
                    if isinstance(ready, Prepared):
                        prepared[cell.identity] = ready
        for batch in batches:
            api = self._api_of(batch)
            if api is None:
                continue
            try:
                results = [] if batch.state == MISSING else list(await api.results(batch.batch_id))
            except (WorkbenchError, httpx2.HTTPError) as exc:
                self.on_event(BatchEvent("unread", batch, target=api.target, error=str(exc)))
                continue
            fresh = []
            for identity, ready, record, answer in self._answers(batch, api, results, prepared):
                answers[identity] = answer
                if record.error is None:
                    fresh.append((cache_key(ready.cell.target.cache_ref, ready.request, ready.cell.repeat),
                                  answered(ready.cell.target.ref, record, ready.variables, ready.sent)))
            if self.runner.options.use_cache:  # as an online answer is: a later run of the cell is not called
                self.store.remember(fresh)
            batch.collected_at = time.time()
            self.store.update_batch(batch)
            self.on_event(BatchEvent("collected", batch, target=api.target, cells=len(batch.cells)))
        self.store.spent(self.run)
        return answers

    def _answers(self, batch: StoredBatch, api: BatchApi,
                 results: list[tuple[str, bytes | None, ProviderError | None, str | None]],
                 prepared: Mapping[str, Prepared]) -> Iterator[tuple[str, Prepared, CallRecord, TracedAnswer]]:
        """Each result of ``batch``: its cell's identity, the cell, the call and its traced answer; a cell the results
        leave out fails with the batch's reason."""
        given = {cid: (reply, error, request_id) for cid, reply, error, request_id in results if cid}
        whole = next((error for cid, _, error, _ in results if not cid), None)
        for cid, identity in batch.cells.items():
            ready = prepared.get(identity)
            if ready is None:  # the suite changed: the cell is no more
                continue
            missing = (f"batch {batch.batch_id} is not known to the provider (deleted, or another account's)"
                       if batch.state == MISSING else
                       f"batch {batch.batch_id} ({batch.state}) holds no result for this request")
            reply, error, request_id = given.get(cid, (None, whole or ProviderError(api.target, missing), None))
            record = record_of(ready.cell.target.ref, ready.request, api.endpoint.wire, reply, error, request_id)
            try:
                settle(record, self.runner.prices)
            except Exception as exc:  # an unreadable usage is this cell's problem, as online
                record.fail(ProviderError(record.target, f"the batch result could not be priced ({exc})"))
            record.cost_usd = batch_price(record.cost_usd)
            if record.cost_usd is not None:
                self.run.cost_usd += float(record.cost_usd)
            prompt = ready.cell.prompt
            context = CallContext(prompt_name=prompt.prompt.name if prompt.version is not None else None,
                                  prompt_version=prompt.version, eval_run_id=self.run.id, tags=("eval", "batch"),
                                  eval_cell=identity)
            trace_id = self.writer.write(record, context) if self.writer is not None else ""
            yield identity, ready, record, TracedAnswer(trace_id, observed(record), record.error is None)

    async def answers(self, reuse: Mapping[str, TracedAnswer],
                      plan: BatchPlan | None = None) -> dict[str, TracedAnswer]:
        """Submit ``plan`` (else the one :meth:`plan` makes), wait for every batch of the run, collect them."""
        await self.submit(plan if plan is not None else await self.plan(reuse))
        await self.wait()
        return await self.collect()

