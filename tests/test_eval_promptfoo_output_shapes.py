"""The shapes of promptfoo's results document that ``workbench eval -o results.json`` (and .yaml, .jsonl) writes:
per result its ``id``, ``promptId`` and written ``testCase``; per column its assertion counts, latency, tokens,
cost and named score weights; the run's duration and token totals; an assert-set's results nested in its entry."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from pathlib import Path

import yaml

from tests.test_cli import workbench
from workbench.core.evals.model import (
    AssertionSpec,
    CellKey,
    CellResult,
    CellSummary,
    Grading,
    Observation,
    RunInfo,
    RunReport,
)
from workbench.core.evals.report_outputs import SuiteNames, promptfoo_document, render_output
from workbench.core.evals.suite import load_suite

DETAILS = {"reasoning": 0, "acceptedPrediction": 0, "rejectedPrediction": 0, "cacheReadInputTokens": 0,
           "cacheCreationInputTokens": 0}
GRADERS = {"total": 0, "prompt": 0, "completion": 0, "cached": 0, "numRequests": 0, "completionDetails": DETAILS}


def _report() -> tuple[RunReport, SuiteNames]:
    run = RunInfo("01RUN", "shapes", "shapes.yaml", "digest", started_at=1000.0, finished_at=1002.5)
    passed = CellResult(CellKey("greets", "p", "t"), 0,
                        Observation("hello", latency_ms=12.0, cost_usd=0.25, input_tokens=3, output_tokens=2,
                                    reasoning_tokens=1),
                        [Grading("contains", True, 1.0, "ok", 2.0, "polite"),
                         Grading("icontains", False, 0.0, "no", 1.0, "polite")], True, 2 / 3)
    failed = CellResult(CellKey("waves", "p", "t"), 0,
                        Observation("bye", latency_ms=8.0, cost_usd=0.5, input_tokens=4, output_tokens=1),
                        [Grading("contains", False, 0.0, "expected hello", 1.0, None)], False, 0.0)
    cells = [CellSummary(r.key, r.key.test, 1, int(r.passed), (0.0, 1.0), r.score, r.observation.latency_ms,
                         r.observation.cost_usd, [r]) for r in (passed, failed)]
    specs = (AssertionSpec("contains", "hello", weight=2.0, metric="polite"),
             AssertionSpec("icontains", "HI", metric="polite"))
    names = SuiteNames(providers={"t": ("echo", None)}, prompts={"p": "Say {{x}}"}, prompt_labels={"p": "Say {{x}}"},
                       assertions={"greets": specs, "waves": (AssertionSpec("contains", "hello"),)},
                       order=(("p", "t"),), options={"greets": {"prefix": "Hi: "}, "waves": {}})
    return RunReport(run, cells), names


def test_each_result_has_an_id_its_prompts_id_and_its_test_as_written() -> None:
    report, names = _report()
    greets, waves = promptfoo_document(report, names)["results"]["results"]
    assert uuid.UUID(greets["id"]) and greets["id"] != waves["id"]
    assert greets["id"] == promptfoo_document(report, names)["results"]["results"][0]["id"]  # stable
    assert greets["promptId"] == hashlib.sha256(b"Say {{x}}").hexdigest() == waves["promptId"]
    assert greets["testCase"]["assert"] == [{"type": "contains", "value": "hello", "weight": 2, "metric": "polite"},
                                            {"type": "icontains", "value": "HI", "metric": "polite"}]
    assert greets["testCase"]["options"] == {"prefix": "Hi: "} and waves["testCase"]["options"] == {}


def test_a_passing_result_has_no_error_key_and_a_failing_one_its_reason() -> None:
    report, names = _report()
    greets, waves = promptfoo_document(report, names)["results"]["results"]
    assert "error" not in greets
    assert waves["error"] == "expected hello"


def test_each_columns_metrics_count_assertions_latency_tokens_cost_and_weights() -> None:
    report, names = _report()
    [prompt] = promptfoo_document(report, names)["results"]["prompts"]
    assert prompt["id"] == hashlib.sha256(b"Say {{x}}").hexdigest()
    metrics = prompt["metrics"]
    assert (metrics["assertPassCount"], metrics["assertFailCount"]) == (1, 2)
    assert metrics["totalLatencyMs"] == 20.0 and metrics["cost"] == 0.75
    assert metrics["namedScoreWeights"] == {"polite": 3}
    assert metrics["tokenUsage"] == {"prompt": 7, "completion": 3, "total": 10, "cached": 0, "numRequests": 2,
                                     "completionDetails": {**DETAILS, "reasoning": 1}, "assertions": GRADERS}


def test_the_runs_stats_hold_its_duration_and_graders_tokens() -> None:
    report, names = _report()
    stats = promptfoo_document(report, names)["results"]["stats"]
    assert stats["durationMs"] == stats["evaluationDurationMs"] == 2500
    assert stats["tokenUsage"]["assertions"] == GRADERS
    report.run.finished_at = None
    assert "durationMs" not in promptfoo_document(report, names)["results"]["stats"]


def test_yaml_and_jsonl_hold_the_same_shapes() -> None:
    report, names = _report()
    document = promptfoo_document(report, names)
    assert yaml.safe_load(render_output(report, "yaml", names)) == json.loads(json.dumps(document))
    lines = [json.loads(line) for line in render_output(report, "jsonl", names).splitlines()]
    assert [line["id"] for line in lines] == [r["id"] for r in document["results"]["results"]]
    assert [line["promptId"] for line in lines] == [r["promptId"] for r in document["results"]["results"]]
    assert "error" not in lines[0] and lines[1]["testCase"]["assert"] == [{"type": "contains", "value": "hello"}]


def test_a_tests_options_are_its_own_over_the_default_tests(tmp_path: Path) -> None:
    path = tmp_path / "promptfooconfig.yaml"
    path.write_text("""prompts: ["Say {{x}}"]
providers: [echo]
defaultTest:
  options: {prefix: "A: ", suffix: " !"}
tests:
  - vars: {x: one}
    options: {prefix: "B: "}
  - vars: {x: two}
""", encoding="utf-8")
    suite = load_suite(path, tmp_path)
    assert [t.options for t in suite.tests] == [{"prefix": "B: ", "suffix": " !"}, {"prefix": "A: ", "suffix": " !"}]


def test_a_stored_grading_keeps_an_assert_sets_own_gradings() -> None:
    inner = (Grading("contains", False, 0.0, "no"), Grading("javascript", True, 1.0, "ok", 1.0, "m"))
    grading = Grading("assert-set", True, 0.5, "half", 2.0, None, inner)
    assert Grading.from_fields(json.loads(json.dumps(dataclasses.asdict(grading)))) == grading
    assert Grading.from_fields({"assertion": "contains", "passed": True, "score": 1.0, "reason": "ok"}).components == ()


def test_an_assert_sets_results_nest_in_its_entry_and_follow_it(tmp_path: Path) -> None:
    (tmp_path / "evals").mkdir()
    suite = tmp_path / "evals" / "sets.yaml"
    suite.write_text("""prompts: ["alpha beta"]
providers: [echo]
tests:
  - description: half a set
    assert:
      - type: assert-set
        threshold: 0.5
        metric: set
        assert:
          - {type: contains, value: gamma}
          - {type: contains, value: alpha}
      - {type: icontains, value: BETA}
""", encoding="utf-8")
    done = workbench("eval", str(suite), "--json", "-o", str(tmp_path / "out.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    [result] = document["results"]["results"]
    gamma = {"pass": False, "score": 0.0, "reason": result["gradingResult"]["componentResults"][1]["reason"],
             "assertion": {"type": "contains", "value": "gamma"}}
    alpha = {"pass": True, "score": 1.0, "reason": result["gradingResult"]["componentResults"][2]["reason"],
             "assertion": {"type": "contains", "value": "alpha"}}
    the_set, *rest = result["gradingResult"]["componentResults"]
    assert {k: v for k, v in the_set.items() if k != "reason"} == {
        "pass": True, "score": 0.5, "namedScores": {}, "componentResults": [gamma, alpha],
        "tokensUsed": {"total": 0, "prompt": 0, "completion": 0, "cached": 0, "numRequests": 0},
        "metadata": {"assertionSet": {"type": "assert-set", "assertionCount": 2, "metric": "set", "threshold": 0.5}}}
    assert rest[:2] == [gamma, alpha] and rest[2]["assertion"] == {"type": "icontains", "value": "BETA"}
    metrics = document["results"]["prompts"][0]["metrics"]
    assert (metrics["assertPassCount"], metrics["assertFailCount"]) == (3, 1)
