"""``workbench proxy`` (capture mode) over real HTTP: the proxy as a subprocess in front of the fake server, the
official openai and anthropic SDKs pointed at it, the trace log read back with ``workbench traces list --json``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest

from tests.test_cli import json_lines, workbench
from workbench.fakeserver.process import FakeServerProcess

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
MESSAGES = [{"role": "user", "content": "Say something"}]


class Proxy:
    def __init__(self, url: str, process: subprocess.Popen[str]) -> None:
        self.url, self.process = url, process

    def stop(self) -> None:
        """Ctrl-C: the proxy finishes, commits its traces and exits 0."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=30) == 0, self.process.stderr.read() if self.process.stderr else ""


def start_proxy(*args: str, cwd: Path | None = None, **urls: str) -> Iterator[Proxy]:
    """``workbench proxy --port 0 ARGS`` (in ``cwd``) with these base URL variables (and no other provider
    settings), stopped after."""
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL")) and k != "OLLAMA_HOST"}
    process = subprocess.Popen([sys.executable, "-m", "workbench", "proxy", "--port", "0", *args],
                               env={**base, **urls}, cwd=cwd, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on " in line, process.stderr.read() if process.stderr else line
    yield Proxy(line.split("listening on ", 1)[1].split()[0], process)
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def proxy(fake_server: FakeServerProcess) -> Iterator[Proxy]:
    yield from start_proxy(OPENAI_BASE_URL=f"{fake_server.base_url}/v1", ANTHROPIC_BASE_URL=fake_server.base_url)


def traces() -> list[dict[str, object]]:
    result = workbench("traces", "list", "--json")
    assert result.returncode == 0, result.stderr
    return json_lines(result.stdout)


def test_openai_and_anthropic_sdks_read_the_same_text_through_the_proxy_and_each_call_is_traced(
        proxy: Proxy, fake_server: FakeServerProcess) -> None:
    direct_openai = openai.OpenAI(base_url=f"{fake_server.base_url}/v1", api_key=CANARY)
    proxied_openai = openai.OpenAI(base_url=f"{proxy.url}/openai/v1", api_key=CANARY)
    model = "m@tokens=12"
    direct = direct_openai.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
    through = proxied_openai.chat.completions.create(model=model, messages=MESSAGES,  # type: ignore[arg-type]
                                                     extra_headers={"X-Workbench-Tags": "app,prod",
                                                                    "X-Workbench-Session": "s-1"})
    assert through.choices[0].message.content == direct.choices[0].message.content
    stream = proxied_openai.chat.completions.create(model=model, messages=MESSAGES, stream=True,  # type: ignore[arg-type]
                                                    stream_options={"include_usage": True})
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == direct.choices[0].message.content

    direct_anthropic = anthropic.Anthropic(base_url=fake_server.base_url, api_key=CANARY)
    proxied_anthropic = anthropic.Anthropic(base_url=f"{proxy.url}/anthropic", api_key=CANARY)
    reply = direct_anthropic.messages.create(model=model, max_tokens=100, messages=MESSAGES)  # type: ignore[arg-type]
    text = "".join(b.text for b in reply.content if b.type == "text")
    proxied = proxied_anthropic.messages.create(model=model, max_tokens=100, messages=MESSAGES)  # type: ignore[arg-type]
    assert "".join(b.text for b in proxied.content if b.type == "text") == text
    with proxied_anthropic.messages.stream(model=model, max_tokens=100, messages=MESSAGES) as events:  # type: ignore[arg-type]
        assert "".join(events.text_stream) == text
    proxy.stop()

    rows = list(reversed(traces()))  # oldest first
    assert [(r["target"], r["status"], r["finish_reason"]) for r in rows] == [
        ("openai/m@tokens=12", "ok", "stop")] * 2 + [("anthropic/m@tokens=12", "ok", "stop")] * 2
    assert all(r["output_tokens"] == 12 and r["usage_estimated"] is False for r in rows)
    assert all(isinstance(r["ttft_ms"], float) and isinstance(r["latency_ms"], float) for r in rows)
    assert rows[0]["session_id"] == "s-1" and [r["session_id"] for r in rows[1:]] == [None] * 3
    assert [r["target"] for r in json_lines(workbench("traces", "list", "--json", "--tag", "prod").stdout)] == [
        "openai/m@tokens=12"]
    store = Path(os.environ["WORKBENCH_TRACES"])
    stored = b"".join(p.read_bytes() for p in store.parent.glob(store.name + "*"))
    assert b"Say something" in stored and CANARY.encode() not in stored


def test_a_stream_through_the_proxy_is_byte_identical_and_upstream_errors_pass_through_as_sent(
        proxy: Proxy, fake_server: FakeServerProcess) -> None:
    body = {"model": "m@tokens=20", "messages": MESSAGES, "stream": True, "seed": 1}
    with httpx2.Client(timeout=30) as client:
        def post(base: str, model: str) -> httpx2.Response:
            return client.post(f"{base}/chat/completions", json={**body, "model": model},
                               headers={"authorization": f"Bearer {CANARY}"})

        direct, through = (post(f"{fake_server.base_url}/v1", "m@tokens=20,fixed=1"),
                           post(f"{proxy.url}/openai/v1", "m@tokens=20,fixed=1"))
        assert through.status_code == direct.status_code == 200
        assert through.content == direct.content
        assert through.content.count(b"\n") == direct.content.count(b"\n") > 20
        for status in (429, 500):
            # Two models: a scenario's fault is counted per model (one answer each).
            direct, through = (post(f"{fake_server.base_url}/v1", f"a@status={status}"),
                               post(f"{proxy.url}/openai/v1", f"b@status={status}"))
            assert through.status_code == direct.status_code == status
            ours, theirs = through.json()["error"], direct.json()["error"]
            assert (ours["type"], ours["code"]) == (theirs["type"], theirs["code"]) and ours["message"]
            assert through.headers.get("retry-after") == direct.headers.get("retry-after")
    proxy.stop()
    rows = list(reversed(traces()))
    assert [(r["status"], r["error_class"]) for r in rows] == [("ok", None), ("error", "http_429"),
                                                                ("error", "http_500")]


def test_an_application_that_goes_away_mid_stream_is_traced_as_cancelled_and_the_proxy_goes_on(
        proxy: Proxy) -> None:
    body = {"model": "m@tokens=400,tps=100", "messages": MESSAGES, "stream": True}
    with httpx2.Client(timeout=30) as client:
        with client.stream("POST", f"{proxy.url}/openai/v1/chat/completions", json=body) as response:
            first = next(response.iter_raw())
            assert first
        after = client.post(f"{proxy.url}/openai/v1/chat/completions", json={**body, "model": "m@tokens=3",
                                                                            "stream": False})
        assert after.status_code == 200 and after.json()["choices"][0]["message"]["content"]
    proxy.stop()
    rows = sorted(traces(), key=lambda r: str(r["model"]))
    assert [(r["model"], r["status"], r["error_class"]) for r in rows] == [
        ("m@tokens=3", "ok", None), ("m@tokens=400,tps=100", "error", "cancelled")]


@pytest.mark.parametrize(("args", "message"), [
    (("--host", "0.0.0.0"), "--host 0.0.0.0 is not a loopback address"),
    (("--port", "70000"), "--port 70000 is not a port"),
])
def test_the_proxy_refuses_a_remote_interface_and_a_bad_port_in_one_line(args: tuple[str, ...], message: str) -> None:
    result = workbench("proxy", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"workbench: {message}") and "Traceback" not in result.stderr


@pytest.fixture
def wide_proxy(fake_server: FakeServerProcess) -> Iterator[Proxy]:
    """The proxy with every wire's base URL at the fake server."""
    yield from start_proxy(OPENAI_BASE_URL=f"{fake_server.base_url}/v1", ANTHROPIC_BASE_URL=fake_server.base_url,
                           GEMINI_BASE_URL=fake_server.base_url, OLLAMA_HOST=fake_server.base_url)


def test_gemini_ollama_and_responses_calls_through_the_proxy_are_traced_streamed_or_not(
        wide_proxy: Proxy, fake_server: FakeServerProcess) -> None:
    contents = {"contents": [{"role": "user", "parts": [{"text": "Say something"}]}]}
    calls = [
        ("gemini/v1beta/models/g@tokens=7:streamGenerateContent?alt=sse", contents),
        ("gemini/v1beta/models/g@tokens=7:generateContent", contents),
        ("ollama/api/chat", {"model": "o@tokens=7", "messages": MESSAGES}),
        ("ollama/api/chat", {"model": "o@tokens=7", "messages": MESSAGES, "stream": False}),
        ("openai/v1/responses", {"model": "r@tokens=7", "input": "Say something", "stream": True}),
        ("openai/v1/responses", {"model": "r@tokens=7", "input": "Say something"}),
    ]
    with httpx2.Client(timeout=30) as client:
        for path, body in calls:
            response = client.post(f"{wide_proxy.url}/{path}", json=body, headers={"x-goog-api-key": CANARY})
            assert response.status_code == 200, response.text
        models = client.get(f"{wide_proxy.url}/ollama/api/tags")
        assert models.status_code == 200 and models.json() == client.get(f"{fake_server.base_url}/api/tags").json()
    wide_proxy.stop()
    rows = list(reversed(traces()))
    assert [(r["target"], r["status"], r["output_tokens"], r["usage_estimated"]) for r in rows] == [
        ("gemini/g@tokens=7", "ok", 7, False)] * 2 + [("ollama/o@tokens=7", "ok", 7, False)] * 2 + [
        ("openai/r@tokens=7", "ok", 7, False)] * 2


def test_sigterm_with_a_stream_open_cancels_and_traces_it(proxy: Proxy) -> None:
    body = {"model": "m@tokens=5000,tps=100", "messages": MESSAGES, "stream": True}
    with httpx2.Client(timeout=30) as client, client.stream(
            "POST", f"{proxy.url}/openai/v1/chat/completions", json=body) as response:
        assert next(response.iter_raw())
        proxy.process.send_signal(signal.SIGTERM)
        proxy.stop()
    rows = traces()
    assert [(r["status"], r["error_class"]) for r in rows] == [("error", "cancelled")]
