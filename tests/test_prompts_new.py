"""``workbench prompts new``: a prompt file in the shipped prompts' format, which loads at once; an existing or
invalid name refused in one line (and its hint) with exit 2."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import prompt_workspace
from tests.test_cli import json_lines, workbench
from workbench.core.prompts import load_prompt_file


def test_a_new_prompt_is_written_listed_and_says_what_to_run(tmp_path: Path) -> None:
    workspace = prompt_workspace(tmp_path)
    made = workbench("prompts", "new", "triage", "--system", "You triage {{product}} tickets.",
                     "--user", "Ticket: {{ticket}}", "--model", "fake/demo", cwd=workspace)
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines() == ["created prompts/triage.yaml",
                                        'next: workbench run --prompt triage --var product="..." --var ticket="..."']
    prompt = load_prompt_file(workspace / "prompts" / "triage.yaml")
    assert (prompt.system, [(m.role, m.content) for m in prompt.messages]) == (
        "You triage {{product}} tickets.", [("user", "Ticket: {{ticket}}")])
    assert prompt.targets == ["fake/demo"] and set(prompt.variables) == {"product", "ticket"}
    assert (workspace / "prompts" / "triage.yaml").read_text(encoding="utf-8").startswith("name: triage\n")

    plain = workbench("prompts", "new", "plain", cwd=workspace)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[-1] == 'next: workbench run --prompt plain --var input="..."'
    listed = workbench("prompts", "list", "--json", cwd=workspace)
    assert listed.returncode == 0, listed.stderr
    assert [(row["name"], row["path"]) for row in json_lines(listed.stdout)] == [
        ("plain", "prompts/plain.yaml"), ("triage", "prompts/triage.yaml")]

    ran = workbench("run", "--prompt", "triage", "--var", "product=Acme", "--var", "ticket=hi", "--json",
                    cwd=workspace, env={"WORKBENCH_TRACES": str(tmp_path / "traces.db")})
    assert ran.returncode == 0, ran.stderr
    assert [row["target"] for row in json_lines(ran.stdout)] == ["fake/demo"]


def test_an_existing_or_invalid_name_or_an_unknown_provider_is_refused(tmp_path: Path) -> None:
    workspace = prompt_workspace(tmp_path, taken="name: taken\nmessages: [{role: user, content: hi}]\n")
    before = (workspace / "prompts" / "taken.yaml").read_text()
    for args, line in [
        (["taken"], "workbench: prompt 'taken' exists already: prompts/taken.yaml"),
        (["no good"], "workbench: 'no good' is not a prompt name"),
        (["../up"], "workbench: '../up' is not a prompt name"),
        (["fresh", "-m", "nowhere/x"], "workbench: unknown provider 'nowhere' in 'nowhere/x'"),
    ]:
        refused = workbench("prompts", "new", *args, cwd=workspace)
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr.splitlines()[0] == line and len(refused.stderr.splitlines()) == 2  # and its hint
    assert (workspace / "prompts" / "taken.yaml").read_text() == before
    assert sorted(p.name for p in (workspace / "prompts").iterdir()) == ["taken.yaml"]
