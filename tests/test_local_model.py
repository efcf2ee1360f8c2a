"""``local/smollm2-135m``: the real model on the CPU through llama.cpp's server, streamed like any provider."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import httpx2
import pytest

from tests.test_cli import json_lines, workbench
from workbench.core import local_model
from workbench.core.errors import ConfigError
from workbench.core.local_model import LOCAL_URL_ENV, LocalModel, local_models, local_server, model_file
from workbench.core.netproc import NetworkProcess
from workbench.core.registry import resolve
from workbench.core.request import ChatRequest, ModelRef, Params
from workbench.fakeserver.process import FakeServerProcess

TARGET = "local/smollm2-135m"
needs_runtime = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                   reason="llama-cpp-python is not installed: pip install -e '.[local]'")


@pytest.fixture(scope="module")
def local_url() -> Iterator[str]:
    """One local model server for the module's tests."""
    with local_server(["smollm2-135m"]) as url:
        yield url


def test_local_targets_are_picked_out_of_a_race() -> None:
    assert local_models([" local/smollm2-135m", "openai/gpt-4o", "LOCAL/smollm2-135m", "local/", "fake/x"]) == [
        "smollm2-135m"]


def test_without_a_server_the_local_provider_says_what_to_do() -> None:
    with pytest.raises(ConfigError, match="no local model server is running") as caught:
        resolve(ModelRef.parse(TARGET), {})
    assert LOCAL_URL_ENV in (caught.value.hint or "")
    endpoint = resolve(ModelRef.parse(TARGET), {LOCAL_URL_ENV: "http://127.0.0.1:5/"})
    assert endpoint.base_url == "http://127.0.0.1:5/v1" and endpoint.wire == "openai_chat" and endpoint.api_key is None


def test_a_missing_model_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(local_model.LOCAL_MODELS, "absent", LocalModel("workbench-no-such-package", "chatml"))
    with pytest.raises(ConfigError, match="needs the package workbench-no-such-package") as caught:
        model_file("absent")
    assert ".[local]" in (caught.value.hint or "")


@needs_runtime
def test_workbench_run_starts_the_local_model_and_streams_from_it() -> None:
    result = workbench("run", "-m", TARGET, "--json", "--max-tokens", "8", "Say hi")
    assert result.returncode == 0, result.stderr
    (row,) = json_lines(result.stdout)
    assert row["status"] == "ok" and row["error"] is None and str(row["text"]).strip()
    assert isinstance(row["ttft_ms"], float) and isinstance(row["tokens_per_s"], float)
    assert row["finish_reason"] in ("stop", "length")
    assert row["usage_estimated"] is True  # llama.cpp's server sends no usage in a stream: counted here instead
    assert isinstance(row["output_tokens"], int) and row["output_tokens"] > 0


@needs_runtime
def test_the_network_process_streams_from_a_running_local_server(local_url: str) -> None:
    request = ChatRequest.from_prompt("Name one colour.", params=Params(max_tokens=8, temperature=0))
    with NetworkProcess() as net:
        race = net.race(request, [TARGET], {LOCAL_URL_ENV: local_url})
        assert race.wait(timeout=60)
    (record,) = race.records
    assert record.error is None and record.text.strip()
    assert record.timing.ttft_ms is not None and record.timing.ttft_ms > 0
    assert record.usage_estimated and record.usage is not None
    assert record.usage.output_tokens > 0 and record.usage.input_tokens > 0


def test_an_unknown_local_model_fails_alone(fake_env: dict[str, str]) -> None:
    """Like an unknown provider, an unknown local model fails its own column (with the known ones named); the
    other targets run, and no local server is started for it."""
    result = workbench("run", "hi", "-m", "fake/demo", "-m", "local/nope", "--json", env=fake_env)
    assert result.returncode == 1, result.stderr
    ok, unknown = json_lines(result.stdout)
    assert ok["status"] == "ok" and unknown["status"] == "error"
    assert "unknown local model 'local/nope'" in str(unknown["error"]) and "starting the local" not in result.stderr


@needs_runtime
def test_a_local_reply_without_usage_is_counted_by_the_server_with_its_chat_template(local_url: str) -> None:
    """llama-cpp-python's server streams no usage: the prompt is counted by its own tokenizer as its chat format
    lays it out (system and turn markers), as it counts a prompt it answers without streaming."""
    request = ChatRequest.from_prompt("Explain in one sentence what a token is.", system="You are terse.",
                                      params=Params(max_tokens=8, temperature=0))
    with NetworkProcess() as net:
        race = net.race(request, [TARGET], {LOCAL_URL_ENV: local_url})
        assert race.wait(timeout=60)
    (record,) = race.records
    assert record.error is None and record.usage is not None and record.usage_estimated
    unstreamed = httpx2.post(f"{local_url}/v1/chat/completions", timeout=60, json={
        "model": "smollm2-135m", "max_tokens": 8, "temperature": 0,
        "messages": [{"role": "system", "content": "You are terse."},
                     {"role": "user", "content": "Explain in one sentence what a token is."}]}).json()
    assert record.usage.input_tokens == unstreamed["usage"]["prompt_tokens"]
    assert unstreamed["choices"][0]["message"]["content"] == record.text  # the same reply, so the same count
    assert record.usage.output_tokens == unstreamed["usage"]["completion_tokens"]


def test_a_llamacpp_reply_without_usage_is_counted_with_the_servers_template(fake_server: FakeServerProcess) -> None:
    """A llama.cpp server that streams no usage: the prompt is counted by ``/apply-template`` then ``/tokenize``
    (with the special tokens it adds), the reply by ``/tokenize``; the usage is still flagged estimated."""
    env = {"LLAMACPP_BASE_URL": f"{fake_server.base_url}/v1"}
    result = workbench("run", "hi there", "--system", "be brief", "-m", "llamacpp/demo@usage=0,tokens=5", "--json",
                       env=env)
    assert result.returncode == 0, result.stderr
    (row,) = json_lines(result.stdout)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}]
    prompt = httpx2.post(f"{fake_server.base_url}/apply-template", json={"messages": messages}).json()["prompt"]
    counted = httpx2.post(f"{fake_server.base_url}/tokenize", json={"content": prompt, "add_special": True}).json()
    assert row["input_tokens"] == len(counted["tokens"]) and row["output_tokens"] == 5
    assert row["usage_estimated"] is True
    reported = json_lines(workbench("run", "hi there", "-m", "llamacpp/demo@tokens=5", "--json", env=env).stdout)[0]
    assert reported["usage_estimated"] is False  # a server that sends usage is taken at its word
