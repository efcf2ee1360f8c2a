"""``workbench eval``'s promptfoo options that choose what runs: ``--filter-pattern``, ``-n/--filter-first-n``,
``--filter-failing RUN``, ``--filter-providers``/``--filter-targets``, ``--retry-errors``, and the exit code of a
failed run (``--exit-code-failed``); bad values refused in one line with exit 2, before any call."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.resilience_helpers import requests_for
from tests.test_cli import json_lines, workbench
from workbench.fakeserver.process import FakeServerProcess


def _suite(root: Path, *, providers: str, tests: str) -> Path:
    (root / "evals").mkdir(exist_ok=True)
    suite = root / "evals" / "pick.yaml"
    suite.write_text(f"""prompts:
  - "Write one line about {{{{topic}}}}"
providers:
{providers}
defaultTest:
  assert:
    - type: regex
      value: '\\w+'
tests:
{tests}
""", encoding="utf-8")
    return suite


TESTS = """  - description: apples
    vars: {topic: apples}
  - description: pears
    vars: {topic: pears}
  - description: plums are failing
    vars: {topic: plums}
    assert:
      - type: contains
        value: never-in-a-fake-reply
  - vars: {topic: figs, colour: purple}
"""


def _providers(marker: str) -> str:
    return f"""  - id: fake/one-{marker}@tokens=4
    label: first
  - id: fake/two-{marker}@tokens=4
    label: second"""


def _eval(suite: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return workbench("eval", str(suite), "--json", "--no-cache", *args, cwd=suite.parent.parent, env=env)


def test_filter_pattern_first_n_and_providers_choose_the_cells(tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = _suite(tmp_path, providers=_providers(marker), tests=TESTS)
    env = {"WORKBENCH_FAKE_URL": fake_server.base_url}
    by_pattern = _eval(suite, "--filter-pattern", "^p", env=env)
    assert by_pattern.returncode == 1, by_pattern.stderr  # plums fails
    summary = json_lines(by_pattern.stdout)[-1]
    assert summary["runs"] == 4 and summary["passes"] == 2  # pears and plums on both targets
    assert requests_for(fake_server.base_url, marker) == 4

    # a test without a description is matched by its variables, as key=value
    by_vars = _eval(suite, "--filter-pattern", "colour=purple", "--filter-providers", "second", env=env)
    assert by_vars.returncode == 0, by_vars.stderr
    assert json_lines(by_vars.stdout)[-1]["runs"] == 1
    assert requests_for(fake_server.base_url, f"two-{marker}") == 3 and requests_for(
        fake_server.base_url, f"one-{marker}") == 2

    first = _eval(suite, "-n", "2", "--filter-targets", f"one-{marker}", env=env)
    assert first.returncode == 0, first.stderr
    assert json_lines(first.stdout)[-1]["runs"] == 2  # apples and pears on the first target
    assert requests_for(fake_server.base_url, f"one-{marker}") == 4


def test_filter_failing_runs_only_the_tests_that_failed_in_the_stored_run(
        tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = _suite(tmp_path, providers=_providers(marker), tests=TESTS)
    env = {"WORKBENCH_FAKE_URL": fake_server.base_url}
    full = _eval(suite, env=env)
    assert full.returncode == 1
    first_run = json_lines(full.stdout)[-1]["run"]
    assert requests_for(fake_server.base_url, marker) == 8

    again = _eval(suite, "--filter-failing", "last", env=env)
    summary = json_lines(again.stdout)[-1]
    assert again.returncode == 1 and summary["runs"] == 2 and summary["passes"] == 0  # plums, on both targets
    assert requests_for(fake_server.base_url, marker) == 10

    by_id = _eval(suite, "--filter-failing", str(first_run), "--filter-providers", "first", env=env)
    assert json_lines(by_id.stdout)[-1]["runs"] == 1

    passing = _eval(suite, "--filter-pattern", "apples", env=env)
    assert passing.returncode == 0
    nothing = _eval(suite, "--filter-failing", str(json_lines(passing.stdout)[-1]["run"]), env=env)
    assert nothing.returncode == 0 and "no test failed" in nothing.stderr
    assert requests_for(fake_server.base_url, marker) == 13


def test_retry_errors_calls_only_the_errored_cells_again_in_the_same_run(
        tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    flaky = f"fake/flaky-{marker}@tokens=4,status=400,fail=2,id={marker}"
    providers = f"  - id: {flaky}\n    label: flaky\n  - id: fake/steady-{marker}@tokens=4\n    label: steady"
    suite = _suite(tmp_path, providers=providers, tests=TESTS)
    env = {"WORKBENCH_FAKE_URL": fake_server.base_url}
    first = _eval(suite, "--concurrency", "1", env=env)
    summary = json_lines(first.stdout)[-1]
    assert first.returncode == 1 and summary["runs"] == 8 and summary["passes"] == 4  # 2 errors, plums twice
    assert requests_for(fake_server.base_url, marker) == 8

    dry = _eval(suite, "--retry-errors", "--dry-run", env=env)
    assert dry.returncode == 0 and json_lines(dry.stdout)[0]["preflight"]["calls"] == 2  # type: ignore[index]

    retried = _eval(suite, "--retry-errors", env=env)
    final = json_lines(retried.stdout)[-1]
    assert retried.returncode == 1, retried.stderr  # plums still fails the gate
    assert final["run"] == summary["run"] and final["runs"] == 8 and final["passes"] == 6
    assert requests_for(fake_server.base_url, f"flaky-{marker}") == 6  # only the two errored cells again
    assert requests_for(fake_server.base_url, f"steady-{marker}") == 4

    nothing = _eval(suite, "--retry-errors", env=env)
    assert nothing.returncode == 0 and "no cell errored" in nothing.stderr
    assert requests_for(fake_server.base_url, marker) == 10


def test_exit_code_failed_is_the_exit_code_of_a_failed_run_only(tmp_path: Path) -> None:
    suite = _suite(tmp_path, providers="  - fake/exit@tokens=4", tests=TESTS)
    failed = _eval(suite, "--exit-code-failed", "100")
    assert failed.returncode == 100
    assert json_lines(failed.stdout)[-1]["exit_code"] == 100
    shown = workbench("evals", "show", "last", "--format", "json", cwd=tmp_path)
    assert '"exit_code": 100' in shown.stdout
    assert _eval(suite, "--exit-code-failed", "100", "--filter-pattern", "apples").returncode == 0
    assert _eval(suite).returncode == 1  # the default stays


@pytest.mark.parametrize(("args", "words"), [
    (("--filter-pattern", "(unclosed"), ("--filter-pattern", "not a regular expression")),
    (("--filter-providers", "[z-a]"), ("--filter-providers", "not a regular expression")),
    (("-n", "0"), ("--filter-first-n", "whole number")),
    (("--filter-first-n", "two"), ("--filter-first-n", "whole number")),
    (("--exit-code-failed", "300"), ("--exit-code-failed", "1 to 255")),
    (("--retry-errors", "--resume", "X"), ("--resume", "not allowed")),
    (("--filter-pattern", "no-such-test"), ("no test is left",)),
    (("--filter-providers", "no-such-target"), ("no target matches", "no-such-target")),
    (("--filter-failing", "NOSUCHRUN"), ("no eval run", "NOSUCHRUN")),
    (("--filter-failing", "last"), ("no earlier eval run",)),
    (("--retry-errors",), ("no earlier eval run",)),
])
def test_bad_values_are_refused_in_one_line_before_any_call(
        tmp_path: Path, fake_server: FakeServerProcess, args: tuple[str, ...], words: tuple[str, ...]) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = _suite(tmp_path, providers=_providers(marker), tests=TESTS)
    result = _eval(suite, *args, env={"WORKBENCH_FAKE_URL": fake_server.base_url})
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr and lines[0].startswith("workbench: "), result.stderr
    assert all(word in lines[0] for word in words), result.stderr
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("  hint: ")), result.stderr
    assert requests_for(fake_server.base_url, marker) == 0


def test_grader_replaces_the_suites_judge_but_not_a_tests_own(tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    (tmp_path / "evals").mkdir()
    suite = tmp_path / "evals" / "graded.yaml"
    suite.write_text(f"""prompts: ["Say something about {{{{topic}}}}"]
providers: [fake/model-{marker}@tokens=4]
defaultTest:
  options:
    provider: fake/suite-judge-{marker}
tests:
  - description: graded by the suite's judge
    vars: {{topic: a}}
    assert:
      - type: llm-rubric
        value: is kind
  - description: graded by its own
    vars: {{topic: b}}
    options:
      provider: fake/own-judge-{marker}
    assert:
      - type: llm-rubric
        value: is kind
""", encoding="utf-8")
    result = _eval(suite, "--grader", f"fake/given-judge-{marker}", env={"WORKBENCH_FAKE_URL": fake_server.base_url})
    assert json_lines(result.stdout)[-1]["status"] == "done", result.stderr
    assert requests_for(fake_server.base_url, f"given-judge-{marker}") == 1
    assert requests_for(fake_server.base_url, f"own-judge-{marker}") == 1
    assert requests_for(fake_server.base_url, f"suite-judge-{marker}") == 0


def test_failing_tests_that_the_suite_no_longer_has_leave_nothing_to_run(tmp_path: Path) -> None:
    suite = _suite(tmp_path, providers="  - fake/gone@tokens=4", tests=TESTS)
    assert _eval(suite).returncode == 1  # plums failed
    suite.write_text(suite.read_text(encoding="utf-8").replace("plums are failing", "plums renamed"), encoding="utf-8")
    result = _eval(suite, "--filter-failing", "last")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "workbench: evals/pick.yaml: no test is left by the --filter-* options"
