"""Attachments over real HTTP: every wire sends them to the fake server, which checks their shape and counts
them by the rule the estimate uses; the official openai and anthropic SDKs send the same image and the
usage agrees; ``workbench run --image`` and ``workbench tokens --image``; the trace log keeps no bytes."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest

from tests.images import gif, jpeg, pdf, png, webp
from tests.test_cli import json_lines, workbench
from workbench.core.attachments import attach, load_attachments
from workbench.core.call_record import CallRecord, collect
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef, Params
from workbench.core.tokens.estimate import attached_tokens
from workbench.fakeserver.process import FakeServerProcess

WIRES = ("fake", "fake-responses", "fake-anthropic", "fake-gemini", "fake-ollama")
MODEL = "gpt-4o@tokens=3"
PROMPT = "What is in the picture?"


async def call(target: str, request: ChatRequest, env: dict[str, str], client: httpx2.AsyncClient) -> CallRecord:
    return await collect(make_provider(resolve(ModelRef.parse(target), env), client), request)


def files(tmp_path: Path) -> Path:
    for name, data in (("a.png", png(1024, 1024)), ("b.jpg", jpeg(1800, 600)), ("c.gif", gif(200, 100)),
                       ("d.webp", webp(3000, 2000)), ("doc.pdf", pdf(2))):
        (tmp_path / name).write_bytes(data)
    return tmp_path


@pytest.mark.parametrize("provider", WIRES)
async def test_every_wire_sends_images_the_fake_server_counts_as_estimated(
        provider: str, tmp_path: Path, fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    target = f"{provider}/{MODEL}"
    bare = ChatRequest.from_prompt(PROMPT, params=Params(max_tokens=20))
    names = ["a.png", "b.jpg", "c.gif", "d.webp"] + ([] if provider == "fake-ollama" else ["doc.pdf"])
    request = attach(bare, names, files(tmp_path))
    without, with_images = await call(target, bare, fake_env, client), await call(target, request, fake_env, client)
    assert without.error is None and with_images.error is None, with_images.error
    assert without.usage is not None and with_images.usage is not None
    added = with_images.usage.input_tokens - without.usage.input_tokens
    assert added == attached_tokens(request.messages[0], target) > 0


async def test_a_pdf_to_ollama_fails_before_sending(tmp_path: Path, fake_env: dict[str, str],
                                                    client: httpx2.AsyncClient) -> None:
    request = attach(ChatRequest.from_prompt(PROMPT), ["doc.pdf"], files(tmp_path))
    record = await call(f"fake-ollama/{MODEL}", request, fake_env, client)
    assert record.error is not None and "takes images only" in str(record.error)
    assert record.timing.sent_ns is None


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}),
    ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                     "data": base64.b64encode(png(2, 2)).decode()}}]}]}),
    ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "%%%"}}]}]}),
])
async def test_the_fake_server_refuses_malformed_attachments(path: str, body: dict[str, object],
                                                             fake_server: FakeServerProcess,
                                                             client: httpx2.AsyncClient) -> None:
    response = await client.post(f"{fake_server.base_url}{path}", json=body)
    assert response.status_code == 400
    assert "messages[0].content[0]" in response.text


async def test_openai_sdk_sends_an_image_and_agrees_on_usage(tmp_path: Path, fake_server: FakeServerProcess,
                                                             fake_env: dict[str, str],
                                                             client: httpx2.AsyncClient) -> None:
    data = png(1024, 1024)
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    sdk = openai.AsyncOpenAI(base_url=f"{fake_server.base_url}/v1", api_key="test-key", max_retries=0)
    chat = await sdk.chat.completions.create(model=MODEL, max_completion_tokens=20, messages=[{
        "role": "user", "content": [{"type": "text", "text": PROMPT},
                                    {"type": "image_url", "image_url": {"url": url}}]}])
    responses = await sdk.responses.create(model=MODEL, max_output_tokens=20, input=[{
        "role": "user", "content": [{"type": "input_text", "text": PROMPT},
                                    {"type": "input_image", "image_url": url, "detail": "auto"}]}])
    (tmp_path / "a.png").write_bytes(data)
    request = attach(ChatRequest.from_prompt(PROMPT, params=Params(max_tokens=20)), ["a.png"], tmp_path)
    ours_chat = await call(f"fake/{MODEL}", request, fake_env, client)
    ours_responses = await call(f"fake-responses/{MODEL}", request, fake_env, client)
    assert chat.usage is not None and ours_chat.usage is not None
    assert chat.usage.prompt_tokens == ours_chat.usage.input_tokens
    assert responses.usage is not None and ours_responses.usage is not None
    assert responses.usage.input_tokens == ours_responses.usage.input_tokens


async def test_anthropic_sdk_sends_an_image_and_a_pdf_and_agrees_on_usage(
        tmp_path: Path, fake_server: FakeServerProcess, fake_env: dict[str, str], client: httpx2.AsyncClient) -> None:
    files(tmp_path)
    request = attach(ChatRequest.from_prompt(PROMPT, params=Params(max_tokens=20)), ["a.png", "doc.pdf"], tmp_path)
    image, document = request.messages[0].attachments
    sdk = anthropic.AsyncAnthropic(base_url=fake_server.base_url, api_key="test-key", max_retries=0)
    message = await sdk.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image.data}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": document.data}},
        {"type": "text", "text": PROMPT}]}])
    counted = await sdk.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image.data}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": document.data}},
        {"type": "text", "text": PROMPT}]}])
    ours = await call(f"fake-anthropic/{MODEL}", request, fake_env, client)
    assert ours.usage is not None
    assert message.usage.input_tokens == ours.usage.input_tokens == counted.input_tokens


def test_run_image_sends_it_traces_its_hash_and_never_its_bytes(tmp_path: Path, fake_env: dict[str, str]) -> None:
    files(tmp_path)
    db = tmp_path / "traces.db"
    env = {**fake_env, "WORKBENCH_TRACES": str(db)}
    result = workbench("run", PROMPT, "-m", f"fake/{MODEL}", "-m", f"fake-gemini/{MODEL}", "--image",
                       str(tmp_path / "a.png"), "--attach", str(tmp_path / "doc.pdf"), "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = json_lines(result.stdout)

    def estimated(*images: str) -> list[int]:
        flags = [arg for name in images for arg in ("--image", str(tmp_path / name))]
        out = workbench("tokens", "-m", f"fake/{MODEL}", "-m", f"fake-gemini/{MODEL}", "--offline", *flags, "--json",
                        stdin=PROMPT, env=env)
        assert out.returncode == 0, out.stderr
        return [int(row["input_tokens"]) for row in json_lines(out.stdout)]  # type: ignore[call-overload]

    with_files, bare = estimated("a.png", "doc.pdf"), estimated()
    assert [w - b for w, b in zip(with_files, bare, strict=True)] == [765 + 2 * 1500, 4 * 258 + 2 * 258]
    shown = json.loads(workbench("traces", "show", str(rows[0]["trace_id"]), "--json", env=env).stdout)
    stored = shown["request"]["messages"][0]["attached"]
    data = (tmp_path / "a.png").read_bytes()
    assert stored[0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert [(a["name"], a["media_type"]) for a in stored] == [("a.png", "image/png"), ("doc.pdf", "application/pdf")]
    printed = workbench("traces", "show", str(rows[0]["trace_id"]), env=env).stdout
    assert f"attached a.png  image/png  1024×1024  {len(data):,} B  sha256" in printed
    assert stored[0]["sha256"] in printed.replace("\n", "")  # (wrapped at the terminal's width)
    chunk = base64.b64encode(data).decode()[40:100].encode()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for path in tmp_path.glob("traces.db*"):
        assert chunk not in path.read_bytes()


def test_bad_attachments_are_one_line_and_exit_2(tmp_path: Path, fake_env: dict[str, str]) -> None:
    files(tmp_path)
    (tmp_path / "notes.png").write_text("not an image")
    bad = workbench("run", PROMPT, "-m", f"fake/{MODEL}", "--image", str(tmp_path / "notes.png"), env=fake_env)
    assert bad.returncode == 2 and "notes.png: not a PNG, JPEG, GIF, WEBP image or PDF" in bad.stderr
    assert "Traceback" not in bad.stderr
    pdf_to_ollama = workbench("run", PROMPT, "-m", f"fake-ollama/{MODEL}", "--image", str(tmp_path / "doc.pdf"),
                              env=fake_env)
    assert pdf_to_ollama.returncode == 2 and "the ollama API takes images only" in pdf_to_ollama.stderr
    missing = workbench("tokens", "-m", "openai/gpt-4o", "--offline", "--image", str(tmp_path / "gone.png"),
                        stdin=PROMPT, env=fake_env)
    assert missing.returncode == 2 and "gone.png: cannot read the attachment" in missing.stderr


async def test_a_call_without_usage_estimates_the_images_too(tmp_path: Path, fake_env: dict[str, str],
                                                             client: httpx2.AsyncClient) -> None:
    target = "fake/gpt-4o@tokens=3,usage=0"
    bare = ChatRequest.from_prompt(PROMPT, params=Params(max_tokens=20))
    request = attach(bare, ["a.png"], files(tmp_path))
    without, with_image = await call(target, bare, fake_env, client), await call(target, request, fake_env, client)
    assert without.usage_estimated and with_image.usage_estimated
    assert without.usage is not None and with_image.usage is not None
    assert with_image.usage.input_tokens - without.usage.input_tokens == 765


def test_continuing_a_call_with_attachments_says_they_are_not_kept(tmp_path: Path, fake_env: dict[str, str]) -> None:
    files(tmp_path)
    env = {**fake_env, "WORKBENCH_TRACES": str(tmp_path / "traces.db")}
    first = workbench("run", PROMPT, "-m", f"fake/{MODEL}", "--image", str(tmp_path / "a.png"), "--json", env=env)
    assert first.returncode == 0, first.stderr
    trace_id = str(json_lines(first.stdout)[0]["trace_id"])
    again = workbench("run", "And now?", "--continue", trace_id, "--image", str(tmp_path / "c.gif"), "--json",
                      env=env)
    assert again.returncode == 0, again.stderr
    assert "attachments (a.png) are not in the trace log" in again.stderr
    shown = json.loads(workbench("traces", "show", str(json_lines(again.stdout)[0]["trace_id"]), "--json",
                                 env=env).stdout)
    assert [[a["name"] for a in m.get("attached", [])] for m in shown["request"]["messages"]] == [[], [], ["c.gif"]]


@pytest.mark.parametrize(("provider", "part"), [
    ("openai", lambda body: body["messages"][-1]["content"][1]["image_url"]),
    ("openai-responses", lambda body: body["input"][-1]["content"][1]),
])
async def test_image_detail_is_sent_in_each_openai_wires_field(provider: str, part: object, tmp_path: Path,
                                                               client: httpx2.AsyncClient) -> None:
    files(tmp_path)
    request = ChatRequest.from_prompt(PROMPT).with_attachments(
        load_attachments(["a.png", "doc.pdf"], tmp_path, detail="low"))
    adapter = make_provider(resolve(ModelRef.parse(f"{provider}/gpt-4o"), {"OPENAI_API_KEY": "k"}), client)
    assert part(adapter.body(adapter.resolve(request)))["detail"] == "low"  # type: ignore[operator]
    assert request.messages[0].attachments[0].meta()["detail"] == "low"
    assert request.messages[0].attachments[1].detail is None  # a PDF has no detail


def test_image_detail_low_is_counted_as_the_base_tokens_by_estimate_and_server(tmp_path: Path,
                                                                              fake_env: dict[str, str]) -> None:
    files(tmp_path)  # a.png: 1024×1024, four 512 px tiles when high (85 + 4 × 170 = 765), the base 85 when low
    image = ["--image", str(tmp_path / "a.png")]
    targets = ["-m", f"fake/{MODEL}", "-m", f"fake-responses/{MODEL}"]

    def sent(*flags: str) -> list[int]:
        out = workbench("run", PROMPT, *targets, *image, *flags, "--json", "--no-trace", env=fake_env)
        assert out.returncode == 0, out.stderr
        return [int(row["input_tokens"]) for row in json_lines(out.stdout)]  # type: ignore[call-overload]

    def estimated(*flags: str) -> list[int]:
        out = workbench("tokens", *targets, "--offline", *image, *flags, "--json", stdin=PROMPT, env=fake_env)
        assert out.returncode == 0, out.stderr
        return [int(row["input_tokens"]) for row in json_lines(out.stdout)]  # type: ignore[call-overload]

    assert [h - low for h, low in zip(sent(), sent("--image-detail", "low"), strict=True)] == [680, 680]
    assert [h - low for h, low in zip(estimated(), estimated("--image-detail", "low"), strict=True)] == [680, 680]
    assert sent("--image-detail", "high") == sent() and estimated("--image-detail", "auto") == estimated()


def test_image_detail_where_it_cannot_be_sent_is_one_line_and_exit_2(tmp_path: Path,
                                                                     fake_env: dict[str, str]) -> None:
    files(tmp_path)
    anthropic_target = workbench("run", PROMPT, "-m", f"fake-anthropic/{MODEL}", "--image", str(tmp_path / "a.png"),
                                 "--image-detail", "low", env=fake_env)
    assert anthropic_target.returncode == 2 and "Traceback" not in anthropic_target.stderr
    assert "a.png: the anthropic API has no image detail field" in anthropic_target.stderr
    no_image = workbench("run", PROMPT, "-m", f"fake/{MODEL}", "--image-detail", "low", env=fake_env)
    assert no_image.returncode == 2 and "--image-detail without an attached image" in no_image.stderr
