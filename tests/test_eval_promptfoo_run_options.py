"""promptfoo's run settings through the real CLI and the fake server: ``evaluateOptions.timeoutMs`` (a cell past it
fails with promptfoo's timeout error), ``maxEvalTimeMs`` (the cells not done end as errors, the run still reports),
``delay`` (a wait after each call, one cell at a time), ``cache``; the top-level ``outputPath``; the exit code and
pass rate from ``PROMPTFOO_FAILED_TEST_EXIT_CODE`` / ``PROMPTFOO_PASS_RATE_THRESHOLD``; the id, label and template
promptfoo's ``results.json`` names each provider and prompt by."""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
import subprocess
import uuid
from pathlib import Path

import yaml

from tests.test_cli import json_lines, workbench

PASSING = "    assert: [{type: regex, value: '\\w'}]"
FAILING = "    assert: [{type: contains, value: never-in-a-fake-reply}]"


def _suite(root: Path, providers: list[str], extra: str = "", tests: tuple[str, ...] = (PASSING,),
           name: str = "promptfooconfig.yaml") -> Path:
    listed = "\n".join(f"  - {p}" for p in providers)
    cases = "\n".join(f"  - description: t{i}\n    vars: {{word: w{i}}}\n{test}" for i, test in enumerate(tests, 1))
    suite = root / name
    suite.write_text(f"prompts:\n  - 'Say {{{{word}}}}'\nproviders:\n{listed}\n{extra}tests:\n{cases}\n",
                     encoding="utf-8")
    return suite


def _eval(suite: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return workbench("eval", str(suite), "--json", *args, cwd=suite.parent, env=env)


def _results(path: Path) -> dict[str, dict[str, object]]:
    """The results of promptfoo's document at ``path``, by test description and provider id."""
    document = json.loads(path.read_text(encoding="utf-8"))
    return {f"{r['testCase']['description']} {r['provider']['id']}": r for r in document["results"]["results"]}


def test_timeout_ms_fails_the_slow_cell_with_promptfoos_error_and_keeps_the_others(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    marker = uuid.uuid4().hex[:8]
    fast, slow = f"fake/fast-{marker}@tokens=3", f"fake/slow-{marker}@hang=headers"
    suite = _suite(tmp_path, [fast, slow], "evaluateOptions: {timeoutMs: 1500, maxConcurrency: 2}\n")

    result = _eval(suite, fake_env, "-o", "out.json")

    assert result.returncode == 1, result.stderr
    summary = json_lines(result.stdout)[-1]
    assert (summary["runs"], summary["passes"], summary["status"]) == (2, 1, "done")
    results = _results(tmp_path / "out.json")
    assert results[f"t1 {fast}"]["success"] is True and "error" not in results[f"t1 {fast}"]
    timed_out = results[f"t1 {slow}"]
    assert (timed_out["success"], timed_out["error"]) == (False, "Evaluation timed out after 1500ms")
    assert timed_out["failureReason"] == 2 and float(str(timed_out["latencyMs"])) >= 1500


def test_promptfoos_timeout_variables_are_the_defaults_of_a_promptfoo_config(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    marker = uuid.uuid4().hex[:8]
    fast, slow = f"fake/fast-{marker}@tokens=3", f"fake/slow-{marker}@hang=headers"
    suite = _suite(tmp_path, [fast, slow], "evaluateOptions: {maxConcurrency: 2}\n")

    result = _eval(suite, {**fake_env, "PROMPTFOO_EVAL_TIMEOUT_MS": "1500"}, "-o", "out.json")

    assert result.returncode == 1, result.stderr
    assert _results(tmp_path / "out.json")[f"t1 {slow}"]["error"] == "Evaluation timed out after 1500ms"
    for name in ("PROMPTFOO_EVAL_TIMEOUT_MS", "PROMPTFOO_MAX_EVAL_TIME_MS"):
        bad = _eval(suite, {**fake_env, name: "soon"})
        assert bad.returncode == 2 and f"{name}=soon is not a time" in bad.stderr, bad.stderr


def test_max_eval_time_ms_ends_every_cell_not_done_and_the_run_still_writes_its_report(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    marker = uuid.uuid4().hex[:8]
    fast, slow = f"fake/fast-{marker}@tokens=3", f"fake/slow-{marker}@hang=headers"
    suite = _suite(tmp_path, [fast, slow], "evaluateOptions: {maxEvalTimeMs: 2000, maxConcurrency: 1}\n"
                                           "outputPath: results.json\n", tests=(PASSING, PASSING))

    result = _eval(suite, fake_env)  # one at a time: t1 fast, t1 slow (hangs), t2 fast, t2 slow

    assert result.returncode == 1, result.stderr
    summary = json_lines(result.stdout)[-1]
    assert (summary["runs"], summary["passes"], summary["status"]) == (4, 1, "done")
    assert f"wrote {Path('results.json')}" in result.stderr
    results = _results(tmp_path / "results.json")
    assert results[f"t1 {fast}"]["success"] is True
    for ended in (f"t1 {slow}", f"t2 {fast}", f"t2 {slow}"):
        assert results[ended]["error"] == "Evaluation exceeded max duration of 2000ms", ended
    document = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert document["results"]["stats"]["errors"] == 3


def test_delay_waits_after_each_call_and_runs_one_cell_at_a_time(tmp_path: Path, fake_env: dict[str, str]) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = _suite(tmp_path, [f"fake/d-{marker}@tokens=2"], "evaluateOptions: {delay: 400}\n",
                   tests=(PASSING, PASSING, PASSING))

    result = workbench("eval", str(suite), "--concurrency", "8", cwd=tmp_path, env=fake_env)

    assert result.returncode == 0, result.stderr
    assert "at concurrency 1" in result.stderr  # promptfoo's delay forces one call at a time
    with sqlite3.connect(tmp_path / "traces.db") as conn:
        starts = [row[0] for row in conn.execute("SELECT ts FROM calls WHERE model LIKE ? ORDER BY ts",
                                                 (f"d-{marker}%",))]
    assert len(starts) == 3
    assert all(later - earlier >= 0.4 for earlier, later in itertools.pairwise(starts)), starts

    undelayed = _suite(tmp_path, [f"fake/d-{marker}@tokens=2"], tests=(PASSING, PASSING, PASSING), name="plain.yaml")
    estimates = [json_lines(_eval(path, fake_env, "--dry-run", "--no-cache", "--concurrency", "1").stdout)[0]
                 ["preflight"] for path in (suite, undelayed)]
    assert abs(estimates[0]["seconds"] - estimates[1]["seconds"] - 1.2) < 0.15  # the pre-flight counts the delays


def test_a_providers_delay_waits_after_each_call_to_it(tmp_path: Path, fake_env: dict[str, str]) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = _suite(tmp_path, [f"{{id: 'fake/p-{marker}@tokens=2', delay: 400}}"],
                   "evaluateOptions: {maxConcurrency: 1}\n", tests=(PASSING, PASSING))

    result = _eval(suite, fake_env)

    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "traces.db") as conn:
        first, second = (row[0] for row in conn.execute("SELECT ts FROM calls WHERE model LIKE ? ORDER BY ts",
                                                        (f"p-{marker}%",)))
    assert second - first >= 0.4


def test_cache_false_calls_every_cell_again(tmp_path: Path, fake_env: dict[str, str]) -> None:
    marker = uuid.uuid4().hex[:8]
    cached = _suite(tmp_path, [f"fake/c-{marker}@tokens=2"], name="cached.yaml")
    uncached = _suite(tmp_path, [f"fake/c-{marker}@tokens=2"], "evaluateOptions: {cache: false}\n",
                      name="uncached.yaml")
    assert _eval(cached, fake_env).returncode == 0

    again = _eval(cached, fake_env)
    assert json_lines(again.stdout)[0]["preflight"]["cached"] == 1
    fresh = _eval(uncached, fake_env)
    assert fresh.returncode == 0, fresh.stderr
    assert json_lines(fresh.stdout)[0]["preflight"]["cached"] == 0  # as --no-cache: no cached answer is read


def test_bad_run_settings_stop_the_load_at_their_line(tmp_path: Path, fake_env: dict[str, str]) -> None:
    for extra, words in [("evaluateOptions: {timeoutMs: -5}\n", ":5: timeoutMs must be a number of milliseconds"),
                         ("evaluateOptions: {maxEvalTimeMs: soon}\n", ":5: maxEvalTimeMs must be"),
                         ("evaluateOptions: {cache: 'no'}\n", ":5: expected true or false"),
                         ("outputPath: results.docx\n", ":5: outputPath results.docx: unknown output format"),
                         ("outputPath: [a.json, 3]\n", ":5: expected a file name")]:
        result = _eval(_suite(tmp_path, ["fake/a@tokens=2"], extra), fake_env)
        assert result.returncode == 2, (extra, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr, (extra, result.stderr)
    refused = _eval(_suite(tmp_path, ["{id: 'fake/a@tokens=2', delay: soon}"]), fake_env)
    assert refused.returncode == 2 and ":4: delay must be a number of milliseconds" in refused.stderr, refused.stderr


def test_output_path_writes_every_file_after_the_run_and_o_wins(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, ["fake/o@tokens=2"], "outputPath: [out/a.json, out/b.txt, out/c.csv]\n")
    (tmp_path / "out").mkdir()

    result = _eval(suite, fake_env)

    assert result.returncode == 0, result.stderr
    run_id = json_lines(result.stdout)[-1]["run"]
    assert json.loads((tmp_path / "out" / "a.json").read_text(encoding="utf-8"))["evalId"] == run_id
    text = yaml.safe_load((tmp_path / "out" / "b.txt").read_text(encoding="utf-8"))  # .txt: promptfoo's YAML
    assert text["evalId"] == run_id and text["results"]["version"] == 3
    assert (tmp_path / "out" / "c.csv").read_text(encoding="utf-8").startswith("Description,word,[fake/o@tokens=2] ")

    for name in ("a.json", "b.txt", "c.csv"):
        (tmp_path / "out" / name).unlink()
    given = _eval(suite, fake_env, "-o", "given.json")
    assert given.returncode == 0, given.stderr
    assert (tmp_path / "given.json").is_file() and not any((tmp_path / "out").iterdir())

    missing = _suite(tmp_path, ["fake/o@tokens=2"], "outputPath: nowhere/a.json\n")
    refused = _eval(missing, fake_env)
    assert refused.returncode == 2 and "outputPath nowhere/a.json: cannot write in nowhere" in refused.stderr


def test_promptfoos_failed_test_exit_code_variable(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, ["fake/x@tokens=2"], tests=(PASSING, FAILING))  # half the tests pass
    code = {**fake_env, "PROMPTFOO_FAILED_TEST_EXIT_CODE": "100"}

    assert _eval(suite, fake_env).returncode == 1
    assert _eval(suite, code).returncode == 100
    assert _eval(suite, code, "--exit-code-failed", "7").returncode == 7  # the flag wins

    ours = tmp_path / "evals" / "ours.yaml"  # a suite of ours (targets:) keeps workbench's exit codes
    ours.parent.mkdir()
    ours.write_text(suite.read_text(encoding="utf-8").replace("providers:", "targets:"), encoding="utf-8")
    assert _eval(ours, code).returncode == 1


def test_promptfoos_pass_rate_threshold_variable(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, ["fake/x@tokens=2"], tests=(PASSING, FAILING))  # half the tests pass

    low = _eval(suite, {**fake_env, "PROMPTFOO_PASS_RATE_THRESHOLD": "50"})
    assert low.returncode == 0, low.stderr
    assert json_lines(low.stdout)[-1]["gate"] == 0.5
    high = _eval(suite, {**fake_env, "PROMPTFOO_PASS_RATE_THRESHOLD": "60", "PROMPTFOO_FAILED_TEST_EXIT_CODE": "100"})
    assert high.returncode == 100
    assert _eval(suite, {**fake_env, "PROMPTFOO_PASS_RATE_THRESHOLD": "60"}, "--gate", "0.5").returncode == 0


def test_bad_promptfoo_variables_are_one_line_before_any_call(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, ["fake/x@tokens=2"])
    for name, value in [("PROMPTFOO_FAILED_TEST_EXIT_CODE", "many"), ("PROMPTFOO_PASS_RATE_THRESHOLD", "150")]:
        bad = _eval(suite, {**fake_env, name: value})
        assert bad.returncode == 2 and f"{name}={value} is not" in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr and bad.stdout == ""


def test_results_json_names_providers_and_prompts_as_promptfoo_does(
        tmp_path: Path, fake_server: object, fake_env: dict[str, str]) -> None:
    # promptfoo 0.123 names a provider written as a bare id by its own id (openai:MODEL, anthropic:MODEL), keeps an
    # id written in a mapping as written, writes label "" for none; a prompt without a label is named by its text
    # (a file's prompt "path: text", a chat as compact JSON), and results.prompts lists each provider's prompts in turn
    marker = uuid.uuid4().hex[:8]
    (tmp_path / "parts.txt").write_text("First {{word}}\n---\nSecond {{word}}\n", encoding="utf-8")
    (tmp_path / "chat.json").write_text('[{"role": "user", "content": "Chat {{word}}"}]\n', encoding="utf-8")
    suite = tmp_path / "promptfooconfig.yaml"
    suite.write_text(f"""prompts:
  - 'Say {{{{word}}}}'
  - file://parts.txt
  - file://chat.json
  - {{raw: 'Raw {{{{word}}}}', label: rawlab}}
providers:
  - openai:chat:fake-model@tokens=2,id={marker}
  - anthropic:messages:fake-claude@tokens=2,id={marker}
  - {{id: 'openai:chat:fake-model@tokens=3,id={marker}'}}
  - {{id: 'fake/b@tokens=2', label: bee}}
tests:
  - description: t1
    vars: {{word: w1}}
    assert:
      - {{type: not-contains, value: zzz, weight: 2, metric: Clean}}
""", encoding="utf-8")
    url = fake_env["WORKBENCH_FAKE_URL"]
    env = {**fake_env, "OPENAI_API_KEY": "sk-test-00000000", "OPENAI_BASE_URL": f"{url}/v1",
           "ANTHROPIC_API_KEY": "sk-ant-test-0000", "ANTHROPIC_BASE_URL": url}

    result = _eval(suite, env, "-o", "results.json", "-o", "results.jsonl")

    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    providers = [{"id": f"openai:fake-model@tokens=2,id={marker}", "label": ""},
                 {"id": f"anthropic:fake-claude@tokens=2,id={marker}", "label": ""},
                 {"id": f"openai:chat:fake-model@tokens=3,id={marker}", "label": ""},
                 {"id": "fake/b@tokens=2", "label": "bee"}]
    chat = '[{"role":"user","content":"Chat {{word}}"}]'
    prompts = [("Say {{word}}", "Say {{word}}"), ("parts.txt: First {{word}}", "First {{word}}"),
               ("parts.txt: Second {{word}}", "Second {{word}}"), (f"chat.json: {chat}", chat),
               ("rawlab", "Raw {{word}}")]
    assert [{k: v for k, v in p.items() if k != "metrics"} for p in document["results"]["prompts"]] == [
        {"id": hashlib.sha256(label.encode()).hexdigest(), "raw": raw, "label": label,
         "provider": provider["label"] or provider["id"]}
        for provider in providers for label, raw in prompts]
    assert [p["metrics"]["testPassCount"] for p in document["results"]["prompts"]] == [1] * 20
    labels = [label for label, _ in prompts]
    for record in document["results"]["results"]:
        column = providers.index(record["provider"]) * len(prompts) + labels.index(record["prompt"]["label"])
        assert record["promptIdx"] == column
        assert record["gradingResult"]["componentResults"][0]["assertion"] == {
            "type": "not-contains", "value": "zzz", "weight": 2, "metric": "Clean"}
    streamed = json_lines((tmp_path / "results.jsonl").read_text(encoding="utf-8"))
    assert sorted(json.dumps(r["provider"], sort_keys=True) for r in streamed) == sorted(
        json.dumps(r["provider"], sort_keys=True) for r in document["results"]["results"])
