"""Conformance of ``workbench proxy``: real clients (the curl binary, the official openai and anthropic SDKs) get
the same bytes through the proxy as straight from the fake server (``fixed=1``: the server's ids and clock are
fixed, so two calls answer byte-identical bodies), and each call is one trace row with the right fields."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.test_proxy import CANARY, Proxy, start_proxy, traces
from workbench.fakeserver import count_input_tokens
from workbench.fakeserver.process import FakeServerProcess

PROMPT = "Say something"
MESSAGES: Any = [{"role": "user", "content": PROMPT}]
IN_TOKENS = count_input_tokens([PROMPT])


@pytest.fixture
def proxy(fake_server: FakeServerProcess) -> Iterator[Proxy]:
    """The proxy with every wire's base URL at the fake server."""
    yield from start_proxy(OPENAI_BASE_URL=f"{fake_server.base_url}/v1", ANTHROPIC_BASE_URL=fake_server.base_url,
                           GEMINI_BASE_URL=fake_server.base_url, OLLAMA_HOST=fake_server.base_url)


def curl(url: str, body: dict[str, Any], tmp_path: Path, *headers: str, exit_code: int = 0
         ) -> tuple[int, list[tuple[str, str]], bytes]:
    """POST ``body`` with the curl binary (``-N``: no buffering), which exits ``exit_code`` (18: the transfer
    ended before the body did); its status, headers (names lower-case, in order) and body bytes."""
    dump = tmp_path / "headers.txt"
    args = ["curl", "-sS", "-N", "--max-time", "60", "-D", str(dump), "-H", "content-type: application/json",
            "--data-binary", "@-", url]
    for header in headers:
        args[1:1] = ["-H", header]
    done = subprocess.run(args, input=json.dumps(body).encode(), capture_output=True, timeout=90, check=False)
    assert done.returncode == exit_code, done.stderr
    lines = dump.read_bytes().decode("latin-1").split("\r\n")
    fields = [line.split(":", 1) for line in lines[1:] if ":" in line]
    return int(lines[0].split()[1]), [(k.lower(), v.strip()) for k, v in fields], done.stdout


def end_to_end(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers a proxy passes on as they came (not the connection's own, nor the clock)."""
    return sorted((k, v) for k, v in headers if k not in ("connection", "keep-alive", "transfer-encoding", "date"))


def check_row(row: dict[str, Any], provider: str, model: str, tokens: int, *, input_tokens: int | None = IN_TOKENS
              ) -> None:
    """One successful call's trace row: who, the provider's own usage, its finish and the proxy's timings."""
    assert (row["provider"], row["model"], row["target"]) == (provider, model, f"{provider}/{model}")
    assert (row["status"], row["error_class"], row["finish_reason"]) == ("ok", None, "stop")
    assert (row["input_tokens"], row["output_tokens"], row["usage_estimated"]) == (input_tokens, tokens, False)
    assert 0 <= row["ttft_ms"] <= row["latency_ms"]


GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}


@pytest.mark.parametrize(("path", "body", "kind"), [
    ("gemini/v1beta/models/g@tokens=9,fixed=1:streamGenerateContent?alt=sse", GEMINI_BODY, "text/event-stream"),
    ("gemini/v1beta/models/g@tokens=9,fixed=1:generateContent", GEMINI_BODY, "application/json"),
    ("ollama/api/chat", {"model": "o@tokens=9,fixed=1", "messages": MESSAGES}, "application/x-ndjson"),
    ("ollama/api/chat", {"model": "o@tokens=9,fixed=1", "messages": MESSAGES, "stream": False}, "application/json"),
])
def test_curl_gets_the_same_bytes_through_the_proxy_and_the_call_is_one_row(
        proxy: Proxy, fake_server: FakeServerProcess, tmp_path: Path, path: str, body: dict[str, Any],
        kind: str) -> None:
    provider, _, upstream_path = path.partition("/")
    direct = curl(f"{fake_server.base_url}/{upstream_path}", body, tmp_path, f"x-goog-api-key: {CANARY}")
    through = curl(f"{proxy.url}/{path}", body, tmp_path, f"x-goog-api-key: {CANARY}")
    assert direct[0] == through[0] == 200
    assert through[2] == direct[2]
    assert end_to_end(through[1]) == end_to_end(direct[1]) and dict(through[1])["content-type"].startswith(kind)
    assert [k for k, _ in through[1]].count("date") == 1  # the provider's, and no second one of the proxy's
    if kind != "application/json":  # streamed: chunked, as the provider sent it
        assert dict(through[1]).get("transfer-encoding") == "chunked" and through[2].count(b"\n") > 9
    proxy.stop()
    rows = traces()
    model = "g@tokens=9,fixed=1" if provider == "gemini" else "o@tokens=9,fixed=1"
    assert len(rows) == 1
    check_row(rows[0], provider, model, 9)


def test_the_openai_sdk_gets_the_same_bytes_through_the_proxy_streamed_or_not(
        proxy: Proxy, fake_server: FakeServerProcess) -> None:
    model = "m@tokens=11,fixed=1"
    texts, raws = [], []
    for base in (f"{fake_server.base_url}/v1", f"{proxy.url}/openai/v1"):
        client = openai.OpenAI(base_url=base, api_key=CANARY, max_retries=0)
        with client.chat.completions.with_streaming_response.create(model=model, messages=MESSAGES) as response:
            whole = response.read()
            texts.append(response.parse().choices[0].message.content)
        with client.chat.completions.with_streaming_response.create(
                model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}) as response:
            raws.append((whole, b"".join(response.iter_bytes())))
        streamed = client.chat.completions.create(model=model, messages=MESSAGES, stream=True,
                                                  stream_options={"include_usage": True})
        texts.append("".join(c.choices[0].delta.content or "" for c in streamed if c.choices))
    assert raws[0] == raws[1] and b"data: [DONE]" in raws[1][1]
    assert len(set(texts)) == 1 and texts[0]
    proxy.stop()
    rows = traces()
    assert len(rows) == 3
    for row in rows:
        check_row(row, "openai", model, 11)


def test_the_anthropic_sdk_gets_the_same_bytes_through_the_proxy_streamed_or_not(
        proxy: Proxy, fake_server: FakeServerProcess) -> None:
    model = "c@tokens=11,fixed=1"
    texts, raws = [], []
    for base in (fake_server.base_url, f"{proxy.url}/anthropic"):
        client = anthropic.Anthropic(base_url=base, api_key=CANARY, max_retries=0)
        with client.messages.with_streaming_response.create(model=model, max_tokens=100,
                                                            messages=MESSAGES) as response:
            whole = response.read()
            texts.append("".join(b.text for b in response.parse().content if b.type == "text"))
        with client.messages.with_streaming_response.create(model=model, max_tokens=100, messages=MESSAGES,
                                                            stream=True) as response:
            raws.append((whole, b"".join(response.iter_bytes())))
        with client.messages.stream(model=model, max_tokens=100, messages=MESSAGES) as events:
            texts.append("".join(events.text_stream))
            final = events.get_final_message()
            assert (final.stop_reason, final.usage.output_tokens) == ("end_turn", 11)
    assert raws[0] == raws[1] and b"event: message_stop" in raws[1][1]
    assert len(set(texts)) == 1 and texts[0]
    proxy.stop()
    rows = traces()
    assert len(rows) == 3
    for row in rows:
        check_row(row, "anthropic", model, 11)
