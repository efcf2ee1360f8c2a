"""Refusals and paused turns over real HTTP: the fake server's ``refusal=1`` and ``pause=1`` streams, read by our
adapters on every wire, and by the official openai and anthropic SDKs, which agree with our adapters on the
refusal's text, its category, the finish and the server-tool blocks."""

from __future__ import annotations

import json

import anthropic
import httpx2
import openai
import pytest

from workbench.core.call_record import CallRecord, collect, summary
from workbench.core.events import FinishReason
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef, Params
from workbench.fakeserver.process import FakeServerProcess

PROMPT = "Tell me something you may not say"
REQUEST = ChatRequest.from_prompt(PROMPT, params=Params(max_tokens=200))
MODEL = "refuse@tokens=6,refusal=1"


async def read(target: str, env: dict[str, str], client: httpx2.AsyncClient) -> CallRecord:
    return await collect(make_provider(resolve(ModelRef.parse(target), env), client), REQUEST)


# Each wire's refusal as our record holds it: (text kept apart, refusal text, category, raw finish).
@pytest.mark.parametrize(("provider", "raw", "category"), [
    ("fake", "stop", None),
    ("fake-responses", "completed", None),
    ("fake-anthropic", "refusal", "cyber"),
    ("fake-gemini", "SAFETY", "HARM_CATEGORY_DANGEROUS_CONTENT"),
])
async def test_every_wire_shows_a_refusal_as_one(provider: str, raw: str, category: str | None,
                                                 fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    record = await read(f"{provider}/{MODEL}", fake_env, client)
    assert record.error is None and record.finish is FinishReason.CONTENT_FILTER and record.finish_raw == raw
    assert record.refusal is not None and record.refusal_category == category
    row = summary(record)
    assert row["status"] == "ok" and row["finish_reason"] == "content_filter"
    assert row["refusal"] == record.refusal and row["refusal_category"] == category
    if provider in ("fake", "fake-responses"):  # the refusal is the model's words, never in the text
        assert record.text == "" and len(record.refusal.split()) == 6
    elif provider == "fake-anthropic":  # the text it wrote before it stopped, and stop_details' explanation
        assert len(record.text.split()) == 6 and record.refusal == "This request was refused due to policy."
    else:  # Gemini: the text before the block, a refusal without words but its blocked category
        assert len(record.text.split()) == 6 and record.refusal == ""


async def test_ollama_has_no_refusal(fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    record = await read(f"fake-ollama/{MODEL}", fake_env, client)
    assert record.refusal is None and record.finish is FinishReason.STOP and len(record.text.split()) == 6


async def test_openai_sdk_agrees_on_a_chat_refusal(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                                   client: httpx2.AsyncClient) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    messages: list[dict[str, str]] = [{"role": "user", "content": PROMPT}]
    stream = await sdk.chat.completions.create(model=MODEL, messages=messages, stream=True,  # type: ignore[arg-type]
                                               max_completion_tokens=200)
    refusal, content, finish = "", "", None
    async for chunk in stream:
        for choice in chunk.choices:
            refusal += choice.delta.refusal or ""
            content += choice.delta.content or ""
            finish = choice.finish_reason or finish
    whole = await sdk.chat.completions.create(model=MODEL, messages=messages,  # type: ignore[arg-type]
                                              max_completion_tokens=200)
    record = await read(f"fake/{MODEL}", fake_env, client)
    assert refusal == record.refusal == whole.choices[0].message.refusal and refusal
    assert content == record.text == "" and whole.choices[0].message.content is None
    assert finish == whole.choices[0].finish_reason == record.finish_raw == "stop"


async def test_openai_sdk_agrees_on_a_responses_refusal(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                                        client: httpx2.AsyncClient) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    stream = await sdk.responses.create(model=MODEL, input=PROMPT, stream=True, max_output_tokens=200)
    deltas, done, final = "", None, None
    async for event in stream:
        if event.type == "response.refusal.delta":
            deltas += event.delta
        elif event.type == "response.refusal.done":
            done = event.refusal
        elif event.type == "response.completed":
            final = event.response
    record = await read(f"fake-responses/{MODEL}", fake_env, client)
    assert final is not None
    (part,) = [part for item in final.output if item.type == "message" for part in item.content]
    assert part.type == "refusal"
    assert deltas == done == part.refusal == record.refusal and record.text == ""
    assert final.status == record.finish_raw == "completed" and record.finish is FinishReason.CONTENT_FILTER


async def test_anthropic_sdk_agrees_on_a_refusal_and_its_stop_details(
        fake_server: FakeServerProcess, fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    sdk = anthropic.AsyncAnthropic(base_url=fake_server.base_url, api_key="test-key", max_retries=0)
    async with sdk.messages.stream(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": PROMPT}]) as s:
        final = await s.get_final_message()
    record = await read(f"fake-anthropic/{MODEL}", fake_env, client)
    details = final.stop_details
    assert details is not None and details.type == "refusal"
    assert (details.category, details.explanation) == (record.refusal_category, record.refusal)
    assert "".join(b.text for b in final.content if b.type == "text") == record.text
    assert final.stop_reason == record.finish_raw == "refusal"


async def test_anthropic_sdk_agrees_on_a_paused_server_tool_turn(
        fake_server: FakeServerProcess, fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    model = "search@tokens=3,pause=1"
    sdk = anthropic.AsyncAnthropic(base_url=fake_server.base_url, api_key="test-key", max_retries=0)
    async with sdk.messages.stream(model=model, max_tokens=200, messages=[{"role": "user", "content": PROMPT}]) as s:
        final = await s.get_final_message()
    record = await read(f"fake-anthropic/{model}", fake_env, client)
    assert final.stop_reason == record.finish_raw == "pause_turn"
    assert record.finish is FinishReason.PAUSE_TURN and record.error is None and summary(record)["status"] == "ok"
    assert record.tool_calls == []  # a server tool is the provider's to run, never the user's to answer
    use, result = (b for b in final.content if b.type != "text")
    assert [b.type for b in record.blocks] == [use.type, result.type] == ["server_tool_use", "web_search_tool_result"]
    assert use.type == "server_tool_use" and result.type == "web_search_tool_result"
    assert (record.blocks[0].id, record.blocks[0].name) == (use.id, use.name)
    assert json.loads(record.blocks[0].content) == use.input
    assert record.blocks[1].id == result.tool_use_id == use.id
    assert isinstance(result.content, list)
    shown = json.loads(record.blocks[1].content)
    assert [(r["url"], r["title"]) for r in shown] == [(r.url, r.title) for r in result.content]
    assert "encrypted_content" not in record.blocks[1].content  # opaque payloads are never kept


@pytest.mark.parametrize("provider", ["fake", "fake-responses", "fake-gemini", "fake-ollama"])
async def test_pause_is_anthropics_other_wires_answer_plainly(provider: str, fake_env: dict[str, str],
                                                              client: httpx2.AsyncClient) -> None:
    record = await read(f"{provider}/search@tokens=3,pause=1", fake_env, client)
    assert record.finish is FinishReason.STOP and record.blocks == [] and len(record.text.split()) == 3
