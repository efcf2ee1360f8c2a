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

from workbench.figures import batch_event_text, batch_plan_text

if TYPE_CHECKING:
    from workbench.core.config import Settings
    from workbench.core.evals.batch_run import BatchEvent, BatchPlan
    from workbench.core.evals.model import RunInfo
    from workbench.core.evals.runner import EvalRunner
    from workbench.core.evals.traced import TracedAnswer
    from workbench.services import Services


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
    print(batch_plan_text(plan), file=sys.stderr, flush=True)


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
        print(batch_event_text(event), file=sys.stderr, flush=True)

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
                print(batch_plan_text(plan), file=sys.stderr, flush=True)
                if plan.cells or plan.waiting:
                    print(f"leave with Ctrl-C: the batches run on; `workbench evals resume {run_info.id}` collects "
                          "them", file=sys.stderr, flush=True)
                return await phase.answers(reuse, plan)

        answers = asyncio.run(batch_phase())
        online(runner, run_info, found, refs, {**reuse, **answers})
