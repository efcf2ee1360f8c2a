"""The Textual face: ``WorkbenchApp`` and the services its screens share (settings, network, traces).

Thin: every piece of work is a call into :mod:`workbench.core`. Heavy modules (httpx via the network
process, tiktoken encodings, sqlite/sqlmodel, genai-prices) load in thread workers after first paint.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import ModalScreen

from workbench.core.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.core.config import Settings
    from workbench.core.netproc import NetworkProcess, RemoteRace
    from workbench.core.request import ChatRequest
    from workbench.core.traces.store import TraceStore
    from workbench.core.traces.writer import TraceWriter

FALLBACK_TARGETS = ("fake/demo@ttft=300,tps=40", "fake-anthropic/demo@ttft=150,tps=60")


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
        self.env: dict[str, str] = {**os.environ, **(env or {})}
        self.initial_targets = list(targets) if targets else None
        self.config_path = config_path
        self._settings = settings
        self._lock = threading.RLock()
        self._net: NetworkProcess | None = None
        self._writer: TraceWriter | None = None
        self._store: TraceStore | None = None
        self._fake: contextlib.ExitStack | None = None
        self._fake_url: str | None = None
        self.store_lock = threading.Lock()
        self.race: RemoteRace | None = None
        self.last_request: ChatRequest | None = None
        self.last_targets: list[str] = []
        self._untraced: list[RemoteRace] = []
        self.traced_ids: list[str] = []
        self._shut_down = False

    # -- lifecycle ---------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.push_screen("editor")
        self.set_interval(0.2, self._trace_finished_races)

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
            self._trace_finished_races(final=True)
        with self._lock:
            writer, net, store, fake = self._writer, self._net, self._store, self._fake
            self._writer = self._net = self._store = self._fake = None
        for closer in (writer, net, store, fake):
            if closer is not None:
                with contextlib.suppress(Exception):
                    closer.close()

    # -- services (thread-safe, lazily created) ----------------------------------------------------

    def settings(self) -> Settings:
        with self._lock:
            if self._settings is None:
                from pathlib import Path

                from workbench.core.config import load_settings

                self._settings = load_settings(Path(self.config_path) if self.config_path else None)
            return self._settings

    def network(self) -> NetworkProcess:
        with self._lock:
            if self._shut_down:
                raise WorkbenchError("the app is closing")
            if self._net is None:
                from workbench.core.netproc import NetworkProcess

                self._net = NetworkProcess()
            return self._net

    def writer(self) -> TraceWriter:
        with self._lock:
            if self._writer is None:
                from workbench.core.traces.writer import TraceWriter

                settings = self.settings()
                self._writer = TraceWriter(settings.trace_path(self.env), settings.redactor())
            return self._writer

    def store(self) -> TraceStore:
        with self._lock:
            if self._store is None:
                from workbench.core.traces.store import TraceStore

                self._store = TraceStore(self.settings().trace_path(self.env))
            return self._store

    def fake_url(self) -> str:
        with self._lock:
            if self._fake_url is None:
                from workbench.fakeserver.process import fake_server_process

                stack = contextlib.ExitStack()
                server = stack.enter_context(fake_server_process())
                self._fake, self._fake_url = stack, server.base_url
            return self._fake_url

    def default_targets(self) -> list[str]:
        if self.initial_targets:
            return self.initial_targets
        if self._settings is not None and self._settings.config.defaults.targets:
            return list(self._settings.config.defaults.targets)
        return list(FALLBACK_TARGETS)

    # -- errors ------------------------------------------------------------------------------------

    def report(self, exc: BaseException, what: str = "") -> None:
        """A notification with the next step; safe from any thread."""
        if isinstance(exc, WorkbenchError):
            message = f"{what}{exc}" + (f"\nnext: {exc.hint}" if exc.hint else "")
        else:
            message = f"{what}{type(exc).__name__}: {exc}\nnext: retry; if it persists, report it"
        if threading.current_thread() is threading.main_thread():
            self.notify(message, severity="error", timeout=8)
        elif self.is_running:
            with contextlib.suppress(Exception):
                self.call_from_thread(self.notify, message, severity="error", timeout=8)

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

    def start_race(self, request: ChatRequest, targets: Sequence[str]) -> None:
        if self.race is not None and not self.race.done:
            self.race.cancel()
        self.last_request, self.last_targets = request, list(targets)
        self.run_safe(partial(self._start_race, request, list(targets)), thread=True, name="start-race")

    def target_env(self, targets: Sequence[str]) -> dict[str, str]:
        """The environment ``targets`` resolve against: the app's, keyring keys for their providers, and the
        fake server's URL when a ``fake*`` target needs one (blocking: call it from a thread)."""
        from workbench.core.keys import with_stored_keys

        providers = self.settings().config.provider_specs()
        env = with_stored_keys(self.env, sorted({t.partition("/")[0].lower() for t in targets}), providers)
        if any(t.lower().startswith("fake") for t in targets) and not env.get("WORKBENCH_FAKE_URL"):
            env["WORKBENCH_FAKE_URL"] = self.fake_url()
        return env

    def _start_race(self, request: ChatRequest, targets: list[str]) -> None:
        settings = self.settings()
        config = settings.config
        targets = [config.expand(t.strip()) for t in targets if t.strip()]
        providers = config.provider_specs()
        env = self.target_env(targets)
        race = self.network().race(request, targets, env, settings.policies, settings.prices, providers)
        self.call_from_thread(self._race_started, race)

    def _race_started(self, race: RemoteRace) -> None:
        self.race = race
        self._untraced.append(race)
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
        self.start_race(self.last_request, self.last_targets)

    def _trace_finished_races(self, final: bool = False) -> None:
        done = [r for r in self._untraced if r.done]
        if not done:
            return
        self._untraced = [r for r in self._untraced if not r.done]
        try:
            writer = self.writer()
        except WorkbenchError as exc:
            self.report(exc, "calls not traced: ")
            return
        ids = [writer.write(record) for race in done for record in race.records]
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

    def palette_commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        def run_from_editor() -> None:
            self.get_screen("editor").action_run()  # type: ignore[attr-defined]

        return [
            ("Run race", "race the editor's prompt on every target (ctrl+r)", run_from_editor),
            ("Re-run last race", "send the last request again", self.rerun),
            ("Cancel race", "stop every stream still running (escape on the race screen)", self.cancel_race),
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
