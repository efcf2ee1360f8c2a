"""The app as its screens and widgets see it: one typed handle (:func:`workbench_of`, ``WorkbenchScreen.workbench``)
to the services (:class:`workbench.services.Services`: settings, target environment and servers, traces), the
network process and the races.

:class:`WorkbenchBase` knows no screen (``ui/app.py`` adds them), so screens and widgets import it without a
cycle. Blocking methods say so: call them from a thread worker.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.notifications import SeverityLevel
from textual.reactive import var
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from workbench.core.errors import WorkbenchError, printable
from workbench.services import Services
from workbench.ui import targets as ui_targets
from workbench.ui.messages import RaceFinished, RaceStarted, TracesWritten
from workbench.ui.races import RaceRun, RaceSource

if TYPE_CHECKING:
    from workbench.core.config import Settings
    from workbench.core.netproc import NetworkProcess, RemoteRace
    from workbench.core.request import ChatRequest
    from workbench.core.sessions import PromptRef
    from workbench.core.traces.store import TraceStore
    from workbench.core.traces.writer import TraceWriter

class WorkbenchBase(App[None]):
    """The app's state and services (screens live in :class:`workbench.ui.app.WorkbenchApp`)."""

    race: var[RemoteRace | None] = var(None, init=False)
    """The latest race started here: the race screen follows it."""
    traced: var[int] = var(0, init=False)
    """How many calls this app has committed to the trace log: the traces screen follows it."""

    def __init__(self, env: Mapping[str, str] | None = None, targets: Sequence[str] | None = None,
                 settings: Settings | None = None, config_path: str | None = None) -> None:
        super().__init__()
        self.services = Services({**os.environ, **(env or {})}, settings=settings, config_path=config_path,
                                 announce=self.tell)
        """Settings, target environment (the fake and local model servers started on first use, stopped on exit),
        trace writer and store: the same services as the CLI's."""
        self.env: dict[str, str] = self.services.env
        self.initial_targets = list(targets) if targets else None
        self.preselected: list[str] = []
        """The targets the editor preselected when none were given (:meth:`pick_targets`)."""
        self.config_path = config_path
        self._lock = threading.RLock()
        self._net: NetworkProcess | None = None
        self.store_lock = threading.Lock()
        self.last_request: ChatRequest | None = None
        self.last_targets: list[str] = []
        self.last_source = RaceSource()
        self.last_run: RaceRun | None = None
        """The latest race started here (what ``race`` shows), for saving it as a session or promoting it."""
        self.runs: list[RaceRun] = []
        """Every race started here, traced once finished."""
        self.traced_ids: list[str] = []
        self._shut_down = False

    # -- lifecycle ---------------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, name="warm-up")
    def warm_up(self) -> None:
        """After first paint (the editor calls it): settings (prices), the network process, the trace writer."""
        self.settings()
        self.network()
        with contextlib.suppress(WorkbenchError):  # reported when a race is traced
            self.writer()
        gc.freeze()  # what warm-up loaded lives as long as the app: keep it out of full collections

    def on_unmount(self) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Cancel running races, trace what finished, close the writer, the network process and the fake server."""
        if self._shut_down:
            return
        self._shut_down = True
        race = self.race
        if race is not None and not race.done:
            with contextlib.suppress(Exception):
                race.cancel()
                race.wait(timeout=3)
        with contextlib.suppress(Exception):
            for run in self.runs:
                if run.race.done:
                    self.trace(run)
        with self._lock:
            net, self._net = self._net, None
        for closer in (net, self.services):
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer.close()

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        report_failed_worker(self, event)

    # -- services (thread-safe, lazily created) ----------------------------------------------------

    def settings(self) -> Settings:
        return self.services.settings()

    def network(self) -> NetworkProcess:
        with self._lock:
            if self._shut_down:
                raise WorkbenchError("the app is closing")
            if self._net is None:
                from workbench.core.netproc import NetworkProcess

                self._net = NetworkProcess(on_respawn=self._network_respawned)
            return self._net

    def _network_respawned(self, reason: str) -> None:
        """Called (from the thread starting a race) when the network process had stopped and a new one started."""
        self.tell(f"{reason}\na new network process was started for this race", severity="warning", timeout=8)

    def writer(self) -> TraceWriter:
        return self.services.writer()

    def store(self) -> TraceStore:
        return self.services.store()

    def workspace(self) -> Path:
        """The workspace folder: the configuration's, else the current directory (blocking: settings)."""
        return self.services.workspace()

    def target_env(self, targets: Sequence[str]) -> dict[str, str]:
        """The environment ``targets`` resolve against (blocking: it may start the fake or local model server)."""
        return self.services.target_env(targets)

    def default_targets(self) -> list[str]:
        """The targets given to the app, else those the editor preselected."""
        return self.initial_targets or self.preselected

    def pick_targets(self) -> tuple[list[str], str | None]:
        """Targets to preselect when none were given, and what to tell about them: the same targets and the same
        line as ``workbench run`` without ``-m`` (:meth:`workbench.services.Services.default_targets`); none and
        the reason when there is none (blocking: discovery of local servers)."""
        try:
            chosen = self.services.default_targets(lambda env, specs: ui_targets.discover_targets(env, specs))
        except WorkbenchError as exc:
            return [], f"{exc.message}\nnext: {exc.hint}" if exc.hint else exc.message
        return chosen.targets, chosen.notice

    # -- notifications -------------------------------------------------------------------------------

    def report(self, exc: BaseException, what: str = "", *, severity: SeverityLevel = "error") -> None:
        """A notification with the next step; safe from any thread."""
        if isinstance(exc, WorkbenchError):
            message = f"{what}{exc}" + (f"\nnext: {exc.hint}" if exc.hint else "")
        else:
            message = f"{what}{type(exc).__name__}: {exc}\nnext: retry; if it persists, report it"
        self.tell(message, severity=severity, timeout=8)

    def tell(self, message: str, *, severity: SeverityLevel = "information", timeout: float = 5) -> None:
        """A notification; safe from any thread. The message is plain text (an error may hold ``[key]`` or a
        reply's escape sequences): no markup, control characters shown as placeholders."""
        message = printable(message)
        if threading.current_thread() is threading.main_thread():
            self.notify(message, severity=severity, timeout=timeout, markup=False)
        elif self.is_running:
            with contextlib.suppress(Exception):
                self.call_from_thread(self.notify, message, severity=severity, timeout=timeout, markup=False)

    # -- races -------------------------------------------------------------------------------------

    def start_race(self, request: ChatRequest, targets: Sequence[str], source: RaceSource | None = None) -> None:
        """Cancel the race still running, then start this one (in a thread: settings, servers, network process)."""
        if self.race is not None and not self.race.done:
            self.race.cancel()
        self.last_request, self.last_targets = request, list(targets)
        self.last_source = source or RaceSource()
        self._start_race(request, list(targets), self.last_source)

    @work(thread=True, exit_on_error=False, group="start-race", name="start-race")
    def _start_race(self, request: ChatRequest, targets: list[str], source: RaceSource) -> None:
        settings = self.settings()
        config = settings.config
        targets = [config.expand(t.strip()) for t in targets if t.strip()]
        providers = config.provider_specs()
        prompt = self._pin(source)
        env = self.target_env(targets)
        network = settings.network(env)
        for warning in network.warnings():
            self.tell(warning, severity="warning", timeout=8)
        from workbench.services import CallTracer

        context = RaceRun.context_of(prompt, source.session)
        tracer = CallTracer(self.services, context, len(targets),
                            lambda exc: self.report(exc, "calls not traced: "))
        race = self.network().race(request, targets, env, settings.policies, settings.prices, providers, network,
                                   on_settled=tracer)
        run = RaceRun(race, request, targets, prompt, source.variables, source.session, tracer)
        self.post_message(RaceStarted(run))

    def _pin(self, source: RaceSource) -> PromptRef | None:
        """The prompt version a race links to: the working file pinned (as ``workbench run --prompt NAME`` does),
        when the editor still holds it; a session's version; or none."""
        if source.prompt_name is None:
            return source.prompt
        from workbench.core.prompts import pin
        from workbench.core.sessions import PromptRef

        try:
            prompt, version = pin(self.workspace(), source.prompt_name)
        except WorkbenchError as exc:
            self.report(exc, "race not linked to a prompt version: ", severity="warning")
            return None
        if prompt.model_copy(update=source.edited) != prompt:
            self.tell(f"the editor differs from prompt {prompt.name} v{version.number}: this race is not linked to "
                      "a version\nnext: ctrl+s in the editor saves it as a new version", severity="warning")
            return None
        return PromptRef(name=prompt.name, version=version.number)

    def follow(self, run: RaceRun) -> None:
        """Show ``run`` (the race screen follows :attr:`race`) and trace it once it finishes."""
        self.runs.append(run)
        self.race, self.last_run = run.race, run

        def finished() -> None:
            with contextlib.suppress(RuntimeError):  # the app's loop closed meanwhile: shutdown traces it
                self.post_message(RaceFinished(run))

        run.race.add_done_callback(finished)

    def trace(self, run: RaceRun) -> list[str]:
        """A finished race's trace ids, once (none when not traced). Each call was handed to the trace writer
        as soon as it was final (:class:`~workbench.services.CallTracer`), so quitting or a crash loses none."""
        if run.traced:
            return []
        run.traced = True
        from workbench.services import CallTracer

        records = run.race.records
        if run.tracer is None:  # a race not started here: traced now, whole
            run.tracer = CallTracer(self.services, run.context_of(run.prompt, run.session), len(records),
                                    lambda exc: self.report(exc, "calls not traced: "))
        for index, record in enumerate(records):  # any call its race did not hand over as it ended
            if run.tracer.ids[index] is None:
                run.tracer(index, record)
        return run.trace_ids

    def trace_and_commit(self, run: RaceRun) -> None:
        """Trace a finished race (once), then commit it in a worker (``TracesWritten`` follows)."""
        ids = self.trace(run)
        if ids:
            self.flush_traces(ids)

    @work(thread=True, exit_on_error=False, group="flush-traces", name="flush-traces")
    def flush_traces(self, ids: list[str]) -> None:
        """Commit what the writer holds, then say which calls it was."""
        self.writer().flush()
        self.post_message(TracesWritten(ids))


def workbench_of(node: DOMNode) -> WorkbenchBase:
    """The typed app of any screen or widget of the TUI."""
    app = node.app
    assert isinstance(app, WorkbenchBase), "a workbench widget runs in the workbench app"
    return app


def report_failed_worker(node: DOMNode, event: Worker.StateChanged) -> None:
    """A worker's uncaught error as a notification with the next step, never a crash."""
    if event.state is WorkerState.ERROR and event.worker.error is not None:
        workbench_of(node).report(event.worker.error)


class WorkbenchScreen(Screen[None]):
    """A screen of the TUI: the typed app (:attr:`workbench`), and its workers' errors as notifications.

    Every screen has the keys to the others and to the help first, so the footer shows them at any width."""

    BINDINGS: ClassVar[list[BindingType]] = [  # priority: over a widget's own f-key (TextArea's f6 select-line)
        Binding("f1", "app.toggle_help", "Help", priority=True),
        Binding("f2", "app.goto('editor')", "Editor", priority=True),
        Binding("f3", "app.goto('race')", "Race", priority=True),
        Binding("f4", "app.goto('traces')", "Traces", priority=True),
        Binding("f5", "app.goto('keys')", "Keys & models", priority=True),
        Binding("f6", "app.goto('evals')", "Evals", priority=True),
    ]

    @property
    def workbench(self) -> WorkbenchBase:
        return workbench_of(self)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        report_failed_worker(self, event)

