"""Eval suites: ours and promptfoo's format, resolved into the shared domain model."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from workbench.core.errors import ConfigError
from workbench.core.evals.model import AssertionSpec
from workbench.core.evals.suite import load_suite
from workbench.core.prompts.model import Prompt, PromptMessage, dump_prompt
from workbench.core.prompts.versions import save_version, set_label, versions

DATA = Path(__file__).parent / "data"


def write_suite(workspace: Path, text: str, name: str = "suite.yaml") -> Path:
    path = workspace / "evals" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(workspace: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_suite(write_suite(workspace, text), workspace)
    return info.value


def write_prompt(workspace: Path, content: str) -> Prompt:
    prompt = Prompt(name="summarize", system="Be brief.", messages=[PromptMessage(role="user", content=content)])
    (workspace / "prompts").mkdir(exist_ok=True)
    (workspace / "prompts" / "summarize.yaml").write_text(dump_prompt(prompt), encoding="utf-8")
    return prompt


def test_promptfoo_config_loads(tmp_path: Path) -> None:
    suite = load_suite(DATA / "promptfooconfig.yaml", tmp_path)

    assert suite.description == "Support replies stay on policy"
    assert [p.label for p in suite.prompts] == ["eval_prompt_chat.json", "terse"]
    chat = suite.prompts[0].prompt
    assert chat.system == "You are a {{tone}} support agent for Acme."
    assert [(m.role, m.content) for m in chat.messages] == [("user", "{{question}}")]
    assert suite.prompts[1].prompt.messages[0].content == "Answer in one sentence, in a {{tone}} tone: {{question}}"
    assert suite.prompts[0].version is None

    assert [(t.ref, t.label, t.params) for t in suite.targets] == [
        ("openai/gpt-4o-mini", "mini", {"temperature": 0.2, "max_tokens": 256}),
        ("anthropic/claude-3-5-haiku-20241022", "anthropic/claude-3-5-haiku-20241022",
         {"temperature": 0.0, "max_tokens": 300, "top_p": 0.9}),
    ]
    assert (suite.repeat, suite.concurrency, suite.judge, suite.warnings) == (2, 4, "openai/gpt-4o", ())

    assert len(suite.tests) == 5
    refund = suite.tests[0]
    assert refund.description == "refund after the deadline"
    assert refund.vars == {"question": "Can I get a refund after 30 days?", "tone": "friendly"}
    assert [a.label for a in refund.assertions] == ["latency", "icontains", "not-contains", "llm-rubric"]
    assert refund.assertions[0].threshold == 5000
    assert refund.assertions[2] == AssertionSpec(type="contains", value="As an AI", negate=True, weight=2.0,
                                                 source=refund.assertions[2].source)
    assert (refund.assertions[3].weight, refund.assertions[3].metric) == (3.0, "helpfulness")
    assert refund.threshold == 0.8
    assert refund.metadata == {"category": "billing"}
    assert refund.source.endswith("promptfooconfig.yaml:33")
    assert refund.assertions[1].source.endswith("promptfooconfig.yaml:38")


def test_promptfoo_csv_and_jsonl_tests(tmp_path: Path) -> None:
    hours, canada, order, cancel = load_suite(DATA / "promptfooconfig.yaml", tmp_path).tests[1:]

    assert hours.description == "opening hours"
    assert hours.vars == {"question": "What are your opening hours?", "tone": "formal"}
    assert [(a.label, a.value) for a in hours.assertions] == [("latency", None), ("contains", "9am"),
                                                              ("not-icontains", "sorry")]
    assert hours.source.endswith("eval_tests.csv:2")
    assert canada.vars["question"] == "Do you ship to Canada, eh?"
    assert canada.description == ""
    assert [(a.label, a.value, a.threshold) for a in canada.assertions[1:]] == [("equals", "Yes", None),
                                                                              ("levenshtein", "Yes", 3.0)]

    assert order.description == "order status"
    assert order.assertions[1].value == ["tracking", "shipped"]
    assert order.source.endswith("eval_tests.jsonl:1")
    assert cancel.source.endswith("eval_tests.jsonl:3")
    assert cancel.assertions[1].type == "regex"


def test_native_suite_resolves_workspace_prompts_to_versions(tmp_path: Path) -> None:
    first = write_prompt(tmp_path, "Summarize: {{text}}")
    save_version(tmp_path, first)
    set_label(tmp_path, "summarize", "production", 1)
    save_version(tmp_path, write_prompt(tmp_path, "Summarize in one line: {{text}}"))
    path = write_suite(tmp_path, """\
        description: summaries
        prompts:
          - summarize@production
          - summarize@2
          - {label: inline, system: Be terse., messages: [{role: user, content: "{{text}}"}]}
        targets:
          - fake/gpt-4o
          - {id: ollama/llama3, label: local, config: {temperature: 0, seed: 7}}
        judge: openai/gpt-4o
        gate: 0.9
        repeat: 3
        tests:
          - vars: {text: A long article.}
            assert: [{type: contains, value: article}]
    """)

    suite = load_suite(path, tmp_path)

    assert [(p.label, p.version) for p in suite.prompts] == [("summarize@1", 1), ("summarize@2", 2), ("inline", None)]
    assert suite.prompts[0].prompt == first
    assert suite.prompts[2].prompt.system == "Be terse."
    assert [(t.ref, t.label, t.params) for t in suite.targets] == [
        ("fake/gpt-4o", "fake/gpt-4o", {}), ("ollama/llama3", "local", {"temperature": 0.0, "seed": 7})]
    assert (suite.name, suite.path, suite.gate, suite.repeat, suite.judge) == (
        "suite", "evals/suite.yaml", 0.9, 3, "openai/gpt-4o")
    assert suite.cell_count == 6


def test_bare_prompt_name_is_saved_as_a_version_and_unsaved_edits_are_warned(tmp_path: Path) -> None:
    write_prompt(tmp_path, "Summarize: {{text}}")
    path = write_suite(tmp_path, "prompts: [summarize]\ntargets: [fake/m]\ntests: [{vars: {text: x}}]\n")

    assert [p.label for p in load_suite(path, tmp_path).prompts] == ["summarize@1"]
    assert [v.number for v in versions(tmp_path, "summarize")] == [1]

    write_prompt(tmp_path, "Summarize briefly: {{text}}")
    suite = load_suite(path, tmp_path)
    assert suite.prompts[0].label == "summarize@1"
    assert suite.warnings == ("evals/suite.yaml:1: 'summarize' is version 1; the working file has changes saved in "
                              "no version (save them: workbench prompts save summarize)",)


def test_unsupported_promptfoo_keys_are_warned_by_name(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, """\
        prompts: ["Hello {{name}}"]
        providers:
          - id: openai:gpt-4o-mini
            config: {temperature: 0.5, cost: 0.001}
        outputPath: results.json
        sharing: true
        evaluateOptions: {delay: 100, showProgressBar: false}
        tests:
          - vars: {name: Ada}
            options: {runSerially: true}
    """), tmp_path)

    assert suite.warnings == (
        "evals/suite.yaml:6: 'sharing' is not supported (ignored)",
        "evals/suite.yaml:4: 'config.cost' is not supported (ignored)",
        "evals/suite.yaml:10: 'options.runSerially' is not supported (ignored)",
        "evals/suite.yaml:7: 'showProgressBar' is not supported (ignored)",
    )
    assert suite.output_paths == ("results.json",) and suite.limits.delay_ms == 100  # honoured, not warned
    assert suite.prompts[0].label == "prompt 1"
    assert suite.targets[0].params == {"temperature": 0.5}


@pytest.mark.parametrize(("head", "line", "key"), [
    ("env: {OPENAI_API_KEY: sk-x}\nproviders: [openai:gpt-4o-mini]\n", 2, "env"),
    ("extensions: [file://hooks.js:extensionHook]\nproviders: [openai:gpt-4o-mini]\n", 2, "extensions"),
    ("providers:\n  - id: openai:gpt-4o-mini\n    env: {OPENAI_BASE_URL: x}\n", 4, "env"),
])
def test_promptfoo_keys_that_would_change_the_calls_stop_the_load(tmp_path: Path, head: str, line: int,
                                                                   key: str) -> None:
    (tmp_path / "evals").mkdir()
    suite = tmp_path / "evals" / "suite.yaml"
    suite.write_text('prompts: ["Hello {{name}}"]\n' + head + "tests:\n  - vars: {name: Ada}\n")
    with pytest.raises(ConfigError) as caught:
        load_suite(suite, tmp_path)
    assert str(caught.value).startswith(f"evals/suite.yaml:{line}: '{key}' is not supported: "), str(caught.value)


@pytest.mark.parametrize(("text", "expected", "hint"), [
    ("prompts: [hi]\nproviders: [fake/m]\ntests:\n  - assert:\n      - type: is-sql\n        value: x\n",
     "evals/suite.yaml:5: assertion type 'is-sql' is not supported", "contains, contains-all"),
    ("prompts: [hi]\nproviders: [fake/m]\ntests:\n  - assert:\n      - type: not-meteor\n",
     "evals/suite.yaml:5: assertion type 'meteor' is not supported", "levenshtein"),
    ("prompts: [hi]\nproviders: [fake/m]\ntests:\n  - assert: [{type: assert-set}]\n",
     "evals/suite.yaml:4: an assert-set needs its assertions", "list them under assert:"),
    ("prompts: [hi]\nproviders:\n  - fake/m\n  - bedrock:anthropic.claude-v2\ntests: []\n",
     "evals/suite.yaml:4: provider 'bedrock:anthropic.claude-v2' is not supported", "openai:"),
    ("prompts: [hi]\nproviders: ['exec: python chain.py']\n",
     "evals/suite.yaml:2: provider 'exec: python chain.py' is not supported", None),
    ("prompts: [hi]\nproviders: [openai:completion:davinci]\n",
     "evals/suite.yaml:2: provider 'openai:completion:davinci' is not supported (the completion API)", None),
    ("prompts: [hi]\ntargets: [fake/m]\ntest:\n  - vars: {a: 1}\n",
     "evals/suite.yaml:3: unknown key 'test' in a suite", "tests"),
    ("prompts: [hi]\ntargets: [fake/m]\ntests:\n  - vars: {a: 1}\n    asert: []\n",
     "evals/suite.yaml:5: unknown key 'asert' in a test", None),
    ("prompts: [hi]\ntargets: [fake/m]\ntests:\n  - vars: {a: 1\n",
     "evals/suite.yaml:5: YAML syntax error", None),
    ("prompts: [hi]\ntargets: [{id: fake/m, config: {temperature: 9}}]\n",
     "evals/suite.yaml:2: temperature: Input should be less than or equal to 2", None),
    ("prompts: [hi]\ntargets: [fake/m]\ngate: 2\n", "evals/suite.yaml:3: gate 2 is not between 0 and 1", None),
    ("prompts: [file://nothere.txt]\ntargets: [fake/m]\n", "evals/suite.yaml:1: no file 'file://nothere.txt'", None),
    ("prompts: [hi]\ntargets: [{id: fake/m, label: a}, {id: fake/n, label: a}]\n",
     "evals/suite.yaml:2: a second target labelled 'a'", None),
])
def test_malformed_suites_name_file_and_line(tmp_path: Path, text: str, expected: str, hint: str | None) -> None:
    error = load_error(tmp_path, text)
    assert str(error).startswith(expected)
    assert error.hint
    if hint is not None:
        assert hint in error.hint


def test_missing_prompt_version_is_located(tmp_path: Path) -> None:
    save_version(tmp_path, write_prompt(tmp_path, "Summarize: {{text}}"))
    error = load_error(tmp_path, "targets: [fake/m]\nprompts:\n  - summarize@staging\n")
    assert str(error) == "evals/suite.yaml:3: prompt 'summarize' has no label 'staging'"


def test_text_naming_no_workspace_prompt_is_an_inline_prompt(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, "prompts: [missing@3]\ntargets: [fake/m]\n"), tmp_path)
    assert (suite.prompts[0].label, suite.prompts[0].prompt.messages[0].content) == ("prompt 1", "missing@3")


def test_csv_shorthand_for_unsupported_types_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "eval_cases.csv").write_text("q,__expected\nhi,grade: is polite\nyo,is-sql: 1\n")
    error = load_error(tmp_path, "prompts: ['{{q}}']\ntargets: [fake/m]\ntests: file://eval_cases.csv\n")
    assert str(error) == "evals/eval_cases.csv:3: assertion type 'is-sql' is not supported"


def test_list_variables_expand_into_one_test_per_combination(tmp_path: Path) -> None:
    (tmp_path / "evals" / "docs").mkdir(parents=True)
    (tmp_path / "evals" / "docs" / "a.md").write_text("Doc A")
    (tmp_path / "evals" / "docs" / "b.md").write_text("Doc B")
    suite = load_suite(write_suite(tmp_path, """\
        prompts: ["{{lang}}: {{doc}} ({{n}})"]
        targets: [fake/m]
        defaultTest: {vars: {n: 1, lang: en}}
        tests:
          - description: translate
            vars: {lang: [fr, de], doc: "file://docs/*.md"}
          - vars: {doc: [x, y]}
    """), tmp_path)

    assert [(t.description, t.vars) for t in suite.tests[:4]] == [
        ("translate (lang=fr, doc=Doc A)", {"n": "1", "lang": "fr", "doc": "Doc A"}),
        ("translate (lang=fr, doc=Doc B)", {"n": "1", "lang": "fr", "doc": "Doc B"}),
        ("translate (lang=de, doc=Doc A)", {"n": "1", "lang": "de", "doc": "Doc A"}),
        ("translate (lang=de, doc=Doc B)", {"n": "1", "lang": "de", "doc": "Doc B"}),
    ]
    assert [t.vars["doc"] for t in suite.tests[4:]] == ["x", "y"]
    assert len({t.key for t in suite.tests}) == 6


def test_tests_with_the_same_key_are_numbered_apart(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, """\
        prompts: [hi]
        targets: [fake/m]
        tests: [{description: same}, {description: same}]
    """), tmp_path)
    assert [t.description for t in suite.tests] == ["same", "same #2"]
    assert suite.warnings == ("evals/suite.yaml:3: a second test 'same': named 'same #2'",)


def test_no_tests_means_one_run_with_the_default_test(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path, "prompts: [hi]\ntargets: [fake/m]\ndefaultTest:\n"
                                             "  assert: [{type: is-json}]\n"), tmp_path)
    assert [(t.vars, [a.type for a in t.assertions]) for t in suite.tests] == [({}, ["is-json"])]


def test_digest_is_stable_and_follows_content(tmp_path: Path) -> None:
    first = load_suite(DATA / "promptfooconfig.yaml", tmp_path)
    assert load_suite(DATA / "promptfooconfig.yaml", tmp_path).digest == first.digest

    copy = tmp_path / "elsewhere"
    shutil.copytree(DATA, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    assert load_suite(copy / "promptfooconfig.yaml", tmp_path).digest == first.digest

    csv = copy / "eval_tests.csv"
    csv.write_text(csv.read_text().replace("9am", "8am"))
    assert load_suite(copy / "promptfooconfig.yaml", tmp_path).digest != first.digest
