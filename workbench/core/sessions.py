"""Sessions: a race saved as ``sessions/<name>.yaml`` in the workspace, to diff, share and run again.

A session holds where the request came from (a prompt name and version, or an inline prompt), the
variable values, the request itself (system, messages, params), the targets, and per target the
outcome: text, finish, usage, cost, timing and error. The file is deterministic (fixed key order, no
defaults written), so two saves of the same race differ only where the race did. Malformed files are
reported as ``path:line: message``, like prompt files.

Its texts (variables, system prompt, messages, replies, errors) are written through the settings' redaction rules
(``[traces]``), as every file workbench writes: what they redact is not in the file, and in metadata-only mode no
text is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workbench.core.call_record import CallRecord, summary
from workbench.core.errors import ConfigError
from workbench.core.prompts.model import (
    NAME_PATTERN,
    SUFFIXES,
    CacheSettings,
    PromptFileError,
    PromptMessage,
    PromptParams,
    cache_breakpoints,
    cache_settings,
    cached_messages,
    check_cache,
    check_name,
    check_tool_turns,
    dump_yaml,
    parse_yaml_model,
    prompt_files,
    read_workspace_file,
    request_turns,
)
from workbench.core.prompts.versions import atomic_write
from workbench.core.request import ChatRequest, Params
from workbench.core.tool_turns import TurnToolCall
from workbench.core.traces.redact import Redactor

SESSIONS_DIR = "sessions"


class SessionFileError(PromptFileError):
    """A malformed session file: ``str(err)`` is ``path:line: message``."""

    default_hint = "fix the file; the other sessions still load"
    needs = "a session file needs at least name, targets and request"


class PromptRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    version: int = Field(ge=1)


class SessionParams(PromptParams):
    json_schema: dict[str, Any] | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: str | None = None


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str | None = None
    messages: list[PromptMessage] = Field(min_length=1)

    _tool_turns = field_validator("messages")(check_tool_turns)
    params: SessionParams = Field(default_factory=SessionParams)
    cache: CacheSettings | None = Field(default=None, validate_default=True)
    """Prompt-cache breakpoints after the system prompt and the tools (a turn's own is its ``cache: true``)."""

    _cache = field_validator("cache")(check_cache)


class SessionResult(BaseModel):
    """One target's outcome, with the fields of ``workbench run --json`` that describe the reply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str
    status: Literal["ok", "error"]
    error: str | None = None
    finish_reason: str | None = None
    served_by: str | None = None
    text: str = ""
    tool_calls: list[dict[str, str]] = Field(default_factory=list)
    """The reply's tool calls (``id``, ``name``, ``arguments``), as ``run --json`` lists them."""
    refusal: str | None = None
    """A refused reply's refusal text (``""``: without words), as ``run --json`` has it."""
    refusal_category: str | None = None
    blocks: list[dict[str, str]] = Field(default_factory=list)
    """The reply's provider blocks (``type``, ``id``, ``name``, ``content``), as ``run --json`` lists them."""
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    usage_estimated: bool = False
    cost_usd: float | None = None
    ttft_ms: float | None = None
    latency_ms: float | None = None
    tokens_per_s: float | None = None
    trace_id: str | None = None


class Session(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    prompt: PromptRef | None = None
    """The prompt version the request was rendered from; ``None`` for an inline prompt."""
    variables: dict[str, str] = Field(default_factory=dict)
    targets: list[str] = Field(min_length=1)
    request: SessionRequest
    results: list[SessionResult] = Field(default_factory=list)


def sessions_folder(workspace: Path) -> Path:
    return workspace / SESSIONS_DIR


# --- building and using ----------------------------------------------------------------------------------------


def session_from_race(name: str, request: ChatRequest, targets: Sequence[str], records: Sequence[CallRecord], *,
                      prompt: PromptRef | None = None, variables: Mapping[str, str] | None = None,
                      trace_ids: Sequence[str | None] | None = None) -> Session:
    """The session of a finished race (``records`` in the order of ``targets``)."""
    p = request.params
    params = SessionParams(temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens, stop=list(p.stop),
                           seed=p.seed, json_schema=p.json_schema, tools=list(p.tools), tool_choice=p.tool_choice,
                           reasoning_effort=p.reasoning_effort, thinking_budget=p.thinking_budget)
    ids = list(trace_ids) if trace_ids is not None else [None] * len(records)
    results = []
    for record, trace_id in zip(records, ids, strict=True):
        row = summary(record)
        fields = {key: row[key] for key in SessionResult.model_fields if key in row}
        results.append(SessionResult.model_validate({**fields, "trace_id": trace_id}))
    return Session(
        name=check_name(name), prompt=prompt, variables=dict(variables or {}), targets=list(targets),
        request=SessionRequest(system=request.system, messages=cached_messages(request), params=params,
                               cache=cache_settings(request.cache)),
        results=results,
    )


def session_request(session: Session) -> tuple[ChatRequest, list[str]]:
    """The saved request and its targets, ready to race again (or to load into an editor)."""
    saved = session.request
    p = saved.params
    params = Params(temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens, stop=tuple(p.stop),
                    seed=p.seed, json_schema=p.json_schema, tools=tuple(p.tools), tool_choice=p.tool_choice,
                    reasoning_effort=p.reasoning_effort, thinking_budget=p.thinking_budget)
    turns = request_turns(saved.messages, where=f"session {session.name}: ")  # attachments read from their paths
    request = ChatRequest(system=saved.system, messages=turns,
                          params=params, cache=cache_breakpoints(saved.cache, saved.messages))
    return request, list(session.targets)


# --- files -----------------------------------------------------------------------------------------------------


def dump_session(session: Session) -> str:
    """Deterministic YAML: the model's field order, nothing that equals its default."""
    return dump_yaml(session.model_dump(mode="json", exclude_defaults=True))


def parse_session(text: str, path: Path | str, *, default_name: str | None = None) -> Session:
    return parse_yaml_model(text, path, Session, default_name=default_name, error=SessionFileError)


def load_session_file(path: Path) -> Session:
    return parse_session(read_workspace_file(path, SessionFileError), path, default_name=path.stem)


def _kept_call(call: TurnToolCall, kept: Callable[[str], str]) -> TurnToolCall:
    """A tool call with its arguments redacted: ``{}`` when what is kept is no longer a JSON object (metadata-only)."""
    try:
        return TurnToolCall(id=call.id, name=call.name, arguments=kept(call.arguments))
    except ValueError:
        return replace(call, arguments="{}")


def redacted_session(session: Session, redactor: Redactor) -> Session:
    """The session as a file may hold it: every text through ``redactor`` (variable values, system prompt,
    messages, replies, errors); names, targets, parameters and figures as they are."""
    kept = redactor.stored
    request = session.request
    messages = [message.model_copy(update={"content": kept(message.content),
                                           "tool_calls": [_kept_call(c, kept) for c in message.tool_calls],
                                           "reasoning_items": [replace(i, text=kept(i.text), summary=(
                                               None if i.summary is None else tuple(map(kept, i.summary))))
                                                               for i in message.reasoning_items]})
                for message in request.messages]
    results = [result.model_copy(update={"text": kept(result.text),
                                         "error": None if result.error is None else kept(result.error),
                                         "tool_calls": [{**c, "arguments": kept(c["arguments"])}
                                                        for c in result.tool_calls]})
               for result in session.results]
    return session.model_copy(update={
        "variables": redactor.mapping(session.variables), "results": results,
        "request": request.model_copy(update={"system": None if request.system is None else kept(request.system),
                                              "messages": messages})})


def save_session(workspace: Path, session: Session, redactor: Redactor | None = None) -> Path:
    """Write ``sessions/<name>.yaml`` (replacing an earlier save of the same name), its texts through ``redactor``
    (the settings' :meth:`~workbench.core.config.Settings.redactor`; the default rules without one)."""
    path = sessions_folder(workspace) / f"{session.name}.yaml"
    atomic_write(path, dump_session(redacted_session(session, redactor or Redactor.build())))
    return path


def find_session(ref: str, workspace: Path | None) -> Path:
    """A session file: ``ref`` as a path, else the session named ``ref`` in the workspace's ``sessions/``."""
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    if workspace is not None and "/" not in ref and path.suffix not in SUFFIXES:
        folder = sessions_folder(workspace)
        for suffix in SUFFIXES:
            if (folder / f"{check_name(ref)}{suffix}").is_file():
                return folder / f"{ref}{suffix}"
    raise ConfigError(f"no session file or session named '{ref}'",
                      "pass a session file's path or a name from: workbench sessions list")


def load_sessions(workspace: Path) -> tuple[list[tuple[Path, Session]], list[PromptFileError]]:
    """Every session file in the workspace, by name, and the malformed files' errors (which never stop the rest)."""
    loaded: list[tuple[Path, Session]] = []
    errors: list[PromptFileError] = []
    for path in prompt_files(sessions_folder(workspace)):
        try:
            loaded.append((path, load_session_file(path)))
        except PromptFileError as exc:
            errors.append(exc)
    return loaded, errors
