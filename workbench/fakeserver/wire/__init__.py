"""One module per provider wire format; each parses its request shape and renders its stream,
non-streaming body and error body. The token-counting endpoints are :class:`CountWire` subclasses
(Anthropic and Gemini next to their wire, llama.cpp / vLLM ``/tokenize`` in :mod:`.tokenize`).
Shared pieces live in :mod:`.base`."""

from __future__ import annotations

from workbench.fakeserver.wire.anthropic import AnthropicCountWire, AnthropicWire
from workbench.fakeserver.wire.base import CountWire, WireFormat
from workbench.fakeserver.wire.gemini import GeminiCountWire, GeminiWire
from workbench.fakeserver.wire.ollama import OllamaWire
from workbench.fakeserver.wire.openai_chat import OpenAIChatWire
from workbench.fakeserver.wire.openai_responses import OpenAIResponsesCountWire, OpenAIResponsesWire
from workbench.fakeserver.wire.tokenize import LlamaCppTokenizeWire, VllmTokenizeWire, tokenize_wire

__all__ = [
    "AnthropicCountWire",
    "AnthropicWire",
    "CountWire",
    "GeminiCountWire",
    "GeminiWire",
    "LlamaCppTokenizeWire",
    "OllamaWire",
    "OpenAIChatWire",
    "OpenAIResponsesCountWire",
    "OpenAIResponsesWire",
    "VllmTokenizeWire",
    "WireFormat",
    "tokenize_wire",
]
