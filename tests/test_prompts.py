"""Prompt files, versions, labels and the ``prompts`` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import prompt_workspace
from workbench.core.errors import ConfigError
from workbench.core.prompts import (
    Prompt,
    diff_versions,
    dump_prompt,
    get_version,
    labels,
    load_current,
    load_prompts,
    parse_prompt,
    resolve_ref,
    restore,
    save_version,
    set_label,
    to_request,
    versions,
    word_diff,
)

GREET = """\
name: greet
description: Greets someone
tags: [demo, test]
targets: [openai/gpt-4.1-mini]
params: {temperature: 0.2, max_tokens: 100, stop: ["END"], seed: 7}
system: |
  You are kind.
  Be brief.
messages:
  - role: user
    content: "Say hello to {{name}} in {{ language }}."
  - role: assistant
    content: Hello!
variables:
  name: {description: who to greet}
  language: {description: the language, default: French}
output_schema:
  type: object
  properties: {greeting: {type: string}}
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return prompt_workspace(tmp_path, greet=GREET)


def greet() -> Prompt:
    return parse_prompt(GREET, "greet.yaml")


def test_round_trip_is_stable_and_equal() -> None:
    prompt = greet()
    text = dump_prompt(prompt)
    assert parse_prompt(text, "x.yaml") == prompt
    assert dump_prompt(parse_prompt(text, "x.yaml")) == text
    assert "system: |\n  You are kind.\n  Be brief.\n" in text
    keys = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert keys == ["name", "description", "tags", "targets", "params", "system", "messages", "variables",
                    "output_schema"]
    assert "{" not in text.split("output_schema")[0].replace("{{", "").replace("}}", "")  # block style


def test_variables_substitution_defaults_and_missing() -> None:
    request = to_request(greet(), {"name": "Ada"})
    assert request.system == "You are kind.\nBe brief.\n"
    assert request.messages[0].content == "Say hello to Ada in French."
    assert request.params.temperature == 0.2 and request.params.stop == ("END",) and request.params.seed == 7
    assert request.params.json_schema == {"type": "object", "properties": {"greeting": {"type": "string"}}}
    assert to_request(greet(), {"name": "Ada", "language": "Welsh"}).messages[0].content.endswith("in Welsh.")
    assert to_request(greet(), {"name": r"\1 {{x}}"}).messages[0].content.startswith(r"Say hello to \1 {{x}}")
    with pytest.raises(ConfigError, match="name") as info:
        to_request(greet(), {})
    assert info.value.hint


def test_versions_only_when_content_changes(ws: Path) -> None:
    first = save_version(ws, greet())
    assert (first.number, len(first.hash)) == (1, 64)
    assert save_version(ws, greet()) == first
    changed = greet().model_copy(update={"description": "Greets someone warmly"})
    second = save_version(ws, changed)
    assert second.number == 2 and second.hash != first.hash
    assert [v.number for v in versions(ws, "greet")] == [1, 2]
    assert get_version(ws, "greet", 1) == greet()
    assert get_version(ws, "greet", 2) == changed
    stored = ws / ".workbench" / "prompts" / "greet"
    assert (stored / "1.yaml").read_text() == dump_prompt(greet())
    index = json.loads((stored / "index.json").read_text())
    assert [e["number"] for e in index["versions"]] == [1, 2] and all("created" in e for e in index["versions"])
    with pytest.raises(ConfigError, match="no version 9"):
        get_version(ws, "greet", 9)


def test_word_diff_marks_words() -> None:
    old = "name: greet\ndescription: Greets someone\nsystem: be kind\n"
    new = "name: greet\ndescription: Greets someone warmly\nsystem: be brief\n"
    diff = word_diff(old, new, from_label="greet@1", to_label="greet@2")
    assert diff.startswith("--- greet@1\n+++ greet@2\n@@ -1,3 +1,3 @@\n")
    assert " name: greet\n" in diff
    assert "~description: Greets someone {+warmly+}\n" in diff
    assert "~system: be [-kind-]{+brief+}\n" in diff
    assert word_diff(old, old) == ""


def test_diff_between_versions(ws: Path) -> None:
    save_version(ws, greet())
    save_version(ws, greet().model_copy(update={"description": "Greets people"}))
    assert "~description: Greets [-someone-]{+people+}" in diff_versions(ws, "greet", 1, 2)


def test_labels_and_refs(ws: Path) -> None:
    save_version(ws, greet())
    save_version(ws, greet().model_copy(update={"tags": ["x"]}))
    set_label(ws, "greet", "production", 1)
    set_label(ws, "greet", "staging", 2)
    assert labels(ws, "greet") == {"production": 1, "staging": 2}
    assert resolve_ref(ws, "greet@production").number == 1
    assert resolve_ref(ws, "greet@2").number == 2
    assert resolve_ref(ws, "greet").number == 2
    set_label(ws, "greet", "production", 2)  # a rollout / rollback is moving the label
    assert resolve_ref(ws, "greet@production").number == 2
    with pytest.raises(ConfigError, match="no label 'canary'"):
        resolve_ref(ws, "greet@canary")
    with pytest.raises(ConfigError, match="no version 5"):
        set_label(ws, "greet", "production", 5)
    with pytest.raises(ConfigError, match="not a label"):
        set_label(ws, "greet", "3", 1)
    with pytest.raises(ConfigError, match="not a prompt name"):
        resolve_ref(ws, "../etc@1")


def test_restore_creates_no_new_version(ws: Path) -> None:
    save_version(ws, greet())
    save_version(ws, greet().model_copy(update={"description": "v2"}))
    path = restore(ws, "greet", 1)
    assert path == ws / "prompts" / "greet.yaml"
    assert load_current(ws, "greet") == greet()
    assert save_version(ws, load_current(ws, "greet")).number == 1
    assert len(versions(ws, "greet")) == 2


def test_malformed_files_give_file_line_and_do_not_stop_others(ws: Path) -> None:
    folder = ws / "prompts"
    (folder / "broken.yaml").write_text("name: broken\nmessages:\n  - role: user\n    content: [unclosed\n")
    (folder / "nested.yaml").write_text(
        "name: nested\nmessages:\n  - role: user\n    content: hi\n  - role: robot\n    content: beep\n")
    (folder / "param.yaml").write_text("name: param\nparams:\n  temperature: 0.5\n  tempurature: 1\n")
    (folder / "empty.yaml").write_text("")
    loaded, errors = load_prompts(folder)
    assert [p.name for p in loaded] == ["greet"]
    by_file = {Path(e.path).name: e for e in errors}
    assert set(by_file) == {"broken.yaml", "nested.yaml", "param.yaml", "empty.yaml"}
    assert str(by_file["broken.yaml"]).startswith(f"{folder / 'broken.yaml'}:5: YAML syntax error")
    assert by_file["nested.yaml"].line == 5 and "messages.1.role" in by_file["nested.yaml"].problem
    assert str(by_file["param.yaml"]).startswith(f"{folder / 'param.yaml'}:4: params.tempurature")
    assert by_file["empty.yaml"].line == 1


def test_name_must_match_file(ws: Path) -> None:
    (ws / "prompts" / "other.yaml").write_text("description: x\nname: wrong\n")
    _, errors = load_prompts(ws / "prompts")
    assert len(errors) == 1 and errors[0].line == 2 and "does not match" in errors[0].problem


SCRIPT = """\
import argparse, sys
from workbench.cli import arguments, prompts
from workbench.core.errors import WorkbenchError
parser = argparse.ArgumentParser(prog="workbench")
arguments.add_prompts(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
try:
    sys.exit(prompts.run(args))
except WorkbenchError as exc:
    print(f"error: {exc}\\nhint: {exc.hint}", file=sys.stderr)
    sys.exit(1)
"""


def cli(ws: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, "prompts", *argv], cwd=ws / "prompts",
                          capture_output=True, text=True, timeout=30, env={"PATH": "", "COLUMNS": "200"})


def test_cli_end_to_end(ws: Path) -> None:
    (ws / "prompts" / "bad.yaml").write_text("name: bad\nmessages: [\n")
    listed = cli(ws, "list", "--json")
    assert listed.returncode == 1
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert rows == [{"name": "greet", "version": None, "hash": rows[0]["hash"], "labels": {},
                     "path": "prompts/greet.yaml"}]
    assert "prompts/bad.yaml:3:" in listed.stderr and "Traceback" not in listed.stderr

    (ws / "prompts" / "bad.yaml").unlink()
    assert "saved version 1" in cli(ws, "save", "greet").stdout
    assert "unchanged, still version 1" in cli(ws, "save", "greet").stdout
    (ws / "prompts" / "greet.yaml").write_text(GREET.replace("Greets someone", "Greets everyone"))
    assert "saved version 2" in cli(ws, "save", "greet").stdout
    assert cli(ws, "label", "greet", "production", "1").returncode == 0

    listed = cli(ws, "list", "--json")
    assert listed.returncode == 0
    row = json.loads(listed.stdout)
    assert (row["version"], row["labels"]) == (2, {"production": 1})

    lines = [json.loads(line) for line in cli(ws, "versions", "greet", "--json").stdout.splitlines()]
    assert [(v["version"], v["labels"]) for v in lines] == [(1, ["production"]), (2, [])]
    diff = cli(ws, "diff", "greet", "production", "2")
    assert "~description: Greets [-someone-]{+everyone+}" in diff.stdout
    assert "description: Greets someone" in cli(ws, "show", "greet@production").stdout
    assert "Greets everyone" in cli(ws, "show", "greet").stdout
    assert cli(ws, "restore", "greet", "1").returncode == 0
    assert "unchanged, still version 1" in cli(ws, "save", "greet").stdout
    assert "greet" in cli(ws, "list").stdout

    missing = cli(ws, "show", "greet@9")
    assert missing.returncode == 1 and "no version 9" in missing.stderr and "Traceback" not in missing.stderr
    outside = subprocess.run([sys.executable, "-c", SCRIPT, "prompts", "--workspace", str(ws), "list", "--json"],
                             cwd="/", capture_output=True, text=True, timeout=30)
    assert outside.returncode == 0 and json.loads(outside.stdout)["name"] == "greet"
