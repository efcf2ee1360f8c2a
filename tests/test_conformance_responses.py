"""The fake server's OpenAI Responses objects, streamed (on ``response.created``, ``.in_progress``, ``.completed``,
``.incomplete``) and not, validate as the official openai SDK's ``Response`` type, usage included."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.types.responses import Response

from workbench.fakeserver.process import FakeServerProcess

TOOLS: Any = [{"type": "function", "name": "get_time", "description": "Time", "strict": False,
               "parameters": {"type": "object", "properties": {}}}]
SCENARIOS = ["r@tokens=9", "r@tokens=9,reasoning=5", "r@tools=2", "r@refusal=1", "r@tokens=40,cache=1",
             "r@tokens=9,usage=0"]


def sse_responses(raw: bytes) -> list[dict[str, Any]]:
    """The ``response`` object of every event of a Responses stream that carries one."""
    events = [json.loads(line[len(b"data: "):]) for line in raw.splitlines() if line.startswith(b"data: ")]
    return [event["response"] for event in events if "response" in event]


@pytest.mark.parametrize("model", SCENARIOS)
def test_the_fake_servers_responses_validate_as_the_sdks_response_type(
        model: str, fake_server: FakeServerProcess) -> None:
    client = openai.OpenAI(base_url=f"{fake_server.base_url}/v1", api_key="sk-test", max_retries=0)
    body: Any = {"model": model, "instructions": "Be brief.", "input": [{"role": "user", "content": "What time?"}],
                 "max_output_tokens": 30, "tools": TOOLS}
    for _ in range(2):  # with cache=1 the second call reads the first's prefix
        whole = client.responses.with_raw_response.create(**body).http_response.json()
    with client.responses.with_streaming_response.create(**body, stream=True) as response:
        streamed = sse_responses(response.read())
    assert [r["status"] for r in streamed[:2]] == ["in_progress", "in_progress"] and len(streamed) == 3
    for raw in (whole, *streamed):
        assert Response.model_validate(raw).id == raw["id"]
    final = Response.model_validate(streamed[-1])
    if model.endswith("usage=0"):
        assert whole["usage"] is None and final.usage is None
        return
    usage = Response.model_validate(whole).usage
    assert usage is not None and final.usage is not None
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens > 0
    assert usage.input_tokens_details.cache_write_tokens == final.usage.input_tokens_details.cache_write_tokens
    if "cache=1" in model:
        assert usage.input_tokens_details.cached_tokens > 0
    if "reasoning=5" in model:
        assert usage.output_tokens_details.reasoning_tokens == final.usage.output_tokens_details.reasoning_tokens == 5
