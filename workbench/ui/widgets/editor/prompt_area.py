"""The prompt editor's text area: ``{{variables}}`` highlighted, each edit recorded as a character range for
the live meter, and fast on a 100k-token prompt — through Textual's public API only.

TextArea, as shipped, reads its whole text (a join of every line) and the wrapped document's height (a sum
over every line) for each row it draws, and redraws every visible row after any edit or cursor move. Here:

- ``text`` is kept until the next edit (``edit``, ``undo``, ``redo``, ``load_text``: every way the document
  changes);
- ``render_line`` reuses a drawn row while its line's text and section are unchanged and neither the cursor,
  the selection nor a matched bracket is on that line, so after a keystroke only the edited line is drawn;
- an edit within one line asks for that line's rows to be redrawn, not the whole widget (and the screen's
  containers under it), unless it changed the wrapped height, the scroll position or the gutter;
- placeholders are styled in ``get_line`` (the hook TextArea documents for styling a line), so only the
  lines being drawn are searched.

Measured by ``bench/ui.py`` (keystroke → meter on screen at 100k tokens).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Self

from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Offset, Region
from textual.strip import Strip
from textual.widgets import TextArea
from textual.widgets.text_area import DocumentBase, Edit, EditResult, Location

from workbench.ui.prompt_text import VARIABLE

EditRange = tuple[int, int, str]
"""One edit in character offsets of the text before it: (start, end, replacement)."""


def index_of(document: DocumentBase, location: Location) -> int:
    """The character offset of ``location`` in ``document``'s text (C-level sums: O(rows) without a Python loop
    per row, unlike ``Document.get_index_from_location``)."""
    row, column = location
    return sum(map(len, document.lines[:row])) + row * len(document.newline) + column


class PromptArea(TextArea):
    """A plain-text TextArea for a prompt: it records each edit as (start, end, replacement) in character
    offsets (:meth:`take_edits`) and highlights ``{{name}}`` placeholders."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"prompt-area--variable"}
    DEFAULT_CSS = """
    PromptArea > .prompt-area--variable { color: $text-accent; text-style: bold; }
    """

    _version = 0
    _text: tuple[DocumentBase, int, str] | None = None
    _held: list[bool] | None = None
    """While an edit within one line runs: the whole-widget refreshes it asked for, held back."""

    def __init__(self, text: str = "", *, on_edit: Callable[[PromptArea], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self.on_edit = on_edit
        """Called at the end of each edit, before the edited text is drawn: what it updates (the live meter)
        reaches the screen in the same frame. A message (``TextArea.Changed``) arrives a frame later on a busy
        screen: keystroke → meter p50 37 ms against 12 ms (``bench/ui.py``, 100k tokens)."""
        self.pending_edits: list[EditRange] = []
        self.replaced = False
        """Set when the text changed other than by an edit (load, undo, redo): the meter counts it again."""
        self._rows: LRUCache[tuple[Any, ...], Strip] = LRUCache(1024)

    # -- the text, kept until the document changes -------------------------------------------------------

    @property
    def text(self) -> str:
        cached = self._text
        document = self.document
        if cached is None or cached[0] is not document or cached[1] != self._version:
            cached = self._text = (document, self._version, document.text)
        return cached[2]

    @text.setter
    def text(self, value: str) -> None:
        self.load_text(value)

    @property
    def length(self) -> int:
        """The text's length in characters, without joining it."""
        document = self.document
        return sum(map(len, document.lines)) + (document.line_count - 1) * len(document.newline)

    def _changed(self) -> None:
        self._version += 1

    def _replaced(self) -> None:
        self._changed()
        self.pending_edits.clear()
        self.replaced = True

    def load_text(self, text: str) -> None:
        self._replaced()
        super().load_text(text)

    def undo(self) -> None:
        try:
            super().undo()
        finally:
            self._replaced()

    def redo(self) -> None:
        try:
            super().redo()
        finally:
            self._replaced()

    def take_edits(self) -> list[EditRange]:
        """The edits recorded since the last call."""
        edits, self.pending_edits = self.pending_edits, []
        return edits

    def take_replaced(self) -> bool:
        """Whether the text changed other than by an edit since the last call."""
        replaced, self.replaced = self.replaced, False
        return replaced

    # -- placeholders --------------------------------------------------------------------------------------

    def variable_spans(self, line_index: int) -> list[tuple[int, int]]:
        """The (start, end) columns of the ``{{name}}`` placeholders on a line."""
        line = self.document[line_index]
        return [m.span() for m in VARIABLE.finditer(line)] if "{{" in line else []

    def get_line(self, line_index: int) -> Text:
        line = super().get_line(line_index)
        spans = self.variable_spans(line_index)
        if spans:
            style = self.get_component_rich_style("prompt-area--variable")
            for start, end in spans:
                line.stylize(style, start, end)
        return line

    # -- drawing -------------------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        key = self._row_key(y)
        if key is None:
            return super().render_line(y)
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = super().render_line(y)
        return row

    def _row_key(self, y: int) -> tuple[Any, ...] | None:
        """What a drawn row depends on, or ``None`` when it shows the cursor, selection, a bracket match or the
        placeholder text."""
        scroll_x, scroll_y = self.scroll_offset
        offset_y = scroll_y + y
        if self.placeholder or offset_y >= self.virtual_size.height:
            return None
        line_index, column = self.wrapped_document.offset_to_location(Offset(0, offset_y))
        (start_row, _), (end_row, _) = sorted(self.selection)
        bracket = self.matching_bracket_location
        if start_row <= line_index <= end_row or (bracket is not None and bracket[0] == line_index):
            return None
        return (self.document[line_index], column, self.size, scroll_x, self.theme, self.app.theme, self.soft_wrap,
                self.indent_width, self.show_line_numbers and (line_index, self.line_number_start, self.gutter_width),
                self.read_only)

    def notify_style_update(self) -> None:
        self._rows.clear()
        super().notify_style_update()

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> Self:
        if self._held is not None and not (regions or layout or recompose):
            self._held.append(repaint)
            return self
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def edit(self, edit: Edit) -> EditResult:
        document = self.document
        top, bottom = sorted((edit.from_location, edit.to_location))
        start = index_of(document, top)
        end = start + len(document.get_text_range(top, bottom))
        self.pending_edits.append((start, end, edit.text))
        # Typing within a line redraws that line's rows, not the whole widget: unless the edit changed the
        # wrapped height, the scroll position or the gutter.
        within_line = top[0] == bottom[0] and "\n" not in edit.text
        view = (self.virtual_size.height, self.scroll_offset, self.gutter_width)
        rows = {top[0], self.selection.end[0], *self._bracket_rows()}
        self._held = [] if within_line else None
        try:
            result = super().edit(edit)
        finally:
            self._changed()
            held, self._held = self._held, None
        if held:
            if view == (self.virtual_size.height, self.scroll_offset, self.gutter_width):
                for row in rows | {self.selection.end[0], *self._bracket_rows()}:
                    self._refresh_document_line(row)
            else:
                self.refresh()
        if self.on_edit is not None:
            self.on_edit(self)
        return result

    def _bracket_rows(self) -> list[int]:
        bracket = self.matching_bracket_location
        return [] if bracket is None else [bracket[0]]

    def _refresh_document_line(self, row: int) -> None:
        """Redraw the rows a document line wraps to."""
        if 0 <= row < self.document.line_count:
            first = self.wrapped_document.location_to_offset((row, 0)).y
            self.refresh_lines(first, len(self.wrapped_document.get_offsets(row)) + 1)
