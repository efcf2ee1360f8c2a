"""``workbench eval SUITE --batch`` end to end against the fake server's batch APIs: submit → poll → collect → grade
on OpenAI's (Chat Completions and Responses) and Anthropic's, priced at the batch rate and traced; an expired and a
partially failed batch (each request's failure its cell's error); Ctrl-C and a process killed outright, resumed
with ``evals resume``."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from tests.test_cli import json_lines, workbench
from workbench.core.evals.batch_api import LIMITS
from workbench.core.evals.batch_run import custom_id, split
from workbench.fakeserver.process import FakeServerProcess

PRICES = """
[prices."fake/*"]
input_per_mtok = 1000
output_per_mtok = 2000
[prices."fake-anthropic/*"]
input_per_mtok = 1000
output_per_mtok = 2000
[prices."fake-responses/*"]
input_per_mtok = 1000
output_per_mtok = 2000
"""


def _suite(root: Path, *targets: str, check: str = "regex", value: str = "\\w+") -> Path:
    (root / "workbench.toml").write_text(PRICES, encoding="utf-8")
    (root / "evals").mkdir(exist_ok=True)
    providers = "\n".join(f"  - id: {target}" for target in targets)
    suite = root / "evals" / "batchy.yaml"
    suite.write_text(f"""description: batchy
prompts:
  - "Write one line about {{{{topic}}}}"
providers:
{providers}
defaultTest:
  assert:
    - type: {check}
      value: '{value}'
tests:
  - vars: {{topic: cats}}
  - vars: {{topic: dogs}}
  - vars: {{topic: owls}}
""", encoding="utf-8")
    return suite


def _eval(suite: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return workbench("eval", str(suite), "--json", *args, cwd=suite.parent.parent, env=env)


def _events(lines: list[dict[str, object]], kind: str) -> list[dict[str, object]]:
    return [line["batch"] for line in lines if isinstance(line.get("batch"), dict)  # type: ignore[misc]
            and line["batch"]["event"] == kind]  # type: ignore[index]


def _calls(root: Path, run_id: str) -> list[sqlite3.Row]:
    with sqlite3.connect(os.environ["WORKBENCH_TRACES"]) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT c.*, (SELECT group_concat(tag) FROM call_tags t WHERE t.call_id = c.id) AS tags "
                            "FROM calls c WHERE eval_run_id = ? ORDER BY id", (run_id,)).fetchall()


def _results(root: Path, run_id: str) -> list[tuple[str, str, bool, str | None]]:
    store = Path(os.environ["WORKBENCH_TRACES"]).with_name("evals.db")
    with sqlite3.connect(store) as conn:
        rows = conn.execute("SELECT test, target, passed, json_extract(observation, '$.error') FROM eval_results "
                            "WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
    return [(test, target, bool(passed), error) for test, target, passed, error in rows]


def test_a_suite_runs_through_both_batch_apis_graded_priced_at_half_and_traced(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, "fake/gpt-4o-mini@tokens=5,batch_polls=1", "fake-anthropic/claude@tokens=4",
                   "fake-gemini/gem@tokens=3", check="icontains", value="silver")
    result = _eval(suite, fake_env, "--batch")
    assert result.returncode in (0, 1), result.stderr
    lines = json_lines(result.stdout)
    plan = next(line["batch_plan"] for line in lines if "batch_plan" in line)
    assert plan["batched"] == 6 and plan["batches"] == 2 and plan["online"] == {"fake-gemini/gem@tokens=3": 3}
    online_low, online_high = plan["online_cost_usd"]  # type: ignore[misc]
    assert plan["batch_cost_usd"] == [pytest.approx(online_low / 2), pytest.approx(online_high / 2)]
    assert "at the batch rate (50% of the online price)" in result.stderr and "saves $" in result.stderr
    assert "no batch API: fake-gemini/gem@tokens=3" in result.stderr
    submitted = _events(lines, "submitted")
    assert sorted(event["target"] for event in submitted) == ["fake-anthropic/claude@tokens=4",  # type: ignore[type-var]
                                                              "fake/gpt-4o-mini@tokens=5,batch_polls=1"]
    states = [(event["target"], event["state"]) for event in _events(lines, "state")]
    assert ("fake/gpt-4o-mini@tokens=5,batch_polls=1", "in_progress") in states  # a line per change of state
    assert ("fake/gpt-4o-mini@tokens=5,batch_polls=1", "completed") in states
    assert ("fake-anthropic/claude@tokens=4", "ended") in states and len(states) == 3
    assert len(_events(lines, "collected")) == 2
    summary = lines[-1]
    assert summary["runs"] == 9 and summary["status"] == "done"

    online = _eval(suite, fake_env, "--no-cache", "-t", "fake/gpt-4o-mini@tokens=5,batch_polls=1", "-t",
                   "fake-anthropic/claude@tokens=4")
    online_summary = json_lines(online.stdout)[-1]
    run_id = str(summary["run"])
    graded = [r for r in _results(tmp_path, run_id) if not r[1].startswith("fake-gemini")]
    assert graded == _results(tmp_path, str(online_summary["run"]))  # graded the same way, no cell in error
    assert {r[2] for r in graded} == {True, False}
    calls = _calls(tmp_path, run_id)
    batched = [call for call in calls if "batch" in (call["tags"] or "")]
    assert len(batched) == 6 and all(call["status"] == "ok" and call["eval_cell"] for call in batched)
    assert {call["output_tokens"] for call in batched} == {4, 5}
    online_calls = _calls(tmp_path, str(online_summary["run"]))
    assert sum(c["cost_usd"] for c in batched) == pytest.approx(sum(c["cost_usd"] for c in online_calls) / 2)
    assert summary["cost_usd"] == pytest.approx(online_summary["cost_usd"] / 2)  # type: ignore[operator]


def test_responses_targets_go_through_openais_batch_api_as_responses_requests(
        tmp_path: Path, fake_env: dict[str, str], fake_server: FakeServerProcess) -> None:
    target = "fake-responses/o4-mini@tokens=5,reasoning=3,batch_polls=1"
    suite = _suite(tmp_path, target, "fake-gemini/gem@tokens=3", check="icontains", value="silver")
    result = _eval(suite, fake_env, "--batch")
    assert result.returncode in (0, 1), result.stderr
    lines = json_lines(result.stdout)
    plan = next(line["batch_plan"] for line in lines if "batch_plan" in line)
    assert plan["batched"] == 3 and plan["routes"] == {target: "OpenAI Batch API /v1/responses"}
    assert f"3 cell(s) in 1 new batch(es) ({target}: OpenAI Batch API /v1/responses)" in result.stderr
    [submitted] = _events(lines, "submitted")
    batch = httpx2.get(f"{fake_server.base_url}/v1/batches/{submitted['id']}").json()
    assert batch["endpoint"] == "/v1/responses"
    content = httpx2.get(f"{fake_server.base_url}/v1/files/{batch['input_file_id']}/content").text
    requests = [json.loads(line) for line in content.splitlines()]
    assert [request["url"] for request in requests] == ["/v1/responses"] * 3
    assert all("stream" not in request["body"] and request["body"]["input"] for request in requests)
    states = [e["state"] for e in _events(lines, "state") if e["target"] == target]
    assert states == ["in_progress", "completed"]
    summary = lines[-1]
    assert summary["runs"] == 6 and summary["status"] == "done"

    online = _eval(suite, fake_env, "--no-cache", "-t", target)
    online_summary = json_lines(online.stdout)[-1]
    graded = [r for r in _results(tmp_path, str(summary["run"])) if r[1] == target]
    assert graded == _results(tmp_path, str(online_summary["run"])) and {r[2] for r in graded} == {True, False}
    batched = [call for call in _calls(tmp_path, str(summary["run"])) if "batch" in (call["tags"] or "")]
    online_calls = _calls(tmp_path, str(online_summary["run"]))
    assert len(batched) == 3 and all(call["status"] == "ok" and call["finish_reason"] == "stop" for call in batched)
    assert [(c["output_tokens"], c["reasoning_tokens"]) for c in batched] == [
        (c["output_tokens"], c["reasoning_tokens"]) for c in online_calls] and batched[0]["reasoning_tokens"] == 3
    assert sum(c["cost_usd"] for c in batched) == pytest.approx(sum(c["cost_usd"] for c in online_calls) / 2)


def test_an_expired_and_a_partially_failed_batch_fail_only_their_cells(tmp_path: Path,
                                                                        fake_env: dict[str, str]) -> None:
    expiring, failing = "fake/gpt-4o-mini@tokens=3,batch_expire=1", "fake-anthropic/claude@tokens=3,batch_errors=2"
    suite = _suite(tmp_path, expiring, failing)
    result = _eval(suite, fake_env, "--batch")
    assert result.returncode == 1, result.stderr  # failed cells, not a failed run
    lines = json_lines(result.stdout)
    summary = lines[-1]
    assert summary["status"] == "done" and summary["runs"] == 6 and summary["passes"] == 3
    states = {event["target"]: event["state"] for event in _events(lines, "state")}
    assert states == {expiring: "expired", failing: "ended"}
    results = _results(tmp_path, str(summary["run"]))
    errors = {(test, target): error for test, target, _, error in results}
    assert "batch request expired" in str(errors[("topic=owls", expiring)])
    assert errors[("topic=cats", expiring)] is None and errors[("topic=dogs", expiring)] is None
    anthropic = [error for (_, target), error in errors.items() if target.startswith("fake-anthropic")]
    assert ["HTTP 529 overloaded_error" in str(error) for error in anthropic] == [True, True, False]
    report = workbench("evals", "show", str(summary["run"]), cwd=tmp_path)  # the stored report says what happened
    assert report.returncode == 0 and "batch request expired" in report.stdout and "overloaded" in report.stdout
    assert f"(openai, {expiring}): expired · 3 requests, 2 succeeded, 1 failed" in report.stdout.replace("\\", "")
    assert f"(anthropic, {failing}): ended · 3 requests, 1 succeeded, 2 failed" in report.stdout.replace("\\", "")
    document = json.loads(workbench("evals", "show", str(summary["run"]), "--format", "json", cwd=tmp_path).stdout)
    assert sorted((b["api"], b["state"], b["failed"]) for b in document["batches"]) == [("anthropic", "ended", 2),
                                                                                        ("openai", "expired", 1)]
    calls = _calls(tmp_path, str(summary["run"]))
    assert sorted(call["error_class"] or "ok" for call in calls) == ["batch_expired", "http_529", "http_529", "ok",
                                                                      "ok", "ok"]


def _started(suite: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, object]]:
    """``eval --batch --json`` running in a child, once it said it submitted its batch."""
    child = subprocess.Popen([sys.executable, "-m", "workbench", "eval", str(suite), "--batch", "--json"],
                             cwd=suite.parent.parent, env={**os.environ, **env}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for line in child.stdout:
        event = json.loads(line).get("batch")
        if event and event["event"] == "submitted":
            return child, event
    child.kill()
    raise AssertionError(f"no batch submitted: {child.communicate()[1]}")


def test_a_run_killed_while_its_batch_waits_is_resumed_and_collected(tmp_path: Path, fake_env: dict[str, str],
                                                                     fake_server: FakeServerProcess) -> None:
    suite = _suite(tmp_path, "fake-anthropic/claude@tokens=3,batch_polls=100000")
    child, event = _started(suite, fake_env)
    child.send_signal(signal.SIGKILL)
    child.communicate()
    runs = json_lines(workbench("evals", "list", "--json", cwd=tmp_path).stdout)
    assert runs[0]["status"] == "stopped" and runs[0]["stop_reason"] == "interrupted"
    assert httpx2.post(f"{fake_server.base_url}/_fake/batches/end").json()["ended"] >= 1
    resumed = workbench("evals", "resume", str(runs[0]["id"]), "--json", cwd=tmp_path, env=fake_env)
    assert resumed.returncode == 0, resumed.stderr
    lines = json_lines(resumed.stdout)
    assert [e["id"] for e in _events(lines, "collected")] == [event["id"]] and not _events(lines, "submitted")
    assert lines[-1]["run"] == runs[0]["id"] and lines[-1]["passes"] == 3 and lines[-1]["status"] == "done"
    assert len([call for call in _calls(tmp_path, str(runs[0]["id"])) if "batch" in call["tags"]]) == 3


def test_ctrl_c_leaves_the_batch_running_and_says_how_to_resume(tmp_path: Path, fake_env: dict[str, str],
                                                                fake_server: FakeServerProcess) -> None:
    suite = _suite(tmp_path, "fake/gpt-4o-mini@tokens=3,batch_polls=100000")
    child, _ = _started(suite, fake_env)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130
    run_id = json_lines(workbench("evals", "list", "--json", cwd=tmp_path).stdout)[0]["id"]
    assert f"workbench evals resume {run_id}" in err and "Traceback" not in err
    httpx2.post(f"{fake_server.base_url}/_fake/batches/end")
    resumed = workbench("evals", "resume", str(run_id), cwd=tmp_path, env=fake_env)
    assert resumed.returncode == 0, resumed.stderr
    assert "completed · 3/3 done" in resumed.stderr and "collected 3 result(s)" in resumed.stderr


def test_requests_are_split_within_each_apis_limits() -> None:
    small = [(custom_id(str(i)), {}) for i in range(LIMITS["openai"].requests + 1)]
    assert [len(part) for part in split(small, LIMITS["openai"], lambda cid, body: 100)] == [50_000, 1]
    big = [(custom_id(str(i)), {}) for i in range(3)]
    parts = split(big, LIMITS["anthropic"], lambda cid, body: 100 * 1024 * 1024)  # 256 MB: two per batch
    assert [len(part) for part in parts] == [2, 1]
    assert len({custom_id(str(i)) for i in range(1000)}) == 1000 and len(custom_id("x")) <= 64


def test_a_batch_the_provider_no_longer_knows_fails_its_cells_on_resume(tmp_path: Path,
                                                                       fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, "fake/gpt-4o-mini@tokens=3,batch_polls=100000")
    child, _ = _started(suite, fake_env)
    child.send_signal(signal.SIGKILL)
    child.communicate()
    with sqlite3.connect(Path(os.environ["WORKBENCH_TRACES"]).with_name("evals.db")) as conn:
        conn.execute("UPDATE eval_batches SET batch_id = 'batch_deleted'")
    resumed = workbench("evals", "resume", "last", "--json", cwd=tmp_path, env=fake_env)
    assert resumed.returncode == 1, resumed.stderr  # its cells failed; the run is done
    summary = json_lines(resumed.stdout)[-1]
    assert summary["status"] == "done" and summary["passes"] == 0 and summary["runs"] == 3
    assert "batch batch_deleted (fake/gpt-4o-mini@tokens=3,batch_polls=100000): missing" in resumed.stderr
    errors = [error for _, _, _, error in _results(tmp_path, str(summary["run"]))]
    assert all("batch batch_deleted is not known to the provider" in str(error) for error in errors)


def test_max_cost_batches_only_the_cells_whose_worst_case_fits_the_budget(tmp_path: Path,
                                                                          fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, "fake/gpt-4o-mini@tokens=3")  # worst case 4096 output tokens: $4.10 at the batch rate
    result = _eval(suite, fake_env, "--batch", "--max-cost", "9")
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    plan = next(line["batch_plan"] for line in lines if "batch_plan" in line)
    assert (plan["batched"], plan["over_budget"]) == (2, 1)
    assert "1 cell(s) online under --max-cost" in result.stderr
    summary = lines[-1]
    assert summary["status"] == "done" and summary["passes"] == 3
    calls = _calls(tmp_path, str(summary["run"]))
    assert sorted("batch" in call["tags"] for call in calls) == [False, True, True]


def test_a_run_on_targets_given_with_t_resumes_on_those_targets(tmp_path: Path, fake_env: dict[str, str],
                                                                fake_server: FakeServerProcess) -> None:
    suite = _suite(tmp_path, "fake/suite-own@tokens=3")
    target = "fake-anthropic/given@tokens=2,batch_polls=100000"
    child = subprocess.Popen([sys.executable, "-m", "workbench", "eval", str(suite), "--batch", "--json", "-t", target],
                             cwd=tmp_path, env={**os.environ, **fake_env}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert any(json.loads(line).get("batch", {}).get("event") == "submitted" for line in child.stdout)
    child.kill()
    child.communicate()
    httpx2.post(f"{fake_server.base_url}/_fake/batches/end")
    resumed = workbench("evals", "resume", "last", "--json", cwd=tmp_path, env=fake_env)
    assert resumed.returncode == 0, resumed.stderr
    summary = json_lines(resumed.stdout)[-1]
    assert summary["runs"] == 3 and {target for _, target, _, _ in _results(tmp_path, str(summary["run"]))} == {target}


def test_a_dry_run_says_what_the_batches_would_hold_and_save_and_submits_nothing(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, "fake/gpt-4o-mini@tokens=3", "fake-gemini/g@tokens=3")
    result = _eval(suite, fake_env, "--batch", "--dry-run")
    assert result.returncode == 0, result.stderr
    preflight, plan = json_lines(result.stdout)
    assert preflight["preflight"]["calls"] == 6
    assert plan["batch_plan"]["batched"] == 3 and plan["batch_plan"]["online"] == {"fake-gemini/g@tokens=3": 3}
    assert "saves $" in result.stderr
    assert json_lines(workbench("evals", "list", "--json", cwd=tmp_path).stdout) == []  # no run, no batch


def test_evals_cancel_cancels_a_left_runs_batches_and_resume_fails_their_cells(tmp_path: Path,
                                                                              fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, "fake/gpt-4o-mini@tokens=3,batch_polls=100000")
    child, event = _started(suite, fake_env)
    child.send_signal(signal.SIGINT)
    child.communicate(timeout=60)
    cancelled = workbench("evals", "cancel", "last", "--json", cwd=tmp_path, env=fake_env)
    assert cancelled.returncode == 0, cancelled.stderr
    [state] = _events(json_lines(cancelled.stdout), "state")
    assert (state["id"], state["state"]) == (event["id"], "cancelling")
    assert "1 batch(es) of run" in cancelled.stderr and "preflight" not in cancelled.stdout
    resumed = workbench("evals", "resume", "last", "--json", cwd=tmp_path, env=fake_env)
    assert resumed.returncode == 1, resumed.stderr  # its cells failed: cancelled before they ran
    summary = json_lines(resumed.stdout)[-1]
    assert summary["status"] == "done" and summary["runs"] == 3 and summary["passes"] == 0
    assert all("batch request canceled" in str(error) for _, _, _, error in _results(tmp_path, str(summary["run"])))
    again = workbench("evals", "cancel", "last", cwd=tmp_path, env=fake_env)
    assert again.returncode == 2 and "already finished: nothing is left to resume or cancel" in again.stderr
    assert "drop --resume" not in again.stderr  # `evals cancel` has no --resume to drop


def test_batch_answers_are_cached_as_online_ones(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, "fake-anthropic/claude@tokens=3")
    assert _eval(suite, fake_env, "--batch").returncode == 0
    again = json_lines(_eval(suite, fake_env, "--dry-run").stdout)[0]["preflight"]
    assert (again["calls"], again["cached"]) == (0, 3)  # a later run calls none of them
