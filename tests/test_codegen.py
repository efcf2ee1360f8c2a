"""``workbench export code``: the generated Python (httpx, SDK) and curl run against the fake server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import CANARY, json_lines, workbench
from tests.test_run_prompt import GREET
from workbench.fakeserver.process import FakeServerProcess

TARGETS = ["openai/gpt-demo@tokens=6", "anthropic/claude-demo@tokens=6", "gemini/gemini-demo@tokens=6",
           "ollama/llama-demo@tokens=6"]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "workbench.toml").write_text("")
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "greet.yaml").write_text(GREET.replace("max_tokens: 3", "max_tokens: 50"))
    return tmp_path


@pytest.fixture
def env(fake_server: FakeServerProcess) -> dict[str, str]:
    """Every real provider pointed at the fake server, with a throwaway key."""
    base = fake_server.base_url
    return {"OPENAI_BASE_URL": f"{base}/v1", "ANTHROPIC_BASE_URL": base, "GOOGLE_GEMINI_BASE_URL": base,
            "OLLAMA_HOST": base, "OPENAI_API_KEY": CANARY, "ANTHROPIC_API_KEY": CANARY, "GEMINI_API_KEY": CANARY}


def code(ws: Path, env: dict[str, str], *argv: str) -> str:
    result = workbench("export", "code", "greet", "--var", "name=Ada", *argv, cwd=ws, env=env)
    assert result.returncode == 0, result.stderr
    assert CANARY not in result.stdout  # the key is read at run time, never written into the code
    return result.stdout


def expected_reply(ws: Path, env: dict[str, str], target: str) -> str:
    result = workbench("run", "--prompt", "greet", "--var", "name=Ada", "-m", target, "--json", cwd=ws, env=env)
    assert result.returncode == 0, result.stderr
    return str(json_lines(result.stdout)[0]["text"])


def execute(argv: list[str], source: str, env: dict[str, str]) -> str:
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL")) and k != "OLLAMA_HOST"}
    done = subprocess.run([*argv, source], capture_output=True, text=True, env={**base, **env}, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("target", TARGETS)
def test_python_httpx_code_prints_the_reply(ws: Path, env: dict[str, str], target: str) -> None:
    source = code(ws, env, "--target", target)
    assert source.startswith(f"# prompt greet v1: {target}") and "import httpx2" in source
    assert execute([sys.executable, "-c"], source, env).strip() == expected_reply(ws, env, target)


@pytest.mark.parametrize("target", TARGETS[:2])
def test_python_sdk_code_prints_the_reply(ws: Path, env: dict[str, str], target: str) -> None:
    source = code(ws, env, "--target", target, "--sdk")
    assert ("from openai import OpenAI" in source) or ("import anthropic" in source)
    assert execute([sys.executable, "-c"], source, env).strip() == expected_reply(ws, env, target)


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl and bash")
@pytest.mark.parametrize("target", TARGETS)
def test_curl_streams_the_reply(ws: Path, env: dict[str, str], target: str) -> None:
    source = code(ws, env, "--target", target, "--lang", "curl")
    assert source.count("curl ") == 1 and "$" in source
    out = execute(["bash", "-c"], source, env)
    assert all(word in out for word in expected_reply(ws, env, target).split())


def test_default_target_and_base_url_defaults(ws: Path, env: dict[str, str]) -> None:
    fake = code(ws, {}, "--lang", "curl")  # the prompt's own first target: fake/a@tokens=20
    assert '"${WORKBENCH_FAKE_URL}/v1/chat/completions"' in fake
    openai = code(ws, {}, "--target", "openai/gpt-4.1-mini")
    assert 'os.environ.get("OPENAI_BASE_URL", \'https://api.openai.com/v1\')' in openai
    assert 'os.environ["OPENAI_API_KEY"]' in openai and "'max_completion_tokens': 50" in openai
    anthropic = code(ws, {}, "--target", "anthropic/claude-sonnet-4-5", "--lang", "curl")
    assert "${ANTHROPIC_BASE_URL:-https://api.anthropic.com}/v1/messages" in anthropic
    assert '-H "x-api-key: $ANTHROPIC_API_KEY"' in anthropic and '"system": "Be kind."' in anthropic


@pytest.mark.parametrize(("argv", "message"), [
    (["--target", "gemini/gemini-2.5-flash", "--sdk"], "no official SDK"),
    (["--target", "openai/gpt-4.1-mini", "--sdk", "--lang", "curl"], "--sdk is for Python"),
    (["--target", "openai-responses/gpt-5"], "no code generation for the openai_responses"),
    (["--target", "nowhere/x"], "unknown provider"),
])
def test_unsupported_combinations_are_clear_errors(ws: Path, argv: list[str], message: str) -> None:
    result = workbench("export", "code", "greet", "--var", "name=Ada", *argv, cwd=ws)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
