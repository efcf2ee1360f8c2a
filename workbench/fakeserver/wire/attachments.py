"""Images and PDFs in a request, per wire format: their shape checked as the provider documents it, their
bytes decoded and sniffed, and their input tokens counted by the rule the workbench's estimate uses
(:mod:`workbench.core.tokens.images`), so a call's reported usage and its estimate agree.

- OpenAI chat: ``image_url`` parts (``{"url": "data:..."}``) and ``file`` parts (``{"filename", "file_data"}``).
- Responses: ``input_image`` (``image_url``: a data URL) and ``input_file`` (``filename``, ``file_data``) parts.
- Anthropic: ``image`` and ``document`` blocks with ``{"type": "base64", "media_type", "data"}`` sources.
- Gemini: ``inlineData`` / ``inline_data`` parts (``mimeType`` / ``mime_type``, ``data``).
- Ollama: a message's ``images``: a list of base64 strings (images only).

Only inline data is taken: a URL the server would have to fetch is a 400 here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from typing import Any

from workbench.core.image_size import IMAGE_TYPES, PDF, image_size, pdf_pages, sniff
from workbench.core.tokens.images import family_of, image_tokens, pdf_tokens
from workbench.fakeserver.wire.base import WireError

_FAMILY_WIRE = {"anthropic_count": "anthropic", "gemini_count": "gemini", "openai_responses_count": "openai_responses"}


def attached_tokens(wire: str, model: str, body: Mapping[str, Any]) -> int:
    """The input tokens of every image and PDF in ``body`` (0 without any); a malformed one raises
    :class:`WireError` as the provider would answer it."""
    family = family_of(_FAMILY_WIRE.get(wire, wire), model)
    total = 0
    for where, media_type, data, detail in _attachments(wire, body):
        raw = _decode(data, where)
        sniffed = sniff(raw)
        if sniffed is None or (media_type is not None and sniffed != media_type):
            said = f"the provided media type {media_type}" if media_type else "a supported image or PDF type"
            raise WireError(f"{where}: the data does not match {said}.", where)
        if sniffed == PDF:
            if wire == "ollama":
                raise WireError(f"{where}: image: unknown format", where)
            total += pdf_tokens(family, pdf_pages(raw))
            continue
        size = image_size(raw, sniffed)
        if size is None:
            raise WireError(f"{where}: could not process image.", where)
        total += image_tokens(family, model, *size, detail)
    return total


def _decode(data: Any, where: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise WireError(f"{where}: expected base64 data.", where)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise WireError(f"{where}: invalid base64 data.", where) from None


def _data_url(url: Any, where: str) -> tuple[str, str]:
    """(media type, base64 data) of a ``data:<type>;base64,<data>`` URL."""
    if not isinstance(url, str) or not url.startswith("data:"):
        raise WireError(f"{where}: the fake server takes data: URLs only (it fetches nothing).", where)
    head, sep, data = url[5:].partition(",")
    media_type, _, encoding = head.partition(";")
    if not sep or encoding != "base64":
        raise WireError(f"{where}: expected a data:<media type>;base64,<data> URL.", where)
    return media_type, data


def _parts(items: Any, key: str, inner: str = "content") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(``key[i].inner[j]``, part) for every object part of every item's ``inner`` list."""
    if not isinstance(items, list):
        return
    for i, item in enumerate(items):
        content = item.get(inner) if isinstance(item, Mapping) else None
        if isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, Mapping):
                    yield f"{key}[{i}].{inner}[{j}]", part


def _detail(part: Mapping[str, Any], where: str) -> str:
    """An OpenAI image part's ``detail`` (``auto`` when absent, counted as ``high``); another value is a 400."""
    detail = part.get("detail", "auto")
    if detail not in ("low", "high", "auto"):
        raise WireError(f"Invalid value: '{detail}'. Supported values are: 'low', 'high', and 'auto'.",
                        f"{where}.detail")
    return "high" if detail == "auto" else str(detail)


def _attachments(wire: str, body: Mapping[str, Any]) -> Iterator[tuple[str, str | None, Any, str]]:
    """(where, declared media type or ``None``, base64 data, OpenAI ``detail``) of each attachment in the body."""
    if wire == "openai_chat":
        for where, part in _parts(body.get("messages"), "messages"):
            if part.get("type") == "image_url":
                image = part.get("image_url")
                media_type, data = _data_url(image.get("url") if isinstance(image, Mapping) else None,
                                             f"{where}.image_url.url")
                yield (f"{where}.image_url.url", _image_type(media_type, where), data,
                       _detail(image, f"{where}.image_url") if isinstance(image, Mapping) else "high")
            elif part.get("type") == "file":
                file = part.get("file")
                if not isinstance(file, Mapping) or "file_data" not in file:
                    raise WireError(f"{where}.file: expected an object with file_data.", f"{where}.file")
                media_type, data = _data_url(file.get("file_data"), f"{where}.file.file_data")
                yield f"{where}.file.file_data", media_type, data, "high"
    elif wire in ("openai_responses", "openai_responses_count"):
        for where, part in _parts(body.get("input"), "input"):
            if part.get("type") == "input_image":
                media_type, data = _data_url(part.get("image_url"), f"{where}.image_url")
                yield f"{where}.image_url", _image_type(media_type, where), data, _detail(part, where)
            elif part.get("type") == "input_file":
                media_type, data = _data_url(part.get("file_data"), f"{where}.file_data")
                yield f"{where}.file_data", media_type, data, "high"
    elif wire in ("anthropic", "anthropic_count"):
        for where, part in _parts(body.get("messages"), "messages"):
            if part.get("type") in ("image", "document"):
                source = part.get("source")
                if not isinstance(source, Mapping) or source.get("type") != "base64":
                    raise WireError(f"{where}.source: expected a base64 source.", f"{where}.source")
                declared = source.get("media_type")
                allowed = IMAGE_TYPES if part.get("type") == "image" else (PDF,)
                if declared not in allowed:
                    raise WireError(f"{where}.source.media_type: Input should be "
                                    + " or ".join(f"'{t}'" for t in allowed), f"{where}.source.media_type")
                yield f"{where}.source.data", str(declared), source.get("data"), "high"
    elif wire in ("gemini", "gemini_count"):
        inner = body.get("generateContentRequest", body.get("generate_content_request"))
        contents = (inner if isinstance(inner, Mapping) else body).get("contents")
        for where, part in _parts(contents, "contents", "parts"):
            inline = part.get("inlineData", part.get("inline_data"))
            if inline is None:
                continue
            if not isinstance(inline, Mapping):
                raise WireError(f"Invalid value at '{where}.inline_data': expected a Blob.")
            mime = inline.get("mimeType", inline.get("mime_type"))
            if mime not in (*IMAGE_TYPES, PDF):
                raise WireError(f"Unsupported MIME type: {mime}")
            yield f"{where}.inline_data.data", str(mime), inline.get("data"), "high"
    elif wire == "ollama":
        messages = body.get("messages")
        for i, message in enumerate(messages if isinstance(messages, list) else ()):
            images = message.get("images") if isinstance(message, Mapping) else None
            if images is None:
                continue
            if not isinstance(images, list):
                raise WireError("json: cannot unmarshal images into Go struct field Message.messages.images")
            for j, image in enumerate(images):
                yield f"messages[{i}].images[{j}]", None, image, "high"


def _image_type(media_type: str, where: str) -> str:
    if media_type not in IMAGE_TYPES:
        raise WireError(f"{where}: invalid image media type '{media_type}'; expected one of "
                        + ", ".join(IMAGE_TYPES) + ".", where)
    return media_type
