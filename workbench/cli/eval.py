"""``workbench eval SUITE``: a run with pre-flight, progress, reports and a CI gate (the stored runs are
``workbench evals``, :mod:`workbench.cli.evals`).

Exit codes: 0 the run passed; 1 the pass rate is under the gate or a regression appeared against
``--compare``; 2 bad usage or a bad suite; 3 the run stopped before the end (``--max-cost``; resume it
with ``--resume RUN``); 130 interrupted: Ctrl-C or SIGTERM (what CI and ``timeout`` send), also resumable.
The verdict, its gate, the comparison and the exit code are stored with the run, so ``workbench evals show``
and ``export report`` say what the run said.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.cli._shared import eval_store, known_targets, settings, sigterm_interrupts, variables
from workbench.core.errors import ConfigError

if TYPE_CHECKING:
    from workbench.core.config import Settings
    from workbench.core.evals.model import CellKey, CellResult, RunInfo, RunReport, Suite, SuiteTarget
    from workbench.core.evals.report_outputs import ResultStream, SuiteNames
    from workbench.core.evals.run_store import EvalStore
    from workbench.core.evals.runner import EvalRunner, Preflight
    from workbench.core.evals.traced import TracedAnswer
    from workbench.services import Services

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = {"passed": EXIT_OK, "failed": EXIT_FAILED, "stopped": EXIT_STOPPED, "interrupted": EXIT_INTERRUPTED}
"""The exit code of each verdict (:func:`workbench.core.evals.report_data.conclude`)."""


def _targets(args: argparse.Namespace, settings: Settings, folder: Path) -> tuple[SuiteTarget, ...] | None:
    """The targets of ``-t``: ours (or an alias) or promptfoo's provider ids, echo, a URL or ``file://x.py``; an
    unknown provider is refused before the run."""
    import dataclasses

    from workbench.core.evals.judging import command_line_target
    from workbench.core.evals.model import SuiteTarget

    if not args.targets:
        return None
    targets = []
    specs = settings.config.provider_specs()
    for text in args.targets:
        ref, local = command_line_target(settings.config.expand(text), folder, "-t")
        if local is None:
            known_targets([ref], specs)
        targets.append(SuiteTarget(ref, text, written_id=text) if local is None else
                       dataclasses.replace(local, written_id=text))
    return tuple(targets)


def _with_grader(suite: Suite, grader: str | None, settings: Settings) -> Suite:
    """The suite with its judge: ``--grader``, else its own (``judge:``, ``defaultTest.options.provider``), else,
    when a model-graded assertion names none, the first default target (said in one line); with no default
    target reachable, a one-line error before any call."""
    import dataclasses

    from workbench.core.evals.judging import regraded, unjudged
    from workbench.services import Services

    if grader is not None:
        return regraded(suite, settings.config.expand(grader))
    waiting = sum(1 for _ in unjudged(suite))
    if suite.judge is not None or not waiting:
        return suite
    with Services(settings=settings) as found:
        try:
            judge = found.default_targets().targets[0]
        except ConfigError as exc:
            raise ConfigError(f"{suite.path}: {waiting} model-graded assertion(s) need a judge and no default grader "
                              f"is reachable ({exc.message})", "set judge: in the suite (or "
                              "defaultTest.options.provider), or pass --grader PROVIDER/MODEL") from None
    print(f"workbench: {suite.path}: {waiting} model-graded assertion(s) name no judge: graded by {judge} (the "
          "first default target); set judge: in the suite or pass --grader PROVIDER/MODEL", file=sys.stderr)
    return dataclasses.replace(suite, judge=judge)


def _preflight_text(suite: Suite, pre: Preflight, concurrency: int) -> str:
    from workbench.figures import about_seconds, usd

    known = pre.cost_low_usd is not None or pre.cost_high_usd is not None
    cost = f"{usd(pre.cost_low_usd)}–{usd(pre.cost_high_usd)}" if known else "unknown"
    if pre.unpriced:
        cost += f" (no price for {', '.join(pre.unpriced)})"
    reused = f", {pre.reused} answered in the trace log" if pre.reused else ""
    return (f"{suite.name}: {pre.calls} calls ({pre.cached} cached{reused}), ≈{pre.input_tokens:,} input tokens, "
            f"≤{pre.max_output_tokens:,} output tokens, cost {cost}, {about_seconds(pre.seconds)} at concurrency "
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


def _traced(settings: Settings, run: RunInfo, store: EvalStore) -> tuple[dict[str, TracedAnswer], float]:
    """For a resumed run: the answers its calls left in the trace log for cells with no stored result (a
    run killed outright), by cell identity, and what its traced calls cost."""
    from workbench.core.evals.runner import identity_of
    from workbench.core.evals.traced import traced_answers, traced_spend
    from workbench.core.traces.store import TraceStore

    try:
        traces = TraceStore(settings.trace_path(os.environ))
    except ConfigError:
        return {}, 0.0
    try:
        done = {identity_of(key, repeat) for key, repeat in store.done_cells(run.id)}
        return traced_answers(traces, run.id, skip=done), traced_spend(traces, run.id)
    finally:
        traces.close()


def _resumable(store: EvalStore, resume: str, suite: Suite) -> RunInfo:
    run = store.run(resume, suite.name)
    if run.status == "done":
        raise ConfigError(f"eval run {run.id} already finished: nothing is left to resume or cancel",
                          f"start a new run: workbench eval {suite.path}")
    if run.status == "running":
        raise ConfigError(f"eval run {run.id} is running in another process",
                          "wait for it to end, or stop it (Ctrl-C) and resume it then")
    return run


def _retried(store: EvalStore, suite: Suite) -> RunInfo:
    """``--retry-errors``: the suite's last run, which is not running now."""
    run = store.run("last", suite.name)
    if run.status == "running":
        raise ConfigError(f"eval run {run.id} is running in another process",
                          "wait for it to end, then retry its errors")
    return run


def _selected(args: argparse.Namespace, suite: Suite, store: EvalStore, config: Settings) -> Suite | None:
    """The suite with the targets of ``-t`` and the tests and targets the ``--filter-*`` options keep; None
    when ``--filter-failing`` names a run where no test failed (said in one line)."""
    import dataclasses

    from workbench.core.evals.selection import Selection, select

    targets = _targets(args, config, Path(suite.path).parent)
    if targets:
        suite = dataclasses.replace(suite, targets=targets)
    failing = None
    if args.filter_failing is not None:
        earlier = store.run(args.filter_failing, suite.name if args.filter_failing == "last" else None)
        failing = store.failing_tests(earlier.id)
        if not failing:
            print(f"workbench: no test failed in eval run {earlier.id}: nothing to run", file=sys.stderr)
            return None
    return select(suite, Selection(pattern=args.filter_pattern, first_n=args.filter_first_n, failing=failing,
                                   targets=args.filter_targets))


def _outputs(paths: Sequence[str], given_as: str = "-o") -> list[tuple[Path, str]]:
    """``-o`` (or the suite's ``outputPath``, ``given_as``): each file with the format of its extension, its folder
    checked before any call is made."""
    from workbench.core.evals.report_outputs import output_format

    out = []
    for text in dict.fromkeys(paths):
        fmt, path = output_format(text), Path(text).expanduser()
        if path.is_dir():
            raise ConfigError(f"{given_as} {text} is a folder, not a file", "name the file to write")
        if not path.parent.is_dir() or not os.access(path.parent, os.W_OK | os.X_OK):
            raise ConfigError(f"{given_as} {text}: cannot write in {path.parent} (no such folder, or not writable)",
                              "pass a file in a folder you can write to")
        out.append((path, fmt))
    return out


def _report_folder(out: str | None) -> None:
    """``--out``: a folder that exists or can be made, checked before any call is made."""
    if out is None:
        return
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder", "pass a folder for the reports (made if missing)")
    try:
        from workbench.core.folders import private_folder

        private_folder(folder)  # 0700, as every folder workbench makes
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot make the folder ({exc.strerror})",
                          "pass a folder you can write to") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: the folder is not writable", "pass a folder you can write to")


def run(args: argparse.Namespace) -> int:
    """The run, then with ``--sync`` its push to the team store (checked before the run: a bad ``[team]`` is exit 2
    at once); a push that fails is one line, and exit 1 when the run itself exited 0."""
    sync = getattr(args, "sync", False) and not args.dry_run
    if sync:
        from workbench.cli.team import check_team

        check_team(settings(args))
    with sigterm_interrupts():  # SIGTERM (what CI and ``timeout`` send) stops a run as Ctrl-C does
        code = _run(args)
    if not sync:
        return code
    from workbench.cli.team import sync_and_report

    pushed = sync_and_report(settings(args), push=True, pull=False, since=None, as_json=False, out=sys.stderr)
    return code or pushed


def _run(args: argparse.Namespace) -> int:
    from workbench.core.evals.promptfoo_env import promptfoo_exit, promptfoo_limits
    from workbench.core.evals.report_outputs import suite_names
    from workbench.core.evals.run_clock import paced
    from workbench.core.evals.runner import EvalRunner, RunOptions, preflight
    from workbench.core.evals.suite import load_suite

    _report_folder(args.out)
    outputs = _outputs(args.output)
    config = settings(args)
    workspace = config.workspace or Path.cwd()
    suite = load_suite(Path(args.suite), workspace, targets_given=bool(args.targets), variables=variables(args.var),
                       providers=config.config.provider_specs())
    for warning in suite.warnings:
        print(f"workbench: {warning}", file=sys.stderr)
    if not outputs and suite.output_paths:  # -o wins over the suite's outputPath, as in promptfoo
        outputs = _outputs(suite.output_paths, f"{suite.path}: outputPath")
    failed_code, env_gate = promptfoo_exit(suite, os.environ)
    limits = promptfoo_limits(suite, os.environ)
    store = eval_store(config)
    try:
        selected = _selected(args, suite, store, config)
        if selected is None:
            return EXIT_OK
        suite = _with_grader(selected, args.grader, config)
        resumed = _resumable(store, args.resume, suite) if args.resume else None
        errored: set[tuple[CellKey, int]] = set()
        if args.retry_errors:
            resumed = _retried(store, suite)
            errored = store.errored_cells(resumed.id)
            if not errored:
                print(f"workbench: no cell errored in eval run {resumed.id}: nothing to retry", file=sys.stderr)
                return EXIT_OK
        repeat = args.repeat or (resumed.repeat if resumed else suite.repeat)
        concurrency = paced(suite.limits, args.concurrency or suite.concurrency or 8)
        gate = args.gate if args.gate is not None or suite.gate is not None else env_gate
        options = RunOptions(repeat=repeat, concurrency=concurrency, max_cost=args.max_cost,
                             use_cache=not args.no_cache and suite.limits.cache, gate=gate,
                             gate_source="option" if args.gate is not None else "environment", limits=limits)
        runner = EvalRunner(suite, store, options=options, policies=config.policies, prices=config.prices,
                            providers=config.config.provider_specs())
        if getattr(args, "cancel_batches", False):  # `evals cancel RUN`
            from workbench.cli.eval_batch import cancel

            assert resumed is not None
            cancel(runner, resumed, config, quiet=args.json)
            return EXIT_OK
        reuse, spent = _traced(config, resumed, store) if resumed and not errored else ({}, 0.0)
        pre = preflight(runner.plan(), config.prices, concurrency=concurrency,
                        store=store if options.use_cache else None, latency_ms=_latencies(config),
                        skip=store.done_cells(resumed.id) - errored if resumed else None, reuse=reuse,
                        delay_ms=limits.delay_ms)
        if args.json:
            print(json.dumps({"preflight": pre.summary()}))
        else:
            print(_preflight_text(suite, pre, concurrency), file=sys.stderr)
        if args.dry_run:
            if args.batch:  # what would go in batches, and what they would save
                from workbench.cli.eval_batch import show_plan

                show_plan(runner, resumed, config, reuse, quiet=args.json)
            return EXIT_OK
        if errored and resumed is not None:
            store.forget_errors(resumed.id)
        if resumed is None:
            run_info = runner.new_run()
        else:
            if resumed.suite_digest != suite.digest:
                print(f"workbench: the suite changed since run {resumed.id}; finished cells are kept as they are",
                      file=sys.stderr)
            run_info = runner.resume(resumed, spent)
        stream = _result_stream(outputs, store, run_info, suite_names(suite))
        batch = args.batch or bool(resumed is not None and store.batches(resumed.id))
        total = pre.calls + pre.cached + pre.reused
        try:
            if batch:
                from workbench.cli.eval_batch import execute

                execute(runner, run_info, config, functools.partial(_run_cells, total=total, quiet=args.json,
                                                                    stream=stream), reuse, quiet=args.json)
            else:
                _execute(runner, run_info, config, total, reuse, quiet=args.json, stream=stream)
        except KeyboardInterrupt:
            _interrupted(store, run_info)
            if batch:
                print(f"interrupted: batches still running go on at the providers; resume with `workbench evals "
                      f"resume {run_info.id}` (it collects them)", file=sys.stderr)
            else:
                print(f"interrupted: resume with `workbench eval {args.suite} --resume {run_info.id}`",
                      file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            if stream is not None:
                stream.close()
        return _conclude(args, store, run_info, outputs, suite, failed_code)
    finally:
        store.close()


def _result_stream(outputs: Sequence[tuple[Path, str]], store: EvalStore, run_info: RunInfo,
                   names: SuiteNames) -> ResultStream | None:
    """``-o FILE.jsonl``: the file the results stream to, the stored results of a resumed run first."""
    from workbench.core.evals.report_outputs import ResultStream

    path = next((path for path, fmt in outputs if fmt == "jsonl"), None)
    if path is None:
        return None
    try:
        stream = ResultStream(path, store.redactor, names, run_info.id)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}", "pass a file you can write to") from None
    for result, _ in store.results(run_info.id):
        stream.write(result)
    return stream


def _interrupted(store: EvalStore, run_info: RunInfo) -> None:
    """Store the run as interrupted (the runner has when it had started) and its verdict: none, exit 130."""
    if run_info.status == "running":
        run_info.status, run_info.stop_reason = "stopped", "interrupted"
        store.finish(run_info)
    store.conclude(run_info, "interrupted", None, EXIT_INTERRUPTED)


def _execute(runner: EvalRunner, run_info: RunInfo, settings: Settings, total: int,
             reuse: Mapping[str, TracedAnswer], *, quiet: bool, stream: ResultStream | None) -> None:
    """Run the cells with a progress bar (on a terminal), every call traced, with the process-wide settings
    of an eval run (:func:`workbench.process_settings.eval_run_settings`): this command is an entry point."""
    from workbench.services import Services

    refs = [t.ref for t in (runner.options.targets or runner.suite.targets)]
    network = settings.network(os.environ)
    for warning in network.warnings():
        print(warning, file=sys.stderr)
    with Services(settings=settings) as found:
        found.writer()  # opened before the run: a trace log that cannot be opened stops it here
        _run_cells(runner, run_info, found, refs, reuse, total=total, quiet=quiet, stream=stream)


def _run_cells(runner: EvalRunner, run_info: RunInfo, found: Services, refs: list[str],
               reuse: Mapping[str, TracedAnswer], *, total: int, quiet: bool, stream: ResultStream | None) -> None:
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
        if stream is not None:
            stream.write(result)

    runner.on_result = advance

    async def go(env: dict[str, str]) -> None:
        async with new_client(network) as client:
            await runner.run(run_info, Caller(client), env, writer, reuse)

    env = found.target_env(refs)
    with progress, eval_run_settings():
        asyncio.run(go(env))


def _conclude(args: argparse.Namespace, store: EvalStore, run_info: RunInfo, outputs: Sequence[tuple[Path, str]],
              suite: Suite, failed_code: int | None) -> int:
    """Judge the run (its gate, the comparison), store the verdict with it, then report what is stored; a failed
    run exits ``--exit-code-failed``, else ``failed_code`` (promptfoo's variable), else 1."""
    from workbench.core.evals.report_data import conclude
    from workbench.core.evals.report_outputs import suite_names

    compare = store.previous(run_info) if args.compare == "last" else (
        store.run(args.compare) if args.compare else None)
    if args.compare == "last" and compare is None:
        print("workbench: no earlier run of this suite to compare with", file=sys.stderr)
    failed = args.exit_code_failed if args.exit_code_failed is not None else failed_code
    codes = EXIT_CODES if failed is None else {**EXIT_CODES, "failed": failed}
    report = conclude(store, run_info, compare=compare, exit_codes=codes,
                      min_cache_hit_ratio=suite.min_cache_hit_ratio)
    run = report.run
    reasons = list(run.failures or ())
    _write_reports(report, args.report, args.out)
    _write_outputs(report, outputs, suite_names(suite))
    if args.json:
        print(json.dumps(_summary(report, reasons)))
    else:
        _print_summary(report, reasons)
    if run.verdict == "stopped":
        print(f"stopped ({run.stop_reason}): resume with `workbench eval {args.suite} --resume {run.id}`",
              file=sys.stderr)
    return codes[run.verdict or "failed"]


def _summary(report: RunReport, reasons: Sequence[str]) -> dict[str, object]:
    run = report.run
    return {"run": run.id, "suite": run.suite, "status": run.status, "stop_reason": run.stop_reason,
            "runs": report.runs, "passes": report.passes, "pass_rate": round(report.pass_rate, 4),
            "gate": report.gate, "cost_usd": None if report.cost_usd is None else round(report.cost_usd, 6),
            "unpriced_calls": report.unpriced, "failures": list(reasons),
            "regressions": len(report.diff.regressions) if report.diff else 0, "verdict": run.verdict,
            "compared_with": run.compared_with, "exit_code": run.exit_code}


def _write_reports(report: RunReport, formats: Sequence[str], out: str | None) -> None:
    from workbench.core.errors import WorkbenchError
    from workbench.core.evals.report_formats import render, report_filename
    from workbench.core.folders import private_folder

    for fmt in dict.fromkeys(formats):
        text = render(report, fmt)
        if out is None:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
            continue
        path = Path(out).expanduser() / report_filename(report, fmt)
        try:
            private_folder(path.parent)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise WorkbenchError(f"cannot write {path}: {exc.strerror}",
                                 f"the run is stored: `workbench evals show {report.run.id} --format {fmt}` "
                                 "prints the report") from None
        print(f"wrote {path}", file=sys.stderr)


def _write_outputs(report: RunReport, outputs: Sequence[tuple[Path, str]], names: SuiteNames) -> None:
    """``-o``: each file but the streamed ``.jsonl``, written in full."""
    from workbench.core.evals.report_outputs import write_output

    for path, fmt in outputs:
        if fmt != "jsonl":
            write_output(path, report, fmt, names)
        print(f"wrote {path}", file=sys.stderr)


def _print_summary(report: RunReport, reasons: Sequence[str]) -> None:
    from workbench.cli._shared import console as make_console
    from workbench.cli.render import eval_failures, eval_table, print_table
    from workbench.figures import usd

    console = make_console(stderr=True)
    print_table(eval_table(report), console)
    for line in eval_failures(report):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    verdict = "[red]FAILED[/]" if reasons else "[green]passed[/]"
    if report.cost_usd is None:
        cost = "cost unknown"
    else:
        cost = usd(report.cost_usd) + (f" (+{report.unpriced} calls of unknown cost)" if report.unpriced else "")
    console.print(f"{verdict}: {report.passes}/{report.runs} passed ({report.pass_rate:.0%}), {cost}, "
                  f"run {report.run.id}")
    for reason in reasons:
        console.print(f"  • {reason}", markup=False)
