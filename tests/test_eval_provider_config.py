"""A provider's ``config`` in a promptfoo suite: its own base URL, key, headers and parameters, for every wire and for
the judges; keys that cannot be honoured fail the load at their line; a key given in the suite is never written."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, cast

import pytest

from tests.eval_suites import workspace_suite
from tests.resilience_helpers import server_log
from tests.test_cli import CANARY, json_lines, workbench
from tests.test_secrets_echo import key_encodings
from workbench.fakeserver.app import mask_key
from workbench.fakeserver.process import FakeServerProcess

CLOSED = "http://127.0.0.1:9/v1"
"""A base URL nothing answers: the environment's, which a provider's config must override."""


def _eval(suite: Path, env: dict[str, str] | None = None, *args: str):  # type: ignore[no-untyped-def]
    return workbench("eval", str(suite), "--json", *args, cwd=suite.parent.parent, env=env)


def _sent(server: FakeServerProcess, marker: str) -> list[dict[str, object]]:
    return [entry for entry in server_log(server.base_url) if marker in str(entry["model"])]


def test_base_url_key_headers_and_parameters_from_config_win_over_the_environment(
        tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    literal = f"sk-suite-literal-{marker}-0001"
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Say {{{{topic}}}}"]
        providers:
          - id: openai:chat:fake-model@tokens=3,id={marker}
            config:
              apiBaseUrl: {fake_server.base_url}/v1
              apiKey: {literal}
              temperature: 0.2
              max_tokens: 50
              top_p: 0.5
              seed: 4
              stop: END
              response_format: {{type: json_object}}
              headers: {{X-Team: evals}}
              organization: org-7
        tests:
          - vars: {{topic: tea}}
            assert: [{{type: finish-reason, value: stop}}]
        """)
    result = _eval(suite, {"OPENAI_API_KEY": "sk-from-the-environment-0000", "OPENAI_BASE_URL": CLOSED})
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["passes"] == 1
    (sent,) = _sent(fake_server, marker)
    assert sent["key"] == mask_key(literal)
    headers = sent["headers"]
    assert isinstance(headers, dict) and headers["x-team"] == "evals" and headers["openai-organization"] == "org-7"
    params = sent["params"]
    assert isinstance(params, dict)
    assert {k: params[k] for k in ("temperature", "max_completion_tokens", "top_p", "seed", "stop")} == {
        "temperature": 0.2, "max_completion_tokens": 50, "top_p": 0.5, "seed": 4, "stop": ["END"]}
    assert params["response_format"] == {"type": "json_object"}


def test_api_key_envar_names_the_variable_the_key_comes_from(tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Say hi"]
        providers:
          - id: openai:chat:fake-model@tokens=2,id={marker}
            config: {{apiBaseUrl: "{fake_server.base_url}/v1", apiKeyEnvar: TEAM_OPENAI_KEY}}
        tests: [{{vars: {{}}}}]
        """)
    team_key = f"sk-team-key-{marker}-4242"
    result = _eval(suite, {"TEAM_OPENAI_KEY": team_key, "OPENAI_API_KEY": "sk-default-key-000000000"})
    assert result.returncode == 0, result.stderr
    assert [entry["key"] for entry in _sent(fake_server, marker)] == [mask_key(team_key)]


@pytest.mark.parametrize(("provider", "root", "field"), [
    ("anthropic:messages:claude-x", "", ("temperature",)),
    ("google:gemini-x", "", ("generationConfig", "temperature")),
    ("vertex:gemini-x", "", ("generationConfig", "temperature")),
    ("ollama:chat:llama-x", "", ("options", "temperature")),
    ("openai:responses:gpt-x", "/v1", ("temperature",)),
    ("groq:llama-x", "/v1", ("temperature",)),
])
def test_every_wire_takes_its_base_url_key_headers_and_temperature_from_config(
        provider: str, root: str, field: tuple[str, ...], tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    key = f"sk-wire-key-{marker}-9876"
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Say hi"]
        providers:
          - id: "{provider}@tokens=2,id={marker}"
            config:
              apiBaseUrl: "{fake_server.base_url}{root}"
              apiKey: {key}
              headers: {{X-Suite: "{marker}"}}
              temperature: 0.3
        tests: [{{vars: {{}}, assert: [{{type: finish-reason, value: stop}}]}}]
        """)
    result = _eval(suite)
    assert result.returncode == 0, result.stderr
    (sent,) = _sent(fake_server, marker)
    assert sent["key"] == mask_key(key)
    headers = sent["headers"]
    assert isinstance(headers, dict) and headers["x-suite"] == marker
    value: object = sent["params"]
    for name in field:
        assert isinstance(value, dict)
        value = value[name]
    assert value == 0.3


def test_the_same_provider_twice_with_two_configs_is_two_columns_cached_apart(
        tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Say {{{{topic}}}}"]
        providers:
          - id: openai:chat:fake-model@tokens=2,id={marker}
            label: cold
            config: {{apiBaseUrl: "{fake_server.base_url}/v1", apiKey: sk-a-0000000000, temperature: 0}}
          - id: openai:chat:fake-model@tokens=2,id={marker}
            label: team
            config: {{apiBaseUrl: "{fake_server.base_url}/v1", apiKey: sk-b-0000000000, headers: {{X-Team: b}}}}
        tests: [{{vars: {{topic: tea}}}}, {{vars: {{topic: rain}}}}]
        """)
    first = _eval(suite)
    assert first.returncode == 0, first.stderr
    preflight, summary = json_lines(first.stdout)
    assert preflight["preflight"] == {**preflight["preflight"], "calls": 4}  # type: ignore[dict-item]
    assert summary["runs"] == 4
    teams = [dict(entry["headers"]).get("x-team") for entry in _sent(fake_server, marker)]  # type: ignore[call-overload]
    assert sorted(map(str, teams)) == ["None", "None", "b", "b"]
    again = json_lines(_eval(suite).stdout)[0]["preflight"]
    assert isinstance(again, dict) and (again["calls"], again["cached"]) == (0, 4)
    cells = workbench("evals", "show", str(summary["run"]), "--format", "json", cwd=tmp_path)
    assert cells.returncode == 0, cells.stderr
    assert "cold" in cells.stdout and "team" in cells.stdout


def test_a_prompts_config_is_merged_over_each_providers_config_for_that_prompt(
        tmp_path: Path, fake_server: FakeServerProcess) -> None:
    """promptfoo's providers read ``{...provider config, ...prompt.config}``: a prompt's ``response_format`` and
    ``temperature`` go out with that prompt only, over the provider's (as in promptfoo's examples/f-score)."""
    marker = uuid.uuid4().hex[:8]
    suite = workspace_suite(tmp_path, f"""\
        prompts:
          - label: plain
            raw: "Plain {{{{topic}}}}"
          - label: strict
            raw: "Strict {{{{topic}}}}"
            config:
              temperature: 0.25
              response_format: {{type: json_object}}
        providers:
          - id: openai:chat:fake-model@tokens=2,id={marker}
            config: {{apiBaseUrl: "{fake_server.base_url}/v1", apiKey: sk-a-0000000000, temperature: 0.9}}
        tests: [{{vars: {{topic: tea}}}}]
        """)
    result = _eval(suite)
    assert result.returncode == 0, result.stderr
    assert "not supported" not in result.stderr
    bodies = [cast(dict[str, Any], entry["params"]) for entry in _sent(fake_server, marker)]
    assert sorted((body["temperature"], str(body.get("response_format"))) for body in bodies) == [
        (0.25, "{'type': 'json_object'}"), (0.9, "None")]


def test_a_json_schema_reply_reaches_code_assertions_parsed_as_promptfoos_openai_provider_hands_it_on(
        tmp_path: Path, fake_server: FakeServerProcess) -> None:
    """promptfoo's OpenAI chat provider parses a reply asked for with ``response_format: {type: json_schema}``
    (``output.sentiment`` in examples/f-score); with ``json_object`` the output stays the text."""
    base = f'apiBaseUrl: "{fake_server.base_url}/v1"\n              apiKey: sk-a-0000000000'
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Classify this"]
        providers:
          - id: openai:chat:fake-model@tokens=3,json=1
            label: schema
            config:
              {base}
              response_format: {{type: json_schema, json_schema: {{name: a, schema: {{type: object}}}}}}
          - id: openai:chat:fake-model@tokens=3,json=1
            label: object
            config:
              {base}
              response_format: {{type: json_object}}
        tests:
          - assert:
              - type: javascript
                value: "typeof output === 'object' && output.answer.split(' ').length === 3"
              - type: is-json
        """)
    out = tmp_path / "results.json"
    result = _eval(suite, None, "-o", str(out))
    assert result.returncode == 1, result.stderr  # the json_object column fails the javascript assertion
    records = json.loads(out.read_text(encoding="utf-8"))["results"]["results"]
    verdicts = {r["provider"]["label"]: [c["pass"] for c in r["gradingResult"]["componentResults"]] for r in records}
    assert verdicts == {"schema": [True, True], "object": [False, True]}


def test_a_prompts_config_the_provider_cannot_take_fails_at_the_prompts_line(tmp_path: Path) -> None:
    suite = workspace_suite(tmp_path, """\
        prompts:
          - raw: "Hi"
            config: {response_format: {type: json_object}}
        providers: [anthropic:messages:claude-sonnet-4-5]
        tests: [{vars: {}}]
        """)
    result = _eval(suite)
    assert result.returncode == 2
    assert result.stderr.startswith("workbench: evals/suite.yaml:3: "), result.stderr
    assert "response_format" in result.stderr


def test_a_grader_on_its_own_base_url_with_its_own_key(tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Say hi"]
        providers:
          - id: fake/model@tokens=2,id={marker}-model
        defaultTest:
          options:
            provider:
              id: openai:chat:grader@tokens=3,id={marker}-grader
              config:
                apiBaseUrl: "{fake_server.base_url}/v1"
                apiKey: sk-grader-key-{marker}
                headers: {{X-Role: grader}}
        tests:
          - vars: {{}}
            assert:
              - type: llm-rubric
                value: says hi
              - type: llm-rubric
                value: is short
                provider:
                  id: openai:chat:second@tokens=3,id={marker}-second
                  config: {{apiBaseUrl: "{fake_server.base_url}/v1", apiKeyEnvar: SECOND_KEY, temperature: 0.4}}
        """)
    result = _eval(suite, {"OPENAI_BASE_URL": CLOSED, "SECOND_KEY": f"sk-second-{marker}-1111"})
    assert result.returncode in (0, 1), result.stderr
    (grader,) = _sent(fake_server, f"{marker}-grader")
    assert grader["key"] == mask_key(f"sk-grader-key-{marker}")
    assert grader["headers"]["x-role"] == "grader"  # type: ignore[index]
    (second,) = _sent(fake_server, f"{marker}-second")
    assert second["key"] == mask_key(f"sk-second-{marker}-1111")
    assert second["params"]["temperature"] == 0.4  # type: ignore[index]


@pytest.mark.parametrize(("provider", "config", "line", "reason"), [
    ("openai:chat:gpt-4o-mini", "logprobs: true", 5, "config.logprobs cannot be honoured"),
    ("anthropic:messages:claude-x", "seed: 3", 5, "has no seed field"),
    ("anthropic:messages:claude-x", "temperature: 1.5", 5, "temperature is 0 to 1"),
    ("anthropic:messages:claude-x", "response_format: {type: json_object}", 5, "only OpenAI's APIs"),
    ("openai:responses:gpt-x", "stop: [END]", 5, "has no stop field"),
    ("openai:chat:gpt-4o-mini", "apiKey: '{{ env.MY_KEY }}'", 5, "use apiKeyEnvar"),
    ("openai:chat:gpt-4o-mini", "apiBaseUrl: not-a-url", 5, "not a usable base URL"),
    ("ollama:chat:llama", "apiHost: example.com", 5, "use apiBaseUrl"),
    ("openai:chat:gpt-4o-mini", "n: 3", 5, "config.n cannot be honoured for openai:chat:gpt-4o-mini: a call reads one "
     "choice, not 3"),
    ("openai:chat:gpt-4o-mini", "passthrough: {n: 2}", 5, "config.passthrough.n cannot be honoured"),
    ("openai:responses:gpt-x", "n: 1", 5, "only Chat Completions takes n"),
    ("google:gemini-x", "generationConfig: {candidateCount: 4}", 5, "generationConfig.candidateCount cannot be "
     "honoured"),
])
def test_a_config_key_that_cannot_be_honoured_fails_the_load_at_its_line(
        provider: str, config: str, line: int, reason: str, tmp_path: Path) -> None:
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Say hi"]
        providers:
          - id: "{provider}"
            config:
              {config}
        tests: [{{vars: {{}}}}]
        """)
    result = _eval(suite)
    first = result.stderr.splitlines()[0]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"evals/suite.yaml:{line}:" in first and reason in first


def test_a_grader_config_that_cannot_be_honoured_fails_the_load(tmp_path: Path) -> None:
    suite = workspace_suite(tmp_path, """\
        prompts: ["Say hi"]
        providers: [fake/m]
        defaultTest:
          options:
            provider:
              id: anthropic:messages:claude-x
              config: {seed: 1}
        tests: [{vars: {}}]
        """)
    result = _eval(suite)
    assert result.returncode == 2 and "evals/suite.yaml:7:" in result.stderr and "seed" in result.stderr


def test_a_key_written_in_the_suite_is_never_written_anywhere(tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Say hi"]
        providers:
          - id: openai:chat:fake-model@echo_key=1,id={marker}
            label: echoed
            config: {{apiBaseUrl: "{fake_server.base_url}/v1", apiKey: {CANARY}}}
          - id: openai:chat:fake-model@tokens=2,id={marker}-ok
            label: fine
            config: {{apiBaseUrl: "{fake_server.base_url}/v1", apiKey: {CANARY}}}
          - id: http
            label: gateway
            config:
              url: "{fake_server.base_url}/v1/chat/completions"
              headers: {{Authorization: "Bearer {CANARY}"}}
              body: {{model: "m@echo_key=1,id={marker}-http", stream: false, messages: []}}
        defaultTest:
          options:
            provider:
              id: openai:chat:grader@tokens=3,id={marker}-grader
              config: {{apiBaseUrl: "{fake_server.base_url}/v1", apiKey: {CANARY}}}
        tests:
          - vars: {{}}
            assert: [{{type: finish-reason, value: stop}}, {{type: llm-rubric, value: says something}}]
        """)
    reports = [flag for kind in ("md", "json", "junit", "html") for flag in ("--report", kind)]
    result = _eval(suite, {}, "--out", str(tmp_path / "reports"), *reports)
    assert result.returncode == 1, result.stderr
    run = str(json_lines(result.stdout)[-1]["run"])
    shown = workbench("evals", "show", run, "--format", "json", cwd=tmp_path)
    exported = workbench("traces", "export", cwd=tmp_path)
    assert shown.stdout.count("[key]") >= 2  # the providers' echoes of the key (an API, the http one), scrubbed
    assert len(list((tmp_path / "reports").iterdir())) == 4
    assert len(_sent(fake_server, f"{marker}-grader")) == 1  # the one answered cell was graded, with the key
    written = "".join(r.stdout + r.stderr for r in (result, shown, exported))
    written += "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p != suite)
    assert [form for form in key_encodings(CANARY) if form in written] == []
    assert CANARY[-12:] not in written


def test_an_embedding_provider_with_its_own_base_url_and_key(tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Say hi"]
        providers: ["fake/model@tokens=2,id={marker}"]
        tests:
          - vars: {{}}
            assert:
              - type: similar
                value: hello there
                threshold: 0
                provider:
                  id: openai:embedding:text-embedding-3-small
                  label: local embeddings
                  config: {{apiBaseUrl: "{fake_server.base_url}/v1", apiKey: sk-embed-{marker}}}
        """)
    result = _eval(suite, {"OPENAI_BASE_URL": CLOSED, "OPENAI_API_KEY": "sk-env-0000000000"})
    assert result.returncode in (0, 1), result.stderr
    import json

    shown = workbench("evals", "show", str(json_lines(result.stdout)[-1]["run"]), "--format", "json", cwd=tmp_path)
    (grading,) = [g for c in json.loads(shown.stdout)["cells"] for r in c["results"] for g in r["gradings"]]
    assert "cosine similarity" in grading["reason"], grading


def test_the_same_id_twice_without_labels_runs_twice_numbered(tmp_path: Path, fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Say hi"]
        providers:
          - id: openai:chat:fake-model@tokens=2,id={marker}
            config: {{apiBaseUrl: "{fake_server.base_url}/v1", apiKey: sk-x-00000000, temperature: 0}}
          - id: openai:chat:fake-model@tokens=2,id={marker}
            config: {{apiBaseUrl: "{fake_server.base_url}/v1", apiKey: sk-x-00000000, temperature: 1}}
        tests: [{{vars: {{}}}}]
        """)
    result = _eval(suite)
    assert result.returncode == 0, result.stderr
    assert sorted(e["params"]["temperature"] for e in _sent(fake_server, marker)) == [0, 1]  # type: ignore[index]
    import json

    shown = workbench("evals", "show", str(json_lines(result.stdout)[-1]["run"]), "--format", "json", cwd=tmp_path)
    targets = sorted(c["key"]["target"] for c in json.loads(shown.stdout)["cells"])
    assert targets == [f"openai/fake-model@tokens=2,id={marker}", f"openai/fake-model@tokens=2,id={marker} #2"]


def test_a_provider_on_its_own_base_url_without_a_key_says_where_one_goes(tmp_path: Path,
                                                                          fake_server: FakeServerProcess) -> None:
    marker = uuid.uuid4().hex[:8]
    suite = workspace_suite(tmp_path, f"""\
        prompts: ["Say hi"]
        providers:
          - id: openai:chat:fake-model@tokens=2,id={marker}
            label: keyless
            config: {{apiBaseUrl: "{fake_server.base_url}/v1", apiKeyEnvar: TEAM_KEY}}
          - id: openai:chat:fake-model@tokens=2,id={marker}-open
            label: open
            config: {{apiBaseUrl: "{fake_server.base_url}/v1", apiKeyRequired: false}}
        tests: [{{vars: {{}}, assert: [{{type: finish-reason, value: stop}}]}}]
        """)
    result = _eval(suite)
    assert result.returncode == 1, result.stderr
    import json

    shown = workbench("evals", "show", str(json_lines(result.stdout)[-1]["run"]), "--format", "json", cwd=tmp_path)
    errors = {c["key"]["target"]: r["observation"]["error"] for c in json.loads(shown.stdout)["cells"]
              for r in c["results"]}
    assert errors["open"] is None  # no key needed: called without one
    assert "no API key for openai" in errors["keyless"]
    assert [e["key"] for e in _sent(fake_server, marker)] == [None]
