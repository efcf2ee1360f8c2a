"""``workbench eval SUITE``: a run with pre-flight, progress, reports and a CI gate (the stored runs are
``workbench evals``, :mod:`workbench.cli.evals`).

Exit codes: 0 the run passed; 1 the pass rate is under the gate or a regression appeared against
``--compare``; 2 bad usage or a bad suite; 3 the run stopped before the end (``--max-cost``; resume it
with ``--resume RUN``); 130 interrupted (also resumable).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.cli._shared import eval_store, settings
from workbench.core.errors import ConfigError

if TYPE_CHECKING:
    from workbench.core.config import Settings
    from workbench.core.evals.model import CellResult, RunInfo, RunReport, Suite, SuiteTarget
    from workbench.core.evals.run_store import EvalStore
    from workbench.core.evals.runner import EvalRunner, Preflight
    from workbench.services import Services

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _targets(args: argparse.Namespace, settings: Settings) -> tuple[SuiteTarget, ...] | None:
    from workbench.core.evals.model import SuiteTarget

    if not args.targets:
        return None
    return tuple(SuiteTarget(settings.config.expand(t), t) for t in args.targets)


def _preflight_text(suite: Suite, pre: Preflight, concurrency: int) -> str:
    from workbench.figures import usd

    cost = f"{usd(pre.cost_low_usd)}–{usd(pre.cost_high_usd)}"
    if pre.unpriced:
        cost += f" (no price for {', '.join(pre.unpriced)})"
    return (f"{suite.name}: {pre.calls} calls ({pre.cached} cached), ≈{pre.input_tokens:,} input tokens, "
            f"≤{pre.max_output_tokens:,} output tokens, cost {cost}, ≈{pre.seconds:.0f} s at concurrency "
            f"{concurrency}")


def _latencies(settings: Settings) -> dict[str, float]:
    """Each target's median latency in the trace log (none when the log cannot be opened)."""
    from workbench.core.evals.runner import typical_latencies
    from workbench.core.traces.store import TraceStore

    try:
        traces = TraceStore(settings.trace_path(os.environ))
    except ConfigError:
        return {}
    try:
        return typical_latencies(traces)
    finally:
        traces.close()


def _begin(runner: EvalRunner, store: EvalStore, resume: str | None, suite: Suite) -> RunInfo:
    if resume is None:
        return runner.new_run()
    run = store.run(resume, suite.name)
    if run.status == "done":
        raise ConfigError(f"eval run {run.id} already finished", "start a new run (drop --resume)")
    if run.suite_digest != suite.digest:
        print(f"workbench: the suite changed since run {run.id}; finished cells are kept as they are",
              file=sys.stderr)
    store.reopen(run)
    return run


def run(args: argparse.Namespace) -> int:
    from workbench.core.evals.runner import EvalRunner, RunOptions, preflight
    from workbench.core.evals.suite import load_suite

    config = settings(args)
    workspace = config.workspace or Path.cwd()
    suite = load_suite(Path(args.suite), workspace)
    for warning in suite.warnings:
        print(f"workbench: {warning}", file=sys.stderr)
    store = eval_store(config)
    resumed = store.run(args.resume, suite.name) if args.resume else None
    repeat = args.repeat or (resumed.repeat if resumed else suite.repeat)
    concurrency = args.concurrency or suite.concurrency or 8
    if repeat < 1 or concurrency < 1:
        raise ConfigError("--repeat and --concurrency must be at least 1", "see `workbench eval --help`")
    options = RunOptions(repeat=repeat, concurrency=concurrency, max_cost=args.max_cost,
                         use_cache=not args.no_cache, targets=_targets(args, config))
    runner = EvalRunner(suite, store, options=options, policies=config.policies, prices=config.prices,
                        providers=config.config.provider_specs())
    pre = preflight(runner.plan(), config.prices, concurrency=concurrency,
                    store=store if options.use_cache else None, latency_ms=_latencies(config),
                    skip=store.done_cells(resumed.id) if resumed else None)
    if args.json:
        print(json.dumps({"preflight": pre.summary()}))
    else:
        print(_preflight_text(suite, pre, concurrency), file=sys.stderr)
    if args.dry_run:
        return EXIT_OK
    run_info = _begin(runner, store, args.resume, suite)
    try:
        _execute(runner, run_info, config, pre.calls + pre.cached, quiet=args.json)
    except KeyboardInterrupt:
        print(f"interrupted: resume with `workbench eval {args.suite} --resume {run_info.id}`", file=sys.stderr)
        return EXIT_INTERRUPTED
    return _conclude(args, store, run_info, suite)


def _execute(runner: EvalRunner, run_info: RunInfo, settings: Settings, total: int, *, quiet: bool) -> None:
    """Run the cells with a progress bar (on a terminal), every call traced, with the process-wide settings
    of an eval run (:func:`workbench.process_settings.eval_run_settings`): this command is an entry point."""
    from workbench.services import Services

    refs = [t.ref for t in (runner.options.targets or runner.suite.targets)]
    network = settings.network(os.environ)
    for warning in network.warnings():
        print(warning, file=sys.stderr)
    with Services(settings=settings) as found:
        found.writer()  # opened before the run: a trace log that cannot be opened stops it here
        _run_cells(runner, run_info, found, refs, total, quiet=quiet)


def _run_cells(runner: EvalRunner, run_info: RunInfo, found: Services, refs: list[str], total: int, *,
               quiet: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from workbench.core.httpclient import new_client
    from workbench.core.resilience.caller import Caller
    from workbench.process_settings import eval_run_settings

    settings = found.settings()
    network = settings.network(os.environ)
    writer = found.writer()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[failed]} failed · ${task.fields[cost]:.4f}"), TimeElapsedColumn(),
                        disable=quiet or not sys.stderr.isatty(), refresh_per_second=4, transient=False)
    task = progress.add_task(runner.suite.name, total=total, failed=0, cost=run_info.cost_usd)
    failed = 0

    def advance(result: CellResult) -> None:
        nonlocal failed
        failed += not result.passed
        progress.update(task, advance=1, failed=failed, cost=run_info.cost_usd)

    runner.on_result = advance

    async def go(env: dict[str, str]) -> None:
        async with new_client(network) as client:
            await runner.run(run_info, Caller(client), env, writer)

    env = found.target_env(refs)
    with progress, eval_run_settings():
        asyncio.run(go(env))


def _conclude(args: argparse.Namespace, store: EvalStore, run_info: RunInfo, suite: Suite) -> int:
    from workbench.core.evals.diff import gate_failures
    from workbench.core.evals.report_data import report_for

    compare = store.previous(run_info) if args.compare == "last" else (
        store.run(args.compare) if args.compare else None)
    if args.compare == "last" and compare is None:
        print("workbench: no earlier run of this suite to compare with", file=sys.stderr)
    gate = suite.gate_or_default(args.gate)
    report = report_for(store, run_info, compare=compare, gate=gate)
    _write_reports(report, args.report, args.out)
    reasons = gate_failures(report, gate)
    if args.json:
        print(json.dumps(_summary(report, reasons)))
    else:
        _print_summary(report, reasons)
    if run_info.status != "done":
        print(f"stopped ({run_info.stop_reason}): resume with `workbench eval {args.suite} --resume {run_info.id}`",
              file=sys.stderr)
        return EXIT_STOPPED
    return EXIT_FAILED if reasons else EXIT_OK


def _summary(report: RunReport, reasons: Sequence[str]) -> dict[str, object]:
    run = report.run
    return {"run": run.id, "suite": run.suite, "status": run.status, "stop_reason": run.stop_reason,
            "runs": report.runs, "passes": report.passes, "pass_rate": round(report.pass_rate, 4),
            "gate": report.gate, "cost_usd": round(run.cost_usd, 6), "failures": list(reasons),
            "regressions": len(report.diff.regressions) if report.diff else 0}


def _write_reports(report: RunReport, formats: Sequence[str], out: str | None) -> None:
    from workbench.core.evals.report_formats import render, report_filename
    from workbench.core.folders import private_folder

    for fmt in dict.fromkeys(formats):
        text = render(report, fmt)
        if out is None:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            continue
        folder = Path(out)
        private_folder(folder)  # 0700, as every folder workbench makes
        path = folder / report_filename(report, fmt)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)


def _print_summary(report: RunReport, reasons: Sequence[str]) -> None:
    from workbench.cli._shared import console as make_console
    from workbench.cli.render import eval_table
    from workbench.figures import usd

    console = make_console(stderr=True)
    console.print(eval_table(report))
    verdict = "[red]FAILED[/]" if reasons else "[green]passed[/]"
    console.print(f"{verdict}: {report.passes}/{report.runs} passed ({report.pass_rate:.0%}), "
                  f"{usd(report.run.cost_usd)}, run {report.run.id}")
    for reason in reasons:
        console.print(f"  • {reason}", markup=False)
