"""The Textual face: ``WorkbenchApp`` — its screens, key bindings, command palette, help, and the handlers of
what the screens tell it (:mod:`workbench.ui.messages`). Its state and services are
:class:`~workbench.ui.base.WorkbenchBase`'s.

Thin: every piece of work is a call into :mod:`workbench.core`. Heavy modules (httpx2 via the network
process, tiktoken encodings, sqlite/sqlmodel, genai-prices) load in thread workers after first paint; the
screens other than the editor are imported when first shown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.screen import Screen

from workbench.ui.base import WorkbenchBase
from workbench.ui.messages import (
    RaceFinished,
    RaceRequested,
    RaceStarted,
    ReplayRequested,
    SessionPicked,
    SessionSaved,
    TracesWritten,
)
from workbench.ui.races import RaceRun, RaceSource
from workbench.ui.screens.editor import EditorScreen

if TYPE_CHECKING:
    from workbench.core.request import ChatRequest
    from workbench.core.sessions import Session

__all__ = ["RaceRun", "RaceSource", "WorkbenchApp", "run_tui"]

Command = tuple[str, str, Callable[[], Any]]


class WorkbenchCommands(Provider):
    """The command palette: every main action of the app."""

    def _commands(self) -> list[Command]:
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


def _race() -> Screen[None]:
    from workbench.ui.screens.race import RaceScreen

    return RaceScreen()


def _traces() -> Screen[None]:
    from workbench.ui.screens.traces import TracesScreen

    return TracesScreen()


def _keys() -> Screen[None]:
    from workbench.ui.screens.keys import KeysScreen

    return KeysScreen()


def _evals() -> Screen[None]:
    from workbench.ui.screens.evals import EvalsScreen

    return EvalsScreen()


class WorkbenchApp(WorkbenchBase):
    TITLE = "workbench"
    SUB_TITLE = "race · read back · compare"
    COMMANDS: ClassVar = App.COMMANDS | {WorkbenchCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # noqa: RUF012 (typed by Textual as it is)
    """Screens narrower than 110 columns have the class ``-narrow`` (the editor stacks its columns)."""
    SCREENS: ClassVar[dict[str, Callable[[], Screen[Any]]]] = {
        "editor": EditorScreen, "race": _race, "traces": _traces, "keys": _keys, "evals": _evals}
    BINDINGS: ClassVar[list[BindingType]] = [  # the screens' keys are in WorkbenchScreen: first in the footer
        Binding("ctrl+t", "toggle_theme", "Light/dark"),
        Binding("question_mark", "toggle_help", "Help", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def on_mount(self) -> None:
        self.push_screen("editor")

    @property
    def editor(self) -> EditorScreen:
        return self.get_screen("editor", EditorScreen)

    # -- what the screens tell ----------------------------------------------------------------------------

    @on(RaceRequested)
    def _race_requested(self, event: RaceRequested) -> None:
        self.start_race(event.request, event.targets, event.source)

    @on(RaceStarted)
    async def _race_started(self, event: RaceStarted) -> None:
        self.follow(event.run)
        await self.action_goto("race")

    @on(RaceFinished)
    def _race_finished(self, event: RaceFinished) -> None:
        self.trace_and_commit(event.run)

    @on(TracesWritten)
    def _traces_written(self, event: TracesWritten) -> None:
        self.traced_ids.extend(event.ids)
        self.traced += len(event.ids)

    @on(ReplayRequested)
    async def _replay_requested(self, event: ReplayRequested) -> None:
        await self.replay(event.request, event.targets)

    @on(SessionPicked)
    async def _session_picked(self, event: SessionPicked) -> None:
        await self.action_goto("editor")
        await self.editor.load_session(event.session)

    @on(SessionSaved)
    def _session_saved(self, event: SessionSaved) -> None:
        if self.last_run is event.run:  # a re-run of a saved race is traced under the session's name
            self.last_source = dataclasses.replace(self.last_source, session=event.name)
        self.notify(f"saved session {event.path}", timeout=4)

    # -- races --------------------------------------------------------------------------------------------

    def action_cancel_race(self) -> None:
        self.cancel_race()

    def cancel_race(self) -> None:
        if self.race is not None and not self.race.done:
            self.race.cancel()
            self.notify("race cancelled: partial replies are kept and traced")

    def action_rerun(self) -> None:
        self.rerun()

    def rerun(self) -> None:
        if self.last_request is None:
            self.notify("nothing to re-run yet", severity="warning", timeout=4)
            return
        self.start_race(self.last_request, self.last_targets, self.last_source)

    async def replay(self, request: ChatRequest, targets: list[str]) -> None:
        await self.action_goto("editor")
        await self.editor.load_request(request, targets)

    def open_session(self) -> None:
        """A picker of ``sessions/*.yaml``; the one picked goes into the editor (request and targets)."""
        self._read_sessions()

    @work(thread=True, exit_on_error=False, group="read-sessions", name="read-sessions")
    def _read_sessions(self) -> None:
        from rich.text import Text

        from workbench.core.sessions import load_sessions
        from workbench.ui.screens.modals import PickScreen

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
                              partial(self._pick_session, found))

    def _pick_session(self, sessions: list[Session], index: int | None) -> None:
        if index is not None:
            self.post_message(SessionPicked(sessions[index]))

    # -- navigation, help, palette --------------------------------------------------------------------------

    def _race_action(self, action: str) -> None:
        """Run one of the race screen's actions there (from the palette)."""
        async def run() -> None:
            await self.action_goto("race")
            await self.screen.run_action(action)

        self.call_later(run)

    async def action_goto(self, name: str) -> None:
        if self.screen is not self.get_screen(name):
            await self.switch_screen(name)

    def action_toggle_help(self) -> None:
        """Textual's help panel (the focused widget's help and every binding in force), shown or hidden."""
        from textual.widgets import HelpPanel  # imports the Markdown widget: ~50 ms kept off the first paint

        try:
            self.screen.query_one(HelpPanel)
        except NoMatches:
            self.action_show_help_panel()
        else:
            self.action_hide_help_panel()

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme != "textual-light" else "textual-dark"

    def palette_commands(self) -> list[Command]:
        editor, on_race = self.editor, self._race_action
        return [
            ("Run race", "race the editor's prompt on every target (ctrl+r)", editor.action_run),
            ("Re-run last race", "send the last request again", self.rerun),
            ("Cancel race", "stop every stream still running (escape on the race screen)", self.cancel_race),
            ("Save prompt", "the editor back to its prompt file, as a new version (ctrl+s in the editor)",
             editor.action_save_prompt),
            ("Save session", "the finished race as sessions/NAME.yaml (s on the race screen)",
             partial(on_race, "save_session")),
            ("Open session", "a saved session's request and targets into the editor", self.open_session),
            ("Promote to test case", "a race pane's reply as a test of an eval suite (p on the race screen)",
             partial(on_race, "promote")),
            ("Open editor", "prompt editor with the live token and cost meter (f2)",
             partial(self.run_action, "goto('editor')")),
            ("Open race", "the streaming panes of the last race (f3)", partial(self.run_action, "goto('race')")),
            ("Open traces", "browse, search and replay traced calls (f4)",
             partial(self.run_action, "goto('traces')")),
            ("Open keys & models", "API keys (set or delete) and the targets with price, context, circuit (f5)",
             partial(self.run_action, "goto('keys')")),
            ("Open evals", "pick a suite, see its pre-flight, run it into a live grid, diff with the last run (f6)",
             partial(self.run_action, "goto('evals')")),
            ("Help: key bindings", "the focused widget's help and every binding in force (f1, ?)",
             self.action_toggle_help),
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
