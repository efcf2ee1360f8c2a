"""Grading one observation against one assertion, and a test's verdict from its gradings.

Semantics follow promptfoo. String values are templated with the test's variables first (Nunjucks, as
promptfoo does: an unset variable is empty). ``not-`` inverts the pass and turns the score into ``1 - score``.

Three things fail an assertion whatever its polarity (``not-contains`` fails too), with score 0:

* the call failed (``obs.error``): every assertion fails with "the call failed: ...", except the
  measured-figure ones (``latency``, ``ttft``, ``cost``, ``finish-reason``), which still grade the
  figures the failed call has;
* the assertion cannot be evaluated: a missing value or threshold, an invalid regex or schema, a figure
  that was not measured ("cost unknown"), no judge;
* its code or judge gives no verdict: a python assertion that raises, times out or returns something
  unusable, a judge call that errors or a reply without a verdict.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from workbench.core.evals.assertions_heuristics import CHECKS as _HEURISTICS
from workbench.core.evals.assertions_javascript import JAVASCRIPT as _JAVASCRIPT
from workbench.core.evals.assertions_javascript import javascript_context
from workbench.core.evals.assertions_markup import CHECKS as _MARKUP
from workbench.core.evals.assertions_model_graded import CHECKS as _MODEL_GRADED
from workbench.core.evals.assertions_model_graded import NO_JUDGE as NO_JUDGE
from workbench.core.evals.assertions_services import CHECKS as _SERVICES
from workbench.core.evals.assertions_tools import CHECKS as _TOOLS
from workbench.core.evals.checks import Check as _Check
from workbench.core.evals.checks import CheckFn, Embedder, Judge
from workbench.core.evals.checks import Context as _Context
from workbench.core.evals.checks import Unusable as _Unusable
from workbench.core.evals.checks import pass_fail as _pass_fail
from workbench.core.evals.checks import quote as _quote
from workbench.core.evals.checks import texts as _texts
from workbench.core.evals.model import AssertionSpec, Grading, Observation
from workbench.core.evals.prompt_render import render_value, resolve_variables
from workbench.core.evals.python_assert import PythonAssertionError, interpret, run_python
from workbench.core.evals.similarity import bleu, gleu, levenshtein, rouge_n
from workbench.core.evals.transforms import TransformError, assertion_output, output_value
from workbench.core.templating import TemplateError

FIGURE_TYPES = frozenset({"latency", "ttft", "cost", "finish-reason"})
"""The assertions still graded when the call failed."""
PYTHON_TIMEOUT_S = 10.0
LEVENSHTEIN_THRESHOLD = 5
ROUGE_THRESHOLD = 0.75
BLEU_THRESHOLD = 0.5
_EXACT_CELLS = 1_000_000
"""Above this many cells (output length × expected length) the edit distance is computed up to the
threshold only."""
_JSON_START = re.compile(r"[{\[]")


async def grade(spec: AssertionSpec, obs: Observation, *, judge: Judge | None = None, base_dir: Path,
                embed: Embedder | None = None, tools: tuple[dict[str, Any], ...] = ()) -> Grading:
    """Grade ``obs`` against ``spec``; never raises for a bad assertion, bad code or a bad judge. ``tools``: those
    the request declared (the tool assertions check calls against them).

    As in promptfoo, an assertion of weight 0 always passes (its score is still reported). An assertion's own
    ``transform`` gives the output it grades."""
    try:
        obs = await assertion_output(spec, obs, base_dir)
    except TransformError as exc:
        return _failed(spec, f"its transform failed: {exc}")
    if spec.type == "assert-set":
        grading = await _assert_set(spec, obs, judge=judge, base_dir=base_dir, embed=embed, tools=tools)
    elif spec.type not in _CHECKS:
        grading = _failed(spec, f"unknown assertion type {spec.type!r}")
    elif obs.error is not None and spec.type not in FIGURE_TYPES:
        grading = _failed(spec, f"the call failed: {obs.error}")
    else:
        grading = await _checked(spec, _Context(spec, render(spec.value, obs.vars), obs, judge, base_dir, embed,
                                                tools))
    return dataclasses.replace(grading, passed=True) if spec.weight == 0 else grading


async def _checked(spec: AssertionSpec, ctx: _Context) -> Grading:
    try:
        check = await _CHECKS[spec.type](ctx)
    except (_Unusable, PythonAssertionError) as exc:
        return _failed(spec, str(exc))
    passed = check.passed != spec.negate
    expected = f"not ({check.expected})" if spec.negate else check.expected
    negated = 1.0 - check.score if check.negated_score is None else check.negated_score
    return Grading(
        assertion=spec.label,
        passed=passed,
        score=negated if spec.negate else check.score,
        reason=f"expected {expected}; found {check.found}",
        weight=spec.weight,
        metric=spec.metric,
    )


async def _assert_set(spec: AssertionSpec, obs: Observation, *, judge: Judge | None, base_dir: Path,
                      embed: Embedder | None, tools: tuple[dict[str, Any], ...]) -> Grading:
    """promptfoo's ``assert-set``: its assertions scored as a test is (its own ``threshold``), counted in the
    test as one assertion of the set's weight."""
    children = [await grade(child, obs, judge=judge, base_dir=base_dir, embed=embed, tools=tools)
                for child in spec.assertions]
    passed, score = verdict(children, spec.threshold)
    failed = [f"{g.assertion}: {g.reason}" for g in children if not g.passed]
    found = f"score {score:.3f}" + (f"; failed {'; '.join(failed)}" if failed else "")
    expected = f"{len(children)} assertions to pass" + _threshold_note(spec.threshold)
    if spec.negate:
        passed, score, expected = not passed, 1.0 - score, f"not ({expected})"
    return Grading(spec.label, passed, score, f"expected {expected}; found {found}", spec.weight, spec.metric,
                   tuple(children))


def verdict(gradings: Sequence[Grading], threshold: float | None) -> tuple[bool, float]:
    """A test's pass and score from its gradings (promptfoo scoring).

    The score is the weighted mean of the gradings' scores (weight 0 never counts; a test without
    assertions scores 1.0, one whose weights are all 0 scores 0.0). With a threshold the test passes
    when the score reaches it; without, when every grading passed.
    """
    if not gradings:
        return True, 1.0
    total = sum(g.weight for g in gradings)
    score = sum(g.weight * g.score for g in gradings) / total if total > 0 else 0.0
    if threshold is not None:
        return score >= threshold, score
    return all(g.passed or g.weight == 0 for g in gradings), score


def render(value: Any, variables: dict[str, str]) -> Any:
    """A string value (or each of a list) rendered with the test's variables as promptfoo renders it (Nunjucks:
    an unset variable is empty); a template that cannot render (refused when the suite loads) stays as written."""
    try:
        return render_value(value, resolve_variables(variables))
    except TemplateError:
        return value


def _failed(spec: AssertionSpec, reason: str) -> Grading:
    return Grading(spec.label, passed=False, score=0.0, reason=reason, weight=spec.weight, metric=spec.metric)


def _about_output(ctx: _Context, passed: bool, expected: str) -> _Check:
    """A pass-fail check whose finding is the output itself."""
    return _pass_fail(passed, expected, _quote(ctx.obs.text))


# Values and thresholds


def _text(ctx: _Context) -> str:
    value = ctx.value
    if value is None:
        raise _Unusable(f"{ctx.spec.label} needs a value")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        raise _Unusable(f"{ctx.spec.label} needs a text value, not a {type(value).__name__}")
    return str(value)


def _threshold(ctx: _Context, default: float | None = None) -> float:
    threshold = ctx.spec.threshold if ctx.spec.threshold is not None else default
    if threshold is None:
        raise _Unusable(f"{ctx.spec.label} needs a threshold")
    return threshold


def _schema(ctx: _Context) -> dict[str, Any] | None:
    """The value as a JSON schema, or None without a value."""
    value = ctx.value
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise _Unusable(f"{ctx.spec.label}: the value is not a JSON schema ({exc})") from None
    if not isinstance(value, dict):
        raise _Unusable(f"{ctx.spec.label}: the schema must be an object, not a {type(value).__name__}")
    try:
        jsonschema.validators.validator_for(value).check_schema(value)
    except jsonschema.SchemaError as exc:
        raise _Unusable(f"{ctx.spec.label}: invalid schema: {exc.message}") from None
    return value


def _schema_error(data: Any, schema: dict[str, Any]) -> str | None:
    """The first validation error as ``path: message``, or None when ``data`` is valid."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = best_match(validator.iter_errors(data))
    return None if error is None else f"{error.json_path}: {error.message}"


def _parse_json(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except ValueError:
        return False, None


def _json_values(text: str) -> list[Any]:
    """Every top-level JSON object or array in ``text`` (inside code fences or prose), in order."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    position = 0
    while (match := _JSON_START.search(text, position)) is not None:
        try:
            value, end = decoder.raw_decode(text, match.start())
        except ValueError:
            position = match.start() + 1
            continue
        found.append(value)
        position = end
    return found


# Text


async def _equals(ctx: _Context) -> _Check:
    if isinstance(ctx.value, dict | list):
        ok, data = _parse_json(ctx.obs.text)
        return _about_output(ctx, ok and data == ctx.value, f"JSON equal to {_quote(json.dumps(ctx.value))}")
    expected = _text(ctx)
    return _about_output(ctx, ctx.obs.text == expected, f"exactly {_quote(expected)}")


async def _contains(ctx: _Context) -> _Check:
    expected = _text(ctx)
    return _about_output(ctx, expected in ctx.obs.text, f"output containing {_quote(expected)}")


async def _icontains(ctx: _Context) -> _Check:
    expected = _text(ctx)
    passed = expected.lower() in ctx.obs.text.lower()
    return _about_output(ctx, passed, f"output containing {_quote(expected)} (any case)")


async def _contains_any(ctx: _Context) -> _Check:
    expected = _texts(ctx)
    present = [item for item in expected if item in ctx.obs.text]
    found = f"{', '.join(map(repr, present)) or 'none of them'} in {_quote(ctx.obs.text)}"
    return _pass_fail(bool(present), f"output containing any of {expected}", found)


async def _contains_all(ctx: _Context) -> _Check:
    expected = _texts(ctx)
    missing = [item for item in expected if item not in ctx.obs.text]
    found = f"{', '.join(map(repr, missing)) or 'nothing'} missing from {_quote(ctx.obs.text)}"
    return _pass_fail(not missing, f"output containing all of {expected}", found)


async def _starts_with(ctx: _Context) -> _Check:
    expected = _text(ctx)
    return _about_output(ctx, ctx.obs.text.startswith(expected), f"output starting with {_quote(expected)}")


async def _regex(ctx: _Context) -> _Check:
    pattern = _text(ctx)
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise _Unusable(f"invalid regex {pattern!r}: {exc}") from None
    match = compiled.search(ctx.obs.text)
    found = f"match {_quote(match[0])}" if match else f"no match in {_quote(ctx.obs.text)}"
    return _pass_fail(match is not None, f"output matching /{pattern}/", found)


# Structure


async def _is_json(ctx: _Context) -> _Check:
    return _output_json(ctx, _schema(ctx))


async def _json_schema(ctx: _Context) -> _Check:
    schema = _schema(ctx)
    if schema is None:
        raise _Unusable("json-schema needs a schema as its value")
    return _output_json(ctx, schema)


def _output_json(ctx: _Context, schema: dict[str, Any] | None) -> _Check:
    """The whole output is JSON (matching ``schema`` if given)."""
    ok, data = _parse_json(ctx.obs.text)
    problem = None if ok else f"not JSON: {_quote(ctx.obs.text)}"
    if ok and schema is not None:
        problem = _schema_error(data, schema)
    expected = "output that is JSON" + ("" if schema is None else " matching the schema")
    return _pass_fail(problem is None, expected, problem or _quote(ctx.obs.text))


async def _contains_json(ctx: _Context) -> _Check:
    schema = _schema(ctx)
    values = _json_values(ctx.obs.text)
    if schema is None:
        return _about_output(ctx, bool(values), "a JSON object or array in the output")
    problems = [_schema_error(value, schema) for value in values]
    passed = None in problems
    found = _quote(ctx.obs.text) if passed or not problems else f"{len(problems)} JSON value(s), first: {problems[0]}"
    return _pass_fail(passed, "JSON matching the schema in the output", found)


# Measured figures


def _at_most(ctx: _Context, figure: float | None, name: str, missing: str, unit: str) -> _Check:
    limit = _threshold(ctx)
    if figure is None:
        raise _Unusable(missing)
    return _pass_fail(figure <= limit, f"{name} <= {limit:g}{unit}", f"{figure:g}{unit}")


async def _latency(ctx: _Context) -> _Check:
    return _at_most(ctx, ctx.obs.latency_ms, "latency", "latency not measured", " ms")


async def _ttft(ctx: _Context) -> _Check:
    return _at_most(ctx, ctx.obs.ttft_ms, "time to first token", "time to first token not measured", " ms")


async def _cost(ctx: _Context) -> _Check:
    return _at_most(ctx, ctx.obs.cost_usd, "cost", "cost unknown", " USD")


async def _max_reasoning_tokens(ctx: _Context) -> _Check:
    """workbench's own: the reply's reasoning tokens are at most the value (or ``threshold``). Unknown (the provider
    did not count them apart from the text) fails: a bound that cannot be checked is not met."""
    limit = _number(ctx.value) if ctx.value is not None else ctx.spec.threshold
    if limit is None:
        raise _Unusable("max-reasoning-tokens needs a number of tokens as its value")
    figure = ctx.obs.reasoning_tokens
    if figure is None:
        raise _Unusable("reasoning tokens unknown (the provider did not count them)")
    return _pass_fail(figure <= limit, f"reasoning tokens <= {limit:g}", f"{figure}")


async def _token_length(ctx: _Context) -> _Check:
    low = _number(ctx.spec.config.get("min"))
    high = ctx.spec.threshold
    if low is None and high is None:
        raise _Unusable("token-length needs a threshold (maximum) or config min")
    tokens = ctx.obs.output_tokens
    if tokens is None:
        raise _Unusable("output token count unknown")
    passed = (low is None or tokens >= low) and (high is None or tokens <= high)
    bounds = [f">= {low:g}"] if low is not None else []
    bounds += [f"<= {high:g}"] if high is not None else []
    return _pass_fail(passed, f"output tokens {' and '.join(bounds)}", f"{tokens} tokens")


async def _finish_reason(ctx: _Context) -> _Check:
    expected = _text(ctx)
    if ctx.obs.finish is None:
        raise _Unusable("no finish reason reported")
    passed = ctx.obs.finish.lower() == expected.lower()
    return _pass_fail(passed, f"finish reason {expected!r}", repr(ctx.obs.finish))


# Code and judges


async def _python(ctx: _Context) -> _Check:
    code = _text(ctx)
    obs = ctx.obs
    context = {
        **javascript_context(ctx),  # promptfoo's context, as the javascript assertion gets it
        "figures": {
            "finish": obs.finish, "latency_ms": obs.latency_ms, "ttft_ms": obs.ttft_ms, "cost_usd": obs.cost_usd,
            "input_tokens": obs.input_tokens, "output_tokens": obs.output_tokens,
        },
    }
    time_limit = float(ctx.spec.config.get("timeout", PYTHON_TIMEOUT_S))
    result = await run_python(code, output_value(obs.text), context, base_dir=ctx.base_dir, time_limit=time_limit)
    passed, score, reason = interpret(result, ctx.spec.threshold)
    expected = f"{_quote(code, 80)} to pass" + _threshold_note(ctx.spec.threshold)
    return _Check(passed, score, expected, reason)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _threshold_note(threshold: float | None) -> str:
    return "" if threshold is None else f" with score >= {threshold:g}"


# Similarity


async def _levenshtein(ctx: _Context) -> _Check:
    """Passes within ``threshold`` edits (5 without one, or with 0, as promptfoo's ``threshold || 5``); scored
    1 or 0 as promptfoo does."""
    expected = _text(ctx)
    limit = int(ctx.spec.threshold or LEVENSHTEIN_THRESHOLD)
    text = ctx.obs.text
    bound = limit if len(text) * len(expected) > _EXACT_CELLS else None
    distance = levenshtein(text, expected, bound)
    shown = f"more than {limit}" if bound is not None and distance > limit else str(distance)
    return _pass_fail(distance <= limit, f"edit distance <= {limit} from {_quote(expected)}", f"distance {shown}")


async def _rouge_n(ctx: _Context) -> _Check:
    expected = _text(ctx)
    n = ctx.spec.config.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise _Unusable(f"rouge-n: config n must be a positive integer, not {n!r}")
    limit = _threshold(ctx, ROUGE_THRESHOLD)
    score = rouge_n(ctx.obs.text, expected, n)
    return _Check(score >= limit, score, f"ROUGE-{n} >= {limit:g} against {_quote(expected)}", f"{score:.3f}")


async def _bleu(ctx: _Context) -> _Check:
    """promptfoo's ``bleu``: the output against the value (a text, or a list of reference texts)."""
    return _reference_score(ctx, "BLEU", bleu)


async def _gleu(ctx: _Context) -> _Check:
    """promptfoo's ``gleu``: as ``bleu``, with Google's sentence-level GLEU."""
    return _reference_score(ctx, "GLEU", gleu)


def _reference_score(ctx: _Context, name: str, score_of: Callable[[str, list[str]], float]) -> _Check:
    value = ctx.value
    references = value if isinstance(value, list) and all(isinstance(v, str) for v in value) and value else [
        _text(ctx)]
    limit = _threshold(ctx, BLEU_THRESHOLD)
    score = score_of(ctx.obs.text, references)
    shown = _quote(references[0]) if len(references) == 1 else f"{len(references)} references"
    return _Check(score >= limit, score, f"{name} >= {limit:g} against {shown}", f"{score:.4f}")


_CHECKS: dict[str, CheckFn] = {
    "equals": _equals,
    "contains": _contains,
    "icontains": _icontains,
    "contains-any": _contains_any,
    "contains-all": _contains_all,
    "starts-with": _starts_with,
    "regex": _regex,
    "is-json": _is_json,
    "contains-json": _contains_json,
    "json-schema": _json_schema,
    "latency": _latency,
    "ttft": _ttft,
    "cost": _cost,
    "token-length": _token_length,
    "max-reasoning-tokens": _max_reasoning_tokens,
    "finish-reason": _finish_reason,
    "python": _python,
    "levenshtein": _levenshtein,
    "rouge-n": _rouge_n,
    "bleu": _bleu,
    "gleu": _gleu,
    **_HEURISTICS,
    **_MARKUP,
    **_TOOLS,
    **_SERVICES,
    **_MODEL_GRADED,
    **_JAVASCRIPT,
}
