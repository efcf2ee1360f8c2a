"""The Textual face: ``WorkbenchApp``, its screens' shared services (:class:`workbench.services.Services`: settings,
target environment and servers, traces) and the network process.

Thin: every piece of work is a call into :mod:`workbench.core`. Heavy modules (httpx2 via the network
process, tiktoken encodings, sqlite/sqlmodel, genai-prices) load in thread workers after first paint.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import ModalScreen

from workbench.core.errors import WorkbenchError
from workbench.services import Services

if TYPE_CHECKING:
    from workbench.core.config import Settings
    from workbench.core.netproc import NetworkProcess, RemoteRace
    from workbench.core.request import ChatRequest
    from workbench.core.sessions import PromptRef
    from workbench.core.traces.store import TraceStore
    from workbench.core.traces.writer import CallContext, TraceWriter

FALLBACK_TARGETS = ("fake/demo@ttft=300,tps=40", "fake-anthropic/demo@ttft=150,tps=60")
"""The editor's targets when there is no key, no local model and no configured target: the fake server's demo."""
KEY_HINT = "add a key with f5 Keys or `workbench keys set openai`"


@dataclass(frozen=True)
class RaceSource:
    """Where the editor's request came from: a prompt file (pinned to a version when the race starts, if the
    editor still holds it), a saved session (its prompt version and name), or neither (typed text)."""

    prompt_name: str | None = None
    edited: dict[str, Any] = field(default_factory=dict)
    """The prompt-file fields the editor holds; the race is linked to the pinned version when they equal it."""
    prompt: PromptRef | None = None
    variables: dict[str, str] = field(default_factory=dict)
    session: str | None = None


@dataclass
class RaceRun:
    """A race the app started: what it sent (targets expanded), where that came from, its calls' trace ids."""

    race: RemoteRace
    request: ChatRequest
    targets: list[str]
    prompt: PromptRef | None
    variables: dict[str, str]
    session: str | None
    trace_ids: list[str] = field(default_factory=list)

    def context(self) -> CallContext:
        from workbench.core.traces.writer import CallContext

        prompt = self.prompt
        return CallContext(prompt_name=prompt.name if prompt else None,
                           prompt_version=prompt.version if prompt else None, session_id=self.session)


class WorkbenchCommands(Provider):
    """The command palette: every main action of the app."""

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app = self.app
        assert isinstance(app, WorkbenchApp)
        return app.palette_commands()

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


def _editor() -> Any:
    from workbench.ui.editor import EditorScreen

    return EditorScreen()


def _race() -> Any:
    from workbench.ui.race import RaceScreen

    return RaceScreen()


def _traces() -> Any:
    from workbench.ui.traces import TracesScreen

    return TracesScreen()


def _keys() -> Any:
    from workbench.ui.keys import KeysScreen

    return KeysScreen()


def _evals() -> Any:
    from workbench.ui.evals import EvalsScreen

    return EvalsScreen()


class WorkbenchApp(App[None]):
    TITLE = "workbench"
    SUB_TITLE = "race · read back · compare"
    COMMANDS: ClassVar = App.COMMANDS | {WorkbenchCommands}
    SCREENS: ClassVar = {"editor": _editor, "race": _race, "traces": _traces, "keys": _keys, "evals": _evals}
    BINDINGS: ClassVar = [
        Binding("f2", "goto('editor')", "Editor"),
        Binding("f3", "goto('race')", "Race"),
        Binding("f4", "goto('traces')", "Traces"),
        Binding("f5", "goto('keys')", "Keys & models"),
        Binding("f6", "goto('evals')", "Evals", show=False, priority=True),  # over TextArea's select-line
        Binding("ctrl+t", "toggle_theme", "Light/dark"),
        Binding("f1", "help", "Help"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

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
        self.race: RemoteRace | None = None
        self.last_request: ChatRequest | None = None
        self.last_targets: list[str] = []
        self.last_source = RaceSource()
        self.last_run: RaceRun | None = None
        """The latest race started here (what ``race`` shows), for saving it as a session or promoting it."""
        self._untraced: list[RaceRun] = []
        self.traced_ids: list[str] = []
        self._shut_down = False

    # -- lifecycle ---------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.push_screen("editor")
        self.set_interval(0.2, self.trace_finished_races)

    def warm_up(self) -> None:
        """Called by the editor after its first paint."""
        self.run_safe(self._warm_up, thread=True, name="warm-up")

    def _warm_up(self) -> None:
        """After first paint: settings (prices), the network process, the trace writer."""
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
            self.trace_finished_races(final=True)
        with self._lock:
            net, self._net = self._net, None
        for closer in (net, self.services):
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer.close()

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

    def server_url(self, name: str, start: Callable[[contextlib.ExitStack], str]) -> str:
        """The URL of the child-process server ``name``, started on first use and kept until the app exits
        (blocking: call it from a thread)."""
        return self.services.server_url(name, start)

    def default_targets(self) -> list[str]:
        """The targets given to the app, else those the editor preselected."""
        return self.initial_targets or self.preselected

    def pick_targets(self) -> tuple[list[str], str | None]:
        """Targets to preselect when none were given (:func:`~workbench.core.targets.default_targets` over the app's
        environment and keyring keys) and a one-line hint when they are not a keyed provider's (blocking:
        discovery of local servers)."""
        from workbench.core.targets import KEYED_DEFAULTS
        from workbench.ui import keys

        try:
            chosen = self.services.default_targets(lambda env, specs: keys.discover_targets(env, specs))
        except WorkbenchError:
            return list(FALLBACK_TARGETS), f"no API key and no local model: racing the fake server; {KEY_HINT}"
        if chosen.notice is None or set(chosen.targets) & set(KEYED_DEFAULTS.values()):
            return chosen.targets, None
        return chosen.targets, f"no API key: racing {', '.join(chosen.targets)} on this machine; {KEY_HINT}"

    # -- errors ------------------------------------------------------------------------------------

    def report(self, exc: BaseException, what: str = "", *, severity: str = "error") -> None:
        """A notification with the next step; safe from any thread."""
        if isinstance(exc, WorkbenchError):
            message = f"{what}{exc}" + (f"\nnext: {exc.hint}" if exc.hint else "")
        else:
            message = f"{what}{type(exc).__name__}: {exc}\nnext: retry; if it persists, report it"
        self.tell(message, severity=severity, timeout=8)

    def tell(self, message: str, *, severity: str = "information", timeout: float = 5) -> None:
        """A notification; safe from any thread."""
        if threading.current_thread() is threading.main_thread():
            self.notify(message, severity=severity, timeout=timeout)  # type: ignore[arg-type]
        elif self.is_running:
            with contextlib.suppress(Exception):
                self.call_from_thread(self.notify, message, severity=severity, timeout=timeout)

    def run_safe(self, fn: Callable[[], Any], *, thread: bool = False, **kwargs: Any) -> Any:
        """Run ``fn`` in a worker; any error becomes a notification, never a crash."""
        if thread:
            def body() -> Any:
                try:
                    return fn()
                except Exception as exc:
                    self.report(exc)
                    return None
        else:
            async def body() -> Any:  # type: ignore[misc]
                try:
                    result = fn()
                    if hasattr(result, "__await__"):
                        result = await result
                    return result
                except Exception as exc:
                    self.report(exc)
                    return None
        return self.run_worker(body, thread=thread, exit_on_error=False, **kwargs)

    # -- races -------------------------------------------------------------------------------------

    def start_race(self, request: ChatRequest, targets: Sequence[str], source: RaceSource | None = None) -> None:
        if self.race is not None and not self.race.done:
            self.race.cancel()
        self.last_request, self.last_targets = request, list(targets)
        self.last_source = source or RaceSource()
        self.run_safe(partial(self._start_race, request, list(targets), self.last_source), thread=True,
                      name="start-race")

    def target_env(self, targets: Sequence[str]) -> dict[str, str]:
        """The environment ``targets`` resolve against: the app's, keyring keys for their providers, and the URLs
        of the fake server and of the local model server (started on first use when a target needs one and no
        URL is set; they run until the app exits). Blocking: call it from a thread."""
        return self.services.target_env(targets)

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
        race = self.network().race(request, targets, env, settings.policies, settings.prices, providers, network)
        run = RaceRun(race, request, targets, prompt, source.variables, source.session)
        self.call_from_thread(self._race_started, run)

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

    def _race_started(self, run: RaceRun) -> None:
        race = run.race
        self.race, self.last_run = race, run
        self._untraced.append(run)
        if self.screen is not self.get_screen("race"):
            self.switch_screen("race")

    def cancel_race(self) -> None:
        if self.race is not None and not self.race.done:
            self.race.cancel()
            self.notify("race cancelled: partial replies are kept and traced")

    def rerun(self) -> None:
        if self.last_request is None:
            self.notify("nothing to re-run yet", severity="warning", timeout=4)
            return
        self.start_race(self.last_request, self.last_targets, self.last_source)

    def trace_finished_races(self, final: bool = False) -> None:
        done = [r for r in self._untraced if r.race.done]
        if not done:
            return
        self._untraced = [r for r in self._untraced if not r.race.done]
        try:
            writer = self.writer()
        except WorkbenchError as exc:
            self.report(exc, "calls not traced: ")
            return
        for run in done:
            context = run.context()
            run.trace_ids = [writer.write(record, context) for record in run.race.records]
        ids = [call_id for run in done for call_id in run.trace_ids]
        if final:
            return
        self.run_safe(partial(self._flush_traces, writer, ids), thread=True, name="flush-traces")

    def _flush_traces(self, writer: TraceWriter, ids: list[str]) -> None:
        writer.flush()
        self.call_from_thread(self._traces_written, ids)

    def _traces_written(self, ids: list[str]) -> None:
        self.traced_ids.extend(ids)
        screen = self.get_screen("traces") if self.is_screen_installed("traces") else None
        if screen is not None and screen.is_current:
            screen.reload()  # type: ignore[attr-defined]

    # -- navigation and palette ----------------------------------------------------------------------

    async def action_goto(self, name: str) -> None:
        if self.screen is not self.get_screen(name):
            await self.switch_screen(name)

    def action_help(self) -> None:
        """A modal listing the current screen's bindings and the global ones."""
        from workbench.ui.modals import HelpScreen

        screen = self.screen
        if isinstance(screen, ModalScreen):
            return
        name = next((n for n in self.SCREENS if self._installed_screens.get(n) is screen), type(screen).__name__)
        screen_bindings = [b for bs in screen._bindings.key_to_bindings.values() for b in bs]
        global_bindings = [b for bs in self._bindings.key_to_bindings.values() for b in bs]
        self.push_screen(HelpScreen(name, screen_bindings, global_bindings))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme != "textual-light" else "textual-dark"

    async def replay(self, request: ChatRequest, targets: Sequence[str]) -> None:
        await self.action_goto("editor")
        await self.get_screen("editor").load_request(request, targets)  # type: ignore[attr-defined]

    def open_session(self) -> None:
        """A picker of ``sessions/*.yaml``; the one picked goes into the editor (request and targets)."""
        self.run_safe(self._read_sessions, thread=True, name="read-sessions")

    def _read_sessions(self) -> None:
        from rich.text import Text

        from workbench.core.sessions import load_sessions
        from workbench.ui.modals import PickScreen

        sessions, errors = load_sessions(self.workspace())
        for error in errors:
            self.report(error)
        if not sessions:
            self.tell("no session to open in sessions/\nnext: save a finished race with s on the race screen",
                      severity="warning")
            return
        found = [session for _, session in sessions]
        labels = [Text.assemble(s.name, (f"  {s.prompt.name} v{s.prompt.version}" if s.prompt else "  typed prompt",
                                         "dim"), (f" · {len(s.targets)} targets", "dim")) for s in found]
        self.call_from_thread(self.push_screen, PickScreen("Open a session (sessions/*.yaml)", labels),
                              partial(self._session_picked, found))

    def _session_picked(self, sessions: list[Any], index: int | None) -> None:
        if index is not None:
            self.run_safe(partial(self._load_session, sessions[index]), name="load-session")

    async def _load_session(self, session: Any) -> None:
        await self.action_goto("editor")
        await self.get_screen("editor").load_session(session)  # type: ignore[attr-defined]

    def palette_commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        editor, race = self.get_screen("editor"), self.get_screen("race")
        return [
            ("Run race", "race the editor's prompt on every target (ctrl+r)", editor.action_run),  # type: ignore[attr-defined]
            ("Re-run last race", "send the last request again", self.rerun),
            ("Cancel race", "stop every stream still running (escape on the race screen)", self.cancel_race),
            ("Save prompt", "the editor back to its prompt file, as a new version (ctrl+s in the editor)",
             editor.action_save_prompt),  # type: ignore[attr-defined]
            ("Save session", "the finished race as sessions/NAME.yaml (s on the race screen)",
             race.action_save_session),  # type: ignore[attr-defined]
            ("Open session", "a saved session's request and targets into the editor", self.open_session),
            ("Promote to test case", "a race pane's reply as a test of an eval suite (p on the race screen)",
             race.action_promote),  # type: ignore[attr-defined]
            ("Open editor", "prompt editor with the live token and cost meter (f2)",
             partial(self.run_action, "goto('editor')")),
            ("Open race", "the streaming panes of the last race (f3)", partial(self.run_action, "goto('race')")),
            ("Open traces", "browse, search and replay traced calls (f4)",
             partial(self.run_action, "goto('traces')")),
            ("Open keys & models", "API keys (set or delete) and the targets with price, context, circuit (f5)",
             partial(self.run_action, "goto('keys')")),
            ("Open evals", "pick a suite, see its pre-flight, run it into a live grid, diff with the last run (f6)",
             partial(self.run_action, "goto('evals')")),
            ("Help: key bindings", "every binding of this screen and the global ones (f1, ?)", self.action_help),
            ("Toggle light/dark theme", "switch between textual-light and textual-dark (ctrl+t)",
             self.action_toggle_theme),
        ]


def run_tui(env: Mapping[str, str] | None = None, config_path: str | None = None) -> int:
    app = WorkbenchApp(env=env, config_path=config_path)
    try:
        app.run()
    finally:
        app.shutdown()
    return 0
