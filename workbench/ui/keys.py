"""API keys: where each provider's key comes from (masked), and set / delete a keyring key."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label

from workbench.core.errors import WorkbenchError


class KeysScreen(Screen[None]):
    BINDINGS: ClassVar = [
        Binding("ctrl+s", "set_key", "Set key", priority=True),
        Binding("ctrl+x", "delete_key", "Delete key", priority=True),
    ]
    DEFAULT_CSS = """
    KeysScreen #keys { height: 1fr; }
    KeysScreen #key-form { height: auto; padding: 0 1; }
    KeysScreen #key-value { width: 1fr; }
    KeysScreen Label { padding: 1 1 0 1; color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="keys", cursor_type="row")
        yield Label("Key for the selected provider (stored in the OS keyring; the environment wins):", id="key-label")
        with Horizontal(id="key-form"):
            yield Input(password=True, placeholder="paste the API key", id="key-value")
            yield Button("Set", id="set", variant="primary")
            yield Button("Delete", id="delete", variant="error")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#keys", DataTable)
        for label in ("provider", "variable", "source", "key", "note"):
            table.add_column(label, key=label)

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        app = self.app

        def read() -> None:
            from workbench.core.keys import key_statuses

            try:
                statuses = key_statuses(app.env)  # type: ignore[attr-defined]
            except Exception as exc:
                app.report(exc, "cannot read keys: ")  # type: ignore[attr-defined]
                return
            app.call_from_thread(self._show, statuses)

        self.run_worker(read, thread=True, exclusive=True, exit_on_error=False, group="keys", name="key-statuses")

    def _show(self, statuses: list[Any]) -> None:
        self.statuses = statuses
        table = self.query_one("#keys", DataTable)
        row = table.cursor_row
        table.clear()
        for status in statuses:
            note = "keyring key shadowed by the environment" if status.shadowed else ""
            table.add_row(status.provider, status.env_var, status.source, status.masked or "–", note,
                          key=status.provider)
        if statuses:
            table.move_cursor(row=min(row, len(statuses) - 1))

    def selected(self) -> str | None:
        table = self.query_one("#keys", DataTable)
        if not self.statuses or table.cursor_row < 0:
            return None
        return str(self.statuses[min(table.cursor_row, len(self.statuses) - 1)].provider)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "set":
            self.action_set_key()
        elif event.button.id == "delete":
            self.action_delete_key()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "key-value":
            self.action_set_key()

    def action_set_key(self) -> None:
        provider, field = self.selected(), self.query_one("#key-value", Input)
        value = field.value
        if provider is None:
            self.app.report(WorkbenchError("no provider selected", "pick a row first"))  # type: ignore[attr-defined]
            return
        field.value = ""
        self._change(provider, value)

    def action_delete_key(self) -> None:
        provider = self.selected()
        if provider is None:
            self.app.report(WorkbenchError("no provider selected", "pick a row first"))  # type: ignore[attr-defined]
            return
        self._change(provider, None)

    def _change(self, provider: str, value: str | None) -> None:
        app = self.app

        def change() -> None:
            from workbench.core.keys import delete_key, set_key

            try:
                if value is None:
                    message = f"{provider}: key deleted" if delete_key(provider) else f"{provider}: no stored key"
                else:
                    set_key(provider, value)
                    message = f"{provider}: key stored in the keyring"
            except Exception as exc:
                app.report(exc)  # type: ignore[attr-defined]
                return
            app.call_from_thread(app.notify, message)
            app.call_from_thread(self.reload)

        self.run_worker(change, thread=True, exit_on_error=False, group="key-change", name="key-change")
