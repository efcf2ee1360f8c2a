"""Run a suite: every test × prompt × target × repeat is a cell, called through the resilient provider
layer, graded by its assertions, and appended to the eval store as it finishes.

- **Cells are generated lazily** and a fixed pool of workers pulls them, so memory stays flat however
  many cases a suite has; results are written in batches and not kept.
- **Rate limits and retries** are the provider layer's (the same :class:`Caller` as a race); the
  pool size is the concurrency limit.
- **Cache**: a cell's response is kept under a digest of (target, request, repeat index), so running
  a suite again answers unchanged cells without a call; repeats stay distinct calls. Failed calls are
  never cached. ``use_cache=False`` neither reads nor writes the cache (promptfoo's ``--no-cache``).
- **Budget**: once the run's spend (calls and judges) reaches ``max_cost``, no new call starts; calls
  in flight finish and are recorded, and the run is ``stopped`` (resumable). The overshoot is
  therefore bounded by the calls in flight.
- **Durable as it goes**: results are committed in batches of at most ``_FLUSH_EVERY`` cells, and no
  finished cell waits longer than ``_FLUSH_AFTER_S`` for its batch, so a process killed outright loses at
  most the last half second of results (their calls are in the trace log, committed within 0.1 s).
- **Resume**: cells already recorded for the run are skipped, and a cell whose call the trace log holds
  (a run killed before its result was stored) is graded from that answer, so nothing is called twice.
- **Comparisons** (promptfoo's ``select-best``, ``max-score``): a test that compares its outputs has its cells
  held until those of one repeat are all done, then compared (:mod:`.comparisons`), their new verdicts stored
  and only then reported (``on_result``).
- Every call is traced with the run's id (``eval_run_id``), its cell (``eval_cell``) and the prompt's name
  and version; judge calls carry the tag ``judge``. A call cancelled mid-way (Ctrl-C) is traced too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import time
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from workbench.core.call_record import CallRecord, reasoning_tokens
from workbench.core.endpoint_overrides import EndpointOverrides, providers_with
from workbench.core.errors import ConfigError, UnexpectedError
from workbench.core.evals.assertions import grade, verdict
from workbench.core.evals.comparisons import (
    Comparisons,
    cell_name,
    compare,
    graded_alone,
    judge_digest,
    judge_identity,
)
from workbench.core.evals.computed_vars import ComputedVarError, computed_vars
from workbench.core.evals.embeddings import DEFAULT_EMBEDDING_TARGET, embed
from workbench.core.evals.json_schema_output import schema_output
from workbench.core.evals.judging import judge_request
from workbench.core.evals.local_providers import LocalProviderError, local_answer
from workbench.core.evals.model import (
    CellKey,
    CellResult,
    Grading,
    Observation,
    RunInfo,
    RunLimits,
    Suite,
    SuitePrompt,
    SuiteTarget,
    TestCase,
)
from workbench.core.evals.node_bridge import node_session
from workbench.core.evals.prompt_affixes import affixed
from workbench.core.evals.prompt_functions import PromptFunctionError, called_prompt
from workbench.core.evals.prompt_render import render_request, rendered_prompt
from workbench.core.evals.provider_config import wire_of
from workbench.core.evals.report_outputs import template_text
from workbench.core.evals.run_clock import RunClock
from workbench.core.evals.run_store import EvalStore
from workbench.core.evals.tool_replies import reply_output, structured_output
from workbench.core.evals.traced import TracedAnswer
from workbench.core.evals.transforms import TransformError, transformed_output, transformed_vars
from workbench.core.plain_data import as_data
from workbench.core.policy import PolicySet
from workbench.core.pricing import PriceBook, usd_number
from workbench.core.registry import ProviderSpec
from workbench.core.request import ChatRequest, Params
from workbench.core.resilience.caller import CallPath
from workbench.core.settled_call import settled_call, was_sent
from workbench.core.tokens.estimate import estimate
from workbench.core.traces.context import CallContext
from workbench.core.traces.ids import new_id
from workbench.core.traces.store import TraceStore
from workbench.core.traces.writer import TraceWriter
from workbench.core.validate import dumped, validated

ResultHook = Callable[[CellResult], None]
_FLUSH_EVERY = 50
_FLUSH_AFTER_S = 0.5
"""The longest a finished cell's result waits for its batch to be committed."""
_DEFAULT_LATENCY_MS = 2000.0
_TRACE_BACKLOG = 1000
"""Traced calls the trace writer may hold uncommitted before the workers wait for it to catch up."""


@dataclass(frozen=True, slots=True)
class Cell:
    test: TestCase
    prompt: SuitePrompt
    target: SuiteTarget
    repeat: int

    @property
    def key(self) -> CellKey:
        return CellKey(self.test.key, self.prompt.label, self.target.label)

    @property
    def identity(self) -> str:
        """The cell and repeat as its calls are traced (``eval_cell``): :func:`identity_of`."""
        return identity_of(self.key, self.repeat)

    def judge_identity(self, target: str, prompt: str) -> str:
        """A judge call of this cell: its identity, ``judge`` and a digest of the judge's target and prompt."""
        return json.dumps([self.test.key, self.prompt.label, self.target.label, self.repeat, "judge",
                           judge_digest(target, prompt)],
                          ensure_ascii=False)

    def request(self, variables: Mapping[str, str] | None = None) -> ChatRequest:
        """The prompt rendered with the test's variables (or ``variables``: those its ``transformVars`` gave),
        with the target's parameter overrides."""
        try:
            variables = self.test.vars if variables is None else variables
            request = render_request(affixed(self.prompt, self.test), variables)
        except ConfigError as exc:
            where = f"{self.test.source}: " if self.test.source else ""
            raise ConfigError(f"{where}test '{self.test.key}': {exc.message}", exc.hint) from None
        return with_params(request, self.target)


def _failed(cell: Cell, error: str, latency_ms: float | None = None) -> CellResult:
    """A cell that ends as an error (no answer to grade): ``error`` its reason."""
    observation = Observation("", error=error, vars=dict(cell.test.vars), latency_ms=latency_ms)
    return CellResult(cell.key, cell.repeat, observation, [Grading("run", False, 0.0, error)], False, 0.0)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A cell ready to be sent (:meth:`EvalRunner.prepare`): the cell (its prompt a prompt function's when it has
    one), its request, the variables it was rendered with and the prompt as promptfoo hands it on."""

    cell: Cell
    request: ChatRequest
    variables: dict[str, str]
    sent: str


def observed(record: CallRecord) -> Observation:
    """A finished call as a cell's observation, as the trace log keeps it: the reply's text (or its refusal), its
    tool calls, usage, timing, cost and error; without the test's variables and prompt."""
    usage = record.usage
    return Observation(
        text=record.text or record.refusal or "", tool_calls=[call.summary() for call in record.tool_calls],
        reasoning_tokens=reasoning_tokens(record), cache_read_tokens=usage.cache_read_tokens if usage else None,
        finish=None if record.finish is None else record.finish.value,
        latency_ms=record.timing.latency_ms, ttft_ms=record.timing.ttft_ms,
        cost_usd=None if record.cost_usd is None else float(record.cost_usd),
        input_tokens=usage.input_tokens if usage else None, output_tokens=usage.output_tokens if usage else None,
        error=None if record.error is None else str(record.error))


def answered(ref: str, record: CallRecord, variables: Mapping[str, str], sent: str) -> Observation:
    """A cell's answer from ``ref``'s call: :func:`observed`, its output as promptfoo has it (a refusal without text
    is the output, as in promptfoo; so are tool calls: :mod:`.tool_replies`), with the variables and prompt sent."""
    observation = observed(record)
    observation.text = reply_output(wire_of(ref), record.text, observation.tool_calls) or record.refusal or ""
    observation.vars, observation.prompt_text = dict(variables), sent
    return observation


def with_params(request: ChatRequest, target: SuiteTarget) -> ChatRequest:
    """``request`` with the parameter overrides ``target`` (a target or a judge) gives it."""
    if not target.params:
        return request
    try:
        params = validated(Params, {**as_data(request.params), **target.params})
    except ValueError as exc:
        raise ConfigError(f"target '{target.label}': invalid parameters: {exc}",
                          "fix the target's config in the suite") from None
    return replace(request, params=params)


def identity_of(key: CellKey, repeat: int) -> str:
    """A cell and repeat as its calls are traced (``eval_cell``): a JSON list of test, prompt, target, repeat."""
    return json.dumps([key.test, key.prompt, key.target, repeat], ensure_ascii=False)


def cells(suite: Suite, repeat: int, targets: Sequence[SuiteTarget] | None = None) -> Iterator[Cell]:
    """Every cell in a stable order (test, prompt, target, repeat), generated lazily."""
    for test in suite.tests:
        for prompt in suite.prompts:
            for target in targets or suite.targets:
                if not target.runs(prompt.label) or not test.runs(prompt.label, target):  # promptfoo's filters
                    continue
                for index in range(repeat):
                    yield Cell(test, prompt, prompt.on_targets.get(target.label, target), index)


def cache_key(target: str, request: ChatRequest, repeat: int) -> str:
    body = json.dumps([target, dumped(ChatRequest, request), repeat], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(slots=True)
class Preflight:
    """What a run will take before it starts: calls, tokens, a cost range and a time estimate."""

    calls: int
    cached: int
    """Cells the response cache answers."""
    input_tokens: int
    max_output_tokens: int
    cost_low_usd: Decimal | None
    """The inputs alone (None when some target's price is unknown)."""
    cost_high_usd: Decimal | None
    """Inputs plus every call's max_tokens of output."""
    unpriced: tuple[str, ...]
    seconds: float
    """Expected wall time: each target's median latency in the trace log (2 s when unknown), spread
    over the concurrency."""
    reused: int = 0
    """Cells of a resumed run whose call the trace log already holds (graded from it, not called)."""

    def summary(self) -> dict[str, object]:
        return {"calls": self.calls, "cached": self.cached, "reused": self.reused, "input_tokens": self.input_tokens,
                "max_output_tokens": self.max_output_tokens, "cost_low_usd": usd_number(self.cost_low_usd, 6),
                "cost_high_usd": usd_number(self.cost_high_usd, 6), "unpriced": list(self.unpriced),
                "seconds": round(self.seconds, 1)}


def typical_latencies(traces: TraceStore) -> dict[str, float]:
    """Each target's median latency in the trace log: what the pre-flight's time estimate assumes."""
    return {row["model"]: row["latency_p50_ms"] for row in traces.stats("model")
            if row.get("latency_p50_ms") is not None}


def preflight(plan: Iterator[Cell], prices: PriceBook, *, concurrency: int, store: EvalStore | None = None,
              latency_ms: Mapping[str, float] | None = None,
              skip: set[tuple[CellKey, int]] | None = None, reuse: Container[str] = (),
              delay_ms: int = 0) -> Preflight:
    """Count tokens offline and price every call of ``plan`` (minus ``skip``ped cells, cells whose
    identity is in ``reuse`` and cached cells); each call's time counts its target's ``delay`` (else ``delay_ms``,
    promptfoo's ``evaluateOptions.delay``) after it."""
    calls = cached = reused = tokens = output = 0
    low = high = Decimal(0)
    unpriced: dict[str, None] = {}
    busy_ms = 0.0
    for cell in plan:
        if skip and (cell.key, cell.repeat) in skip:
            continue
        if reuse and cell.identity in reuse:
            reused += 1
            continue
        request = cell.request()
        if store is not None and store.cached(cache_key(cell.target.cache_ref, request, cell.repeat)) is not None:
            cached += 1
            continue
        calls += 1
        guess = estimate(request, cell.target.ref, prices)
        tokens += guess.input_tokens
        output += guess.max_tokens
        if guess.cost_input_usd is None or guess.cost_max_usd is None:
            unpriced.setdefault(cell.target.ref)
        else:
            low += guess.cost_input_usd
            high += guess.cost_max_usd
        busy_ms += (latency_ms or {}).get(cell.target.ref, _DEFAULT_LATENCY_MS) + (cell.target.delay_ms or delay_ms)
    priced = not unpriced
    return Preflight(calls, cached, tokens, output, low if priced else None, high if priced else None,
                     tuple(unpriced), busy_ms / 1000 / max(1, concurrency), reused)


@dataclass(frozen=True, slots=True)
class RunOptions:
    repeat: int = 1
    concurrency: int = 8
    max_cost: float | None = None
    use_cache: bool = True
    targets: tuple[SuiteTarget, ...] | None = None
    gate: float | None = None
    """``--gate``: the pass rate the run must reach instead of the suite's (:meth:`Suite.gate_or_default`)."""
    gate_source: str = "option"
    """Where ``gate`` comes from, as the run stores it: ``option`` (``--gate``) or ``environment``
    (``PROMPTFOO_PASS_RATE_THRESHOLD``)."""
    limits: RunLimits = field(default_factory=RunLimits)
    """promptfoo's ``evaluateOptions.timeoutMs``, ``maxEvalTimeMs`` and ``delay`` (:mod:`.run_clock`)."""


class EvalRunner:
    """Runs one suite's cells into a run of the store; see the module docstring for the rules."""

    def __init__(self, suite: Suite, store: EvalStore, *, options: RunOptions, policies: PolicySet | None = None,
                 prices: PriceBook | None = None, providers: Mapping[str, ProviderSpec] | None = None,
                 on_result: ResultHook | None = None) -> None:
        self.suite, self.store, self.options = suite, store, options
        self.providers, self.on_result = providers, on_result
        self.policies = policies or PolicySet()
        self.prices = prices or PriceBook()
        self.base_dir = Path(suite.path).parent
        self._pending: list[tuple[CellResult, str, int]] = []
        self._fresh: list[tuple[str, Observation]] = []
        self._run: RunInfo | None = None
        self._caller: CallPath | None = None
        self._env: Mapping[str, str] | None = None
        self._writer: TraceWriter | None = None
        self._reuse: dict[str, TracedAnswer] = {}
        self._writing = asyncio.Lock()
        self._catching_up = asyncio.Lock()
        self._comparisons = Comparisons(())
        self._clock = RunClock(options.limits)

    def gate(self) -> tuple[float, str]:
        """The gate a run of these options is judged by, and where it comes from (option, suite, default)."""
        source = (self.options.gate_source if self.options.gate is not None
                  else "suite" if self.suite.gate is not None else "default")
        return self.suite.gate_or_default(self.options.gate), source

    def new_run(self) -> RunInfo:
        targets = self.options.targets or self.suite.targets
        gate, source = self.gate()
        run = RunInfo(id=new_id(), suite=self.suite.name, suite_path=self.suite.path, suite_digest=self.suite.digest,
                      started_at=time.time(), repeat=self.options.repeat, targets=tuple(t.label for t in targets),
                      gate=gate, gate_source=source)
        self.store.start(run)
        return run

    def resume(self, run: RunInfo, spent: float = 0.0) -> RunInfo:
        """Mark a stopped run running again (a :class:`ConfigError` when another process runs it). A gate
        given now replaces the one it was started with (a run stored before gates were gets one);
        ``spent``: what its traced calls cost, when more than it has stored (a run killed outright)."""
        if self.options.gate is not None or run.gate is None:
            run.gate, run.gate_source = self.gate()
        run.cost_usd = max(run.cost_usd, spent)
        self.store.reopen(run)
        return run

    def plan(self) -> Iterator[Cell]:
        return cells(self.suite, self.options.repeat, self.options.targets)

    async def run(self, run: RunInfo, caller: CallPath, env: Mapping[str, str] | None = None,
                  writer: TraceWriter | None = None, reuse: Mapping[str, TracedAnswer] | None = None) -> RunInfo:
        """Run every cell of the plan not yet recorded for ``run`` through ``caller`` (targets resolve
        against ``env``; calls are traced to ``writer``); ``reuse``: answers of the run's calls the trace
        log holds, by cell identity (:func:`workbench.core.evals.traced.traced_answers`), graded instead of
        calling again. Returns the run finished or stopped. The run's JavaScript shares one node process,
        stopped when the run ends."""
        async with node_session(self.base_dir):
            return await self._run_cells(run, caller, env, writer, reuse)

    async def _run_cells(self, run: RunInfo, caller: CallPath, env: Mapping[str, str] | None,
                         writer: TraceWriter | None, reuse: Mapping[str, TracedAnswer] | None) -> RunInfo:
        self._run, self._caller, self._env, self._writer = run, caller, env, writer
        self._reuse = dict(reuse or {})
        self._comparisons = self._compared_cells(run)
        self._clock = RunClock(self.options.limits)  # maxEvalTimeMs counts from here
        done = self.store.done_cells(run.id)
        pending = ((place, cell) for place, cell in enumerate(self.plan()) if (cell.key, cell.repeat) not in done)
        workers = [asyncio.create_task(self._worker(pending)) for _ in range(max(1, self.options.concurrency))]
        flusher = asyncio.create_task(self._flush_in_time())
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            run.status, run.stop_reason = "stopped", "interrupted"
            raise
        else:
            self._report(self._comparisons.unsettled())  # a test some of whose cells did not run
            if run.status == "running":
                run.status = "done"
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            async with self._writing:
                self._write(*self._take())
            self.store.finish(run)
        return run

    def _over_budget(self) -> bool:
        run = self._run
        assert run is not None
        if self.options.max_cost is None or run.cost_usd < self.options.max_cost:
            return False
        if run.status == "running":
            run.status = "stopped"
            run.stop_reason = f"budget: spent ${run.cost_usd:.4f} of ${self.options.max_cost:g}"
        return True

    async def _worker(self, pending: Iterator[tuple[int, Cell]]) -> None:
        for place, cell in pending:
            if self._over_budget():
                return
            try:
                result = await self._timed_cell(cell)
            except Exception as exc:  # this cell fails; the run and the other cells go on
                result = _failed(cell, str(UnexpectedError(cell.target.ref, exc)))
            result.observation.metadata = cell.test.metadata
            self._pending.append((result, cell.test.description, place))
            if self._comparisons.held(result):  # reported once its test's cells are compared
                await self._compare(cell.test, result)
            else:
                self._report([result])
            if len(self._pending) >= _FLUSH_EVERY and not self._writing.locked():
                await self._flush()

    async def _timed_cell(self, cell: Cell) -> CellResult:
        """The cell within its time (:class:`RunClock`): past it, the cell is ended (a call in flight cancelled and
        traced as such) and fails with promptfoo's error; a cell with no time left fails before it starts."""
        limit = self._clock.limit()
        if limit.seconds is not None and limit.seconds <= 0:
            return _failed(cell, limit.error, 0.0)
        started = time.monotonic()
        timer = asyncio.timeout(limit.seconds)
        try:
            async with timer:
                return await self._cell(cell)
        except TimeoutError:
            if not timer.expired():
                raise
            return _failed(cell, limit.error, (time.monotonic() - started) * 1000)

    async def _flush_in_time(self) -> None:
        """Commit whatever results wait, every ``_FLUSH_AFTER_S``: a slow run's results are durable as it goes."""
        while True:
            await asyncio.sleep(_FLUSH_AFTER_S)
            if self._pending or self._fresh:
                await self._flush()

    def _report(self, results: Sequence[CellResult]) -> None:
        if self.on_result is not None:
            for result in results:
                self.on_result(result)

    def _compared_cells(self, run: RunInfo) -> Comparisons:
        """The cells of the plan whose test compares its outputs (select-best, max-score), with the ones ``run``
        recorded before (a resumed run)."""
        comparisons = Comparisons((place, cell.key, cell.repeat, cell.test) for place, cell in enumerate(self.plan()))
        if comparisons.tests:
            comparisons.recorded(result for result, _ in self.store.results(run.id))
        return comparisons

    async def _compare(self, test: TestCase, result: CellResult) -> None:
        """Hold ``result``; once its test's cells of its repeat are all done, compare them (select-best's grader
        traced as a judge of the test), store their new verdicts and report the ones this run did."""
        group = self._comparisons.add(result)
        if group is None:
            return
        judge = functools.partial(self._judged, functools.partial(judge_identity, test.key, result.repeat),
                                  variables=test.vars)
        await compare(test, group, judge, cell_name)
        await self._flush(group)
        self._report(self._comparisons.settled(group))

    async def _flush(self, regraded: Sequence[CellResult] = ()) -> None:
        """Commit the waiting results in a thread (the other workers keep streaming); a commit under way
        finishes even when the task is cancelled, before anyone else writes."""
        async with self._writing:
            write = asyncio.ensure_future(asyncio.to_thread(self._write, *self._take(), regraded))
            try:
                await asyncio.shield(write)
            except asyncio.CancelledError:
                await write
                raise

    def _take(self) -> tuple[list[tuple[CellResult, str, int]], list[tuple[str, Observation]]]:
        taken = self._pending, self._fresh
        self._pending, self._fresh = [], []
        return taken

    def _write(self, results: list[tuple[CellResult, str, int]], fresh: list[tuple[str, Observation]],
               regraded: Sequence[CellResult] = ()) -> None:
        """Store finished cells, answers for the cache, and the new verdicts of ``regraded`` (compared) cells."""
        if results:
            assert self._run is not None
            self.store.add(self._run.id, results)
            self.store.spent(self._run)
        if fresh:
            self.store.remember(fresh)
        if regraded:
            assert self._run is not None
            self.store.regrade(self._run.id, regraded)

    async def prepare(self, cell: Cell) -> Prepared | CellResult:
        """The cell's request as it is sent: its test's variables through ``transformVars``, its prompt through a
        prompt function, rendered; a cell whose transform or prompt function failed is its failed result."""
        try:
            variables = await computed_vars(cell.test.vars, template_text(cell.prompt), self.base_dir)
        except ComputedVarError as exc:
            failed = Observation("", error=str(exc), vars=dict(cell.test.vars))
            return CellResult(cell.key, cell.repeat, failed, [Grading("vars", False, 0.0, failed.error or "")],
                              False, 0.0)
        try:
            variables = await transformed_vars(replace(cell.test, vars=dict(variables)), cell.prompt.label,
                                               self.base_dir)
        except TransformError as exc:
            failed = Observation("", error=f"transformVars failed: {exc}", vars=dict(cell.test.vars))
            return CellResult(cell.key, cell.repeat, failed, [Grading("transformVars", False, 0.0, failed.error or "")],
                              False, 0.0)
        try:
            cell = replace(cell, prompt=await called_prompt(cell.prompt, variables, cell.target, self.base_dir))
        except PromptFunctionError as exc:
            failed = Observation("", error=f"the prompt function failed: {exc}", vars=dict(variables))
            return CellResult(cell.key, cell.repeat, failed, [Grading("prompt", False, 0.0, failed.error or "")],
                              False, 0.0)
        request = cell.request(variables)
        return Prepared(cell, request, dict(variables), rendered_prompt(cell.prompt, request))

    async def _cell(self, cell: Cell) -> CellResult:
        ready = await self.prepare(cell)
        if isinstance(ready, CellResult):
            return ready
        cell, request, variables, sent = ready.cell, ready.request, ready.variables, ready.sent
        use_cache = self.options.use_cache
        traced = self._reuse.pop(cell.identity, None)
        key = cache_key(cell.target.cache_ref, request, cell.repeat) if use_cache and traced is None else ""
        observation = self.store.cached(key) if key else None
        cached, trace_id = observation is not None, None
        if traced is not None:  # called before the run was stopped, its result never stored
            observation, trace_id = traced.observation, traced.trace_id
            observation.vars, observation.prompt_text = dict(variables), sent
            observation.text = reply_output(wire_of(cell.target.ref), observation.text, observation.tool_calls)
        elif observation is None:
            observation, trace_id = await self._call(cell, request, sent, variables)
            if use_cache and observation.error is None:
                self._fresh.append((key, observation))
            wait = cell.target.delay_ms or self.options.limits.delay_ms  # promptfoo's delay: after each call made
            if wait:
                await asyncio.sleep(wait / 1000)
        else:  # the store keeps the prompt redacted: the judges and python assertions see it whole
            observation.vars, observation.prompt_text = dict(variables), sent
        observation.text = structured_output(wire_of(cell.target.ref), observation.text, observation.tool_calls)
        observation.text = schema_output(wire_of(cell.target.ref), cell.target.endpoint, observation.text)
        try:
            observation = await transformed_output(observation, cell.target, cell.test, self.base_dir)
        except TransformError as exc:
            reason = f"the transform failed: {exc}"
            return CellResult(cell.key, cell.repeat, observation, [Grading("transform", False, 0.0, reason)],
                              False, 0.0, cached, trace_id)
        observation.metadata = cell.test.metadata  # the assertions read it (context.test.metadata)
        judge = functools.partial(self._judge, cell)
        gradings = [await grade(spec, observation, judge=judge, base_dir=self.base_dir, embed=self._embed,
                                tools=request.params.tools)
                    for spec in graded_alone(cell.test.assertions)]
        passed, score = verdict(gradings, cell.test.threshold)
        return CellResult(cell.key, cell.repeat, observation, gradings, passed, score, cached, trace_id)

    async def _call(self, cell: Cell, request: ChatRequest, sent: str,
                    variables: Mapping[str, str]) -> tuple[Observation, str | None]:
        """The target's answer to ``request``; ``sent`` is it rendered as promptfoo hands it to a provider."""
        prompt = cell.prompt
        if cell.target.local is not None:  # echo, http, a Python file: answered without a model call
            answer = await local_answer(cell.target.local, sent, variables, self.base_dir)
            answer.prompt_text = sent
            return answer, None
        context = CallContext(prompt_name=prompt.prompt.name if prompt.version is not None else None,
                              prompt_version=prompt.version, eval_run_id=self._run_id, tags=("eval",),
                              eval_cell=cell.identity)
        record, trace_id = await self._complete(cell.target.ref, request, context, cell.target.endpoint)
        return answered(cell.target.ref, record, variables, sent), trace_id

    async def _trace(self, record: CallRecord, context: CallContext) -> str | None:
        """Queue the call for the trace log; past ``_TRACE_BACKLOG`` queued calls, wait until the writer
        has caught up by half, so a writer slower than the calls bounds memory instead of growing it."""
        writer = self._writer
        if writer is None:
            return None
        trace_id = writer.write(record, context)
        if writer.backlog > _TRACE_BACKLOG:
            async with self._catching_up:  # one worker waits in a thread; the others wait for it here
                if writer.backlog > _TRACE_BACKLOG // 2:
                    await asyncio.to_thread(writer.wait_for_backlog, _TRACE_BACKLOG // 2)
        return trace_id

    @property
    def _run_id(self) -> str:
        assert self._run is not None
        return self._run.id

    async def _complete(self, target: str, request: ChatRequest, context: CallContext,
                        endpoint: EndpointOverrides | None = None) -> tuple[CallRecord, str | None]:
        """One call through the provider layer (to ``target``'s own ``endpoint`` when it has one), settled (usage,
        cost), added to the run's spend and traced with ``context``; a call cancelled once sent is traced as
        cancelled (its answer is not reused)."""
        assert self._caller is not None
        record = CallRecord(target, request)
        try:
            await settled_call(self._caller, record, policies=self.policies, prices=self.prices, env=self._env,
                               providers=providers_with(self.providers, target, endpoint))
        except asyncio.CancelledError:
            if was_sent(record):  # traced, its partial output priced
                if record.cost_usd is not None and self._run is not None:
                    self._run.cost_usd += float(record.cost_usd)
                if self._writer is not None:
                    with contextlib.suppress(Exception):
                        self._writer.write(record, context)
            raise
        if record.cost_usd is not None:
            assert self._run is not None
            self._run.cost_usd += float(record.cost_usd)
        return record, await self._trace(record, context)

    async def _judge(self, cell: Cell, target: str | None, prompt: str) -> str:
        return await self._judged(cell.judge_identity, target, prompt, cell.test.vars)

    async def _judged(self, identity_of_call: Callable[[str, str], str], target: str | None, prompt: str,
                      variables: Mapping[str, str] | None = None) -> str:
        """The reply of ``target`` (None: the suite's judge) to a grading prompt, traced as a judge call under
        ``identity_of_call(target, prompt)`` (a resumed run's traced answer reused). A grader that is not a model
        (echo, http, a Python file) gets the prompt as a target does, with the test's ``variables``."""
        name = target or self.suite.judge
        if name is None:
            raise ConfigError("no judge target", "set judge: in the suite, or provider: on the llm-rubric assertion")
        identity = identity_of_call(name, prompt)
        traced = self._reuse.pop(identity, None)
        if traced is not None and traced.ok:
            return traced.observation.text
        judge = self.suite.judges.get(name) or SuiteTarget(name, name)
        if judge.local is not None:  # echo, http, a Python file: the grading prompt goes as a target's prompt does
            answer = await local_answer(judge.local, prompt, variables or {}, self.base_dir)
            if answer.error is not None:
                raise LocalProviderError(answer.error)
            return answer.text
        context = CallContext(eval_run_id=self._run_id, tags=("eval", "judge"), eval_cell=identity)
        record, _ = await self._complete(judge.ref, with_params(judge_request(prompt), judge), context,
                                         judge.endpoint)
        if record.error is not None:
            raise record.error
        return record.text

    async def _embed(self, target: str | None, texts: Sequence[str]) -> list[list[float]]:
        """Embeddings from ``target`` (None: :data:`DEFAULT_EMBEDDING_TARGET`; a provider written with a ``config``:
        its own endpoint), resolved as the run's targets are."""
        name = target or DEFAULT_EMBEDDING_TARGET
        model = self.suite.judges.get(name) or SuiteTarget(name, name)
        return await embed(model.ref, texts, env=self._env,
                           providers=providers_with(self.providers, model.ref, model.endpoint))
