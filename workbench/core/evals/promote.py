"""Promote a race to a test case: append one test to an eval suite without rewriting the rest of the file.

The suite is composed (not loaded) with PyYAML to find where its top-level ``tests:`` list ends; the new test
is inserted there as text, so comments, key order and formatting elsewhere stay as they were. A ``tests:``
that references one ``file://`` test file gets the test in that file instead (.yaml/.yml list, .jsonl line,
.csv row).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from workbench.core.errors import ConfigError
from workbench.core.evals.suite_promptfoo import FILE
from workbench.core.prompts.model import dump_yaml
from workbench.core.prompts.versions import atomic_write


def _test_item(description: str, variables: Mapping[str, str], assertion: Mapping[str, Any], indent: int) -> str:
    """One test as a YAML list item, its dash at column ``indent``."""
    data: dict[str, Any] = {"description": description}
    if variables:
        data["vars"] = dict(variables)
    data["assert"] = [dict(assertion)]
    lines = dump_yaml(data).splitlines()
    pad = " " * indent
    return "".join(f"{pad}{'- ' if i == 0 else '  '}{line}\n" for i, line in enumerate(lines))


def append_test(suite_path: Path, description: str, vars: Mapping[str, str],
                assertion: Mapping[str, Any]) -> int:
    """Append a test to the suite's ``tests:`` (created when missing); return the 1-based line where it starts,
    in the file that received it (the suite, or the test file ``tests: file://...`` names)."""
    text = suite_path.read_text(encoding="utf-8")
    root = _compose(suite_path, text)
    if root is None:
        root = yaml.MappingNode("tag:yaml.org,2002:map", [])
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{suite_path}:1: the suite is not a mapping of keys",
                          "fix the suite file (prompts, targets, tests)")
    tests = next((value for key, value in root.value if isinstance(key, yaml.ScalarNode) and key.value == "tests"),
                 None)
    if tests is None:
        head = text if not text or text.endswith("\n") else text + "\n"
        return _write(suite_path, head + "tests:\n", "", _test_item(description, vars, assertion, 2))
    if isinstance(tests, yaml.ScalarNode):
        if tests.value.startswith(FILE):
            return _append_to_file(suite_path, tests, tests.value, description, vars, assertion)
        if tests.value not in ("", "~", "null"):
            raise ConfigError(f"{suite_path}:{tests.start_mark.line + 1}: tests is neither a list nor a file:// "
                              f"reference", "make tests a list")
        at = _line_end(text, tests.end_mark.index)
        return _write(suite_path, text[:tests.start_mark.index].rstrip(" ") + "\n", text[at:],
                      _test_item(description, vars, assertion, 2))
    return _append_to_sequence(suite_path, text, tests, description, vars, assertion)


def new_suite(suite_path: Path, prompts: Sequence[str], targets: Sequence[str], description: str,
              vars: Mapping[str, str], assertion: Mapping[str, Any]) -> int:
    """Create ``suite_path`` with ``prompts`` (``NAME@VERSION`` or prompt text), ``targets`` and this first test;
    return the line where the test starts. An existing file is never overwritten."""
    if suite_path.exists():
        raise ConfigError(f"{suite_path} already exists", "append the test to it instead")
    atomic_write(suite_path, dump_yaml({"prompts": list(prompts), "targets": list(targets)}))
    return append_test(suite_path, description, vars, assertion)


# --- helpers -----------------------------------------------------------------------------------------------------


def _compose(path: Path, text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}",
                          "fix the file, then promote again") from None


def _line_end(text: str, index: int) -> int:
    """The index just after the line that ``index`` is on (or ``index`` itself at a line start)."""
    if index == 0 or text[index - 1] == "\n":
        return index
    newline = text.find("\n", index)
    return len(text) if newline < 0 else newline + 1


def _write(path: Path, before: str, after: str, block: str) -> int:
    if before and not before.endswith("\n"):
        before += "\n"
    atomic_write(path, before + block + after)
    return before.count("\n") + 1


def _append_to_sequence(path: Path, text: str, node: yaml.Node, description: str, vars: Mapping[str, str],
                        assertion: Mapping[str, Any]) -> int:
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(f"{path}:{node.start_mark.line + 1}: tests is not a list", "make tests a list of tests")
    if node.flow_style:
        if node.value:
            raise ConfigError(f"{path}:{node.start_mark.line + 1}: tests is a [flow, list]",
                              "write tests as a block list (one '- ' item per test), then promote again")
        at = _line_end(text, node.end_mark.index)
        return _write(path, text[:node.start_mark.index].rstrip(" ") + "\n", text[at:],
                      _test_item(description, vars, assertion, 2))
    at = _line_end(text, _last_leaf(node).end_mark.index)
    return _write(path, text[:at], text[at:], _test_item(description, vars, assertion, node.start_mark.column))


def _last_leaf(node: yaml.Node) -> yaml.Node:
    """The last scalar or flow collection of a block node: where its text really ends (a block collection's
    own end mark lies past the comments and blank lines that follow it)."""
    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    return node


def _append_to_file(suite_path: Path, node: yaml.Node, ref: str, description: str, vars: Mapping[str, str],
                    assertion: Mapping[str, Any]) -> int:
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
        return _write(path, head, "", json.dumps(line, ensure_ascii=False) + "\n")
    if suffix == ".csv":
        return _append_csv_row(path, where, text, description, vars, assertion)
    root = _compose(path, text)
    if root is None:
        return _write(path, text, "", _test_item(description, vars, assertion, 0))
    return _append_to_sequence(path, text, root, description, vars, assertion)


def _append_csv_row(path: Path, where: str, text: str, description: str, vars: Mapping[str, str],
                    assertion: Mapping[str, Any]) -> int:
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
    return _write(path, head, "", out.getvalue())
