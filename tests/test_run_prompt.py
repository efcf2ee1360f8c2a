"""``workbench run --prompt NAME[@REF]``: the prompt file renders the request and every trace names its version."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import prompt_workspace
from tests.test_cli import json_lines, workbench

GREET = """\
name: greet
targets: [fake/a@tokens=20]
params: {max_tokens: 3}
system: Be kind.
messages:
  - role: user
    content: "Say hello to {{name}} in {{language}}."
variables:
  name: {description: who to greet}
  language: {default: French}
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return prompt_workspace(tmp_path, greet=GREET)


def test_traces_carry_the_prompt_version_and_stats_group_by_it(ws: Path) -> None:
    first = workbench("run", "--prompt", "greet", "--var", "name=Ada", "--json", cwd=ws)
    assert first.returncode == 0, first.stderr
    row = json_lines(first.stdout)[0]
    assert (row["prompt"], row["prompt_version"], row["target"]) == ("greet", 1, "fake/a@tokens=20")
    assert (ws / ".workbench" / "prompts" / "greet" / "1.yaml").is_file()  # the working file became version 1

    (ws / "prompts" / "greet.yaml").write_text(GREET.replace("Be kind.", "Be brief."))
    second = workbench("run", "--prompt", "greet", "--var", "name=Ada", "--json", cwd=ws)
    assert json_lines(second.stdout)[0]["prompt_version"] == 2
    pinned = workbench("run", "--prompt", "greet@1", "--var", "name=Ada", "--json", cwd=ws)
    assert json_lines(pinned.stdout)[0]["prompt_version"] == 1
    assert workbench("prompts", "versions", "greet", cwd=ws).stdout.count("\n") == 2  # no third version

    listed = json_lines(workbench("traces", "list", "--json", cwd=ws).stdout)
    assert sorted((r["prompt"], r["prompt_version"]) for r in listed) == [("greet", 1), ("greet", 1), ("greet", 2)]
    assert {r["id"] for r in listed} == {json_lines(r.stdout)[0]["trace_id"] for r in (first, second, pinned)}
    stats = json_lines(workbench("traces", "stats", "--by", "prompt-version", "--json", cwd=ws).stdout)
    assert {s["prompt-version"]: s["calls"] for s in stats} == {"greet@1": 2, "greet@2": 1}


def test_the_prompt_renders_the_request_and_flags_override_its_targets_and_params(ws: Path) -> None:
    own = json_lines(workbench("run", "--prompt", "greet", "--var", "name=Ada", "--json", cwd=ws).stdout)[0]
    assert (own["output_tokens"], own["finish_reason"]) == (3, "length")  # the prompt's max_tokens
    flags = workbench("run", "--prompt", "greet", "--var", "name=Ada", "--var", "language=Welsh", "-m",
                      "fake-anthropic/b@tokens=4", "--max-tokens", "50", "--json", cwd=ws)
    row = json_lines(flags.stdout)[0]
    assert (row["target"], row["output_tokens"], row["finish_reason"]) == ("fake-anthropic/b@tokens=4", 4, "stop")
    shown = workbench("traces", "show", str(row["trace_id"]), cwd=ws).stdout
    assert "Say hello to Ada in Welsh." in shown and "Be kind." in shown


def test_human_output_names_the_version(ws: Path) -> None:
    result = workbench("run", "--prompt", "greet", "--var", "name=Ada", cwd=ws)
    assert result.returncode == 0, result.stderr
    assert "prompt greet v1" in result.stdout


@pytest.mark.parametrize(("argv", "message"), [
    (["--prompt", "greet"], "needs a value for name"),
    (["--prompt", "greet@7", "--var", "name=A"], "no version 7"),
    (["--prompt", "greet", "--var", "name=A", "inline text"], "brings its own"),
    (["--prompt", "greet", "--var", "name"], "expected KEY=VALUE"),
    (["inline text", "--var", "name=A"], "use it with --prompt"),
    (["--prompt", "missing"], "no prompt 'missing'"),
])
def test_mistakes_are_one_line_errors(ws: Path, argv: list[str], message: str) -> None:
    result = workbench("run", *argv, cwd=ws)
    assert result.returncode == 2 and message in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_outside_a_workspace_it_says_so(tmp_path: Path) -> None:
    result = workbench("run", "--prompt", "greet", cwd=tmp_path)
    assert result.returncode == 2 and "not inside a workspace" in result.stderr
