"""A fake target's options hold commas, which split a YAML [flow, list]: ``targets: [fake/a@ttft=1,tps=2]`` is
two items. Suites, prompt files and session files say so at the item's file:line, with the target quoted."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import prompt_workspace
from tests.test_cli import workbench
from workbench.core.evals.suite import load_suite
from workbench.core.request import split_target

QUOTE = 'quote it: targets: ["fake/a@ttft=1,tps=2"]'


def test_a_split_suite_target_is_refused_at_its_line_with_the_quoted_form(tmp_path: Path) -> None:
    workspace = prompt_workspace(tmp_path)
    suite = workspace / "evals" / "split.yaml"
    suite.parent.mkdir()
    suite.write_text('prompts: ["Say {{x}}"]\n# targets\ntargets: [fake/b, fake/a@ttft=1,tps=2]\n'
                     "tests:\n  - vars: {x: hi}\n", encoding="utf-8")
    result = workbench("eval", "evals/split.yaml", "--dry-run", cwd=workspace)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line, hint = result.stderr.splitlines()
    assert line == ("workbench: evals/split.yaml:3: 'tps=2' is not a target: YAML split 'fake/a@ttft=1,tps=2' at "
                    f"its comma; {QUOTE}")
    assert hint.startswith("  hint: ")

    suite.write_text(suite.read_text().replace("fake/a@ttft=1,tps=2", '"fake/a@ttft=1,tps=2"'), encoding="utf-8")
    assert [t.ref for t in load_suite(suite, workspace).targets] == ["fake/b", "fake/a@ttft=1,tps=2"]
    ran = workbench("eval", "evals/split.yaml", "--dry-run", cwd=workspace)
    assert ran.returncode == 0, ran.stderr


def test_prompt_and_session_files_say_the_same(tmp_path: Path) -> None:
    workspace = prompt_workspace(tmp_path, greet="name: greet\ntargets: [fake/a@ttft=1,tps=2,tokens=3]\n"
                                                 "messages: [{role: user, content: hi}]\n")
    listed = workbench("prompts", "list", cwd=workspace)
    assert listed.returncode == 1 and listed.stderr.splitlines() == [
        "prompts/greet.yaml:2: 'tps=2' is not a target: YAML split 'fake/a@ttft=1,tps=2,tokens=3' at its comma; "
        'quote it: targets: ["fake/a@ttft=1,tps=2,tokens=3"]']
    ran = workbench("run", "--prompt", "greet", cwd=workspace)
    assert ran.returncode == 2 and "greet.yaml:2: 'tps=2' is not a target" in ran.stderr.splitlines()[0]

    (workspace / "sessions").mkdir()
    (workspace / "sessions" / "s.yaml").write_text(
        "name: s\n\n\ntargets: [fake/a@ttft=1,tps=2]\nrequest: {messages: [{role: user, content: hi}]}\n")
    sessions = workbench("sessions", "list", cwd=workspace)
    assert sessions.returncode == 1
    assert sessions.stderr.splitlines()[-1] == (
        f"sessions/s.yaml:4: 'tps=2' is not a target: YAML split 'fake/a@ttft=1,tps=2' at its comma; {QUOTE}")


def test_what_counts_as_a_split_target() -> None:
    assert split_target("targets", ["fake/a@ttft=1,tps=2", "openai/gpt-4.1-mini", {"id": "x"}]) is None
    assert split_target("providers", ["openai/x", "fake/a@ttft=1", "tps=2", "tokens=5", "openai/y"]) == (
        2, "'tps=2' is not a target: YAML split 'fake/a@ttft=1,tps=2,tokens=5' at its comma; "
           'quote it: providers: ["fake/a@ttft=1,tps=2,tokens=5"]',
        "in a [flow, list] a comma separates items: quotes keep a target with options whole")
    lone = split_target("targets", ["tps=2"])
    assert lone is not None and lone[0] == 0
    assert 'quote the whole target: targets: ["fake/MODEL@ttft=1,tps=2"]' in lone[1]
