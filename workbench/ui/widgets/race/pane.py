"""One race pane: a call's figures, its attempt timeline, and its text — the tail while it streams (a fixed-size
``Static``, no layout pass), Markdown once final, its reasoning then in a folded ``Collapsible`` above the answer
and its tool calls below it (the race screen's ``t`` answers them and continues).
The reply and its reasoning are shown through
:func:`~workbench.core.errors.printable` (Textual passes escape sequences through to the terminal); ``body_text``
keeps the reply as it came, for the diff, the clipboard and promotion to a test."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Collapsible, Markdown, Static

from workbench.core.errors import printable
from workbench.core.events import FinishReason
from workbench.core.tool_turns import unnamed_call_id
from workbench.figures import reply_notes
from workbench.ui.render import error_line, metrics, timeline

if TYPE_CHECKING:
    from workbench.core.call_record import CallRecord


class RacePane(Vertical):
    DEFAULT_CSS = """
    RacePane { border: round $primary; height: 1fr; padding: 0 1; }
    RacePane.-done { border: round $success; }
    RacePane.-error { border: round $error; }
    RacePane .metrics { height: auto; }
    RacePane .timeline { height: auto; display: none; }
    RacePane .body, RacePane .stream { height: 1fr; }
    """

    def __init__(self, record: CallRecord) -> None:
        super().__init__()
        self.record = record
        self.border_title = record.target
        self.finished = False
        self.settled = False
        """The record's numbers are final and shown: nothing more to draw."""
        self.header_text = ""
        self.timeline_text = ""
        self.body_text = ""
        self._shown_chars = -1
        self._header_rows = 0

    def compose(self) -> ComposeResult:
        yield Static(classes="metrics", markup=False)
        yield Static(classes="timeline", markup=False)
        yield Static(classes="stream", markup=False)

    def flush(self) -> None:
        """Bring the pane up to date with its record (called by the screen's one timer); a finished pane's
        figures once more when its record is settled (usage estimated, cost), then never again."""
        if self.settled or not self.is_mounted or not self.children:  # no children: being removed (a new race)
            return
        record = self.record
        settled = record.settled  # read first: the figures drawn below are at least as new
        header = metrics(record)
        if header.plain != self.header_text:
            self.header_text = header.plain
            widget = self.query_one(".metrics", Static)
            rows = -(-header.cell_len // max(1, widget.content_size.width))
            widget.update(header, layout=rows != self._header_rows)
            self._header_rows = rows
        steps = timeline(record)
        steps_plain = "" if steps is None else steps.plain
        if steps_plain != self.timeline_text:
            self.timeline_text = steps_plain
            widget = self.query_one(".timeline", Static)
            widget.update(steps or "")
            widget.display = steps is not None
        if self.finished:
            self.settled = settled
            return
        if record.done:
            self._finish()
            return
        size = sum(map(len, record.text_parts)) + sum(map(len, record.reasoning_parts))
        if size != self._shown_chars:
            self._shown_chars = size
            self.body_text = record.text
            self._show_tail()

    def _show_tail(self) -> None:
        """The last rows of reasoning + text that fit the stream widget (its size never changes)."""
        stream = self.query_one(".stream", Static)
        width, height = max(1, stream.content_size.width), max(1, stream.content_size.height)
        record = self.record
        body = Text()
        if record.reasoning_parts:
            body.append(printable(record.reasoning[-width * height:]) + "\n\n", style="dim italic")
        body.append(printable(self.body_text[-width * height:]))
        rows = body.wrap(self.app.console, width)
        stream.update(Text("\n").join(rows[-height:]), layout=False)

    def _finish(self) -> None:
        """Once: the whole text as Markdown, the error (with its next step) below it."""
        self.finished = True
        record = self.record
        self.body_text = record.text
        self.add_class("-error" if record.error is not None else "-done")
        self.run_worker(self._show_body(), group="pane-body", exit_on_error=False)

    async def _show_body(self) -> None:
        """The final body is built hidden (Markdown takes a while); the streamed tail stays on screen until the
        body replaces it in one frame."""
        record = self.record
        widgets: list[Static | Markdown | Collapsible] = []
        if record.reasoning:  # folded above the answer: open it to read the reasoning
            widgets.append(Collapsible(Static(Text(printable(record.reasoning), style="dim italic")),
                                       title=f"reasoning ({len(record.reasoning.split())} words)",
                                       classes="reasoning"))
        if record.text:
            widgets.append(Markdown(printable(record.text)))
        for index, call in enumerate(record.tool_calls):  # a reply that calls tools: each call, then how to answer
            call_id = call.id or unnamed_call_id(record.request.messages, index)
            widgets.append(Static(Text(printable(f"→ {call.name}({call.arguments})  id {call_id}"), style="cyan"),
                                  classes="tool-call"))
        if record.tool_calls and record.error is None:
            widgets.append(Static(Text("t: answer the tool calls and continue", style="dim")))
        elif record.finish is FinishReason.PAUSE_TURN and record.text.strip():
            widgets.append(Static(Text("g: continue the paused turn", style="dim")))
        widgets.extend(Static(note) for note in reply_notes(record))  # a refusal, provider blocks, a paused turn
        problem = error_line(record)
        if problem is not None:
            widgets.append(Static(problem))
        body = VerticalScroll(*widgets, classes="body")
        body.display = False
        await self.mount(body)  # returns once the Markdown is built
        stream = self.query_one(".stream", Static)
        stream.display, body.display = False, True
        await stream.remove()
