"""A suite's prompt rendered for one test.

Our prompt files keep their rule: every ``{{name}}`` needs a value (:func:`to_request`). Prompts written in
promptfoo's forms (inline text, ``.txt``/``.md``/``.json`` files, chat lists) are rendered as promptfoo renders
them, with Nunjucks (:mod:`workbench.core.templating`): an unset variable is empty, and a variable whose value
is itself a template is rendered with the others first. A ``.json`` chat prompt with template tags is rendered
before it is read as JSON, its string variables inserted JSON-escaped so the result stays JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from workbench.core.errors import ConfigError
from workbench.core.evals.model import SuitePrompt, TestCase
from workbench.core.evals.suite_promptfoo import FILE, Src, expect
from workbench.core.prompts.model import Prompt, PromptMessage, request_message, request_params, to_request
from workbench.core.providers.turns import openai_chat_turns
from workbench.core.request import ChatRequest
from workbench.core.templating import TemplateError, has_template, render, template_values
from workbench.core.tool_turns import TurnToolCall, tool_turn_problem
from workbench.core.validate import validated
from workbench.core.yaml_lines import Loc

_TOOL_KEYS = {"assistant": {"tool_calls"}, "tool": {"tool_call_id"}}
"""The keys OpenAI's chat format adds for tool turns: an assistant turn's calls, a tool result's call id."""


def chat_prompt(src: Src, loc: Loc, data: Any, name: str) -> Prompt:
    """A chat list of ``{role, content}``; leading system messages become the system prompt. Tool turns are in
    OpenAI's chat format: an assistant turn's ``tool_calls`` (``{id, type: function, function: {name,
    arguments}}``, its content then ``null`` or left out) and ``{role: tool, tool_call_id, content}``."""
    expect(src, loc, data, list, "a list of {role, content} messages")
    system: list[str] = []
    messages: list[PromptMessage] = []
    for i, message in enumerate(data):
        at = (*loc, i)
        expect(src, at, message, dict, "a message {role, content}")
        role = message.get("role")
        extra = _TOOL_KEYS.get(role, set()) if isinstance(role, str) else set()
        calls = message.get("tool_calls") if role == "assistant" else None
        if "role" not in message or not set(message) <= {"role", "content", *extra} or (
                "content" not in message and calls is None) or (role == "tool" and "tool_call_id" not in message):
            raise src.error(at, f"a message has role and content, not {', '.join(map(str, message))}")
        content = "" if calls is not None and message.get("content") is None else expect(
            src, (*at, "content"), message.get("content"), str, "text content")
        if role == "system" and not messages:
            system.append(content)
        elif role in ("user", "assistant", "tool"):
            call_id = expect(src, (*at, "tool_call_id"), message["tool_call_id"], str, "a call's id") \
                if role == "tool" else None
            messages.append(PromptMessage(role=role, content=content, tool_call_id=call_id,
                                          tool_calls=_tool_calls(src, (*at, "tool_calls"), calls)))
        else:
            raise src.error((*at, "role"), f"role '{role}' is not supported here",
                            "system messages come first; then user, assistant and tool")
    if not messages:
        raise src.error(loc, "the chat has no user message", "add {role: user, content: ...}")
    problem = tool_turn_problem([request_message(m) for m in messages])
    if problem is not None:
        index, why = problem
        raise src.error((*loc, len(system) + index), why, "answer each tool call with a tool turn right after it")
    return Prompt(name=name, system="\n\n".join(system) or None, messages=messages)


def _tool_calls(src: Src, loc: Loc, data: Any) -> list[TurnToolCall]:
    """An assistant turn's ``tool_calls`` in OpenAI's chat format."""
    if data is None:
        return []
    expect(src, loc, data, list, "a list of tool calls")
    calls = []
    for j, call in enumerate(data):
        function = call.get("function") if isinstance(call, dict) else None
        try:
            if not isinstance(function, dict) or call.get("type", "function") != "function":
                raise ValueError("no function")
            calls.append(validated(TurnToolCall, {"id": call.get("id"), "name": function.get("name"),
                                                  "arguments": function.get("arguments") or "{}"}))
        except (ValueError, ValidationError):
            raise src.error((*loc, j), "a tool call is {id, type: function, function: {name, arguments}} with "
                                       "arguments a JSON object") from None
    return calls


def resolve_variables(variables: Mapping[str, str], missing: set[str] | None = None) -> dict[str, Any]:
    """The values templates see: structured variables as their structure, a value that is a template rendered
    with the other variables."""
    values = template_values(variables)
    return {name: render(value, {k: v for k, v in values.items() if k != name}, missing)
            if isinstance(value, str) and has_template(value) else value for name, value in values.items()}


def render_request(prompt: SuitePrompt, variables: Mapping[str, str], missing: set[str] | None = None) -> ChatRequest:
    """The chat request of ``prompt`` for a test's ``variables``; names rendered unset are added to ``missing``.
    Raises :class:`ConfigError` (a missing value of our prompt files, a template that fails)."""
    if not prompt.nunjucks:
        return to_request(prompt.prompt, variables, folder=prompt.folder)
    try:
        values = resolve_variables(variables, missing)
        source = prompt.prompt if prompt.json_template is None else _rendered_chat(prompt, values, missing)

        def fill(text: str) -> str:
            return text if prompt.json_template is not None else render(text, values, missing)

        system = fill(source.system) if source.system is not None else None
        messages = tuple(request_message(m, fill) for m in source.messages)
    except TemplateError as exc:
        raise ConfigError(f"prompt '{prompt.label}': {exc}", "fix the template in the prompt") from None
    if not messages:
        raise ConfigError(f"prompt '{prompt.label}' has no messages", "add a user message")
    return ChatRequest(system=system, messages=messages, params=request_params(prompt.prompt))


def rendered_prompt(prompt: SuitePrompt, request: ChatRequest) -> str:
    """The rendered prompt as promptfoo hands it to the provider, the assertions (``context.prompt``) and the
    graders: a text prompt's text; a chat's messages as promptfoo writes a rendered JSON prompt
    (``JSON.stringify(messages, null, 2)``). A prompt with a system text or several messages is a chat."""
    if not prompt.chat and request.system is None and len(request.messages) == 1:
        return request.messages[0].content
    chat = ([{"role": "system", "content": request.system}] if request.system is not None else []) + \
        openai_chat_turns(request.messages, lambda m: {"role": m.role, "content": m.content})  # tool turns as OpenAI's
    return json.dumps(chat, indent=2, ensure_ascii=False)


def _rendered_chat(prompt: SuitePrompt, values: dict[str, Any], missing: set[str] | None) -> Prompt:
    assert prompt.json_template is not None
    escaped = {name: json.dumps(value, ensure_ascii=False)[1:-1] if isinstance(value, str) else value
               for name, value in values.items()}
    text = render(prompt.json_template, escaped, missing)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"prompt '{prompt.label}' renders to text that is not JSON ({exc})",
                          "check the template's commas and quotes") from None
    try:
        return chat_prompt(Src(f"prompt '{prompt.label}' as rendered"), (), data, prompt.prompt.name)
    except ConfigError as exc:
        raise ConfigError(exc.message, exc.hint) from None


def render_value(value: Any, variables: Mapping[str, Any], missing: set[str] | None = None) -> Any:
    """An assertion's value rendered with the test's variables (a string, or each string of a list); a
    ``file://`` reference is left for the assertion to read."""
    if isinstance(value, str):
        return value if value.startswith(FILE) else render(value, variables, missing)
    if isinstance(value, list):
        return [render_value(item, variables, missing) for item in value]
    return value


def template_warnings(prompts: Iterable[SuitePrompt], tests: Iterable[TestCase]) -> list[str]:
    """Every prompt rendered for every test once, as a run will: a template that fails is a
    :class:`ConfigError` naming the test; each variable rendered unset is one warning, at its first test."""
    promptfoo = [prompt for prompt in prompts if prompt.nunjucks]
    warned: set[str] = set()
    warnings: list[str] = []
    for test in tests:
        missing: set[str] = set()
        try:
            for prompt in promptfoo:
                render_request(prompt, test.vars, missing)
            values = resolve_variables(test.vars, missing)
            for spec in test.assertions:
                render_value(spec.value, values, missing)
        except TemplateError as exc:
            raise ConfigError(f"{test.source}: an assertion's value: {exc}", "fix the template") from None
        except ConfigError as exc:
            raise ConfigError(f"{test.source}: test '{test.key}': {exc.message}", exc.hint) from None
        if test.transform_vars is not None:  # its variables are known once its code has run
            continue
        for name in sorted(missing - warned):
            warned.add(name)
            warnings.append(f"{test.source}: variable '{name}' is not set: rendered empty (as promptfoo does)")
    return warnings
