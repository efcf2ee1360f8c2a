"""``workbench eval SUITE`` (a run with pre-flight, progress, reports and a CI gate) and
``workbench evals list|show|diff`` (the stored runs).

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
from typing import TYPE_CHECKING, Any

from workbench.core.errors import ConfigError

if TYPE_CHECKING:
    from workbench.core.config import Settings
    from workbench.core.evals.model import CellResult, RunInfo, RunReport, Suite, SuiteTarget
    from workbench.core.evals.run_store import EvalStore
    from workbench.core.evals.runner import EvalRunner, Preflight

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def add_parsers(sub: Any) -> None:
    run = sub.add_parser("eval", help="run an eval suite over its targets: pre-flight, progress, reports, CI gate",
                         description="Run an eval suite (ours or a promptfooconfig.yaml). Exit codes: 0 passed; "
                                     "1 under the gate or a regression; 2 bad usage; 3 stopped (resumable).")
    run.add_argument("suite", help="the suite file (YAML in evals/, or a promptfooconfig.yaml)")
    run.add_argument("-t", "--target", dest="targets", action="append", default=[], metavar="PROVIDER/MODEL",
                     help="run on this target instead of the suite's (repeatable)")
    run.add_argument("--repeat", type=int, help="run every cell N times: a pass rate with a Wilson interval")
    run.add_argument("--concurrency", type=int, help="calls in flight at once (default: the suite's, else 8)")
    run.add_argument("--max-cost", type=float, metavar="USD", help="stop starting calls once this much is spent")
    run.add_argument("--gate", type=float, metavar="RATE",
                     help="fail (exit 1) under this pass rate, 0..1 (default: the suite's gate:, else 1: every test)")
    run.add_argument("--compare", metavar="RUN|last",
                     help="diff against this run (last: the suite's previous run); a regression fails the run")
    run.add_argument("--report", action="append", default=[], choices=("md", "json", "junit", "html"),
                     help="write a report (repeatable); printed to stdout when there is no --out")
    run.add_argument("--out", metavar="DIR", help="folder for the reports")
    run.add_argument("--resume", metavar="RUN", help="continue a stopped run without repeating finished cells")
    run.add_argument("--no-cache", action="store_true",
                     help="neither read nor write the response cache: call every cell")
    run.add_argument("--dry-run", action="store_true", help="print the pre-flight and stop")
    run.add_argument("--json", action="store_true", help="print the pre-flight and the run summary as JSON lines")
    run.add_argument("--config", metavar="FILE", help="the workspace configuration (default: the nearest "
                                                       "workbench.toml up from here, if any)")

    runs = sub.add_parser("evals", help="stored eval runs: list, show, diff",
                          description="Eval runs stored beside the trace log.")
    runs.add_argument("--config", metavar="FILE")
    actions = runs.add_subparsers(dest="evals_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="recent runs, newest first")
    listing.add_argument("--suite", help="only this suite's runs")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="a run's report")
    show.add_argument("run", metavar="RUN|last")
    show.add_argument("--format", choices=("md", "json", "junit", "html"), default="md")
    diff = actions.add_parser("diff", help="what changed between two runs")
    diff.add_argument("base", metavar="RUN")
    diff.add_argument("head", metavar="RUN|last")
    diff.add_argument("--json", action="store_true")


def _settings(args: argparse.Namespace) -> Settings:
    from workbench.core.config import load_settings

    return load_settings(Path(args.config) if args.config else None)


def _store(settings: Settings) -> EvalStore:
    from workbench.core.evals.run_store import EvalStore, default_path

    return EvalStore(default_path(settings.trace_path(os.environ)))


def open_store(args: argparse.Namespace) -> EvalStore:
    """The eval store of the configuration ``--config`` names (default: the nearest workspace)."""
    return _store(_settings(args))


def _targets(args: argparse.Namespace, settings: Settings) -> tuple[SuiteTarget, ...] | None:
    from workbench.core.evals.model import SuiteTarget

    if not args.targets:
        return None
    return tuple(SuiteTarget(settings.config.expand(t), t) for t in args.targets)


def _preflight_text(suite: Suite, pre: Preflight, concurrency: int) -> str:
    def usd(value: object) -> str:
        return "?" if value is None else f"${float(str(value)):.4f}"

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

    settings = _settings(args)
    workspace = settings.workspace or Path.cwd()
    suite = load_suite(Path(args.suite), workspace)
    for warning in suite.warnings:
        print(f"workbench: {warning}", file=sys.stderr)
    store = _store(settings)
    resumed = store.run(args.resume, suite.name) if args.resume else None
    repeat = args.repeat or (resumed.repeat if resumed else suite.repeat)
    concurrency = args.concurrency or suite.concurrency or 8
    if repeat < 1 or concurrency < 1:
        raise ConfigError("--repeat and --concurrency must be at least 1", "see `workbench eval --help`")
    options = RunOptions(repeat=repeat, concurrency=concurrency, max_cost=args.max_cost,
                         use_cache=not args.no_cache, targets=_targets(args, settings))
    runner = EvalRunner(suite, store, options=options, policies=settings.policies, prices=settings.prices,
                        providers=settings.config.provider_specs())
    pre = preflight(runner.plan(), settings.prices, concurrency=concurrency,
                    store=store if options.use_cache else None, latency_ms=_latencies(settings),
                    skip=store.done_cells(resumed.id) if resumed else None)
    if args.json:
        print(json.dumps({"preflight": pre.summary()}))
    else:
        print(_preflight_text(suite, pre, concurrency), file=sys.stderr)
    if args.dry_run:
        return EXIT_OK
    run_info = _begin(runner, store, args.resume, suite)
    try:
        _execute(runner, run_info, settings, pre.calls + pre.cached, quiet=args.json)
    except KeyboardInterrupt:
        print(f"interrupted: resume with `workbench eval {args.suite} --resume {run_info.id}`", file=sys.stderr)
        return EXIT_INTERRUPTED
    return _conclude(args, store, run_info, suite)


def _execute(runner: EvalRunner, run_info: RunInfo, settings: Settings, total: int, *, quiet: bool) -> None:
    """Run the cells with a progress bar (on a terminal), every call traced."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from workbench.cli import _target_env
    from workbench.core.httpclient import new_client
    from workbench.core.resilience.caller import Caller
    from workbench.core.traces.writer import TraceWriter

    refs = [t.ref for t in (runner.options.targets or runner.suite.targets)]
    network = settings.network(os.environ)
    for warning in network.warnings():
        print(warning, file=sys.stderr)
    writer = TraceWriter(settings.trace_path(os.environ), settings.redactor())
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

    try:
        with _target_env(refs, settings.config.provider_specs()) as env, progress:
            asyncio.run(go(env))
    finally:
        writer.close()


def _conclude(args: argparse.Namespace, store: EvalStore, run_info: RunInfo, suite: Suite) -> int:
    from workbench.core.evals.diff import gate_failures
    from workbench.core.evals.report_data import report_for

    compare = store.previous(run_info) if args.compare == "last" else (
        store.run(args.compare) if args.compare else None)
    if args.compare == "last" and compare is None:
        print("workbench: no earlier run of this suite to compare with", file=sys.stderr)
    gate = args.gate if args.gate is not None else (suite.gate if suite.gate is not None else 1.0)
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

    for fmt in dict.fromkeys(formats):
        text = render(report, fmt)
        if out is None:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            continue
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / report_filename(report, fmt)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)


def _print_summary(report: RunReport, reasons: Sequence[str]) -> None:
    from rich.console import Console

    from workbench.console import eval_table

    console = Console(stderr=True)
    console.print(eval_table(report))
    verdict = "[red]FAILED[/]" if reasons else "[green]passed[/]"
    console.print(f"{verdict}: {report.passes}/{report.runs} passed ({report.pass_rate:.0%}), "
                  f"${report.run.cost_usd:.4f}, run {report.run.id}")
    for reason in reasons:
        console.print(f"  • {reason}", markup=False)


def runs_command(args: argparse.Namespace) -> int:
    from workbench.core.evals.diff import diff_runs
    from workbench.core.evals.report_data import cells_of, report_for
    from workbench.core.evals.report_formats import render

    store = open_store(args)
    if args.evals_command == "list":
        for info in store.runs(args.suite, args.limit):
            row = {"id": info.id, "suite": info.suite, "status": info.status, "started_at": info.started_at,
                   "repeat": info.repeat, "targets": list(info.targets), "cost_usd": round(info.cost_usd, 6)}
            print(json.dumps(row) if args.json else
                  f"{info.id}  {info.suite:<24} {info.status:<8} ${info.cost_usd:.4f}  {', '.join(info.targets)}")
        return EXIT_OK
    if args.evals_command == "show":
        sys.stdout.write(render(report_for(store, store.run(args.run)), args.format))
        return EXIT_OK
    head = store.run(args.head)
    base = store.run(args.base)
    from workbench.core.evals.model import RunReport

    diff = diff_runs(RunReport(base, cells_of(store, base)), RunReport(head, cells_of(store, head)))
    for entry in diff.entries:
        if args.json:
            print(json.dumps({"test": entry.key.test, "prompt": entry.key.prompt, "target": entry.key.target,
                              "change": entry.change,
                              "base_pass_rate": entry.base.pass_rate if entry.base else None,
                              "head_pass_rate": entry.head.pass_rate if entry.head else None,
                              "cost_delta_usd": entry.cost_delta, "latency_delta_ms": entry.latency_delta_ms}))
        elif entry.change != "unchanged":
            print(f"{entry.change:<12} {entry.key.test} · {entry.key.prompt} · {entry.key.target}")
    return EXIT_FAILED if diff.regressions else EXIT_OK
