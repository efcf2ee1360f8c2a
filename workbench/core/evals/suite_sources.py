"""The forms a promptfoo config takes for where its prompts, tests and variables come from, read as promptfoo
reads them: ``$ref`` to ``assertionTemplates``, prompts as a ``{path: label}`` map, ``scenarios`` (each config row
crossed with the scenario's tests), ``vars: file://x.yaml``, variable values read from files (text trimmed, YAML as
JSON, images as base64), and code references (``file://x.py:fn``): prompt functions and test generators."""

from __future__ import annotations

import asyncio
import base64
import copy
import csv
import io
import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.evals.model import SuitePrompt, SuiteTarget, TestCase
from workbench.core.evals.node_bridge import DEFAULT_TIMEOUT_S, require_node
from workbench.core.evals.python_assert import PythonAssertionError, run_python
from workbench.core.evals.suite_promptfoo import FILE, Context, Src, expect, target_ref
from workbench.core.yaml_lines import Loc

CODE_REF = re.compile(r"^file://(?P<path>.+?\.(?P<ext>py|js|cjs|mjs|ts))(?::(?P<function>[A-Za-z_$][\w$]*))?$")
_IMAGES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".svg"})
_REF_KEY = "$ref"


# --- $ref ---------------------------------------------------------------------------------------------------------


def resolve_refs(src: Src, data: Any, loc: Loc = (), root: Any = None, seen: tuple[str, ...] = ()) -> Any:
    """``data`` with every ``{$ref: "#/a/b"}`` replaced by a copy of what the pointer names in the document
    (promptfoo's ``assertionTemplates``); a pointer that names nothing, or leaves the file, fails at its line."""
    root = data if root is None else root
    if isinstance(data, dict):
        if _REF_KEY in data:
            return _dereferenced(src, data, loc, root, seen)
        return {key: resolve_refs(src, value, (*loc, key), root, seen) for key, value in data.items()}
    if isinstance(data, list):
        return [resolve_refs(src, value, (*loc, i), root, seen) for i, value in enumerate(data)]
    return data


def _dereferenced(src: Src, data: dict[str, Any], loc: Loc, root: Any, seen: tuple[str, ...]) -> Any:
    pointer = expect(src, (*loc, _REF_KEY), data[_REF_KEY], str, "a JSON pointer such as '#/assertionTemplates/name'")
    if len(data) > 1:
        raise src.error(loc, f"keys beside $ref: {', '.join(str(k) for k in data if k != _REF_KEY)}",
                        "a $ref stands for the whole entry; put the keys in the template")
    if not pointer.startswith("#/"):
        raise src.error((*loc, _REF_KEY), f"$ref '{pointer}': only references inside the config are supported",
                        "write '#/assertionTemplates/NAME'")
    if pointer in seen:
        raise src.error((*loc, _REF_KEY), f"$ref '{pointer}' refers to itself")
    target = root
    for part in pointer[2:].split("/"):
        name = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and name in target:
            target = target[name]
        elif isinstance(target, list) and name.isdigit() and int(name) < len(target):
            target = target[int(name)]
        else:
            raise src.error((*loc, _REF_KEY), f"$ref '{pointer}' names nothing in the config")
    return resolve_refs(src, copy.deepcopy(target), loc, root, (*seen, pointer))


# --- prompts ------------------------------------------------------------------------------------------------------


def prompt_entries(src: Src, raw: Any) -> list[tuple[Loc, Any]]:
    """``prompts`` as (where, entry): one text, a list, or promptfoo's ``{path: label}`` map (each path a
    prompt file, ``file://`` or not, with its label)."""
    if isinstance(raw, str):
        return [(("prompts",), raw)]
    if isinstance(raw, dict):
        return [(("prompts", path), {"id": _file_path(str(path)), "label": str(label if label is not None else path)})
                for path, label in raw.items()]
    items = expect(src, ("prompts",), raw, list, "a list of prompts (or a map of file:// paths to labels)")
    return [(("prompts", i), item) for i, item in enumerate(items)]


def text_prompts(suffix: str, text: str) -> list[tuple[str, str | None]]:
    """The prompts of a text prompt file, each with its own label (a CSV's ``label`` column) or None, as promptfoo
    reads them: ``.txt`` split at lines that are ``---`` (spaces around it too), each part trimmed; ``.md`` whole,
    as written; ``.csv`` one prompt a line, or a ``prompt`` column (and ``label``)."""
    if suffix == ".md":
        return [(text, None)] if text.strip() else []
    if suffix == ".csv":
        return _csv_prompts(text)
    parts: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip() == "---":
            parts.append([])
        else:
            parts[-1].append(line)
    return [(joined, None) for part in parts if (joined := "\n".join(part).strip())]


def _csv_prompts(text: str) -> list[tuple[str, str | None]]:
    lines = [line for line in text.splitlines() if line.strip()]
    if "," not in text:
        start = 1 if lines and lines[0].strip().lower() == "prompt" else 0
        return [(line, None) for line in lines[start:]]
    rows = csv.DictReader(io.StringIO(text, newline=""), skipinitialspace=True)
    return [(row["prompt"].strip(), (row.get("label") or "").strip() or None) for row in rows
            if (row.get("prompt") or "").strip()]


def _file_path(path: str) -> str:
    return path if path.startswith(FILE) else f"{FILE}{path}"


# --- scenarios ----------------------------------------------------------------------------------------------------


def scenario_tests(src: Src, scenarios: Any) -> list[tuple[Loc, dict[str, Any]]]:
    """promptfoo's ``scenarios``: for each scenario, every ``config`` row merged into every one of its tests
    (one empty test when it has none): the test's keys win, ``vars`` and ``metadata`` merged, the row's
    assertions before the test's."""
    out: list[tuple[Loc, dict[str, Any]]] = []
    for i, scenario in enumerate(expect(src, ("scenarios",), scenarios, list, "a list of scenarios")):
        loc: Loc = ("scenarios", i)
        expect(src, loc, scenario, dict, "a scenario: {config: [...], tests: [...]}")
        unknown = set(scenario) - {"config", "tests", "description"}
        if unknown:
            raise src.error((*loc, sorted(unknown)[0]), f"unknown key '{sorted(unknown)[0]}' in a scenario",
                            "a scenario has config, tests and description")
        rows = expect(src, (*loc, "config"), scenario.get("config"), list, "a list of config rows (config:)")
        tests = expect(src, (*loc, "tests"), scenario.get("tests") or [{}], list, "a list of tests")
        for r, row in enumerate(rows):
            expect(src, (*loc, "config", r), row, dict, "a config row: {vars, assert, ...}")
            for t, test in enumerate(tests):
                test_loc: Loc = (*loc, "tests", t) if scenario.get("tests") else (*loc, "config", r)
                expect(src, test_loc, test, dict, "a test mapping")
                out.append((test_loc, _merged(src, (*loc, "config", r), row, test_loc, test)))
    return out


def _merged(src: Src, row_loc: Loc, row: dict[str, Any], test_loc: Loc, test: dict[str, Any]) -> dict[str, Any]:
    def mapping(data: dict[str, Any], at: Loc, key: str) -> dict[str, Any]:
        return dict(expect(src, (*at, key), data.get(key) or {}, dict, f"a mapping ({key}:)"))

    def listed(data: dict[str, Any], at: Loc, key: str) -> list[Any]:
        return list(expect(src, (*at, key), data.get(key) or [], list, f"a list ({key}:)"))

    return {**row, **test,
            "vars": {**mapping(row, row_loc, "vars"), **mapping(test, test_loc, "vars")},
            "assert": [*listed(row, row_loc, "assert"), *listed(test, test_loc, "assert")],
            "metadata": {**mapping(row, row_loc, "metadata"), **mapping(test, test_loc, "metadata")}}


# --- what a test may not ask for -----------------------------------------------------------------------------


_UNHONOURED_TEST_KEYS = {
    "provider": ("a target of its own", "give the suite that target"),
    "providerOutput": ("a fixed output instead of a call", "leave it out; every test calls its targets"),
    "assertScoringFunction": ("a scoring function of its own", "use a threshold and weights, or an assert-set"),
}
_UNHONOURED_OPTIONS = {
    "storeOutputAs": ("keeping an output as a variable of later tests", "give each test its variables"),
    "disableVarExpansion": ("list variables kept whole", "write the list as JSON text to pass it whole"),
    "postprocess": ("the output graded", "rename it options.transform (promptfoo's current name)"),
}


def refuse_unhonoured(src: Src, loc: Loc, data: dict[str, Any]) -> None:
    """A test key or option of promptfoo's that would change which cells run, what is sent or how it is graded
    and is not supported here: an error at its line, never a warning."""
    options = data.get("options")
    found = [((*loc, key), f"'{key}'", _UNHONOURED_TEST_KEYS[key]) for key in data if key in _UNHONOURED_TEST_KEYS]
    if isinstance(options, dict):
        found += [((*loc, "options", key), f"'options.{key}'", _UNHONOURED_OPTIONS[key])
                  for key in options if key in _UNHONOURED_OPTIONS and options[key] not in (None, False)]
    if found:
        at, name, (what, hint) = found[0]
        raise src.error(at, f"{name} in a test ({what}) is not supported", hint)


def test_filter(src: Src, loc: Loc, value: Any, targets: bool) -> tuple[str, ...]:
    """A test's ``providers`` (``targets``) or ``prompts``: the globs they match. A provider is named by its label,
    its promptfoo id (``openai:gpt-4o``, also as ``openai/gpt-4o``), ``openai:*`` or the bare ``openai``."""
    what = "provider labels or ids" if targets else "prompt labels"
    items = [value] if isinstance(value, str) else expect(src, loc, value, list, f"a list of {what}")
    globs: list[str] = []
    for i, item in enumerate(items):
        text = str(expect(src, (*loc, i), item, str, f"one of the {what}"))
        globs.append(text)
        for candidate in ((text,) if ":" in text else (text, f"{text}:*")) if targets else ():
            try:
                globs.append(target_ref(src, (*loc, i), candidate))
            except ConfigError:
                continue
    return tuple(dict.fromkeys(globs))


def check_test_filters(prompts: Sequence[SuitePrompt], targets: Sequence[SuiteTarget],
                       tests: Sequence[TestCase]) -> None:
    """A test whose ``providers`` or ``prompts`` match none of the suite's is an error at the test (a typo would
    silently run it nowhere)."""
    anything = SuiteTarget("", "")
    for test in tests:
        by_target, by_prompt = replace(test, prompts=None), replace(test, targets=None)
        if targets and test.targets is not None and not any(by_target.runs("", t) for t in targets):
            raise ConfigError(f"{test.source}: test '{test.key}': its providers ({', '.join(test.targets)}) match "
                              "none of the suite's targets", "name a target by its label or id")
        if test.prompts is not None and not any(by_prompt.runs(p.label, anything) for p in prompts):
            raise ConfigError(f"{test.source}: test '{test.key}': its prompts ({', '.join(test.prompts)}) match "
                              "none of the suite's prompts", "name a prompt by its label")


# --- variables ----------------------------------------------------------------------------------------------------


def vars_from_files(ctx: Context, src: Src, loc: Loc, value: Any) -> dict[str, Any]:
    """``vars: file://vars.yaml`` (or a list of such, globs too): the files' mappings merged, later files winning."""
    refs = [value] if isinstance(value, str) else value
    merged: dict[str, Any] = {}
    for i, ref in enumerate(refs):
        at = loc if isinstance(value, str) else (*loc, i)
        text = expect(src, at, ref, str, "a file:// path to a YAML or JSON file of variables")
        if not text.startswith(FILE):
            raise src.error(at, f"vars '{text}' is not a mapping or a file:// path", "write vars: file://vars.yaml")
        for path in ctx.files(src, at, text):
            if path.suffix.lower() not in (".yaml", ".yml", ".json"):
                raise src.error(at, f"variables from {ctx.shown(path)}: use a .yaml or .json file")
            data, file_src = ctx.parse_yaml(path, ctx.read(src, at, path))
            merged.update(expect(file_src, (), data or {}, dict, "a mapping of variables"))
    return merged


def file_value(ctx: Context, src: Src, loc: Loc, path: Path) -> str:
    """A variable's value read from ``path`` as promptfoo reads it: YAML as its JSON, an image as base64, any
    other file as its text trimmed."""
    suffix = path.suffix.lower()
    if suffix in _IMAGES:
        try:
            return base64.b64encode(path.read_bytes()).decode("ascii")
        except OSError as exc:
            raise src.error(loc, f"cannot read {ctx.shown(path)}: {exc.strerror}") from None
    if suffix == ".pdf":
        raise src.error(loc, f"variable from {ctx.shown(path)}: text from PDF files is not supported",
                        "extract its text into a .txt file and reference that")
    text = ctx.read(src, loc, path)
    if suffix in (".yaml", ".yml"):
        data, _ = ctx.parse_yaml(path, text)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.strip()


# --- code references ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeRef:
    """``file://path.py:function`` (or ``.js``): ``ref`` as the runners take it, the path resolved."""

    ref: str
    path: Path
    function: str | None

    @property
    def python(self) -> bool:
        return self.path.suffix == ".py"


def python_code(ref: str) -> bool:
    """Does ``ref`` (``file://path[:function]``) name a Python file?"""
    match = CODE_REF.match(ref)
    return match is not None and match["ext"] == "py"


def code_ref(ctx: Context, src: Src, loc: Loc, text: str, what: str) -> CodeRef | None:
    """The code file ``text`` names (None when it names none): it must exist; a JavaScript one needs node."""
    match = CODE_REF.match(text.strip())
    if match is None:
        return None
    path = Path(match["path"])
    full = (path if path.is_absolute() else ctx.folder / path).resolve()
    if not full.is_file():
        raise src.error(loc, f"no file '{match['path']}' (for {what} '{text}')",
                        f"paths are relative to {ctx.shown(ctx.folder)}")
    if match["ext"] == "ts":
        raise src.error(loc, f"{what} '{text}': TypeScript files are not supported", "use a .js or .py file")
    if match["ext"] == "py" and match["function"] is None:
        raise src.error(loc, f"{what} '{text}': name the Python function to call",
                        f"e.g. file://{match['path']}:{'generate_tests' if 'test' in what else 'create_prompt'}")
    if match["ext"] != "py":
        require_node(src.at(loc), f"{what} '{text}' is JavaScript: it")
    function = match["function"]
    return CodeRef(f"{FILE}{full}" + (f":{function}" if function else ""), full, function)


def generated_tests(ctx: Context, src: Src, loc: Loc, ref: CodeRef) -> list[Any]:
    """What a test generator returned (``tests: file://gen.py:fn``): a list of tests, run once at load."""
    if not ref.python:
        raise src.error(loc, f"tests from JavaScript ('{ref.path.name}') are not supported",
                        "generate them with Python (file://gen.py:function) or write them to a .yaml file")
    try:
        result = _run_sync(run_python(ref.ref, None, {}, base_dir=ctx.folder, time_limit=DEFAULT_TIMEOUT_S, args=[]))
    except PythonAssertionError as exc:
        raise src.error(loc, f"the test generator failed: {exc}") from None
    if not isinstance(result, list):
        raise src.error(loc, f"the test generator returned a {type(result).__name__}, not a list of tests")
    return result


def _run_sync(coroutine: Any) -> Any:
    """Run ``coroutine`` to its end from synchronous code, inside a running event loop or not."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()

