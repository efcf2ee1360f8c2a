"""Messages that point the right way: what a server actually did, where a bad setting came from, and only
commands and flags that exist."""

from __future__ import annotations

from pathlib import Path

from tests.test_cli import json_lines, workbench

SUITE = """\
prompts:
  - "Say {{word}} to {{name}}"
targets: [fake/a@tokens=2]
tests:
  - description: own name
    vars: {word: hello, name: Ada}
    assert:
      - type: not-contains
        value: zzzqqq
  - description: no name
    vars: {word: bye}
    assert:
      - type: not-contains
        value: zzzqqq
"""


def test_eval_var_fills_a_missing_variable_the_hint_names(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    missing = workbench("eval", str(suite), cwd=tmp_path)
    assert missing.returncode == 2 and "needs a value for name" in missing.stderr
    assert "--var name=" in missing.stderr  # the hint names a flag eval has
    ran = workbench("eval", str(suite), "--var", "name=Grace", "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json_lines(ran.stdout)[-1]["runs"] == 2


def test_eval_var_wins_over_the_test_s_own_value(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    ran = workbench("eval", str(suite), "--var", "name=Grace", "--var", "word=hi", "--report", "json", "--json",
                    cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    prompts = [line.strip() for line in ran.stdout.splitlines() if '"prompt_text"' in line]
    assert prompts == ['"prompt_text": "user: Say hi to Grace",'] * 2  # every test got the flag's values
    bad = workbench("eval", str(suite), "--var", "oops", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("workbench: --var oops: expected KEY=VALUE")
