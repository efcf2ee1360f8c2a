"""The judge (grader) of a run: the request a grading prompt becomes, and which assertions wait for the suite's
judge (the model-graded ones that name no ``provider``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from workbench.core.errors import ConfigError
from workbench.core.evals.local_providers import local_target
from workbench.core.evals.model import MODEL_GRADED_TYPES, AssertionSpec, Suite, SuiteTarget
from workbench.core.evals.suite_promptfoo import Context, Src, SuiteFileError, target_ref
from workbench.core.request import ChatRequest, Message, Params


def judge_request(prompt: str) -> ChatRequest:
    """The request for a grading prompt, at temperature 0: a chat (a JSON list of ``{role, content}``, as
    promptfoo writes its grading prompts) as its system text and messages, any other text as one user
    message. A chat of system messages only (promptfoo's closed-QA prompt) is sent as the user message."""
    params = Params(temperature=0)
    try:
        chat = json.loads(prompt) if prompt.lstrip().startswith("[") else None
    except ValueError:
        chat = None
    roles = ("system", "user", "assistant")
    if not isinstance(chat, list) or not chat or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in roles for m in chat):
        return ChatRequest.from_prompt(prompt, params=params)
    system = "\n\n".join(m["content"] for m in chat if m["role"] == "system")
    messages = tuple(Message(role=m["role"], content=m["content"]) for m in chat if m["role"] != "system")
    if not messages:
        return ChatRequest.from_prompt(system, params=params)
    return ChatRequest(system=system or None, messages=messages, params=params)


def regraded(suite: Suite, judge: str) -> Suite:
    """``suite`` graded by ``judge`` over its own judge (``judge:``, ``defaultTest.options.provider``), as promptfoo's
    ``--grader`` replaces ``defaultTest.options.provider``: a model-graded assertion naming the suite's judge, or
    none, gets ``judge``; one naming another (its own, its test's ``options.provider``) keeps it.

    ``judge`` is written as promptfoo's ``--grader`` takes it too: a provider id (``openai:gpt-4o-mini``), or a
    provider that is not a model's (``echo``, an http(s) URL, ``file://grader.py`` relative to the suite's folder),
    which grades as such a target answers. Raises :class:`ConfigError` for one that cannot be."""
    judge, local = command_line_target(judge, Path(suite.path).parent)
    judges = suite.judges if local is None else {**suite.judges, judge: local}
    own = suite.judge

    def swap(spec: AssertionSpec) -> AssertionSpec:
        provider = judge if spec.type in MODEL_GRADED_TYPES and own is not None and spec.provider == own else (
            spec.provider)
        return dataclasses.replace(spec, provider=provider, assertions=tuple(swap(a) for a in spec.assertions))

    tests = tuple(dataclasses.replace(test, assertions=tuple(swap(a) for a in test.assertions)) for test in suite.tests)
    return dataclasses.replace(suite, judge=judge, judges=judges, tests=tests)


def command_line_target(text: str, folder: Path, option: str = "--grader") -> tuple[str, SuiteTarget | None]:
    """The name a target given on the command line (``--grader text``, ``-t text``) goes by, written as ours or as
    promptfoo's provider id, and its target when it is not a model's (``echo``, a URL, ``file://x.py`` relative to
    ``folder``)."""
    src = Src(option)
    try:
        local = local_target(Context(folder, folder), src, (), text, {}, ())
        if local is not None:
            return text, local
        return (target_ref(src, (), text) if ":" in text.split("/", 1)[0] else text), None
    except SuiteFileError as exc:
        raise ConfigError(f"{option} {text}: {exc.problem}", exc.hint) from None


def unjudged(suite: Suite) -> Iterator[AssertionSpec]:
    """The model-graded assertions of ``suite`` that name no judge (assert-sets' included): the suite's judge
    grades them."""
    for test in suite.tests:
        yield from _unjudged(test.assertions)


def _unjudged(specs: Iterable[AssertionSpec]) -> Iterator[AssertionSpec]:
    for spec in specs:
        yield from _unjudged(spec.assertions)
        if spec.type in MODEL_GRADED_TYPES and spec.provider is None:
            yield spec
