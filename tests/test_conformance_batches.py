"""Our batch clients (:mod:`workbench.core.evals.batch_api`) against the official SDKs on the same fake batches:
the state, the counts and every result (text, usage, finish, error) read alike, on OpenAI's Batch API (Chat
Completions and Responses) and Anthropic's Message Batches."""

from __future__ import annotations

import json

import anthropic
import httpx2
import openai

from workbench.core.evals.batch_api import BatchApi, batch_api, record_of
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef, Params
from workbench.fakeserver.process import FakeServerProcess

REQUEST = ChatRequest.from_prompt("Say hi to the batch", params=Params(max_tokens=60))


def ours(target: str, env: dict[str, str], client: httpx2.AsyncClient) -> BatchApi:
    api = batch_api(make_provider(resolve(ModelRef.parse(target), env), client), client)
    assert api is not None
    return api


async def test_openai_batches_read_alike(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                         client: httpx2.AsyncClient) -> None:
    api = ours("fake/gpt-4o-mini@tokens=5,batch_errors=1", fake_env, client)
    body = api.body(REQUEST)
    assert "stream" not in body and "stream_options" not in body
    batch_id = await api.submit([("first", body), ("second", body)], "RUN1")
    status = await api.status(batch_id)
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    theirs = await sdk.batches.retrieve(batch_id)
    assert theirs.request_counts is not None and status.ended
    assert (status.state, status.done, status.failed, status.total) == (
        theirs.status, theirs.request_counts.completed, theirs.request_counts.failed, theirs.request_counts.total)
    results = {cid: (reply, error) for cid, reply, error, _ in await api.results(batch_id)}
    assert theirs.output_file_id is not None and theirs.error_file_id is not None
    [good] = [json.loads(line) for line in (await sdk.files.content(theirs.output_file_id)).text.splitlines()]
    record = record_of(api.target, REQUEST, api.endpoint.wire, results["second"][0])
    assert record.error is None and record.usage is not None
    completion = openai.types.chat.ChatCompletion.model_validate(good["response"]["body"])
    assert completion.usage is not None
    assert record.text == completion.choices[0].message.content
    assert (record.usage.input_tokens, record.usage.output_tokens) == (completion.usage.prompt_tokens,
                                                                         completion.usage.completion_tokens)
    assert record.finish_raw == completion.choices[0].finish_reason
    [bad] = [json.loads(line) for line in (await sdk.files.content(theirs.error_file_id)).text.splitlines()]
    failed = record_of(api.target, REQUEST, api.endpoint.wire, *results["first"])
    assert failed.error is not None and failed.error.error_class == f"http_{bad['response']['status_code']}"


async def test_openai_responses_batches_read_alike(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                                   client: httpx2.AsyncClient) -> None:
    api = ours("fake-responses/o4-mini@tokens=5,reasoning=3", fake_env, client)
    body = api.body(REQUEST)
    assert "stream" not in body and body["max_output_tokens"] == 60
    batch_id = await api.submit([("only", body)], "RUN3")
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    theirs = await sdk.batches.retrieve(batch_id)
    assert theirs.endpoint == "/v1/responses" and theirs.output_file_id is not None
    [good] = [json.loads(line) for line in (await sdk.files.content(theirs.output_file_id)).text.splitlines()]
    response = openai.types.responses.Response.model_validate(good["response"]["body"])
    [(custom_id, reply, error, _)] = list(await api.results(batch_id))
    record = record_of(api.target, REQUEST, api.endpoint.wire, reply, error)
    assert custom_id == "only" and record.error is None and record.usage is not None and response.usage is not None
    assert record.text == response.output_text != ""
    assert record.reasoning == "".join(part.text for item in response.output if item.type == "reasoning"
                                       for part in item.summary)
    usage = response.usage
    assert (record.usage.input_tokens, record.usage.output_tokens, record.usage.reasoning_tokens) == (
        usage.input_tokens, usage.output_tokens, usage.output_tokens_details.reasoning_tokens)
    assert record.finish_raw == response.status


async def test_anthropic_message_batches_read_alike(fake_server: FakeServerProcess, fake_env: dict[str, str],
                                                    client: httpx2.AsyncClient) -> None:
    api = ours("fake-anthropic/claude@tokens=4,batch_errors=1,batch_expire=1", fake_env, client)
    body = api.body(REQUEST)
    assert "stream" not in body and body["max_tokens"] == 60
    batch_id = await api.submit([("a", body), ("b", body), ("c", body)], "RUN2")
    status = await api.status(batch_id)
    sdk = anthropic.AsyncAnthropic(base_url=fake_server.base_url, api_key="test-key", max_retries=0)
    theirs = await sdk.messages.batches.retrieve(batch_id)
    counts = theirs.request_counts
    assert (status.state, status.done, status.failed) == (theirs.processing_status, counts.succeeded,
                                                          counts.errored + counts.expired + counts.canceled)
    results = {cid: (reply, error) for cid, reply, error, _ in await api.results(batch_id)}
    sdk_results = {row.custom_id: row.result async for row in await sdk.messages.batches.results(batch_id)}
    message = sdk_results["b"]
    assert message.type == "succeeded"
    record = record_of(api.target, REQUEST, api.endpoint.wire, results["b"][0])
    assert record.text == "".join(block.text for block in message.message.content if block.type == "text")
    assert record.usage is not None
    assert (record.usage.input_tokens, record.usage.output_tokens) == (message.message.usage.input_tokens,
                                                                         message.message.usage.output_tokens)
    assert record.finish_raw == message.message.stop_reason
    errored = sdk_results["a"]
    assert errored.type == "errored"
    failed = record_of(api.target, REQUEST, api.endpoint.wire, *results["a"])
    assert failed.error is not None and errored.error.error.type in str(failed.error)
    assert sdk_results["c"].type == "expired"
    expired = record_of(api.target, REQUEST, api.endpoint.wire, *results["c"])
    assert expired.error is not None and expired.error.error_class == "batch_expired"
