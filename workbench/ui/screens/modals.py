"""Modal screens: the word-level diff of two race panes, the help listing every binding, a name to save under,
a pick among saved items, and the form that promotes a race pane to a test case."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, Static

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


class _Form(ModalScreen[Any]):
    """A small centred box; escape dismisses it with ``None``."""

    BINDINGS: ClassVar = [Binding("escape", "close", "Cancel")]
    DEFAULT_CSS = """
    _Form { align: center middle; }
    _Form > #form { width: 80; height: auto; max-height: 90%; border: thick $primary; background: $surface;
                    padding: 0 1; }
    _Form #title { text-style: bold; height: auto; }
    _Form Label { color: $text-muted; margin-top: 1; }
    _Form #hint { color: $text-muted; margin-top: 1; height: auto; }
    _Form #buttons { height: auto; margin-top: 1; }
    _Form OptionList { height: auto; max-height: 20; }
    """

    def action_close(self) -> None:
        self.dismiss(None)


class NameScreen(_Form):
    """One line of text, such as the name to save a session under: enter accepts, escape cancels."""

    def __init__(self, title: str, value: str, hint: str) -> None:
        super().__init__()
        self.title_text, self.value, self.hint = title, value, hint

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static(Text(self.title_text), id="title")
            yield Input(self.value, id="name")
            yield Static(Text(self.hint), id="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


class PickScreen(_Form):
    """A choice among labelled items, such as the session to open: enter picks (its index), escape cancels."""

    def __init__(self, title: str, labels: Sequence[Text | str]) -> None:
        super().__init__()
        self.title_text, self.labels = title, list(labels)

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static(Text(self.title_text), id="title")
            yield OptionList(*self.labels, id="choices")
            yield Static(Text("enter: open · escape: cancel"), id="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_index)


ASSERTION_KINDS = ("contains", "icontains", "equals", "regex", "not-contains", "llm-rubric")
"""The assertion types a race pane can be promoted with."""


def prefill(kind: str, text: str) -> str:
    """The value an assertion of ``kind`` starts with, taken from a reply: its first line (a pattern matching it
    literally for ``regex``), the whole reply for ``equals``; nothing for ``not-contains`` and ``llm-rubric``
    (what to forbid or to judge is for the user to say)."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return {"contains": first, "icontains": first, "equals": text, "regex": re.escape(first)}.get(kind, "")


@dataclass(frozen=True)
class Promotion:
    """What the promote form chose: the suite (relative path; ``new`` when it is to be created), the assertion
    and the test's description."""

    suite: str
    new: bool
    kind: str
    value: str
    description: str


class PromoteScreen(_Form):
    """The suite (an existing one, or a new one named after the prompt) and the assertion to promote a reply with."""

    AUTO_FOCUS = "#value"

    def __init__(self, target: str, suites: Sequence[str], new_suite: str | None, text: str,
                 description: str) -> None:
        super().__init__()
        self.target, self.suites, self.new_suite = target, list(suites), new_suite
        self.text, self.description = text, description

    def compose(self) -> ComposeResult:
        choices = [(path, path) for path in self.suites]
        if self.new_suite is not None:
            choices.append((f"new suite: {self.new_suite}", self.new_suite))
        with Vertical(id="form"):
            yield Static(Text(f"Promote the reply of {self.target} to a test case"), id="title")
            yield Label("Suite")
            yield Select(choices, value=choices[0][1], allow_blank=False, id="suite")
            yield Label("Assertion")
            yield Select([(kind, kind) for kind in ASSERTION_KINDS], value="contains", allow_blank=False, id="kind")
            yield Label("Value")
            yield Input(prefill("contains", self.text), id="value")
            yield Label("Description")
            yield Input(self.description, id="description")
            with Horizontal(id="buttons"):
                yield Button("Promote", id="promote", variant="primary")
                yield Button("Cancel", id="cancel")
            yield Static(Text("enter: promote · escape: cancel"), id="hint")

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "kind":
            self.query_one("#value", Input).value = prefill(str(event.value), self.text)

    def on_input_submitted(self) -> None:
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "promote":
            self.submit()
        else:
            self.dismiss(None)

    def submit(self) -> None:
        kind = str(self.query_one("#kind", Select).value)
        value = self.query_one("#value", Input).value
        description = self.query_one("#description", Input).value.strip()
        if not value.strip() or not description:
            missing = "value" if not value.strip() else "description"
            self.notify(f"the test needs a {missing}\nnext: type it, or escape to cancel", severity="error", timeout=6)
            return
        suite = str(self.query_one("#suite", Select).value)
        self.dismiss(Promotion(suite, suite == self.new_suite, kind, value, description))
