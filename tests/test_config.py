"""Configuration: validation with file:line, user + workspace merge, custom providers, aliases, init, models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.resilience_helpers import server_log
from tests.test_cli import json_lines, workbench
from workbench.core.config import load_config, load_settings
from workbench.core.errors import ConfigError
from workbench.fakeserver.process import FakeServerProcess


@pytest.mark.parametrize(("text", "line", "where"), [
    ("[defaults]\nmax_tokens = 'lots'\n", 2, "defaults.max_tokens"),
    ("[defaults]\ntargets = []\ncolour = 'red'\n", 3, "defaults.colour"),
    ("# comment\n\n[providers.mylab]\nwire = 'smoke-signals'\nbase_url = 'http://x'\n", 4, "providers.mylab.wire"),
    ("[providers.mylab]\nkey_env = 'MYLAB_API_KEY'\n", 1, "needs base_url"),
    ("[traces]\nredact = ['email', 'passport']\n", 2, "unknown rule passport"),
    ("[traces.redact_custom]\norder = '(['\n", 2, "bad regex"),
    ("[aliases]\nfast = 3\n", 2, "aliases.fast"),
    ("[defaults\n", 1, "line 1"),
    ("# targets\n[defaults]\ntargets = ['fake/a', 'nosuch/x']\n", 3, "unknown provider 'nosuch' in 'nosuch/x'"),
    ("[defaults]\ntargets = ['fast']\n", 2, "'fast' is neither provider/model nor an alias"),
])
def test_broken_files_name_the_file_the_line_and_the_key(tmp_path: Path, text: str, line: int, where: str) -> None:
    path = tmp_path / "workbench.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, tmp_path / "no-user.toml")
    message = str(err.value)
    assert str(path) in message and where in message and err.value.hint
    if "line 1" not in where:
        assert f"{path}:{line}:" in message


def test_default_targets_may_use_the_other_files_aliases_and_providers(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text("[aliases]\nfast = 'mybox/a'\n[providers.mybox]\nbase_url = 'http://127.0.0.1:9/v1'\n",
                    encoding="utf-8")
    workspace = tmp_path / "workbench.toml"
    workspace.write_text("[defaults]\ntargets = ['fast', 'mybox/b', 'fake/c@tokens=2']\n", encoding="utf-8")
    assert load_config(workspace, user).config.defaults.targets == ("fast", "mybox/b", "fake/c@tokens=2")


def test_workspace_overrides_user_config_key_by_key(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text("[defaults]\nmax_tokens = 100\ntemperature = 0.5\n[aliases]\nfast = 'groq/a'\n", encoding="utf-8")
    workspace = tmp_path / "workbench.toml"
    workspace.write_text("[defaults]\nmax_tokens = 200\n[aliases]\nsmart = 'anthropic/b'\n", encoding="utf-8")
    loaded = load_config(workspace, user)
    assert (loaded.config.defaults.max_tokens, loaded.config.defaults.temperature) == (200, 0.5)
    assert loaded.config.aliases == {"fast": "groq/a", "smart": "anthropic/b"}
    assert loaded.origin["defaults.max_tokens"] == workspace and loaded.origin["defaults.temperature"] == user
    assert loaded.sources == [user, workspace]


def test_providers_are_changed_and_added(tmp_path: Path) -> None:
    path = tmp_path / "workbench.toml"
    path.write_text("[providers.openai]\nwire = 'openai_responses'\n[providers.mylab]\nbase_url = 'http://gpu:8000/v1'\n"
                    "key_env = 'MYLAB_API_KEY'\n[policy.retry]\nmax_retries = 0\n", encoding="utf-8")
    settings = load_settings(path)
    specs = settings.config.provider_specs()
    assert specs["openai"].wire == "openai_responses" and specs["openai"].key_env == ("OPENAI_API_KEY",)
    assert (specs["mylab"].wire, specs["mylab"].base_url, specs["mylab"].key_env) == (
        "openai_chat", "http://gpu:8000/v1", ("MYLAB_API_KEY",))
    assert settings.policies.for_target("x/y").retry.max_retries == 0


def test_a_configured_provider_wire_and_alias_drive_a_run(fake_server: FakeServerProcess, tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text(
        f"[providers.mylab]\nbase_url = '{fake_server.base_url}/v1'\n"
        f"[providers.openai]\nwire = 'openai_responses'\n"
        f"[aliases]\nquick = 'mylab/cfg@tokens=3,id=cfg-alias'\n"
        f"[defaults]\ntargets = ['quick', 'openai/gpt-4o@tokens=2,id=cfg-wire']\n", encoding="utf-8")
    env = {"OPENAI_BASE_URL": f"{fake_server.base_url}/v1", "OPENAI_API_KEY": "test"}
    result = workbench("run", "hello", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    rows = json_lines(result.stdout)
    assert [r["target"] for r in rows] == ["mylab/cfg@tokens=3,id=cfg-alias", "openai/gpt-4o@tokens=2,id=cfg-wire"]
    wires = {e["model"]: e["wire"] for e in server_log(fake_server.base_url) if "id=cfg-" in str(e["model"])}
    assert wires == {"cfg@tokens=3,id=cfg-alias": "openai_chat", "gpt-4o@tokens=2,id=cfg-wire": "openai_responses"}


def test_a_broken_workspace_file_stops_run_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text("[defaults]\n\nmax_tokens = -5\n", encoding="utf-8")
    result = workbench("run", "hi", "-m", "fake/x", cwd=tmp_path)
    assert result.returncode == 2 and "workbench.toml:3: defaults.max_tokens" in result.stderr
    assert "Traceback" not in result.stderr


def test_init_makes_a_workspace_and_is_idempotent(tmp_path: Path) -> None:
    first = workbench("init", str(tmp_path / "ws"))
    assert first.returncode == 0
    root = tmp_path / "ws"
    assert all((root / d).is_dir() for d in ("prompts", "evals", "sessions", "reports"))
    assert ".workbench/" in (root / ".gitignore").read_text() and (root / "workbench.toml").is_file()
    load_config(root / "workbench.toml", tmp_path / "none.toml")  # the template is valid
    again = workbench("init", str(root))
    assert "already complete" in again.stdout


def test_init_starts_with_a_prompt_and_its_suite_that_run(fake_env: dict[str, str], tmp_path: Path) -> None:
    root = tmp_path / "ws"
    made = workbench("init", str(root))
    assert "prompts/explain.yaml" in made.stdout and "evals/explain.yaml" in made.stdout
    steps = made.stdout.split("next:", 1)[1].splitlines()[1:]
    assert [line.split()[1] for line in steps] == ["run", "eval", "#"]  # run, eval, then the app
    env = {**fake_env, "WORKBENCH_TRACES": str(tmp_path / "t.db")}
    ran = workbench("run", "--prompt", "explain", "--var", "topic=unit tests", "-m", "fake/x", "--json", cwd=root,
                    env=env)
    assert ran.returncode == 0, ran.stderr
    assert json_lines(ran.stdout)[0]["prompt"] == "explain"
    evaluated = workbench("eval", "evals/explain.yaml", "-t", "fake/x", cwd=root, env=env)
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    assert "2/2 passed" in evaluated.stderr  # the summary goes to stderr, reports to stdout
    (root / "prompts" / "explain.yaml").write_text("name: explain\nmessages: [{role: user, content: mine}]\n")
    workbench("init", str(root))  # never overwrites what is there
    assert "content: mine" in (root / "prompts" / "explain.yaml").read_text()


def test_init_adds_no_starter_beside_existing_prompts(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "mine.yaml").write_text("name: mine\nmessages: [{role: user, content: hi}]\n")
    made = workbench("init", str(tmp_path))
    assert not (tmp_path / "prompts" / "explain.yaml").exists() and "next:" not in made.stdout


def test_models_lists_configured_and_discovered_targets(fake_server: FakeServerProcess, tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text("[defaults]\ntargets = ['openai/gpt-4.1-mini']\n", encoding="utf-8")
    env = {"OLLAMA_HOST": fake_server.base_url, "LMSTUDIO_BASE_URL": f"{fake_server.base_url}/v1",
           "LLAMACPP_BASE_URL": "http://127.0.0.1:9/v1", "VLLM_BASE_URL": "http://127.0.0.1:9/v1"}
    rows = json_lines(workbench("models", "--json", cwd=tmp_path, env=env).stdout)
    by_target = {r["target"]: r for r in rows}
    gpt = by_target["openai/gpt-4.1-mini"]
    assert gpt["source"] == "defaults" and gpt["ready"] is False and gpt["context_window"] == 1_000_000
    discovered = [r for r in rows if r["source"] == "discovered"]
    assert {r["provider"] for r in discovered} == {"ollama", "lmstudio"} and all(r["ready"] for r in discovered)


def test_config_show_lists_sources_and_masks_keys(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text("[defaults]\nmax_tokens = 42\n", encoding="utf-8")
    shown = workbench("config", "show", "--json", cwd=tmp_path, env={"OPENAI_API_KEY": "sk-show-me-not-12345678ABCD"})
    data = __import__("json").loads(shown.stdout)
    assert data["config"]["defaults"]["max_tokens"] == 42 and str(tmp_path / "workbench.toml") in data["sources"]
    assert data["keys"]["openai"] == {"source": "environment", "key": "…ABCD", "env_var": "OPENAI_API_KEY"}
    assert "sk-show-me-not" not in shown.stdout


def test_models_shows_prices_and_the_circuit_replayed_from_the_trace_log(tmp_path: Path) -> None:
    from tests.test_traces import synthetic
    from workbench.core.errors import ProviderHTTPError
    from workbench.core.traces.writer import TraceWriter

    (tmp_path / "workbench.toml").write_text("[defaults]\ntargets = ['openai/gpt-4.1-mini', 'groq/llama-x']\n",
                                             encoding="utf-8")
    db = tmp_path / "models.db"
    writer = TraceWriter(db)
    for record in synthetic(6, __import__("time").time() - 10):
        record.target = "groq/llama-x"
        record.error = ProviderHTTPError("groq/llama-x", 503, None, "down")
        writer.write(record)
    writer.close()
    rows = {r["target"]: r for r in json_lines(workbench("models", "--json", cwd=tmp_path,
                                                         env={"WORKBENCH_TRACES": str(db)}).stdout)}
    assert rows["groq/llama-x"]["circuit"] == "open" and rows["openai/gpt-4.1-mini"]["circuit"] == "closed"
    assert rows["openai/gpt-4.1-mini"]["input_usd_per_mtok"] > 0 and rows["groq/llama-x"]["input_usd_per_mtok"] is None
