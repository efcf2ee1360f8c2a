"""Writes to a user's YAML file change the changed values only: comments, key order, quoting, flow lists, number
formats and line endings stay byte for byte (ctrl+s in the editor, restoring a version, labelling, promoting)."""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from tests.conftest import prompt_workspace
from tests.test_cli import workbench
from tests.test_ui import SIZE, editor, wait_for
from tests.test_ui_more import messages
from tests.test_ui_prompts import app_in, load_listed_prompt
from workbench.core.evals.promote import append_test
from workbench.core.prompts import load_current, load_prompt_file, write_prompt
from workbench.core.yaml_edit import apply_changes

PROMPT = """\
# Routing prompt: keep it short.
name: route   # the file's stem
tags: [support, "triage"]
description: 'Route a ticket'
params:
  max_tokens: 0x10        # hex stays hex
  temperature: 0          # an int, not 0.0
messages:
  - role: user
    content: "Ticket: {{ticket}}"   # quoted on purpose
system: |-
  You route tickets.
  Answer with one label.

variables:
  ticket: {description: the ticket's text}
"""


def changed_lines(before: str, after: str) -> list[str]:
    """The lines of ``after`` that differ from ``before`` ('-old' and '+new'), nothing else."""
    return [line.rstrip("\n") for line in difflib.ndiff(before.splitlines(True), after.splitlines(True))
            if line.startswith(("-", "+"))]


async def test_ctrl_s_changes_only_the_edited_line(tmp_path: Path, fake_env: dict[str, str]) -> None:
    workspace = prompt_workspace(tmp_path, route=PROMPT)
    path = workspace / "prompts" / "route.yaml"
    app = app_in(workspace, fake_env)
    async with app.run_test(size=SIZE) as pilot:
        screen = editor(app)
        await load_listed_prompt(app, pilot, "route")
        await pilot.press("f2")
        screen.query_one("#user").load_text("Ticket text: {{ticket}}")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "saved route v1" in messages(app))
    assert changed_lines(PROMPT, path.read_text(encoding="utf-8")) == [
        '-     content: "Ticket: {{ticket}}"   # quoted on purpose',
        '+     content: "Ticket text: {{ticket}}" # quoted on purpose']  # the comment where it was, or just after


def test_a_saved_prompt_keeps_everything_it_did_not_change(tmp_path: Path) -> None:
    workspace = prompt_workspace(tmp_path, route=PROMPT)
    path = workspace / "prompts" / "route.yaml"
    loaded = load_current(workspace, "route")
    params = loaded.params.model_copy(update={"temperature": 0.5, "seed": 7})
    write_prompt(path, loaded.model_copy(update={
        "system": "You route tickets.\nAnswer with exactly one label.", "params": params,
        "tags": ["support", "triage", "billing"]}))
    assert changed_lines(PROMPT, path.read_text(encoding="utf-8")) == [
        '- tags: [support, "triage"]',
        '+ tags: [support, "triage", "billing"]',  # the added item quoted like the one before it
        "-   temperature: 0          # an int, not 0.0",
        "+   temperature: 0.5        # an int, not 0.0",
        "+   seed: 7",  # a new key goes after its neighbour, before the blank line and comments that follow
        "-   Answer with one label.",
        "+   Answer with exactly one label."]
    assert load_prompt_file(path).params == params


def test_line_endings_and_a_file_written_unevenly_stay(tmp_path: Path) -> None:
    crlf = PROMPT.replace("\n", "\r\n")
    before = {"description": "Route a ticket"}
    edited = apply_changes(crlf, before, {"description": "Route one ticket"})
    assert changed_lines(crlf, edited) == ["- description: 'Route a ticket'\r", "+ description: 'Route one ticket'\r"]
    uneven = "a:\n    b: 1\nc:\n  - d\nlist:\n- x\n"  # 4-space and 2-space maps, two list layouts
    assert changed_lines(uneven, apply_changes(uneven, {"list": ["x"]}, {"list": ["x", "y"]})) == ["+ - y"]
    assert changed_lines(uneven, apply_changes(uneven, {"c": ["d"]}, {"c": ["e"]})) == ["-   - d", "+   - e"]


def test_multi_line_text_takes_the_style_of_its_place() -> None:
    text = 'a: {b: "one"}\nc: "two"\nd: three\ne: >\n  folded\n'
    before = {"a": {"b": "one"}, "c": "two", "d": "three", "e": "folded\n"}
    after = {"a": {"b": "one\n1"}, "c": "two\n2", "d": "three\n3", "e": "folded\n4\n"}
    edited = apply_changes(text, before, after)
    assert edited == 'a: {b: "one\\n1"}\nc: "two\\n2"\nd: |-\n  three\n  3\ne: >\n  folded\n\n  4\n'
    assert yaml.safe_load(edited) == after


def test_restore_edits_the_working_file_in_place_and_label_leaves_it(tmp_path: Path) -> None:
    workspace = prompt_workspace(tmp_path, route=PROMPT)
    path = workspace / "prompts" / "route.yaml"
    assert workbench("prompts", "save", "route", cwd=workspace).returncode == 0
    edited = PROMPT.replace("Answer with one label.", "Answer with a label.")
    path.write_text(edited, encoding="utf-8")
    assert workbench("prompts", "save", "route", cwd=workspace).returncode == 0

    labelled = workbench("prompts", "label", "route", "production", "1", cwd=workspace)
    assert labelled.returncode == 0, labelled.stderr
    assert path.read_text(encoding="utf-8") == edited  # a label lives in the version store, not in the file

    restored = workbench("prompts", "restore", "route", "1", cwd=workspace)
    assert restored.returncode == 0, restored.stderr
    assert path.read_text(encoding="utf-8") == PROMPT
    listed = workbench("prompts", "list", "--json", cwd=workspace)
    assert '"version": 1' in listed.stdout  # the restored file is version 1 again, as content


SUITE = """\
# Support suite
targets: [fake/demo, "fake/other"]   # two fakes
prompts:
  - route
defaultTest:
  assert:
    - {type: latency, threshold: 0}
tests:
  - vars: {ticket: "My invoice is wrong", retries: 0}
    description: 'billing'
    assert:
      - type: icontains
        value: billing

# the end
"""


def test_a_promoted_test_is_appended_and_nothing_else_changes(tmp_path: Path) -> None:
    path = tmp_path / "evals" / "support.yaml"
    path.parent.mkdir()
    path.write_text(SUITE, encoding="utf-8")
    line = append_test(path, "on", {"ticket": "yes", "retries": "0"}, {"type": "icontains", "value": "account?"})
    text = path.read_text(encoding="utf-8")
    # written like the test before it (key order, flow vars, quotes), quoted where PyYAML needs it
    assert changed_lines(SUITE, text) == [
        """+   - vars: {ticket: "yes", retries: '0'}""",
        "+     description: 'on'",
        "+     assert:",
        "+       - type: icontains",
        "+         value: account?"]
    assert text.splitlines()[line - 1] == """  - vars: {ticket: "yes", retries: '0'}"""
    tests = yaml.safe_load(text)["tests"]
    assert tests[1] == {"description": "on", "vars": {"ticket": "yes", "retries": "0"},
                        "assert": [{"type": "icontains", "value": "account?"}]}


def test_a_test_promoted_to_a_flow_list_stays_in_it(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    suite = "prompts: [route]  # one\ntests: [{description: a, vars: {ticket: hi}}]\ntargets: [fake/demo]\n"
    path.write_text(suite, encoding="utf-8")
    assert append_test(path, "b", {"ticket": "Why?"}, {"type": "equals", "value": "0"}) == 2
    assert changed_lines(suite, path.read_text(encoding="utf-8")) == [
        "- tests: [{description: a, vars: {ticket: hi}}]",
        "+ tests: [{description: a, vars: {ticket: hi}}, {description: b, vars: {ticket: 'Why?'}, "
        "assert: [{type: equals, value: '0'}]}]"]
