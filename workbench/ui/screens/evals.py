"""Evals: pick a suite, see its pre-flight, run it into a live grid (tests × targets), read a cell's
gradings, and diff the run against the suite's previous one.

The run never touches the UI's event loop: :class:`EvalRunner` runs in a thread worker on its own
asyncio loop with its own HTTP client and trace writer, so UI rendering cannot delay a first token.
Results go through a queue that a 10 Hz render tick drains into the grid while a run lasts; escape cancels
the run's task on its loop, and the runner stores the run as stopped (resumable with
``workbench eval SUITE --resume RUN``).

Batch mode (the switch, ``b``) runs as ``workbench eval SUITE --batch`` does
(:class:`~workbench.core.evals.batch_run.BatchEval`): the plan and each batch's state are shown while the batches
wait, then the cells left run online. Escape leaves the batches running at the providers; ``R`` resumes the suite's
latest stopped run (collecting its batches), as ``workbench evals resume RUN`` does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    OptionList,
    ProgressBar,
    Static,
    Switch,
    TabbedContent,
    TabPane,
)

from workbench.core.errors import WorkbenchError
from workbench.core.workspace import suite_files
from workbench.figures import batch_event_text, batch_plan_text
from workbench.ui.eval_render import cell_detail, cell_text, diff_text, preflight_text, run_summary
from workbench.ui.eval_run_control import BatchPhase, RunControl
from workbench.ui.prompt_text import split_targets
from workbench.ui.render import fmt_usd
from workbench.ui.screens.team_switching import TeamSwitchingScreen

if TYPE_CHECKING:
    from workbench.core.evals.batch_run import BatchEvent, BatchPlan
    from workbench.core.evals.model import CellKey, CellResult, RunInfo, RunReport, Suite, SuiteTarget
    from workbench.core.evals.run_store import EvalStore
    from workbench.core.evals.runner import EvalRunner, Preflight
    from workbench.core.netproc import NetworkProcess
    from workbench.core.network import Network
    from workbench.core.traces.writer import TraceWriter

REFRESH_S = 0.1
"""How often arrived results are drawn into the grid (10 Hz)."""
DEFAULT_CONCURRENCY = 8


class EvalsScreen(TeamSwitchingScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "run", "Run suite"),
        Binding("escape", "cancel", "Cancel run"),
        Binding("b", "toggle_batch", "Batch"),
        Binding("R", "resume", "Resume run"),
        Binding("g", "show_tab('grid')", "Grid"),
        Binding("d", "show_tab('diff')", "Diff"),
        Binding("ctrl+l", "reload", "Reload suites"),
        Binding("t", "toggle_store", "Local/team", show=False),
    ]
    DEFAULT_CSS = """
    EvalsScreen #evals-main { height: 1fr; }
    EvalsScreen #side { width: 44; border-right: solid $primary; }
    EvalsScreen #suites { height: 1fr; }
    EvalsScreen #preflight { height: auto; padding: 0 1; }
    EvalsScreen #buttons { height: auto; }
    EvalsScreen #batch-row { height: auto; }
    EvalsScreen #batch-row Label { padding: 1 1 0 0; }
    EvalsScreen #batches { display: none; height: auto; max-height: 8; padding: 0 1; }
    EvalsScreen Label { padding: 0 1; color: $text-muted; }
    EvalsScreen.-narrow #side { width: 32; }
    EvalsScreen #eval-targets { margin: 0 1; }
    EvalsScreen #progress-row { height: auto; padding: 0 1; }
    EvalsScreen #progress { display: none; width: 1fr; }
    EvalsScreen #progress > Horizontal { width: 1fr; }
    EvalsScreen #progress Bar { width: 1fr; }
    EvalsScreen #progress PercentageStatus { width: auto; min-width: 6; }  /* "100%" whole */
    EvalsScreen #progress-status { width: 1fr; height: 1; }
    EvalsScreen #summary { height: auto; max-height: 6; padding: 0 1; }
    EvalsScreen #grid { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.suites: list[Path] = []
        self.workspace: Path | None = None
        self.selected: Path | None = None
        self.preflight: Preflight | None = None
        self.control: RunControl | None = None
        """Set while a run goes on."""
        self.run_info: RunInfo | None = None
        self.suite_path = ""
        self.report: RunReport | None = None
        self.results: dict[CellKey, list[CellResult]] = {}
        self.total = 0
        self.done_count = self.failed = 0
        self.cost_usd = 0.0
        self._arrived: collections.deque[CellResult] = collections.deque()
        self._rows: dict[tuple[str, str], str] = {}
        self._columns: dict[str, str] = {}
        self._cells: dict[tuple[str, str], CellKey] = {}
        """(row key, column key) → the cell shown there."""
        self._timer: Timer | None = None
        self.shown: CellKey | None = None
        """The cell in the Cell tab (redrawn as its results arrive)."""
        self._batches: dict[str, str] = {}
        """The batch phase as shown: the plan, then each batch's latest line (by batch id)."""
        """Local or team (``t``): the Diff tab compares the run with the suite's previous local run, or with the
        team store's latest run of the suite (CI's, a teammate's)."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="evals-main"):
            with Vertical(id="side"):
                yield Label("Suites (evals/, promptfooconfig.yaml)")
                yield OptionList(id="suites")
                yield Label("Targets (empty: the suite's)")
                yield Input("", id="eval-targets", placeholder="provider/model, …")
                yield Label("Pre-flight")
                yield Static("Select a suite.", id="preflight")
                with Horizontal(id="buttons"):
                    yield Button("Run (r)", id="run", variant="primary")
                    yield Button("Cancel (esc)", id="cancel", variant="error", disabled=True)
                with Horizontal(id="batch-row"):
                    yield Switch(False, id="batch")
                    yield Label("Batch API (b)")
            with Vertical(id="results"):
                with Vertical(id="progress-row"):  # the bar shows once a run starts
                    yield ProgressBar(total=None, show_eta=False, id="progress")
                    yield Static("no run yet", id="progress-status", markup=False)
                yield Static("", id="summary", markup=False)
                yield Static("", id="batches", markup=False)
                with TabbedContent(initial="grid", id="tabs"):
                    with TabPane("Grid", id="grid"):
                        yield DataTable(id="grid-table", cursor_type="cell", zebra_stripes=True)
                    with TabPane("Cell", id="cell"), VerticalScroll():
                        yield Static("Press enter on a cell of the grid to see it here.", id="cell-detail",
                                     markup=False)
                    with TabPane("Diff", id="diff"), VerticalScroll():
                        yield Static("Run the suite to compare it with its previous run.", id="diff-text",
                                     markup=False)
        yield Footer()

    def on_screen_resume(self) -> None:
        self.action_reload()

    def on_unmount(self) -> None:
        if self.control is not None:
            self.control.cancel()
        self.switch.close()

    # -- the local/team switch -------------------------------------------------------------------------

    def store_switched(self) -> None:
        self.sub_title = self.switch.label()
        self.compare()

    @work(thread=True, exclusive=True, exit_on_error=False, group="eval-compare", name="eval-compare")
    def compare(self) -> None:
        """The Diff tab for the run shown (else the latest local run): against the previous local run of its suite,
        or, switched to the team store, against the team's latest other run of it."""
        app = self.workbench
        try:
            text = self._comparison()
        except Exception as exc:
            app.report(exc, "cannot compare: ")
            return
        app.call_from_thread(self.query_one("#diff-text", Static).update, text)

    def _comparison(self) -> Text:
        from workbench.core.evals.diff import diff_runs
        from workbench.core.evals.model import RunReport
        from workbench.core.evals.report_data import cells_of, report_for
        from workbench.core.evals.run_store import EvalStore, default_path
        from workbench.core.team.queries import TeamRuns

        app = self.workbench
        settings = app.settings()
        store = EvalStore(default_path(settings.trace_path(app.env)), settings.redactor())
        try:
            try:
                run = store.run(self.run_info.id if self.run_info is not None else "last")
            except WorkbenchError:
                return Text("No local run yet: run a suite (r) to compare it.", style="dim")
            reader = self.switch.reader
            if reader is None:
                return diff_text(report_for(store, run, compare=store.previous(run)))
            report = RunReport(run, cells_of(store, run))

            def theirs(conn: Any) -> tuple[str, RunReport | None]:
                team = TeamRuns(conn)
                other = next((r for r in team.runs(run.suite, 2) if r.id != run.id), None)
                if other is None:
                    return "", None
                who = team.pushed_by(other)
                cells = cells_of(team, other)
                return f"the team's latest run (pushed by {who.user}@{who.host})", RunReport(other, cells)

            against, base = reader.read(theirs)
            if base is None:
                return Text(f"No other run of {run.suite} in the team store yet: push one (workbench sync --push, "
                            "eval --sync).", style="dim")
            report.diff = diff_runs(base, report)
            return diff_text(report, against)
        finally:
            store.close()

    # -- suites and pre-flight -----------------------------------------------------------------------

    def action_reload(self) -> None:
        self.read_suites()

    @work(thread=True, exit_on_error=False, group="eval-suites", name="eval-suites")
    def read_suites(self) -> None:
        app = self.workbench
        workspace = app.workspace()
        app.call_from_thread(self._show_suites, workspace, suite_files(workspace))

    def _show_suites(self, workspace: Path, suites: list[Path]) -> None:
        self.workspace, self.suites = workspace, suites
        options = self.query_one("#suites", OptionList)
        options.clear_options()
        options.add_options([str(path.relative_to(workspace)) for path in suites])
        if not suites:
            self.query_one("#preflight", Static).update(
                f"No suite in {workspace}: add evals/NAME.yaml (prompts, targets, tests).")
            return
        index = suites.index(self.selected) if self.selected in suites else 0
        options.highlighted = index
        options.focus()

    @on(OptionList.OptionHighlighted, "#suites")
    def _suite_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index < len(self.suites):
            self.select(self.suites[event.option_index])

    def select(self, path: Path) -> None:
        """Load ``path`` and compute its pre-flight in a thread (warnings and errors as notifications)."""
        self.selected, self.preflight = path, None
        self.query_one("#preflight", Static).update(Text("computing…", style="dim"))
        self.compute_preflight(path, self.targets())

    def targets(self) -> list[str]:
        """The targets typed (as ``workbench eval -t`` takes them; the editor's parser): none, the suite's own."""
        return split_targets(self.query_one("#eval-targets", Input).value)

    @on(Input.Changed, "#eval-targets")
    def _targets_changed(self) -> None:
        if self.selected is not None:
            self.select(self.selected)

    @work(thread=True, exclusive=True, exit_on_error=False, group="preflight", name="eval-preflight")
    def compute_preflight(self, path: Path, targets: list[str]) -> None:
        app = self.workbench
        try:
            suite, store = self._load(path, targets=targets)
            try:
                pre = self._preflight(suite, store, targets)
            finally:
                store.close()
        except Exception as exc:
            app.report(exc, "cannot load the suite: ")
            app.call_from_thread(self._show_preflight, path, None, 0)
            return
        app.call_from_thread(self._show_preflight, path, pre, suite.concurrency or DEFAULT_CONCURRENCY)

    def _load(self, path: Path, *, warn: bool = True, targets: Sequence[str] = ()) -> tuple[Suite, EvalStore]:
        """The suite (its warnings notified when ``warn``; it need not name targets when ``targets`` are typed) and
        the eval store beside the trace log (blocking)."""
        from workbench.core.evals.run_store import EvalStore, default_path
        from workbench.core.evals.suite import load_suite

        app = self.workbench
        settings = app.settings()
        suite = load_suite(path, self.workspace or path.parent, targets_given=bool(targets))
        for warning in suite.warnings if warn else ():
            app.tell(f"suite warning: {warning}\nnext: remove it from the suite (the run ignores it)",
                     severity="warning", timeout=8)
        return suite, EvalStore(default_path(settings.trace_path(app.env)), settings.redactor())

    def _runner(self, suite: Suite, store: EvalStore, targets: Sequence[str]) -> EvalRunner:
        """The suite's runner, on the ``targets`` typed (else the suite's)."""
        from workbench.core.evals.model import SuiteTarget
        from workbench.core.evals.promptfoo_env import promptfoo_limits
        from workbench.core.evals.run_clock import paced
        from workbench.core.evals.runner import EvalRunner, RunOptions

        settings = self.workbench.settings()
        chosen = tuple(SuiteTarget(settings.config.expand(t), t, written_id=t) for t in targets) or None
        concurrency = paced(suite.limits, suite.concurrency or DEFAULT_CONCURRENCY)
        options = RunOptions(repeat=suite.repeat, concurrency=concurrency, targets=chosen,
                             use_cache=suite.limits.cache, limits=promptfoo_limits(suite, self.workbench.env))
        return EvalRunner(suite, store, options=options, policies=settings.policies, prices=settings.prices,
                          providers=settings.config.provider_specs(), on_result=self._arrived.append)

    def _preflight(self, suite: Suite, store: EvalStore, targets: Sequence[str]) -> Preflight:
        """Calls, cached cells, tokens, cost range; time from each target's median latency in the trace log."""
        from workbench.core.evals.runner import preflight, typical_latencies

        app = self.workbench
        with app.store_lock:
            latency = typical_latencies(app.store())
        runner = self._runner(suite, store, targets)
        return preflight(runner.plan(), runner.prices, concurrency=runner.options.concurrency, store=store,
                         latency_ms=latency, delay_ms=runner.options.limits.delay_ms)

    def _show_preflight(self, path: Path, pre: Preflight | None, concurrency: int) -> None:
        if path != self.selected:
            return
        self.preflight = pre
        self.query_one("#preflight", Static).update(
            preflight_text(pre, concurrency) if pre is not None else Text("the suite did not load", style="red"))

    # -- the run -------------------------------------------------------------------------------------

    @on(Button.Pressed, "#run")
    def _run_pressed(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_toggle_batch(self) -> None:
        switch = self.query_one("#batch", Switch)
        switch.value = not switch.value

    def action_run(self) -> None:
        self._start(resume=False)

    def action_resume(self) -> None:
        """Resume the selected suite's latest stopped run: its batches collected (waited for), the rest run."""
        self._start(resume=True)

    def _start(self, *, resume: bool) -> None:
        app = self.workbench
        if self.control is not None:
            app.report(WorkbenchError("a run is in progress", "wait for it, or press escape to cancel it"))
            return
        if self.selected is None:
            app.report(WorkbenchError("no suite selected", "pick a suite in the list (evals/*.yaml)"))
            return
        control = RunControl()
        self.control = control
        self.query_one("#run", Button).disabled = True
        self.query_one("#cancel", Button).disabled = False
        self.query_one("#progress-status", Static).update("starting…")
        self.run_suite(self.selected, control, self.targets(), self.query_one("#batch", Switch).value, resume)

    @work(thread=True, exit_on_error=False, group="eval-run", name="eval-run")
    def run_suite(self, path: Path, control: RunControl, targets: list[str], batch: bool = False,
                  resume: bool = False) -> None:
        app = self.workbench
        report = None
        try:
            report = self._execute(path, control, targets, batch, resume)
        except Exception as exc:
            app.report(exc, "the eval run failed: ")
        if app.is_running:
            with contextlib.suppress(Exception):  # the app closed meanwhile
                app.call_from_thread(self._finished, report)

    def _execute(self, path: Path, control: RunControl, targets: list[str], batch: bool, resume: bool) -> RunReport:
        """Blocking, in a thread: run the suite (``batch``: its batch phase first; ``resume``: its latest stopped
        run, in batches when it has some) on a private event loop, then judge it against the previous run."""
        from workbench.core.evals.report_data import conclude
        from workbench.core.traces.writer import TraceWriter

        app = self.workbench
        settings = app.settings()
        suite, store = self._load(path, warn=False, targets=targets)  # notified with the pre-flight
        try:
            runner = self._runner(suite, store, targets)
            columns = runner.options.targets or suite.targets
            env = app.target_env([t.ref for t in columns] + ([suite.judge] if suite.judge else []))
            run = runner.resume(self._stopped(store, suite)) if resume else runner.new_run()
            batch = batch or bool(store.batches(run.id))
            total = len(suite.tests) * len(suite.prompts) * len(columns) * runner.options.repeat
            app.call_from_thread(self._started, suite, run, total, columns)
            self._arrived.extend(result for result, _ in store.results(run.id))  # a resumed run's finished cells
            writer = TraceWriter(settings.trace_path(app.env), settings.redactor())
            phase = BatchPhase(app, self._batch_plan, self._batch_event) if batch else None
            try:
                asyncio.run(self._go(runner, run, env, writer, control, app.network(), settings.network(env), phase))
            except asyncio.CancelledError:
                if run.status == "running":  # stopped in the batch phase: its batches run on at the providers
                    run.status, run.stop_reason = "stopped", "interrupted"
                    store.finish(run)
            finally:
                writer.close()
            report = conclude(store, run, compare=store.previous(run),  # stored with the run, as the CLI's are
                              min_cache_hit_ratio=suite.min_cache_hit_ratio)
        finally:
            store.close()
        self._write_outputs(suite, report)
        return report

    def _write_outputs(self, suite: Suite, report: RunReport) -> None:
        """The suite's ``outputPath`` files (relative to the workspace), as ``workbench eval`` writes them."""
        from workbench.core.evals.report_outputs import output_format, suite_names, write_output

        app = self.workbench
        for text in suite.output_paths:
            path = Path(text).expanduser()
            path = path if path.is_absolute() else (self.workspace or Path.cwd()) / path
            try:
                write_output(path, report, output_format(text), suite_names(suite))
            except WorkbenchError as exc:
                app.report(exc, "outputPath: ")
                continue
            app.tell(f"wrote {path}", timeout=5)

    @staticmethod
    def _stopped(store: EvalStore, suite: Suite) -> RunInfo:
        """The suite's latest stopped run (a :class:`WorkbenchError` when it has none)."""
        for run in store.runs(suite.name):
            if run.status == "stopped":
                return run
        raise WorkbenchError(f"no stopped run of suite '{suite.name}' to resume", "run it (r) instead")

    @staticmethod
    async def _go(runner: EvalRunner, run: RunInfo, env: dict[str, str], writer: TraceWriter,
                  control: RunControl, net: NetworkProcess, network: Network, phase: BatchPhase | None) -> None:
        """The batch phase when asked for (the batch APIs over this loop's own client), then the cells left: their
        calls stream through the network process, as a race's do: their TTFTs are as honest."""
        from workbench.core.evals.batch_run import BatchEval
        from workbench.core.httpclient import new_client
        from workbench.core.remote_caller import RemoteCaller

        control.attach()
        answers = {}
        if phase is not None:
            async with new_client(network) as client:
                batches = BatchEval(runner, run, client, env, writer, on_event=phase.event)
                plan = await batches.plan({})
                phase.plan(plan)
                answers = await batches.answers({}, plan)
        await runner.run(run, RemoteCaller(net, network), env, writer, answers)

    def _started(self, suite: Suite, run: RunInfo, total: int, targets: Sequence[SuiteTarget] = ()) -> None:
        self.run_info, self.suite_path, self.total, self.report = run, suite.path, total, None
        self.results = {}
        self.done_count = self.failed = 0
        self.cost_usd = 0.0
        self._arrived.clear()
        self._build_grid(suite, targets or suite.targets)
        if self.shown is not None:
            self._show_cell(self.shown)  # the new run has no result for it yet
        progress = self.query_one("#progress", ProgressBar)
        progress.update(total=total, progress=0)
        progress.display = True
        self.query_one("#summary", Static).update("")
        self._batches = {}
        self._show_batches()
        self.query_one("#diff-text", Static).update("The diff appears when the run ends.")
        self._show_progress()
        self._timer = self.set_interval(REFRESH_S, self._drain)

    def _build_grid(self, suite: Suite, targets: Sequence[SuiteTarget]) -> None:
        from workbench.core.evals.model import CellKey

        table = self.query_one("#grid-table", DataTable)
        table.clear(columns=True)
        several = len(suite.prompts) > 1
        table.add_column("test", key="test")
        if several:
            table.add_column("prompt", key="prompt")
        self._columns = {target.label: f"t{i}" for i, target in enumerate(targets)}
        for target in targets:
            table.add_column(target.label, key=self._columns[target.label])
        self._rows, self._cells = {}, {}
        pending = Text("…", style="dim")
        for test in suite.tests:
            for prompt in suite.prompts:
                row = f"r{len(self._rows)}"
                self._rows[(test.key, prompt.label)] = row
                for target in targets:
                    self._cells[(row, self._columns[target.label])] = CellKey(test.key, prompt.label, target.label)
                label = [test.key, prompt.label] if several else [test.key]
                table.add_row(*label, *[pending] * len(targets), key=row)

    def _drain(self) -> None:
        """Draw the results that arrived since the last tick (each changed cell once)."""
        from workbench.core.evals.stats import summarise

        changed: dict[CellKey, None] = {}
        while self._arrived:
            result = self._arrived.popleft()
            self.results.setdefault(result.key, []).append(result)
            changed[result.key] = None
            self.done_count += 1
            self.failed += not result.passed
            self.cost_usd += result.observation.cost_usd or 0.0
        if not changed:
            return
        table = self.query_one("#grid-table", DataTable)
        for key in changed:
            row, column = self._rows.get((key.test, key.prompt)), self._columns.get(key.target)
            if row is not None and column is not None:
                table.update_cell(row, column, cell_text(summarise(self.results[key], {})[0]), update_width=True)
        self.query_one("#progress", ProgressBar).update(progress=self.done_count)
        self._show_progress()
        if self.shown in changed:
            self._show_cell(self.shown)

    def _show_progress(self) -> None:
        self.query_one("#progress-status", Static).update(
            f"{self.done_count}/{self.total} · {self.failed} failed · {fmt_usd(self.cost_usd)}")

    def _finished(self, report: RunReport | None) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._drain()
        self.control = None
        self.query_one("#run", Button).disabled = False
        self.query_one("#cancel", Button).disabled = True
        if report is None:
            self.query_one("#progress-status", Static).update("the run failed (see the notification)")
            return
        self.report = report
        self.run_info = report.run
        self.query_one("#summary", Static).update(run_summary(report, self.suite_path))
        self.query_one("#diff-text", Static).update(diff_text(report))
        if report.run.status != "done" and self._batches:
            self.notify(f"run {report.run.id} stopped: its batches run on at the providers; resume it here (R) or "
                        f"with `workbench evals resume {report.run.id}`", severity="warning", timeout=8)
        elif report.run.status != "done":
            self.notify(f"run {report.run.id} stopped: resume it with "
                        f"`workbench eval {self.suite_path} --resume {report.run.id}`", severity="warning", timeout=8)
        if self.selected is not None:
            self.select(self.selected)  # the cache changed: refresh the pre-flight
        if self.switch.on:  # the Diff tab compares with the team's run
            self.compare()

    # -- the batch phase -----------------------------------------------------------------------------

    def _batch_plan(self, plan: BatchPlan) -> None:
        self._batches["plan"] = batch_plan_text(plan)
        self._show_batches()

    def _batch_event(self, event: BatchEvent) -> None:
        """A batch's latest line replaces its previous one."""
        key = event.batch.batch_id if event.batch is not None else f"target {event.target}"
        self._batches[key] = batch_event_text(event)
        self._show_batches()

    def _show_batches(self) -> None:
        shown = self.query_one("#batches", Static)
        shown.update("\n".join(self._batches.values()))
        shown.display = bool(self._batches)

    def action_cancel(self) -> None:
        if self.control is None:
            self.notify("no eval run to cancel", timeout=3)
            return
        self.control.cancel()
        self.query_one("#progress-status", Static).update("stopping: calls in flight are cancelled…")

    # -- cell detail and tabs --------------------------------------------------------------------------

    @on(DataTable.CellSelected, "#grid-table")
    def _cell_selected(self, event: DataTable.CellSelected) -> None:
        key = self._cells.get((str(event.cell_key.row_key.value), str(event.cell_key.column_key.value)))
        if key is None:
            return
        self._show_cell(key)
        self.action_show_tab("cell")

    def _show_cell(self, key: CellKey) -> None:
        self.shown = key
        self.query_one("#cell-detail", Static).update(cell_detail(key, self.results.get(key, [])))

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab
