"""``workbench models``: a table with a header (target, provider, where, key status, context window, prices per
million tokens) listing the local model and the cloud providers' current models from the bundled price data;
``--json`` with the same fields; a key's source shown, never the key."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_cli import json_lines, workbench
from workbench.core.keys import set_key
from workbench.core.pricing import PriceBook, current_models
from workbench.core.targets import KEYED_DEFAULTS

CANARY = "sk-canary-models-0123456789abcdef"
NO_SERVERS = {"OLLAMA_HOST": "http://127.0.0.1:9", **{f"{name}_BASE_URL": "http://127.0.0.1:9/v1"
                                                      for name in ("LMSTUDIO", "LLAMACPP", "VLLM")}}
FIELDS = ("target", "provider", "where", "key", "context_window", "input_usd_per_mtok", "output_usd_per_mtok")


def test_cloud_models_come_from_the_price_data_current_and_priced() -> None:
    for provider in ("openai", "anthropic", "gemini"):
        models = current_models(provider)
        assert models and all(m.startswith(f"{provider}/") for m in models)
        for target in models:
            facts = PriceBook().facts(target)
            assert facts.context_window and facts.source == "genai-prices"
            assert not re.search(r"audio|image|tts|embed|realtime|preview", target)
    assert current_models("openrouter") == current_models("groq") == ()  # gateways: everyone's models


def test_models_is_a_table_with_key_sources_windows_and_prices(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text("[defaults]\ntargets = ['fake/demo']\n", encoding="utf-8")
    set_key("anthropic", "sk-ant-stored-in-the-keyring-9876")
    env = {**NO_SERVERS, "OPENAI_API_KEY": CANARY}
    table = workbench("models", cwd=tmp_path, env=env)
    listed = workbench("models", "--json", cwd=tmp_path, env=env)
    assert table.returncode == listed.returncode == 0, table.stderr + listed.stderr
    for out in (table.stdout + table.stderr, listed.stdout + listed.stderr):
        assert CANARY not in out and CANARY[-12:] not in out and "sk-ant-stored" not in out

    header = table.stdout.splitlines()[0].split()
    assert header[:5] == ["target", "provider", "where", "key", "context"] and "$/1M" in header
    rows = {row["target"]: row for row in json_lines(listed.stdout)}
    assert all(set(FIELDS) <= set(row) for row in rows.values())

    gpt = rows[KEYED_DEFAULTS["openai"]]
    assert (gpt["where"], gpt["key"], gpt["ready"]) == ("cloud", "env OPENAI_API_KEY", True)
    price_in, price_out = gpt["input_usd_per_mtok"], gpt["output_usd_per_mtok"]
    assert gpt["context_window"] and isinstance(price_in, float) and isinstance(price_out, float)
    assert price_in > 0 and price_out > 0
    assert all(rows[target]["source"] == "current" for target in current_models("openai"))
    claude = rows[current_models("anthropic")[0]]
    assert (claude["where"], claude["key"]) == ("cloud", "set in keyring")
    assert rows[KEYED_DEFAULTS["gemini"]]["key"] == "missing" and rows[KEYED_DEFAULTS["gemini"]]["ready"] is False
    assert (rows["fake/demo"]["where"], rows["fake/demo"]["key"]) == ("fake", "not needed")
    assert (rows["local/smollm2-135m"]["where"], rows["local/smollm2-135m"]["input_usd_per_mtok"]) == ("local", 0)

    line = next(line for line in table.stdout.splitlines() if line.startswith(f"{KEYED_DEFAULTS['openai']} "))
    window = f"{gpt['context_window']:,}"
    assert line.split()[1:5] == ["openai", "cloud", "env", "OPENAI_API_KEY"] and window in line.split()
    assert f"${price_in:g}" in line.split() and f"${price_out:g}" in line.split()
    assert "not ready (" in table.stdout and "workbench keys set gemini" in table.stdout
