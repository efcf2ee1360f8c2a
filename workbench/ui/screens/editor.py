"""The editor: system prompt, message turns, targets and parameters, with a live token/cost meter per target.

The conversation starts as one user message; ctrl+n adds a turn (roles alternate), ctrl+delete removes the
focused one, alt+up / alt+down move it (:class:`~workbench.ui.widgets.editor.turns.Turns`). ctrl+o attaches an
image or PDF (by its path) to the last user turn; ``-`` for the path removes the attachments. The Tools panel
holds the tools (a JSON or YAML list in OpenAI's function format) and the tool choice, checked as they are typed
(the problem shows under them; a race waits until they are right). The prompt cache field names the breakpoints
(``system``, ``tools``, ``last`` or turn numbers, as ``--cache-breakpoint`` takes them) and their TTL. The live meter
(:class:`~workbench.ui.widgets.editor.meter.LiveMeter`) follows every edit of the text areas and counts the tools.

The side list shows the workspace's ``prompts/`` files: selecting one loads it (its variables with their
defaults) and the editor remembers it, so a race links to the prompt's version and ctrl+s saves the editor back
to the file as a new version. Opening a saved session loads its request and targets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from workbench.core.errors import WorkbenchError
from workbench.core.validate import validated
from workbench.ui.messages import PromptSaved, RaceRequested
from workbench.ui.prompt_text import (
    VARIABLE,
    parse_json_schema,
    parse_number,
    parse_tools_field,
    split_targets,
    substitute,
    validation_problem,
    variable_names,
)
from workbench.ui.races import RaceSource
from workbench.ui.screens.editor_attachments import EditorAttachments
from workbench.ui.widgets.editor.meter import LiveMeter, Meters
from workbench.ui.widgets.editor.prompt_area import PromptArea
from workbench.ui.widgets.editor.turns import Turns

if TYPE_CHECKING:
    from workbench.core.attachments import Attachment
    from workbench.core.config import Defaults
    from workbench.core.prompts import Prompt, PromptFileError, PromptMessage
    from workbench.core.request import CacheBreakpoints, ChatRequest, Message, Params
    from workbench.core.sessions import Session
    from workbench.core.tokens.estimate import Estimate


class EditorScreen(EditorAttachments):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "run", "Run race", priority=True),
        Binding("ctrl+s", "save_prompt", "Save prompt", priority=True),
        Binding("ctrl+n", "add_turn", "Add turn", priority=True),
        Binding("ctrl+delete", "remove_turn", "Remove turn", priority=True),
        Binding("ctrl+o", "attach", "Attach file", priority=True),
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
    EditorScreen #attachments { height: auto; color: $text-muted; display: none; }
    EditorScreen #turns PromptArea { height: 1fr; min-height: 4; }
    EditorScreen Label { color: $text-muted; margin-top: 1; }
    EditorScreen #meter { height: auto; max-height: 7; border-top: solid $primary; padding: 0 1;
                          border-title-align: left; border-title-color: $text-muted; }
    EditorScreen.-narrow #editor-main { layout: vertical; overflow-y: auto; }
    EditorScreen.-narrow #prompt-files { width: 1fr; height: auto; padding: 0; }
    EditorScreen.-narrow #prompts { height: auto; max-height: 4; }
    EditorScreen.-narrow #prompts-hint { display: none; }
    EditorScreen.-narrow #texts, EditorScreen.-narrow #side { width: 1fr; height: auto; min-width: 0; }
    EditorScreen.-narrow #system { height: 4; }
    EditorScreen.-narrow #turns { height: auto; }
    EditorScreen.-narrow #turns PromptArea { height: 6; }
    EditorScreen #sampling, EditorScreen #reasoning, EditorScreen #cache { height: auto; }
    EditorScreen #sampling Input, EditorScreen #reasoning Input, EditorScreen #cache-points { width: 1fr; }
    EditorScreen #cache-ttl { width: 11; }
    EditorScreen #json-schema, EditorScreen #tools { height: 5; }
    EditorScreen #tools-error { color: $error; height: auto; display: none; }
    EditorScreen #variables { height: auto; display: none; }
    EditorScreen #variables Input { border-title-color: $text-accent; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.ready = False
        """Set after the first paint: until then no tokenizer work (the first recount covers it)."""
        self.variable_values: dict[str, str] = {}
        """Placeholder name → value typed in the variables panel (kept while the name comes and goes)."""
        self.variable_inputs: dict[str, Input] = {}
        """Placeholder name → its Input in the variables panel (one per placeholder in the texts)."""
        self.system = PromptArea(id="system", soft_wrap=True, on_edit=self._area_edited)
        self.turns = Turns(on_edit=self._area_edited, id="turns")
        self.meter = LiveMeter(self, id="meter")
        self.prompts: list[Prompt] = []
        """The workspace's prompt files, as listed in the side list."""
        self.prompt: Prompt | None = None
        """The prompt file loaded into the editor (ctrl+s saves to it; a race links to its version)."""
        self.session: Session | None = None
        """The session loaded into the editor (a race of the same texts links to its prompt version and name)."""
        self.targets_notice: str | None = None
        """What was said of the targets picked when none were given (as ``workbench run`` says it)."""
        self.attachments: list[Attachment] = []
        """Images and PDFs the last user turn carries (ctrl+o)."""
        self.tool_turns: list[tuple[str, dict[str, Any]]] = []
        """The loaded conversation's tool calls and tool-result ids (and a replied turn's reasoning items and origin),
        by position with each turn's role: the editor shows the turns' texts, and a race or a save keeps these while
        a turn keeps its role."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="editor-main"):
            with Vertical(id="prompt-files"):
                yield Label("Prompts")
                yield OptionList(id="prompts")
                yield Static("click/enter: load\nctrl+s: save", id="prompts-hint", markup=False)
            with Vertical(id="texts"):
                yield Label("System prompt")
                yield self.system
                yield self.turns
                yield Static(id="attachments", markup=False)
            with VerticalScroll(id="side", can_focus=False):  # its fields take the focus, not the scroll
                yield Label("Targets (comma-separated provider/model)")
                yield Input(", ".join(self.workbench.default_targets()), id="targets", placeholder="picking targets…")
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
                yield Label("reasoning effort · thinking budget")
                with Horizontal(id="reasoning"):
                    yield Input("", id="reasoning-effort", placeholder="none…high")
                    yield Input("", id="thinking-budget", placeholder="tokens", type="integer")
                yield Label("JSON schema for the reply (optional)")
                yield TextArea("", id="json-schema", language=None, soft_wrap=True)
                yield Label("Tools (JSON or YAML list) · tool choice")
                yield TextArea("", id="tools", language=None, soft_wrap=True)
                yield Static(id="tools-error", markup=False)
                yield Input("", id="tool-choice", placeholder="auto, none, required or a tool's name")
                yield Label("prompt cache breakpoints · ttl")
                with Horizontal(id="cache"):
                    yield Input("", id="cache-points", placeholder="system, tools, last, 1…")
                    yield Input("", id="cache-ttl", placeholder="5m/1h")
                with Vertical(id="variables"):
                    yield Label("Variables ({{name}} in the texts)")
        yield self.meter  # below the texts and fields, at any size: always in sight while typing
        yield Footer()

    def on_mount(self) -> None:
        self.meter.border_title = "Live meter"
        self.turns.area("user").focus()
        # Queued while the screen is being pushed, a callback runs after a refresh that may not have drawn it
        # yet (it is not current, or a layout is still pending); queued again from there, it runs after the
        # refresh that wrote the editor's first frame to the terminal.
        self.call_after_refresh(self.call_after_refresh, self.after_first_paint)

    def after_first_paint(self) -> None:
        """Heavy work only once the editor is on the terminal: tiktoken encodings, settings, network process
        (started earlier, it held the loop and the frame was written ~70 ms later)."""
        self.ready = self.meter.ready = True
        self.meter.recount()
        app = self.workbench
        app.warm_up()
        self.read_prompts()
        if not app.default_targets():
            self.pick_targets()

    def on_screen_resume(self) -> None:
        """Back from elsewhere (a key set on f5?): while the picked targets' notice shows, pick them again."""
        if self.ready and self.query_one("#targets-hint", Static).display:
            self.pick_targets()

    @work(thread=True, exit_on_error=False, group="pick-targets", name="pick-targets")
    def pick_targets(self) -> None:
        targets, hint = self.workbench.pick_targets()
        self.app.call_from_thread(self._targets_picked, targets, hint)

    def _targets_picked(self, targets: list[str], hint: str | None) -> None:
        """Preselect ``targets`` unless the user has typed others."""
        app = self.workbench
        if self.targets() in ([], app.preselected):
            self.query_one("#targets", Input).value = ", ".join(targets)
        app.preselected = targets
        self.targets_notice = hint
        self.query_one("#targets-hint", Static).update(hint or "")
        self.show_targets_notice()

    def show_targets_notice(self) -> None:
        """What was said of the picked targets shows while the Targets field holds them (or is still empty)."""
        shown = self.targets() in ([], self.workbench.preselected)
        self.query_one("#targets-hint", Static).display = self.targets_notice is not None and shown

    # -- the texts, for the meter and the request -------------------------------------------------------

    @property
    def turn_ids(self) -> list[str]:
        return self.turns.turn_ids

    @property
    def roles(self) -> dict[str, str]:
        return self.turns.roles

    @property
    def meters(self) -> Meters:
        """The live meter's token meters (``{}`` until the first count)."""
        return self.meter.meters

    @property
    def estimates(self) -> dict[str, Estimate]:
        return self.meter.estimates

    def meter_rows(self) -> list[dict[str, object]]:
        return self.meter.rows()

    def fields(self) -> list[str]:
        """Every metered text area: the system prompt, then the turns in order."""
        return ["system", *self.turns.turn_ids]

    def area(self, field: str) -> PromptArea:
        return self.system if field == "system" else self.turns.area(field)

    def text_of(self, field: str) -> str:
        return self.area(field).text

    def meter_text(self, field: str) -> str:
        """The text of a field as it will be sent: placeholders with a value substituted."""
        text = self.text_of(field)
        return substitute(text, self.variable_values) if "{{" in text else text

    def messages(self) -> list[tuple[str, str]]:
        """(role, text as sent) of every turn, in order."""
        return [(self.turns.roles[t], self.meter_text(t)) for t in self.turns.turn_ids]

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

    # -- what changed ---------------------------------------------------------------------------------------

    def _area_edited(self, area: PromptArea) -> None:
        """Each edit of a text area, as it happens (before its frame is drawn): the meter follows it."""
        if area.id in self.fields():
            text = area.text
            self.meter.edited(area.id or "", area.take_edits(), area.length,
                              "{{" in text and VARIABLE.search(text) is not None)

    @on(TextArea.Changed)
    def _text_changed(self, event: TextArea.Changed) -> None:
        area = event.text_area
        if area.id == "tools":
            self.check_tools()
        if not isinstance(area, PromptArea) or area.id not in self.fields():
            return
        self.sync_variables()
        if area.take_replaced() and self.ready:  # loaded, undone or redone: no edit ranges to apply
            self.meter.recount()

    @on(Turns.Changed)
    def _turns_changed(self) -> None:
        self.sync_variables()
        self.meter.fields_changed()

    def sync_variables(self) -> None:
        """One Input per placeholder: new names get one, vanished names lose theirs, the rest stay."""
        names = variable_names(*(self.text_of(f) for f in self.fields()))
        if names == list(self.variable_inputs):
            return
        panel = self.query_one("#variables", Vertical)
        for name in [n for n in self.variable_inputs if n not in names]:
            self.variable_inputs.pop(name).remove()
        new = []
        for name in names:
            if name not in self.variable_inputs:
                field = Input(self.variable_values.get(name, ""), placeholder=f"value of {name}", id=f"var-{name}")
                field.border_title = name
                self.variable_inputs[name] = field
                new.append(field)
        if new:
            panel.mount_all(new)
        panel.display = bool(names)

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        field_id = event.input.id or ""
        if field_id.startswith("var-"):
            self.variable_values[field_id.removeprefix("var-")] = event.value
            if self.ready and self.meter.templated:
                self.meter.recount()
        elif field_id == "targets":
            self.meter.targets_changed()
            self.show_targets_notice()
        elif field_id == "tool-choice":
            self.check_tools()
        elif self.ready:
            self.meter.schedule_estimate()

    # -- turns --------------------------------------------------------------------------------------------

    async def action_add_turn(self) -> None:
        await self.turns.add_turn()

    async def action_remove_turn(self) -> None:
        try:
            await self.turns.remove_turn(self.turns.focused_turn())
        except WorkbenchError as exc:
            self.workbench.report(exc)

    def action_move_turn(self, step: int) -> None:
        self.turns.move_turn(self.turns.focused_turn(), step)

    # -- prompt files and sessions -------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="read-prompts", name="read-prompts")
    def read_prompts(self) -> None:
        from workbench.core.prompts import load_prompts, prompts_folder

        prompts, errors = load_prompts(prompts_folder(self.workbench.workspace()))
        self.app.call_from_thread(self._show_prompts, prompts, errors)

    def _show_prompts(self, prompts: list[Prompt], errors: list[PromptFileError]) -> None:
        for error in errors:
            self.workbench.report(error)
        self.prompts = prompts
        listing = self.query_one("#prompts", OptionList)
        listing.clear_options()
        listing.add_options([Option(p.name, id=p.name) for p in prompts])
        if not prompts:
            self.query_one("#prompts-hint", Static).update("none yet: create\nprompts/NAME.yaml")

    @on(OptionList.OptionSelected, "#prompts")
    async def _prompt_selected(self, event: OptionList.OptionSelected) -> None:
        await self.load_prompt(self.prompts[event.option_index])

    async def load_prompt(self, prompt: Prompt) -> None:
        """The prompt's system, messages, targets and params into the editor, its variables' defaults into the
        variables panel; the editor then remembers it. Focus stays where it is (a click in the list loads, and
        the enter that may follow loads again rather than typing into the message)."""
        from workbench.core.prompts.model import cache_breakpoints

        defaults = {name: v.default for name, v in prompt.variables.items() if v.default is not None}
        self.variable_values.update(defaults)
        await self._fill(prompt.system, prompt.messages, prompt.targets, prompt.params, prompt.output_schema,
                         (tuple(prompt.tools), prompt.tool_choice))
        self.load_prompt_attachments(prompt)
        self.show_cache(cache_breakpoints(prompt.cache, prompt.messages))
        for name, value in defaults.items():
            if name in self.variable_inputs:
                self.variable_inputs[name].value = value
        self.prompt, self.session = prompt, None
        self.notify(f"loaded prompt {prompt.name}", timeout=3)

    def prompt_fields(self) -> dict[str, Any]:
        """The prompt-file fields the editor holds, as written (placeholders kept): system, messages, cache
        breakpoints, params and output schema. A bad parameter or breakpoint raises a ``WorkbenchError`` naming it."""
        from workbench.core.prompts import PromptMessage, PromptParams
        from workbench.core.prompts.model import cache_settings

        params = self.params()
        texts = [(self.roles[t], self.text_of(t)) for t in self.turn_ids]
        points = self.with_cache(self.chat_request(self.text_of("system") or None, texts, params)).cache
        messages = [PromptMessage.model_validate({"role": role, "content": text, **self.turn_tools(i, role),
                                                  "cache": i in points.messages})
                    for i, (role, text) in enumerate(texts)]
        users = [i for i, m in enumerate(messages) if m.role == "user"]
        if users and self.attachments:  # the last user turn's files, by their paths
            messages[users[-1]] = messages[users[-1]].model_copy(
                update={"attachments": self.attachment_paths()})
        return {"system": self.text_of("system") or None, "messages": messages, "cache": cache_settings(points),
                "params": PromptParams(temperature=params.temperature, top_p=params.top_p,
                                       max_tokens=params.max_tokens, stop=list(params.stop), seed=params.seed,
                                       reasoning_effort=params.reasoning_effort,
                                       thinking_budget=params.thinking_budget),
                "output_schema": params.json_schema, "tools": list(params.tools), "tool_choice": params.tool_choice,
                "tools_file": self.prompt.tools_file if self.prompt is not None and list(params.tools) == list(
                    self.prompt.tools) else None}  # a file:// reference stays while its tools are unchanged

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
            self.workbench.report(exc)
            return
        self.save_prompt(self.prompt, fields)

    @work(thread=True, exit_on_error=False, group="save-prompt", name="save-prompt")
    def save_prompt(self, loaded: Prompt, fields: dict[str, Any]) -> None:
        from workbench.core.prompts import (
            Prompt,
            find_prompt_file,
            load_prompt_file,
            prompts_folder,
            save_version,
            versions,
            write_prompt,
        )

        workspace = self.workbench.workspace()
        folder = prompts_folder(workspace)
        path = find_prompt_file(folder, loaded.name) or folder / f"{loaded.name}.yaml"
        current = load_prompt_file(path) if path.exists() else None
        prompt = Prompt.model_validate((current or loaded).model_copy(update=fields).model_dump())
        known = {v.number for v in versions(workspace, prompt.name)}
        if prompt != current:
            write_prompt(path, prompt)
        version = save_version(workspace, prompt)
        self.post_message(PromptSaved(prompt, version, version.number in known))

    @on(PromptSaved)
    def _prompt_saved(self, event: PromptSaved) -> None:
        prompt, version = event.prompt, event.version
        self.prompt = prompt
        self.prompts = [prompt if p.name == prompt.name else p for p in self.prompts]
        self.notify(f"unchanged: {prompt.name} v{version.number}" if event.unchanged
                    else f"saved {prompt.name} v{version.number}", timeout=4)

    async def load_session(self, session: Session) -> None:
        """A saved session's request and targets into the editor; a race of the same texts links to it."""
        from workbench.core.sessions import session_request

        request, targets = session_request(session)
        await self.load_request(request, targets)
        self.session = session
        self.notify(f"loaded session {session.name}", timeout=3)

    # -- the request ------------------------------------------------------------------------------------

    def _number(self, field: str, kind: type) -> Any:
        return parse_number(field, self.query_one(f"#{field}", Input).value, kind)

    def tools(self) -> tuple[tuple[dict[str, Any], ...], str | None]:
        """The Tools panel's tools and tool choice; a one-line ``WorkbenchError`` while they are not right."""
        return parse_tools_field(self.query_one("#tools", TextArea).text,
                                 self.query_one("#tool-choice", Input).value)

    def meter_tools(self) -> tuple[dict[str, Any], ...]:
        """The tools the meter counts: the panel's, none while they are not right."""
        try:
            return self.tools()[0]
        except WorkbenchError:
            return ()

    def check_tools(self) -> None:
        """The Tools panel checked as it is typed: its problem in one line under it; the meter counts the tools."""
        shown = self.query_one("#tools-error", Static)
        try:
            self.tools()
        except WorkbenchError as exc:
            shown.update(str(exc))
            shown.display = True
        else:
            shown.display = False
        if self.ready:
            self.meter.schedule_estimate()

    def json_schema(self) -> dict[str, Any] | None:
        return parse_json_schema(self.query_one("#json-schema", TextArea).text)

    def params(self, *, defaults: Defaults | None = None) -> Params:
        """The editor's sampling parameters as ``Params``; a bad value raises a ``WorkbenchError`` naming it."""
        from workbench.core.request import Params

        try:
            max_tokens = self.max_tokens()
        except ValueError:
            raise WorkbenchError("max_tokens is not a positive integer", "fix it or leave it empty") from None
        temperature = self._number("temperature", float)
        tools, tool_choice = self.tools()
        stop = tuple(s.strip() for s in self.query_one("#stop", Input).value.split(",") if s.strip())
        values = {
            "max_tokens": max_tokens or (defaults.max_tokens if defaults is not None else None),
            "temperature": temperature if temperature is not None or defaults is None else defaults.temperature,
            "top_p": self._number("top-p", float), "seed": self._number("seed", int), "stop": stop,
            "json_schema": self.json_schema(),
            "reasoning_effort": self.query_one("#reasoning-effort", Input).value.strip().lower() or None,
            "thinking_budget": self._number("thinking-budget", int),
            "tools": tools, "tool_choice": tool_choice,
        }
        try:
            return validated(Params, values)
        except Exception as exc:
            raise WorkbenchError(f"invalid parameter: {validation_problem(exc)}", "fix it or leave it empty") from None

    def build_request(self) -> ChatRequest:
        missing = [name for name in variable_names(*(self.text_of(f) for f in self.fields()))
                   if not self.variable_values.get(name)]
        if missing:
            raise WorkbenchError(f"no value for {', '.join('{{' + n + '}}' for n in missing)}",
                                 "fill it in the variables panel")
        messages = self.messages()
        if len(messages) == 1 and not messages[0][1].strip():
            raise WorkbenchError("the user message is empty", "type a prompt first")
        for number, (role, text) in enumerate(messages, 1):
            if not text.strip() and not self.turn_tools(number - 1, role).get("tool_calls"):
                raise WorkbenchError(f"turn {number} ({role}) is empty", "type its text or remove it (ctrl+delete)")
        if messages[-1][0] == "assistant":
            raise WorkbenchError("the last turn is an assistant message", "add a user turn after it (ctrl+n)")
        params = self.params(defaults=self.workbench.settings().config.defaults)
        request = self.chat_request(self.meter_text("system") or None, messages, params)
        from workbench.core.attachments import with_attachments

        return self.with_cache(with_attachments(request, self.attachments))

    def chat_request(self, system: str | None, texts: Sequence[tuple[str, str]], params: Params) -> ChatRequest:
        """The request of ``system`` and the turns' (role, text) with their loaded tool calls and results."""
        from workbench.core.request import ChatRequest

        turns = [{"role": r, "content": t, **self.turn_tools(i, r)} for i, (r, t) in enumerate(texts)]
        try:
            return validated(ChatRequest, {"system": system, "params": params, "messages": turns})
        except ValueError as exc:  # the tool turns no longer fit together (a turn removed or moved)
            raise WorkbenchError(validation_problem(exc), "undo the change, or load the conversation again") from None

    def with_cache(self, request: ChatRequest) -> ChatRequest:
        """``request`` with the prompt-cache breakpoints and TTL the cache fields name, in place of its own; an entry
        that names nothing in it raises a one-line ``WorkbenchError``."""
        from workbench.core.cache_breakpoints import with_breakpoints
        from workbench.core.request import CacheBreakpoints

        items = [item for item in self.query_one("#cache-points", Input).value.split(",") if item.strip()]
        ttl = self.query_one("#cache-ttl", Input).value.strip().lower()
        if ttl not in ("", "5m", "1h"):
            raise WorkbenchError(f"cache ttl {ttl}: not 5m or 1h", "type 5m or 1h, or leave it empty (5m)")
        return with_breakpoints(replace(request, cache=CacheBreakpoints()), items,
                                "1h" if ttl == "1h" else "5m" if ttl else None, name="cache breakpoint")

    def show_cache(self, points: CacheBreakpoints) -> None:
        """A loaded prompt's, session's or trace's breakpoints in the cache fields (turns numbered from 1)."""
        from workbench.core.cache_breakpoints import breakpoint_items

        self.query_one("#cache-points", Input).value = ", ".join(breakpoint_items(points))
        self.query_one("#cache-ttl", Input).value = points.ttl if points or points.ttl != "5m" else ""

    def action_run(self) -> None:
        try:
            targets = self.targets()
            if not targets:
                raise WorkbenchError("no target given", "type provider/model targets, separated by commas")
            if len(targets) > 6:
                raise WorkbenchError("at most 6 targets race at once", "remove some targets")
            request = self.build_request()
            source = self.race_source()
        except Exception as exc:
            self.workbench.report(exc)
            return
        self.post_message(RaceRequested(request, targets, source))

    async def load_request(self, request: ChatRequest, targets: Sequence[str]) -> None:
        """Replay: put a traced request back into the editor (every turn, in order)."""
        params = request.params
        await self._fill(request.system, request.messages, targets, params, params.json_schema,
                         (params.tools, params.tool_choice))
        users = [m for m in request.messages if m.role == "user"]
        self.set_attachments(users[-1].attachments if users else ())
        self.show_cache(request.cache)
        self.prompt = self.session = None
        self.turns.area("user").focus()

    def turn_tools(self, index: int, role: str) -> dict[str, Any]:
        """The tool calls or tool-result id (and reasoning items and origin) the loaded turn at ``index`` holds, while
        it keeps its ``role``."""
        if index >= len(self.tool_turns) or self.tool_turns[index][0] != role:
            return {}
        return self.tool_turns[index][1]

    async def _fill(self, system: str | None, messages: Sequence[Message | PromptMessage], targets: Sequence[str],
                    params: Any, json_schema: dict[str, Any] | None,
                    tools: tuple[Sequence[dict[str, Any]], str | None] = ((), None)) -> None:
        """Texts, targets (when given), ``params`` (a request's or a prompt file's) and the tools and tool choice
        into the editor."""
        self.tool_turns = [(m.role, {k: v for k, v in (("tool_calls", list(m.tool_calls)),
                                                       ("tool_call_id", m.tool_call_id),
                                                       ("reasoning_items", list(m.reasoning_items)),
                                                       ("origin", m.origin)) if v})
                           for m in messages]
        self.query_one("#tools", TextArea).load_text(json.dumps(list(tools[0]), indent=2) if tools[0] else "")
        self.query_one("#tool-choice", Input).value = tools[1] or ""
        self.system.load_text(system or "")
        await self.turns.set_messages(messages)
        if targets:
            self.query_one("#targets", Input).value = ", ".join(targets)
        for field, value in (("max-tokens", params.max_tokens), ("temperature", params.temperature),
                             ("top-p", params.top_p), ("seed", params.seed),
                             ("reasoning-effort", params.reasoning_effort),
                             ("thinking-budget", params.thinking_budget)):
            self.query_one(f"#{field}", Input).value = "" if value is None else str(value)
        self.query_one("#stop", Input).value = ", ".join(params.stop)
        self.query_one("#json-schema", TextArea).load_text(
            "" if json_schema is None else json.dumps(json_schema, indent=2))
