"""The race screen: one pane per target, all streaming at once.

The screen follows the app's ``race`` (a reactive). No per-token messages: ONE timer (30 Hz, the render
tick) reads the ``RemoteRace`` records the network reader thread fills in, and updates each pane
(:class:`~workbench.ui.widgets.race.pane.RacePane`): its header and a fixed-size ``Static`` showing the last
rows of the text that fit. Nothing changes size while streaming, so a flush repaints those widgets without
a layout pass. When a pane's call is final, its text is rendered as Markdown once, in a scrolling body.
Hidden (non-current) screens skip work.

A finished race can be saved as a session (``s``) or a pane's reply promoted to a test case of an eval
suite (``p``); the files are written by the core in thread workers. A race's calls are traced as soon as it
finishes, before it is saved and named: the session file links them by trace id, and a re-run of the saved
race is traced under the session's name. A pane's tool calls are answered with ``t`` (a result per call), and
the race runs again with the reply and the results in its conversation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.dom import DOMNode
from textual.widgets import Footer, Header, Static

from workbench.core.errors import WorkbenchError, printable
from workbench.ui.base import WorkbenchScreen
from workbench.ui.messages import SessionSaved
from workbench.ui.screens.modals import (
    DiffScreen,
    NameScreen,
    PickScreen,
    PromoteScreen,
    Promotion,
    ToolResultsScreen,
)
from workbench.ui.widgets.race.pane import RacePane

if TYPE_CHECKING:
    from workbench.core.call_record import CallRecord
    from workbench.core.evals.promote import RaceOrigin
    from workbench.core.netproc import RemoteRace
    from workbench.core.request import Message
    from workbench.ui.races import RaceRun

FLUSH_HZ = 30


class RaceScreen(WorkbenchScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.cancel_race", "Cancel all"),
        Binding("ctrl+r", "app.rerun", "Re-run", priority=True),
        Binding("ctrl+d", "diff", "Diff"),
        Binding("c", "copy", "Copy"),
        Binding("s", "save_session", "Save session"),
        Binding("p", "promote", "Promote to test"),
        Binding("t", "answer_tools", "Answer tools"),
        Binding("g", "continue_paused", "Continue paused", show=False),
    ]
    DEFAULT_CSS = """
    RaceScreen #panes { layout: grid; grid-size: 2; grid-gutter: 0 1; height: 1fr; }
    RaceScreen #empty { padding: 1 2; color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.shown_race: RemoteRace | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("No race yet: write a prompt in the editor (f2) and press ctrl+r.", id="empty")
        yield Container(id="panes")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.workbench, "race", self._show)
        self.set_interval(1 / FLUSH_HZ, self.flush)

    @property
    def panes(self) -> list[RacePane]:
        return list(self.query(RacePane))

    def flush(self) -> None:
        """The render tick: bring the panes up to date with their records (while the screen shows)."""
        if not self.is_current:
            return
        for pane in self.panes:
            pane.flush()

    def _show(self, race: RemoteRace | None) -> None:
        if race is None or race is self.shown_race:
            return
        self.shown_race = race
        self.query_one("#empty").display = False
        panes = self.query_one("#panes", Container)
        count = len(race.records)
        columns = count if count <= 3 else math.ceil(count / 2)
        panes.styles.grid_size_columns = columns
        panes.styles.grid_size_rows = math.ceil(count / columns)
        panes.remove_children()
        panes.mount_all([RacePane(record) for record in race.records])

    def focused_pane(self) -> RacePane | None:
        """The pane holding the focus (its scrolling body), if any."""
        node: DOMNode | None = self.focused
        while node is not None and not isinstance(node, RacePane):
            node = node.parent
        return node

    def action_diff(self) -> None:
        """Word diff of two finished panes: the focused one (else the first) against the other one, or the one
        picked among the others when there are several."""
        finished = [p for p in self.panes if p.finished]
        if len(finished) < 2:
            self.notify("a diff needs two finished panes", severity="warning", timeout=4)
            return
        focused = self.focused_pane()
        left = focused if focused in finished else finished[0]
        others = [p for p in finished if p is not left]
        if len(others) == 1:
            self._diff(left, others[0])
            return
        labels = [Text(printable(p.record.target)) for p in others]
        self.app.push_screen(PickScreen(f"Diff {printable(left.record.target)} with…", labels, "enter: diff"),
                             lambda index: None if index is None else self._diff(left, others[index]))

    def _diff(self, left: RacePane, right: RacePane) -> None:
        self.app.push_screen(DiffScreen(left.record.target, right.record.target, left.body_text, right.body_text))

    def action_copy(self) -> None:
        """The focused pane's text (else the first pane's) to the clipboard."""
        panes = self.panes
        pane = self.focused_pane() or (panes[0] if panes else None)
        if pane is None or not pane.body_text:
            self.notify("nothing to copy yet", severity="warning", timeout=4)
            return
        self.app.copy_to_clipboard(pane.body_text)  # OSC 52: whether the terminal took it cannot be known
        self.notify(f"sent {len(pane.body_text):,} characters from {pane.record.target} to the terminal's "
                    "clipboard (OSC 52; not every terminal accepts it)", timeout=5)

    # -- continuing after tool calls -------------------------------------------------------------------

    def action_answer_tools(self) -> None:
        """The focused pane's tool calls (else the first finished pane's that has some): a result for each, then
        the race runs again with the reply as an assistant turn and the results as tool turns."""
        run = self.finished_run()
        if run is None:
            return
        pane = self._chosen_pane(lambda r: bool(r.tool_calls) and r.error is None)
        if pane is None:
            self.notify("no reply with tool calls\nnext: offer tools and run a race where the model calls one",
                        severity="warning", timeout=5)
            return
        reply = self._reply_turn(run, pane)
        if reply is not None:
            labels = [(c.id, f"{c.name}({c.arguments})  id {c.id}") for c in reply.tool_calls]
            self.app.push_screen(ToolResultsScreen(pane.record.target, labels), partial(self._continue, run, reply))

    def _chosen_pane(self, wanted: Callable[[CallRecord], bool]) -> RacePane | None:
        """The focused pane when its finished record is ``wanted``, else the first finished pane's that is."""
        panes = [p for p in self.panes if p.finished and wanted(p.record)]
        focused = self.focused_pane()
        return focused if focused in panes else (panes[0] if panes else None)

    def _reply_turn(self, run: RaceRun, pane: RacePane) -> Message | None:
        """The pane's reply as the conversation's next assistant turn (``None`` when it cannot be one: said)."""
        from workbench.core.conversation import record_turn

        try:
            return record_turn(run.request, pane.record)
        except WorkbenchError as exc:
            self.workbench.report(exc)
            return None

    def _continue(self, run: RaceRun, reply: Message, results: dict[str, str] | None) -> None:
        if results is None:
            return
        from workbench.core.conversation import continued
        from workbench.ui.races import RaceSource

        try:
            request = continued(run.request, reply, results)
        except WorkbenchError as exc:
            self.workbench.report(exc)
            return
        self.workbench.start_race(request, run.targets, RaceSource(prompt=run.prompt, variables=run.variables,
                                                                   session=run.session))

    def action_continue_paused(self) -> None:
        """The focused pane's paused turn (Anthropic ``pause_turn``; else the first finished pane's that paused):
        the race runs again with its text as the last, assistant, turn, which the provider continues."""
        from workbench.core.events import FinishReason
        from workbench.ui.races import RaceSource

        run = self.finished_run()
        if run is None:
            return
        pane = self._chosen_pane(lambda r: r.finish is FinishReason.PAUSE_TURN)
        if pane is None or not pane.record.text.strip():
            self.notify("no paused reply with text to continue\nnext: a reply that ends with pause_turn (Anthropic "
                        "server tools) can be continued with g", severity="warning", timeout=5)
            return
        reply = self._reply_turn(run, pane)
        if reply is None:
            return
        request = replace(run.request, messages=(*run.request.messages, reply))
        self.workbench.start_race(request, run.targets, RaceSource(prompt=run.prompt, variables=run.variables,
                                                                   session=run.session))

    # -- sessions and test cases ---------------------------------------------------------------------

    def finished_run(self) -> RaceRun | None:
        """The race on screen, once finished and traced (else a notification says what to do)."""
        app = self.workbench
        run = app.last_run
        if run is None or run.race is not app.race:
            self.notify("no race to save yet\nnext: write a prompt in the editor (f2) and press ctrl+r",
                        severity="warning", timeout=5)
            return None
        if not run.race.done:
            self.notify("the race is still running\nnext: wait for it to finish, or escape to cancel it",
                        severity="warning", timeout=5)
            return None
        app.trace_and_commit(run)
        return run

    def action_save_session(self) -> None:
        """``sessions/NAME.yaml`` from the finished race (its request, targets, replies and trace ids)."""
        run = self.finished_run()
        if run is None:
            return
        name = f"{run.prompt.name if run.prompt else 'race'}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.app.push_screen(NameScreen("Save the race as sessions/NAME.yaml", name,
                                        "letters, digits, '.', '_' and '-' · enter: save · escape: cancel"),
                             partial(self._save_session, run))

    def _save_session(self, run: RaceRun, name: str | None) -> None:
        if name:
            self.write_session(run, name)

    @work(thread=True, exit_on_error=False, group="save-session", name="save-session")
    def write_session(self, run: RaceRun, name: str) -> None:
        from workbench.core.sessions import save_session, session_from_race

        app = self.workbench
        workspace = app.workspace()
        ids = run.trace_ids if len(run.trace_ids) == len(run.race.records) else None
        session = session_from_race(name, run.request, run.targets, run.race.records, prompt=run.prompt,
                                    variables=run.variables, trace_ids=ids)
        path = save_session(workspace, session, app.settings().redactor())
        if ids:  # the race's calls, traced when it finished, join the session in the trace log too
            from workbench.core.traces.store import TraceStore

            writer = app.writer()
            writer.flush()
            store = TraceStore(writer.path)
            try:
                store.link_session(ids, name)
            finally:
                store.close()
        self.post_message(SessionSaved(run, name, path.relative_to(workspace)))

    def action_promote(self) -> None:
        """The focused pane's reply (else the first finished one's) as a test case of an eval suite."""
        run = self.finished_run()
        if run is None:
            return
        panes = [p for p in self.panes if p.finished and (p.body_text or p.record.tool_calls)]
        focused = self.focused_pane()
        pane = focused if focused in panes else (panes[0] if panes else None)
        if pane is None:
            self.notify("no reply to promote\nnext: run a race that gets one", severity="warning", timeout=5)
            return
        self.open_promote(run, pane.record.target, pane.body_text, [c.summary() for c in pane.record.tool_calls])

    @work(thread=True, exit_on_error=False, group="list-suites", name="list-suites")
    def open_promote(self, run: RaceRun, target: str, text: str, calls: Sequence[Mapping[str, str]] = ()) -> None:
        from workbench.core.evals.promote import RaceOrigin, suite_choices

        app = self.workbench
        workspace = app.workspace()
        origin = RaceOrigin(run.request, run.targets, run.prompt, run.variables if run.prompt else {})
        asked = run.request.messages[-1].content
        description = next((line.strip() for line in asked.splitlines() if line.strip()), "a race")[:60]
        screen = PromoteScreen(target, suite_choices(workspace, origin), text, description,
                               partial(self.write_test, workspace, origin), calls)
        app.call_from_thread(app.push_screen, screen, self._promoted)

    def _promoted(self, said: str | None) -> None:
        if said is not None:
            self.workbench.tell(said)

    @staticmethod
    def write_test(workspace: Path, origin: RaceOrigin, choice: Promotion) -> str:
        """Add the chosen test (checked first: nothing is written when the suite would not load); say where."""
        from workbench.core.evals.promote import promote, promoted_assertion

        edit = promote(workspace, origin, choice.suite, choice.description,
                       promoted_assertion(choice.kind, choice.value))
        return f"test '{choice.description}' written to {edit.path.relative_to(workspace)}:{edit.line}"
