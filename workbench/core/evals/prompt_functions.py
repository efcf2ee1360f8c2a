"""promptfoo's prompt functions (``prompts: [file://prompt.py:fn]``, ``.js`` too): called for each test on each
target with promptfoo's context ``{vars, provider: {id, label}}``; what they return (a text, a chat list, or
``{prompt}``) is the prompt, rendered with the test's variables as promptfoo renders it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.evals.model import SuitePrompt, SuiteTarget
from workbench.core.evals.node_bridge import DEFAULT_TIMEOUT_S, JavaScriptError, current, js_function
from workbench.core.evals.prompt_render import chat_prompt
from workbench.core.evals.python_assert import PythonAssertionError, run_python
from workbench.core.evals.suite_promptfoo import Src
from workbench.core.evals.suite_sources import CodeRef, python_code
from workbench.core.prompts.model import Prompt, PromptMessage
from workbench.core.templating import TemplateError, check_syntax, template_values


class PromptFunctionError(Exception):
    """A prompt function gave no prompt: it failed, or returned something that is not one. One line."""


def function_prompt(ref: CodeRef, label: str | None, shown: str) -> SuitePrompt:
    """The prompt a function gives, before it is called (labelled ``path:function`` as promptfoo does)."""
    name = ref.path.stem
    written = f"{shown}:{ref.function}" if ref.function else shown
    placeholder = Prompt(name=name, messages=[PromptMessage(role="user", content=f"(the prompt {written} returns)")])
    return SuitePrompt(label or written, placeholder, nunjucks=True, function=ref.ref)


async def called_prompt(prompt: SuitePrompt, variables: Mapping[str, str], target: SuiteTarget,
                        base_dir: Path) -> SuitePrompt:
    """``prompt`` as its function gives it for these variables and target (``prompt`` itself if it has none)."""
    if prompt.function is None:
        return prompt
    context = {"vars": template_values(variables), "provider": {"id": target.ref, "label": target.label}}
    try:
        if python_code(prompt.function):
            result = await run_python(prompt.function, None, {}, base_dir=base_dir, time_limit=DEFAULT_TIMEOUT_S,
                                      args=[context])
        else:
            result = await current().call(js_function(prompt.function, base_dir), [context])
    except (PythonAssertionError, JavaScriptError) as exc:
        raise PromptFunctionError(str(exc)) from None
    given, chat = _as_prompt(result, prompt.prompt.name)
    return SuitePrompt(prompt.label, given, nunjucks=True, chat=chat)


def _as_prompt(result: Any, name: str) -> tuple[Prompt, bool]:
    """The prompt a function returned, and whether it is a chat (a list of messages, or a text that is one)."""
    if isinstance(result, dict) and "prompt" in result:
        if result.get("config"):
            raise PromptFunctionError("it returned a config: prompt functions' configs are not supported")
        result = result["prompt"]
    if isinstance(result, str):
        chat = _json_chat(result)
        prompt = Prompt(name=name, messages=[PromptMessage(role="user", content=result)]) if chat is None else None
    else:
        chat, prompt = result, None
    if prompt is None:
        if not isinstance(chat, list):
            raise PromptFunctionError(f"it returned a {type(result).__name__}: return a text or a list of messages")
        try:
            prompt = chat_prompt(Src("the prompt function's result"), (), chat, name)
        except ConfigError as exc:
            raise PromptFunctionError(exc.message) from None
    try:
        for text in (prompt.system or "", *(m.content for m in prompt.messages)):
            check_syntax(text)
    except TemplateError as exc:
        raise PromptFunctionError(f"its prompt is not a valid template: {exc}") from None
    return prompt, chat is not None


def _json_chat(text: str) -> Any:
    """A returned text that is a JSON list of messages, as that list (promptfoo reads it so); None otherwise."""
    if not text.lstrip().startswith("["):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, list) and all(isinstance(m, dict) for m in data) else None
