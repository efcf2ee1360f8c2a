"""``workbench load TARGET... --rate R/s|--times K|--concurrency N``: a load test of real requests through the call
policy, with a live view (rich on a terminal, a plain line a second otherwise) and a report
(:mod:`workbench.core.load`).

Exit codes: 0 the schedule ran to its end; 2 bad usage; 3 stopped at ``--max-cost``; 130 interrupted (Ctrl-C or
SIGTERM: no new call, the calls in flight cancelled and traced as such, the report written all the same).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.cli._shared import EXIT_INTERRUPTED, EXIT_OK, known_targets, settings, sigterm_interrupts, variables
from workbench.core.errors import ConfigError, WorkbenchError

if TYPE_CHECKING:
    from rich.console import RenderableType

    from workbench.core.config import Settings
    from workbench.core.load.generator import LoadRun, Planned
    from workbench.core.load.report import LoadReport
    from workbench.core.load.schedule import Shape
    from workbench.core.load.stats import Snapshot
    from workbench.core.traces.store import TraceStore
    from workbench.services import Services

EXIT_STOPPED = 3
_PLAIN_EVERY_S = 1.0
_LIVE_EVERY_S = 0.25


def _workspace(config: Settings) -> Path:
    from workbench.cli._shared import workspace_dir

    return config.workspace or workspace_dir()


def _plan(args: argparse.Namespace, config: Settings, targets: Sequence[str]) -> tuple[list[Planned], str]:
    """The requests to send, and what they are, in words."""
    from workbench.core.load import sources

    given = variables(args.var)
    if args.from_traces is not None:
        if given:
            raise ConfigError("--var fills the variables of --prompt or --suite", "drop it with --from-traces")
        from workbench.core.traces.filters import parse_filters

        filters = parse_filters(args.from_traces)
        with _trace_store(config) as store:
            plan = sources.from_traces(store, filters, targets)
        return plan, f"{len(plan) // len(targets)} traced requests ({args.from_traces.strip() or 'all'})"
    if args.suite is not None:
        plan = sources.from_suite(Path(args.suite), _workspace(config), targets, given)
        return plan, f"{len(plan)} rendered requests of the suite {args.suite}"
    plan = sources.from_prompt(_workspace(config), args.prompt, targets, given)
    return plan, f"the prompt {args.prompt}"


@contextlib.contextmanager
def _trace_store(config: Settings) -> Iterator[TraceStore]:
    from workbench.core.traces.store import TraceStore

    path = config.trace_path(os.environ)
    if not path.exists():
        raise ConfigError(f"no trace log at {path}: no traced call to replay or measure",
                          "trace calls first (workbench run, workbench proxy), or use --suite or --prompt")
    store = TraceStore(path)
    try:
        yield store
    finally:
        store.close()


def _rate_times(args: argparse.Namespace, config: Settings) -> tuple[float, str]:
    """``--times K``: K times the peak minute of the traced calls the source matches; the rate and how it was got."""
    from workbench.core.load.sources import peak_per_minute
    from workbench.core.traces.filters import Filters, parse_filters

    if args.from_traces is not None:
        filters, what = parse_filters(args.from_traces), "the calls --from-traces matches"
    elif args.prompt is not None:
        filters, what = Filters(prompt=args.prompt.partition("@")[0]), f"the prompt {args.prompt}'s calls"
    else:
        raise ConfigError("--times multiplies the peak rate of traced calls", "use it with --from-traces or --prompt, "
                          "or give --rate")
    with _trace_store(config) as store:
        peak = peak_per_minute(store, filters)
    if peak == 0:
        raise ConfigError(f"the trace log holds none of {what}: no peak rate to multiply", "give --rate instead")
    return args.times * peak / 60, f"{args.times:g} × the peak minute of {what} ({peak} calls)"


def _shape(args: argparse.Namespace, config: Settings) -> tuple[Shape, str | None]:
    from workbench.core.load.schedule import ClosedLoop, OpenLoop

    if args.duration <= 0:
        raise ConfigError(f"--duration {args.duration:g}s: expected more than 0", "e.g. --duration 60s")
    if args.concurrency is not None:
        if args.ramp:
            raise ConfigError("--ramp shapes an arrival rate", "use it with --rate or --times, not --concurrency")
        return ClosedLoop(args.concurrency, args.duration), None
    if args.ramp > args.duration:
        raise ConfigError(f"--ramp {args.ramp:g}s is longer than --duration {args.duration:g}s",
                          "the ramp is part of the duration")
    rate, why = (args.rate, None) if args.rate is not None else _rate_times(args, config)
    return OpenLoop(rate, args.duration, args.ramp), why


def _reports(paths: Sequence[str]) -> list[tuple[Path, str]]:
    """``--report`` files and their formats, checked before anything is sent."""
    from workbench.core.load.report_formats import format_of

    out = []
    for text in paths:
        path = Path(text).expanduser()
        fmt = format_of(text)
        if not path.parent.is_dir():
            raise ConfigError(f"--report {text}: the folder {path.parent} does not exist", "create it first")
        out.append((path, fmt))
    return out


def run(args: argparse.Namespace) -> int:
    with sigterm_interrupts():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from workbench.core.load.generator import LoadRun
    from workbench.core.race import prepare
    from workbench.services import Services

    config = settings(args)
    targets = [config.config.expand(t.strip()) for t in args.targets]
    known_targets(targets, config.config.provider_specs())
    reports = _reports(args.report)
    shape, why = _shape(args, config)
    plan, source = _plan(args, config, targets)
    if why is not None:
        source += f"; rate {why}"
    prepare(targets, config.prices)  # settling each call is instant afterwards
    load = LoadRun(plan, shape, policies=config.policies, prices=config.prices,
                   providers=config.config.provider_specs(), max_cost=args.max_cost)
    for warning in config.network(os.environ).warnings():
        print(warning, file=sys.stderr)
    with Services(settings=config) as found:
        env = found.target_env(targets)
        _callable(targets, env, config)
        found.writer()  # opened before the run: a trace log that cannot be opened stops it here
        if not args.json:
            print(f"load {load.id}: {shape.describe()}, {source}, to {', '.join(dict.fromkeys(targets))}; traced "
                  f"with the tag load:{load.id}", file=sys.stderr)
        interrupted = _execute(load, found, env, quiet=args.json)
    from workbench.core.load.report import report_of

    report = report_of(load, targets, source)
    _write(report, reports)
    if args.json:
        from workbench.core.load.report_formats import as_json

        print(as_json(report))
    else:
        _print_summary(report)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_STOPPED if load.stop_reason is not None else EXIT_OK


def _callable(targets: Sequence[str], env: Mapping[str, str], config: Settings) -> None:
    """A :class:`ConfigError` for the first target that cannot be called at all (no key, a bad base URL): a load
    test of calls that all fail before they are sent tests nothing."""
    from workbench.core.registry import resolve
    from workbench.core.request import ModelRef

    for target in dict.fromkeys(targets):
        resolve(ModelRef.parse(target), env, config.config.provider_specs())


def _execute(load: LoadRun, found: Services, env: Mapping[str, str], *, quiet: bool) -> bool:
    """Run the load test with its live view; True when it was interrupted (Ctrl-C, SIGTERM)."""
    from workbench.core.httpclient import LOAD_LIMITS, new_client
    from workbench.core.resilience.caller import Caller
    from workbench.process_settings import eval_run_settings

    network = found.settings().network(os.environ)
    writer = found.writer()
    view = _view(quiet)

    async def go() -> None:
        async with new_client(network, limits=LOAD_LIMITS) as client:
            task = asyncio.create_task(load.run(Caller(client), env, writer))
            try:
                while not task.done():
                    await asyncio.wait([task], timeout=view.every_s)
                    view.show(load)
            except asyncio.CancelledError:  # Ctrl-C: the run cancels and traces its calls before the client closes
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise
            await task

    with view, eval_run_settings():
        try:
            asyncio.run(go())
        except KeyboardInterrupt:
            return True
    return False


class _View:
    """The live view: nothing (``--json``), a rich panel on a terminal, else a plain line a second on stderr."""

    def __init__(self, every_s: float, show: Callable[[Snapshot, str | None], None] | None = None,
                 live: contextlib.AbstractContextManager[object] | None = None) -> None:
        self.every_s = every_s
        self._show, self._live = show, live

    def show(self, load: LoadRun) -> None:
        if self._show is not None:
            self._show(load.stats.snapshot(), load.stop_reason)

    def __enter__(self) -> _View:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)


def _p3(values: dict[str, float | None]) -> str:
    return "/".join("–" if values[p] is None else f"{values[p]:,.0f}" for p in ("p50", "p95", "p99")) + " ms"


def _line(snap: Snapshot, stop: str | None) -> str:
    errors = ", ".join(f"{kind} {n}" for kind, n in snap.errors.items()) or "none"
    late = "" if snap.lateness_ms["p99"] is None else f" · late p99 {snap.lateness_ms['p99']:,.1f} ms"
    return (f"{snap.elapsed_s:6.1f}s sent {snap.sent} ({snap.rate:,.1f}/s) in flight {snap.in_flight} · "
            f"TTFT {_p3(snap.ttft_ms)} · latency {_p3(snap.latency_ms)} · {snap.tokens_per_s:,.0f} tok/s · "
            f"429s {snap.rate_limited} · errors {errors} · ${snap.spend_usd:.4f}{late}"
            + (f" · stopping: {stop}" if stop else ""))


def _panel(snap: Snapshot, stop: str | None) -> RenderableType:
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    errors = ", ".join(f"{kind} {n}" for kind, n in snap.errors.items()) or "none"
    rows = [("elapsed", f"{snap.elapsed_s:,.1f} s"), ("sent", f"{snap.sent} ({snap.rate:,.1f}/s now)"),
            ("in flight", str(snap.in_flight)), ("done", str(snap.done)), ("TTFT p50/p95/p99", _p3(snap.ttft_ms)),
            ("latency p50/p95/p99", _p3(snap.latency_ms)), ("tokens/s", f"{snap.tokens_per_s:,.0f}"),
            ("429s", str(snap.rate_limited)), ("errors", errors), ("spend", f"${snap.spend_usd:.4f}")]
    if snap.lateness_ms["p99"] is not None:
        rows.append(("schedule late p50/p99", f"{snap.lateness_ms['p50']:,.1f}/{snap.lateness_ms['p99']:,.1f} ms"))
    if stop:
        rows.append(("stopping", stop))
    for name, value in rows:
        table.add_row(name, value)
    return table


def _view(quiet: bool) -> _View:
    if quiet:
        return _View(_PLAIN_EVERY_S)
    if not sys.stderr.isatty():
        def plain(snap: Snapshot, stop: str | None) -> None:
            print(_line(snap, stop), file=sys.stderr, flush=True)

        return _View(_PLAIN_EVERY_S, plain)
    from rich.live import Live

    from workbench.cli._shared import console

    live = Live(console=console(stderr=True), refresh_per_second=4, transient=True)

    def panel(snap: Snapshot, stop: str | None) -> None:
        live.update(_panel(snap, stop))

    return _View(_LIVE_EVERY_S, panel, live)


def _write(report: LoadReport, reports: Sequence[tuple[Path, str]]) -> None:
    from workbench.core.load.report_formats import render

    for path, fmt in reports:
        try:
            path.write_text(render(report, fmt), encoding="utf-8")
        except OSError as exc:
            raise WorkbenchError(f"cannot write {path}: {exc.strerror}",
                                 f"the calls are in the trace log: workbench traces list --tag {report.tag}") from None
        print(f"wrote {path}", file=sys.stderr)


def _print_summary(report: LoadReport) -> None:
    from workbench.core.load.report_formats import summary_rows

    width = max(len(name) for name, _ in summary_rows(report))
    for name, value in summary_rows(report):
        print(f"{name:<{width}}  {value}")
