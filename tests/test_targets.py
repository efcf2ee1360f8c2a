"""The targets of a run that names none, the local model's row in `workbench models`, and its price (0)."""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path

import pytest

from tests.test_cli import json_lines, workbench
from workbench.core import local_model, targets
from workbench.core.config import Settings, load_settings
from workbench.core.errors import ConfigError
from workbench.core.events import Usage
from workbench.core.local_model import LOCAL_URL_ENV, LocalModel
from workbench.core.pricing import PriceBook, UserPrice
from workbench.core.targets import KEYED_DEFAULTS, default_targets, local_ready, target_rows
from workbench.fakeserver.process import FakeServerProcess

LOCAL = "local/smollm2-135m"
NO_SERVERS = {"OLLAMA_HOST": "http://127.0.0.1:9", "LMSTUDIO_BASE_URL": "http://127.0.0.1:9/v1",
              "LLAMACPP_BASE_URL": "http://127.0.0.1:9/v1", "VLLM_BASE_URL": "http://127.0.0.1:9/v1"}


def settings(tmp_path: Path, toml: str = "") -> Settings:
    (tmp_path / "workbench.toml").write_text(toml, encoding="utf-8")
    return load_settings(tmp_path / "workbench.toml", user_file=tmp_path / "no-user-config.toml")


def never_discovered() -> list[str]:
    raise AssertionError("discovery runs only when no key is configured")


@pytest.fixture
def local_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targets, "local_ready", lambda model, env: True)


def test_configured_defaults_win_and_are_not_announced(tmp_path: Path) -> None:
    chosen = default_targets({"OPENAI_API_KEY": "sk-x"}, settings(tmp_path, """
[defaults]
targets = ["fast", "anthropic/claude-sonnet-4-5"]
[aliases]
fast = "groq/llama-3.3-70b-versatile"
"""), never_discovered)
    assert chosen.targets == ["groq/llama-3.3-70b-versatile", "anthropic/claude-sonnet-4-5"]
    assert chosen.notice is None


def test_with_keys_a_small_model_per_keyed_provider(tmp_path: Path) -> None:
    env = {"ANTHROPIC_API_KEY": "sk-a", "GOOGLE_API_KEY": "g-1", "OPENROUTER_API_KEY": "or-1"}
    chosen = default_targets(env, settings(tmp_path), never_discovered)
    assert chosen.targets == [KEYED_DEFAULTS["anthropic"], KEYED_DEFAULTS["gemini"]]
    assert chosen.notice and "[defaults] targets" in chosen.notice and "-m" in chosen.notice


def test_without_a_key_the_local_model_and_one_model_per_local_server(tmp_path: Path, local_installed: None) -> None:
    found = ["ollama/llama3.2", "ollama/qwen3", "lmstudio/phi-4"]
    chosen = default_targets({"OPENAI_BASE_URL": "http://gateway/v1"}, settings(tmp_path), lambda: found)
    assert chosen.targets == [LOCAL, "ollama/llama3.2", "lmstudio/phi-4"]
    assert chosen.notice and "no API key" in chosen.notice and "workbench keys set openai" in chosen.notice


def test_without_a_key_or_a_local_model_the_error_names_every_way_out(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targets, "local_ready", lambda model, env: False)
    with pytest.raises(ConfigError, match="no target given") as caught:
        default_targets({}, settings(tmp_path), list)
    hint = caught.value.hint or ""
    assert "workbench keys set openai" in hint and ".[local]" in hint and "-m" in hint


def test_the_local_model_is_ready_with_its_package_or_a_running_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(local_model.LOCAL_MODELS, "absent", LocalModel("workbench-no-such-package", "chatml"))
    assert not local_ready("absent", {})
    assert local_ready("absent", {LOCAL_URL_ENV: "http://127.0.0.1:5"})


def test_a_local_row_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targets, "local_ready", lambda model, env: False)
    local, openai = target_rows(settings(tmp_path), {}, [(LOCAL, "this machine"), ("openai/gpt-4.1-mini", "x")])
    assert local["ready"] is False and "pip install -e '.[local]'" in local["setup"]
    assert local["input_usd_per_mtok"] == local["output_usd_per_mtok"] == 0 and local["context_window"] == 2048
    assert openai["ready"] is False and openai["setup"] == "add a key: workbench keys set openai"


def test_local_compute_costs_zero_and_the_user_table_still_wins() -> None:
    usage = Usage(input_tokens=5_000, output_tokens=700)
    assert PriceBook().cost(LOCAL, usage) == Decimal(0)
    assert PriceBook().facts(LOCAL).source == "workbench"
    mine = PriceBook({"local/*": UserPrice(input_per_mtok=Decimal(1), output_per_mtok=Decimal(2))})
    assert mine.cost(LOCAL, usage) == Decimal("0.0064") and mine.facts(LOCAL).source == "user"


def test_models_lists_the_local_model(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text("", encoding="utf-8")
    result = workbench("models", "--json", cwd=tmp_path, env=NO_SERVERS)
    assert result.returncode == 0, result.stderr
    (row,) = [r for r in json_lines(result.stdout) if r["target"] == LOCAL]
    installed = importlib.util.find_spec("llama_cpp") is not None
    assert row["source"] == "this machine" and row["ready"] is installed and row["input_usd_per_mtok"] == 0


def test_run_with_a_key_and_no_target_races_that_providers_default(tmp_path: Path,
                                                                   fake_server: FakeServerProcess) -> None:
    (tmp_path / "workbench.toml").write_text("", encoding="utf-8")
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": f"{fake_server.base_url}/v1"}
    result = workbench("run", "hi", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert [r["target"] for r in json_lines(result.stdout)] == [KEYED_DEFAULTS["openai"]]
    assert "no target given: racing openai/gpt-4.1-mini" in result.stderr


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                    reason="llama-cpp-python is not installed: pip install -e '.[local]'")
def test_run_with_no_key_and_no_target_uses_the_local_model(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text("", encoding="utf-8")
    result = workbench("run", "Say hi", "--json", "--max-tokens", "8", cwd=tmp_path, env=NO_SERVERS)
    assert result.returncode == 0, result.stderr
    (row,) = json_lines(result.stdout)
    assert row["target"] == LOCAL and str(row["text"]).strip() and row["cost_usd"] == 0
    (notice,) = [line for line in result.stderr.splitlines() if "no API key" in line]
    assert LOCAL in notice and "workbench keys set openai" in notice
