"""Promote a race to a test case: append one test to an eval suite without rewriting the rest of the file.

The suite is composed (not loaded) with PyYAML to find its top-level ``tests:``; the new test is appended to it
in place (:mod:`workbench.core.yaml_edit`), written like the test before it, so comments, key order and
formatting elsewhere stay as they were. A ``tests:`` that references one ``file://`` test file gets the test in
that file instead (.yaml/.yml list, .jsonl line, .csv row).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from workbench.core.errors import ConfigError
from workbench.core.evals.model import SuitePrompt
from workbench.core.evals.suite_promptfoo import FILE
from workbench.core.prompts.model import _VARIABLE, Prompt, dump_yaml, variable_values
from workbench.core.prompts.versions import atomic_write
from workbench.core.providers.turns import openai_chat_turns
from workbench.core.request import ChatRequest
from workbench.core.sessions import PromptRef
from workbench.core.workspace import suite_files
from workbench.core.yaml_edit import append_item
from workbench.core.yaml_lines import compose


def _test(description: str, variables: Mapping[str, str], assertion: Mapping[str, Any]) -> dict[str, Any]:
    """One test as YAML data."""
    data: dict[str, Any] = {"description": description}
    if variables:
        data["vars"] = dict(variables)
    data["assert"] = [dict(assertion)]
    return data


@dataclass(frozen=True)
class Edit:
    """A file's new text, not written yet, and the 1-based line where the test added to it starts."""

    path: Path
    text: str
    line: int

    def write(self) -> int:
        atomic_write(self.path, self.text)
        return self.line


def append_test(suite_path: Path, description: str, vars: Mapping[str, str],
                assertion: Mapping[str, Any]) -> int:
    """Append a test to the suite's ``tests:`` (created when missing); return the 1-based line where it starts,
    in the file that received it (the suite, or the test file ``tests: file://...`` names)."""
    return append_edit(suite_path, description, vars, assertion).write()


def append_edit(suite_path: Path, description: str, vars: Mapping[str, str], assertion: Mapping[str, Any],
                text: str | None = None) -> Edit:
    """The edit :func:`append_test` makes, not written; ``text``: the suite's when it is not written yet."""
    text = suite_path.read_text(encoding="utf-8") if text is None else text
    root = _compose(suite_path, text)
    if root is None:
        root = yaml.MappingNode("tag:yaml.org,2002:map", [])
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{suite_path}:1: the suite is not a mapping of keys",
                          "fix the suite file (prompts, targets, tests)")
    tests = next((value for key, value in root.value if isinstance(key, yaml.ScalarNode) and key.value == "tests"),
                 None)
    if tests is None:
        return _appended(suite_path, text, "tests", _test(description, vars, assertion))
    if isinstance(tests, yaml.ScalarNode):
        if tests.value.startswith(FILE):
            return _append_to_file(suite_path, tests, tests.value, description, vars, assertion)
        if tests.value not in ("", "~", "null"):
            raise ConfigError(f"{suite_path}:{tests.start_mark.line + 1}: tests is neither a list nor a file:// "
                              f"reference", "make tests a list")
        return _appended(suite_path, text, "tests", _test(description, vars, assertion))
    return _append_to_sequence(suite_path, text, tests, "tests", _test(description, vars, assertion))


def new_suite(suite_path: Path, prompts: Sequence[str | Mapping[str, Any]], targets: Sequence[str | Mapping[str, Any]],
              description: str, vars: Mapping[str, str], assertion: Mapping[str, Any]) -> int:
    """Create ``suite_path`` with ``prompts`` (``NAME@VERSION`` or prompt text), ``targets`` and this first test;
    return the line where the test starts. An existing file is never overwritten."""
    return new_suite_edit(suite_path, prompts, targets, description, vars, assertion).write()


def new_suite_edit(suite_path: Path, prompts: Sequence[str | Mapping[str, Any]],
                   targets: Sequence[str | Mapping[str, Any]], description: str, vars: Mapping[str, str],
                   assertion: Mapping[str, Any]) -> Edit:
    """The file :func:`new_suite` writes, not written."""
    if suite_path.exists():
        raise ConfigError(f"{suite_path} already exists", "append the test to it instead")
    head = dump_yaml({"prompts": list(prompts), "targets": list(targets)})
    return append_edit(suite_path, description, vars, assertion, head)


# --- a race's reply as a test -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RaceOrigin:
    """What a race sent, as promoting one of its replies needs it."""

    request: ChatRequest
    targets: Sequence[str]
    prompt: PromptRef | None
    """The prompt version the race ran (None: a conversation typed in the editor)."""
    variables: Mapping[str, str]
    """The prompt's variables, as the race filled them."""


@dataclass(frozen=True)
class SuiteChoice:
    """A suite a race's test can go to, and the variables the test carries there."""

    path: str
    """Relative to the workspace."""
    vars: Mapping[str, str]
    new: bool


def suite_choices(workspace: Path, origin: RaceOrigin) -> list[SuiteChoice]:
    """The suites a test of this race keeps working in, then a new one: a suite whose every prompt is the race's
    prompt (its variables carried); for a typed conversation, a suite whose every prompt renders to it (the
    variables that make it so carried). A suite that does not load now is not offered."""
    from workbench.core.evals.suite import load_suite

    out = []
    for path in suite_files(workspace):
        try:
            suite = load_suite(path, workspace)
        except ConfigError:
            continue
        found = [_vars_for(p, origin) for p in suite.prompts]
        if found and found[0] is not None and all(v == found[0] for v in found):
            out.append(SuiteChoice(str(path.relative_to(workspace)), found[0], False))
    name = origin.prompt.name if origin.prompt else "promoted"
    paths = (f"evals/{name}{f'-{n}' if n > 1 else ''}.yaml" for n in itertools.count(1))
    free = next(path for path in paths if not (workspace / path).exists())
    return [*out, SuiteChoice(free, dict(origin.variables) if origin.prompt else {}, True)]


def promote(workspace: Path, origin: RaceOrigin, choice: SuiteChoice, description: str,
            assertion: Mapping[str, Any]) -> Edit:
    """Add the test to the chosen suite, checked first: the suite as it would be is loaded with the suite loader
    and every cell rendered; if that fails, nothing is written and the error says why. Returns the edit made."""
    from workbench.core.evals.runner import cells
    from workbench.core.evals.suite import load_suite

    path = workspace / choice.path
    if choice.new:
        edit = new_suite_edit(path, [suite_prompt(origin)], suite_targets(origin), description, choice.vars,
                              assertion)
    else:
        edit = append_edit(path, description, choice.vars, assertion)
    try:
        suite = load_suite(path, workspace, {edit.path.resolve(): edit.text})
        for cell in cells(suite, 1):
            cell.request()
    except ConfigError as exc:
        raise ConfigError(f"not promoted: {choice.path} would not load with this test: {exc.message}",
                          exc.hint or "pick another suite") from None
    edit.write()
    return edit


def suite_targets(origin: RaceOrigin) -> list[str | dict[str, Any]]:
    """How a new suite names the race's targets: each with the race's tools and tool choice in its ``config`` (they
    are sent with every cell, as the race sent them), else by name alone."""
    params = origin.request.params
    if not params.tools:
        return list(origin.targets)
    config: dict[str, Any] = {"tools": [dict(tool) for tool in params.tools]}
    if params.tool_choice is not None:
        config["tool_choice"] = params.tool_choice
    return [{"id": target, "config": config} for target in origin.targets]


def tool_assertion(names: Sequence[str]) -> dict[str, Any]:
    """The assertion a reply that called tools is promoted with: promptfoo's ``tool-call-f1`` on the names it called
    (each once, in the order first called), so the suite still runs in promptfoo."""
    return {"type": "tool-call-f1", "value": list(dict.fromkeys(names))}


def promoted_assertion(kind: str, value: str) -> dict[str, Any]:
    """The assertion ``{type, value}`` a promotion writes from the value typed: ``tool-call``'s JSON (``{name,
    arguments}``) written as the mapping it is, ``tool-call-f1``'s comma-separated names as a list."""
    if kind == "tool-call":
        try:
            data = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"not promoted: tool-call's value is not JSON: {exc}",
                              'write it as {"name": "get_weather", "arguments": {"city": "Paris"}}') from None
        return {"type": kind, "value": data}
    if kind == "tool-call-f1":
        return tool_assertion([name.strip() for name in value.split(",") if name.strip()])
    return {"type": kind, "value": value}


def suite_prompt(origin: RaceOrigin) -> str | dict[str, Any]:
    """How a new suite names the race's prompt: its version (``NAME@N``), else the conversation as sent (system
    and messages, each without surrounding whitespace; tool turns in OpenAI's chat format)."""
    if origin.prompt is not None:
        return f"{origin.prompt.name}@{origin.prompt.version}"
    system = (origin.request.system or "").strip()
    messages = openai_chat_turns([replace(m, content=m.content.strip()) for m in origin.request.messages],
                                 lambda m: {"role": m.role, "content": m.content})
    return {"system": system, "messages": messages} if system else {"messages": messages}


def _vars_for(prompt: SuitePrompt, origin: RaceOrigin) -> dict[str, str] | None:
    """The variables a test needs for ``prompt`` to be the race's; None when it is another prompt."""
    if origin.prompt is None:
        values = _matched(prompt.prompt, origin.request)
    elif prompt.version is not None and prompt.prompt.name == origin.prompt.name:
        values = dict(origin.variables)
    else:
        return None
    if values is None:
        return None
    try:
        variable_values(prompt.prompt, values)
    except ConfigError:
        return None
    return values


def _matched(prompt: Prompt, request: ChatRequest) -> dict[str, str] | None:
    """The values of the prompt's ``{{variables}}`` that render it as ``request``'s texts (surrounding whitespace
    aside); None when no values do."""
    templates = [prompt.system or "", *(m.content for m in prompt.messages)]
    texts = [request.system or "", *(m.content for m in request.messages)]
    if len(templates) != len(texts) or [m.role for m in prompt.messages] != [m.role for m in request.messages]:
        return None
    values: dict[str, str] = {}
    for template, text in zip(templates, texts, strict=True):
        groups: dict[str, str] = {}
        pattern = ""
        for literal, name in itertools.zip_longest(_VARIABLE.split(template.strip())[::2],
                                                   _VARIABLE.findall(template.strip())):
            pattern += re.escape(literal)
            if name is None:
                continue
            if name in values:
                pattern += re.escape(values[name])
            elif name in groups:
                pattern += f"(?P={groups[name]})"
            else:
                groups[name] = f"v{len(groups)}"
                pattern += f"(?P<{groups[name]}>.*?)"
        match = re.fullmatch(pattern, text.strip(), re.DOTALL)
        if match is None:
            return None
        values.update({name: match[group] for name, group in groups.items()})
    return values


# --- helpers -----------------------------------------------------------------------------------------------------


def _compose(path: Path, text: str) -> yaml.Node | None:
    try:
        return compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}",
                          "fix the file, then promote again") from None


def _edit(path: Path, before: str, after: str, block: str) -> Edit:
    if before and not before.endswith("\n"):
        before += "\n"
    return Edit(path, before + block + after, before.count("\n") + 1)


def _appended(path: Path, text: str, key: str | None, test: Mapping[str, Any]) -> Edit:
    """``test`` appended to the list under ``key`` (None: the file is the list), edited in place."""
    edited, line = append_item(text, key, test)
    return Edit(path, edited, line)


def _append_to_sequence(path: Path, text: str, node: yaml.Node, key: str | None, test: Mapping[str, Any]) -> Edit:
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(f"{path}:{node.start_mark.line + 1}: tests is not a list", "make tests a list of tests")
    return _appended(path, text, key, test)


def _append_to_file(suite_path: Path, node: yaml.Node, ref: str, description: str, vars: Mapping[str, str],
                    assertion: Mapping[str, Any]) -> Edit:
    where = f"{suite_path}:{node.start_mark.line + 1}"
    name = ref.removeprefix(FILE)
    if any(c in name for c in "*?["):
        raise ConfigError(f"{where}: tests come from several files ({ref}): there is no one file to add to",
                          "add the test to one of those files by hand, or list tests in the suite")
    path = (suite_path.parent / name).resolve()
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".jsonl", ".csv"):
        raise ConfigError(f"{where}: tests come from {name}: a test cannot be added to a {suffix or 'such'} file",
                          "add it by hand, or convert the tests to .yaml, .jsonl or .csv")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if suffix == ".jsonl":
        line = {"description": description, "vars": dict(vars), "assert": [dict(assertion)]}
        head = text if not text or text.endswith("\n") else text + "\n"
        return _edit(path, head, "", json.dumps(line, ensure_ascii=False) + "\n")
    if suffix == ".csv":
        return _append_csv_row(path, where, text, description, vars, assertion)
    root = _compose(path, text)
    if root is None:
        return _appended(path, text, None, _test(description, vars, assertion))
    return _append_to_sequence(path, text, root, None, _test(description, vars, assertion))


def _append_csv_row(path: Path, where: str, text: str, description: str, vars: Mapping[str, str],
                    assertion: Mapping[str, Any]) -> Edit:
    header = next(csv.reader(io.StringIO(text, newline="")), None)
    if not header:
        raise ConfigError(f"{path}: the CSV file has no header row", "its first row names the columns")
    header = [h.strip() for h in header]
    expected = next((h for h in header if h.startswith("__expected")), None)
    missing = [name for name in vars if name not in header]
    if expected is None or missing:
        lack = f"no column {', '.join(missing)}" if missing else "no __expected column for the assertion"
        raise ConfigError(f"{where}: tests come from {path.name}, which has {lack}",
                          "add the column to the CSV, or list tests in the suite")
    cells = {name: "" for name in header}
    cells.update(vars)
    cells[expected] = f"{assertion['type']}: {assertion.get('value', '')}".rstrip(": ")
    if "__description" in cells:
        cells["__description"] = description
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerow([cells[name] for name in header])
    head = text if not text or text.endswith("\n") else text + "\n"
    return _edit(path, head, "", out.getvalue())
