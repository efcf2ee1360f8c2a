"""A malformed suite is reported whole: every problem the loader can read past (prompts, targets, tests,
assertions, rows of a tests file) at its own ``file:line``, at most 20 then how many more, exit 2 before any
call; a YAML syntax error still stops at once."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.resilience_helpers import requests_for
from tests.test_cli import workbench
from workbench.fakeserver.process import FakeServerProcess


def _eval(root: Path, text: str, env: dict[str, str] | None = None, **files: str):  # type: ignore[no-untyped-def]
    (root / "evals").mkdir(exist_ok=True)
    for name, content in files.items():
        (root / "evals" / name.replace("_", ".")).write_text(content, encoding="utf-8")
    suite = root / "evals" / "broken.yaml"
    suite.write_text(text, encoding="utf-8")
    return workbench("eval", str(suite), cwd=root, env=env)


def test_every_problem_is_reported_at_its_file_and_line(tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = f"""prompts:
  - "Write one line about {{{{topic}}}}"
  - {{label: odd}}
providers:
  - fake/ok-{marker}@tokens=3
  - nosuchprovider:x
tests:
  - vars: {{topic: a}}
    assert:
      - type: no-such-type
      - value: untyped
  - description: fine
    vars: {{topic: b}}
  - description: heavy
    vars: {{topic: c}}
    assert:
      - type: contains
        value: x
        weight: -1
  - file://rows.csv
  - not a file reference
"""
    rows = "topic,__threshold\nfine,0.5\nbad,high\nalso fine,\nworse,low\n"
    result = _eval(tmp_path, suite, env={"WORKBENCH_FAKE_URL": fake_server.base_url}, rows_csv=rows)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "workbench: evals/broken.yaml:3: a prompt mapping needs raw, id or messages"
    assert [line.strip() for line in lines[1:-1]] == [
        "evals/broken.yaml:6: provider 'nosuchprovider:x' is not supported (nosuchprovider: providers cannot be run)",
        "evals/broken.yaml:10: assertion type 'no-such-type' is not supported",
        "evals/broken.yaml:11: an assertion needs a type",
        "evals/broken.yaml:19: weight -1 is negative",
        "evals/rows.csv:3: __threshold 'high' is not a number",
        "evals/rows.csv:5: __threshold 'low' is not a number",
        "evals/broken.yaml:21: tests from 'not a file reference' are not supported",
    ]
    assert lines[-1] == "  hint: 8 problems in all, each at its file:line; fix them and load again"
    assert requests_for(fake_server.base_url, marker) == 0
    assert workbench("evals", "list", "--json", cwd=tmp_path).stdout == ""  # no run was started


def test_past_twenty_problems_the_rest_are_counted(tmp_path: Path) -> None:
    asserts = "".join(f"      - type: unknown-{i}\n" for i in range(25))
    result = _eval(tmp_path, f"""prompts: ["hi"]
providers: [fake/x]
tests:
  - vars: {{}}
    assert:
{asserts}""")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "workbench: evals/broken.yaml:6: assertion type 'unknown-0' is not supported"
    assert lines[19].strip() == "evals/broken.yaml:25: assertion type 'unknown-19' is not supported"
    assert lines[20].strip() == "… and 5 more" and lines[21].startswith("  hint: 25 problems in all")
    assert len(lines) == 22


def test_one_problem_is_one_line_as_before(tmp_path: Path) -> None:
    result = _eval(tmp_path, """prompts: ["hi"]
providers: [fake/x]
tests:
  - vars: {}
    assert:
      - type: contains
        weight: -2
""")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["workbench: evals/broken.yaml:7: weight -2 is negative",
                                          "  hint: weights are 0 (informational) or more"]


def test_a_yaml_syntax_error_stops_at_once(tmp_path: Path) -> None:
    result = _eval(tmp_path, """prompts: ["hi"]
providers: [fake/x]
tests:
  - vars: {}
    assert:
      - type: no-such-type
  - file://more.yaml
""", more_yaml="- vars: {topic: [unclosed\n")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("workbench: evals/more.yaml:2: YAML syntax error"), result.stderr
    assert len(lines) == 2 and lines[1].startswith("  hint: ")


def test_run_settings_are_reported_with_the_tests(tmp_path: Path) -> None:
    result = _eval(tmp_path, """prompts: ["hi"]
providers: [fake/x]
gate: 2
repeat: 0
tests:
  - vars: {}
    assert:
      - type: no-such-type
""")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "workbench: evals/broken.yaml:8: assertion type 'no-such-type' is not supported"
    assert [line.strip() for line in lines[1:-1]] == [
        "evals/broken.yaml:4: repeat must be a whole number of 1 or more, not 0",
        "evals/broken.yaml:3: gate 2 is not between 0 and 1"]



def test_a_prompts_config_with_targets_on_the_command_line_stops_the_load(tmp_path: Path) -> None:
    """promptfoo merges a prompt's ``config`` over the suite's providers'; ``-t`` replaces those providers, so the
    calls would differ from what the suite says: refused at the prompt's line, never dropped."""
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "broken.yaml").write_text("""prompts:
  - label: Sentiment
    raw: "Classify {{text}}"
    config:
      response_format: {type: json_object}
providers: [openai:chat:gpt-4.1-mini]
tests:
  - vars: {text: good}
""", encoding="utf-8")
    result = workbench("eval", "evals/broken.yaml", "-t", "fake/x", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == ("workbench: evals/broken.yaml:4: a prompt's config is merged over the suite's providers, "
                        "and -t replaces them"), result.stderr
    assert lines[1] == "  hint: run without -t, or put the prompt's config in the suite's providers"


def test_a_typescript_javascript_assertion_stops_the_load_at_its_csv_row(tmp_path: Path) -> None:
    """promptfoo compiles a ``.ts`` assertion file (examples/eval-custom-grader-csv); Node here cannot: refused at
    the row that names it, not failed in every cell."""
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "check.ts").write_text("export default (output: string) => output.length > 3;\n",
                                                  encoding="utf-8")
    result = _eval(tmp_path, "prompts: ['Say {{body}}']\nproviders: [echo]\ntests: file://rows.csv\n",
                   rows_csv="language,body,__expected\nFrench,Hello,javascript:file://check.ts\n")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[0] == (
        "workbench: evals/rows.csv:2: javascript 'file://check.ts': TypeScript files are not supported")
