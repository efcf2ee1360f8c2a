"""Assertions: every type passing and failing, negation, templating, python code, judges, verdicts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from workbench.core.evals.assertions import NO_JUDGE, grade, verdict
from workbench.core.evals.comparisons import COMPARISON_TYPES
from workbench.core.evals.model import ASSERTION_TYPES, MODEL_GRADED_TYPES, AssertionSpec, Grading, Observation
from workbench.core.evals.similarity import bleu, gleu, levenshtein, rouge_n

SCHEMA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
FIGURES = {"latency_ms": 420.0, "ttft_ms": 80.0, "cost_usd": 0.002, "output_tokens": 120, "finish": "stop"}


async def check(spec: AssertionSpec, text: str = "", base_dir: Path = Path("."), **obs: Any) -> Grading:
    return await grade(spec, Observation(text=text, **obs), base_dir=base_dir)


# (type, value, threshold, config, output, figures, passes)
CASES: list[tuple[str, Any, float | None, dict[str, Any], str, dict[str, Any], bool]] = [
    ("equals", "Paris", None, {}, "Paris", {}, True),
    ("equals", "Paris", None, {}, "Paris.", {}, False),
    ("equals", {"a": [1, 2]}, None, {}, '{ "a": [1, 2] }', {}, True),
    ("equals", {"a": [1, 2]}, None, {}, '{"a": [2, 1]}', {}, False),
    ("contains", "Paris", None, {}, "It is Paris.", {}, True),
    ("contains", "paris", None, {}, "It is Paris.", {}, False),
    ("icontains", "paris", None, {}, "It is PARIS.", {}, True),
    ("icontains", "lyon", None, {}, "It is Paris.", {}, False),
    ("contains-any", ["Lyon", "Paris"], None, {}, "Paris", {}, True),
    ("contains-any", "Lyon, Nice", None, {}, "Paris", {}, False),
    ("contains-all", "Paris, France", None, {}, "Paris, France", {}, True),
    ("contains-all", ["Paris", "Lyon"], None, {}, "Paris", {}, False),
    ("starts-with", "Yes", None, {}, "Yes, it is.", {}, True),
    ("starts-with", "Yes", None, {}, "No. Yes.", {}, False),
    ("regex", r"\d{3}-\d{4}", None, {}, "call 555-1234", {}, True),
    ("regex", r"^\d+$", None, {}, "12a", {}, False),
    ("is-json", None, None, {}, ' {"name": "x"} ', {}, True),
    ("is-json", None, None, {}, "```json\n{}\n```", {}, False),
    ("is-json", SCHEMA, None, {}, '{"name": "x"}', {}, True),
    ("is-json", json.dumps(SCHEMA), None, {}, '{"name": 3}', {}, False),
    ("contains-json", None, None, {}, 'Here:\n```json\n{"name": "x"}\n```', {}, True),
    ("contains-json", None, None, {}, "no json {here", {}, False),
    ("contains-json", SCHEMA, None, {}, 'a [1] then {"name": "x"}', {}, True),
    ("contains-json", SCHEMA, None, {}, 'a {"id": 1}', {}, False),
    ("json-schema", SCHEMA, None, {}, '{"name": "x"}', {}, True),
    ("json-schema", SCHEMA, None, {}, '{"name": ["x"]}', {}, False),
    ("latency", None, 500, {}, "", FIGURES, True),
    ("latency", None, 400, {}, "", FIGURES, False),
    ("ttft", None, 100, {}, "", FIGURES, True),
    ("ttft", None, 50, {}, "", FIGURES, False),
    ("cost", None, 0.01, {}, "", FIGURES, True),
    ("cost", None, 0.001, {}, "", FIGURES, False),
    ("token-length", None, 200, {}, "", FIGURES, True),
    ("token-length", None, 200, {"min": 150}, "", FIGURES, False),
    ("finish-reason", "STOP", None, {}, "", FIGURES, True),
    ("finish-reason", "length", None, {}, "", FIGURES, False),
    ("python", "len(output) == 5", None, {}, "Paris", {}, True),
    ("python", "output.startswith(context['vars']['city'])", None, {}, "Lyon", {"vars": {"city": "Paris"}}, False),
    ("levenshtein", "kitten", None, {}, "sitting", {}, True),
    ("levenshtein", "kitten", 2, {}, "sitting", {}, False),
    ("rouge-n", "the cat sat on the mat", None, {}, "the cat sat on a mat", {}, True),
    ("rouge-n", "the cat sat on the mat", None, {"n": 2}, "the cat sat on a mat", {}, False),
    ("bleu", "The cat sat on the mat", None, {}, "the cat sat on the mat", {}, True),
    ("bleu", ["a dog ran", "the cat is on the mat"], None, {}, "the cat sat on the mat", {}, False),
    ("bleu", "the cat is on the mat", 0.01, {}, "the cat sat on the mat", {}, True),
    ("gleu", "the cat is on the mat", None, {}, "the cat sat on the mat", {}, True),
    ("gleu", ["a dog", "the cat is here"], None, {}, "the cat sat on the mat", {}, False),
    ("tool-call", {"name": "get_weather", "arguments": {"city": "Paris"}}, None, {}, "", {"tool_calls": [
        {"id": "c1", "name": "get_weather", "arguments": '{"city": "Paris", "unit": "c"}'}]}, True),
    ("tool-call", [{"name": "get_weather"}, {"name": "get_time"}], None, {}, "", {"tool_calls": [
        {"id": "c1", "name": "get_weather", "arguments": "{}"}]}, False),
    ("max-reasoning-tokens", 500, None, {}, "", {"reasoning_tokens": 320}, True),
    ("max-reasoning-tokens", 100, None, {}, "", {"reasoning_tokens": 320}, False),
]


@pytest.mark.parametrize(
    ("kind", "value", "threshold", "config", "output", "figures", "passes"),
    CASES,
    ids=[f"{case[0]}-{'pass' if case[-1] else 'fail'}-{i}" for i, case in enumerate(CASES)],
)
async def test_each_type_passes_and_fails(
    kind: str, value: Any, threshold: float | None, config: dict[str, Any], output: str, figures: dict[str, Any],
    passes: bool,
) -> None:
    grading = await check(AssertionSpec(kind, value, threshold=threshold, config=config), output, **figures)
    assert grading.passed is passes, grading.reason
    assert grading.assertion == kind
    assert grading.reason.startswith("expected ")
    if not passes:
        assert grading.score < 1.0


def test_every_type_has_a_passing_and_a_failing_case() -> None:
    from tests.test_eval_assertions_markup import CASES as MARKUP_CASES
    from tests.test_eval_assertions_promptfoo import CASES as PROMPTFOO_CASES

    # graded with a judge, an embedder, a server, nested assertions or logprobs: in test_eval_assertions_promptfoo;
    # javascript (in Node): in test_eval_javascript; the comparisons of a test's cells: in test_eval_comparisons
    elsewhere = MODEL_GRADED_TYPES | COMPARISON_TYPES | {"similar", "webhook", "assert-set", "perplexity",
                                                         "perplexity-score", "javascript"}
    covered = {(c[0], c[-1]) for c in CASES} | {(c[0], c[-1]) for c in PROMPTFOO_CASES}
    covered |= {(c[0], c[3]) for c in MARKUP_CASES}
    assert covered == {(t, p) for t in ASSERTION_TYPES - elsewhere for p in (True, False)}


@pytest.mark.parametrize(
    ("spec", "output", "passes", "score"),
    [
        (AssertionSpec("contains", "sorry", negate=True), "Here you go.", True, 1.0),
        (AssertionSpec("contains", "sorry", negate=True), "I'm sorry.", False, 0.0),
        (AssertionSpec("is-json", negate=True), "plain", True, 1.0),
        (AssertionSpec("levenshtein", "abcd", negate=True, threshold=1), "abcx", False, 0.0),
        (AssertionSpec("rouge-n", "a b c d", negate=True), "a b", True, 0.5),
    ],
)
async def test_not_prefix_inverts_pass_and_score(spec: AssertionSpec, output: str, passes: bool, score: float) -> None:
    grading = await check(spec, output)
    assert (grading.assertion, grading.passed, grading.score) == (spec.label, passes, pytest.approx(score))
    assert "expected not (" in grading.reason


@pytest.mark.parametrize(
    ("spec", "figures", "reason"),
    [
        (AssertionSpec("regex", "(unclosed", negate=True), {}, "invalid regex '(unclosed'"),
        (AssertionSpec("contains", "x", negate=True), {"error": "HTTP 500"}, "the call failed: HTTP 500"),
        (AssertionSpec("cost", threshold=1.0, negate=True), {}, "cost unknown"),
        (AssertionSpec("latency"), {"latency_ms": 5.0}, "latency needs a threshold"),
        (AssertionSpec("ttft", threshold=100), {}, "time to first token not measured"),
        (AssertionSpec("token-length", threshold=10), {}, "output token count unknown"),
        (AssertionSpec("finish-reason", "stop"), {}, "no finish reason reported"),
        (AssertionSpec("json-schema", {"type": "nonsense"}), {}, "invalid schema"),
        (AssertionSpec("contains"), {}, "contains needs a value"),
        (AssertionSpec("rouge-n", "a", config={"n": 0}), {}, "config n must be a positive integer"),
        (AssertionSpec("meteor", "a"), {}, "unknown assertion type 'meteor'"),
    ],
)
async def test_unusable_assertions_fail_whatever_the_polarity(
    spec: AssertionSpec, figures: dict[str, Any], reason: str
) -> None:
    grading = await check(spec, "x", **figures)
    assert (grading.passed, grading.score) == (False, 0.0)
    assert reason in grading.reason


async def test_a_failed_call_still_grades_its_figures() -> None:
    obs: dict[str, Any] = {"error": "timeout", "latency_ms": 30_000.0}
    assert not (await check(AssertionSpec("latency", threshold=10_000), **obs)).passed
    assert (await check(AssertionSpec("latency", threshold=60_000), **obs)).passed
    assert (await check(AssertionSpec("is-json"), **obs)).reason == "the call failed: timeout"


async def test_reasons_say_what_was_expected_and_truncate_long_output() -> None:
    grading = await check(AssertionSpec("contains", "needle"), "hay " * 1000)
    assert "output containing 'needle'" in grading.reason
    assert "(4000 chars)" in grading.reason
    assert len(grading.reason) < 400
    missing = await check(AssertionSpec("contains-all", ["a", "zz", "yy"]), "abc")
    assert "'zz', 'yy' missing" in missing.reason
    schema = await check(AssertionSpec("json-schema", SCHEMA), '{"name": 1}')
    assert "$.name: 1 is not of type 'string'" in schema.reason


async def test_string_values_are_templated_with_the_test_vars() -> None:
    variables = {"city": "Paris", "country": "France"}
    spec = AssertionSpec("contains-all", ["{{city}}", "{{ country }}"])
    assert (await check(spec, "Paris, France", vars=variables)).passed
    assert (await check(AssertionSpec("equals", "{{city}}!"), "Paris!", vars=variables)).passed
    assert (await check(AssertionSpec("equals", "[{{unknown}}]"), "[]", vars=variables)).passed  # promptfoo: empty
    assert (await check(AssertionSpec("equals", "{{ city | upper }}"), "PARIS", vars=variables)).passed


async def test_weights_and_metrics_are_carried_to_the_grading() -> None:
    grading = await check(AssertionSpec("contains", "a", weight=3, metric="tone"), "a")
    assert (grading.weight, grading.metric) == (3, "tone")
    failed = await check(AssertionSpec("contains", "a", weight=0, metric="tone"), "b", error="x")
    assert (failed.weight, failed.metric) == (0, "tone")


def _g(passed: bool, score: float, weight: float = 1.0) -> Grading:
    return Grading("contains", passed, score, "", weight=weight)


@pytest.mark.parametrize(
    ("gradings", "threshold", "expected"),
    [
        ([], None, (True, 1.0)),
        ([_g(True, 1), _g(True, 1)], None, (True, 1.0)),
        ([_g(True, 1), _g(False, 0)], None, (False, 0.5)),
        ([_g(True, 1, weight=3), _g(False, 0)], 0.75, (True, 0.75)),
        ([_g(True, 1, weight=3), _g(False, 0)], 0.8, (False, 0.75)),
        ([_g(True, 1), _g(False, 0, weight=0)], None, (True, 1.0)),
        ([_g(False, 0, weight=0)], None, (True, 0.0)),
        ([_g(True, 0.6), _g(True, 0.4)], 0.6, (False, 0.5)),
    ],
)
def test_verdict_weighs_scores_and_applies_the_threshold(
    gradings: list[Grading], threshold: float | None, expected: tuple[bool, float]
) -> None:
    passed, score = verdict(gradings, threshold)
    assert (passed, score) == (expected[0], pytest.approx(expected[1]))


# python


ASSERT_FILE = """\
import json

def get_assert(output, context):
    return output == context["vars"]["expected"]

def score(output, context):
    print("noise on stdout")
    return len(output) / 16

def verdict(output, context):
    return {"pass": False, "score": 0.25, "reason": "too " + context["prompt"]}

def broken(output, context):
    return json.loads(output)["missing"]

def slow(output, context):
    import time
    time.sleep(5)

def odd(output, context):
    return "yes"
"""


@pytest.fixture
def assert_dir(tmp_path: Path) -> Path:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "grade.py").write_text(ASSERT_FILE)
    return tmp_path


@pytest.mark.parametrize(
    ("value", "threshold", "passes", "score", "reason"),
    [
        ("file://checks/grade.py", None, True, 1.0, "returned True"),
        ("file://checks/grade.py:score", None, True, 0.5, "returned 0.5"),
        ("file://checks/grade.py:score", 0.6, False, 0.5, "returned 0.5"),
        ("file://checks/grade.py:verdict", None, False, 0.25, "too terse"),
        ("json.loads(output)['n'] / 10 if output else 0", None, True, 0.5, "returned 0.5"),
        ("if 'n' in output:\n    return {'pass': True}\nreturn False", None, True, 1.0, "returned pass=True"),
    ],
)
async def test_python_assertions_return_bool_number_or_dict(
    assert_dir: Path, value: str, threshold: float | None, passes: bool, score: float, reason: str
) -> None:
    spec = AssertionSpec("python", value, threshold=threshold)
    obs: dict[str, Any] = {"vars": {"expected": '{"n": 5}'}, "prompt_text": "terse"}
    grading = await check(spec, '{"n": 5}', assert_dir, **obs)
    assert (grading.passed, grading.score) == (passes, pytest.approx(score))
    assert reason in grading.reason


@pytest.mark.parametrize(
    ("value", "config", "reason"),
    [
        ("file://checks/grade.py:broken", {}, "KeyError: 'missing'"),
        ("file://checks/grade.py:slow", {"timeout": 0.5}, "timed out after 0.5 s"),
        ("file://checks/grade.py:odd", {}, "returned str; expected a bool, a number or a dict"),
        ("file://checks/grade.py:absent", {}, "grade.py defines no function absent()"),
        ("file://checks/nothere.py", {}, "no such file"),
        ("1 / 0", {}, "ZeroDivisionError: division by zero (<assertion>:1)"),
        ("{1, 2}", {}, "returned an unserializable set"),
    ],
)
async def test_python_assertion_errors_fail_with_the_message(
    assert_dir: Path, value: str, config: dict[str, Any], reason: str
) -> None:
    grading = await check(AssertionSpec("python", value, negate=True, config=config), "{}", assert_dir)
    assert (grading.passed, grading.score) == (False, 0.0)
    assert reason in grading.reason


async def test_python_errors_name_the_file_and_line(assert_dir: Path) -> None:
    grading = await check(AssertionSpec("python", "file://checks/grade.py:broken"), "{}", assert_dir)
    assert f"{assert_dir / 'checks' / 'grade.py'}:14" in grading.reason


# llm-rubric


class CannedJudge:
    def __init__(self, reply: str | Exception) -> None:
        self.reply = reply
        self.calls: list[tuple[str | None, str]] = []

    async def __call__(self, target: str | None, prompt: str) -> str:
        self.calls.append((target, prompt))
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


@pytest.mark.parametrize(
    ("reply", "threshold", "passes", "score", "reason"),
    [
        ('{"reason": "polite", "pass": true, "score": 0.9}', None, True, 0.9, "polite"),
        ('{"reason": "rude", "pass": false, "score": 0.1}', None, False, 0.1, "rude"),
        ('Sure!\n```json\n{"reason": "ok", "pass": true, "score": 0.6}\n```', 0.7, False, 0.6, "ok"),
        ('{"pass": "yes"}', None, True, 1.0, "no reason given"),
        ('{"score": 0.4, "reason": "meh"}', None, False, 0.4, "meh"),
    ],
)
async def test_llm_rubric_grades_with_the_judge_verdict(
    reply: str, threshold: float | None, passes: bool, score: float, reason: str
) -> None:
    judge = CannedJudge(reply)
    spec = AssertionSpec("llm-rubric", "is polite to {{name}}", threshold=threshold, provider="openai:judge")
    obs = Observation("Hello Ada, how can I help?", vars={"name": "Ada"})
    grading = await grade(spec, obs, judge=judge, base_dir=Path("."))
    assert (grading.passed, grading.score) == (passes, pytest.approx(score))
    assert reason in grading.reason
    [(target, prompt)] = judge.calls
    assert target == "openai:judge"
    assert "is polite to Ada" in prompt and "Hello Ada, how can I help?" in prompt


@pytest.mark.parametrize(
    ("judge", "reason"),
    [
        (None, NO_JUDGE),
        (CannedJudge("I think it is fine."), "the judge reply has no verdict: 'I think it is fine.'"),
        (CannedJudge(RuntimeError("rate limited")), "the judge call failed: RuntimeError: rate limited"),
    ],
)
async def test_llm_rubric_without_a_verdict_fails(judge: CannedJudge | None, reason: str) -> None:
    spec = AssertionSpec("llm-rubric", "is polite", negate=True)
    grading = await grade(spec, Observation("hi"), judge=judge, base_dir=Path("."))
    assert (grading.passed, grading.score, grading.reason) == (False, 0.0, reason)


# similarity


@pytest.mark.parametrize(
    ("a", "b", "bound", "distance"),
    [
        ("kitten", "sitting", None, 3),
        ("", "abc", None, 3),
        ("flaw", "lawn", None, 2),
        ("same", "same", None, 0),
        ("kitten", "sitting", 2, 3),
        ("a" * 5000, "a" * 2500 + "b" + "a" * 2499, 5, 1),
        ("a" * 100, "b" * 10, 5, 6),
    ],
)
def test_levenshtein(a: str, b: str, bound: int | None, distance: int) -> None:
    assert levenshtein(a, b, bound) == distance
    assert levenshtein(b, a, bound) == distance


@pytest.mark.parametrize(
    ("candidate", "reference", "n", "score"),
    [
        ("the cat sat", "the cat sat", 1, 1.0),
        ("the cat", "the the cat", 1, 2 / 3),
        ("cat the", "the cat", 2, 0.0),
        ("a b c", "a b c d", 2, 2 / 3),
        ("", "", 1, 1.0),
        ("words", "", 1, 0.0),
    ],
)
def test_rouge_n_is_recall_of_reference_ngrams(candidate: str, reference: str, n: int, score: float) -> None:
    assert rouge_n(candidate, reference, n) == pytest.approx(score)


async def test_levenshtein_on_long_texts_stops_at_the_threshold() -> None:
    grading = await check(AssertionSpec("levenshtein", "x" * 2000), "y" * 2000)
    assert not grading.passed
    assert "distance more than 5" in grading.reason


async def test_inline_function_bodies_keep_their_line_numbers_and_strings(tmp_path: Path) -> None:
    code = 'text = """a\nb"""\nif output != text:\n    raise ValueError("differs")\nreturn True'
    assert (await check(AssertionSpec("python", code), "a\nb", tmp_path)).passed
    grading = await check(AssertionSpec("python", code), "c", tmp_path)
    assert grading.reason == "ValueError: differs (<assertion>:4)"


async def test_python_in_a_missing_folder_fails_cleanly(tmp_path: Path) -> None:
    grading = await check(AssertionSpec("python", "True"), "x", tmp_path / "gone")
    assert not grading.passed
    assert "cannot start the assertion process" in grading.reason


@pytest.mark.parametrize(
    ("candidate", "references", "score"),
    [
        ("The cat sat on the mat", ["the cat sat on the mat"], 1.0),
        # clipped precisions 5/6, 3/5, 1/4 and 0 (smoothed to 1e-7), no brevity penalty: promptfoo's figure
        ("the cat sat on the mat", ["the cat is on the mat"], 0.010573712634405643),
        # the best reference for each n, the brevity penalty against the closest length (the first on a tie)
        ("the cat sat on the mat", ["the cat is on the mat", "a cat sat on the mat"],
         math.exp(0.25 * (math.log(5 / 6) + math.log(4 / 5) + math.log(3 / 4) + math.log(2 / 3)))),
        ("the cat", ["the cat sat on the mat"], math.exp(1 - 2 / 6) * math.exp(0.5 * math.log(1e-7))),
    ],
)
def test_bleu_is_promptfoos_sentence_bleu(candidate: str, references: list[str], score: float) -> None:
    assert bleu(candidate, references) == pytest.approx(score)


@pytest.mark.parametrize(
    ("candidate", "references", "score"),
    [
        ("Hello world.", ["hello world"], 1.0),  # the same words, trailing dots aside
        ("the cat sat on the mat", ["the cat is on the mat"], 9 / 18),  # 1- to 4-grams counted together
        ("the cat sat", ["the cat sat on the mat", "a dog"], min(6 / 6, 6 / 18)),  # the best reference's
        ("   ", ["anything"], 0.0),
    ],
)
def test_gleu_is_promptfoos_google_bleu(candidate: str, references: list[str], score: float) -> None:
    assert gleu(candidate, references) == pytest.approx(score)
