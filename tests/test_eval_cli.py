"""``workbench eval`` end to end: pre-flight, gate and regression exit codes, budget stop and resume, reports,
and the stored runs (``workbench evals``)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.resilience_helpers import requests_for
from tests.test_cli import json_lines, workbench
from workbench.fakeserver.process import FakeServerProcess

PRICED = """
[prices."fake/*"]
input_per_mtok = 1000
output_per_mtok = 2000
"""


def _workspace(tmp_path: Path, check: str, *, tests: int = 2, marker: str = "") -> Path:
    (tmp_path / "workbench.toml").write_text(PRICED, encoding="utf-8")
    (tmp_path / "evals").mkdir(exist_ok=True)
    cases = "\n".join(f"  - description: case {i}\n    vars: {{topic: 'topic {i}'}}" for i in range(tests))
    suite = tmp_path / "evals" / "smoke.yaml"
    suite.write_text(f"""description: smoke
prompts:
  - "Write one line about {{{{topic}}}}"
providers:
  - id: fake/{marker or 'smoke'}@tokens=6
    label: fast
defaultTest:
  assert:
    - type: finish-reason
      value: stop
{check}
tests:
{cases}
""", encoding="utf-8")
    return suite


PASSING = "    - type: regex\n      value: '\\w+'"
FAILING = "    - type: contains\n      value: never-in-a-fake-reply"


def _eval(suite: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return workbench("eval", str(suite), "--json", *args, cwd=suite.parent.parent, env=env)


def test_a_passing_suite_exits_0_with_preflight_and_summary(tmp_path: Path) -> None:
    suite = _workspace(tmp_path, PASSING)
    result = _eval(suite)
    assert result.returncode == 0, result.stderr
    preflight, summary = json_lines(result.stdout)
    assert preflight["preflight"]["calls"] == 2 and preflight["preflight"]["cached"] == 0
    assert preflight["preflight"]["input_tokens"] > 0 and preflight["preflight"]["cost_high_usd"] > 0
    assert summary["status"] == "done" and summary["passes"] == 2 and summary["pass_rate"] == 1
    assert summary["cost_usd"] > 0 and summary["failures"] == []


def test_dry_run_prints_the_preflight_and_calls_nothing(tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = _workspace(tmp_path, PASSING, tests=3, marker=marker)
    result = workbench("eval", str(suite), "--dry-run", "--repeat", "2", cwd=tmp_path,
                       env={"WORKBENCH_FAKE_URL": fake_server.base_url})
    assert result.returncode == 0, result.stderr
    assert "smoke: 6 calls (0 cached)" in result.stderr and "cost $" in result.stderr
    assert requests_for(fake_server.base_url, marker) == 0


def test_the_gate_fails_the_run_under_its_rate(tmp_path: Path) -> None:
    suite = _workspace(tmp_path, FAILING)
    failed = _eval(suite, "--gate", "0.9")
    assert failed.returncode == 1
    summary = json_lines(failed.stdout)[-1]
    assert summary["pass_rate"] == 0 and any("0.9" in r or "90" in r for r in summary["failures"])  # type: ignore[union-attr]
    assert _eval(suite, "--gate", "0").returncode == 0


def test_the_grid_is_followed_by_why_each_failing_cell_failed(tmp_path: Path) -> None:
    suite = _workspace(tmp_path, FAILING, tests=7)
    failed = workbench("eval", str(suite), cwd=tmp_path)
    assert failed.returncode == 1
    why = [line for line in failed.stderr.splitlines() if line.startswith(("  ✗ ", "  … "))]
    assert why[0].startswith("  ✗ case 0 · fast: contains: expected output containing 'never-in-a-fake-reply'; found ")
    assert len(why) == 6 and why[5].startswith("  … 2 more failing cells: `workbench evals show ")
    keyless = workbench("eval", str(suite), "-t", "groq/llama-3.3-70b", "--filter-first-n", "1", cwd=tmp_path)
    assert keyless.returncode == 1
    assert "  ✗ case 0 · groq/llama-3.3-70b: error: groq/llama-3.3-70b: no API key for groq" in keyless.stderr


def test_an_unknown_provider_is_refused_before_the_run(tmp_path: Path) -> None:
    suite = _workspace(tmp_path, PASSING)
    for given in ("nosuch/model", "bedrock:anthropic.claude"):
        refused = workbench("eval", str(suite), "-t", given, cwd=tmp_path)
        assert refused.returncode == 2 and refused.stdout == "", refused.stderr
        assert refused.stderr.startswith("workbench: ") and "Traceback" not in refused.stderr
    text = suite.read_text(encoding="utf-8")
    suite.write_text(text.replace("fake/", "nosuch/", 1), encoding="utf-8")
    written = workbench("eval", str(suite), cwd=tmp_path)
    assert written.returncode == 2 and "unknown provider 'nosuch'" in written.stderr, written.stderr
    assert f"{suite.name}:" in written.stderr.splitlines()[0]  # at the line that names it


@pytest.mark.parametrize(("given", "said"), [("evals/smoke.yml", "no suite file evals/smoke.yml"),
                                             ("evals", "evals is a folder, not a suite file")])
def test_a_suite_path_that_names_no_file_is_one_line_naming_the_suites_there(
        tmp_path: Path, given: str, said: str) -> None:
    _workspace(tmp_path, PASSING)
    result = workbench("eval", given, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"workbench: {said}",
                                          "  hint: check the path; the workspace's suites: evals/smoke.yaml"]


def test_a_regression_against_the_last_run_fails_and_names_the_test(tmp_path: Path) -> None:
    suite = _workspace(tmp_path, PASSING)
    assert _eval(suite).returncode == 0
    _workspace(tmp_path, FAILING)
    result = _eval(suite, "--compare", "last")
    assert result.returncode == 1
    summary = json_lines(result.stdout)[-1]
    assert summary["regressions"] == 2
    assert any("case 0" in reason for reason in summary["failures"])  # type: ignore[union-attr]


def test_budget_stop_exits_3_and_resume_finishes_without_repeating_calls(
        tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = _workspace(tmp_path, PASSING, tests=8, marker=marker)
    env = {"WORKBENCH_FAKE_URL": fake_server.base_url}
    stopped = _eval(suite, "--max-cost", "0.01", "--concurrency", "1", env=env)
    assert stopped.returncode == 3, stopped.stderr
    summary = json_lines(stopped.stdout)[-1]
    assert summary["status"] == "stopped" and str(summary["stop_reason"]).startswith("budget")
    assert "--resume" in stopped.stderr
    called = requests_for(fake_server.base_url, marker)
    assert 0 < called < 8

    resumed = _eval(suite, "--resume", str(summary["run"]), env=env)
    assert resumed.returncode == 0, resumed.stderr
    preflight, final = json_lines(resumed.stdout)
    assert preflight["preflight"]["calls"] == 8 - called  # type: ignore[index]
    assert final["run"] == summary["run"] and final["runs"] == 8 and final["status"] == "done"
    assert requests_for(fake_server.base_url, marker) == 8


def test_reports_are_written_in_every_format(tmp_path: Path) -> None:
    suite = _workspace(tmp_path, FAILING)
    out = tmp_path / "reports"
    result = _eval(suite, "--report", "md", "--report", "junit", "--report", "json", "--report", "html",
                   "--out", str(out))
    assert result.returncode == 1
    files = {p.suffix: p for p in out.iterdir()}
    assert set(files) == {".md", ".xml", ".json", ".html"}
    junit = ET.parse(files[".xml"]).getroot()
    assert sum(int(s.get("tests", 0)) for s in junit.iter("testsuite")) == 2
    assert sum(int(s.get("failures", 0)) for s in junit.iter("testsuite")) == 2
    assert "case 0" in files[".md"].read_text(encoding="utf-8")


def test_stored_runs_list_show_and_diff(tmp_path: Path) -> None:
    suite = _workspace(tmp_path, PASSING)
    assert _eval(suite).returncode == 0
    _workspace(tmp_path, FAILING)
    assert _eval(suite).returncode == 1
    listed = workbench("evals", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    runs = json_lines(listed.stdout)
    assert [r["suite"] for r in runs] == ["smoke", "smoke"] and runs[0]["id"] > runs[1]["id"]  # type: ignore[operator]
    shown = workbench("evals", "show", "last", cwd=tmp_path)
    assert shown.returncode == 0 and "case 1" in shown.stdout
    diff = workbench("evals", "diff", str(runs[1]["id"]), "last", "--json", cwd=tmp_path)
    assert diff.returncode == 1
    assert {row["change"] for row in json_lines(diff.stdout)} == {"new-failure"}
    human = workbench("evals", "diff", str(runs[1]["id"]), "last", cwd=tmp_path)
    assert human.stdout.splitlines()[-1].endswith(f"{runs[1]['id']} → {runs[0]['id']}: 2 new-failure"), human.stdout
    same = workbench("evals", "diff", "last", "last", cwd=tmp_path)  # nothing changed: it still says so
    assert same.returncode == 0 and same.stdout.strip().endswith(" unchanged"), same.stdout


@pytest.mark.parametrize(("content", "where"), [
    ("prompts: [hi]\nproviders: [fake/x]\ntests:\n  - assert:\n      - type: is-sql\n        value: x\n",
     "smoke.yaml:5"),
    ("prompts: [hi\n", "smoke.yaml:"),
])
def test_a_bad_suite_exits_2_with_file_and_line(tmp_path: Path, content: str, where: str) -> None:
    suite = tmp_path / "smoke.yaml"
    suite.write_text(content, encoding="utf-8")
    result = workbench("eval", str(suite), cwd=tmp_path)
    assert result.returncode == 2
    assert where in result.stderr and "Traceback" not in result.stderr


def test_export_report_writes_stable_files_and_one_commit(tmp_path: Path) -> None:
    import subprocess

    suite = _workspace(tmp_path, PASSING)
    assert _eval(suite).returncode == 0
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "ci@example.com"], ["config", "user.name", "CI"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True)
    first = workbench("export", "report", "last", "--to", str(repo), "--commit", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    report = repo / "evals" / "reports" / "smoke.md"
    exported = report.read_bytes()
    assert b"case 0" in exported and (repo / "evals" / "reports" / "smoke.json").is_file()
    again = workbench("export", "report", "last", "--to", str(repo), "--commit", cwd=tmp_path)
    assert again.returncode == 0 and "nothing to commit" in again.stdout
    assert report.read_bytes() == exported
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%s"], capture_output=True, text=True).stdout
    assert log.splitlines() == [line for line in log.splitlines() if line.startswith("evals: smoke run ")]
    assert len(log.splitlines()) == 1 and "2/2 passed (100%)" in log


def test_an_existing_promptfoo_config_runs_as_is(tmp_path: Path) -> None:
    import shutil

    data = Path(__file__).parent / "data"
    for path in [data / "promptfooconfig.yaml", *data.glob("eval_*")]:
        shutil.copy(path, tmp_path)
    result = workbench("eval", "promptfooconfig.yaml", "--target", "fake/pf@tokens=10", "--repeat", "1", "--json",
                       cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    preflight, summary = json_lines(result.stdout)
    assert preflight["preflight"]["calls"] == summary["runs"] == 10  # 5 tests × 2 prompts × 1 target
    assert summary["status"] == "done" and summary["failures"]
    assert "Traceback" not in result.stderr
