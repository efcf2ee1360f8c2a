"""``workbench eval SUITE --batch`` (and ``evals resume RUN``): the batch phase of a run, said in lines on stderr
(:mod:`workbench.core.evals.batch_run`): the plan and what it saves up front, each batch submitted, each change of a
batch's state while waiting, each batch collected; then the cells left run online as ``eval`` runs them."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.core.config import Settings
    from workbench.core.evals.batch_run import BatchEvent, BatchPlan
    from workbench.core.evals.model import RunInfo
    from workbench.core.evals.runner import EvalRunner
    from workbench.core.evals.traced import TracedAnswer
    from workbench.services import Services


def plan_text(plan: BatchPlan) -> str:
    """What goes in batches, what runs online, and the batch price against the online one."""
    from workbench.core.evals.batch_run import BATCH_RATE
    from workbench.figures import usd

    parts = []
    if plan.cells:
        routes = "; ".join(f"{target}: {route}" for target, route in plan.routes.items())
        parts.append(f"{plan.cells} cell(s) in {plan.batches} new batch(es) ({routes})")
    if plan.waiting:
        parts.append(f"{plan.waiting} cell(s) in batches submitted before")
    if plan.online:
        parts.append(f"{sum(plan.online.values())} cell(s) online (no batch API: {', '.join(plan.online)})")
    if plan.over_budget:
        parts.append(f"{plan.over_budget} cell(s) online under --max-cost (a batch's worst case past the budget: it "
                     "cannot be stopped half-way)")
    if not parts:
        parts.append("nothing to batch")
    text = "batch: " + ", ".join(parts)
    if plan.cells and not plan.unpriced:
        low, high = plan.online_low * BATCH_RATE, plan.online_high * BATCH_RATE
        text += (f"; {usd(low)}–{usd(high)} at the batch rate ({BATCH_RATE:.0%} of the online price) instead of "
                 f"{usd(plan.online_low)}–{usd(plan.online_high)} online: saves {usd(plan.online_low - low)}–"
                 f"{usd(plan.online_high - high)}")
    elif plan.unpriced:
        text += f"; no price for {', '.join(sorted(plan.unpriced))}"
    return text


def event_text(event: BatchEvent) -> str:
    batch = event.batch
    where = f"{batch.batch_id} ({event.target or batch.target})" if batch is not None else event.target
    if event.kind == "submitted":
        return f"batch {where}: submitted, {event.cells} request(s)"
    if event.kind == "state" and event.status is not None:
        return f"batch {where}: {event.status.line()}"
    if event.kind == "collected":
        return f"batch {where}: collected {event.cells} result(s)"
    if event.kind == "unsubmitted":
        return f"batch for {where} not submitted ({event.error}): its {event.cells} cell(s) run online"
    if event.kind == "left":
        return f"batch {where}: not waited for ({event.error})"
    return f"batch {where}: state not read ({event.error}); reading again later"


OnlineRun = Callable[["EvalRunner", "RunInfo", "Services", list[str], Mapping[str, "TracedAnswer"]], None]
"""The online run of the cells left (``eval``'s), given the answers to grade instead of calling."""


def show_plan(runner: EvalRunner, resumed: RunInfo | None, settings: Settings, reuse: Mapping[str, TracedAnswer], *,
              quiet: bool) -> None:
    """``--dry-run --batch``: the batch plan of the run (``resumed``, else a new one), submitting nothing."""
    import time

    from workbench.core.evals.batch_run import BatchEval
    from workbench.core.evals.model import RunInfo
    from workbench.core.httpclient import new_client
    from workbench.services import Services

    suite = runner.suite
    run = resumed or RunInfo(id="", suite=suite.name, suite_path=suite.path, suite_digest=suite.digest,
                             started_at=time.time())
    refs = [t.ref for t in (runner.options.targets or suite.targets)]
    with Services(settings=settings) as found:
        env = found.target_env(refs)

        async def planned() -> BatchPlan:
            async with new_client(settings.network(os.environ)) as client:
                return await BatchEval(runner, run, client, env, None).plan(reuse)

        plan = asyncio.run(planned())
    if quiet:
        print(json.dumps({"batch_plan": plan.summary()}), flush=True)
    print(plan_text(plan), file=sys.stderr, flush=True)


def cancel(runner: EvalRunner, run: RunInfo, settings: Settings, *, quiet: bool) -> None:
    """``evals cancel RUN``: the run's batches still running cancelled at the providers, a line each."""
    from workbench.core.evals.batch_run import BatchEval
    from workbench.core.httpclient import new_client
    from workbench.services import Services

    refs = [t.ref for t in (runner.options.targets or runner.suite.targets)]
    with Services(settings=settings) as found:
        env = found.target_env(refs)

        async def cancelled() -> int:
            async with new_client(settings.network(os.environ)) as client:
                return await BatchEval(runner, run, client, env, None, on_event=_said(quiet)).cancel()

        asked = asyncio.run(cancelled())
    print(f"{asked} batch(es) of run {run.id} cancelled" + (
        f": `workbench evals resume {run.id}` collects what they finished" if asked else ": none was running"),
        file=sys.stderr)


def _said(quiet: bool) -> Callable[[BatchEvent], None]:
    """A batch event said: a line on stderr, and with ``--json`` a ``batch`` line on stdout."""

    def said(event: BatchEvent) -> None:
        if quiet:
            print(json.dumps({"batch": {"event": event.kind, "id": event.batch.batch_id if event.batch else None,
                                        "target": event.target, "state": event.batch.state if event.batch else None,
                                        "cells": event.cells, "error": event.error}}), flush=True)
        print(event_text(event), file=sys.stderr, flush=True)

    return said


def execute(runner: EvalRunner, run_info: RunInfo, settings: Settings, online: OnlineRun,
            reuse: Mapping[str, TracedAnswer], *, quiet: bool) -> None:
    """The batch phase, then the online run of what is left (graded with the batch's answers), every call traced."""
    from workbench.core.evals.batch_run import BatchEval
    from workbench.core.httpclient import new_client
    from workbench.services import Services

    refs = [t.ref for t in (runner.options.targets or runner.suite.targets)]
    network = settings.network(os.environ)
    for warning in network.warnings():
        print(warning, file=sys.stderr)

    said = _said(quiet)
    with Services(settings=settings) as found:
        writer = found.writer()
        env = found.target_env(refs)

        async def batch_phase() -> dict[str, TracedAnswer]:
            async with new_client(network) as client:
                phase = BatchEval(runner, run_info, client, env, writer, on_event=said)
                plan = await phase.plan(reuse)
                if quiet:
                    print(json.dumps({"batch_plan": plan.summary()}), flush=True)
                print(plan_text(plan), file=sys.stderr, flush=True)
                if plan.cells or plan.waiting:
                    print(f"leave with Ctrl-C: the batches run on; `workbench evals resume {run_info.id}` collects "
                          "them", file=sys.stderr, flush=True)
                return await phase.answers(reuse, plan)

        answers = asyncio.run(batch_phase())
        online(runner, run_info, found, refs, {**reuse, **answers})
