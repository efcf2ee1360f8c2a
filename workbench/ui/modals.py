"""Modal screens: the word-level diff of two race panes, and the help listing every binding."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

REMOVED = "red strike"
ADDED = "bold green"


def word_diff(old: str, new: str) -> Text:
    """``old`` → ``new`` word by word: removed words red and struck through, added words green."""
    a, b = old.split(), new.split()
    out = Text()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(" ".join(a[i1:i2]) + " ")
            continue
        if tag in ("delete", "replace"):
            out.append(" ".join(a[i1:i2]), style=REMOVED)
            out.append(" ")
        if tag in ("insert", "replace"):
            out.append(" ".join(b[j1:j2]), style=ADDED)
            out.append(" ")
    out.rstrip()
    return out


class _Modal(ModalScreen[None]):
    BINDINGS: ClassVar = [Binding("escape", "close", "Close")]
    DEFAULT_CSS = """
    _Modal { align: center middle; }
    _Modal > #box { width: 90%; height: 85%; border: thick $primary; background: $surface; padding: 0 1; }
    _Modal #title { text-style: bold; height: auto; }
    _Modal #scroll { height: 1fr; }
    """

    def __init__(self, title: str, body: Text | Table) -> None:
        super().__init__()
        self.title_text, self.body = title, body

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(Text(self.title_text), id="title")
            with VerticalScroll(id="scroll"):
                yield Static(self.body, id="body")
            yield Static(Text("escape: close", style="dim"), id="hint")

    def action_close(self) -> None:
        self.dismiss(None)


class DiffScreen(_Modal):
    """Two finished panes' texts, diffed word by word."""

    def __init__(self, left: str, right: str, old: str, new: str) -> None:
        diff = word_diff(old, new)
        super().__init__(f"word diff: {left} → {right}   (red: only in {left}, green: only in {right})", diff)
        self.diff = diff


def binding_rows(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    rows = []
    for item in bindings:
        binding = item if isinstance(item, Binding) else Binding(*item)
        for key in binding.key.split(","):
            rows.append((key.strip(), binding.description or binding.action))
    return rows


class HelpScreen(_Modal):
    """Every binding of the screen it was opened on, then the app's global bindings."""

    def __init__(self, screen_name: str, screen_bindings: Iterable[BindingType],
                 global_bindings: Iterable[BindingType]) -> None:
        self.rows: dict[str, list[tuple[str, str]]] = {
            f"{screen_name} screen": binding_rows(screen_bindings), "global": binding_rows(global_bindings)}
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column("key", style="bold", min_width=14)
        table.add_column("action")
        for section, rows in self.rows.items():
            table.add_row(Text(section, style="bold cyan"), "")
            for key, description in rows:
                table.add_row(key, description)
            table.add_row("", "")
        super().__init__("key bindings", table)
