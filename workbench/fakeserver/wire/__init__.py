"""One module per provider wire format; each parses its request shape and renders its stream,
non-streaming body and error body. Shared pieces live in :mod:`.base`."""

from __future__ import annotations

from workbench.fakeserver.wire.anthropic import AnthropicWire
from workbench.fakeserver.wire.base import WireFormat
from workbench.fakeserver.wire.gemini import GeminiWire
from workbench.fakeserver.wire.ollama import OllamaWire
from workbench.fakeserver.wire.openai_chat import OpenAIChatWire
from workbench.fakeserver.wire.openai_responses import OpenAIResponsesWire

__all__ = [
    "AnthropicWire",
    "GeminiWire",
    "OllamaWire",
    "OpenAIChatWire",
    "OpenAIResponsesWire",
    "WireFormat",
]
