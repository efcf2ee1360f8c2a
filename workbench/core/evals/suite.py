"""Eval suites: YAML files in ``evals/``, ours or promptfoo's ``promptfooconfig.yaml`` as it is.

:func:`load_suite` resolves every prompt (workspace prompts to an immutable version), target and test; what the
file asks for that is not supported is a warning by name, anything malformed a ``path:line:`` error.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.evals.derived_metrics import FormulaError, check_formula
from workbench.core.evals.local_providers import local_target
from workbench.core.evals.model import AssertionSpec, RunLimits, Suite, SuitePrompt, SuiteTarget, TestCase
from workbench.core.evals.prompt_affixes import check_affixes
from workbench.core.evals.prompt_functions import function_prompt
from workbench.core.evals.prompt_render import chat_prompt, template_warnings
from workbench.core.evals.provider_config import prompt_filter, provider_config, wire_of
from workbench.core.evals.report_outputs import template_text
from workbench.core.evals.suite_options import output_paths, run_limits, target_delay
from workbench.core.evals.suite_promptfoo import (
    FILE,
    Context,
    Src,
    check_keys,
    expect,
    target_ref,
)
from workbench.core.evals.suite_sources import (
    check_test_filters,
    code_ref,
    prompt_entries,
    resolve_refs,
    scenario_tests,
    text_prompts,
)
from workbench.core.evals.testdata import Draft, build_tests, parse_test, parse_tests
from workbench.core.evals.transforms import require_node_for, require_node_for_target
from workbench.core.prompts.model import (
    NAME_PATTERN,
    Prompt,
    PromptFileError,
    PromptMessage,
    dump_prompt,
    find_prompt_file,
    parse_prompt,
    prompt_data,
    request_turns,
)
from workbench.core.prompts.versions import (
    content_hash,
    get_version,
    load_current,
    prompts_folder,
    resolve_ref,
    save_version,
    split_ref,
    versions,
)
from workbench.core.providers.attachments import check_attachments
from workbench.core.request import split_target
from workbench.core.templating import TemplateError, check_syntax, has_tags
from workbench.core.yaml_lines import Loc

_KEYS = frozenset({"description", "prompts", "providers", "targets", "tests", "defaultTest", "repeat", "concurrency",
                   "gate", "judge", "evaluateOptions", "assertionTemplates", "scenarios", "outputPath",
                   "min-cache-hit-ratio", "derivedMetrics"})
_PROMPTFOO_KEYS = frozenset({"tags", "sharing",
                             "nunjucksFilters", "writeLatestResults", "commandLineOptions", "metadata", "redteam",
                             "tracing"})
_EVALUATE_KEYS = frozenset({"repeat", "maxConcurrency", "delay", "cache", "timeoutMs", "maxEvalTimeMs"})
_EVALUATE_PROMPTFOO = frozenset({"showProgressBar", "generateSuggestions", "interactiveProviders"})
_TARGET_KEYS = frozenset({"id", "label", "config", "transform", "prompts", "delay"})
_TARGET_PROMPTFOO = frozenset({"inputs"})
_PROMPT_KEYS = frozenset({"id", "label", "raw", "system", "messages", "config"})
_REF = re.compile(NAME_PATTERN.removesuffix("$") + "(@.+)?$")


def _no_suite(shown: str, path: Path, workspace: Path) -> ConfigError:
    """A suite path that names no file: the suites of the workspace's ``evals/`` in the hint."""
    what = f"{shown} is a folder, not a suite file" if path.is_dir() else f"no suite file {shown}"
    suites = sorted(p for p in (workspace / "evals").glob("*.y*ml") if p.is_file())
    names = ", ".join(f"evals/{p.name}" for p in suites[:5]) + (", ..." if len(suites) > 5 else "")
    return ConfigError(what, f"check the path; the workspace's suites: {names}" if suites else "check the path")


def load_suite(path: Path, workspace: Path, unwritten: Mapping[Path, str] | None = None, *,
               targets_given: bool = False, variables: Mapping[str, str] | None = None,
               providers: Collection[str] | None = None) -> Suite:
    """Load and resolve the suite at ``path``; raise :class:`ConfigError` (``path:line: ...``) if it is malformed.
    ``unwritten``: texts of files not written yet (the suite's, its tests file's), by resolved path, read instead.
    ``targets_given``: the run names its targets (``-t``), so the suite need not; ``variables`` (``--var``) are set
    in every test, over the test's own values (as promptfoo's ``--var`` does); ``providers``: the providers a target
    may name (a target of another is an error at its line), None: not checked."""
    ctx = Context(workspace=workspace, folder=path.parent, unwritten=dict(unwritten or {}), providers=providers)
    if not path.is_file() and path.resolve() not in ctx.unwritten:
        raise _no_suite(ctx.shown(path), path, workspace)
    data, src = ctx.parse_yaml(path, ctx.read(Src(ctx.shown(path)), (), path))
    if data is None:
        raise src.error((), "the suite file is empty", "a suite needs prompts, targets (or providers) and tests")
    expect(src, (), data, dict, "a mapping of keys (prompts, targets, tests, ...)")
    check_keys(ctx, src, (), data, _KEYS, _PROMPTFOO_KEYS, "a suite")
    data = resolve_refs(src, data)
    prompts = ctx.collect(functools.partial(_prompts, ctx, src, data)) or ()
    ctx.prompt_labels = tuple(p.label for p in prompts)
    targets = ctx.collect(functools.partial(_targets, ctx, src, data, targets_given, prompts)) or ()
    if ctx.prompt_configs and targets_given:
        ctx.collect(functools.partial(_prompt_config_with_targets, src, ctx.prompt_configs))
    prompts = tuple(dataclasses.replace(p, on_targets=ctx.prompt_targets[p.label]) if p.label in ctx.prompt_targets
                    else p for p in prompts)
    default = None
    if data.get("defaultTest") is not None:
        default = ctx.collect(functools.partial(_default_test, ctx, src, data["defaultTest"]))
    drafts = parse_tests(ctx, src, ("tests",), data["tests"]) if data.get("tests") is not None else []
    if data.get("scenarios") is not None:
        found = (ctx.collect(functools.partial(parse_test, ctx, src, loc, test))
                 for loc, test in scenario_tests(src, data["scenarios"]))
        drafts += [draft for draft in found if draft is not None]
    options = ctx.collect(functools.partial(_options, ctx, src, data)) or {}
    repeat = ctx.collect(functools.partial(_count, src, data, options, "repeat", "repeat"))
    concurrency = ctx.collect(functools.partial(_count, src, data, options, "concurrency", "maxConcurrency"))
    gate = ctx.collect(functools.partial(_gate, src, data.get("gate")))
    cache_floor = ctx.collect(functools.partial(_ratio, src, "min-cache-hit-ratio", data.get("min-cache-hit-ratio")))
    judge = ctx.collect(functools.partial(_suite_judge, src, data, default))
    limits = ctx.collect(functools.partial(run_limits, src, options)) or RunLimits()
    outputs = ctx.collect(functools.partial(output_paths, src, data.get("outputPath"))) or ()
    derived = ctx.collect(functools.partial(_derived_metrics, src, data.get("derivedMetrics"))) or ()
    ctx.check()
    tests = build_tests(ctx, drafts or [Draft(source=src.at(()))], default)
    check_affixes(prompts, tests)
    check_test_filters(prompts, targets, tests)
    if variables:
        tests = tuple(dataclasses.replace(test, vars={**test.vars, **variables}) for test in tests)
    require_node_for(tests)
    ctx.warnings += template_warnings(prompts, tests)
    return Suite(
        name=path.stem, path=ctx.shown(path), prompts=prompts, targets=targets, tests=tests,
        description=str(data.get("description") or ""), repeat=1 if repeat is None else repeat,
        concurrency=concurrency, gate=gate, judge=judge, judges=ctx.judges, warnings=tuple(ctx.warnings),
        digest=_digest(prompts, targets, tests), limits=limits, output_paths=outputs, min_cache_hit_ratio=cache_floor,
        derived_metrics=derived,
        promptfoo=path.name.startswith("promptfooconfig.") or "providers" in data)


# --- run settings ------------------------------------------------------------------------------------------------


def _derived_metrics(src: Src, value: Any) -> tuple[tuple[str, str], ...]:
    """promptfoo's ``derivedMetrics``: ``[{name, value}]``, each value a formula over named scores."""
    if value is None:
        return ()
    out = []
    for i, item in enumerate(expect(src, ("derivedMetrics",), value, list, "a list of {name, value}")):
        loc: Loc = ("derivedMetrics", i)
        expect(src, loc, item, dict, "a derived metric {name, value}")
        if set(item) - {"name", "value"} or "name" not in item or "value" not in item:
            raise src.error(loc, "a derived metric has a name and a value (a formula), nothing else",
                            "e.g. {name: precision, value: tp / (tp + fp)}")
        name = str(expect(src, (*loc, "name"), item["name"], str, "a metric name"))
        formula = expect(src, (*loc, "value"), item["value"], str, "a formula such as tp / (tp + fp)")
        try:
            check_formula(formula)
        except FormulaError as exc:
            raise src.error((*loc, "value"), f"derived metric {name}: {exc}",
                            "a formula of named scores, numbers, + - * / ^ and parentheses") from None
        out.append((name, formula))
    return tuple(out)


def _options(ctx: Context, src: Src, data: dict[str, Any]) -> dict[str, Any]:
    """promptfoo's ``evaluateOptions``: the keys read here (:func:`run_limits`), the others warned about."""
    options: dict[str, Any] = expect(src, ("evaluateOptions",), data.get("evaluateOptions") or {}, dict,
                                     "a mapping of options")
    check_keys(ctx, src, ("evaluateOptions",), options, _EVALUATE_KEYS, _EVALUATE_PROMPTFOO, "evaluateOptions")
    return options


def _count(src: Src, data: dict[str, Any], options: dict[str, Any], ours: str, theirs: str) -> int | None:
    """A positive whole number set as ours or in promptfoo's ``evaluateOptions`` (not both)."""
    if ours in data and theirs in options:
        raise src.error(("evaluateOptions", theirs), f"'{ours}' is set twice",
                        f"keep {ours}: or evaluateOptions.{theirs}")
    loc: Loc = (ours,) if ours in data else ("evaluateOptions", theirs)
    value = data[ours] if ours in data else options.get(theirs)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise src.error(loc, f"{loc[-1]} must be a whole number of 1 or more, not {value!r}")
    return int(value)


def _gate(src: Src, value: Any) -> float | None:
    if value is None:
        return None
    gate = float(expect(src, ("gate",), value, (int, float), "a pass rate between 0 and 1"))
    if not 0 <= gate <= 1:
        raise src.error(("gate",), f"gate {value} is not between 0 and 1", "e.g. gate: 0.9 for a 90% pass rate")
    return gate


def _ratio(src: Src, key: str, value: Any) -> float | None:
    """``min-cache-hit-ratio``: a ratio between 0 and 1 (:mod:`workbench.core.evals.cache_gate`)."""
    if value is None:
        return None
    ratio = float(expect(src, (key,), value, (int, float), "a ratio between 0 and 1"))
    if isinstance(value, bool) or not 0 <= ratio <= 1:
        raise src.error((key,), f"{key} {value} is not between 0 and 1", f"e.g. {key}: 0.5 for half the input")
    return ratio


def _default_test(ctx: Context, src: Src, data: Any) -> Draft:
    """``defaultTest``: a test mapping, or promptfoo's ``file://`` reference to one."""
    if isinstance(data, str) and data.startswith(FILE):
        paths = ctx.files(src, ("defaultTest",), data)
        content, file_src = ctx.parse_yaml(paths[0], ctx.read(src, ("defaultTest",), paths[0]))
        return _default_test_at(ctx, file_src, (), content)
    return _default_test_at(ctx, src, ("defaultTest",), data)


def _default_test_at(ctx: Context, src: Src, loc: Loc, data: Any) -> Draft:
    default = parse_test(ctx, src, loc, data)
    if default.description:
        ctx.unsupported(src, (*loc, "description"), "defaultTest.description")
    return default


def _suite_judge(src: Src, data: dict[str, Any], default: Draft | None) -> str | None:
    theirs = default.judge if default else None
    if data.get("judge") is None:
        return theirs
    ours = target_ref(src, ("judge",), expect(src, ("judge",), data["judge"], str, "a target such as openai/gpt-4o"))
    if theirs is not None and theirs != ours:
        raise src.error(("judge",), f"two judges: {ours} and defaultTest.options.provider {theirs}", "keep one")
    return ours


# --- prompts -----------------------------------------------------------------------------------------------------


def _prompts(ctx: Context, src: Src, data: dict[str, Any]) -> tuple[SuitePrompt, ...]:
    if data.get("prompts") is None:
        raise src.error((), "the suite has no prompts", "add prompts: a list of prompt names, texts or file:// paths")
    out: list[SuitePrompt] = []
    labels: set[str] = set()
    for loc, item in prompt_entries(src, data["prompts"]):
        for prompt in ctx.collect(functools.partial(_prompt, ctx, src, loc, item, len(out) + 1)) or ():
            if prompt.label in labels:
                raise src.error(loc, f"a second prompt labelled '{prompt.label}'", "give each prompt its own label")
            labels.add(prompt.label)
            out.append(prompt)
    return tuple(out)


def _prompt(ctx: Context, src: Src, loc: Loc, item: Any, number: int) -> list[SuitePrompt]:
    if isinstance(item, str):
        return _prompt_text(ctx, src, loc, item, None, number)
    expect(src, loc, item, dict, "a prompt: a name, a text, file://path or a mapping")
    check_keys(ctx, src, loc, item, _PROMPT_KEYS, frozenset(), "a prompt")
    prompts = _prompt_mapping(ctx, src, loc, item, number)
    if item.get("config") is not None:  # merged over each provider's config in :func:`_targets`
        config = expect(src, (*loc, "config"), item["config"], dict, "a mapping of provider settings")
        ctx.prompt_configs.update({p.label: ((*loc, "config"), config) for p in prompts})
    return prompts


def _prompt_mapping(ctx: Context, src: Src, loc: Loc, item: dict[str, Any], number: int) -> list[SuitePrompt]:
    label = item.get("label")
    if label is not None:
        label = str(expect(src, (*loc, "label"), label, str, "a label"))
    if "messages" in item or "system" in item:
        if "raw" in item or "id" in item:
            raise src.error(loc, "a prompt has either messages (and system), raw, or id", "keep one of them")
        return [_inline_chat(src, loc, item, label or f"prompt {number}")]
    for key in ("raw", "id"):
        if key in item:
            text = expect(src, (*loc, key), item[key], str, "a prompt text or reference")
            return _prompt_text(ctx, src, (*loc, key), text, label, number,
                                raw=key == "raw" and not text.startswith(FILE))
    raise src.error(loc, "a prompt mapping needs raw, id or messages", "e.g. {label: terse, raw: 'Answer: {{q}}'}")


def _prompt_text(ctx: Context, src: Src, loc: Loc, text: str, label: str | None, number: int,
                 raw: bool = False) -> list[SuitePrompt]:
    """A prompt written as text: ``file://`` path(s), a prompt function, a workspace prompt reference, or the
    prompt itself."""
    function = None if raw else code_ref(ctx, src, loc, text, "the prompt function")
    if function is not None:
        return [function_prompt(function, label, _relative(ctx, function.path))]
    if not raw and text.startswith(FILE):
        out = []
        for path in ctx.files(src, loc, text):
            prompts = _file_prompts(ctx, src, loc, path)
            base = label or _relative(ctx, path)
            out += [dataclasses.replace(p, label=p.label or (base if len(prompts) == 1 else f"{base}#{k}"),
                                        promptfoo_label=None if label or p.label or p.function
                                        else f"{_relative(ctx, path)}: {template_text(p)}")
                    for k, p in enumerate(prompts, 1)]
        return out
    if not raw and _REF.match(text) and _in_workspace(ctx.workspace, text.partition("@")[0]):
        return [_workspace_prompt(ctx, src, loc, text, label)]
    name = _slug(label, number)
    chat = _chat_text(src, loc, text, name)
    prompt = chat or _user_prompt(name, text)
    return [SuitePrompt(label or f"prompt {number}", _templated(src, loc, prompt), nunjucks=True,
                        chat=chat is not None, promptfoo_label=None if label else text)]


def _relative(ctx: Context, path: Path) -> str:
    try:
        return str(path.relative_to(ctx.folder))
    except ValueError:
        return ctx.shown(path)


def _slug(label: str | None, number: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label or "").strip("-._") or f"prompt-{number}"


def _user_prompt(name: str, text: str) -> Prompt:
    return Prompt(name=name, messages=[PromptMessage(role="user", content=text)])


def _templated(src: Src, loc: Loc, prompt: Prompt) -> Prompt:
    """``prompt`` once its texts are known to compile as templates (promptfoo's prompts are Nunjucks)."""
    try:
        for text in (prompt.system or "", *(m.content for m in prompt.messages)):
            check_syntax(text)
    except TemplateError as exc:
        raise src.error(loc, str(exc), "fix the template (Nunjucks: {{ var }}, {% if %}, {% for %})") from None
    return prompt


def _in_workspace(workspace: Path, name: str) -> bool:
    return find_prompt_file(prompts_folder(workspace), name) is not None or bool(versions(workspace, name))


def _workspace_prompt(ctx: Context, src: Src, loc: Loc, ref: str, label: str | None) -> SuitePrompt:
    """``name@3`` / ``name@production`` / ``name`` (the newest version; the working file, saved, if none)."""
    workspace = ctx.workspace
    try:
        name, which = split_ref(ref)
        if which is None and not versions(workspace, name):
            prompt = load_current(workspace, name)
            version = save_version(workspace, prompt)
        else:
            version = resolve_ref(workspace, ref)
            prompt = get_version(workspace, name, version.number)
            edited = which is None and find_prompt_file(prompts_folder(workspace), name) is not None and (
                content_hash(dump_prompt(load_current(workspace, name))) != version.hash)
            if edited:
                ctx.warnings.append(f"{src.at(loc)}: '{name}' is version {version.number}; the working file has "
                                    f"changes saved in no version (save them: workbench prompts save {name})")
    except PromptFileError:
        raise
    except ConfigError as exc:
        raise src.located(loc, exc) from None
    return SuitePrompt(label or f"{name}@{version.number}", prompt, version.number, folder=prompts_folder(workspace))


def _file_prompts(ctx: Context, src: Src, loc: Loc, path: Path) -> list[SuitePrompt]:
    """A prompt file (labelled later, unless its CSV labels it): text (:func:`text_prompts`), a chat list
    (.json/.yaml; a .jsonl file one a line), or ours (.yaml); a JSON chat holding template tags is kept as text,
    rendered before it is read."""
    suffix = path.suffix.lower()
    text = ctx.read(src, loc, path)
    name = _slug(path.stem, 1)
    if suffix in (".txt", ".md", ".csv"):
        file_src = Src(ctx.shown(path))
        return [SuitePrompt(label or "", _templated(file_src, (), _user_prompt(name, part)), nunjucks=True)
                for part, label in text_prompts(suffix, text)]
    if suffix == ".jsonl":
        return [_json_line_prompt(Src(ctx.shown(path), line0=number), line, name)
                for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if suffix == ".json" and has_tags(text):
        placeholder = _templated(Src(ctx.shown(path)), (), _user_prompt(name, text))
        return [SuitePrompt("", placeholder, nunjucks=True, json_template=text, chat=True)]
    if suffix not in (".json", ".yaml", ".yml"):
        raise src.error(loc, f"prompts from {suffix or 'extensionless'} files are not supported ({ctx.shown(path)})",
                        "use .txt, .md or .csv (text), .json or .jsonl (chat lists) or .yaml (a chat list or a "
                        "prompt file)")
    data, file_src = ctx.parse_yaml(path, text)
    if isinstance(data, list) or suffix == ".json":
        return [SuitePrompt("", _templated(file_src, (), chat_prompt(file_src, (), data, name)), nunjucks=True,
                            chat=True)]
    default_name = path.stem if isinstance(data, dict) and "name" not in data else None
    return [SuitePrompt("", parse_prompt(text, ctx.shown(path), default_name=default_name), folder=path.parent)]


def _json_line_prompt(src: Src, line: str, name: str) -> SuitePrompt:
    """One line of a ``.jsonl`` prompt file: a chat list (a line with template tags rendered before it is read)."""
    if has_tags(line):
        return SuitePrompt("", _templated(src, (), _user_prompt(name, line)), nunjucks=True, json_template=line,
                           chat=True)
    chat = _chat_text(src, (), line, name)
    if chat is None:
        raise src.error((), "a line of a .jsonl prompt file is not a JSON list of messages",
                        'write one chat a line: [{"role": "user", "content": "..."}]')
    return SuitePrompt("", _templated(src, (), chat), nunjucks=True, chat=True)


def _chat_text(src: Src, loc: Loc, text: str, name: str) -> Prompt | None:
    """An inline prompt that is a JSON chat list (promptfoo accepts those); None for plain text."""
    if not text.lstrip().startswith("["):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
        return None
    return chat_prompt(src, loc, data, name)


def _inline_chat(src: Src, loc: Loc, item: dict[str, Any], label: str) -> SuitePrompt:
    """Ours: ``{label, system, messages}``."""
    prompt = chat_prompt(src, (*loc, "messages"), item.get("messages"), _slug(label, 1))
    if item.get("system") is not None:
        system = expect(src, (*loc, "system"), item["system"], str, "the system prompt text")
        if prompt.system is not None:
            raise src.error((*loc, "system"), "the system prompt is given twice", "keep system: or the system message")
        prompt = prompt.model_copy(update={"system": system})
    return SuitePrompt(label, prompt, chat=True)


# --- targets -----------------------------------------------------------------------------------------------------


def _targets(ctx: Context, src: Src, data: dict[str, Any], given: bool,
             prompts: tuple[SuitePrompt, ...]) -> tuple[SuiteTarget, ...]:
    if "targets" in data and "providers" in data:
        raise src.error(("providers",), "both targets and providers are set", "keep one of them")
    key = "targets" if "targets" in data else "providers"
    if data.get(key) is None:
        if given:
            return ()
        raise src.error((), "the suite has no targets",
                        "add targets: a list such as openai/gpt-4o-mini, or pass them with -t PROVIDER/MODEL")
    raw = data[key]
    items = [raw] if isinstance(raw, str) else expect(src, (key,), raw, list, "a list of targets")
    split = split_target(key, items)
    if split is not None:
        raise src.error((key, split[0]), split[1], split[2])
    out: list[SuiteTarget] = []
    written = [(src, (key,) if isinstance(raw, str) else (key, i), item) for i, item in enumerate(items)]
    for src, loc, item in (entry for w in written for entry in _provider_files(ctx, *w)):
        target = ctx.collect(functools.partial(_target, ctx, src, loc, item))
        if target is None:
            continue
        ctx.collect(functools.partial(_check_attachments, src, loc, target, prompts))
        target = _apart(src, loc, target, out)
        ctx.collect(functools.partial(_prompt_configs, ctx, src, loc, item, target))
        out.append(target)
    return tuple(out)


_PROVIDER_FILES = (".yaml", ".yml", ".json")


def _provider_files(ctx: Context, src: Src, loc: Loc, item: Any) -> list[tuple[Src, Loc, Any]]:
    """promptfoo's ``file://providers.yaml`` (a provider, or a list of them; globs too): its providers, each read
    where the file writes it; any other item as it is."""
    if not (isinstance(item, str) and item.startswith(FILE) and item.lower().endswith(_PROVIDER_FILES)):
        return [(src, loc, item)]
    out: list[tuple[Src, Loc, Any]] = []
    for path in ctx.files(src, loc, item):
        data, fsrc = ctx.parse_yaml(path, ctx.read(src, loc, path))
        if isinstance(data, list):
            out += [(fsrc, (i,), provider) for i, provider in enumerate(data)]
        else:
            out.append((fsrc, (), expect(fsrc, (), data, dict, "a provider {id, config} or a list of them")))
    return out


def _prompt_config_with_targets(src: Src, configs: Mapping[str, tuple[Loc, dict[str, Any]]]) -> None:
    """A prompt's ``config`` is merged over the suite's providers' configs; targets given with ``-t`` have none to
    merge it into, so the run would send something other than the suite says: refused at the prompt's line."""
    prompt_loc = next(iter(configs.values()))[0]
    raise src.error(prompt_loc, "a prompt's config is merged over the suite's providers, and -t replaces them",
                    "run without -t, or put the prompt's config in the suite's providers")


def _prompt_configs(ctx: Context, src: Src, loc: Loc, item: Any, target: SuiteTarget) -> None:
    """promptfoo's prompt ``config``: for each prompt that has one and runs on ``target``, the target it runs on
    instead, its provider's config with the prompt's merged over it (as promptfoo's providers merge
    ``context.prompt.config``); a key the target cannot take fails at the prompt's line."""
    if target.local is not None:
        return
    own: Any = {}
    own_loc: Loc = loc
    if isinstance(item, dict) and "id" in item:
        own, own_loc = item.get("config") or {}, (*loc, "config")
    elif isinstance(item, dict) and len(item) == 1:
        key = next(iter(item))
        own, own_loc = (item[key] or {}).get("config") or {}, (*loc, key, "config")
    shown = item if isinstance(item, str) else target.written_id or target.ref
    for label, (prompt_loc, config) in ctx.prompt_configs.items():
        if not target.runs(label):
            continue
        provider_config(ctx, src, prompt_loc, config, target.ref, shown)  # its own keys, checked at its line
        params, endpoint = provider_config(ctx, src, own_loc if own else prompt_loc, {**own, **config},
                                           target.ref, shown)
        ctx.prompt_targets.setdefault(label, {})[target.label] = dataclasses.replace(
            target, params=params, endpoint=endpoint)


def _check_attachments(src: Src, loc: Loc, target: SuiteTarget, prompts: tuple[SuitePrompt, ...]) -> None:
    """A prompt's attachment the target's wire cannot carry (a PDF to Ollama) fails the load at the target's line,
    not each of its cells at run time."""
    if target.local is not None:
        return
    wire = wire_of(target.ref)
    for prompt in prompts:
        if not target.runs(prompt.label) or not any(m.attachments for m in prompt.prompt.messages):
            continue
        try:
            turns = request_turns(prompt.prompt.messages, folder=prompt.folder, where=f"prompt {prompt.label}: ")
            check_attachments(turns, wire, target.label)
        except ConfigError as exc:
            raise src.located(loc, exc) from None


def _apart(src: Src, loc: Loc, target: SuiteTarget, before: list[SuiteTarget]) -> SuiteTarget:
    """``target`` with a label none of ``before`` has: an unlabelled provider written again (promptfoo runs the same
    id twice, e.g. with two configs) is numbered, ``id #2``; a label given twice is an error."""
    labels = {t.label for t in before}
    if target.label not in labels:
        return target
    if target.label not in (target.ref, target.ref.partition("/")[2]):
        raise src.error(loc, f"a second target labelled '{target.label}'", "give each its own label:")
    number = 2
    while f"{target.label} #{number}" in labels:
        number += 1
    return dataclasses.replace(target, label=f"{target.label} #{number}")


_PROVIDER_IDS = re.compile(r"^(openai):(?:chat|responses):|^(anthropic):messages:")
"""What promptfoo's outputs drop from a provider written as a bare id: its provider names itself ``openai:MODEL``
(chat and responses) and ``anthropic:MODEL``; an id written in a mapping (``{id: ...}``) is kept as written."""


def _target(ctx: Context, src: Src, loc: Loc, item: Any) -> SuiteTarget:
    if isinstance(item, str):
        target = _target_options(ctx, src, loc, {}, item, loc)
        named = _PROVIDER_IDS.sub(lambda m: f"{m.group(1) or m.group(2)}:", item)
        return target if named == item else dataclasses.replace(target, written_id=named)
    expect(src, loc, item, dict, "a target: provider/model, a promptfoo id, or {id, label, config}")
    if len(item) == 1 and not set(item) & (_TARGET_KEYS | _TARGET_PROMPTFOO):
        # promptfoo's {"openai:gpt-4o": {config: ...}}
        key = next(iter(item))
        return _target_options(ctx, src, (*loc, key), item[key] or {}, str(key), (*loc, key))
    if "id" not in item:
        raise src.error(loc, "a target mapping needs an id", "e.g. {id: openai:gpt-4o-mini, config: {temperature: 0}}")
    text = expect(src, (*loc, "id"), item["id"], str, "a target id")
    return _target_options(ctx, src, loc, item, text, (*loc, "id"))


def _target_options(ctx: Context, src: Src, loc: Loc, options: Any, text: str, id_loc: Loc) -> SuiteTarget:
    expect(src, loc, options, dict, "a mapping (label, config)")
    check_keys(ctx, src, loc, options, _TARGET_KEYS, _TARGET_PROMPTFOO, "a target")
    prompts = prompt_filter(ctx, src, (*loc, "prompts"), options.get("prompts"))
    delay = target_delay(src, loc, options)
    local = local_target(ctx, src, loc, text, options, id_loc)
    if local is not None:
        label = options.get("label")
        return dataclasses.replace(local, prompts=prompts, written_id=text, delay_ms=delay,
                                   written_label=None if label is None else str(label))
    ref = target_ref(src, id_loc, text)
    provider = ref.partition("/")[0]
    if ctx.providers is not None and provider not in ctx.providers:
        raise src.error(id_loc, f"unknown provider '{provider}' in '{text}'",
                        "use one of: " + ", ".join(sorted(ctx.providers)) + " (or a provider in workbench.toml)")
    label = options.get("label")
    params, endpoint = provider_config(ctx, src, (*loc, "config"), options.get("config") or {}, ref, text)
    transform = options.get("transform")
    if transform is not None:
        transform = expect(src, (*loc, "transform"), transform, str, "code: inline JavaScript or file://path")
        require_node_for_target(src.at((*loc, "transform")), transform)
    return SuiteTarget(ref=ref, label=ref if label is None else str(label), params=params, transform=transform,
                       endpoint=endpoint, prompts=prompts, written_id=text, delay_ms=delay,
                       written_label=None if label is None else str(label))


# --- digest ------------------------------------------------------------------------------------------------------


def _digest(prompts: tuple[SuitePrompt, ...], targets: tuple[SuiteTarget, ...], tests: tuple[TestCase, ...]) -> str:
    """sha256 of the resolved suite's canonical JSON (prompt content, targets, tests; not where they were written)."""
    data = {
        "prompts": [{"label": p.label, "version": p.version, "prompt": prompt_data(p.prompt)} for p in prompts],
        "targets": [_target_data(t) for t in targets],
        "tests": [{
            "description": t.description, "vars": t.vars, "threshold": t.threshold, "metadata": t.metadata,
            "transform": t.transform, "transformVars": t.transform_vars,
            **({"prefix": t.prefix, "suffix": t.suffix} if t.prefix or t.suffix else {}),
            "assert": [_assertion_data(a) for a in t.assertions],
        } for t in tests],
    }
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _target_data(t: SuiteTarget) -> dict[str, Any]:
    data = {"ref": t.cache_ref, "label": t.label, "params": t.params, "transform": t.transform}
    return data if t.prompts is None else {**data, "prompts": t.prompts}


def _assertion_data(a: AssertionSpec) -> dict[str, Any]:
    data = {"type": a.type, "negate": a.negate, "value": a.value, "threshold": a.threshold, "weight": a.weight,
            "metric": a.metric, "provider": a.provider, "config": a.config}
    if a.transform is not None:
        data["transform"] = a.transform
    if a.assertions:
        data["assert"] = [_assertion_data(child) for child in a.assertions]
    if a.rubric_prompt is not None:
        data["rubricPrompt"] = a.rubric_prompt
    return data
