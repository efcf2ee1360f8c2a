"""A suite's tests: inline mappings, CSV / JSONL / YAML / JSON files, the default test merged in, list-valued
variables expanded into one test per combination."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from workbench.core.evals.comparisons import check_spec, check_tests
from workbench.core.evals.computed_vars import computed_var
from workbench.core.evals.csv_columns import csv_test
from workbench.core.evals.local_providers import local_target
from workbench.core.evals.model import ASSERTION_TYPES, MODEL_GRADED_TYPES, AssertionSpec, TestCase
from workbench.core.evals.provider_config import check_provider_keys, configured_judge, register_judge
from workbench.core.evals.suite_promptfoo import (
    FILE,
    Context,
    Src,
    check_keys,
    expect,
    target_ref,
    unsupported_type,
)
from workbench.core.evals.suite_sources import (
    code_ref,
    file_value,
    generated_tests,
    refuse_unhonoured,
    test_filter,
    vars_from_files,
)
from workbench.core.templating import StructuredVar
from workbench.core.yaml_lines import Loc

_ASSERT_KEYS = frozenset({"type", "value", "threshold", "weight", "metric", "provider", "config", "rubricPrompt",
                          "transform"})
_ASSERT_PROMPTFOO = frozenset({"contextTransform"})
_SET_KEYS = frozenset({"type", "assert", "threshold", "weight", "metric", "config"})
_TEST_KEYS = frozenset({"description", "vars", "assert", "threshold", "metadata", "options", "providers", "prompts"})
_TEST_PROMPTFOO: frozenset[str] = frozenset()
_NUMBER = (int, float)


@dataclass(slots=True)
class Draft:
    """A test as written, before the default test is merged in and its variables are expanded."""

    source: str
    description: str = ""
    vars: dict[str, list[str]] = field(default_factory=dict)
    """Each variable's values: one, or several (a list, a glob) that expand into a test each."""
    assertions: list[AssertionSpec] = field(default_factory=list)
    threshold: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    judge: str | None = None
    """``options.provider``: the judge of this test's model-graded assertions."""
    embedder: str | None = None
    """``options.provider.embedding``: the embedding provider of this test's ``similar`` assertions."""
    rubric_prompt: Any = None
    """``options.rubricPrompt``: the grading prompt of this test's model-graded assertions."""
    transform: str | None = None
    """``options.transform``: code giving the output the assertions grade."""
    transform_vars: str | None = None
    """``options.transformVars``: code giving variables merged in before the prompt is rendered."""
    prefix: str = ""
    suffix: str = ""
    """``options.prefix`` / ``options.suffix``: text around the prompt's (the default test's when empty)."""
    targets: tuple[str, ...] | None = None
    prompts: tuple[str, ...] | None = None
    """promptfoo's test ``providers`` and ``prompts`` (:func:`test_filter`)."""
    options: dict[str, Any] = field(default_factory=dict)
    """``options`` as written."""


# --- one test ----------------------------------------------------------------------------------------------------


def _number(src: Src, loc: Loc, value: Any, what: str) -> float:
    return float(expect(src, loc, value, _NUMBER, what))


def _judge(ctx: Context, src: Src, loc: Loc, value: Any, *, local: bool = True) -> str:
    """A grader (a judge, or an assertion's provider): a target string, or promptfoo's ``{id, label, config}`` (its
    config honoured: :func:`configured_judge`). With ``local``, a provider that is not a model's (``echo``, ``http``,
    ``file://grader.py``) is read as a suite's target is (:func:`local_target`) and answers as one does."""
    written, id_loc, options = value, loc, {}
    if isinstance(value, dict):
        check_provider_keys(src, loc, value)
        written, id_loc, options = value.get("id"), (*loc, "id"), value
    if local and isinstance(written, str):
        target = local_target(ctx, src, loc, written, options, id_loc)
        if target is not None:
            return register_judge(ctx, target)
    if isinstance(value, dict):
        return configured_judge(ctx, src, loc, value, _judge(ctx, src, id_loc, written, local=False))
    return target_ref(src, loc, expect(src, loc, value, str, "a target such as openai/gpt-4o-mini"))


_GRADER_KINDS = ("text", "embedding")


def _graders_by_kind(ctx: Context, src: Src, loc: Loc, value: dict[str, Any]) -> tuple[str | None, str | None]:
    """promptfoo's ``options.provider: {text: ..., embedding: ...}``: the judge of the model-graded assertions and
    the embedding provider of the ``similar`` ones (each a provider id or ``{id, config}``)."""
    for kind in value:
        if kind not in _GRADER_KINDS:
            raise src.error((*loc, kind), f"a grader of kind '{kind}' is not supported",
                            "the kinds are: text (the judge), embedding (for similar); or give one provider id")
    text, embedding = value.get("text"), value.get("embedding")
    return (None if text is None else _judge(ctx, src, (*loc, "text"), text),
            None if embedding is None else _judge(ctx, src, (*loc, "embedding"), _embedding_model(embedding),
                                                  local=False))


_TYPE_ALIASES = {"similar:cosine": "similar"}
"""promptfoo's names for a type under another name (``similar`` is the cosine similarity)."""


def parse_assertion(ctx: Context, src: Src, loc: Loc, data: Any, nested: bool = False) -> AssertionSpec:
    expect(src, loc, data, dict, "an assertion mapping (type, value, ...)")
    written = data.get("type")
    if written is not None and str(written).removeprefix("not-") == "assert-set":
        return _assert_set(ctx, src, loc, data, nested)
    check_keys(ctx, src, loc, data, _ASSERT_KEYS, _ASSERT_PROMPTFOO, "an assertion")
    if "type" not in data:
        raise src.error(loc, "an assertion needs a type", "e.g. type: contains")
    written = expect(src, (*loc, "type"), data["type"], str, "an assertion type")
    negate = written.startswith("not-")
    base = written.removeprefix("not-")
    base = _TYPE_ALIASES.get(base, base)
    if base not in ASSERTION_TYPES:
        raise unsupported_type(src, (*loc, "type"), base)
    provider = None
    if data.get("provider") is not None:
        written_provider = _embedding_model(data["provider"]) if base == "similar" else data["provider"]
        provider = _judge(ctx, src, (*loc, "provider"), written_provider, local=base != "similar")
    threshold = data.get("threshold")
    metric = data.get("metric")
    spec = AssertionSpec(
        type=base, value=data.get("value"), negate=negate,
        threshold=None if threshold is None else _number(src, (*loc, "threshold"), threshold, "a number"),
        weight=_weight(src, (*loc, "weight"), data.get("weight", 1.0)),
        metric=None if metric is None else expect(src, (*loc, "metric"), metric, str, "a metric name"),
        provider=provider, config=expect(src, (*loc, "config"), data.get("config", {}), dict, "a mapping"),
        source=src.at(loc), rubric_prompt=_rubric_prompt(ctx, src, (*loc, "rubricPrompt"), data.get("rubricPrompt")),
        transform=_code(src, (*loc, "transform"), data.get("transform")))
    problem = check_spec(spec, nested)
    if problem is not None:
        raise src.error((*loc, "type"), problem)
    if base == "javascript" and isinstance(spec.value, str) and _TYPESCRIPT.match(spec.value.strip()):
        raise src.error((*loc, "value"), f"javascript '{spec.value.strip()}': TypeScript files are not supported",
                        "use a .js file (or a python assertion)")
    return spec


_TYPESCRIPT = re.compile(r"^file://[^:]+\.[cm]?tsx?(:[\w$.]+)?$", re.IGNORECASE)
"""A ``javascript`` assertion's TypeScript file (promptfoo compiles it; Node here does not): refused at load."""


def _code(src: Src, loc: Loc, value: Any) -> str | None:
    """A transform: JavaScript (inline, or ``file://x.js[:name]``) or ``file://x.py[:name]``."""
    return None if value is None else str(expect(src, loc, value, str, "code: inline JavaScript or file://path"))


def _assert_set(ctx: Context, src: Src, loc: Loc, data: dict[str, Any], nested: bool) -> AssertionSpec:
    """promptfoo's ``assert-set``: a list of assertions (not sets) with their own threshold, weight and metric."""
    if nested:
        raise src.error((*loc, "type"), "an assert-set inside an assert-set", "promptfoo nests assert-sets one deep")
    check_keys(ctx, src, loc, data, _SET_KEYS, frozenset(), "an assert-set")
    if data.get("assert") is None:
        raise src.error(loc, "an assert-set needs its assertions", "list them under assert:")
    children = expect(src, (*loc, "assert"), data["assert"], list, "a list of assertions (assert:)")
    if not children:
        raise src.error((*loc, "assert"), "an assert-set with no assertions", "list them under assert:")
    threshold, metric = data.get("threshold"), data.get("metric")
    return AssertionSpec(
        type="assert-set", negate=str(data["type"]).startswith("not-"),
        threshold=None if threshold is None else _number(src, (*loc, "threshold"), threshold, "a number"),
        weight=_weight(src, (*loc, "weight"), data.get("weight", 1.0)),
        metric=None if metric is None else expect(src, (*loc, "metric"), metric, str, "a metric name"),
        config=expect(src, (*loc, "config"), data.get("config", {}), dict, "a mapping"), source=src.at(loc),
        assertions=tuple(parse_assertion(ctx, src, (*loc, "assert", i), child, nested=True)
                         for i, child in enumerate(children)))


def _rubric_prompt(ctx: Context, src: Src, loc: Loc, value: Any) -> Any:
    """A ``rubricPrompt``: a text (``file://`` reads the file), a chat list, or g-eval's ``{steps, evaluate}``."""
    if value is None:
        return None
    if isinstance(value, str) and value.startswith(FILE):
        return ctx.read(src, loc, ctx.files(src, loc, value)[0])
    if isinstance(value, dict):
        return {str(k): _rubric_prompt(ctx, src, (*loc, k), v) for k, v in value.items()}
    return expect(src, loc, value, (str, list), "a prompt: a text, a list of messages, or a file:// path")


def _embedding_model(value: Any) -> Any:
    """promptfoo's embedding provider id (``openai:embedding:MODEL``) as the provider and model it calls."""
    if isinstance(value, dict):
        return {**value, "id": _embedding_model(value.get("id"))}
    return re.sub(r"^([\w-]+):embeddings?:", r"\1:", value) if isinstance(value, str) else value


def _weight(src: Src, loc: Loc, value: Any) -> float:
    weight = _number(src, loc, value, "a weight (a number, 0 or more)")
    if weight < 0:
        raise src.error(loc, f"weight {value} is negative", "weights are 0 (informational) or more")
    return weight


def _scalar(value: Any) -> str:
    if isinstance(value, bool):  # the text a prompt prints; a condition reads the boolean, as Nunjucks does
        return StructuredVar(value, "true" if value else "false")
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return StructuredVar(value)
    return value.removesuffix("\n") if isinstance(value, str) else str(value)  # promptfoo drops one newline


def _var_values(ctx: Context, src: Src, loc: Loc, value: Any) -> list[str]:
    """A variable's values: ``file://`` loads the text (a glob every match), a list of scalars expands."""
    if isinstance(value, list) and value and not any(isinstance(v, dict | list) for v in value):
        return [text for i, item in enumerate(value) for text in _var_values(ctx, src, (*loc, i), item)]
    if isinstance(value, str) and value.startswith(FILE):
        computed = computed_var(ctx, src, loc, value)
        if computed is not None:
            return [computed]
        return [file_value(ctx, src, loc, path) for path in ctx.files(src, loc, value)]
    return [_scalar(value)]


def parse_test(ctx: Context, src: Src, loc: Loc, data: Any) -> Draft:
    expect(src, loc, data, dict, "a test mapping (description, vars, assert, ...)")
    refuse_unhonoured(src, loc, data)
    check_keys(ctx, src, loc, data, _TEST_KEYS, _TEST_PROMPTFOO, "a test")
    draft = Draft(source=src.at(loc))
    if data.get("description") is not None:
        draft.description = _scalar(data["description"]).strip()
    variables = data.get("vars") or {}
    if isinstance(variables, str | list):  # promptfoo's vars: file://vars.yaml
        variables = vars_from_files(ctx, src, (*loc, "vars"), variables)
    expect(src, (*loc, "vars"), variables, dict, "a mapping of variables (or a file:// path to one)")
    draft.vars = {str(k): _var_values(ctx, src, (*loc, "vars", k), v) for k, v in variables.items()}
    asserts = expect(src, (*loc, "assert"), data.get("assert") or [], list, "a list of assertions")
    found = (ctx.collect(partial(parse_assertion, ctx, src, (*loc, "assert", i), a)) for i, a in enumerate(asserts))
    draft.assertions = [assertion for assertion in found if assertion is not None]
    if data.get("threshold") is not None:
        draft.threshold = _number(src, (*loc, "threshold"), data["threshold"], "a number")
    draft.metadata = dict(expect(src, (*loc, "metadata"), data.get("metadata") or {}, dict, "a mapping"))
    if data.get("providers") is not None:
        draft.targets = test_filter(src, (*loc, "providers"), data["providers"], targets=True)
    if data.get("prompts") is not None:
        draft.prompts = test_filter(src, (*loc, "prompts"), data["prompts"], targets=False)
    options = expect(src, (*loc, "options"), data.get("options") or {}, dict, "a mapping of options")
    draft.options = dict(options)
    for key, value in options.items():
        if key == "provider" and isinstance(value, dict) and "id" not in value:
            draft.judge, draft.embedder = _graders_by_kind(ctx, src, (*loc, "options", key), value)
        elif key == "provider":
            draft.judge = _judge(ctx, src, (*loc, "options", key), value)
        elif key == "rubricPrompt":
            draft.rubric_prompt = _rubric_prompt(ctx, src, (*loc, "options", key), value)
        elif key == "transform":
            draft.transform = _code(src, (*loc, "options", key), value)
        elif key == "transformVars":
            draft.transform_vars = _code(src, (*loc, "options", key), value)
        elif key in ("prefix", "suffix"):
            setattr(draft, key, _scalar(expect(src, (*loc, "options", key), value, str, "a text")))
        else:
            ctx.unsupported(src, (*loc, "options", key), f"options.{key}")
    return draft


# --- test files --------------------------------------------------------------------------------------------------


def _csv_tests(ctx: Context, path: Path, text: str) -> list[Draft]:
    """promptfoo's CSV: columns are variables but for its reserved ones (:func:`csv_test`)."""
    shown = ctx.shown(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise Src(shown).error((), "the CSV file is empty", "the first row names the columns")
    header = [h.strip() for h in header]
    drafts: list[Draft] = []
    start = reader.line_num + 1
    for row in reader:
        src, start = Src(shown, line0=start), reader.line_num + 1
        if any(cell.strip() for cell in row) and (draft := ctx.collect(partial(_csv_test, ctx, src, header, row))):
            drafts.append(draft)
    return drafts


def _csv_test(ctx: Context, src: Src, header: list[str], row: list[str]) -> Draft:
    """One row of a CSV file of tests."""
    if len(row) > len(header):
        raise src.error((), f"{len(row)} cells but {len(header)} columns", "quote cells that hold commas")
    cells = dict(zip(header, [*row, *[""] * (len(header) - len(row))], strict=True))
    return parse_test(ctx, src, (), csv_test(src, cells))


def _jsonl_tests(ctx: Context, path: Path, text: str) -> list[Draft]:
    shown = ctx.shown(path)
    drafts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        draft = ctx.collect(partial(_jsonl_test, ctx, Src(shown, line0=number), line))
        if draft is not None:
            drafts.append(draft)
    return drafts


def _jsonl_test(ctx: Context, src: Src, line: str) -> Draft:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise src.error((), f"not JSON: {exc}", "each line holds one test as a JSON object") from None
    return parse_test(ctx, src, (), data)


def _file_tests(ctx: Context, src: Src, loc: Loc, ref: str) -> list[Draft]:
    generator = code_ref(ctx, src, loc, ref, "the test generator")
    if generator is not None:
        return [parse_test(ctx, src, loc, test) for test in generated_tests(ctx, src, loc, generator)]
    drafts: list[Draft] = []
    for path in ctx.files(src, loc, ref):
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".jsonl", ".yaml", ".yml", ".json"):
            raise src.error(loc, f"tests from '{ctx.shown(path)}': {suffix or 'this'} files are not supported",
                            "use a .csv, .jsonl, .yaml or .json file")
        text = ctx.read(src, loc, path)
        if suffix == ".csv":
            drafts += _csv_tests(ctx, path, text)
        elif suffix == ".jsonl":
            drafts += _jsonl_tests(ctx, path, text)
        else:
            data, file_src = ctx.parse_yaml(path, text)
            items = data if isinstance(data, list) else [data]
            found = (ctx.collect(partial(parse_test, ctx, file_src, (i,) if isinstance(data, list) else (), item))
                     for i, item in enumerate(items))
            drafts += [draft for draft in found if draft is not None]
    return drafts


def parse_tests(ctx: Context, src: Src, loc: Loc, data: Any) -> list[Draft]:
    """``tests``: a list of test mappings and ``file://`` references (or one reference)."""
    items = [data] if isinstance(data, str) else expect(src, loc, data, list, "a list of tests")
    drafts: list[Draft] = []
    for i, item in enumerate(items):
        item_loc = loc if isinstance(data, str) else (*loc, i)
        if isinstance(item, str):
            if not item.startswith(FILE):
                ctx.problems.append(src.error(
                    item_loc, f"tests from '{item}' are not supported",
                    "list tests here, or reference a file: file://tests.csv (.jsonl, .yaml, .json)"))
            else:
                drafts += ctx.collect(partial(_file_tests, ctx, src, item_loc, item)) or []
        elif (draft := ctx.collect(partial(parse_test, ctx, src, item_loc, item))) is not None:
            drafts.append(draft)
    return drafts


# --- the suite's tests -------------------------------------------------------------------------------------------


def _expanded(draft: Draft) -> list[tuple[dict[str, str], str]]:
    """Every combination of the variables' values, each with its description (naming the varying values)."""
    names = list(draft.vars)
    varying = [n for n in names if len(draft.vars[n]) > 1]
    out = []
    for combo in itertools.product(*(draft.vars[n] for n in names)):
        values = dict(zip(names, combo, strict=True))
        description = draft.description
        if varying and description:
            shown = ", ".join(f"{n}={_short(values[n])}" for n in varying)
            description = f"{description} ({shown})"
        out.append((values, description))
    return out


def _short(text: str, limit: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def build_tests(ctx: Context, drafts: list[Draft], default: Draft | None) -> tuple[TestCase, ...]:
    """The test cases: the default test merged into each (test variables win, default assertions first)."""
    tests: list[TestCase] = []
    for draft in drafts:
        variables = {**(default.vars if default else {}), **draft.vars}
        assertions = [*(default.assertions if default else []), *draft.assertions]
        judge = draft.judge if draft.judge is not None else default.judge if default else None
        embedder = draft.embedder if draft.embedder is not None else default.embedder if default else None
        rubric = draft.rubric_prompt if draft.rubric_prompt is not None else default.rubric_prompt if default else None
        assertions = [_graded_by(a, judge, rubric, embedder) for a in assertions]
        threshold = draft.threshold if draft.threshold is not None else default.threshold if default else None
        metadata = {**(default.metadata if default else {}), **draft.metadata}
        merged = replace(draft, vars=variables)
        transform = draft.transform if draft.transform is not None else default.transform if default else None
        transform_vars = draft.transform_vars if draft.transform_vars is not None else (
            default.transform_vars if default else None)
        prefix, suffix = draft.prefix or (default.prefix if default else ""), draft.suffix or (
            default.suffix if default else "")
        tests += [TestCase(vars=values, assertions=tuple(assertions), description=description, threshold=threshold,
                           source=draft.source, metadata=metadata, transform=transform, transform_vars=transform_vars,
                           prefix=prefix, suffix=suffix, targets=draft.targets, prompts=draft.prompts,
                           options={**(default.options if default else {}), **draft.options})
                  for values, description in _expanded(merged)]
    unique = _unique(ctx, tests)
    check_tests(unique)
    return unique


def _graded_by(spec: AssertionSpec, judge: str | None, rubric: Any, embedder: str | None = None) -> AssertionSpec:
    """A model-graded assertion given the test's judge and grading prompt where it names none, a ``similar`` one
    the test's embedding provider (an ``assert-set``'s assertions too)."""
    if spec.assertions:
        return replace(spec, assertions=tuple(_graded_by(a, judge, rubric, embedder) for a in spec.assertions))
    if spec.type == "similar" and spec.provider is None and embedder is not None:
        return replace(spec, provider=embedder)
    if spec.type not in MODEL_GRADED_TYPES:
        return spec
    return replace(spec, provider=spec.provider if spec.provider is not None else judge,
                   rubric_prompt=spec.rubric_prompt if spec.rubric_prompt is not None else rubric)


def _unique(ctx: Context, tests: list[TestCase]) -> tuple[TestCase, ...]:
    """Tests with the same key (description, or the variables) numbered apart, with a warning."""
    seen: dict[str, int] = {}
    out = []
    for test in tests:
        key = test.key
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            ctx.warnings.append(f"{test.source}: a second test '{key}': named '{key} #{seen[key]}'")
            test = replace(test, description=f"{key} #{seen[key]}")
        out.append(test)
    return tuple(out)
