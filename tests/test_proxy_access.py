"""``workbench proxy`` safe by default: another interface than loopback needs --allow-remote and a proxy token that
every request must carry (stripped before forwarding, never stored: a 401 in the provider's error shape without
it); the user's own key is added only to a request that carries none, and only when the user opted in."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest

from tests.resilience_helpers import server_log
from tests.test_cli import workbench
from tests.test_proxy import MESSAGES, Proxy
from tests.test_secrets_echo import key_encodings
from workbench.fakeserver.app import mask_key
from workbench.fakeserver.process import FakeServerProcess

TOKEN = "proxy-token-5d1e9b7c3a"
KEYRING_CANARY = "sk-canary-proxy-keyring-4b8d2f6a0cQWER"


def start(fake_server: FakeServerProcess, *args: str, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> Proxy:
    """``workbench proxy --port 0 ARGS`` in front of the fake server (no key in its environment), listening."""
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL")) and k != "OLLAMA_HOST"}
    urls = {"OPENAI_BASE_URL": f"{fake_server.base_url}/v1", "ANTHROPIC_BASE_URL": fake_server.base_url,
            "GEMINI_BASE_URL": fake_server.base_url, "OLLAMA_HOST": fake_server.base_url}
    process = subprocess.Popen([sys.executable, "-m", "workbench", "proxy", "--port", "0", *args],
                               env={**base, **urls, **(env or {})}, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=cwd)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on " in line, process.stderr.read() if process.stderr else line
    url = line.split("listening on ", 1)[1].split()[0].replace("0.0.0.0", "127.0.0.1")
    return Proxy(url, process)


@pytest.fixture
def proxies() -> Iterator[list[Proxy]]:
    started: list[Proxy] = []
    yield started
    for proxy in started:
        if proxy.process.poll() is None:
            proxy.process.kill()
            proxy.process.wait(timeout=10)


def logged(fake_server: FakeServerProcess, marker: str) -> list[dict[str, object]]:
    return [e for e in server_log(fake_server.base_url) if marker in str(e["model"])]


def stored() -> bytes:
    """Everything the trace store and the logs hold."""
    store = Path(os.environ["WORKBENCH_TRACES"])
    files = [*store.parent.glob(store.name + "*"), *Path(os.environ["WORKBENCH_LOG_DIR"]).rglob("*")]
    return b"".join(p.read_bytes() for p in files if p.is_file())


def test_a_remote_proxy_needs_its_token_on_every_request_and_forwards_and_stores_none_of_it(
        fake_server: FakeServerProcess, proxies: list[Proxy]) -> None:
    proxy = start(fake_server, "--host", "0.0.0.0", "--allow-remote", "--token", TOKEN)
    proxies.append(proxy)
    marker = uuid.uuid4().hex[:8]
    model = f"m-{marker}@tokens=3"
    bare = openai.OpenAI(base_url=f"{proxy.url}/openai/v1", api_key="sk-app-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        bare.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
    assert refused.value.code == "invalid_proxy_token" and "proxy token" in refused.value.message
    claude = anthropic.Anthropic(base_url=f"{proxy.url}/anthropic", api_key="sk-app-key", max_retries=0,
                                 default_headers={"X-Workbench-Token": "wrong-token-123"})
    with pytest.raises(anthropic.AuthenticationError) as wrong:
        claude.messages.create(model=model, max_tokens=10, messages=MESSAGES)  # type: ignore[arg-type]
    assert wrong.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with httpx2.Client(timeout=30) as client:
        gemini = client.post(f"{proxy.url}/gemini/v1beta/models/{model}:generateContent", json={"contents": []})
        ollama = client.post(f"{proxy.url}/ollama/api/chat", json={"model": model, "messages": MESSAGES})
        unknown = client.get(f"{proxy.url}/nowhere")
        assert (gemini.status_code, gemini.json()["error"]["status"]) == (401, "UNAUTHENTICATED")
        assert ollama.status_code == 401 and "proxy token" in ollama.json()["error"]
        assert unknown.status_code == 401  # nothing about the routes is told without the token

        with_header = openai.OpenAI(base_url=f"{proxy.url}/openai/v1", api_key="sk-app-key",
                                    default_headers={"X-Workbench-Token": TOKEN})
        assert with_header.chat.completions.create(model=model, messages=MESSAGES).choices[0].message.content  # type: ignore[arg-type]
        as_proxy_auth = client.post(f"{proxy.url}/ollama/api/chat", headers={"Proxy-Authorization": f"Bearer {TOKEN}"},
                                    json={"model": model, "messages": MESSAGES, "stream": False})
        assert as_proxy_auth.status_code == 200, as_proxy_auth.text
    proxy.stop()
    upstream = logged(fake_server, marker)
    assert len(upstream) == 2  # the refused requests never reached the provider
    assert all("x-workbench-token" not in e["headers"] and "proxy-authorization" not in e["headers"]  # type: ignore[operator]
               for e in upstream)
    assert len(json_rows()) == 2
    assert proxy.process.stdout is not None and proxy.process.stderr is not None
    printed = proxy.process.stdout.read() + proxy.process.stderr.read()
    assert TOKEN not in printed and TOKEN.encode() not in stored()


def json_rows() -> list[object]:
    listed = workbench("traces", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.splitlines()


def test_a_remote_proxy_without_a_token_generates_one_and_prints_it_once(
        fake_server: FakeServerProcess, proxies: list[Proxy]) -> None:
    proxy = start(fake_server, "--host", "0.0.0.0", "--allow-remote")
    proxies.append(proxy)
    assert proxy.process.stdout is not None
    said = proxy.process.stdout.readline()
    token = said.split("X-Workbench-Token: ", 1)[1].split()[0]
    assert len(token) >= 32
    with httpx2.Client(timeout=30) as client:
        body = {"model": "m@tokens=2", "messages": MESSAGES, "stream": False}
        assert client.post(f"{proxy.url}/ollama/api/chat", json=body).status_code == 401
        ok = client.post(f"{proxy.url}/ollama/api/chat", json=body, headers={"X-Workbench-Token": token})
        assert ok.status_code == 200, ok.text
    proxy.stop()
    assert token not in proxy.process.stdout.read() and token.encode() not in stored()


def test_a_token_given_on_loopback_is_required_there_too_and_loopback_alone_needs_none(
        fake_server: FakeServerProcess, proxies: list[Proxy]) -> None:
    body = {"model": "m@tokens=2", "messages": MESSAGES, "stream": False}
    guarded = start(fake_server, env={"WORKBENCH_PROXY_TOKEN": TOKEN})
    open_one = start(fake_server)
    proxies += [guarded, open_one]
    with httpx2.Client(timeout=30) as client:
        assert client.post(f"{guarded.url}/ollama/api/chat", json=body).status_code == 401
        assert client.post(f"{guarded.url}/ollama/api/chat", json=body,
                           headers={"X-Workbench-Token": TOKEN}).status_code == 200
        assert client.post(f"{open_one.url}/ollama/api/chat", json=body).status_code == 200
    guarded.stop()
    open_one.stop()


@pytest.mark.parametrize(("args", "env", "message"), [
    (("--host", "0.0.0.0", "--allow-remote", "--token", "short"), {}, "the proxy token is shorter than 8"),
    (("--token", "tok en with spaces"), {}, "the proxy token (--token or WORKBENCH_PROXY_TOKEN): the API key has a "
                                            "space"),
])
def test_a_bad_token_is_one_line_and_exit_2(args: tuple[str, ...], env: dict[str, str], message: str) -> None:
    result = workbench("proxy", *args, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"workbench: {message}"), result.stderr


def test_the_keyring_key_is_added_only_to_a_keyless_request_when_opted_in_and_stored_nowhere(
        fake_server: FakeServerProcess, proxies: list[Proxy], tmp_path: Path) -> None:
    assert workbench("keys", "set", "openai", "--stdin", stdin=KEYRING_CANARY).returncode == 0
    marker = uuid.uuid4().hex[:8]
    (tmp_path / "workbench.toml").write_text("[proxy]\nuse_keyring = true\n", encoding="utf-8")
    flagged = start(fake_server, "--use-keyring-keys")
    configured = start(fake_server, cwd=tmp_path)
    plain = start(fake_server)
    proxies += [flagged, configured, plain]
    app_key = "sk-application-own-key-9876"
    with httpx2.Client(timeout=30) as client:
        def call(proxy: Proxy, name: str, key: str | None = None) -> None:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            sent = client.post(f"{proxy.url}/openai/v1/chat/completions", headers=headers, json={
                "model": f"{name}-{marker}@tokens=2", "messages": MESSAGES})
            assert sent.status_code == 200, sent.text

        call(flagged, "flagged")
        call(configured, "configured")
        call(flagged, "own", app_key)
        call(plain, "plain")
    keys = {str(e["model"]).split("-")[0]: e["key"] for e in logged(fake_server, marker)}
    assert keys == {"flagged": mask_key(KEYRING_CANARY), "configured": mask_key(KEYRING_CANARY),
                    "own": mask_key(app_key), "plain": None}
    printed = ""
    for proxy in (flagged, configured, plain):
        proxy.stop()
        assert proxy.process.stdout is not None and proxy.process.stderr is not None
        printed += proxy.process.stdout.read() + proxy.process.stderr.read()
    keyring = Path(os.environ["WORKBENCH_TEST_KEYRING"])  # the test's keyring: where the key is meant to be
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != keyring)
    assert b"SQLite format 3" in written  # the trace store and the logs are under tmp_path
    assert len(json_rows()) == 4
    for needle in key_encodings(KEYRING_CANARY):
        assert needle not in printed and needle.encode() not in written, needle
