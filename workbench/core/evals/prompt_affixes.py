"""promptfoo's ``options.prefix`` and ``options.suffix`` of a test (or of ``defaultTest``, or a CSV's ``__prefix`` and
``__suffix`` columns): text put before and after the prompt's text before it is rendered."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from workbench.core.errors import ConfigError
from workbench.core.evals.model import SuitePrompt, TestCase


def affixed(prompt: SuitePrompt, test: TestCase) -> SuitePrompt:
    """``prompt`` with the test's prefix and suffix around its text."""
    if not (test.prefix or test.suffix):
        return prompt
    message = prompt.prompt.messages[0]
    content = f"{test.prefix}{message.content}{test.suffix}"
    return replace(prompt, prompt=prompt.prompt.model_copy(update={"messages": [message.model_copy(
        update={"content": content})]}))


def check_affixes(prompts: Iterable[SuitePrompt], tests: Iterable[TestCase]) -> None:
    """Raise a :class:`ConfigError` at the first test with a prefix or suffix run on a prompt that is not one text
    (a chat, or a prompt function: promptfoo would send the chat's JSON as text, or drop the prefix)."""
    chats = [p for p in prompts if p.function is not None or p.json_template is not None or p.prompt.system
             or len(p.prompt.messages) != 1 or p.prompt.messages[0].role != "user"]
    for test in tests:
        if chats and (test.prefix or test.suffix):
            raise ConfigError(f"{test.source}: test '{test.key}': options.prefix and suffix apply to a prompt's "
                              f"text, and prompt '{chats[0].label}' is a chat or a prompt function",
                              "put the text in the prompt itself, or run the test on text prompts only")
