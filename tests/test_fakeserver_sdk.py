"""SDK conformance: the official openai and anthropic SDKs parse the fake server's streams."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import openai
import pytest

from workbench.fakeserver import FakeServer, count_input_tokens, expected_reasoning, expected_text

PROMPT = "what is streaming"
IN_TOKENS = count_input_tokens([PROMPT])


@pytest.fixture
async def oai(server: FakeServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key="test", max_retries=0) as client:
        yield client


@pytest.fixture
async def claude(server: FakeServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=server.base_url, api_key="test", max_retries=0) as client:
        yield client


async def test_openai_chat_stream_with_usage(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-4o@tokens=12,reasoning=2",
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert text == expected_text("gpt-4o", PROMPT, 12)
    assert finish == "stop"
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (IN_TOKENS, 14, IN_TOKENS + 14)
    assert usage.completion_tokens_details is not None and usage.completion_tokens_details.reasoning_tokens == 2


async def test_openai_chat_helpers_and_length(oai: openai.AsyncOpenAI) -> None:
    async with oai.chat.completions.stream(
        model="gpt-4o@tokens=12", messages=[{"role": "user", "content": PROMPT}], max_completion_tokens=5
    ) as stream:
        with pytest.raises(openai.LengthFinishReasonError) as info:  # the SDK's reaction to finish "length"
            await stream.get_final_completion()
    final = info.value.completion
    assert final.choices[0].finish_reason == "length"
    assert final.choices[0].message.content == expected_text("gpt-4o", PROMPT, 5)
    done = await oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": PROMPT}])
    assert done.choices[0].message.content == expected_text("gpt-4o", PROMPT, 32)
    assert done.usage is not None and done.usage.prompt_tokens == IN_TOKENS


async def test_openai_responses_stream(oai: openai.AsyncOpenAI) -> None:
    async with oai.responses.stream(model="gpt-5@tokens=7,reasoning=3", input=PROMPT) as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas) == expected_text("gpt-5", PROMPT, 7) == final.output_text
    assert final.status == "completed"
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (IN_TOKENS, 10)
    assert final.usage.output_tokens_details.reasoning_tokens == 3
    reasoning = final.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == expected_reasoning("gpt-5", PROMPT, 3)

    events = await oai.responses.create(model="gpt-5@tokens=9", input=PROMPT, stream=True, max_output_tokens=4)
    last = None
    async for event in events:
        last = event
    assert last is not None and last.type == "response.incomplete"
    assert last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == "max_output_tokens"


async def test_openai_typed_errors(server: FakeServer, oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        await oai.chat.completions.create(model="m@status=429", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 429 and info.value.code == "rate_limit_exceeded"
    assert info.value.request_id == server.log[-1]["request_id"]
    with pytest.raises(openai.InternalServerError):
        await oai.responses.create(model="m@status=500", input="x", stream=True)
    with pytest.raises(openai.BadRequestError):
        await oai.chat.completions.create(model="m@nope=1", messages=[{"role": "user", "content": "x"}])
    # SDK retries honour Retry-After and the fail counter lets the third attempt through
    retrying = oai.with_options(max_retries=2)
    done = await retrying.chat.completions.create(
        model="m@status=503,fail=2,retry_after=0.01,tokens=3", messages=[{"role": "user", "content": "x"}]
    )
    assert done.choices[0].message.content == expected_text("m", "x", 3)
    assert [e["status"] for e in server.log[-3:]] == [503, 503, 200]


async def test_anthropic_stream(claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(
        model="claude-sonnet-4-5@tokens=10,reasoning=4",
        max_tokens=100,
        system="be brief",
        messages=[{"role": "user", "content": PROMPT}],
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == expected_text("claude-sonnet-4-5", PROMPT, 10)
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == count_input_tokens(["be brief", PROMPT])
    assert final.usage.output_tokens == 14
    thinking, answer = final.content
    assert thinking.type == "thinking" and thinking.thinking == expected_reasoning("claude-sonnet-4-5", PROMPT, 4)
    assert thinking.signature
    assert answer.type == "text" and answer.text == text

    async with claude.messages.stream(
        model="claude@tokens=10", max_tokens=3, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 3


async def test_anthropic_typed_errors(server: FakeServer, claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as info:
        await claude.messages.create(model="c@status=429", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert info.value.request_id == server.log[-1]["request_id"]
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        await claude.messages.create(
            model="c@status=529", max_tokens=5, messages=[{"role": "user", "content": "x"}], stream=True
        )
    assert overloaded.value.status_code == 529
    assert overloaded.value.type == "overloaded_error"
    done = await claude.messages.create(model="c@tokens=2", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert done.content[0].type == "text" and done.content[0].text == expected_text("c", "x", 2)


async def test_model_lists_in_each_sdks_shape(claude: anthropic.AsyncAnthropic, oai: openai.AsyncOpenAI) -> None:
    listed = [model async for model in claude.models.list()]
    assert "claude-sonnet-4-5" in [model.id for model in listed]
    assert all(model.type == "model" and model.display_name and model.created_at.year == 2023 for model in listed)
    assert "gpt-4o-mini" in [model.id async for model in oai.models.list()]  # the same path without those headers
