"""promptfoo configs using its newer assertion types load as written: assert-set, rubricPrompt, the test's grader,
embedding provider ids, CSV shorthand; the run grades them through the judge and embeddings paths (the fake server's
embeddings endpoint); ``workbench eval`` says which grader a suite without one gets, before any call."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx2
import pytest

from tests.test_cli import workbench
from tests.test_eval_suite import load_error, write_suite
from workbench.core.evals.model import AssertionSpec, Suite, SuitePrompt, SuiteTarget, TestCase
from workbench.core.evals.report_data import report_for
from workbench.core.evals.run_store import EvalStore
from workbench.core.evals.runner import EvalRunner, RunOptions
from workbench.core.evals.suite import load_suite
from workbench.core.prompts.model import Prompt, PromptMessage
from workbench.core.resilience.caller import Caller
from workbench.core.targets import KEYED_DEFAULTS
from workbench.fakeserver.text import expected_text

CONFIG = """\
prompts: ["Answer: {{question}}"]
providers: [openai:gpt-4o-mini]
defaultTest:
  options:
    provider: openai:gpt-4o
    rubricPrompt: "Grade {{output}} against {{rubric}}"
tests:
  - vars: {question: "What is the capital of France?"}
    assert:
      - type: assert-set
        threshold: 0.5
        weight: 2
        metric: geography
        assert:
          - type: icontains-any
            value: [paris, lyon]
          - type: not-is-refusal
          - type: factuality
            value: Paris is the capital of France
      - type: similar
        value: The capital of France is Paris
        provider: openai:embedding:text-embedding-3-small
      - type: g-eval
        value: names the capital
        provider: {id: 'anthropic:messages:claude-3-5-haiku-latest'}
        rubricPrompt:
          steps: "Steps for {{criteria}}"
          evaluate: "Score {{output}}"
"""


def test_promptfoo_types_load_with_the_tests_grader_and_rubric_prompt(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, CONFIG), tmp_path)
    assert suite.warnings == () and suite.judge == "openai/gpt-4o"
    assert_set, similar, g_eval = suite.tests[0].assertions
    assert (assert_set.type, assert_set.threshold, assert_set.weight, assert_set.metric) == (
        "assert-set", 0.5, 2.0, "geography")
    assert [a.label for a in assert_set.assertions] == ["icontains-any", "not-is-refusal", "factuality"]
    factuality = assert_set.assertions[2]
    assert (factuality.provider, factuality.rubric_prompt) == ("openai/gpt-4o", "Grade {{output}} against {{rubric}}")
    assert assert_set.assertions[0].provider is None  # not model-graded: no grader
    assert similar.provider == "openai/text-embedding-3-small"
    assert (g_eval.provider, g_eval.rubric_prompt) == (
        "anthropic/claude-3-5-haiku-latest", {"steps": "Steps for {{criteria}}", "evaluate": "Score {{output}}"})


def test_changing_an_assert_sets_assertion_changes_the_suite_digest(tmp_path: Path) -> None:
    first = load_suite(write_suite(tmp_path, CONFIG), tmp_path)
    second = load_suite(write_suite(tmp_path, CONFIG.replace("[paris, lyon]", "[paris, nice]")), tmp_path)
    assert first.digest != second.digest


@pytest.mark.parametrize(
    ("assertion", "message"),
    [
        ("{type: assert-set, assert: [{type: assert-set, assert: [{type: contains, value: a}]}]}",
         "suite.yaml:5: an assert-set inside an assert-set"),
        ("{type: assert-set, assert: []}", "suite.yaml:5: an assert-set with no assertions"),
        ("{type: assert-set, value: x, assert: [{type: contains, value: a}]}", "unknown key 'value' in an assert-set"),
        ("{type: meteor, value: x}", "suite.yaml:5: assertion type 'meteor' is not supported"),
    ],
)
def test_a_malformed_assert_set_or_an_unsupported_type_is_one_error_with_its_line(
        tmp_path: Path, assertion: str, message: str) -> None:
    text = f"prompts: [hi]\nproviders: [fake/x]\ntests:\n  - assert:\n      - {assertion}\n"
    assert message in str(load_error(tmp_path, text))


def test_csv_shorthand_takes_the_case_insensitive_lists(tmp_path: Path) -> None:
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "tests.csv").write_text(
        "question,__expected1,__expected2\nCapital?,\"icontains-any: paris, lyon\",not-is-refusal\n", encoding="utf-8")
    suite = load_suite(write_suite(tmp_path, "prompts: ['{{question}}']\nproviders: [fake/x]\n"
                                             "tests: file://tests.csv\n"), tmp_path)
    first, second = suite.tests[0].assertions
    assert (first.type, first.value) == ("icontains-any", ["paris", "lyon"])
    assert (second.type, second.negate) == ("is-refusal", True)


async def test_a_run_grades_similar_with_the_fake_servers_embeddings(tmp_path: Path, fake_env: dict[str, str]) -> None:
    marker = uuid.uuid4().hex[:8]
    reply = expected_text(f"{marker}", "Say hello to Ann", 6)
    checks = (AssertionSpec("similar", reply, provider="fake/embed"),
              AssertionSpec("similar", "bananas potassium zebra", provider="fake/embed", negate=True),
              AssertionSpec("similar", reply, provider="fake-anthropic/embed"))
    prompt = Prompt(name="greet", messages=[PromptMessage(role="user", content="Say hello to {{who}}")])
    suite = Suite(name="similar", path=str(tmp_path / "suite.yaml"), prompts=(SuitePrompt("greet", prompt),),
                  targets=(SuiteTarget(f"fake/{marker}@tokens=6", "fake"),),
                  tests=(TestCase({"who": "Ann"}, checks, description="greets"),), digest=marker)
    store = EvalStore(tmp_path / "evals.db")
    runner = EvalRunner(suite, store, options=RunOptions())
    run = runner.new_run()
    async with httpx2.AsyncClient() as client:
        await runner.run(run, Caller(client), fake_env)
    [cell] = report_for(store, store.run(run.id)).cells
    [result] = cell.results
    assert result.observation.text == reply
    same, different, wrong_wire = result.gradings
    assert same.passed is True and same.score == pytest.approx(1.0)
    assert different.passed and different.score > 0.5
    assert not wrong_wire.passed and "embeddings need an OpenAI-compatible provider" in wrong_wire.reason


def _graded_workspace(tmp_path: Path, judge: str = "") -> Path:
    (tmp_path / "workbench.toml").write_text("", encoding="utf-8")
    return write_suite(tmp_path, f"""\
        prompts: ["Answer: {{{{q}}}}"]
        providers: [fake/answer]
        {judge}
        tests:
          - vars: {{q: capital of France}}
            assert:
              - type: model-graded-closedqa
                value: names Paris
              - type: assert-set
                assert: [{{type: llm-rubric, value: is polite}}]
        """)


def test_eval_says_which_default_grader_a_suite_without_one_gets(tmp_path: Path) -> None:
    suite = _graded_workspace(tmp_path)
    result = workbench("eval", str(suite), "--dry-run", "--json", cwd=tmp_path, env={"OPENAI_API_KEY": "sk-test"})
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "judge" in line]
    assert lines == ["workbench: evals/suite.yaml: 2 model-graded assertion(s) name no judge: graded by "
                     f"{KEYED_DEFAULTS['openai']} (the first default target); set judge: in the suite or pass "
                     "--grader PROVIDER/MODEL"]
    assert "sk-test" not in result.stderr + result.stdout
    assert json.loads(result.stdout.splitlines()[0])["preflight"]["calls"] == 1


def test_eval_without_any_grader_reachable_stops_before_any_call(tmp_path: Path) -> None:
    suite = _graded_workspace(tmp_path)
    hidden = tmp_path / "no-local-runtime"
    hidden.mkdir()  # llama.cpp's runtime hidden: no local model is ready, and there is no key
    (hidden / "sitecustomize.py").write_text("import sys\nsys.modules['llama_cpp'] = None\n", encoding="utf-8")
    result = workbench("eval", str(suite), "--json", cwd=tmp_path, env={"PYTHONPATH": str(hidden)})
    assert result.returncode == 2 and result.stdout == ""
    first, hint = result.stderr.splitlines()
    assert first == ("workbench: evals/suite.yaml: 2 model-graded assertion(s) need a judge and no default grader is "
                     "reachable (no target given, no API key and no local model)")
    assert hint == "  hint: set judge: in the suite (or defaultTest.options.provider), or pass --grader PROVIDER/MODEL"


def test_eval_with_a_grader_or_a_suite_judge_says_nothing_about_graders(tmp_path: Path) -> None:
    suite = _graded_workspace(tmp_path, "judge: fake/judge")
    result = workbench("eval", str(suite), "--dry-run", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "judge" not in result.stderr
    suite = _graded_workspace(tmp_path)
    result = workbench("eval", str(suite), "--dry-run", "--json", "--grader", "fake/judge", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "judge" not in result.stderr


def test_eval_runs_model_graded_assertions_with_the_grader_it_was_given(tmp_path: Path) -> None:
    suite = _graded_workspace(tmp_path)
    result = workbench("eval", str(suite), "--json", "--grader", "fake/judge", cwd=tmp_path)
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["status"] == "done", result.stderr
    assert "no judge target" not in result.stdout + result.stderr


def test_similar_cosine_is_promptfoos_name_for_similar(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, """\
        prompts: ["Hi"]
        providers: [fake/demo]
        tests:
          - assert:
              - {type: similar:cosine, value: hello, threshold: 0.5}
              - {type: not-similar:cosine, value: bye}
    """), tmp_path)
    assert [(a.type, a.negate, a.threshold) for a in suite.tests[0].assertions] == [
        ("similar", False, 0.5), ("similar", True, None)]
    error = load_error(tmp_path, """\
        prompts: ["Hi"]
        providers: [fake/demo]
        tests: [{assert: [{type: "similar:dot", value: hello}]}]
    """)
    assert "assertion type 'similar:dot' is not supported" in str(error)
