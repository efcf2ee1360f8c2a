"""The editor's message turns: add (ctrl+n), remove (ctrl+delete), move (alt+up / alt+down), replace.

:class:`Turns` is mixed into the editor screen, which provides the rest: ``turn_ids`` and ``roles`` (the
turns in order and their roles), ``_turn_areas``, ``_turn_serial``, ``text_of``, ``fields``, and the live
meter's ``meters``, ``meter_edits``, ``sync_variables``, ``recount`` and ``ready``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from textual.containers import Vertical
from textual.widgets import Label, TextArea

from workbench.core.errors import WorkbenchError
from workbench.ui.prompt_text import MeteredTextArea

if TYPE_CHECKING:
    from workbench.core.prompts import PromptMessage
    from workbench.core.request import Message


class Turns:
    """The turns' part of the editor screen (see the module docstring)."""

    def _label(self, turn: str) -> str:
        name = "User message" if self.roles[turn] == "user" else "Assistant message"
        return name if len(self.turn_ids) == 1 else f"{name} · turn {self.turn_ids.index(turn) + 1}"

    def _relabel(self) -> None:
        for turn in self.turn_ids:
            self.query_one(f"#label-{turn}", Label).update(self._label(turn))

    def focused_turn(self) -> str | None:
        focused = self.focused
        return focused.id if focused is not None and focused.id in self.turn_ids else None

    def _new_turn(self, role: str, text: str = "") -> list[Any]:
        self._turn_serial += 1
        turn = f"turn-{self._turn_serial}"
        self.turn_ids.append(turn)
        self.roles[turn] = role
        area = self._turn_areas[turn] = MeteredTextArea(text, id=turn, soft_wrap=True, on_edit=self.meter_edits)
        return [Label("", id=f"label-{turn}"), area]

    async def action_add_turn(self) -> None:
        """A new turn at the end, with the role after the last one's (user → assistant → user …)."""
        role = "assistant" if self.roles[self.turn_ids[-1]] == "user" else "user"
        widgets = self._new_turn(role)
        await self.query_one("#turns", Vertical).mount_all(widgets)
        self._relabel()
        widgets[-1].focus()
        self._turns_changed()

    async def action_remove_turn(self) -> None:
        turn = self.focused_turn()
        if turn is None or len(self.turn_ids) == 1:
            self.app.report(WorkbenchError(  # type: ignore[attr-defined]
                "no turn to remove" if turn is None else "the only turn cannot be removed",
                "focus a turn's text first" if turn is None else "clear its text instead"))
            return
        index = self.turn_ids.index(turn)
        if turn == "user":  # the first area keeps its id: take the next turn's text and role, drop that one
            turn = self.turn_ids[1]
            self.roles["user"] = self.roles[turn]
            self.query_one("#user", TextArea).load_text(self.text_of(turn))
        self.turn_ids.remove(turn)
        self.roles.pop(turn)
        self._turn_areas.pop(turn, None)
        await self.query_one(f"#label-{turn}", Label).remove()
        await self.query_one(f"#{turn}", TextArea).remove()
        self._relabel()
        self.query_one(f"#{self.turn_ids[min(index, len(self.turn_ids) - 1)]}", TextArea).focus()
        self._turns_changed()

    def action_move_turn(self, step: int) -> None:
        """Move the focused turn up or down: the two turns swap text and role."""
        turn = self.focused_turn()
        if turn is None:
            return
        index = self.turn_ids.index(turn)
        other_index = index + step
        if not 0 <= other_index < len(self.turn_ids):
            return
        other = self.turn_ids[other_index]
        area, other_area = self.query_one(f"#{turn}", TextArea), self.query_one(f"#{other}", TextArea)
        text, other_text = area.text, other_area.text
        self.roles[turn], self.roles[other] = self.roles[other], self.roles[turn]
        area.load_text(other_text)
        other_area.load_text(text)
        self._relabel()
        other_area.focus()
        self._turns_changed()

    async def set_messages(self, messages: Sequence[Message | PromptMessage]) -> None:
        """Replace the turns with ``messages`` (at least one turn stays: an empty user message)."""
        for turn in self.turn_ids[1:]:
            await self.query_one(f"#label-{turn}", Label).remove()
            await self.query_one(f"#{turn}", TextArea).remove()
        self.turn_ids, self._turn_areas = ["user"], {}
        self.roles = {"user": messages[0].role if messages else "user"}
        self.query_one("#user", TextArea).load_text(messages[0].content if messages else "")
        widgets = [w for m in messages[1:] for w in self._new_turn(m.role, m.content)]
        if widgets:
            await self.query_one("#turns", Vertical).mount_all(widgets)
        self._relabel()
        self._turns_changed()

    def _turns_changed(self) -> None:
        self.meters = {key: m for key, m in self.meters.items() if key[0] in self.fields()}
        self.sync_variables()
        if self.ready:
            self.recount()
