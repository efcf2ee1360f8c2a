"""Exact counts from the providers' own endpoints (against the fake server), used by `workbench tokens`."""

from __future__ import annotations

import httpx2
import pytest

from tests.test_providers import PROMPT, call
from workbench.core.tokens.provider_counts import count_with_providers
from workbench.fakeserver.process import FakeServerProcess


@pytest.mark.parametrize("target", ["fake-anthropic/counted", "fake-gemini/counted"])
async def test_exact_count_equals_the_usage_the_call_reports(target: str, fake_env: dict[str, str],
                                                           client: httpx2.AsyncClient) -> None:
    counts = await count_with_providers(PROMPT, [target], fake_env, client)
    record = await call(target, fake_env, client)
    assert record.usage is not None and counts == {target: record.usage.input_tokens}


async def test_vllm_and_llamacpp_tokenize(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                          client: httpx2.AsyncClient) -> None:
    env = {"VLLM_BASE_URL": f"{fake_server.base_url}/v1", "LLAMACPP_BASE_URL": f"{fake_server.base_url}/v1"}
    chat = await count_with_providers(PROMPT, ["vllm/qwen", "llamacpp/any"], env, client)
    served = await call("fake/qwen", fake_env, client)  # the same server's chat usage for the same messages
    assert served.usage is not None and chat == {"vllm/qwen": served.usage.input_tokens}  # llama.cpp: raw only
    raw = await count_with_providers(PROMPT, ["vllm/qwen", "llamacpp/any"], env, client, raw=True)
    words = len(PROMPT.messages[0].content.split())
    assert raw == {"vllm/qwen": words, "llamacpp/any": words}


async def test_no_key_or_a_dead_server_falls_back_to_the_estimate(client: httpx2.AsyncClient) -> None:
    counts = await count_with_providers(PROMPT, ["anthropic/claude-sonnet-4-5", "fake-gemini/x", "openai/gpt-4o"],
                                        {"WORKBENCH_FAKE_URL": "http://127.0.0.1:9"}, client)
    assert counts == {}
