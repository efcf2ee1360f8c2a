"""promptfoo's ``select-best`` and ``max-score``: a test's outputs compared once its cells are done, the chosen cell
passing with score 1, the others failing with score 0 (a scripted grader for select-best, promptfoo's documented
examples for max-score); and the suites the loader refuses, at their line. The run end to end against the fake
server is the corpus config ``compare_outputs`` (tests/test_promptfoo_corpus.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import json_lines, workbench
from tests.test_eval_assertions import CannedJudge
from workbench.core.errors import ConfigError
from workbench.core.evals.comparisons import cell_name, compare, judge_identity
from workbench.core.evals.model import AssertionSpec, CellKey, CellResult, Grading, Observation, TestCase
from workbench.core.evals.suite import load_suite
from workbench.core.evals.suite_promptfoo import SuiteFileError

CRITERIA = "choose the funniest tweet"


def _cell(target: str, text: str, *gradings: tuple[str, bool, float], test: str = "t") -> CellResult:
    graded = [Grading(kind, passed, score, "as graded") for kind, passed, score in gradings]
    passed = all(g.passed for g in graded)
    score = sum(g.score for g in graded) / len(graded) if graded else 1.0
    return CellResult(CellKey(test, "p", target), 0, Observation(text, vars={"topic": "bananas"}), graded, passed,
                      score)


def _test(*specs: AssertionSpec, threshold: float | None = None) -> TestCase:
    return TestCase(vars={"topic": "bananas"}, assertions=specs, description="t", threshold=threshold)


def _verdicts(results: list[CellResult]) -> list[tuple[bool, float]]:
    return [(r.passed, r.score) for r in results]


# --- select-best ---------------------------------------------------------------------------------------------------


async def test_select_best_passes_the_output_the_grader_names_and_fails_the_others() -> None:
    results = [_cell("a", "Bananas."), _cell("b", "Why did the banana go out? It peeled."), _cell("c", "Yellow.")]
    judge = CannedJudge("1")
    spec = AssertionSpec("select-best", CRITERIA, provider="openai/gpt-4.1")
    await compare(_test(spec), results, judge, cell_name)
    assert _verdicts(results) == [(False, 0.0), (True, 1.0), (False, 0.0)]
    chosen, other = results[1].gradings[-1], results[0].gradings[-1]
    assert (chosen.assertion, chosen.passed, chosen.score) == ("select-best", True, 1.0)
    assert chosen.reason == f"Output selected as the best of 3: {CRITERIA}"
    assert (other.passed, other.score) == (False, 0.0)
    assert other.reason == f"Output not selected (the grader chose prompt 'p' on b): {CRITERIA}"
    [(target, prompt)] = judge.calls
    assert target == "openai/gpt-4.1"
    [message] = json.loads(prompt)
    assert message["role"] == "system"
    assert f"which best fits the following criteria: {CRITERIA}" in message["content"]
    for index, result in enumerate(results):
        assert f'<Text index="{index}">\n{result.observation.text}\n</Text>' in message["content"]


@pytest.mark.parametrize(("reply", "shown"), [("The best is the one numbered 7", "7"), ("none of them", "NaN")])
async def test_a_grader_reply_without_a_valid_index_fails_every_output(reply: str, shown: str) -> None:
    results = [_cell("a", "one"), _cell("b", "two")]
    await compare(_test(AssertionSpec("select-best", CRITERIA)), results, CannedJudge(reply), cell_name)
    assert _verdicts(results) == [(False, 0.0), (False, 0.0)]
    assert all(r.gradings[-1].reason.startswith(f"Invalid select-best verdict: {shown}") for r in results)


async def test_the_chosen_output_still_fails_when_its_own_assertion_failed() -> None:
    results = [_cell("a", "one", ("contains", False, 0.0)), _cell("b", "two", ("contains", True, 1.0))]
    spec = AssertionSpec("select-best", CRITERIA)
    await compare(_test(AssertionSpec("contains", "x"), spec), results, CannedJudge("0"), cell_name)
    assert _verdicts(results) == [(False, 0.0), (False, 0.0)]
    assert [g.assertion for g in results[0].gradings] == ["contains", "select-best"]
    assert results[0].gradings[-1].passed


async def test_a_failed_grader_call_fails_every_output_saying_why() -> None:
    results = [_cell("a", "one"), _cell("b", "two")]
    judge = CannedJudge(ConnectionError("refused"))
    await compare(_test(AssertionSpec("select-best", CRITERIA)), results, judge, cell_name)
    assert [r.gradings[-1].reason for r in results] == ["the judge call failed: ConnectionError: refused"] * 2


async def test_a_rubric_prompt_replaces_promptfoos_with_criteria_outputs_and_variables() -> None:
    rubric = "Topic {{topic}}. Compare these outputs: {{ outputs | join(' | ') }}\nSelection criteria: {{criteria}}"
    judge = CannedJudge("0")
    spec = AssertionSpec("select-best", CRITERIA, rubric_prompt=rubric)
    await compare(_test(spec), [_cell("a", "one"), _cell("b", "two")], judge, cell_name)
    assert judge.calls[0][1] == f"Topic bananas. Compare these outputs: one | two\nSelection criteria: {CRITERIA}"


async def test_a_single_output_cannot_be_compared() -> None:
    results = [_cell("a", "one")]
    judge = CannedJudge("0")
    await compare(_test(AssertionSpec("select-best", CRITERIA)), results, judge, cell_name)
    assert _verdicts(results) == [(False, 0.0)]
    assert "needs at least two outputs" in results[0].gradings[-1].reason
    assert judge.calls == []


def test_a_grader_call_is_traced_under_its_test_and_repeat() -> None:
    identity = json.loads(judge_identity("t", 2, "openai/gpt-4.1", "prompt"))
    assert identity[:5] == ["t", "", "", 2, "select-best"]
    assert identity != json.loads(judge_identity("t", 2, "openai/gpt-4.1", "another prompt"))


# --- max-score -----------------------------------------------------------------------------------------------------


def _scored(target: str, **scores: float) -> CellResult:
    kinds = {"llm_rubric": "llm-rubric", "not_contains": "not-contains"}
    return _cell(target, target, *((kinds.get(k, k), s >= 0.5, s) for k, s in scores.items()))


async def test_max_score_weighs_scores_by_type_as_promptfoos_example() -> None:
    # promptfoo's documented example: python=1.0, llm-rubric=0.5, contains=1.0, weights python 3 → 0.9
    results = [_scored("a", python=1.0, llm_rubric=0.5, contains=1.0), _scored("b", python=0.0, llm_rubric=1.0,
                                                                               contains=1.0)]
    spec = AssertionSpec("max-score", {"weights": {"python": 3, "llm-rubric": 1}})
    await compare(_test(spec), results, None, cell_name)
    assert _verdicts(results) == [(True, results[0].score), (False, 0.0)]
    assert results[0].gradings[-1].reason == "Selected as highest scoring output (score: 0.900)"
    assert results[1].gradings[-1].reason == "Not selected (score: 0.400, max: 0.900, by prompt 'p' on a)"


async def test_max_score_ties_go_to_the_first_output_even_when_all_fail() -> None:
    results = [_scored("a", contains=0.0), _scored("b", contains=0.0), _scored("c", contains=0.0)]
    await compare(_test(AssertionSpec("max-score")), results, None, cell_name)
    assert [r.gradings[-1].passed for r in results] == [True, False, False]
    assert _verdicts(results) == [(False, 0.0), (False, 0.0), (False, 0.0)]  # the "least bad" keeps its own fail


@pytest.mark.parametrize(("value", "winner", "reason"), [
    ({"method": "sum"}, 1, "Selected as highest scoring output (score: 1.500)"),
    ({"method": "average"}, 0, "Selected as highest scoring output (score: 1.000)"),
    ({"method": "sum", "threshold": 2}, None, "Not selected - score 1.500 below threshold 2"),
])
async def test_max_score_sums_or_averages_and_selects_only_at_its_threshold(value: dict[str, Any],
                                                                            winner: int | None, reason: str) -> None:
    results = [_scored("a", contains=1.0), _scored("b", contains=1.0, not_contains=0.5)]
    await compare(_test(AssertionSpec("max-score", value)), results, None, cell_name)
    assert [r.gradings[-1].passed for r in results] == [index == winner for index in range(2)]
    assert reason in [r.gradings[-1].reason for r in results]
    assert all(r.score == 0.0 for index, r in enumerate(results) if index != winner)


async def test_comparing_again_gives_the_same_verdicts() -> None:
    results = [_scored("a", contains=1.0), _scored("b", contains=0.0)]
    test = _test(AssertionSpec("contains", "x"), AssertionSpec("max-score"),
                 AssertionSpec("select-best", CRITERIA))
    await compare(test, results, CannedJudge("1"), cell_name)
    first = [(r.passed, r.score, list(r.gradings)) for r in results]
    await compare(test, results, CannedJudge("1"), cell_name)
    assert [(r.passed, r.score, r.gradings) for r in results] == first
    assert [g.assertion for g in results[0].gradings] == ["contains", "select-best", "max-score"]
    assert _verdicts(results) == [(False, 0.0), (False, 0.0)]


# --- loading -------------------------------------------------------------------------------------------------------

SUITE = """prompts: ['Write a tweet about {{{{topic}}}}', 'Write a funny tweet about {{{{topic}}}}']
providers: [openai:chat:gpt-4.1-mini]
defaultTest:
  options:
    provider: openai:chat:gpt-4.1
tests:
  - vars: {{topic: bananas}}
    assert:
{asserts}
"""


def _load(tmp_path: Path, asserts: str) -> Any:
    path = tmp_path / "promptfooconfig.yaml"
    path.write_text(SUITE.format(asserts=asserts), encoding="utf-8")
    return load_suite(path, tmp_path)


def test_select_best_takes_the_tests_grader_and_max_score_its_value(tmp_path: Path) -> None:
    suite = _load(tmp_path, "      - {type: select-best, value: choose the funniest}\n"
                            "      - {type: contains, value: banana}\n"
                            "      - {type: max-score, value: {method: sum, weights: {contains: 2}, threshold: 1}}")
    best, _, top = suite.tests[0].assertions
    assert (best.type, best.provider) == ("select-best", "openai/gpt-4.1")
    assert top.value == {"method": "sum", "weights": {"contains": 2}, "threshold": 1}


@pytest.mark.parametrize(("asserts", "line", "problem"), [
    ("      - {type: not-select-best, value: x}", 9, "not-select-best is not supported"),
    ("      - {type: select-best}", 9, "select-best needs its criteria as a text value"),
    ("      - {type: contains, value: a}\n      - {type: max-score, value: {method: median}}", 10,
     "max-score's method is average or sum, not 'median'"),
    ("      - {type: contains, value: a}\n      - {type: max-score, value: {weight: {contains: 2}}}", 10,
     "unknown key 'weight' in max-score's value"),
    ("      - {type: contains, value: a}\n      - {type: max-score, value: {threshold: high}}", 10,
     "max-score's threshold is a number"),
    ("      - type: assert-set\n        assert: [{type: select-best, value: x}]", 10, "cannot be inside an assert-set"),
    ("      - {type: contains, value: a}\n      - {type: max-score, threshold: 0.5}", 10,
     "max-score takes no threshold: key (promptfoo ignores it); its threshold is its value"),
])
def test_a_comparison_that_cannot_run_as_written_is_refused_at_its_line(tmp_path: Path, asserts: str, line: int,
                                                                        problem: str) -> None:
    with pytest.raises(SuiteFileError) as caught:
        _load(tmp_path, asserts)
    assert caught.value.line == line
    assert problem in caught.value.problem


@pytest.mark.parametrize(("asserts", "problem"), [
    ("      - {type: select-best, value: a}\n      - {type: select-best, value: b}", "has 2 select-best assertions"),
    ("      - {type: max-score}", "max-score needs other assertions"),
])
def test_a_test_whose_comparison_promptfoo_would_not_run_is_refused(tmp_path: Path, asserts: str,
                                                                    problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, asserts)
    assert problem in caught.value.message
    assert caught.value.message.startswith("promptfooconfig.yaml:")


def test_the_cli_refuses_a_negated_comparison_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "promptfooconfig.yaml").write_text(SUITE.format(asserts="      - {type: not-max-score}"),
                                                   encoding="utf-8")
    result = workbench("eval", "promptfooconfig.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("workbench: promptfooconfig.yaml:9: not-max-score is not supported")


# --- a run ---------------------------------------------------------------------------------------------------------


def test_a_runs_comparison_is_stored_streamed_and_reported(tmp_path: Path, fake_env: dict[str, str]) -> None:
    (tmp_path / "workbench.toml").write_text("", encoding="utf-8")
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "compare.yaml").write_text("""prompts:
  - "Write one line about {{topic}}"
targets:
  - {id: fake/first@tokens=3, label: first}
  - {id: fake/second@tokens=2, label: second}
repeat: 2
tests:
  - description: a tie goes to the first
    vars: {topic: pears}
    assert:
      - {type: word-count, value: {max: 3}}
      - {type: max-score}
  - description: not compared
    vars: {topic: plums}
    assert:
      - {type: word-count, value: {max: 3}}
""", encoding="utf-8")
    result = workbench("eval", "evals/compare.yaml", "--json", "-o", "stream.jsonl", "-o", "report.md",
                       cwd=tmp_path, env=fake_env)
    assert result.returncode == 1, result.stderr
    streamed = [json.loads(line) for line in (tmp_path / "stream.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(streamed) == 8  # each cell once, the compared ones after their comparison
    compared = [r for r in streamed if r["testCase"]["description"] == "a tie goes to the first"]
    assert sorted((r["provider"]["label"], r["success"], r["score"]) for r in compared) == [
        ("first", True, 1.0), ("first", True, 1.0), ("second", False, 0.0), ("second", False, 0.0)]
    for record in compared:
        kinds = [c["assertion"]["type"] for c in record["gradingResult"]["componentResults"]]
        assert kinds == ["word-count", "max-score"]
    assert all(r["success"] for r in streamed if r["testCase"]["description"] == "not compared")
    not_selected = "Not selected (score: 1.000, max: 1.000, by prompt 'prompt 1' on first)"
    stored = workbench("evals", "show", "last", "--format", "json", cwd=tmp_path, env=fake_env)
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.count("Selected as highest scoring output (score: 1.000)") == 2
    assert stored.stdout.count(not_selected) == 2
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert f"a tie goes to the first · prompt 1 · second: max-score: {not_selected}" in report


def test_a_resumed_run_compares_the_cells_it_ran_before_it_stopped(tmp_path: Path, fake_env: dict[str, str]) -> None:
    (tmp_path / "workbench.toml").write_text('[prices."fake/*"]\ninput_per_mtok = 1000\noutput_per_mtok = 2000\n',
                                             encoding="utf-8")
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "resume.yaml").write_text("""prompts:
  - "Write one line about {{topic}}"
targets:
  - {id: fake/first@tokens=3, label: first}
  - {id: fake/second@tokens=2, label: second}
tests:
  - description: a tie goes to the first
    vars: {topic: figs}
    assert:
      - {type: word-count, value: {max: 3}}
      - {type: max-score}
""", encoding="utf-8")
    stopped = workbench("eval", "evals/resume.yaml", "--json", "--max-cost", "0.001", "--concurrency", "1",
                        cwd=tmp_path, env=fake_env)
    assert stopped.returncode == 3, stopped.stderr
    summary = json_lines(stopped.stdout)[-1]
    run = summary["run"]
    assert (summary["status"], summary["runs"]) == ("stopped", 1)
    shown = workbench("evals", "show", str(run), "--format", "json", cwd=tmp_path, env=fake_env)
    assert "max-score" not in shown.stdout  # one cell of two ran: nothing compared yet
    resumed = workbench("eval", "evals/resume.yaml", "--json", "--resume", str(run), cwd=tmp_path, env=fake_env)
    assert resumed.returncode == 1, resumed.stderr
    shown = workbench("evals", "show", str(run), "--format", "json", cwd=tmp_path, env=fake_env)
    assert shown.stdout.count("Selected as highest scoring output (score: 1.000)") == 1
    assert shown.stdout.count("Not selected (score: 1.000, max: 1.000, by prompt 'prompt 1' on first)") == 1
