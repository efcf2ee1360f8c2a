"""Where a promptfoo config's prompts, tests and variables come from, read as promptfoo reads them: each config
loads and runs as it is against the fake server, python assertions checking what was sent."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.test_cli import json_lines, workbench
from workbench.core.errors import ConfigError
from workbench.core.evals.suite import load_suite


def _files(root: Path, **files: str) -> None:
    for name, text in files.items():
        path = root / "evals" / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def _suite(root: Path, body: str, **files: str) -> Path:
    (root / "evals").mkdir(exist_ok=True)
    (root / "workbench.toml").write_text("", encoding="utf-8")
    _files(root, **files)
    path = root / "evals" / "promptfooconfig.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def _run(suite: Path, env: dict[str, str], *args: str) -> dict[str, object]:
    """The summary of a run that must pass every cell."""
    result = workbench("eval", str(suite), "--json", "--no-cache", *args, cwd=suite.parent.parent, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json_lines(result.stdout)[-1]
    assert summary["passes"] == summary["runs"], summary
    return summary


def _load_error(suite: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_suite(suite, suite.parent.parent)
    return str(info.value)


def _sent(prompt: str) -> str:
    """A python assertion that the prompt sent was exactly ``prompt`` (promptfoo's ``context['prompt']``: a text
    prompt's text, a chat as JSON)."""
    return "- " + json.dumps({"type": "python", "value": f"context['prompt'] == {prompt!r}"})


def test_a_question_mark_in_a_flow_mapping_is_text_as_js_yaml_reads_it(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, f"""\
        prompts: ["{{{{question}}}}"]
        providers: [fake/qmark@tokens=3]
        tests:
          - vars: {{question: Where is my parcel?, other: [what?, why]}}
            assert:
              {_sent("Where is my parcel?")}
        """)
    assert load_suite(suite, tmp_path).tests[0].vars["question"] == "Where is my parcel?"
    assert _run(suite, fake_env)["runs"] == 2  # the list expands into a test per value
    plain = _suite(tmp_path, """\
        prompts: ["{{answer}}"]
        providers: [fake/x]
        tests: [{vars: {answer: yes, short: n, switch: off, time: 1:30, flag: true, ratio: 1.5}}]
        """)
    assert load_suite(plain, tmp_path).tests[0].vars == {  # as js-yaml reads them
        "answer": "yes", "short": "n", "switch": "off", "time": "1:30", "flag": "true", "ratio": "1.5"}


def test_vars_from_a_file_and_values_read_from_files(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, f"""\
        prompts: ["{{{{greeting}}}} {{{{question}}}} {{{{order}}}}"]
        providers: [fake/varfiles@tokens=3]
        tests:
          - vars: file://vars.yaml
            assert:
              {_sent('Hello Where is it? {"id":7,"items":["tea"]}')}
        """, **{"vars.yaml": "greeting: Hello\nquestion: file://question.txt\norder: file://order.yaml\n",
                "question.txt": "\n  Where is it?\n\n", "order.yaml": "id: 7\nitems: [tea]\n"})
    test = load_suite(suite, tmp_path).tests[0]
    assert test.vars["question"] == "Where is it?"  # trimmed, as promptfoo reads a text file
    assert json.loads(test.vars["order"]) == {"id": 7, "items": ["tea"]}
    _run(suite, fake_env)


def test_a_block_value_loses_its_last_newline_as_in_promptfoo(tmp_path: Path) -> None:
    suite = _suite(tmp_path, """\
        prompts: ["{{text}}"]
        providers: [fake/nl]
        tests:
          - vars:
              text: |
                two
                lines
        """)
    assert load_suite(suite, tmp_path).tests[0].vars["text"] == "two\nlines"


def test_prompts_as_a_map_of_files_to_labels_and_as_a_glob(tmp_path: Path, fake_env: dict[str, str]) -> None:
    files = {"prompts__short.txt": "Short: {{q}}\n", "prompts__long.txt": "Long: {{q}}\n"}
    mapped = _suite(tmp_path, """\
        prompts:
          file://prompts/short.txt: terse
          prompts/long.txt: verbose
        providers: [fake/map@tokens=3]
        tests: [{vars: {q: tea}}]
        """, **files)
    assert [p.label for p in load_suite(mapped, tmp_path).prompts] == ["terse", "verbose"]
    assert _run(mapped, fake_env)["runs"] == 2
    globbed = _suite(tmp_path, """\
        prompts: [file://prompts/*.txt, {id: file://prompts/short.txt, label: again}]
        providers: [fake/glob@tokens=3]
        tests: [{vars: {q: tea}}]
        """)
    loaded = load_suite(globbed, tmp_path)
    assert [p.label for p in loaded.prompts] == ["prompts/long.txt", "prompts/short.txt", "again"]
    assert [p.prompt.messages[0].content for p in loaded.prompts] == ["Long: {{q}}", "Short: {{q}}", "Short: {{q}}"]


def test_text_csv_and_jsonl_prompt_files_read_as_promptfoo_reads_them(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, """\
        prompts: [file://p.txt, file://p.md, file://p.csv, file://p.jsonl]
        providers: [fake/files@tokens=3]
        tests: [{vars: {q: tea}}]
        """, **{"p.txt": "  One {{q}}  \n  ---  \nTwo {{q}}\n", "p.md": "# Title\n\n---\n\nAsk {{q}}\n",
                "p.csv": "prompt,label\nThree {{q}},third\n",
                "p.jsonl": '[{"role": "user", "content": "Four {{ q }}"}]\n[{"role": "user", "content": "Five"}]\n'})
    loaded = load_suite(suite, tmp_path)
    assert [(p.label, p.prompt.messages[0].content) for p in loaded.prompts] == [
        ("p.txt#1", "One {{q}}"), ("p.txt#2", "Two {{q}}"), ("p.md", "# Title\n\n---\n\nAsk {{q}}\n"),
        ("third", "Three {{q}}"), ("p.jsonl#1", "Four {{ q }}"),
        ("p.jsonl#2", "Five")]
    assert _run(suite, fake_env)["runs"] == 6


def test_a_python_prompt_function_gets_the_vars_and_provider_and_may_return_a_chat(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say tea"}]
    sent = ("tea for fake/fn@tokens=3 (fast)", json.dumps(chat, indent=2))  # promptfoo: a chat as indented JSON
    suite = _suite(tmp_path, f"""\
        prompts: [file://prompt.py:build, "file://prompt.py:as_chat"]
        providers: [{{id: fake/fn@tokens=3, label: fast}}]
        tests:
          - vars: {{topic: tea}}
            assert:
              - {json.dumps({"type": "python", "value": f"context['prompt'] in {sent!r}"})}
        """, **{"prompt.py": """\
            def build(context):
                provider = context["provider"]
                return f"{context['vars']['topic']} for {provider['id']} ({provider['label']})"

            def as_chat(context):
                return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say {{ topic }}"}]
            """})
    loaded = load_suite(suite, tmp_path)
    assert [p.label for p in loaded.prompts] == ["prompt.py:build", "prompt.py:as_chat"]
    assert _run(suite, fake_env)["runs"] == 2


def test_a_prompt_function_that_fails_fails_its_cells_in_one_line(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, """\
        prompts: [file://prompt.py:broken]
        providers: [fake/fnfail@tokens=3]
        tests: [{vars: {topic: tea}}]
        """, **{"prompt.py": "def broken(context):\n    raise ValueError('no prompt today')\n"})
    result = workbench("eval", str(suite), "--json", cwd=tmp_path, env=fake_env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    report = workbench("evals", "show", "last", cwd=tmp_path, env=fake_env)
    assert "the prompt function failed: ValueError: no prompt today" in report.stdout, report.stdout


def test_code_references_name_the_missing_file_and_find_the_present_one(tmp_path: Path) -> None:
    suite = _suite(tmp_path, """\
        prompts: [file://missing.py:build]
        providers: [fake/x]
        """)
    assert "promptfooconfig.yaml:1: no file 'missing.py' (for the prompt function 'file://missing.py:build')" in (
        _load_error(suite))
    suite = _suite(tmp_path, """\
        prompts: [hi]
        providers: [fake/x]
        tests: file://gen.py:cases
        """, **{"gen.py": "def cases():\n    return 'not a list'\n"})
    assert "promptfooconfig.yaml:3: the test generator returned a str, not a list of tests" in _load_error(suite)
    suite = _suite(tmp_path, """\
        prompts: [file://gen.py]
        providers: [fake/x]
        """)
    assert "promptfooconfig.yaml:1: the prompt function 'file://gen.py': name the Python function to call" in (
        _load_error(suite))


def test_tests_from_a_python_generator(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, """\
        prompts: ["Say {{word}}"]
        providers: [fake/gen@tokens=3]
        tests:
          - file://gen.py:cases
          - {description: by hand, vars: {word: tea}}
        """, **{"gen.py": """\
            def cases():
                return [{"description": f"say {w}", "vars": {"word": w},
                         "assert": [{"type": "python", "value": f"context['prompt'] == 'Say {w}'"}]}
                        for w in ("one", "two")]
            """})
    assert [t.key for t in load_suite(suite, tmp_path).tests] == ["say one", "say two", "by hand"]
    assert _run(suite, fake_env)["runs"] == 3


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_a_javascript_prompt_function_runs_in_node(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, f"""\
        prompts: [file://prompt.js]
        providers: [fake/jsfn@tokens=3]
        tests:
          - vars: {{topic: tea}}
            assert:
              {_sent("About tea")}
        """, **{"prompt.js": "module.exports = async ({ vars }) => `About ${vars.topic}`;\n"})
    _run(suite, fake_env)


def test_scenarios_cross_each_config_row_with_the_scenarios_tests(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, """\
        prompts: ["{{language}}: {{input}}"]
        providers: [fake/scenario@tokens=3]
        defaultTest:
          vars: {language: English}
        scenarios:
          - config:
              - vars: {language: French}
                metadata: {team: fr}
              - vars: {language: German}
            tests:
              - description: greeting
                vars: {input: Hello}
                assert: [{type: python, value: "context['prompt'].endswith(': Hello')"}]
              - vars: {input: Bye}
        """)
    tests = load_suite(suite, tmp_path).tests
    assert [(t.vars["language"], t.vars["input"]) for t in tests] == [
        ("French", "Hello"), ("French", "Bye"), ("German", "Hello"), ("German", "Bye")]
    assert tests[0].metadata == {"team": "fr"} and len(tests[0].assertions) == 1
    assert _run(suite, fake_env)["runs"] == 4


def test_assertion_templates_by_ref(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, """\
        assertionTemplates:
          sentTea:
            type: python
            value: "'tea' in context['prompt']"
        prompts: ["Say {{word}}"]
        providers: [fake/tmpl@tokens=3]
        tests:
          - vars: {word: tea}
            assert:
              - $ref: "#/assertionTemplates/sentTea"
        """)
    assert load_suite(suite, tmp_path).tests[0].assertions[0].type == "python"
    _run(suite, fake_env)
    broken = _suite(tmp_path, """\
        prompts: [hi]
        providers: [fake/x]
        tests:
          - assert:
              - $ref: "#/assertionTemplates/nothing"
        """)
    assert "promptfooconfig.yaml:5: $ref '#/assertionTemplates/nothing' names nothing in the config" in (
        _load_error(broken))


def test_prefix_and_suffix_from_a_test_the_default_test_and_csv_columns(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, f"""\
        prompts: ["Say {{{{word}}}}"]
        providers: [fake/affix@tokens=3]
        defaultTest:
          options: {{prefix: "Please. "}}
        tests:
          - description: default prefix, own suffix
            vars: {{word: tea}}
            options: {{suffix: " Now."}}
            assert:
              {_sent("Please. Say tea Now.")}
          - file://cases.csv
        """, **{"cases.csv": '''\
            word,__prefix,__suffix,__expected
            milk,"Kindly, ",!,"python: context['prompt'] == 'Kindly, Say milk!'"
            '''})
    assert [(t.prefix, t.suffix) for t in load_suite(suite, tmp_path).tests] == [
        ("Please. ", " Now."), ("Kindly, ", "!")]
    assert _run(suite, fake_env)["runs"] == 2
    chat = _suite(tmp_path, """\
        prompts: ['[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]']
        providers: [fake/x]
        tests: [{options: {prefix: "A "}}]
        """)
    assert "options.prefix and suffix apply to a prompt's text, and prompt 'prompt 1' is a chat" in _load_error(chat)


def test_csv_reserved_columns_as_promptfoo_reads_them(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, """\
        prompts: ["Say {{word}} {{__note}}"]
        providers: [fake/csvcols@tokens=3]
        tests: file://cases.csv
        """, **{"cases.csv": '''\
            word,__note,__expected1,__expected2,__config:__expected2:threshold,__metadata:tags[],__metadata:team
            tea,x,"python: 'tea' in context['prompt']","python: 0.4",0.3,"a, b\\, c",core
            '''})
    test = load_suite(suite, tmp_path).tests[0]
    assert test.vars == {"word": "tea", "__note": "x"}  # an unreserved __ column is a variable, as in promptfoo
    assert [a.threshold for a in test.assertions] == [None, 0.3]
    assert test.metadata == {"tags": ["a", "b, c"], "team": "core", "threshold": 0.3}
    _run(suite, fake_env)
    bad = _suite(tmp_path, """\
        prompts: [hi]
        providers: [fake/x]
        tests: file://bad.csv
        """, **{"bad.csv": "word,__config:__expected:weight\ntea,2\n"})
    assert "bad.csv:2: column __config:__expected:weight is not __config:__expected:threshold" in _load_error(bad)


@pytest.mark.parametrize(("test", "line", "expected"), [
    ("{providerOutput: canned}", 4, "'providerOutput' in a test (a fixed output instead of a call) is not supported"),
    ("{assertScoringFunction: file://s.js}", 4, "'assertScoringFunction' in a test"),
    ("{options: {storeOutputAs: reply}}", 4, "'options.storeOutputAs' in a test"),
    ("{options: {disableVarExpansion: true}}", 4, "'options.disableVarExpansion' in a test (list variables kept"),
])
def test_test_keys_that_change_what_runs_are_refused_at_their_line(
        tmp_path: Path, test: str, line: int, expected: str) -> None:
    suite = _suite(tmp_path, f"""\
        prompts: ["{{{{q}}}}"]
        providers: [fake/x]
        tests:
          - {test}
        """)
    assert f"promptfooconfig.yaml:{line}: {expected}" in _load_error(suite)


def test_a_tests_providers_and_prompts_choose_its_cells(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, """\
        prompts:
          - {id: "Short: {{q}}", label: short}
          - {id: "Long: {{q}}", label: long}
        providers:
          - {id: fake/fast@tokens=3, label: fast-model}
          - openai:chat:fake-filter
        tests:
          - {description: by label, vars: {q: a}, providers: [fast-model], prompts: [short]}
          - {description: by id, vars: {q: b}, providers: ["openai:chat:fake-filter"]}
          - {description: by wildcard, vars: {q: c}, providers: ["openai:*"], prompts: [long]}
          - {description: legacy prefix, vars: {q: d}, providers: [openai]}
          - {description: everywhere, vars: {q: e}}
        """)
    loaded = load_suite(suite, tmp_path)
    assert loaded.cell_count == 1 + 2 + 1 + 2 + 4
    env = {**fake_env, "OPENAI_BASE_URL": f"{fake_env['WORKBENCH_FAKE_URL']}/v1", "OPENAI_API_KEY": "sk-test"}
    assert _run(suite, env)["runs"] == 10
    for body, expected in (
            ("{vars: {q: a}, providers: [slow-model]}", "its providers (slow-model) match none of the suite's targets"),
            ("{vars: {q: a}, prompts: [medium]}", "its prompts (medium) match none of the suite's prompts")):
        broken = _suite(tmp_path, f"""\
            prompts: [{{id: "Short: {{{{q}}}}", label: short}}]
            providers: [{{id: fake/fast, label: fast-model}}]
            tests:
              - {body}
            """)
        assert f"promptfooconfig.yaml:4: test 'q=a': {expected}" in _load_error(broken)


def test_repeat_in_evaluate_options_and_metadata_in_the_results(tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = _suite(tmp_path, """\
        prompts: ["Say {{word}}"]
        providers: [fake/repeat@tokens=3]
        evaluateOptions: {repeat: 3}
        tests:
          - vars: {word: tea}
            metadata: {owner: evals}
            assert: [{type: python, value: "context['vars']['word'] == 'tea'"}]
        """)
    assert load_suite(suite, tmp_path).repeat == 3
    assert _run(suite, fake_env)["runs"] == 3
    report = workbench("evals", "show", "last", "--format", "json", cwd=tmp_path, env=fake_env)
    assert report.returncode == 0 and '"owner": "evals"' in report.stdout


def test_providers_from_yaml_files_as_promptfoo_loads_them(tmp_path: Path, fake_env: dict[str, str]) -> None:
    """``file://providers.yaml`` (a list; also as the whole ``providers:``) and ``file://one.yaml`` (one provider)
    are the providers the files write, each with its label and config; a problem in a file is at that file's line."""
    suite = _suite(tmp_path, """\
        prompts: ["Say {{topic}}"]
        providers: [file://providers.yaml, file://more.yaml]
        tests: [{vars: {topic: tea}, assert: [{type: icontains, value: tea}]}]
        """, **{"providers.yaml": """\
        - id: echo
          label: parrot
        """, "more.yaml": """\
        id: openai:chat:fake-model@tokens=2
        label: capped
        config: {max_tokens: 2}
        """})
    loaded = load_suite(suite, tmp_path)
    assert [(t.label, t.params.get("max_tokens")) for t in loaded.targets] == [("parrot", None), ("capped", 2)]
    result = workbench("eval", str(suite), "--json", "--no-cache", "--filter-providers", "parrot",
                       cwd=tmp_path, env=fake_env)
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["passes"] == 1
    _files(tmp_path, **{"more.yaml": "id: openai:chat:fake-model\nconfig: {temperature: hot}\n"})
    with pytest.raises(ConfigError) as caught:
        load_suite(suite, tmp_path)
    assert str(caught.value).startswith("evals/more.yaml:2: "), caught.value


def test_graders_by_kind_judge_the_model_graded_and_embed_the_similar_assertions(tmp_path: Path) -> None:
    """promptfoo's ``options.provider: {text, embedding}`` (examples/assertion-scoring-override): the text provider
    judges the model-graded assertions, the embedding one embeds for ``similar``; a test's own wins over the
    default test's, and an assertion's own provider over both."""
    suite = _suite(tmp_path, """\
        prompts: ["Translate {{text}}"]
        providers: [echo]
        defaultTest:
          assert: [{type: llm-rubric, value: Is fluent}]
          options:
            provider:
              text: openai:gpt-4o-mini
              embedding: openai:embedding:text-embedding-3-small
        tests:
          - vars: {text: hello}
            assert:
              - {type: similar, value: hola}
              - {type: similar, value: hola, provider: openai:embedding:text-embedding-3-large}
          - vars: {text: bye}
            options: {provider: {embedding: {id: openai:embeddings:emb-b}}}
            assert: [{type: similar, value: adios}]
        """)
    first, second = load_suite(suite, tmp_path).tests
    assert [(a.type, a.provider) for a in first.assertions] == [
        ("llm-rubric", "openai/gpt-4o-mini"), ("similar", "openai/text-embedding-3-small"),
        ("similar", "openai/text-embedding-3-large")]
    assert [(a.type, a.provider) for a in second.assertions] == [
        ("llm-rubric", "openai/gpt-4o-mini"), ("similar", "openai/emb-b")]
    (tmp_path / "evals" / "promptfooconfig.yaml").write_text(
        'prompts: ["hi"]\nproviders: [echo]\ntests:\n  - options:\n      provider:\n        moderation: x:y\n',
        encoding="utf-8")
    assert _load_error(suite).startswith("evals/promptfooconfig.yaml:6: a grader of kind 'moderation' is not "
                                         "supported")


def test_variables_computed_by_code_as_promptfoo_calls_it(tmp_path: Path, fake_env: dict[str, str]) -> None:
    """``context: file://load_context.py`` (promptfoo's examples/dynamic-var): ``get_var(var_name, prompt,
    other_vars)`` for each cell, its ``output`` the value; ``file://x.js`` the same in Node; an ``error`` it returns
    fails that cell with it."""
    suite = _suite(tmp_path, """\
        prompts: ["Context: {{context}} / {{extra}} / {{question}}"]
        providers: [echo]
        tests:
          - vars:
              question: Leave policy?
              context: file://load_context.py
              extra: file://extra.js
            assert:
              - type: equals
                value: "Context: docs for Leave policy? (context, 6 words) / js extra / Leave policy?"
          - vars: {question: fail, context: file://load_context.py:broken, extra: x}
        """, **{"load_context.py": """\
        def get_var(var_name, prompt, other_vars):
            return {"output": f"docs for {other_vars['question']} ({var_name}, {len(prompt.split())} words)"}

        def broken(var_name, prompt, other_vars):
            return {"error": "the index is down"}
        """, "extra.js": """\
        module.exports = (varName, prompt, otherVars) => ({output: 'js ' + varName});
        """})
    result = workbench("eval", str(suite), "--json", "--no-cache", "-o", str(tmp_path / "out.json"), cwd=tmp_path,
                       env=fake_env)
    assert result.returncode == 1, result.stderr
    first, second = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["results"]["results"]
    assert first["success"] is True, first["gradingResult"]
    assert first["vars"]["context"].startswith("docs for Leave policy?")
    assert second["success"] is False
    assert "the variable context (file://load_context.py:broken): the index is down" in second["error"]
