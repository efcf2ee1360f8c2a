"""Keys & models: where each provider's key comes from (masked), set / delete a keyring key; and the
targets ``workbench models`` lists (defaults, aliases, discovered local servers) with context window,
price per Mtok and the circuit state replayed from the trace log.

Everything is read in thread workers after the screen mounts; discovery has a short overall timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Footer, Header, Input, Label

from workbench.core.errors import WorkbenchError
from workbench.ui import targets as ui_targets
from workbench.ui.base import WorkbenchBase, WorkbenchScreen

if TYPE_CHECKING:
    from workbench.core.keys import KeyStatus


def model_rows(app: WorkbenchBase) -> list[dict[str, Any]]:
    """One row per target, as ``workbench models`` shows them, plus the editor's default targets
    (blocking: call it from a thread)."""
    from workbench.core.targets import target_rows
    from workbench.core.traces.filters import Filters

    settings = app.settings()
    config = settings.config
    specs = config.provider_specs()
    env = app.services.keyed_env()
    try:
        discovered = ui_targets.discover_targets(env, specs)
    except Exception:
        discovered = []
    store = app.store()

    def recent_calls(target: str, since: float) -> list[dict[str, Any]]:
        with app.store_lock:
            return list(store.page(Filters(model=target, since=since), limit=500))

    sources = ([(t, "defaults") for t in config.defaults.targets]
               + [(t, "editor") for t in app.default_targets()]
               + [(t, f"alias {a}") for a, t in config.aliases.items()]
               + [(t, "discovered") for t in discovered])
    return target_rows(settings, env, sources, recent_calls)


class KeysScreen(WorkbenchScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "set_key", "Set key", priority=True),
        Binding("ctrl+x", "delete_key", "Delete key", priority=True),
    ]
    DEFAULT_CSS = """
    KeysScreen #keys { height: 1fr; }
    KeysScreen #models { height: 1fr; }
    KeysScreen #key-form { height: auto; padding: 0 1; }
    KeysScreen #key-value { width: 1fr; }
    KeysScreen Label { padding: 1 1 0 1; color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[KeyStatus] = []
        self.models: list[dict[str, Any]] | None = None
        """The targets table's rows (``None`` until loaded)."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="keys", cursor_type="row")
        yield Label("Key for the selected provider (stored in the OS keyring; the environment wins):", id="key-label")
        with Horizontal(id="key-form"):
            yield Input(password=True, placeholder="paste the API key", id="key-value")
            yield Button("Set", id="set", variant="primary")
            yield Button("Delete", id="delete", variant="error")
        yield Label("Models: defaults, aliases and discovered local servers (loading…)", id="models-label",
                    markup=False)
        yield DataTable(id="models", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#keys", DataTable)
        for label in ("provider", "variable", "source", "key", "note"):
            table.add_column(label, key=label)
        models = self.query_one("#models", DataTable)
        for label in ("target", "source", "key", "context", "USD/Mtok in/out", "circuit"):
            models.add_column(label, key=label)
        self.load_models()

    def on_screen_resume(self) -> None:
        self.reload()

    @work(thread=True, exclusive=True, exit_on_error=False, group="models", name="models")
    def load_models(self) -> None:
        app = self.workbench
        try:
            rows = model_rows(app)
        except Exception as exc:
            app.report(exc, "cannot list models: ")
            rows = []
        app.call_from_thread(self._show_models, rows)

    def _show_models(self, rows: list[dict[str, Any]]) -> None:
        self.models = rows
        table = self.query_one("#models", DataTable)
        table.clear()
        for row in rows:
            window = f"{row['context_window']:,}" if row["context_window"] else "?"
            price = ("unknown" if row["input_usd_per_mtok"] is None else
                     f"${row['input_usd_per_mtok']:g} / ${row['output_usd_per_mtok']:g}")
            circuit = Text(row["circuit"], style="" if row["circuit"] == "closed" else "bold red")
            table.add_row(row["target"], row["source"], "ready" if row["ready"] else "no key", window, price,
                          circuit, key=row["target"])
        self.query_one("#models-label", Label).update(
            "Models: defaults, aliases and discovered local servers" if rows else
            "Models: none (set [defaults] targets or [aliases] in workbench.toml, or start a local server)")

    @work(thread=True, exclusive=True, exit_on_error=False, group="keys", name="key-statuses")
    def reload(self) -> None:
        from workbench.core.keys import key_statuses

        app = self.workbench
        try:
            statuses = key_statuses(app.env)
        except Exception as exc:
            app.report(exc, "cannot read keys: ")
            return
        app.call_from_thread(self._show, statuses)

    def _show(self, statuses: list[KeyStatus]) -> None:
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

    @on(Button.Pressed, "#set")
    @on(Input.Submitted, "#key-value")
    def _set_pressed(self) -> None:
        self.action_set_key()

    @on(Button.Pressed, "#delete")
    def _delete_pressed(self) -> None:
        self.action_delete_key()

    def action_set_key(self) -> None:
        provider, field = self.selected(), self.query_one("#key-value", Input)
        value = field.value
        if provider is None:
            self.workbench.report(WorkbenchError("no provider selected", "pick a row first"))
            return
        field.value = ""
        self._change(provider, value)

    def action_delete_key(self) -> None:
        provider = self.selected()
        if provider is None:
            self.workbench.report(WorkbenchError("no provider selected", "pick a row first"))
            return
        self._change(provider, None)

    @work(thread=True, exit_on_error=False, group="key-change", name="key-change")
    def _change(self, provider: str, value: str | None) -> None:
        from workbench.core.keys import delete_key, set_key

        app = self.workbench
        try:
            if value is None:
                message = f"{provider}: key deleted" if delete_key(provider) else f"{provider}: no stored key"
            else:
                set_key(provider, value)
                message = f"{provider}: key stored in the keyring"
        except Exception as exc:
            app.report(exc)
            return
        app.tell(message)
        app.call_from_thread(self.reload)
