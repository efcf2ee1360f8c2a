"""The official SDKs and our adapters read the same text, usage and finish reason from the fake server.

This pins the fake server to the real wire formats (the SDKs are the reference parsers) and our
adapters to the SDKs.
"""

from __future__ import annotations

import anthropic
import httpx2
import openai

from tests.test_providers import PROMPT, call
from workbench.core.events import FinishReason
from workbench.fakeserver.process import FakeServerProcess

MODEL = "conformance@tokens=15"
MESSAGES = [{"role": "system", "content": PROMPT.system or ""}] + [
    {"role": m.role, "content": m.content} for m in PROMPT.messages
]


async def test_openai_chat_completions(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                       client: httpx2.AsyncClient) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    stream = await sdk.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True},  # type: ignore[arg-type]
        max_completion_tokens=1024,
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    ours = await call(f"fake/{MODEL}", fake_env, client)
    assert text and ours.text == text
    assert usage is not None and ours.usage is not None
    assert (ours.usage.input_tokens, ours.usage.output_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    assert finish == ours.finish_raw == "stop"


async def test_openai_responses(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                client: httpx2.AsyncClient) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    stream = await sdk.responses.create(
        model=MODEL, instructions=PROMPT.system, input=PROMPT.messages[0].content, stream=True,
        max_output_tokens=1024,
    )
    text, final = "", None
    async for event in stream:
        if event.type == "response.output_text.delta":
            text += event.delta
        elif event.type == "response.completed":
            final = event.response
    ours = await call(f"fake-responses/{MODEL}", fake_env, client)
    assert final is not None and final.usage is not None and ours.usage is not None
    assert text and ours.text == text == final.output_text
    assert (ours.usage.input_tokens, ours.usage.output_tokens) == (final.usage.input_tokens,
                                                                    final.usage.output_tokens)
    assert final.status == "completed" and ours.finish is FinishReason.STOP


async def test_anthropic_messages(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                  client: httpx2.AsyncClient) -> None:
    sdk = anthropic.AsyncAnthropic(base_url=fake_server.base_url, api_key="test-key", max_retries=0)
    async with sdk.messages.stream(
        model=MODEL, max_tokens=1024, system=PROMPT.system or "",
        messages=[{"role": "user", "content": PROMPT.messages[0].content}],
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    ours = await call(f"fake-anthropic/{MODEL}", fake_env, client)
    assert text and ours.text == text
    assert ours.usage is not None
    assert ours.usage.input_tokens == final.usage.input_tokens + (final.usage.cache_read_input_tokens or 0) + (
        final.usage.cache_creation_input_tokens or 0)
    assert ours.usage.output_tokens == final.usage.output_tokens
    assert final.stop_reason == ours.finish_raw == "end_turn"


async def test_sdk_and_adapter_agree_on_a_length_finish(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                                        client: httpx2.AsyncClient) -> None:
    sdk = anthropic.AsyncAnthropic(base_url=fake_server.base_url, api_key="test-key", max_retries=0)
    final = await sdk.messages.create(model="cut@tokens=40", max_tokens=7,
                                      messages=[{"role": "user", "content": "hi"}])
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 7


async def test_sdk_error_types_match_our_http_errors(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                                     client: httpx2.AsyncClient) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    try:
        await sdk.chat.completions.create(model="e@status=429,id=conf-sdk", messages=MESSAGES,  # type: ignore[arg-type]
                                          stream=True)
    except openai.RateLimitError as exc:
        sdk_code = exc.code
    else:
        raise AssertionError("the SDK accepted a 429")
    ours = await call("fake/e@status=429,id=conf-ours", fake_env, client)
    assert ours.error is not None and getattr(ours.error, "kind", None) == sdk_code == "rate_limit_exceeded"
