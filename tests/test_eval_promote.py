"""Promoting a race to a test case: the suite file keeps everything else, and still loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.core.errors import ConfigError
from workbench.core.evals.promote import append_test, new_suite
from workbench.core.evals.suite import load_suite

SUITE = """\
# support answers
prompts:
  - "Answer {{question}}"   # inline prompt
targets: [fake/demo]
tests:
  - description: first
    vars: {question: hi}
    assert:
      - type: contains
        value: hello
  # keep this comment
defaultTest:
  options: {}
"""

CONTAINS = {"type": "contains", "value": "refund"}


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / "evals" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_append_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, SUITE)
    line = append_test(path, "refund question", {"question": "Can I get a refund?"}, CONTAINS)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[line - 1] == "  - description: refund question"
    assert line == 11  # right after the last test, before the comment that follows it
    assert lines[line] == "    vars: {question: 'Can I get a refund?'}"  # written like the test before it
    assert text.replace("\n".join(lines[line - 1:line + 4]) + "\n", "") == SUITE
    suite = load_suite(path, tmp_path)
    assert [t.description for t in suite.tests] == ["first", "refund question"]
    assert suite.tests[1].vars == {"question": "Can I get a refund?"}
    assert suite.tests[1].assertions[0].type == "contains" and suite.tests[1].assertions[0].value == "refund"


@pytest.mark.parametrize("tail", ["", "tests:\n", "tests: []\n"])
def test_creates_or_fills_an_empty_tests_key(tmp_path: Path, tail: str) -> None:
    path = write(tmp_path, 'prompts: ["Say {{x}}"]  # mine\ntargets: [fake/demo]\n' + tail)
    line = append_test(path, "multi\nline", {"x": "a\nb"}, {"type": "llm-rubric", "value": "is polite"})
    assert path.read_text(encoding="utf-8").startswith('prompts: ["Say {{x}}"]  # mine\n')
    assert path.read_text(encoding="utf-8").splitlines()[line - 1].startswith("  - description:")
    test = load_suite(path, tmp_path).tests[0]
    assert test.vars == {"x": "a\nb"} and test.description == "multi\nline"


def test_file_references(tmp_path: Path) -> None:
    jsonl = write(tmp_path, '{"vars": {"x": "1"}, "assert": [{"type": "equals", "value": "1"}]}\n', "t.jsonl")
    path = write(tmp_path, 'prompts: ["Say {{x}}"]\ntargets: [fake/demo]\ntests: file://t.jsonl\n')
    assert append_test(path, "two", {"x": "2"}, {"type": "regex", "value": "^2$"}) == 2
    assert json.loads(jsonl.read_text().splitlines()[1])["assert"] == [{"type": "regex", "value": "^2$"}]
    assert len(load_suite(path, tmp_path).tests) == 2

    write(tmp_path, "x,__expected\n1,equals: 1\n", "t.csv")
    path.write_text('prompts: ["Say {{x}}"]\ntargets: [fake/demo]\ntests: file://t.csv\n')
    assert append_test(path, "two", {"x": "2"}, {"type": "not-contains", "value": "3"}) == 3
    assert [(a.type, a.negate) for t in load_suite(path, tmp_path).tests for a in t.assertions] == [
        ("equals", False), ("contains", True)]

    write(tmp_path, "- vars: {x: '1'}\n  assert: [{type: equals, value: '1'}]\n", "t.yaml")
    path.write_text('prompts: ["Say {{x}}"]\ntargets: [fake/demo]\ntests: file://t.yaml\n')
    assert append_test(path, "two", {"x": "2"}, CONTAINS) == 3
    assert len(load_suite(path, tmp_path).tests) == 2

    path.write_text('prompts: ["Say {{x}}"]\ntargets: [fake/demo]\ntests: file://t.json\n')
    with pytest.raises(ConfigError, match=r"cannot be added to a \.json file"):
        append_test(path, "two", {"x": "2"}, CONTAINS)


def test_new_suite_loads(tmp_path: Path) -> None:
    path = tmp_path / "evals" / "greet.yaml"
    line = new_suite(path, ["Hello {{name}}"], ["fake/demo", "fake/other"], "Ada", {"name": "Ada"},
                     {"type": "equals", "value": "Hello Ada"})
    assert path.read_text(encoding="utf-8").splitlines()[line - 1] == "  - description: Ada"
    suite = load_suite(path, tmp_path)
    assert [t.ref for t in suite.targets] == ["fake/demo", "fake/other"] and len(suite.tests) == 1
    with pytest.raises(ConfigError, match="already exists"):
        new_suite(path, ["x"], ["fake/demo"], "d", {}, CONTAINS)
