"""Input the command line refuses before any call: one line on stderr (and a hint), exit 2, nothing sent."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.test_cli import json_lines, workbench

SUITE = """\
prompts:
  - "Say {{word}}"
tests:
  - vars: {word: hello}
    assert:
      - type: not-contains
        value: zzzqqq
"""


def refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2, nothing on stdout, one error line (and its hint) on stderr naming ``words``."""
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) <= 2 and (len(lines) == 1 or lines[1].startswith("  hint: ")), lines
    assert "Traceback" not in result.stderr and "pydantic" not in result.stderr
    for word in words:
        assert word in lines[0], lines


def no_calls_traced() -> None:
    assert not Path(os.environ["WORKBENCH_TRACES"]).exists()


@pytest.mark.parametrize(("args", "stdin"), [
    (("run", ""), None),
    (("run", "  \n\t"), None),
    (("run", "-"), ""),
    (("run",), ""),
    (("run", "-"), "\n\n"),
], ids=["empty-argument", "blank-argument", "empty-stdin-dash", "empty-piped-stdin", "blank-stdin"])
def test_an_empty_prompt_is_refused_and_nothing_is_sent(args: tuple[str, ...], stdin: str | None) -> None:
    result = workbench(*args, "-m", "fake/a@tokens=2", "--json", stdin=stdin)
    refused(result, "the prompt is empty")
    no_calls_traced()


def test_an_empty_prompt_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    refused(workbench("run", "-f", str(empty), "-m", "fake/a"), "the prompt is empty", str(empty))


@pytest.mark.parametrize(("args", "words"), [
    (("run", "hi", "-m", "fake/a", "--temperature", "5"), ("--temperature", "5", "0 to 2")),
    (("run", "hi", "-m", "fake/a", "--temperature", "nan"), ("--temperature", "nan")),
    (("run", "hi", "-m", "fake/a", "--max-tokens", "-1"), ("--max-tokens", "-1", "1 or more")),
    (("run", "hi", "-m", "fake/a", "--max-tokens", "lots"), ("--max-tokens", "lots")),
    (("run", "hi", "-m", "fake/a", "--top-p", "0"), ("--top-p", "greater than 0")),
    (("tokens", "-m", "fake/a", "--max-tokens", "0", "-"), ("--max-tokens", "0")),
    (("traces", "list", "-n", "-5"), ("-n/--limit", "-5", "1 or more")),
    (("traces", "search", "x", "-n", "0"), ("-n/--limit", "0")),
    (("evals", "list", "--limit", "0"), ("--limit", "0")),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
def test_out_of_range_numbers_are_one_line(args: tuple[str, ...], words: tuple[str, ...]) -> None:
    refused(workbench(*args, stdin="hi"), *words)
    no_calls_traced()


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("--gate", "-1", ("0 to 1",)), ("--gate", "nan", ("0 to 1",)), ("--gate", "5", ("0 to 1",)),
    ("--max-cost", "-1", ("0 or more",)), ("--max-cost", "nan", ("0 or more",)),
    ("--max-cost", "inf", ("0 or more",)),
    ("--concurrency", "0", ("1 to 256",)), ("--concurrency", "5000000", ("1 to 256",)),
    ("--repeat", "0", ("1 or more",)),
])
def test_eval_flags_out_of_range_are_refused_before_the_run(tmp_path: Path, flag: str, value: str,
                                                            words: tuple[str, ...]) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE + "targets: [fake/a@tokens=2]\n")
    refused(workbench("eval", str(suite), flag, value, cwd=tmp_path), flag, value, *words)
    no_calls_traced()


def test_eval_limits_at_their_bounds_run(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE + "targets: [fake/a@tokens=2]\n")
    ran = workbench("eval", str(suite), "--gate", "0", "--max-cost", "0", "--concurrency", "256", "--repeat", "1",
                    "--dry-run", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert '"calls": 1' in ran.stdout.splitlines()[0]  # the pre-flight: one call


def test_eval_targets_given_with_t_run_a_suite_without_targets(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    ran = workbench("eval", str(suite), "-t", "fake/a@tokens=2", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    summary = json_lines(ran.stdout)[-1]
    assert summary["verdict"] == "passed" and summary["runs"] == 1
    without = workbench("eval", str(suite), cwd=tmp_path)
    assert without.returncode == 2 and "the suite has no targets" in without.stderr
    assert "-t" in without.stderr  # the hint names the flag that gives them


def test_keys_set_refuses_an_unknown_provider_and_stores_nothing() -> None:
    result = workbench("keys", "set", "nosuch", "--stdin", stdin="sk-something-0123456789\n")
    refused(result, "unknown provider 'nosuch'")
    assert "openai" in result.stderr  # the hint lists the known ones
    keyring_file = Path(os.environ["WORKBENCH_TEST_KEYRING"])
    assert not keyring_file.exists() or "nosuch" not in json.dumps(json.loads(keyring_file.read_text()))


def test_keys_set_takes_a_provider_the_configuration_adds(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text('[providers.mylab]\nbase_url = "http://127.0.0.1:9/v1"\n'
                                             'key_env = "MYLAB_API_KEY"\n')
    stored = workbench("keys", "set", "mylab", "--stdin", stdin="sk-mylab-0123456789abcdef\n", cwd=tmp_path)
    assert stored.returncode == 0, stored.stderr
    assert "stored the mylab key" in stored.stdout


def test_tokens_refuses_an_unknown_provider() -> None:
    refused(workbench("tokens", "-m", "nosuch/model", "-", stdin="hello"), "unknown provider 'nosuch'")
