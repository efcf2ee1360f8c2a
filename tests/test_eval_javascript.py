"""JavaScript in eval suites, run in Node as promptfoo runs it: ``javascript`` assertions (every return form,
``file://`` forms), transforms (provider, test, defaultTest, assertion, transformVars, Python files), failures
(an exception, a timeout, an endless loop, an oversized result) and a missing ``node``; real evals against the
fake server."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import json_lines, workbench
from workbench.core.evals.node_bridge import JavaScriptError, js_function, node_session

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")


def _workspace(tmp_path: Path, suite: str, files: dict[str, str] | None = None) -> Path:
    (tmp_path / "workbench.toml").write_text("", encoding="utf-8")
    (tmp_path / "evals").mkdir(exist_ok=True)
    for name, text in (files or {}).items():
        (tmp_path / "evals" / name).write_text(textwrap.dedent(text), encoding="utf-8")
    path = tmp_path / "evals" / "suite.yaml"
    path.write_text(textwrap.dedent(suite), encoding="utf-8")
    return path


def _run(path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run's summary and its results (one per cell, each with its gradings by metric, else by assertion)."""
    result = workbench("eval", str(path), "--json", *args, cwd=path.parent.parent, env=env)
    assert result.returncode in (0, 1), result.stderr
    summary = json_lines(result.stdout)[-1]
    shown = workbench("evals", "show", "last", "--format", "json", cwd=path.parent.parent)
    cells = json.loads(shown.stdout)["cells"]
    results = [{**r, "cell": c, "by": {g["metric"] or g["assertion"]: g for g in r["gradings"]}}
               for c in cells for r in c["results"]]
    return summary, results


def test_every_return_form_and_file_form_grades_as_in_promptfoo(tmp_path: Path) -> None:
    path = _workspace(tmp_path, """\
        prompts: ["Write about {{topic}}"]
        providers: [fake/demo@tokens=4]
        tests:
          - vars: {topic: cats, user: {name: Ada}}
            assert:
              - {type: javascript, metric: bool-true, value: "output.length > 0"}
              - {type: javascript, metric: bool-false, value: "output.length > 1000"}
              - {type: javascript, metric: number, value: "0.4"}
              - {type: javascript, metric: number-zero, value: "0"}
              - {type: javascript, metric: number-under, value: "0.4", threshold: 0.5}
              - {type: javascript, metric: number-over, value: "0.6", threshold: 0.5}
              - {type: javascript, metric: result, value: "({pass: false, score: 0.3, reason: 'too short'})"}
              - {type: javascript, metric: statements, value: "const n = context.vars.user.name; n === 'Ada'"}
              - type: javascript
                metric: body
                value: |
                  const words = output.split(' ');
                  if (context.prompt !== 'Write about cats') return false;
                  return {pass: words.length === 4, score: 1, reason: `${words.length} words`};
              - {type: not-javascript, metric: negated, value: "output.includes('never there')"}
              - {type: not-javascript, metric: negated-result, value: "({pass: true, score: 0.8, reason: 'r'})"}
              - {type: javascript, metric: default-export, value: file://checks.js}
              - {type: javascript, metric: named, value: "file://checks.js:isShort"}
              - {type: javascript, metric: esm, value: "file://checks.mjs:graded"}
    """, {
        "checks.js": """\
            module.exports = (output, context) => context.providerResponse.output === output && output.length > 3;
            module.exports.isShort = (output) => output.length < 5;
        """,
        "checks.mjs": """\
            export async function graded(output, context) {
              return {pass: true, score: context.config.weight ?? 0.9, reason: `graded ${context.vars.topic}`};
            }
        """,
    })
    summary, results = _run(path)
    by = results[0]["by"]
    expected = {
        "bool-true": (True, 1.0), "bool-false": (False, 0.0), "number": (True, 0.4), "number-zero": (False, 0.0),
        "number-under": (False, 0.4), "number-over": (True, 0.6), "result": (False, 0.3), "statements": (True, 1.0),
        "body": (True, 1.0), "negated": (True, 1.0), "negated-result": (False, 0.8), "default-export": (True, 1.0),
        "named": (False, 0.0), "esm": (True, 0.9),
    }
    assert {name: (g["passed"], round(g["score"], 6)) for name, g in by.items()} == expected
    assert "too short" in by["result"]["reason"] and "4 words" in by["body"]["reason"]
    assert "graded cats" in by["esm"]["reason"]
    assert summary["passes"] == 0  # some assertions fail, as they must


def test_each_transform_changes_the_verdict_as_promptfoo_does(tmp_path: Path) -> None:
    path = _workspace(tmp_path, """\
        prompts: ["Write about {{topic}}"]
        providers:
          - {id: fake/demo@tokens=4, label: raw}
          - {id: fake/demo@tokens=4, label: wrapped, transform: "JSON.stringify({text: output})"}
        defaultTest:
          options:
            transform: output.toUpperCase()
        tests:
          - description: provider transform
            assert: [{type: is-json}]
          - description: test transform
            options: {transform: "({words: output.split(' ').length})"}
            assert:
              - {type: is-json}
              - {type: javascript, value: "typeof output === 'object' && output.words === 4"}
          - description: default transform
            assert: [{type: javascript, value: "output === output.toUpperCase() && output.length > 3"}]
          - description: assertion transform
            assert:
              - {type: equals, value: "4", transform: "String(output.split(' ').length)"}
              - {type: not-equals, value: "4", metric: untransformed}
              - type: assert-set
                assert: [{type: equals, value: "4", transform: "String(output.split(' ').length)"}]
          - description: transformVars
            vars: {topic: cats}
            options:
              transformVars: "({topic: vars.topic.toUpperCase(), extra: 'x'})"
            assert:
              - {type: javascript, value: "context.prompt === 'Write about CATS' && context.vars.extra === 'x'"}
          - description: python transform
            options: {transform: "file://shape.py"}
            assert: [{type: is-json}]
    """, {"shape.py": """\
        import json


        def get_transform(output, context):
            return json.dumps({"words": len(output.split()), "topic": context["vars"].get("topic", "")})
    """})
    summary, results = _run(path)
    verdicts = {(r["cell"]["key"]["test"], r["cell"]["key"]["target"]): r["passed"] for r in results}
    assert verdicts == {
        ("provider transform", "raw"): False, ("provider transform", "wrapped"): True,
        ("test transform", "raw"): True, ("test transform", "wrapped"): True,
        ("default transform", "raw"): True, ("default transform", "wrapped"): True,
        ("assertion transform", "raw"): True, ("assertion transform", "wrapped"): True,
        ("transformVars", "raw"): True, ("transformVars", "wrapped"): True,
        ("python transform", "raw"): True, ("python transform", "wrapped"): True,
    }, [(r["cell"]["key"], r["gradings"]) for r in results if not r["passed"]]
    assert summary["runs"] == 12


def test_exceptions_timeouts_endless_loops_and_huge_results_fail_their_cell_alone(tmp_path: Path) -> None:
    path = _workspace(tmp_path, """\
        prompts: ["Write about {{topic}}"]
        providers: [fake/demo@tokens=4]
        tests:
          - description: throws
            assert:
              - type: javascript
                value: |
                  const data = JSON.parse('{}');
                  throw new TypeError('no verdict for ' + output.length);
          - description: endless
            assert:
              - type: javascript
                config: {timeout: 0.5}
                value: |
                  let spins = 0;
                  while (true) { spins += 1; }
          - description: slow promise
            assert:
              - type: javascript
                config: {timeout: 0.5}
                value: "new Promise((resolve) => setTimeout(() => resolve(true), 60000))"
          - description: huge
            assert: [{type: javascript, value: "'x'.repeat(2000000)"}]
          - description: transform throws
            options: {transform: "output.nothing.here"}
            assert: [{type: contains, value: a}]
          - description: still fine
            assert: [{type: javascript, value: "output.length > 0"}]
    """)
    summary, results = _run(path, "--concurrency", "1")
    reasons = {r["cell"]["key"]["test"]: r["gradings"][0]["reason"] for r in results}
    passed = {r["cell"]["key"]["test"]: r["passed"] for r in results}
    assert passed == {"throws": False, "endless": False, "slow promise": False, "huge": False,
                      "transform throws": False, "still fine": True}
    assert reasons["throws"].startswith("javascript: TypeError: no verdict for ") and "line 2" in reasons["throws"]
    assert reasons["endless"] == "javascript: timed out after 0.5 s (inline code)"
    assert reasons["slow promise"] == "javascript: timed out after 0.5 s (inline code)"
    assert "more than the limit of 1048576" in reasons["huge"]
    assert reasons["transform throws"].startswith("the transform failed: TypeError: Cannot read properties of undef")
    assert all("\n" not in reason for reason in reasons.values())
    assert summary["status"] == "done" and summary["runs"] == 6


async def test_one_warm_process_loads_each_module_once_and_restarts_after_a_timeout(tmp_path: Path) -> None:
    (tmp_path / "counter.js").write_text("let calls = 0;\nmodule.exports = () => ++calls;\n", encoding="utf-8")
    counter = js_function("file://counter.js", tmp_path)
    async with node_session(tmp_path) as bridge:
        assert [await bridge.call(counter, ["", {}]) for _ in range(3)] == [1, 2, 3]
        with pytest.raises(JavaScriptError, match=r"timed out after 0\.3 s"):
            await bridge.call(js_function("(() => { for (;;) {} })()", tmp_path, assertion=True), ["", {}],
                              time_limit=0.3)
        assert await bridge.call(counter, ["", {}]) == 1  # a new process: the module loaded again
        assert bridge.started == 2
    assert bridge.started == 2


def _path_without_node() -> str:
    return os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not (Path(d) / "node").exists())


@pytest.mark.parametrize(("suite", "where"), [
    ("""\
        prompts: [hi]
        providers: [fake/demo]
        tests:
          - description: plain
            assert: [{type: contains, value: a}]
          - description: needs js
            assert: [{type: javascript, value: "output.length > 0"}]
    """, "evals/suite.yaml:6: test 'needs js' runs JavaScript: it needs Node.js, and node is not on PATH"),
    ("""\
        prompts: [hi]
        providers:
          - id: fake/demo
            transform: output.trim()
    """, "evals/suite.yaml:4: the provider's transform is JavaScript: it needs Node.js, and node is not on PATH"),
])
def test_without_node_the_suite_fails_to_load_in_one_line(tmp_path: Path, suite: str, where: str) -> None:
    path = _workspace(tmp_path, suite)
    result = workbench("eval", str(path), cwd=tmp_path, env={"PATH": _path_without_node()})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"workbench: {where}", result.stderr
    assert "Traceback" not in result.stderr


def test_python_transforms_need_no_node(tmp_path: Path) -> None:
    path = _workspace(tmp_path, """\
        prompts: [hi]
        providers: [fake/demo@tokens=3]
        tests:
          - options: {transform: "file://upper.py:shout"}
            assert: [{type: regex, value: "^[A-Z ]+!$"}]
    """, {"upper.py": "def shout(output, context):\n    return output.upper() + '!'\n"})
    summary, results = _run(path, env={"PATH": _path_without_node()})
    assert summary["passes"] == 1 and results[0]["passed"]


def test_assertions_read_the_tests_metadata_as_context_test_metadata(tmp_path: Path) -> None:
    path = _workspace(tmp_path, """\
        prompts: ["Classify {{text}}"]
        providers: [fake/demo@tokens=2]
        tests:
          - vars: {text: great}
            metadata: {category: sentiment}
            assert:
              - {type: javascript, metric: js, value: "context.test.metadata.category === 'sentiment'"}
              - {type: python, metric: py, value: "context['test']['metadata']['category'] == 'sentiment'"}
          - vars: {text: blue}
            assert:
              - {type: javascript, metric: js, value: "Object.keys(context.test.metadata).length === 0"}
    """)
    summary, results = _run(path)
    assert summary["passes"] == 2
    assert all(grading["passed"] for result in results for grading in result["gradings"])
