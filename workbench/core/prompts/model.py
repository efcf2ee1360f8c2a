"""Prompt files: one YAML file per prompt in a workspace's ``prompts/`` folder.

Loading reports malformed files as ``path:line: message`` (:class:`PromptFileError`) and never lets one bad
file stop the others; :func:`dump_prompt` writes stable, human-diffable YAML that loads back equal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from workbench.core.attachments import AttachmentEntry, entry_of
from workbench.core.bounds import LocatedError
from workbench.core.errors import ConfigError
from workbench.core.plain_data import as_data
from workbench.core.reasoning_items import ReasoningItem
from workbench.core.request import (
    MAX_CACHE_BREAKPOINTS,
    CacheBreakpoints,
    ChatRequest,
    Message,
    Params,
    ReasoningEffort,
    split_target,
)
from workbench.core.tool_specs import load_tools, tool_choice_problem, tool_problem
from workbench.core.tool_turns import TurnToolCall, tool_turn_problem
from workbench.core.yaml_lines import line_of, load, syntax_error

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
_NAME = re.compile(NAME_PATTERN)
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")
SUFFIXES = (".yaml", ".yml")
FILE_REF = "file://"


class PromptFileError(ConfigError):
    """A malformed prompt file: ``str(err)`` is ``path:line: message``."""

    default_hint = "fix the file; the other prompts still load"
    needs = "a prompt file needs at least name and messages"

    def __init__(self, path: Path | str, line: int, problem: str, hint: str | None = None) -> None:
        super().__init__(f"{path}:{line}: {problem}", hint or self.default_hint)
        self.path = str(path)
        self.line = line
        self.problem = problem


class PromptParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    reasoning_effort: ReasoningEffort | None = None
    thinking_budget: int | None = Field(default=None, ge=0, le=1_000_000)


class PromptMessage(BaseModel):
    """A turn of a prompt file or a session: text, or an assistant turn's tool calls, or a tool's (canned) result."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[TurnToolCall] = Field(default_factory=list)
    """An assistant turn's tool calls: ``id``, ``name``, ``arguments`` (JSON text, or a mapping)."""
    tool_call_id: str | None = None
    """A ``tool`` turn's call: its content is that call's result."""
    attachments: list[AttachmentEntry] = Field(default_factory=list)
    """Images and PDFs a user turn carries: paths, relative ones to the prompt file's folder (read when the
    request is made, :func:`request_turns`), or ``{path, detail}`` for an image's OpenAI detail."""
    cache: bool = False
    """A prompt-cache breakpoint after this turn (Anthropic ``cache_control``; others cache on their own)."""
    reasoning_items: list[ReasoningItem] = Field(default_factory=list)
    """A replied assistant turn's signed or encrypted reasoning, sent back with its tool calls to :attr:`origin`
    only (:mod:`workbench.core.reasoning_items`): a saved tool loop goes on as it would have."""
    origin: str | None = None
    """The provider and wire that produced the turn (its reasoning items and tool-call signatures)."""

    @model_validator(mode="after")
    def _tool_fields(self) -> PromptMessage:
        request_message(self)  # the same rules as a request's turn
        if self.attachments and self.role != "user":
            raise ValueError(f"a {self.role} turn cannot carry attachments (a user turn does)")
        if (self.reasoning_items or self.origin) and self.role != "assistant":
            raise ValueError(f"a {self.role} turn has no reasoning items nor origin (a replied assistant turn has)")
        return self


def request_message(message: PromptMessage, fill: Callable[[str], str] = str) -> Message:
    """A file's turn as a request's, its text through ``fill`` (variables)."""
    return Message(role=message.role, content=fill(message.content), tool_calls=tuple(message.tool_calls),
                   tool_call_id=message.tool_call_id, reasoning_items=tuple(message.reasoning_items),
                   origin=message.origin)


def prompt_message(message: Message) -> PromptMessage:
    """A request's turn as a file holds it."""
    return PromptMessage(role=message.role, content=message.content, tool_calls=list(message.tool_calls),
                         tool_call_id=message.tool_call_id,
                         attachments=[entry_of(a) for a in message.attachments],
                         reasoning_items=list(message.reasoning_items),
                         origin=message.origin if message.reasoning_items or any(
                             c.signature for c in message.tool_calls) else None)  # only what its origin takes


def request_turns(messages: Sequence[PromptMessage], fill: Callable[[str], str] = str, *,
                  folder: Path | None = None, where: str = "") -> tuple[Message, ...]:
    """A file's turns as a request's (:func:`request_message`), each user turn's attachments read from their
    paths (relative ones against ``folder``, else the working directory); ``where`` names the file in errors."""
    from workbench.core.attachments import load_entry

    turns = []
    for i, message in enumerate(messages):
        turn = request_message(message, fill)
        if message.attachments:
            files = tuple(load_entry(entry, folder, where=f"{where}messages[{i}].attachments[{j}]")
                          for j, entry in enumerate(message.attachments))
            turn = replace(turn, attachments=files)
        turns.append(turn)
    return tuple(turns)


def check_tool_turns(messages: Sequence[PromptMessage]) -> Sequence[PromptMessage]:
    """A field validator's check of a file's turns: every tool call answered right after it, every result a call's."""
    problem = tool_turn_problem([request_message(m) for m in messages])
    if problem is not None:
        raise ValueError(f"messages[{problem[0]}]: {problem[1]}")
    return messages


def message_data(message: PromptMessage) -> dict[str, Any]:
    """A turn as a file writes it: role, a result's call id, content (left out when an assistant's tool-call turn
    has none), the tool calls."""
    out: dict[str, Any] = {"role": message.role}
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.content or not message.tool_calls:
        out["content"] = message.content
    if message.tool_calls:
        out["tool_calls"] = [as_data(call, exclude_none=True) for call in message.tool_calls]
    if message.attachments:
        out["attachments"] = [e if isinstance(e, str) else as_data(e, exclude_none=True) for e in message.attachments]
    if message.cache:
        out["cache"] = True
    if message.reasoning_items:
        out["reasoning_items"] = [as_data(item, exclude_defaults=True) for item in message.reasoning_items]
    if message.origin is not None:
        out["origin"] = message.origin
    return out


class CacheSettings(BaseModel):
    """A file's ``cache:`` mapping: breakpoints after the system prompt and the tools, and their TTL (a turn's
    own breakpoint is its ``cache: true``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: bool = False
    tools: bool = False
    ttl: Literal["5m", "1h"] = "5m"


def check_cache(settings: CacheSettings | None, info: ValidationInfo) -> CacheSettings | None:
    """A field validator's check of a file's ``cache:`` against its ``system``, ``messages`` and ``tools`` (the
    fields before it); the breakpoints within Anthropic's limit."""
    data = info.data
    messages = [m for m in data.get("messages") or () if m.cache]
    if settings is None:
        count = len(messages)
    else:
        if settings.system and not data.get("system"):
            raise ValueError("system: true, but there is no system prompt to cache")
        params = data.get("params")
        if settings.tools and not (data.get("tools") or getattr(params, "tools", None)):
            raise ValueError("tools: true, but there are no tools to cache")
        count = int(settings.system) + int(settings.tools) + len(messages)
    if count > MAX_CACHE_BREAKPOINTS:
        raise ValueError(f"{count} cache breakpoints: at most {MAX_CACHE_BREAKPOINTS} (Anthropic's limit)")
    return settings


def cache_breakpoints(settings: CacheSettings | None, messages: Sequence[PromptMessage]) -> CacheBreakpoints:
    """A file's breakpoints as a request's."""
    settings = settings or CacheSettings()
    return CacheBreakpoints(system=settings.system, tools=settings.tools, ttl=settings.ttl,
                            messages=tuple(i for i, m in enumerate(messages) if m.cache))


def cached_messages(request: ChatRequest) -> list[PromptMessage]:
    """A request's turns as a file holds them, its breakpoints on theirs."""
    marked = set(request.cache.messages)
    return [prompt_message(m).model_copy(update={"cache": True}) if i in marked else prompt_message(m)
            for i, m in enumerate(request.messages)]


def cache_settings(points: CacheBreakpoints) -> CacheSettings | None:
    """A request's breakpoints on the system prompt and the tools, and their TTL, as a file's ``cache:``
    (``None``: the defaults, nothing to write)."""
    settings = CacheSettings(system=points.system, tools=points.tools, ttl=points.ttl)
    return None if settings == CacheSettings() else settings


class Variable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    default: str | None = None

    @field_validator("default", mode="before")
    @classmethod
    def _scalar_to_text(cls, value: Any) -> Any:
        # ``default: 3`` or ``default: true`` in YAML mean the text, as substituted into the prompt.
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return value


class Prompt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    params: PromptParams = Field(default_factory=PromptParams)
    system: str | None = None
    messages: list[PromptMessage] = Field(default_factory=list)
    tools: list[dict[str, Any]] = Field(default_factory=list)
    """Tools in OpenAI's function format: a list in the file, or ``tools: file://PATH`` (JSON or YAML, relative to
    the prompt file's folder), read and checked when the file loads."""
    tools_file: str | None = None
    """The path of ``tools: file://PATH`` (written back as such; a version holds the tools themselves)."""
    tool_choice: str | None = None
    """``auto``, ``none``, ``required`` or one tool's name."""
    cache: CacheSettings | None = Field(default=None, validate_default=True)
    """Prompt-cache breakpoints after the system prompt, and their TTL (written after ``system``)."""
    variables: dict[str, Variable] = Field(default_factory=dict)
    output_schema: dict[str, Any] | None = None

    _tool_turns = field_validator("messages")(check_tool_turns)
    _cache = field_validator("cache")(check_cache)

    @model_validator(mode="before")
    @classmethod
    def _tools_file(cls, data: Any, info: ValidationInfo) -> Any:
        """``tools: file://PATH`` read from its file (relative to the ``folder`` of the validation context)."""
        if isinstance(data, dict) and "tools_file" in data and info.context:  # a file's key, not a copy's field
            raise LocatedError(("tools_file",), f"unknown key 'tools_file': write tools: {FILE_REF}PATH")
        if not isinstance(data, dict) or not isinstance(data.get("tools"), str):
            return data
        ref = data["tools"]
        if not ref.startswith(FILE_REF):
            raise LocatedError(("tools",), f"tools: a list of tools or {FILE_REF}PATH, not {ref!r}")
        folder = (info.context or {}).get("folder")
        path = Path(ref.removeprefix(FILE_REF)).expanduser()
        try:
            tools = load_tools(path if path.is_absolute() or folder is None else Path(folder) / path)
        except ConfigError as exc:
            raise LocatedError(("tools",), f"tools: {exc}") from None
        return {**data, "tools": list(tools), "tools_file": ref.removeprefix(FILE_REF)}

    @field_validator("tools")
    @classmethod
    def _tools(cls, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found = tool_problem(tools) if tools else None
        if found is not None:
            raise LocatedError(found[0], found[1])
        return tools

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice(cls, choice: str | None, info: ValidationInfo) -> str | None:
        problem = None if choice is None or "tools" not in info.data else tool_choice_problem(
            choice, info.data["tools"])
        if problem is not None:
            raise ValueError(problem)
        return choice


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(f"'{name}' is not a prompt name",
                          "use letters, digits, '.', '_' and '-', starting with a letter or digit")
    return name


# --- loading -------------------------------------------------------------------------------------------------


_M = TypeVar("_M", bound=BaseModel)


def parse_yaml_model(text: str, path: Path | str, model: type[_M], *, default_name: str | None = None,
                     error: type[PromptFileError] = PromptFileError) -> _M:
    """Parse a workspace YAML file (prompt, session) into ``model``; a malformed one raises ``error`` with its line.

    With ``default_name`` (the file's stem) a missing ``name`` is that, and a different one is an error."""
    try:
        data = load(text)
    except yaml.YAMLError as exc:
        raise error(path, *syntax_error(exc)) from None
    if data is None:
        raise error(path, 1, "the file is empty", error.needs)
    if not isinstance(data, dict):
        raise error(path, 1, f"expected a mapping of keys, not a {type(data).__name__}", error.needs)
    split = split_target("targets", data["targets"]) if isinstance(data.get("targets"), list) else None
    if split is not None:
        raise error(path, line_of(text, ("targets", split[0])), split[1], split[2])
    if default_name is not None:
        data.setdefault("name", default_name)
    try:
        parsed = model.model_validate(data, context={"folder": Path(path).parent})
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        loc = tuple(first["loc"])
        where = ".".join(str(part) for part in loc) or "(top level)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        inner = (first.get("ctx") or {}).get("error")
        if isinstance(inner, LocatedError):  # a place inside the field's value: its own line, its own words
            problem = f"{where}: {inner}" if loc else str(inner)
            raise error(path, line_of(text, (*loc, *inner.loc)), f"{problem}{more}") from None
        raise error(path, line_of(text, loc), f"{where}: {first['msg']}{more}") from None
    name = getattr(parsed, "name", None)
    if default_name is not None and name != default_name:
        raise error(path, line_of(text, ("name",)), f"name '{name}' does not match the file name '{default_name}'",
                    f"rename the file to {name}.yaml or set name: {default_name}")
    return parsed


def parse_prompt(text: str, path: Path | str, *, default_name: str | None = None) -> Prompt:
    """Parse one prompt file's text; raise :class:`PromptFileError` (with the line) if it is malformed."""
    return parse_yaml_model(text, path, Prompt, default_name=default_name)


def prompt_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file() and not p.name.startswith("."))


def read_workspace_file(path: Path, error: type[PromptFileError] = PromptFileError) -> str:
    """A workspace file's text; unreadable or not UTF-8 raises ``error`` at line 1."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise error(path, 1, "not UTF-8 text", "convert the file to UTF-8") from None
    except OSError as exc:
        raise error(path, 1, f"cannot read: {exc.strerror}") from None


def load_prompt_file(path: Path) -> Prompt:
    return parse_prompt(read_workspace_file(path), path, default_name=path.stem)


def load_prompts(folder: Path) -> tuple[list[Prompt], list[PromptFileError]]:
    """Every prompt in ``folder``, sorted by name, and the malformed files' errors (which never stop the rest)."""
    prompts: dict[str, Prompt] = {}
    errors: list[PromptFileError] = []
    for path in prompt_files(folder):
        try:
            prompt = load_prompt_file(path)
        except PromptFileError as exc:
            errors.append(exc)
            continue
        if prompt.name in prompts:
            errors.append(PromptFileError(path, 1, f"a second file for prompt '{prompt.name}'",
                                          "keep one file per prompt"))
            continue
        prompts[prompt.name] = prompt
    return [prompts[name] for name in sorted(prompts)], errors


def find_prompt_file(folder: Path, name: str) -> Path | None:
    check_name(name)
    for suffix in SUFFIXES:
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    return None


# --- dumping -------------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # indent list items under their key


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _represent_str)


def prompt_data(prompt: Prompt) -> dict[str, Any]:
    """The prompt as plain data in the fixed file order, without empty or default entries."""
    out: dict[str, Any] = {"name": prompt.name}
    if prompt.description:
        out["description"] = prompt.description
    if prompt.tags:
        out["tags"] = list(prompt.tags)
    if prompt.targets:
        out["targets"] = list(prompt.targets)
    params = {key: value for key, value in (
        ("temperature", prompt.params.temperature), ("top_p", prompt.params.top_p),
        ("max_tokens", prompt.params.max_tokens), ("stop", list(prompt.params.stop) or None),
        ("seed", prompt.params.seed), ("reasoning_effort", prompt.params.reasoning_effort),
        ("thinking_budget", prompt.params.thinking_budget)) if value is not None}
    if params:
        out["params"] = params
    if prompt.system is not None:
        out["system"] = prompt.system
    if prompt.cache is not None:
        out["cache"] = prompt.cache.model_dump(exclude_defaults=True)
    if prompt.messages:
        out["messages"] = [message_data(m) for m in prompt.messages]
    if prompt.tools_file is not None:
        out["tools"] = FILE_REF + prompt.tools_file
    elif prompt.tools:
        out["tools"] = list(prompt.tools)
    if prompt.tool_choice is not None:
        out["tool_choice"] = prompt.tool_choice
    if prompt.variables:
        variables: dict[str, Any] = {}
        for name, var in prompt.variables.items():
            entry: dict[str, Any] = {}
            if var.description:
                entry["description"] = var.description
            if var.default is not None:
                entry["default"] = var.default
            variables[name] = entry
        out["variables"] = variables
    if prompt.output_schema is not None:
        out["output_schema"] = prompt.output_schema
    return out


def dump_yaml(data: Mapping[str, Any]) -> str:
    """Stable, block-style YAML in the mapping's own key order (literal ``|`` for multi-line text)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=1_000_000)


def dump_prompt(prompt: Prompt) -> str:
    """Stable, block-style YAML that :func:`parse_prompt` loads back equal."""
    return dump_yaml(prompt_data(prompt))


# --- rendering -----------------------------------------------------------------------------------------------


def variables_used(prompt: Prompt) -> list[str]:
    texts = [prompt.system or "", *(m.content for m in prompt.messages)]
    seen: dict[str, None] = {}
    for text in texts:
        for match in _VARIABLE.finditer(text):
            seen.setdefault(match[1], None)
    return list(seen)


def variable_values(prompt: Prompt, variables: Mapping[str, str] | None = None) -> dict[str, str]:
    """The value of every variable the prompt uses: given values first, then defaults."""
    defaults = {n: v.default for n, v in prompt.variables.items() if v.default is not None}
    values = {**defaults, **(variables or {})}
    missing = [name for name in variables_used(prompt) if name not in values]
    if missing:
        names = ", ".join(missing)
        raise ConfigError(f"prompt '{prompt.name}' needs a value for {names}",
                          "pass it (e.g. --var " + f"{missing[0]}=...) or give the variable a default in the file")
    return {name: values[name] for name in variables_used(prompt)}


def to_request(prompt: Prompt, variables: Mapping[str, str] | None = None, *,
               folder: Path | None = None) -> ChatRequest:
    """The chat request, with every ``{{name}}`` replaced (given values first, then defaults), and the turns'
    attachments read (relative paths against ``folder``: the prompt file's folder)."""
    values = variable_values(prompt, variables)
    if not prompt.messages:
        raise ConfigError(f"prompt '{prompt.name}' has no messages", "add a messages: list with a user message")

    def fill(text: str) -> str:
        return _VARIABLE.sub(lambda m: values[m[1]], text)

    return ChatRequest(system=fill(prompt.system) if prompt.system is not None else None,
                       messages=request_turns(prompt.messages, fill, folder=folder, where=f"prompt {prompt.name}: "),
                       params=request_params(prompt), cache=cache_breakpoints(prompt.cache, prompt.messages))


def request_params(prompt: Prompt) -> Params:
    """The request parameters a prompt sets (its output schema included)."""
    return Params(temperature=prompt.params.temperature, top_p=prompt.params.top_p,
                  max_tokens=prompt.params.max_tokens, stop=tuple(prompt.params.stop), seed=prompt.params.seed,
                  json_schema=prompt.output_schema, reasoning_effort=prompt.params.reasoning_effort,
                  thinking_budget=prompt.params.thinking_budget, tools=tuple(prompt.tools),
                  tool_choice=prompt.tool_choice)
