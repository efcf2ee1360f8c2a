"""promptfoo's comparisons of a test's outputs: ``select-best`` (a grader picks the best output) and ``max-score``
(the output with the highest score of the test's other assertions). They compare the cells of one test (and one
repeat) across its prompts and targets, so the runner grades them once those cells are all done.

As in promptfoo, the chosen cell gets a passing grading scored 1 and keeps its verdict; every other cell gets a
failing grading scored 0, fails, and its score becomes 0. A test has at most one of each; with both, ``select-best``
is applied first (``max-score`` never counts either in its scores). Neither can be negated.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.evals.assertions import verdict
from workbench.core.evals.assertions_model_graded import render_prompt
from workbench.core.evals.checks import Judge, Unusable
from workbench.core.evals.model import AssertionSpec, CellKey, CellResult, Grading, TestCase
from workbench.core.evals.prompt_render import resolve_variables

SELECT_BEST = "select-best"
MAX_SCORE = "max-score"
COMPARISON_TYPES = frozenset({SELECT_BEST, MAX_SCORE})
"""The assertion types graded across a test's cells, after them (in this order)."""

SELECT_BEST_PROMPT = json.dumps([{"role": "system", "content": (
    "You are comparing multiple pieces of text to see which best fits the following criteria: {{criteria}}\n\n"
    "Here are the pieces of text:\n\n{% for output in outputs %}\n<Text index=\"{{ loop.index0 }}\">\n{{ output }}\n"
    "</Text>\n{% endfor %}\n\nOutput the index of the text that best fits the criteria. You must output a single "
    "integer.")}])
"""promptfoo's grading prompt of ``select-best`` (a chat of one system message; ``rubricPrompt`` replaces it)."""

MAX_SCORE_KEYS = frozenset({"method", "weights", "threshold"})
MAX_SCORE_METHODS = frozenset({"average", "avg", "sum"})
"""promptfoo reads any method but ``sum`` as the average; a misspelt one is refused here instead."""

_INTEGER = re.compile(r"\d+")


# --- loading -----------------------------------------------------------------------------------------------------


def check_spec(spec: AssertionSpec, nested: bool) -> str | None:
    """Why a comparison assertion cannot be run as written, or None (and None for every other type)."""
    if spec.type not in COMPARISON_TYPES:
        return None
    if nested:
        return f"{spec.type} compares a test's outputs: it cannot be inside an assert-set"
    if spec.negate:
        return f"not-{spec.type} is not supported: promptfoo has no negated comparison"
    if spec.threshold is not None:
        where = "its value (value: {threshold: N})" if spec.type == MAX_SCORE else "none: it picks one output"
        return f"{spec.type} takes no threshold: key (promptfoo ignores it); its threshold is {where}"
    if spec.type == SELECT_BEST:
        if not isinstance(spec.value, str) or not spec.value.strip():
            return "select-best needs its criteria as a text value (e.g. value: choose the funniest tweet)"
        return None
    return _max_score_problem(spec.value)


def _max_score_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return "max-score's value is a mapping of method, weights and threshold"
    unknown = sorted(set(map(str, value)) - MAX_SCORE_KEYS)
    if unknown:
        return f"unknown key '{unknown[0]}' in max-score's value (the keys are method, weights, threshold)"
    if value.get("method", "average") not in MAX_SCORE_METHODS:
        return f"max-score's method is average or sum, not {value['method']!r}"
    weights = value.get("weights", {})
    if not isinstance(weights, dict) or not all(_is_number(w) for w in weights.values()):
        return "max-score's weights map assertion types to numbers (e.g. python: 3)"
    if "threshold" in value and not _is_number(value["threshold"]):
        return f"max-score's threshold is a number, not {value['threshold']!r}"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_tests(tests: Iterable[TestCase]) -> None:
    """Raise a :class:`ConfigError` (at the assertion's ``file:line``) for a test with two assertions of one
    comparison type (promptfoo would run only the first), or a ``max-score`` with nothing else to score."""
    for test in tests:
        for kind in COMPARISON_TYPES:
            specs = [spec for spec in test.assertions if spec.type == kind]
            if len(specs) > 1:
                raise ConfigError(f"{specs[1].source}: test '{test.key}' has {len(specs)} {kind} assertions",
                                  f"keep one {kind} per test (defaultTest's count too)")
            if specs and kind == MAX_SCORE and all(spec.type in COMPARISON_TYPES for spec in test.assertions):
                raise ConfigError(f"{specs[0].source}: test '{test.key}': max-score needs other assertions to "
                                  "score the outputs by", "add the assertions whose scores it compares")


def compared(test: TestCase) -> bool:
    """Does ``test`` compare its cells (a ``select-best`` or ``max-score``)?"""
    return any(spec.type in COMPARISON_TYPES for spec in test.assertions)


def graded_alone(specs: Iterable[AssertionSpec]) -> list[AssertionSpec]:
    """The assertions graded cell by cell: all but the comparisons."""
    return [spec for spec in specs if spec.type not in COMPARISON_TYPES]


def judge_digest(target: str, prompt: str) -> str:
    """What tells a judge call apart in its traced identity: a digest of its target and prompt."""
    return hashlib.sha256(f"{target}\n{prompt}".encode()).hexdigest()[:16]


def judge_identity(test: str, repeat: int, target: str, prompt: str) -> str:
    """A ``select-best`` judge call as it is traced (``eval_cell``): the test and repeat it compares, and
    :func:`judge_digest` (a resumed run reuses the answer of the same call)."""
    return json.dumps([test, "", "", repeat, SELECT_BEST, judge_digest(target, prompt)], ensure_ascii=False)


# --- grading -----------------------------------------------------------------------------------------------------


async def compare(test: TestCase, results: Sequence[CellResult], judge: Judge | None,
                  name: Callable[[CellResult], str]) -> None:
    """Apply ``test``'s comparisons to ``results`` (its cells of one repeat, in plan order), in place: each cell's
    verdict from its own gradings, then each comparison's grading added (a failing one fails the cell and makes its
    score 0). Comparisons already applied are replaced, so comparing again gives the same. ``name`` names a cell in
    the reasons (its prompt and target)."""
    for result in results:
        result.gradings = [g for g in result.gradings if g.assertion not in COMPARISON_TYPES]
        result.passed, result.score = verdict(result.gradings, test.threshold)
    for spec in sorted((s for s in test.assertions if s.type in COMPARISON_TYPES), key=lambda s: s.type != SELECT_BEST):
        if spec.type == SELECT_BEST:
            gradings = await select_best(spec, results, judge, name)
        else:
            gradings = max_score(spec, results, name)
        for result, grading in zip(results, gradings, strict=True):
            result.gradings.append(grading)
            result.passed = result.passed and grading.passed
            if not grading.passed:
                result.score = grading.score


def _graded(spec: AssertionSpec, passed: bool, reason: str) -> Grading:
    return Grading(spec.label, passed, float(passed), reason, spec.weight, spec.metric)


def _too_few(spec: AssertionSpec, results: Sequence[CellResult]) -> list[Grading] | None:
    if len(results) >= 2:
        return None
    reason = f"{spec.type} needs at least two outputs to compare (this test ran on one prompt and one target)"
    return [_graded(spec, False, reason) for _ in results]


async def select_best(spec: AssertionSpec, results: Sequence[CellResult], judge: Judge | None,
                      name: Callable[[CellResult], str]) -> list[Grading]:
    """promptfoo's ``select-best``: the grader (the assertion's ``provider``, else the suite's judge) is given the
    criteria and every output, and the first integer of its reply is the index of the best one; a reply without a
    valid index, or a failed call, fails every cell."""
    too_few = _too_few(spec, results)
    if too_few is not None:
        return too_few
    criteria = str(spec.value)
    outputs = [result.observation.text for result in results]
    try:
        prompt = _grading_prompt(spec, criteria, outputs, results[0].observation.vars)
    except Unusable as exc:
        return [_graded(spec, False, f"select-best: {exc}") for _ in results]
    if judge is None:
        return [_graded(spec, False, "no judge target: set judge: in the suite or provider: on the assertion")
                for _ in results]
    try:
        reply = await judge(spec.provider, prompt)
    except Exception as exc:  # the grader's failure fails the comparison, not the run
        reason = f"the judge call failed: {type(exc).__name__}: {exc}"
        return [_graded(spec, False, reason) for _ in results]
    match = _INTEGER.search(reply.strip())
    chosen = int(match[0]) if match else None
    if chosen is None or chosen >= len(outputs):
        shown = "NaN" if chosen is None else str(chosen)
        reason = f"Invalid select-best verdict: {shown} (the grader replied {reply.strip()[:80]!r})"
        return [_graded(spec, False, reason) for _ in results]
    winner = name(results[chosen])
    return [_graded(spec, True, f"Output selected as the best of {len(outputs)}: {criteria}") if index == chosen
            else _graded(spec, False, f"Output not selected (the grader chose {winner}): {criteria}")
            for index in range(len(outputs))]


def _grading_prompt(spec: AssertionSpec, criteria: str, outputs: list[str], variables: dict[str, str]) -> str:
    """The grading prompt (``rubricPrompt`` or promptfoo's) rendered with ``criteria``, ``outputs`` and the test's
    variables (which win, as in promptfoo)."""
    template = spec.rubric_prompt if spec.rubric_prompt is not None else SELECT_BEST_PROMPT
    return render_prompt(template, {"criteria": criteria, "outputs": outputs, **resolve_variables(variables)})


def max_score(spec: AssertionSpec, results: Sequence[CellResult], name: Callable[[CellResult], str]) -> list[Grading]:
    """promptfoo's ``max-score``: each cell's score over its other assertions (each weighted by its type's
    ``weights``, default 1), their ``average`` (default) or ``sum``; the highest wins (the first, on a tie) if it
    reaches the ``threshold`` (when given)."""
    too_few = _too_few(spec, results)
    if too_few is not None:
        return too_few
    value = spec.value if isinstance(spec.value, dict) else {}
    weights: dict[str, float] = {str(k): float(v) for k, v in (value.get("weights") or {}).items()}
    threshold = value.get("threshold")
    scores = []
    for result in results:
        gradings = [g for g in result.gradings if g.assertion not in COMPARISON_TYPES]
        total = sum(g.score * weights.get(g.assertion, 1.0) for g in gradings)
        weight = sum(weights.get(g.assertion, 1.0) for g in gradings)
        scores.append(total if value.get("method") == "sum" else total / weight if weight > 0 else 0.0)
    best = max(scores)
    winner = scores.index(best)
    reached = threshold is None or best >= threshold
    gradings = []
    for index, score in enumerate(scores):
        if index == winner and reached:
            reason = f"Selected as highest scoring output (score: {score:.3f})"
        elif score == best and not reached:
            reason = f"Not selected - score {score:.3f} below threshold {threshold:g}"
        else:
            reason = f"Not selected (score: {score:.3f}, max: {best:.3f}" + (
                f", by {name(results[winner])})" if reached else f", below threshold {threshold:g})")
        gradings.append(_graded(spec, index == winner and reached, reason))
    return gradings


# --- the runner's bookkeeping ------------------------------------------------------------------------------------


class Comparisons:
    """The cells of a run's compared tests, held until each test's cells of one repeat are all done: those of
    ``plan`` (place, cell key, repeat, test), and the ones recorded before (:meth:`recorded`, a resumed run)."""

    def __init__(self, plan: Iterable[tuple[int, CellKey, int, TestCase]]) -> None:
        self._places: dict[tuple[CellKey, int], int] = {}
        self._sizes: Counter[tuple[str, int]] = Counter()
        for place, key, repeat, test in plan:
            if compared(test):
                self._places[(key, repeat)] = place
                self._sizes[(test.key, repeat)] += 1
        self.tests = frozenset(test for test, _ in self._sizes)
        """The keys of the compared tests."""
        self._groups: dict[tuple[str, int], list[CellResult]] = {}
        self._fresh: dict[tuple[CellKey, int], CellResult] = {}

    def recorded(self, results: Iterable[CellResult]) -> None:
        """Hold the cells of compared tests recorded before this run of the runner (reported then)."""
        for result in results:
            if (result.key, result.repeat) in self._places:
                self._groups.setdefault((result.key.test, result.repeat), []).append(result)

    def held(self, result: CellResult) -> bool:
        """Is ``result`` a cell of a compared test (held until its comparison)?"""
        return (result.key, result.repeat) in self._places

    def add(self, result: CellResult) -> list[CellResult] | None:
        """Hold ``result``; once its test's cells (of its repeat) are all here, give them in plan order."""
        group_key = (result.key.test, result.repeat)
        group = self._groups.setdefault(group_key, [])
        group.append(result)
        self._fresh[(result.key, result.repeat)] = result
        if len(group) < self._sizes[group_key]:
            return None
        del self._groups[group_key]
        return sorted(group, key=lambda r: self._places.get((r.key, r.repeat), -1))

    def settled(self, group: Iterable[CellResult]) -> list[CellResult]:
        """The cells of ``group`` done in this run of the runner (the others were reported when they were)."""
        return [r for r in group if self._fresh.pop((r.key, r.repeat), None) is not None]

    def unsettled(self) -> list[CellResult]:
        """The cells done in this run of the runner whose test was not compared (some of its cells not run)."""
        left = list(self._fresh.values())
        self._fresh.clear()
        return left


def cell_name(result: CellResult) -> str:
    """A cell in a comparison's reason: its prompt and target."""
    return f"prompt '{result.key.prompt}' on {result.key.target}"
