"""The editor's message turns: one prompt area per message, roles alternating; add, remove, move, replace.

The first turn's area keeps the id ``user`` (removing it takes the next turn's text and role). Every change of
the turns' number or order posts :class:`Turns.Changed`: the editor recounts and updates its variables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label

from workbench.core.errors import WorkbenchError
from workbench.ui.widgets.editor.prompt_area import PromptArea

if TYPE_CHECKING:
    from workbench.core.prompts import PromptMessage
    from workbench.core.request import Message as ChatMessage


class Turns(Vertical):
    """The conversation's turns, in order (``turn_ids``) with their roles (``roles``)."""

    class Changed(Message):
        """Turns were added, removed, moved or replaced."""

        def __init__(self, turns: Turns) -> None:
            super().__init__()
            self.turns = turns

        @property
        def control(self) -> Turns:
            return self.turns

    def __init__(self, *, on_edit: Callable[[PromptArea], None] | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.on_edit = on_edit
        self.turn_ids: list[str] = ["user"]
        """The turns' text area ids, in order (the first is ``user``)."""
        self.roles: dict[str, str] = {"user": "user"}
        """Turn id → role (``user`` or ``assistant``)."""
        self._serial = 0
        self._areas: dict[str, PromptArea] = {"user": PromptArea(id="user", soft_wrap=True, on_edit=on_edit)}
        """Text areas by turn id (readable before they finish mounting)."""

    def compose(self) -> ComposeResult:
        yield Label("User message", id="label-user")
        yield self._areas["user"]

    def area(self, turn: str) -> PromptArea:
        return self._areas[turn]

    def text_of(self, turn: str) -> str:
        return self._areas[turn].text

    def focused_turn(self) -> str | None:
        focused = self.screen.focused
        return focused.id if focused is not None and focused.id in self.turn_ids else None

    def _label(self, turn: str) -> str:
        name = "User message" if self.roles[turn] == "user" else "Assistant message"
        return name if len(self.turn_ids) == 1 else f"{name} · turn {self.turn_ids.index(turn) + 1}"

    def _relabel(self) -> None:
        for turn in self.turn_ids:
            self.query_one(f"#label-{turn}", Label).update(self._label(turn))

    def _new_turn(self, role: str, text: str = "") -> tuple[Label, PromptArea]:
        self._serial += 1
        turn = f"turn-{self._serial}"
        self.turn_ids.append(turn)
        self.roles[turn] = role
        area = self._areas[turn] = PromptArea(text, id=turn, soft_wrap=True, on_edit=self.on_edit)
        return Label("", id=f"label-{turn}"), area

    def _changed(self) -> None:
        self._relabel()
        self.post_message(self.Changed(self))

    async def add_turn(self) -> PromptArea:
        """A new turn at the end, with the role after the last one's (user → assistant → user …); focused."""
        role = "assistant" if self.roles[self.turn_ids[-1]] == "user" else "user"
        label, area = self._new_turn(role)
        await self.mount_all([label, area])
        area.focus()
        self._changed()
        return area

    async def remove_turn(self, turn: str | None) -> None:
        """Remove ``turn`` (the focused one); a ``WorkbenchError`` says why when it cannot be removed."""
        if turn is None or len(self.turn_ids) == 1:
            raise WorkbenchError("no turn to remove" if turn is None else "the only turn cannot be removed",
                                 "focus a turn's text first" if turn is None else "clear its text instead")
        index = self.turn_ids.index(turn)
        if turn == "user":  # the first area keeps its id: take the next turn's text and role, drop that one
            turn = self.turn_ids[1]
            self.roles["user"] = self.roles[turn]
            self._areas["user"].load_text(self.text_of(turn))
        self.turn_ids.remove(turn)
        self.roles.pop(turn)
        await self.remove_children([self.query_one(f"#label-{turn}"), self._areas.pop(turn)])
        self._areas[self.turn_ids[min(index, len(self.turn_ids) - 1)]].focus()
        self._changed()

    def move_turn(self, turn: str | None, step: int) -> None:
        """Move ``turn`` up or down: the two turns swap text and role; the moved text keeps the focus."""
        if turn is None:
            return
        other_index = self.turn_ids.index(turn) + step
        if not 0 <= other_index < len(self.turn_ids):
            return
        other = self.turn_ids[other_index]
        area, other_area = self._areas[turn], self._areas[other]
        text, other_text = area.text, other_area.text
        self.roles[turn], self.roles[other] = self.roles[other], self.roles[turn]
        area.load_text(other_text)
        other_area.load_text(text)
        other_area.focus()
        self._changed()

    async def set_messages(self, messages: Sequence[ChatMessage | PromptMessage]) -> None:
        """Replace the turns with ``messages`` (at least one turn stays: an empty user message)."""
        gone = [w for turn in self.turn_ids[1:] for w in (self.query_one(f"#label-{turn}"), self._areas.pop(turn))]
        self.turn_ids = ["user"]
        self.roles = {"user": messages[0].role if messages else "user"}
        if gone:
            await self.remove_children(gone)
        self._areas["user"].load_text(messages[0].content if messages else "")
        widgets = [w for m in messages[1:] for w in self._new_turn(m.role, m.content)]
        if widgets:
            await self.mount_all(widgets)
        self._changed()
