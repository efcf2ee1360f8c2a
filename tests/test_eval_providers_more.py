"""promptfoo's providers that are not a model API (echo, http, a Python file) and a provider's ``prompts`` filter,
run as real evals."""

from __future__ import annotations

import json
import shutil
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.eval_suites import workspace_suite
from tests.resilience_helpers import server_log
from tests.test_cli import json_lines, workbench
from workbench.fakeserver.process import FakeServerProcess


def _eval(suite: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return workbench("eval", str(suite), "--json", *args, cwd=suite.parent.parent, env=env)


def _outputs(tmp_path: Path, run: object) -> list[str]:
    import json

    shown = workbench("evals", "show", str(run), "--format", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    return sorted(str(r["observation"]["text"]) for c in json.loads(shown.stdout)["cells"] for r in c["results"])


def test_echo_answers_with_the_rendered_prompt(tmp_path: Path) -> None:
    suite = workspace_suite(tmp_path, """\
        prompts: ["Say {{topic}} twice"]
        providers: [echo]
        tests:
          - vars: {topic: tea}
            assert: [{type: equals, value: Say tea twice}]
          - vars: {topic: rain}
            assert: [{type: equals, value: Say rain twice}]
        """)
    result = _eval(suite)
    assert result.returncode == 0, result.stderr
    summary = json_lines(result.stdout)[-1]
    assert summary["passes"] == 2 and summary["cost_usd"] == 0


def test_an_echo_grader_reads_a_rubric_prompt_where_the_tests_variables_win(tmp_path: Path) -> None:
    """promptfoo renders a grading prompt with ``{output, rubric, ...vars}``: a variable named ``rubric`` is the
    one the grader sees; Nunjucks filters work in it."""
    suite = workspace_suite(tmp_path, """\
        prompts: ["{{answer}}"]
        providers: [echo]
        defaultTest:
          options:
            provider: echo
            rubricPrompt: '{"pass": {{ (output | upper == "PARIS" and rubric == "from the test") | dump }}}'
        tests:
          - vars: {answer: paris, rubric: from the test}
            assert: [{type: llm-rubric, value: from the assertion}]
          - vars: {answer: paris}
            assert: [{type: llm-rubric, value: from the assertion}]
        """)
    result = _eval(suite)
    assert result.returncode == 1, result.stderr
    summary = json_lines(result.stdout)[-1]
    assert (summary["runs"], summary["passes"]) == (2, 1)  # 0 if the grader's own rubric won, or upper was dropped


def test_a_provider_prompts_filter_runs_only_those_prompts(tmp_path: Path) -> None:
    suite = workspace_suite(tmp_path, """\
        prompts:
          - {label: short, raw: "Short: {{q}}"}
          - {label: long, raw: "Long: {{q}}"}
          - {label: "chat:polite", raw: "Please: {{q}}"}
        providers:
          - id: echo
            label: everything
          - id: echo
            label: short-only
            prompts: [short]
          - id: echo
            label: chats
            prompts: [chat]
        tests:
          - vars: {q: one}
          - vars: {q: two}
        """)
    result = _eval(suite)
    assert result.returncode == 0, result.stderr
    preflight, summary = json_lines(result.stdout)
    assert preflight["preflight"] == {**preflight["preflight"], "calls": 2 * (3 + 1 + 1)}  # type: ignore[dict-item]
    assert summary["runs"] == 10
    assert _outputs(tmp_path, summary["run"]).count("Short: one") == 2  # everything and short-only


def test_a_prompts_filter_naming_no_prompt_fails_the_load(tmp_path: Path) -> None:
    suite = workspace_suite(tmp_path, """\
        prompts: [{label: short, raw: "Short"}]
        providers:
          - id: echo
            prompts: [shrot]
        tests: [{vars: {}}]
        """)
    result = _eval(suite)
    assert result.returncode == 2
    assert "evals/suite.yaml:4:" in result.stderr and "no prompt labelled 'shrot'" in result.stderr


def test_the_http_provider_renders_its_request_and_reads_the_reply_by_path(
        tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Tell me about {{{{topic}}}}"]
        providers:
          - id: https
            label: gateway
            config:
              url: "{fake_server.base_url}/v1/chat/completions"
              method: POST
              headers: {{X-Topic: "{{{{topic}}}}", Authorization: Bearer gateway-token}}
              body:
                model: "m@tokens=4,id={marker}"
                stream: false
                messages: [{{role: user, content: "{{{{prompt}}}}"}}]
              transformResponse: json.choices[0].message.content
        tests:
          - vars: {{topic: tea}}
            assert: [{{type: regex, value: '^(\\w+\\W*){{4}}$'}}]
        """)
    result = _eval(suite)
    assert result.returncode == 0, result.stderr
    (sent,) = [e for e in server_log(fake_server.base_url) if marker in str(e["model"])]
    assert sent["headers"]["x-topic"] == "tea" and sent["params"]["stream"] is False  # type: ignore[index]
    assert sent["key"] is not None  # the Authorization header went out


def test_the_http_provider_says_an_http_error_and_a_missing_path(tmp_path: Path,
                                                                 fake_server: FakeServerProcess) -> None:
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Hi"]
        providers:
          - id: "{fake_server.base_url}/v1/chat/completions"
            label: broken
            config:
              body: {{model: "m@status=500,fail=9,id={uuid.uuid4().hex[:8]}", stream: false, messages: []}}
          - id: http
            label: wrong-path
            config:
              url: "{fake_server.base_url}/v1/chat/completions"
              body: {{model: "m@tokens=2", stream: false, messages: [{{role: user, content: "{{{{prompt}}}}"}}]}}
              transformResponse: json.output.text
        tests: [{{vars: {{}}, assert: [{{type: regex, value: '.'}}]}}]
        """)
    result = _eval(suite)
    assert result.returncode == 1, result.stderr
    import json

    shown = workbench("evals", "show", str(json_lines(result.stdout)[-1]["run"]), "--format", "json", cwd=tmp_path)
    errors = sorted(str(r["observation"]["error"]) for c in json.loads(shown.stdout)["cells"] for r in c["results"])
    assert "HTTP 500" in errors[0] or "HTTP 500" in errors[1]
    assert any("transformResponse json.output.text: the reply has no .output" in e for e in errors)


@pytest.mark.parametrize(("config", "reason"), [
    ("{url: 'http://127.0.0.1:9', transformRequest: 'x'}", "config.transformRequest of the http provider"),
    ("{method: POST}", "needs config.url"),
    ("{url: 'ftp://example.com'}", "not a usable URL"),
])
def test_http_provider_settings_that_cannot_be_honoured_fail_the_load(config: str, reason: str,
                                                                      tmp_path: Path) -> None:
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Hi"]
        providers:
          - id: http
            config: {config}
        tests: [{{vars: {{}}}}]
        """)
    result = _eval(suite)
    assert result.returncode == 2 and "evals/suite.yaml:" in result.stderr and reason in result.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="a JavaScript transformResponse needs Node.js")
def test_a_transform_response_function_runs_in_node(tmp_path: Path, fake_server: FakeServerProcess) -> None:
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Hi"]
        providers:
          - id: http
            config:
              url: "{fake_server.base_url}/v1/chat/completions"
              body: {{model: "m@tokens=3", stream: false, messages: [{{role: user, content: "{{{{prompt}}}}"}}]}}
              transformResponse: "(json, text) => json.choices[0].message.content.toUpperCase()"
        tests:
          - vars: {{}}
            assert: [{{type: regex, value: '^[^a-z]+$'}}]
        """)
    result = _eval(suite)
    assert result.returncode == 0, result.stderr


def test_a_python_file_provider_is_called_with_prompt_options_and_context(tmp_path: Path) -> None:
    suite = workspace_suite(tmp_path, """\
        prompts: ["Say {{topic}}"]
        providers:
          - id: file://provider.py
            label: shouty
            config: {suffix: "!!"}
          - id: file://provider.py:call_quiet
            label: quiet
        tests:
          - vars: {topic: tea}
            assert:
              - type: python
                value: output in ("SAY TEA (tea)!!", "say tea")
        """)
    (suite.parent / "provider.py").write_text(textwrap.dedent("""\
        def call_api(prompt, options, context):
            suffix = options["config"]["suffix"]
            return {"output": f"{prompt.upper()} ({context['vars']['topic']}){suffix}",
                    "tokenUsage": {"prompt": 3, "completion": 4}}

        def call_quiet(prompt, options, context):
            assert options["id"] == "file://provider.py:call_quiet" and context["prompt"]["raw"] == prompt
            return {"output": prompt.lower()}
        """), encoding="utf-8")
    result = _eval(suite)
    assert result.returncode == 0, result.stderr
    assert _outputs(tmp_path, json_lines(result.stdout)[-1]["run"]) == ["SAY TEA (tea)!!", "say tea"]


def test_a_python_provider_error_is_the_cell_error(tmp_path: Path) -> None:
    suite = workspace_suite(tmp_path, """\
        prompts: ["Hi"]
        providers: [file://provider.py]
        tests: [{vars: {}, assert: [{type: regex, value: '.'}]}]
        """)
    (suite.parent / "provider.py").write_text("def call_api(prompt, options, context):\n"
                                              "    return {'error': 'the backend is down'}\n", encoding="utf-8")
    result = _eval(suite)
    assert result.returncode == 1
    import json

    shown = workbench("evals", "show", str(json_lines(result.stdout)[-1]["run"]), "--format", "json", cwd=tmp_path)
    (error,) = [str(r["observation"]["error"]) for c in json.loads(shown.stdout)["cells"] for r in c["results"]]
    assert "the backend is down" in error


def test_script_providers_in_other_languages_fail_the_load(tmp_path: Path) -> None:
    suite = workspace_suite(tmp_path, """\
        prompts: ["Hi"]
        providers: [file://provider.js]
        tests: [{vars: {}}]
        """)
    result = _eval(suite)
    assert result.returncode == 2 and "evals/suite.yaml:2:" in result.stderr and "provider.py" in result.stderr


GRADER = """\
import json


def call_api(prompt, options, context):
    '''Passes an output of at most three words; the grading prompt is promptfoo's compact JSON chat.'''
    content = json.loads(prompt)[1]["content"]
    words = len(content.split("<Output>\\n")[1].split("\\n</Output>")[0].split())
    return {"output": json.dumps({"pass": words <= 3, "score": float(words <= 3), "reason": f"{words} words"})}
"""


def _graded_suite(tmp_path: Path, grader: str = "") -> Path:
    (tmp_path / "evals").mkdir(exist_ok=True)
    (tmp_path / "evals" / "grader.py").write_text(GRADER, encoding="utf-8")
    return workspace_suite(tmp_path, f"""\
        prompts: ["Name a {{{{thing}}}}"]
        providers: [{{id: fake/short@tokens=3, label: short}}, {{id: fake/long@tokens=8, label: long}}]
        {grader}
        tests:
          - vars: {{thing: fruit}}
            assert: [{{type: llm-rubric, value: Is three words or fewer}}]
        """)


def _verdicts(tmp_path: Path, result: object) -> dict[str, bool]:
    run = json_lines(result.stdout)[-1]["run"]  # type: ignore[attr-defined]
    shown = workbench("evals", "show", str(run), "--format", "json", cwd=tmp_path)
    cells = json.loads(shown.stdout)["cells"]
    return {c["key"]["target"]: c["results"][0]["passed"] for c in cells}


def test_the_grader_flag_takes_a_python_file_provider(tmp_path: Path) -> None:
    suite = _graded_suite(tmp_path)
    result = _eval(suite, "--grader", "file://grader.py")
    assert result.returncode == 1, result.stderr
    assert _verdicts(tmp_path, result) == {"short": True, "long": False}
    missing = _eval(suite, "--grader", "file://nowhere.py")
    assert missing.returncode == 2 and missing.stderr.startswith("workbench: --grader file://nowhere.py: no file")
    assert len(missing.stderr.strip().splitlines()) <= 2 and "Traceback" not in missing.stderr


def test_a_python_grader_that_fails_fails_its_assertion_in_one_line(tmp_path: Path) -> None:
    suite = _graded_suite(tmp_path, "defaultTest: {options: {provider: 'file://grader.py:missing'}}")
    result = _eval(suite)
    assert result.returncode == 1, result.stderr
    run = json_lines(result.stdout)[-1]["run"]
    shown = json.loads(workbench("evals", "show", str(run), "--format", "json", cwd=tmp_path).stdout)
    reasons = {g["reason"] for c in shown["cells"] for r in c["results"] for g in r["gradings"]}
    assert len(reasons) == 1 and "the python provider failed" in reasons.pop()


def test_an_http_grader_gets_the_grading_prompt_in_its_body(tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    verdict = "(json, text) => JSON.stringify({pass: true, reason: json.choices[0].message.content})"
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Name a {{{{thing}}}}"]
        providers: [fake/answer@tokens=3]
        defaultTest:
          options:
            provider:
              id: https
              config:
                url: "{fake_server.base_url}/v1/chat/completions"
                body:
                  model: "judge@tokens=2,id={marker}"
                  messages: [{{role: user, content: "{{{{prompt}}}}"}}]
                  user: "{{{{prompt}}}}"
                transformResponse: "{verdict}"
        tests:
          - vars: {{thing: fruit}}
            assert: [{{type: llm-rubric, value: Names a fruit}}]
        """)
    result = _eval(suite)
    assert result.returncode == 0, result.stderr
    (sent,) = [e for e in server_log(fake_server.base_url) if marker in str(e["model"])]
    grading = json.loads(sent["params"]["user"])  # type: ignore[index]  # the grading chat, as promptfoo renders it
    assert [m["role"] for m in grading] == ["system", "user"] and "<Rubric>\nNames a fruit\n</Rubric>" in (
        grading[1]["content"])
