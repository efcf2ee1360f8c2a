"""The fake server's batch APIs read by the official SDKs' batch helpers as they read the real ones: OpenAI's files
and batches (upload, create, retrieve, cancel, the output and error files), Anthropic's message batches (create,
retrieve, results, cancel), with the batch keys (``batch_polls``, ``batch_expire``) and failing requests."""

from __future__ import annotations

import io
import json

import anthropic
import httpx2
import openai
import pytest

from workbench.fakeserver.batches import Knobs, batch_knobs
from workbench.fakeserver.process import FakeServerProcess


def openai_sdk(server: FakeServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="test-key", max_retries=0)


def anthropic_sdk(server: FakeServerProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key="test-key", max_retries=0)


def jsonl(*lines: dict[str, object]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def chat_line(custom_id: str, model: str) -> dict[str, object]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 50}}


def test_batch_keys_are_taken_out_of_the_model_name() -> None:
    assert batch_knobs("gpt-4o-mini@tokens=3,batch_polls=2,batch_expire=1") == ("gpt-4o-mini@tokens=3",
                                                                                Knobs(polls=2, expire=1))
    assert batch_knobs("gpt-4o-mini@batch_polls=1,batch_errors=2") == ("gpt-4o-mini", Knobs(polls=1, errors=2))
    assert batch_knobs("claude@20240620") == ("claude@20240620", Knobs())


def test_openai_sdk_uploads_runs_and_reads_a_batch_with_a_failed_request(fake_server: FakeServerProcess) -> None:
    sdk = openai_sdk(fake_server)
    uploaded = sdk.files.create(file=("in.jsonl", io.BytesIO(jsonl(
        chat_line("ok-1", "gpt-4o-mini@tokens=4,batch_polls=1"), chat_line("bad-1", "gpt-4o-mini@status=400")))),
        purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.filename == "in.jsonl" and uploaded.bytes > 0
    assert sdk.files.retrieve(uploaded.id).id == uploaded.id
    batch = sdk.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "validating" and batch.input_file_id == uploaded.id
    assert batch.endpoint == "/v1/chat/completions"
    waiting = sdk.batches.retrieve(batch.id)
    assert waiting.status == "in_progress" and waiting.output_file_id is None
    done = sdk.batches.retrieve(batch.id)
    assert done.status == "completed" and done.completed_at is not None
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (2, 1, 1)
    assert done.output_file_id is not None and done.error_file_id is not None
    [good] = [json.loads(line) for line in sdk.files.content(done.output_file_id).text.splitlines()]
    assert good["custom_id"] == "ok-1" and good["error"] is None and good["response"]["status_code"] == 200
    reply = openai.types.chat.ChatCompletion.model_validate(good["response"]["body"])
    assert reply.model == "gpt-4o-mini@tokens=4" and reply.usage is not None and reply.usage.completion_tokens == 4
    assert len((reply.choices[0].message.content or "").split()) == 4 and good["response"]["request_id"]
    [bad] = [json.loads(line) for line in sdk.files.content(done.error_file_id).text.splitlines()]
    assert bad["custom_id"] == "bad-1" and bad["response"]["status_code"] == 400
    assert bad["response"]["body"]["error"]["type"] == "invalid_request_error"


def test_openai_sdk_sees_an_expired_and_a_cancelled_batch(fake_server: FakeServerProcess) -> None:
    sdk = openai_sdk(fake_server)
    data = jsonl(chat_line("done", "gpt-4o-mini@tokens=2"), chat_line("late", "gpt-4o-mini@batch_expire=1"))
    file_id = sdk.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch").id
    batch = sdk.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    expired = sdk.batches.retrieve(batch.id)
    assert expired.status == "expired" and expired.expired_at is not None and expired.output_file_id
    assert expired.error_file_id is not None
    [late] = [json.loads(line) for line in sdk.files.content(expired.error_file_id).text.splitlines()]
    assert late == {**late, "custom_id": "late", "response": None} and late["error"]["code"] == "batch_expired"

    file_id = sdk.files.create(file=("in.jsonl", io.BytesIO(jsonl(chat_line("a", "m@batch_polls=100")))),
                               purpose="batch").id
    held = sdk.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    assert sdk.batches.cancel(held.id).status == "cancelling"
    cancelled = sdk.batches.retrieve(held.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None and cancelled.output_file_id is None
    assert cancelled.error_file_id is not None
    [line] = [json.loads(row) for row in sdk.files.content(cancelled.error_file_id).text.splitlines()]
    assert line["error"]["code"] == "batch_cancelled"


def test_openai_refuses_a_batch_it_cannot_run(fake_server: FakeServerProcess) -> None:
    sdk = openai_sdk(fake_server)
    file_id = sdk.files.create(file=("in.jsonl", io.BytesIO(jsonl(chat_line("a", "m")))), purpose="batch").id
    with pytest.raises(openai.BadRequestError, match="completion_window"):
        sdk.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="1h")  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        sdk.batches.retrieve("batch_nope")
    twice = sdk.files.create(file=("in.jsonl", io.BytesIO(jsonl(chat_line("a", "m"), chat_line("a", "m")))),
                             purpose="batch").id
    failed = sdk.batches.create(input_file_id=twice, endpoint="/v1/chat/completions", completion_window="24h")
    assert failed.status == "failed" and failed.errors is not None and failed.errors.data
    assert failed.errors.data[0].code == "duplicate_custom_id" and failed.errors.data[0].line == 2


def anthropic_request(custom_id: str, model: str) -> dict[str, object]:
    return {"custom_id": custom_id,
            "params": {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "Say hi"}]}}


def test_anthropic_sdk_creates_polls_and_reads_a_message_batch(fake_server: FakeServerProcess) -> None:
    sdk = anthropic_sdk(fake_server)
    batch = sdk.messages.batches.create(requests=[  # type: ignore[list-item]
        anthropic_request("ok", "claude-sonnet-4-5@tokens=3,batch_polls=1"),
        anthropic_request("bad", "claude-sonnet-4-5@status=529"),
        anthropic_request("late", "claude-sonnet-4-5@batch_expire=1")])
    assert batch.type == "message_batch" and batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3 and batch.results_url is None and batch.expires_at > batch.created_at
    assert sdk.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    ended = sdk.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.ended_at is not None and ended.results_url
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.expired, counts.canceled) == (0, 1, 1, 1, 0)
    results = {row.custom_id: row.result for row in sdk.messages.batches.results(batch.id)}
    ok = results["ok"]
    assert ok.type == "succeeded" and ok.message.usage.output_tokens == 3
    assert ok.message.model == "claude-sonnet-4-5@tokens=3" and ok.message.stop_reason == "end_turn"
    assert [block.type for block in ok.message.content] == ["text"]
    bad = results["bad"]
    assert bad.type == "errored" and bad.error.error.type == "overloaded_error"
    assert results["late"].type == "expired"


def test_anthropic_sdk_cancels_a_message_batch(fake_server: FakeServerProcess) -> None:
    sdk = anthropic_sdk(fake_server)
    batch = sdk.messages.batches.create(requests=[anthropic_request("a", "claude@batch_polls=100")])  # type: ignore[list-item]
    assert sdk.messages.batches.cancel(batch.id).processing_status == "canceling"
    ended = sdk.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.canceled == 1 and ended.cancel_initiated_at
    assert [row.result.type for row in sdk.messages.batches.results(batch.id)] == ["canceled"]
    with pytest.raises(anthropic.BadRequestError, match="custom_id"):
        sdk.messages.batches.create(requests=[anthropic_request("not ok!", "claude")])  # type: ignore[list-item]


def test_a_held_batch_ends_when_the_test_says(fake_server: FakeServerProcess) -> None:
    sdk = anthropic_sdk(fake_server)
    batch = sdk.messages.batches.create(requests=[anthropic_request("a", "claude@batch_polls=1000")])  # type: ignore[list-item]
    assert sdk.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    ended = httpx2.post(f"{fake_server.base_url}/_fake/batches/end").json()
    assert ended["ended"] >= 1
    assert sdk.messages.batches.retrieve(batch.id).processing_status == "ended"


def test_batch_keys_fail_the_first_requests_and_expire_the_last(fake_server: FakeServerProcess) -> None:
    model = "gpt-4o-mini@tokens=2,batch_errors=1,batch_expire=1"
    sdk = openai_sdk(fake_server)
    file_id = sdk.files.create(file=("in.jsonl", io.BytesIO(jsonl(*(chat_line(f"r{i}", model) for i in range(3))))),
                               purpose="batch").id
    batch = sdk.batches.retrieve(sdk.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                                    completion_window="24h").id)
    assert batch.status == "expired" and batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 2)
    assert batch.output_file_id is not None and batch.error_file_id is not None
    assert [json.loads(row)["custom_id"] for row in sdk.files.content(batch.output_file_id).text.splitlines()] == ["r1"]
    errors = sdk.files.content(batch.error_file_id).text.splitlines()
    failed = {row["custom_id"]: row for row in map(json.loads, errors)}
    assert failed["r0"]["response"]["status_code"] == 500 and failed["r2"]["error"]["code"] == "batch_expired"

    claude = anthropic_sdk(fake_server)
    made = claude.messages.batches.create(requests=[  # type: ignore[list-item]
        anthropic_request(f"r{i}", "claude@tokens=2,batch_errors=1,batch_expire=1") for i in range(3)])
    counts = claude.messages.batches.retrieve(made.id).request_counts
    assert (counts.succeeded, counts.errored, counts.expired) == (1, 1, 1)
    results = [row.result.type for row in claude.messages.batches.results(made.id)]
    assert results == ["errored", "succeeded", "expired"]
