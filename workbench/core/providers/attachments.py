"""A user turn's attachments (images, PDFs) in each wire's own content shape.

Each function takes a :class:`~workbench.core.request.Message` (a turn without tool calls or results: those are
:mod:`workbench.core.providers.turns`') and returns the wire's message; a turn without attachments keeps its plain
string content. A wire that cannot carry a type raises
:class:`~workbench.core.errors.ConfigError` before anything is sent (:func:`check_attachments`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from workbench.core.attachments import Attachment
from workbench.core.errors import ConfigError
from workbench.core.providers.target_wires import WiredSpec, target_wires
from workbench.core.request import ChatRequest, Message

_IMAGES_ONLY = frozenset({"ollama"})
"""Wires that take images but no documents."""

_DETAIL_WIRES = frozenset({"openai_chat", "openai_responses"})
"""Wires with an image ``detail`` field."""


def check_attachments(messages: Iterable[Message], wire: str, target: str) -> None:
    """Raise a :class:`ConfigError` when ``wire`` cannot carry one of the messages' attachments (or its
    ``detail``)."""
    for message in messages:
        for attachment in message.attachments:
            if attachment.detail is not None and wire not in _DETAIL_WIRES:
                raise ConfigError(f"{target}: {attachment.path or attachment.name}: the {wire.replace('_', ' ')} API "
                                  "has no image detail field", "drop --image-detail, or send to an OpenAI target")
            if wire in _IMAGES_ONLY and not attachment.is_image:
                raise ConfigError(f"{target}: {attachment.path or attachment.name}: the {wire} API takes images only, "
                                  f"not {attachment.media_type}",
                                  "send the PDF to an OpenAI, Anthropic or Gemini target, or attach page images")


def check_targets(request: ChatRequest, targets: Iterable[str], providers: Mapping[str, WiredSpec]) -> None:
    """:func:`check_attachments` for each target's wire (an unknown provider is left to the call to report)."""
    if not any(m.attachments for m in request.messages):
        return
    for target, wire in target_wires(targets, providers):
        check_attachments(request.messages, wire, target)


def plain(message: Message) -> dict[str, Any]:
    """The role and the text alone, as every chat-shaped wire's message takes them."""
    return {"role": message.role, "content": message.content}


def _text(message: Message, kind: str = "text") -> list[dict[str, Any]]:
    """The turn's text part (none for an empty text beside attachments: some wires refuse empty text parts)."""
    return [{"type": kind, "text": message.content}] if message.content or not message.attachments else []


def openai_chat(message: Message) -> dict[str, Any]:
    """Chat Completions: ``text``, ``image_url`` (a data URL) and ``file`` (``filename``, ``file_data``) parts."""
    if not message.attachments:
        return plain(message)
    parts = _text(message)
    for a in message.attachments:
        parts.append({"type": "image_url", "image_url": _detailed({"url": a.data_url()}, a)} if a.is_image
                     else {"type": "file", "file": {"filename": a.name, "file_data": a.data_url()}})
    return {"role": message.role, "content": parts}


def _detailed(part: dict[str, Any], a: Attachment) -> dict[str, Any]:
    """``part`` with the image's ``detail`` when one was chosen (Chat Completions' ``image_url.detail``, the
    Responses ``input_image.detail``)."""
    return {**part, "detail": a.detail} if a.detail is not None else part


def responses(message: Message) -> dict[str, Any]:
    """Responses: ``input_text``, ``input_image`` (``image_url``: a data URL) and ``input_file`` parts."""
    if not message.attachments:
        return plain(message)
    parts = _text(message, "input_text")
    for a in message.attachments:
        parts.append(_detailed({"type": "input_image", "image_url": a.data_url()}, a) if a.is_image
                     else {"type": "input_file", "filename": a.name, "file_data": a.data_url()})
    return {"role": message.role, "content": parts}


def _anthropic_block(a: Attachment) -> dict[str, Any]:
    return {"type": "image" if a.is_image else "document",
            "source": {"type": "base64", "media_type": a.media_type, "data": a.data}}


def anthropic(message: Message) -> dict[str, Any]:
    """Messages: ``image`` and ``document`` blocks with a base64 source, before the text (as Anthropic advises)."""
    if not message.attachments:
        return plain(message)
    return {"role": message.role, "content": [*(_anthropic_block(a) for a in message.attachments), *_text(message)]}


def gemini(message: Message) -> dict[str, Any]:
    """Gemini: an ``inlineData`` part (``mimeType``, ``data``) per attachment, then the text part."""
    inline = [{"inlineData": {"mimeType": a.media_type, "data": a.data}} for a in message.attachments]
    text = [{"text": message.content}] if message.content or not inline else []
    return {"role": "model" if message.role == "assistant" else "user", "parts": [*inline, *text]}


def ollama(message: Message) -> dict[str, Any]:
    """Ollama: the text, and the images' base64 in the message's ``images`` list (documents: see
    :func:`check_attachments`)."""
    if not message.attachments:
        return plain(message)
    return {"role": message.role, "content": message.content, "images": [a.data for a in message.attachments]}
