"""Attachments on their own: the type sniffed from the bytes, pixel sizes from headers, the size bound, each
provider's published image-token rule, and each wire's documented content shape."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from tests.images import gif, jpeg, pdf, png, webp
from workbench.core.attachments import MAX_ATTACHMENT_BYTES, attach, attachment_from_bytes, load_attachment
from workbench.core.errors import ConfigError
from workbench.core.image_size import image_size, pdf_pages, sniff
from workbench.core.providers import attachments as wire
from workbench.core.request import ChatRequest, Message
from workbench.core.tokens.estimate import attached_tokens, count_input
from workbench.core.tokens.images import (
    anthropic_image_tokens,
    family_of,
    gemini_image_tokens,
    openai_image_tokens,
    pdf_tokens,
)


@pytest.mark.parametrize(("make", "media_type"), [(png, "image/png"), (gif, "image/gif"), (jpeg, "image/jpeg"),
                                                  (webp, "image/webp")])
def test_the_type_and_size_come_from_the_bytes(make: object, media_type: str) -> None:
    data = make(1024, 768)  # type: ignore[operator]
    assert sniff(data) == media_type
    assert image_size(data, media_type) == (1024, 768)


def test_webp_lossy_and_lossless_headers_give_their_size() -> None:
    lossy = b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0" + b"\0\0\0" + b"\x9d\x01\x2a" + (640).to_bytes(2, "little") \
        + (480).to_bytes(2, "little")
    assert image_size(lossy, "image/webp") == (640, 480)
    bits = (639) | (479 << 14)
    lossless = b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2f" + bits.to_bytes(4, "little")
    assert image_size(lossless, "image/webp") == (640, 480)


def test_a_pdf_is_sniffed_and_its_pages_counted() -> None:
    assert sniff(pdf(3)) == "application/pdf"
    assert pdf_pages(pdf(3)) == 3


def test_an_attachment_keeps_its_hash_size_and_dimensions(tmp_path: Path) -> None:
    data = png(300, 200)
    (tmp_path / "chart.jpg").write_bytes(data)  # the extension lies: the bytes say PNG
    attachment = load_attachment("chart.jpg", tmp_path)
    assert attachment.media_type == "image/png"
    assert (attachment.width, attachment.height, attachment.size) == (300, 200, len(data))
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert base64.b64decode(attachment.data) == data
    assert attachment.meta() == {"name": "chart.jpg", "media_type": "image/png", "size": len(data),
                                 "sha256": attachment.sha256, "width": 300, "height": 200}
    assert attachment.data not in repr(attachment)


def test_bad_files_are_refused_with_their_path(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("just text")
    with pytest.raises(ConfigError, match=r"notes.png: not a PNG, JPEG, GIF, WEBP image or PDF"):
        load_attachment(str(tmp_path / "notes.png"))
    with pytest.raises(ConfigError, match=r"missing.png: cannot read the attachment"):
        load_attachment(str(tmp_path / "missing.png"))
    with pytest.raises(ConfigError, match=r"big.png: 20.0 MiB is over the 20 MiB limit"):
        attachment_from_bytes(png(1, 1) + b"\0" * MAX_ATTACHMENT_BYTES, "big.png")
    with (tmp_path / "huge.png").open("wb") as fh:
        fh.truncate(30 * 1024 * 1024)  # sparse: 30 MiB said, none of it read
    with pytest.raises(ConfigError, match=r"huge.png: 30.0 MiB is over the 20 MiB limit"):
        load_attachment(str(tmp_path / "huge.png"))
    with pytest.raises(ConfigError, match=r"cut.png: a image/png file whose header is cut"):
        attachment_from_bytes(png(4, 4)[:14], "cut.png")


def test_openai_tiles_and_patches_follow_the_published_examples() -> None:
    assert openai_image_tokens("gpt-4o", 1024, 1024) == 765  # 4 tiles after the 768 px shortest side
    assert openai_image_tokens("gpt-4o", 2048, 4096) == 1105  # fit to 2048, then 768 x 1536: 6 tiles
    assert openai_image_tokens("gpt-4o", 4096, 8192, "low") == 85
    assert openai_image_tokens("gpt-4o-mini", 512, 512) == 2833 + 5667
    assert openai_image_tokens("gpt-4.1-mini", 1024, 1024) == 1659  # 1024 patches x 1.62
    assert openai_image_tokens("gpt-4.1-mini", 1800, 2400) == 2353  # scaled down to 1452 patches x 1.62


def test_anthropic_and_gemini_follow_their_published_rules() -> None:
    assert anthropic_image_tokens(1000, 1000) == 1334
    assert anthropic_image_tokens(1092, 1092) == 1590
    assert anthropic_image_tokens(4000, 3000) <= 1600  # scaled down to ~1.2 megapixels first
    assert gemini_image_tokens(384, 384) == 258
    assert gemini_image_tokens(1024, 768) == 516
    assert pdf_tokens("gemini", 3) == 774
    assert (family_of("openai_chat", "anthropic/claude-sonnet-4-5"), family_of("gemini", "x"),
            family_of("ollama", "llava")) == ("anthropic", "gemini", "openai")


def test_the_estimate_adds_the_images_by_the_targets_rule(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png(1024, 1024))
    request = attach(ChatRequest.from_prompt("Describe it"), ["a.png"], tmp_path)
    bare = ChatRequest.from_prompt("Describe it")
    for target, image in (("openai/gpt-4o", 765), ("anthropic/claude-sonnet-4-5", 1399),
                          ("gemini/gemini-2.5-flash", 1032)):
        assert attached_tokens(request.messages[0], target) == image
        total, _, exact = count_input(request, target)
        assert total == count_input(bare, target)[0] + image and not exact


def test_each_wire_carries_the_attachments_in_its_documented_shape(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png(2, 2))
    (tmp_path / "doc.pdf").write_bytes(pdf(1))
    message = attach(ChatRequest.from_prompt("Look"), ["a.png", "doc.pdf"], tmp_path).messages[0]
    image, document = message.attachments
    url = f"data:image/png;base64,{image.data}"
    pdf_url = f"data:application/pdf;base64,{document.data}"
    assert wire.openai_chat(message)["content"] == [
        {"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": url}},
        {"type": "file", "file": {"filename": "doc.pdf", "file_data": pdf_url}}]
    assert wire.responses(message)["content"] == [
        {"type": "input_text", "text": "Look"}, {"type": "input_image", "image_url": url},
        {"type": "input_file", "filename": "doc.pdf", "file_data": pdf_url}]
    assert wire.anthropic(message)["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image.data}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": document.data}},
        {"type": "text", "text": "Look"}]
    assert wire.gemini(message)["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": image.data}},
        {"inlineData": {"mimeType": "application/pdf", "data": document.data}}, {"text": "Look"}]
    only_image = replace(message, attachments=(image,))
    assert wire.ollama(only_image) == {"role": "user", "content": "Look", "images": [image.data]}
    with pytest.raises(ConfigError, match=r"doc.pdf: the ollama API takes images only"):
        wire.check_attachments((message,), "ollama", "ollama/llava")
    assert wire.openai_chat(Message(role="user", content="plain")) == {"role": "user", "content": "plain"}


@pytest.mark.parametrize(("provider", "where"), [
    ("openai", lambda body: body["messages"][-1]["content"][1]["image_url"]["url"]),
    ("openai-responses", lambda body: body["input"][-1]["content"][1]["image_url"]),
    ("anthropic", lambda body: "data:image/png;base64," + body["messages"][-1]["content"][0]["source"]["data"]),
    ("gemini", lambda body: "data:image/png;base64," + body["contents"][-1]["parts"][0]["inlineData"]["data"]),
    ("ollama", lambda body: "data:image/png;base64," + body["messages"][-1]["images"][0]),
])
async def test_each_adapter_puts_the_image_in_its_request_body(provider: str, where: object, tmp_path: Path) -> None:
    import httpx2

    from workbench.core.registry import make_provider, resolve
    from workbench.core.request import ModelRef

    (tmp_path / "a.png").write_bytes(png(8, 8))
    request = attach(ChatRequest.from_prompt("Look", system="Be brief."), ["a.png"], tmp_path)
    env = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "GEMINI_API_KEY": "k"}
    async with httpx2.AsyncClient() as client:
        adapter = make_provider(resolve(ModelRef.parse(f"{provider}/m"), env), client)
        body = adapter.body(adapter.resolve(request))
    assert where(body) == request.messages[0].attachments[0].data_url()  # type: ignore[operator]
