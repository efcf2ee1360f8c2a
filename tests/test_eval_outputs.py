"""``workbench eval -o FILE``: the format of the file's extension, as promptfoo's ``--output`` writes it (json
``version: 3``, yaml, csv, jsonl streamed as cells finish, html, md, xml); test metadata in every format; a test
without a description named by its variables."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from tests.test_cli import json_lines, workbench
from tests.timing_slack import until
from workbench.fakeserver.process import FakeServerProcess

FORMATS = ("json", "jsonl", "csv", "yaml", "html", "md", "xml")


def _suite(root: Path, providers: str = "  - id: fake/out@tokens=5\n    label: fast", concurrency: int = 8) -> Path:
    (root / "workbench.toml").write_text('[prices."fake/*"]\ninput_per_mtok = 1000\noutput_per_mtok = 2000\n',
                                         encoding="utf-8")
    (root / "evals").mkdir(exist_ok=True)
    suite = root / "evals" / "out.yaml"
    suite.write_text(f"""prompts:
  - "Write one line about {{{{topic}}}}"
providers:
{providers}
concurrency: {concurrency}
defaultTest:
  assert:
    - type: regex
      value: '\\w+'
tests:
  - description: apples
    vars: {{topic: apples}}
    metadata: {{owner: ann, since: 2024-01-02, tags: [fruit, red]}}
  - vars: {{topic: a very long topic about the many kinds of pears that grow in orchards, colour: green}}
    assert:
      - type: contains
        value: never-in-a-fake-reply
        metric: recall
""", encoding="utf-8")
    return suite


def _run(suite: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return workbench("eval", str(suite), "--json", *args, cwd=suite.parent.parent)


PEARS = "topic=a very long topic about the many kinds of pears that grow in orchards, co…"


def test_every_extension_writes_its_format_with_metadata(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    result = _run(suite, *(arg for fmt in FORMATS for arg in ("-o", str(out / f"results.{fmt}"))))
    assert result.returncode == 1, result.stderr  # the pears test fails
    run_id = json_lines(result.stdout)[-1]["run"]
    for fmt in FORMATS:
        assert f"wrote {out / f'results.{fmt}'}" in result.stderr

    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert document["evalId"] == run_id and document["results"]["version"] == 3
    stats = document["results"]["stats"]
    assert (stats["successes"], stats["failures"], stats["errors"]) == (1, 1, 0)
    assert stats["tokenUsage"]["total"] == stats["tokenUsage"]["prompt"] + stats["tokenUsage"]["completion"] > 0
    apples, pears = document["results"]["results"]
    assert apples["vars"] == {"topic": "apples"} and apples["success"] is True and apples["score"] == 1
    assert apples["prompt"]["raw"].endswith("Write one line about apples")
    assert apples["provider"]["label"] == "fast" and apples["response"]["output"]
    assert apples["latencyMs"] > 0 and apples["cost"] > 0
    assert apples["metadata"] == {"owner": "ann", "since": "2024-01-02", "tags": ["fruit", "red"]}
    assert apples["testCase"]["metadata"] == apples["metadata"] and apples["testIdx"] == 0
    assert pears["success"] is False and pears["failureReason"] == 1 and pears["testIdx"] == 1
    assert pears["testCase"]["description"] == PEARS
    grading = pears["gradingResult"]
    assert grading["pass"] is False and "never-in-a-fake-reply" in grading["reason"]
    assert [c["assertion"]["type"] for c in grading["componentResults"]] == ["regex", "contains"]
    assert pears["namedScores"] == {"recall": 0.0}

    assert yaml.safe_load((out / "results.yaml").read_text(encoding="utf-8")) == document
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(line["testCase"]["description"] for line in lines) == ["apples", PEARS]
    assert {line["success"] for line in lines} == {True, False}

    # promptfoo's CSV: a row per test, its description and variables, then per column the output and its verdict
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text(encoding="utf-8"))))
    column = "[fast] Write one line about {{topic}}"
    assert list(rows[0]) == ["Description", "topic", "colour", column, "Status", "Score", "Named Scores",
                             "Grader Reason", "Comment", "metadata:owner", "metadata:since", "metadata:tags"]
    assert [row["Description"] for row in rows] == ["apples", ""]  # the pears test has no description
    assert [row["Status"] for row in rows] == ["PASS", "FAIL"] and [row["Score"] for row in rows] == ["1.00", "0.50"]
    assert rows[0][column] == apples["response"]["output"] and rows[0]["Grader Reason"] == "All assertions passed"
    assert rows[1]["Named Scores"] == '{"recall":0}' and rows[0]["Named Scores"] == ""
    assert rows[1]["colour"] == "green" and "never-in-a-fake-reply" in rows[1]["Grader Reason"]
    assert rows[0]["metadata:owner"] == "ann" and rows[0]["metadata:tags"] == '["fruit", "red"]'

    md = (out / "results.md").read_text(encoding="utf-8")
    assert "### Test metadata" in md and "apples: owner=ann, since=2024-01-02, tags=\\[\"fruit\", \"red\"\\]" in md
    junit = ET.parse(out / "results.xml").getroot()
    case = next(c for c in junit.iter("testcase") if c.get("name") == "apples")
    assert {p.get("name"): p.get("value") for p in case.iter("property")}["metadata.owner"] == "ann"
    assert any(c.get("name") == PEARS for c in junit.iter("testcase"))
    assert "metadata: owner=ann" in (out / "results.html").read_text(encoding="utf-8")
    report = workbench("evals", "show", "last", "--format", "json", cwd=tmp_path).stdout
    assert '"owner": "ann"' in report  # our own JSON report carries it too


def test_named_scores_are_the_weighted_mean_of_the_assertions_naming_each_metric(tmp_path: Path) -> None:
    """promptfoo's ``namedScores``: two assertions of one metric give their weighted mean (not the last one's
    score); a weight-0 assertion, which only reports, gives its own score (promptfoo's examples/f-score)."""
    (tmp_path / "evals").mkdir()
    suite = tmp_path / "evals" / "metrics.yaml"
    suite.write_text("""prompts: ["alpha beta"]
providers: [echo]
tests:
  - assert:
      - {type: contains, value: alpha, metric: recall, weight: 3}
      - {type: contains, value: gamma, metric: recall}
      - {type: javascript, value: "output.includes('beta') ? 1 : 0", metric: true_positives, weight: 0}
      - {type: icontains, value: ALPHA, metric: style}
""", encoding="utf-8")
    out = tmp_path / "results.json"
    result = _run(suite, "-o", str(out))
    assert result.returncode == 1, result.stderr  # gamma is missing
    (record,) = json.loads(out.read_text(encoding="utf-8"))["results"]["results"]
    assert record["namedScores"] == {"recall": 0.75, "true_positives": 1.0, "style": 1.0}
    # promptfoo writes a failed result's reason as its error, and each grading's assertion as written
    assert record["error"] == record["gradingResult"]["reason"] and "gamma" in record["error"]
    assert [c["assertion"] for c in record["gradingResult"]["componentResults"]] == [
        {"type": "contains", "value": "alpha", "weight": 3, "metric": "recall"},
        {"type": "contains", "value": "gamma", "metric": "recall"},
        {"type": "javascript", "value": "output.includes('beta') ? 1 : 0", "weight": 0, "metric": "true_positives"},
        {"type": "icontains", "value": "ALPHA", "metric": "style"}]


def test_a_test_with_a_threshold_is_reasoned_by_its_aggregate_score(tmp_path: Path) -> None:
    """promptfoo's reason for a test with a threshold: its aggregate score against the threshold, in the JSON (and
    as a failed result's error) and in the CSV."""
    (tmp_path / "evals").mkdir()
    suite = tmp_path / "evals" / "thresholds.yaml"
    suite.write_text("""prompts: ["alpha beta"]
providers: [echo]
tests:
  - description: reaches
    threshold: 0.7
    assert:
      - {type: contains, value: alpha, weight: 3}
      - {type: contains, value: gamma}
  - description: misses
    threshold: 0.7
    assert:
      - {type: contains, value: alpha}
      - {type: contains, value: gamma}
""", encoding="utf-8")
    result = _run(suite, "-o", str(tmp_path / "results.json"), "-o", str(tmp_path / "results.csv"))
    assert result.returncode == 1, result.stderr
    reaches, misses = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["results"]["results"]
    assert reaches["gradingResult"]["reason"] == "Aggregate score 0.75 ≥ 0.7 threshold" and "error" not in reaches
    assert misses["gradingResult"]["reason"] == misses["error"] == "Aggregate score 0.50 < 0.7 threshold"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text(encoding="utf-8"))))
    assert [row["Grader Reason"] for row in rows] == [reaches.get("error") or reaches["gradingResult"]["reason"],
                                                      misses["error"]]


def test_derived_metrics_are_computed_from_each_columns_summed_named_scores(tmp_path: Path) -> None:
    """promptfoo's ``derivedMetrics`` (examples/f-score): each column's ``metrics.namedScores`` holds its named
    scores summed over its results and each formula over them, in order; a division by zero is null."""
    (tmp_path / "evals").mkdir()
    suite = tmp_path / "evals" / "fscore.yaml"
    suite.write_text("""prompts: ['{"sentiment": "{{guess}}"}']
providers: [echo]
defaultTest:
  options: {transform: JSON.parse(output)}
  assert:
    - {type: javascript, value: "output.sentiment === 'positive' && context.vars.truth === 'positive' ? 1 : 0",
       metric: tp, weight: 0}
    - {type: javascript, value: "output.sentiment === 'positive' && context.vars.truth === 'negative' ? 1 : 0",
       metric: fp, weight: 0}
    - {type: javascript, value: "output.sentiment === 'negative' && context.vars.truth === 'positive' ? 1 : 0",
       metric: fn, weight: 0}
derivedMetrics:
  - {name: precision, value: tp / (tp + fp)}
  - {name: f1, value: 2 * tp / (2 * tp + fp + fn)}
  - {name: twice_precision, value: precision * 2}
  - {name: never, value: fn / fn}
tests:
  - vars: {guess: positive, truth: positive}
  - vars: {guess: positive, truth: negative}
  - vars: {guess: negative, truth: negative}
""", encoding="utf-8")
    out = tmp_path / "results.json"
    result = _run(suite, "-o", str(out))
    assert "derivedMetrics" not in result.stderr, result.stderr
    (column,) = json.loads(out.read_text(encoding="utf-8"))["results"]["prompts"]
    metrics = column["metrics"]
    assert metrics["namedScores"] == {"tp": 1.0, "fp": 1.0, "fn": 0.0, "precision": 0.5, "f1": 2 / 3,
                                      "twice_precision": 1.0, "never": None}
    assert metrics["namedScoresCount"] == {"tp": 3, "fp": 3, "fn": 3}
    assert (metrics["testPassCount"], metrics["testFailCount"], metrics["testErrorCount"]) == (3, 0, 0)


def test_a_derived_metric_that_is_no_formula_stops_the_load_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "evals").mkdir()
    suite = tmp_path / "evals" / "bad.yaml"
    suite.write_text("prompts: [hi]\nproviders: [echo]\ntests: [{vars: {}}]\nderivedMetrics:\n"
                     "  - name: sneaky\n    value: __import__('os').getcwd()\n", encoding="utf-8")
    result = _run(suite)
    assert result.returncode == 2
    assert result.stderr.startswith("workbench: evals/bad.yaml:6: derived metric sneaky: "), result.stderr


def test_bad_outputs_are_refused_in_one_line_before_any_run(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    (tmp_path / "folder.json").mkdir()
    for args, words in [(("-o", "results.docx"), ("results.docx", "unknown output format")),
                        (("-o", str(tmp_path / "folder.json")), ("is a folder",)),
                        (("-o", str(tmp_path / "missing" / "r.json")), ("cannot write in",))]:
        result = _run(suite, *args)
        assert result.returncode == 2
        lines = result.stderr.splitlines()
        assert lines[0].startswith("workbench: ") and all(w in lines[0] for w in words), result.stderr
        assert len(lines) <= 2 and "Traceback" not in result.stderr
    assert workbench("evals", "list", "--json", cwd=tmp_path).stdout == ""  # no run was started


def test_jsonl_is_written_as_cells_finish(tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    providers = f"  - id: fake/fast-{marker}@tokens=3\n    label: fast\n  - id: fake/slow-{marker}@hang=headers\n" \
                "    label: slow"
    suite = _suite(tmp_path, providers, concurrency=4)
    stream = tmp_path / "stream.jsonl"
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env = {**base, "WORKBENCH_FAKE_URL": fake_server.base_url}
    process = subprocess.Popen([sys.executable, "-m", "workbench", "eval", str(suite), "--json", "-o", str(stream)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        until(lambda: stream.exists() and len(stream.read_text(encoding="utf-8").splitlines()) == 2,
              "both cells of the fast target in the stream")
        assert process.poll() is None  # the slow target's calls still hang: the run has not ended
        lines = [json.loads(line) for line in stream.read_text(encoding="utf-8").splitlines()]
        assert {line["provider"]["label"] for line in lines} == {"fast"}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 130
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_a_resumed_run_streams_its_stored_results_first(tmp_path: Path) -> None:
    suite = _suite(tmp_path, concurrency=1)
    stream = tmp_path / "stream.jsonl"
    stopped = _run(suite, "--max-cost", "0.000001", "-o", str(stream))
    assert stopped.returncode == 3, stopped.stderr
    first = [json.loads(line) for line in stream.read_text(encoding="utf-8").splitlines()]
    assert [line["testCase"]["description"] for line in first] == ["apples"]

    resumed = _run(suite, "--resume", str(json_lines(stopped.stdout)[-1]["run"]), "-o", str(stream))
    assert resumed.returncode == 1, resumed.stderr  # the pears test fails the gate
    lines = [json.loads(line) for line in stream.read_text(encoding="utf-8").splitlines()]
    assert [line["testCase"]["description"] for line in lines] == ["apples", PEARS]
    assert lines[0] == first[0]
