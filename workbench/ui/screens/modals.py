"""Modal screens: the word-level diff of two race panes, a name to save under, a pick among saved items, the
form that promotes a race pane to a test case, and the results of a reply's tool calls."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, Static

from workbench.core.errors import WorkbenchError, one_line, printable

if TYPE_CHECKING:
    from workbench.core.evals.promote import SuiteChoice

T = TypeVar("T")
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
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]
    DEFAULT_CSS = """
    _Modal { align: center middle; }
    _Modal > #box { width: 90%; height: 85%; border: thick $primary; background: $surface; padding: 0 1; }
    _Modal #title { text-style: bold; height: auto; }
    _Modal #scroll { height: 1fr; }
    """

    def __init__(self, title: str, body: Text) -> None:
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
        diff = word_diff(printable(old), printable(new))  # the replies as they came: no escape reaches the screen
        super().__init__(f"word diff: {left} → {right}   (red: only in {left}, green: only in {right})", diff)
        self.diff = diff


class _Form(ModalScreen[T | None]):
    """A small centred box; escape dismisses it with ``None``."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Cancel")]
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


class NameScreen(_Form[str]):
    """One line of text, such as the name to save a session under: enter accepts, escape cancels."""

    def __init__(self, title: str, value: str, hint: str) -> None:
        super().__init__()
        self.title_text, self.value, self.hint = title, value, hint

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static(Text(self.title_text), id="title")
            yield Input(self.value, id="name")
            yield Static(Text(self.hint), id="hint")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


class PickScreen(_Form[int]):
    """A choice among labelled items, such as the session to open: enter picks (its index), escape cancels."""

    def __init__(self, title: str, labels: Sequence[Text | str], hint: str = "enter: open") -> None:
        super().__init__()
        self.title_text, self.labels, self.hint = title, list(labels), hint

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static(Text(self.title_text), id="title")
            yield OptionList(*self.labels, id="choices")
            yield Static(Text(f"{self.hint} · escape: cancel"), id="hint")

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_index)


ASSERTION_KINDS = ("contains", "icontains", "equals", "regex", "not-contains", "llm-rubric", "tool-call-f1",
                   "tool-call")
"""The assertion types a race pane can be promoted with."""


def prefill(kind: str, text: str, calls: Sequence[Mapping[str, str]] = ()) -> str:
    """The value an assertion of ``kind`` starts with, taken from a reply: its first line (a pattern matching it
    literally for ``regex``), the whole reply for ``equals``; nothing for ``not-contains`` and ``llm-rubric``
    (what to forbid or to judge is for the user to say). From its tool ``calls``: the names called for
    ``tool-call-f1``, the first call's name and arguments (JSON) for ``tool-call``."""
    if kind == "tool-call-f1":
        return ", ".join(dict.fromkeys(call["name"] for call in calls))
    if kind == "tool-call":
        if not calls:
            return ""
        try:
            arguments = json.loads(calls[0]["arguments"] or "{}")
        except ValueError:
            arguments = {}
        return json.dumps({"name": calls[0]["name"], "arguments": arguments}, ensure_ascii=False)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return {"contains": first, "icontains": first, "equals": text, "regex": re.escape(first)}.get(kind, "")


@dataclass(frozen=True)
class Promotion:
    """What the promote form chose: the suite (and the variables the test carries there), the assertion and the
    test's description."""

    suite: SuiteChoice
    kind: str
    value: str
    description: str


class PromoteScreen(_Form[str]):
    """The suite (one a test of this race keeps working in, or a new one) and the assertion to promote a reply
    with. Only the Promote button or ctrl+s promotes (enter in a field does not); ``write`` adds the test (in a
    thread) and says where, or raises a ``WorkbenchError`` shown in the form, which stays open. Dismissed with
    what ``write`` said."""

    AUTO_FOCUS = "#value"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+s", "promote", "Promote", priority=True)]
    DEFAULT_CSS = """
    PromoteScreen #carried { color: $text-muted; height: auto; }
    PromoteScreen #error { color: $error; height: auto; display: none; }
    """

    def __init__(self, target: str, choices: Sequence[SuiteChoice], text: str, description: str,
                 write: Callable[[Promotion], str], calls: Sequence[Mapping[str, str]] = ()) -> None:
        super().__init__()
        self.target, self.choices, self.write = target, list(choices), write
        self.text, self.description, self.calls = text, description, list(calls)
        self.kind = "tool-call-f1" if calls else "contains"
        """The assertion offered first: a tool assertion for a reply that called tools."""

    def compose(self) -> ComposeResult:
        options = [(f"new suite: {c.path}" if c.new else c.path, i) for i, c in enumerate(self.choices)]
        with Vertical(id="form"):
            yield Static(Text(f"Promote the reply of {self.target} to a test case"), id="title")
            yield Label("Suite")
            yield Select(options, value=0, allow_blank=False, id="suite")
            yield Static(self._carried(self.choices[0]), id="carried", markup=False)
            yield Label("Assertion")
            yield Select([(kind, kind) for kind in ASSERTION_KINDS], value=self.kind, allow_blank=False, id="kind")
            yield Label("Value")
            yield Input(prefill(self.kind, self.text, self.calls), id="value")
            yield Label("Description")
            yield Input(self.description, id="description")
            yield Static(id="error", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Promote", id="promote", variant="primary")
                yield Button("Cancel", id="cancel")
            yield Static(Text("ctrl+s or Promote: write the test · escape: cancel"), id="hint")

    @property
    def choice(self) -> SuiteChoice:
        return self.choices[int(str(self.query_one("#suite", Select).value))]

    @staticmethod
    def _carried(choice: SuiteChoice) -> str:
        names = ", ".join(choice.vars)
        return f"the test carries the race's variables: {printable(names)}" if names else "the test has no variables"

    @on(Select.Changed, "#suite")
    def _suite_changed(self) -> None:
        self.query_one("#carried", Static).update(self._carried(self.choice))

    @on(Select.Changed, "#kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        self.query_one("#value", Input).value = prefill(str(event.value), self.text, self.calls)

    @on(Button.Pressed, "#promote")
    def action_promote(self) -> None:
        kind = str(self.query_one("#kind", Select).value)
        value = self.query_one("#value", Input).value
        description = self.query_one("#description", Input).value.strip()
        if not value.strip() or not description:
            missing = "value" if not value.strip() else "description"
            self.show_error(f"the test needs a {missing}: type it, or escape to cancel")
            return
        self.query_one("#promote", Button).disabled = True
        self.promote(Promotion(self.choice, kind, value, description))

    @work(thread=True, exit_on_error=False, group="promote", name="promote")
    def promote(self, promotion: Promotion) -> None:
        try:
            said = self.write(promotion)
        except WorkbenchError as exc:
            self.app.call_from_thread(self.show_error, f"{exc.message}{f' ({exc.hint})' if exc.hint else ''}")
            return
        except OSError as exc:  # the file could not be read or written
            self.app.call_from_thread(self.show_error, f"not promoted: {one_line(str(exc))}")
            return
        self.app.call_from_thread(self.dismiss, said)

    def show_error(self, text: str) -> None:
        error = self.query_one("#error", Static)
        error.update(printable(text))
        error.display = True
        self.query_one("#promote", Button).disabled = False

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


class ToolResultsScreen(_Form[dict[str, str]]):
    """A result for each tool call of a reply (``(id, label)`` pairs, the label saying the tool and its arguments):
    enter moves to the next call's field, and on the last one continues; dismissed with the results by call id."""

    def __init__(self, target: str, calls: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.target, self.calls = target, list(calls)

    def compose(self) -> ComposeResult:
        with Vertical(id="form"):
            yield Static(Text(printable(f"The results of {self.target}'s tool calls")), id="title")
            for index, (_, label) in enumerate(self.calls):
                yield Label(Text(printable(label)))
                yield Input(id=f"result-{index}", placeholder="the tool's result (text or JSON)")
            yield Static(Text("enter: next call, then continue the conversation · escape: cancel"), id="hint")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        fields = list(self.query(Input))
        at = fields.index(event.input)
        if at + 1 < len(fields):
            fields[at + 1].focus()
            return
        self.dismiss({call_id: field.value for (call_id, _), field in zip(self.calls, fields, strict=True)})
