"""promptfoo's templating (Nunjucks) in eval suites: filters, tags, unset variables, chat JSON templates,
the sandbox; our prompt files keep requiring every variable."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import json_lines, workbench
from workbench.core.errors import ConfigError
from workbench.core.evals.prompt_render import render_request
from workbench.core.evals.runner import cells
from workbench.core.evals.suite import load_suite
from workbench.core.templating import StructuredVar, TemplateError, render

VALUES: dict[str, Any] = {"name": "ada lovelace", "padded": "  hi  ", "tags": StructuredVar(["x", "y", "z"]),
                          "user": StructuredVar({"name": "Ada", "langs": ["en", "fr"]}), "empty": ""}


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ name | upper }}", "ADA LOVELACE"),
    ("{{ 'ADA' | lower }}", "ada"),
    ("{{ name | title }}", "Ada Lovelace"),
    ("{{ 'hello-world foo' | title }}", "Hello-world Foo"),  # Nunjucks: words split on spaces only
    ("[{{ padded | trim }}]", "[hi]"),
    ('{{ name | replace("a", "4") }}', "4d4 lovel4ce"),
    ('{{ missing | default("none") }}', "none"),
    ('{{ empty | default("none") }}', ""),
    ('{{ empty | default("none", true) }}', "none"),
    ('{{ tags | join(", ") }}', "x, y, z"),
    ("{{ tags | length }} {{ name | length }} {{ missing | length }}", "3 12 0"),
    ("{{ tags | first }}{{ tags | last }}", "xz"),
    ("{{ user | dump }}", '{"name":"Ada","langs":["en","fr"]}'),
    ("{{ tags | dump(2) }}", '[\n  "x",\n  "y",\n  "z"\n]'),
    ("{{ 'a\"b' | dump }}", '"a\\"b"'),
    ("{{ tags | reverse | join }}", "zyx"),
    ("{{ 'abcdefghij' | truncate(5) }}", "ab..."),
    ("{{ user.name }} speaks {{ user.langs | join('/') }}", "Ada speaks en/fr"),
    ("{{ tags }}", '["x", "y", "z"]'),
    ("{% if user %}yes{% else %}no{% endif %}{% if missing %}!{% endif %}", "yes"),
    ("{% for t in tags %}{{ loop.index }}{{ t }}{% if not loop.last %},{% endif %}{% endfor %}", "1x,2y,3z"),
    ("a{# a comment #}b", "ab"),
    ("{% for t in missing %}never{% endfor %}done", "done"),
])
def test_nunjucks_filters_and_tags(template: str, expected: str) -> None:
    assert render(template, VALUES) == expected


def test_unset_variables_render_empty_and_are_collected() -> None:
    missing: set[str] = set()
    assert render("[{{ nobody }}][{{ nobody.name }}][{{ name }}]", VALUES, missing) == "[][][ada lovelace]"
    assert missing == {"nobody"}
    absent: set[str] = set()
    assert render("{% if nobody %}x{% endif %}{{ nobody | default('d') }}", VALUES, absent) == "d"
    assert absent == set()  # asked about, never rendered: nothing missing


@pytest.mark.parametrize("template", ["{{ ''.__class__ }}", "{{ name.__class__.__mro__ }}",
                                      "{{ user.__init__.__globals__ }}"])
def test_the_sandbox_refuses_internals(template: str) -> None:
    with pytest.raises(TemplateError, match="refused by the template sandbox") as info:
        render(template, VALUES)
    assert "\n" not in str(info.value)


def test_each_distinct_template_is_compiled_once() -> None:
    from workbench.core import templating

    source = "{{ name }} compiled once " + "x" * 8
    before = templating._compiled.cache_info()
    for _ in range(50):
        render(source, VALUES)
    after = templating._compiled.cache_info()
    assert after.misses - before.misses == 1 and after.hits - before.hits == 49


def _suite(tmp_path: Path, body: str, files: dict[str, str] | None = None) -> Path:
    (tmp_path / "workbench.toml").write_text("", encoding="utf-8")
    (tmp_path / "evals").mkdir(exist_ok=True)
    for name, text in (files or {}).items():
        (tmp_path / "evals" / name).write_text(textwrap.dedent(text), encoding="utf-8")
    path = tmp_path / "evals" / "suite.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_promptfoo_prompts_render_with_nunjucks_and_warn_once_per_unset_variable(tmp_path: Path) -> None:
    suite = load_suite(_suite(tmp_path, """\
        prompts:
          - "{# greeting #}Hello {{ name | title }}{% if vip %} (VIP){% endif %}: {{ topic }}{{ mood }}"
        providers: [fake/demo]
        tests:
          - vars: {name: ada lovelace, vip: true, topic: "{{ tags | length }} tags", tags: [{t: a}, {t: b}]}
          - vars: {name: bob}
          - vars: {name: cy}
    """), tmp_path)
    requests = [render_request(cell.prompt, cell.test.vars) for cell in cells(suite, 1)]
    texts = [r.messages[0].content for r in requests]
    assert texts[0] == "Hello Ada Lovelace (VIP): 2 tags"
    assert texts[1:] == ["Hello Bob: ", "Hello Cy: "]
    assert suite.warnings == (
        "evals/suite.yaml:5: variable 'mood' is not set: rendered empty (as promptfoo does)",
        "evals/suite.yaml:6: variable 'topic' is not set: rendered empty (as promptfoo does)",
    )


def test_a_json_chat_prompt_with_a_for_loop_is_rendered_before_it_is_read(tmp_path: Path) -> None:
    chat = """\
        [
          {"role": "system", "content": "You answer {{ tone }}ly."},
          {% for turn in history %}
          {"role": "{{ turn.role }}", "content": "{{ turn.text }}"},
          {% endfor %}
          {"role": "user", "content": "{{ question }}"}
        ]
    """
    suite = load_suite(_suite(tmp_path, """\
        prompts: [file://chat.json]
        providers: [fake/demo]
        tests:
          - vars:
              tone: kind
              question: "Say \\"hi\\"\\non two lines"
              history: [{role: user, text: Hi}, {role: assistant, text: Hello!}]
    """, {"chat.json": chat}), tmp_path)
    request = render_request(suite.prompts[0], suite.tests[0].vars)
    assert request.system == "You answer kindly."
    assert [(m.role, m.content) for m in request.messages] == [
        ("user", "Hi"), ("assistant", "Hello!"), ("user", 'Say "hi"\non two lines')]
    assert suite.warnings == ()


def test_our_prompt_files_still_need_every_variable(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "greet.yaml").write_text(
        "name: greet\nmessages:\n  - {role: user, content: 'Hi {{who}}'}\n", encoding="utf-8")
    suite = load_suite(_suite(tmp_path, """\
        prompts: [greet]
        providers: [fake/demo]
        tests:
          - vars: {other: x}
    """), tmp_path)
    assert suite.warnings == ()
    with pytest.raises(ConfigError, match="needs a value for who"):
        render_request(suite.prompts[0], suite.tests[0].vars)


def test_an_unsafe_template_stops_the_suite_in_one_line(tmp_path: Path) -> None:
    path = _suite(tmp_path, """\
        prompts: ["{{ name.__class__ }}"]
        providers: [fake/demo]
        tests:
          - vars: {name: x}
    """)
    result = workbench("eval", str(path), cwd=tmp_path)
    assert result.returncode == 2
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith("workbench: evals/suite.yaml:4: test ") and "refused by the template sandbox" in first
    assert "Traceback" not in result.stderr


def test_a_template_syntax_error_is_located(tmp_path: Path) -> None:
    path = _suite(tmp_path, """\
        prompts:
          - "fine"
          - "{% if x %}never closed"
        providers: [fake/demo]
    """)
    with pytest.raises(ConfigError, match=r"evals/suite.yaml:3: template syntax error"):
        load_suite(path, tmp_path)


def test_an_eval_grades_the_rendered_prompt_and_templated_assertion_values(tmp_path: Path) -> None:
    path = _suite(tmp_path, """\
        prompts: ["Tags: {% for t in tags %}{{ t.name | upper }};{% endfor %}{{ unset }}"]
        providers: [fake/demo@tokens=4]
        tests:
          - vars: {tags: [{name: a}, {name: b}], word: Tags}
            assert:
              - type: python
                value: "context['prompt'] == 'Tags: A;B;'"
              - type: equals
                value: "{{ word | lower }}-{{ nothing }}"
              - type: not-contains
                value: "{{ word }}"
    """)
    result = workbench("eval", str(path), "--json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # equals "tags-" fails against the fake reply
    summary = json_lines(result.stdout)[-1]
    assert summary["passes"] == 0
    warnings = [line for line in result.stderr.splitlines() if "is not set" in line]
    unset = "workbench: evals/suite.yaml:4: variable '{}' is not set: rendered empty (as promptfoo does)"
    assert warnings == [unset.format("nothing"), unset.format("unset")]
    shown = workbench("evals", "show", "last", "--format", "json", cwd=tmp_path)
    cell = json.loads(shown.stdout)["cells"][0]["results"][0]
    reasons = {g["assertion"]: g for g in cell["gradings"]}
    assert reasons["python"]["passed"] and reasons["not-contains"]["passed"]
    assert "'tags-'" in reasons["equals"]["reason"]


def test_a_boolean_variable_is_a_boolean_to_conditions_and_its_yaml_text_to_the_prompt(tmp_path: Path) -> None:
    suite = load_suite(_suite(tmp_path, """\
        prompts: ["{% if strict %}strict{% else %}lenient{% endif %} {{ strict }}"]
        providers: [fake/demo]
        tests:
          - vars: {strict: true}
          - vars: {strict: false}
    """), tmp_path)
    texts = [render_request(cell.prompt, cell.test.vars).messages[0].content for cell in cells(suite, 1)]
    assert texts == ["strict true", "lenient false"]
