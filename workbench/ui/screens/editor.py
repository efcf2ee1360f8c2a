"""The editor: system prompt, message turns, targets and max_tokens, with a live token/cost meter per target.

The conversation starts as one user message; ctrl+n adds a turn (roles alternate), ctrl+delete removes the
focused one, alt+up / alt+down move it. Each turn is its own text area; the request sends them in order.

The side list shows the workspace's ``prompts/`` files: selecting one loads it (its variables with their
defaults) and the editor remembers it, so a race links to the prompt's version and ctrl+s saves the editor back
to the file as a new version. Opening a saved session loads its request and targets.

The live token count and cost estimate are :mod:`workbench.ui.editor_meter`'s; the turns'
actions :mod:`workbench.ui.editor_turns`'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from workbench.core.errors import WorkbenchError
from workbench.ui.app import RaceSource
from workbench.ui.editor_meter import LiveMeter
from workbench.ui.editor_turns import Turns
from workbench.ui.prompt_text import (
    MeteredTextArea,
    parse_json_schema,
    parse_number,
    split_targets,
    substitute,
    validation_problem,
    variable_names,
)

if TYPE_CHECKING:
    from workbench.core.prompts import Prompt, PromptFileError, PromptMessage, Version
    from workbench.core.request import ChatRequest, Message
    from workbench.core.sessions import Session

FIELDS = ("system", "user")
"""The fields of a new editor: the system prompt and the first turn (``#user``)."""


class EditorScreen(LiveMeter, Turns, Screen[None]):
    BINDINGS: ClassVar = [
        Binding("ctrl+r", "run", "Run race", priority=True),
        Binding("ctrl+s", "save_prompt", "Save prompt", priority=True),
        Binding("ctrl+n", "add_turn", "Add turn", priority=True),
        Binding("ctrl+delete", "remove_turn", "Remove turn", priority=True),
        Binding("alt+up", "move_turn(-1)", "Turn up", show=False, priority=True),
        Binding("alt+down", "move_turn(1)", "Turn down", show=False, priority=True),
    ]
    DEFAULT_CSS = """
    EditorScreen #editor-main { height: 1fr; }
    EditorScreen #texts { width: 2fr; }
    EditorScreen #side { width: 1fr; min-width: 44; padding: 0 1; }
    EditorScreen #prompt-files { width: 22; padding: 0 1 0 0; }
    EditorScreen #prompts { height: 1fr; }
    EditorScreen #prompts-hint { color: $text-muted; height: auto; }
    EditorScreen #targets-hint { color: $warning; height: auto; display: none; }
    EditorScreen #system { height: 8; }
    EditorScreen #turns { height: 1fr; }
    EditorScreen #turns MeteredTextArea { height: 1fr; min-height: 4; }
    EditorScreen Label { color: $text-muted; margin-top: 1; }
    EditorScreen #meter { margin-top: 1; height: auto; }
    EditorScreen #sampling { height: auto; }
    EditorScreen #sampling Input { width: 1fr; }
    EditorScreen #json-schema { height: 5; }
    EditorScreen #variables { height: auto; display: none; }
    EditorScreen #variables Input { border-title-color: $text-accent; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.init_meter()
        self.ready = False
        """Set after the first paint: until then no tokenizer work (the first recount covers it)."""
        self.variable_values: dict[str, str] = {}
        """Placeholder name → value typed in the variables panel (kept while the name comes and goes)."""
        self.variable_inputs: dict[str, Input] = {}
        """Placeholder name → its Input in the variables panel (one per placeholder in the texts)."""
        self._templated: set[str] = set()
        """Fields whose meters count substituted text: edits cannot be applied incrementally there."""
        self.turn_ids: list[str] = ["user"]
        """The message turns' text area ids, in order (the first is ``user``)."""
        self.roles: dict[str, str] = {"user": "user"}
        """Turn id → role (``user`` or ``assistant``)."""
        self._turn_serial = 0
        self._turn_areas: dict[str, MeteredTextArea] = {}
        """Added turns' text areas by id (readable before they finish mounting)."""
        self.prompts: list[Prompt] = []
        """The workspace's prompt files, as listed in the side list."""
        self.prompt: Prompt | None = None
        """The prompt file loaded into the editor (ctrl+s saves to it; a race links to its version)."""
        self.session: Session | None = None
        """The session loaded into the editor (a race of the same texts links to its prompt version and name)."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="editor-main"):
            with Vertical(id="prompt-files"):
                yield Label("Prompts")
                yield OptionList(id="prompts")
                yield Static("enter: load\nctrl+s: save", id="prompts-hint", markup=False)
            with Vertical(id="texts"):
                yield Label("System prompt")
                yield MeteredTextArea(id="system", soft_wrap=True, on_edit=self.meter_edits)
                with Vertical(id="turns"):
                    yield Label("User message", id="label-user")
                    yield MeteredTextArea(id="user", soft_wrap=True, on_edit=self.meter_edits)
            with VerticalScroll(id="side"):
                yield Label("Targets (comma-separated provider/model)")
                yield Input(", ".join(self.app.default_targets()), id="targets",  # type: ignore[attr-defined]
                            placeholder="picking targets…")
                yield Static(id="targets-hint", markup=False)
                yield Label("max_tokens (empty: the model's default)")
                yield Input("", id="max-tokens", placeholder="per-model default", type="integer")
                yield Label("temperature · top_p · seed (empty: default)")
                with Horizontal(id="sampling"):
                    yield Input("", id="temperature", placeholder="temp", type="number")
                    yield Input("", id="top-p", placeholder="top_p", type="number")
                    yield Input("", id="seed", placeholder="seed", type="integer")
                yield Label("stop sequences (comma-separated)")
                yield Input("", id="stop", placeholder="none")
                yield Label("JSON schema for the reply (optional)")
                yield TextArea("", id="json-schema", language=None, soft_wrap=True)
                with Vertical(id="variables"):
                    yield Label("Variables ({{name}} in the texts)")
                yield Static(id="meter")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#user", TextArea).focus()
        self.query_one("#meter", Static).update(Text("Live meter\n\ncounting…", style="dim"))
        self.call_after_refresh(self.after_first_paint)

    def after_first_paint(self) -> None:
        """Heavy work only once the editor is on screen: tiktoken encodings, settings, network process."""
        self.ready = True
        self.recount()
        app = self.app
        app.warm_up()  # type: ignore[attr-defined]
        app.run_safe(self._read_prompts, thread=True, name="read-prompts")  # type: ignore[attr-defined]
        if not app.default_targets():  # type: ignore[attr-defined]
            app.run_safe(self._pick_targets, thread=True, name="pick-targets")  # type: ignore[attr-defined]

    def on_screen_resume(self) -> None:
        """Back from elsewhere (a key set on f5?): while the key hint shows, pick the targets again."""
        if self.ready and self.query_one("#targets-hint", Static).display:
            self.app.run_safe(self._pick_targets, thread=True, name="pick-targets")  # type: ignore[attr-defined]

    def _pick_targets(self) -> None:
        targets, hint = self.app.pick_targets()  # type: ignore[attr-defined]
        self.app.call_from_thread(self._targets_picked, targets, hint)

    def _targets_picked(self, targets: list[str], hint: str | None) -> None:
        """Preselect ``targets`` unless the user has typed others."""
        app = self.app
        field = self.query_one("#targets", Input)
        if self.targets() in ([], app.preselected):  # type: ignore[attr-defined]
            field.value = ", ".join(targets)
        app.preselected = targets  # type: ignore[attr-defined]
        notice = self.query_one("#targets-hint", Static)
        notice.update(hint or "")
        notice.display = hint is not None

    # -- prompt files and sessions -------------------------------------------------------------------

    def _read_prompts(self) -> None:
        from workbench.core.prompts import load_prompts, prompts_folder

        prompts, errors = load_prompts(prompts_folder(self.app.workspace()))  # type: ignore[attr-defined]
        self.app.call_from_thread(self._show_prompts, prompts, errors)

    def _show_prompts(self, prompts: list[Prompt], errors: list[PromptFileError]) -> None:
        for error in errors:
            self.app.report(error)  # type: ignore[attr-defined]
        self.prompts = prompts
        listing = self.query_one("#prompts", OptionList)
        listing.clear_options()
        listing.add_options([Option(p.name, id=p.name) for p in prompts])
        if not prompts:
            self.query_one("#prompts-hint", Static).update("none yet: create\nprompts/NAME.yaml")

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "prompts":
            await self.load_prompt(self.prompts[event.option_index])

    async def load_prompt(self, prompt: Prompt) -> None:
        """The prompt's system, messages, targets and params into the editor, its variables' defaults into the
        variables panel; the editor then remembers it."""
        defaults = {name: v.default for name, v in prompt.variables.items() if v.default is not None}
        self.variable_values.update(defaults)
        await self._fill(prompt.system, prompt.messages, prompt.targets, prompt.params, prompt.output_schema)
        for name, value in defaults.items():
            if name in self.variable_inputs:
                self.variable_inputs[name].value = value
        self.prompt, self.session = prompt, None
        self.notify(f"loaded prompt {prompt.name}", timeout=3)

    def prompt_fields(self) -> dict[str, Any]:
        """The prompt-file fields the editor holds, as written (placeholders kept): system, messages, params and
        output schema. A bad parameter raises a ``WorkbenchError`` naming it."""
        from workbench.core.prompts import PromptMessage, PromptParams

        params = self.params()
        messages = [PromptMessage(role=self.roles[t], content=self.text_of(t)) for t in self.turn_ids]  # type: ignore[arg-type]
        return {"system": self.text_of("system") or None, "messages": messages,
                "params": PromptParams(temperature=params.temperature, top_p=params.top_p,
                                       max_tokens=params.max_tokens, stop=list(params.stop), seed=params.seed),
                "output_schema": params.json_schema}

    def race_source(self) -> RaceSource:
        """Where the request comes from: the loaded prompt (with what the editor holds of it), the loaded session
        while its texts are unchanged, or neither."""
        names = variable_names(*(self.text_of(f) for f in self.fields()))
        variables = {name: self.variable_values.get(name, "") for name in names}
        if self.prompt is not None:
            return RaceSource(prompt_name=self.prompt.name, edited=self.prompt_fields(), variables=variables)
        session = self.session
        if session is not None and (session.request.system or "", self.messages()) == (
                self.meter_text("system"), [(m.role, m.content) for m in session.request.messages]):
            return RaceSource(prompt=session.prompt, variables=dict(session.variables), session=session.name)
        return RaceSource(variables=variables)

    def action_save_prompt(self) -> None:
        """ctrl+s: the editor back to the loaded prompt's file, and a version of it."""
        try:
            if self.prompt is None:
                raise WorkbenchError("no prompt file loaded",
                                     "pick one in the Prompts list first; ctrl+s then saves to it")
            fields = self.prompt_fields()
        except WorkbenchError as exc:
            self.app.report(exc)  # type: ignore[attr-defined]
            return
        self.app.run_safe(partial(self._save_prompt, self.prompt, fields), thread=True,  # type: ignore[attr-defined]
                          name="save-prompt")

    def _save_prompt(self, loaded: Prompt, fields: dict[str, Any]) -> None:
        from workbench.core.prompts import (
            Prompt,
            atomic_write,
            dump_prompt,
            find_prompt_file,
            load_prompt_file,
            prompts_folder,
            save_version,
            versions,
        )

        workspace = self.app.workspace()  # type: ignore[attr-defined]
        folder = prompts_folder(workspace)
        path = find_prompt_file(folder, loaded.name) or folder / f"{loaded.name}.yaml"
        current = load_prompt_file(path) if path.exists() else None
        prompt = Prompt.model_validate((current or loaded).model_copy(update=fields).model_dump())
        known = {v.number for v in versions(workspace, prompt.name)}
        if prompt != current:
            atomic_write(path, dump_prompt(prompt))
        version = save_version(workspace, prompt)
        self.app.call_from_thread(self._prompt_saved, prompt, version, version.number in known)

    def _prompt_saved(self, prompt: Prompt, version: Version, unchanged: bool) -> None:
        self.prompt = prompt
        self.prompts = [prompt if p.name == prompt.name else p for p in self.prompts]
        self.notify(f"unchanged: {prompt.name} v{version.number}" if unchanged
                    else f"saved {prompt.name} v{version.number}", timeout=4)

    async def load_session(self, session: Session) -> None:
        """A saved session's request and targets into the editor; a race of the same texts links to it."""
        from workbench.core.sessions import session_request

        request, targets = session_request(session)
        await self.load_request(request, targets)
        self.session = session
        self.notify(f"loaded session {session.name}", timeout=3)

    # -- inputs ------------------------------------------------------------------------------------

    def targets(self) -> list[str]:
        return split_targets(self.query_one("#targets", Input).value)

    def max_tokens(self) -> int | None:
        raw = self.query_one("#max-tokens", Input).value.strip()
        if not raw:
            return None
        value = int(raw)
        if value < 1:
            raise ValueError
        return value

    def fields(self) -> list[str]:
        """Every metered text area: the system prompt, then the turns in order."""
        return ["system", *self.turn_ids]

    def messages(self) -> list[tuple[str, str]]:
        """(role, text as sent) of every turn, in order."""
        return [(self.roles[t], self.meter_text(t)) for t in self.turn_ids]

    def text_of(self, field: str) -> str:
        area = self._turn_areas.get(field)
        return (area if area is not None else self.query_one(f"#{field}", TextArea)).text

    def meter_text(self, field: str) -> str:
        """The text of a field as it will be sent: placeholders with a value substituted."""
        text = self.text_of(field)
        return substitute(text, self.variable_values) if "{{" in text else text

    def _number(self, field: str, kind: type) -> Any:
        return parse_number(field, self.query_one(f"#{field}", Input).value, kind)

    def json_schema(self) -> dict[str, Any] | None:
        return parse_json_schema(self.query_one("#json-schema", TextArea).text)

    def params(self, *, defaults: Any = None) -> Any:
        """The editor's sampling parameters as ``Params``; a bad value raises a ``WorkbenchError`` naming it."""
        from workbench.core.request import Params

        try:
            max_tokens = self.max_tokens()
        except ValueError:
            raise WorkbenchError("max_tokens is not a positive integer", "fix it or leave it empty") from None
        temperature = self._number("temperature", float)
        stop = tuple(s.strip() for s in self.query_one("#stop", Input).value.split(",") if s.strip())
        values = {
            "max_tokens": max_tokens or (defaults.max_tokens if defaults is not None else None),
            "temperature": temperature if temperature is not None or defaults is None else defaults.temperature,
            "top_p": self._number("top-p", float), "seed": self._number("seed", int), "stop": stop,
            "json_schema": self.json_schema(),
        }
        try:
            return Params(**values)
        except Exception as exc:
            raise WorkbenchError(f"invalid parameter: {validation_problem(exc)}", "fix it or leave it empty") from None

    def build_request(self) -> ChatRequest:
        from workbench.core.request import ChatRequest

        missing = [name for name in variable_names(*(self.text_of(f) for f in self.fields()))
                   if not self.variable_values.get(name)]
        if missing:
            raise WorkbenchError(f"no value for {', '.join('{{' + n + '}}' for n in missing)}",
                                 "fill it in the variables panel")
        messages = self.messages()
        if len(messages) == 1 and not messages[0][1].strip():
            raise WorkbenchError("the user message is empty", "type a prompt first")
        for number, (role, text) in enumerate(messages, 1):
            if not text.strip():
                raise WorkbenchError(f"turn {number} ({role}) is empty", "type its text or remove it (ctrl+delete)")
        if messages[-1][0] != "user":
            raise WorkbenchError("the last turn is an assistant message", "add a user turn after it (ctrl+n)")
        params = self.params(defaults=self.app.settings().config.defaults)  # type: ignore[attr-defined]
        return ChatRequest(system=self.meter_text("system") or None, params=params,
                           messages=tuple({"role": role, "content": text} for role, text in messages))  # type: ignore[arg-type]

    def action_run(self) -> None:
        try:
            targets = self.targets()
            if not targets:
                raise WorkbenchError("no target given", "type provider/model targets, separated by commas")
            if len(targets) > 6:
                raise WorkbenchError("at most 6 targets race at once", "remove some targets")
            request = self.build_request()
        except Exception as exc:
            self.app.report(exc)  # type: ignore[attr-defined]
            return
        try:
            source = self.race_source()
        except WorkbenchError as exc:
            self.app.report(exc)  # type: ignore[attr-defined]
            return
        self.app.start_race(request, targets, source)  # type: ignore[attr-defined]

    async def load_request(self, request: ChatRequest, targets: Sequence[str]) -> None:
        """Replay: put a traced request back into the editor (every turn, in order)."""
        params = request.params
        await self._fill(request.system, request.messages, targets, params, params.json_schema)
        self.prompt = self.session = None

    async def _fill(self, system: str | None, messages: Sequence[Message | PromptMessage], targets: Sequence[str],
                    params: Any, json_schema: dict[str, Any] | None) -> None:
        """Texts, targets (when given) and ``params`` (a request's or a prompt file's) into the editor."""
        self.query_one("#system", TextArea).load_text(system or "")
        await self.set_messages(messages)
        if targets:
            self.query_one("#targets", Input).value = ", ".join(targets)
        for field, value in (("max-tokens", params.max_tokens), ("temperature", params.temperature),
                             ("top-p", params.top_p), ("seed", params.seed)):
            self.query_one(f"#{field}", Input).value = "" if value is None else str(value)
        self.query_one("#stop", Input).value = ", ".join(params.stop)
        self.query_one("#json-schema", TextArea).load_text(
            "" if json_schema is None else json.dumps(json_schema, indent=2))
        self.query_one("#user", TextArea).focus()
