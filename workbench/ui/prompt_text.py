"""Prompt text in the editor: ``{{variables}}`` and their substitution, target lists, parameter
errors, and the text area that tells the live meter exactly which range each edit replaced.

The text area stays fast on a 100k-token document: TextArea reads its whole text and the wrapped
document's height for every line it draws, rebuilds highlights on every edit, and redraws every
visible row after any edit or cursor move. Here the text is kept until the next edit, the height is
the length of the wrapped-row table, placeholders are found only on the lines being drawn, and a
drawn row is reused while its line's text is unchanged and neither the cursor, the selection nor a
matched bracket is on that line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Self

from textual.cache import LRUCache
from textual.document._document import Document, Location
from textual.document._document_navigator import DocumentNavigator
from textual.document._edit import Edit
from textual.document._wrapped_document import WrappedDocument
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import TextArea
from textual.widgets.text_area import Highlight

from workbench.core.errors import WorkbenchError

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
"""A ``{{name}}`` placeholder in the system prompt or the user message."""
PLACEHOLDER_STYLE = "keyword"
"""The TextArea theme's syntax style a placeholder is drawn with."""


def variable_names(*texts: str) -> list[str]:
    """The placeholder names in ``texts``, in order of first appearance, each once."""
    return list(dict.fromkeys(m.group(1) for text in texts for m in VARIABLE.finditer(text)))


def substitute(text: str, values: dict[str, str]) -> str:
    """``text`` with every ``{{name}}`` that has a value replaced by it (others are left as they are)."""
    return VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def validation_problem(exc: Exception) -> str:
    """A pydantic ``ValidationError`` as ``field: message; …`` (other errors: their text)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())) or 'params'}: {e.get('msg')}"
                     for e in errors())


def split_targets(raw: str) -> list[str]:
    """``a/x@ttft=1,tps=2, b/y`` → two targets: a comma starts a new target only before ``provider/``."""
    return [t.strip() for t in re.split(r",\s*(?=[A-Za-z0-9_.-]+/)", raw) if t.strip()]


class _Document(Document):
    """A plain-text document that keeps its joined text until the next edit."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._text: str | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = super().text
        return self._text

    def replace_range(self, start: Location, end: Location, text: str) -> Any:
        self._text = None
        return super().replace_range(start, end, text)

    def get_index_from_location(self, location: Location) -> int:
        row, column = location
        return sum(map(len, self._lines[:row])) + row * len(self.newline) + column


class _WrappedDocument(WrappedDocument):
    @property
    def height(self) -> int:
        """One entry per wrapped row: the same as summing the rows of every line, in O(1)."""
        return len(self._offset_to_line_info)


class _Highlights(dict[int, list[Highlight]]):
    """Highlights by line, each line's ``{{name}}`` placeholders found when the line is first drawn."""

    def __init__(self, document: Callable[[], Document]) -> None:
        super().__init__()
        self.document = document

    def __missing__(self, row: int) -> list[Highlight]:
        line = self.document()[row]
        spans: list[Highlight] = []
        if "{{" in line:
            for match in VARIABLE.finditer(line):
                start = len(line[:match.start()].encode())
                spans.append((start, start + len(match.group(0).encode()), PLACEHOLDER_STYLE))
        self[row] = spans
        return spans


class MeteredTextArea(TextArea):
    """A plain-text TextArea that records each edit as (start, end, replacement) in character offsets.

    ``on_edit`` runs right after each edit, before the edited text is drawn, so whatever it updates
    (the meter) reaches the screen in the same frame; ``hooked_changes`` counts the ``Changed``
    messages it has already handled.
    """

    def __init__(self, *args: Any, on_edit: Callable[[MeteredTextArea], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending_edits: list[tuple[int, int, str]] = []
        self.on_edit = on_edit
        self.hooked_changes = 0
        self._rows: LRUCache[tuple[Any, ...], Strip] = LRUCache(1024)
        self._highlights = _Highlights(lambda: self.document)  # type: ignore[assignment]

    def _set_document(self, text: str, language: str | None) -> None:
        self._highlight_query = None
        self.document = _Document(text)
        self.wrapped_document = _WrappedDocument(self.document, tab_width=self.indent_width)
        self.navigator = DocumentNavigator(self.wrapped_document)
        self._build_highlight_map()
        self.move_cursor((0, 0))
        self._rewrap_and_refresh_virtual_size()

    def _render_line(self, y: int) -> Strip:
        key = self._row_key(y)
        if key is None:
            return super()._render_line(y)
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = super()._render_line(y)
        return row

    def _row_key(self, y: int) -> tuple[Any, ...] | None:
        """What a drawn row depends on, or ``None`` when it shows the cursor, selection or a bracket match."""
        scroll_x, scroll_y = self.scroll_offset
        rows = self.wrapped_document._offset_to_line_info
        if scroll_y + y >= len(rows):
            return None
        line_index, section = rows[scroll_y + y]
        (start_row, _), (end_row, _) = sorted(self.selection)
        bracket = self._matching_bracket_location
        if start_row <= line_index <= end_row or (bracket is not None and bracket[0] == line_index):
            return None
        return (self.document[line_index], section, self.size, scroll_x, id(self._theme), self.soft_wrap,
                self.indent_width, self.show_line_numbers and line_index, self.read_only)

    def notify_style_update(self) -> None:
        self._rows.clear()
        super().notify_style_update()

    _held: list[bool] | None = None
    """While an edit within one line runs: the whole-widget refreshes it asked for, held back."""

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> Self:
        if self._held is not None and not (regions or layout or recompose):
            self._held.append(repaint)
            return self
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def edit(self, edit: Edit) -> Any:
        document = self.document
        top, bottom = sorted((edit.from_location, edit.to_location))
        start = document.get_index_from_location(top)
        end = start + len(document.get_text_range(top, bottom))
        self.pending_edits.append((start, end, edit.text))
        # Typing within a line redraws that line's rows, not the whole widget (and, under it, the screen's
        # containers): unless the edit changed the wrapped height, the scroll position or the gutter.
        within_line = top[0] == bottom[0] and "\n" not in edit.text
        view = (self.wrapped_document.height, self.scroll_offset, self.gutter_width)
        rows = {top[0], self.selection.end[0], *self._bracket_rows()}
        self._held = [] if within_line else None
        try:
            result = super().edit(edit)
        finally:
            held, self._held = self._held, None
        if held:
            if view == (self.wrapped_document.height, self.scroll_offset, self.gutter_width):
                for row in rows | {self.selection.end[0], *self._bracket_rows()}:
                    self._refresh_document_line(row)
            else:
                self.refresh()
        if self.on_edit is not None:
            self.hooked_changes += 1
            self.on_edit(self)
        return result


    def _bracket_rows(self) -> list[int]:
        bracket = self._matching_bracket_location
        return [] if bracket is None else [bracket[0]]

    def _refresh_document_line(self, row: int) -> None:
        """Redraw the rows a document line wraps to."""
        if 0 <= row < self.document.line_count:
            first = self.wrapped_document.location_to_offset((row, 0)).y
            self.refresh_lines(first, len(self.wrapped_document.get_sections(row)))


def parse_number(field: str, raw: str, kind: type) -> Any:
    """An optional number field: ``None`` when empty; a bad value raises a ``WorkbenchError`` naming it."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise WorkbenchError(f"{field.replace('-', '_')} is not {noun}: {raw!r}", "fix it or leave it empty") from None


def parse_json_schema(raw: str) -> dict[str, Any] | None:
    """The optional JSON schema field: ``None`` when empty; it must be a JSON object."""
    if not raw.strip():
        return None
    try:
        schema = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise WorkbenchError(f"json_schema is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                             "fix the schema or clear it") from None
    if not isinstance(schema, dict):
        raise WorkbenchError(f"json_schema must be a JSON object, not {type(schema).__name__}",
                             'write an object such as {"type": "object", ...}')
    return schema
