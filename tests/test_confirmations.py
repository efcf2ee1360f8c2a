"""Nothing confirms what did not happen: a key the keyring backend did not keep, a stream the fake server
did not finish."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from tests.timing_slack import eventually
from workbench.fakeserver import FakeServer
from workbench.fakeserver.wire.openai_chat import ChatRenderer


def test_keys_set_with_a_backend_that_keeps_nothing_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    result = subprocess.run([sys.executable, "-m", "workbench", "keys", "set", "openai", "--stdin"],
                            input="sk-test-not-kept-0123456789\n", capture_output=True, text=True, timeout=60,
                            env=env, cwd=tmp_path)
    assert result.returncode != 0 and "stored" not in result.stdout
    assert "did not keep the openai key" in result.stderr and "Traceback" not in result.stderr
    assert "0123456789" not in result.stdout + result.stderr


async def test_the_fake_servers_log_never_says_ok_for_a_stream_it_failed_on(
        server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = 0
    text_token = ChatRenderer.text_token

    def failing(self: ChatRenderer, token: str) -> bytes:
        nonlocal sent
        sent += 1
        if sent == 3:
            raise RuntimeError("renderer failed mid-stream")
        return text_token(self, token)

    monkeypatch.setattr(ChatRenderer, "text_token", failing)
    body = {"model": "m@tokens=6", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with httpx2.AsyncClient(base_url=server.base_url, timeout=5) as client:
        with pytest.raises(httpx2.HTTPError):
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                async for _ in response.aiter_raw():
                    pass
    await eventually(lambda: server.log and server.log[-1]["outcome"] != "running", "the outcome logged")
    assert server.log[-1]["outcome"] == "failed: RuntimeError"
