"""A captured request body read as a ChatRequest, per wire, from the providers' documented request formats: the
system prompt, the turns with their images and PDFs, an assistant turn's tool calls and the tool results, the tools
(translated to OpenAI's function format) and the tool choice, and the sampling parameters."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.images import pdf, png
from workbench.core.capture.wire_request import chat_request
from workbench.core.request import ChatRequest

PNG = png(3, 2)
B64 = base64.b64encode(PNG).decode()
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                             "parameters": SCHEMA}}


def conversation(request: ChatRequest) -> list[tuple[Any, ...]]:
    """Each turn as (role, text, [(call id, name, arguments)], tool_call_id, [attachment sizes])."""
    return [(m.role, m.content, [(c.id, c.name, json.loads(c.arguments)) for c in m.tool_calls], m.tool_call_id,
             [(a.media_type, a.width, a.height) for a in m.attachments]) for m in request.messages]


EXPECTED = [
    ("user", "Weather in Paris? ", [], None, [("image/png", 3, 2)]),
    ("assistant", "", [("c1", "get_weather", {"city": "Paris"})], None, []),
    ("tool", "sunny", [], "c1", []),
]


def test_openai_chat_completions() -> None:
    body = {
        "model": "gpt-4.1", "temperature": 0.3, "max_completion_tokens": 50, "seed": 7, "stop": ["END"],
        "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "messages": [
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris? "},
                                         {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64}"}},
                                         {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ]}
    request = chat_request("openai_chat", body)
    assert request.system == "Be terse." and conversation(request) == EXPECTED
    params = request.params
    assert (params.temperature, params.max_tokens, params.seed, params.stop) == (0.3, 50, 7, ("END",))
    assert params.tools == (WEATHER,) and params.tool_choice == "get_weather"


def test_anthropic_messages() -> None:
    body = {
        "model": "claude", "max_tokens": 64, "system": [{"type": "text", "text": "Be terse."}],
        "tools": [{"name": "get_weather", "description": "Weather now", "input_schema": SCHEMA},
                  {"type": "web_search_20250305", "name": "web_search"}],
        "tool_choice": {"type": "any"},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris? "},
                                         {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                      "data": B64}}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "get_weather",
                                               "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "sunny"}]},
        ]}
    request = chat_request("anthropic", body)
    assert request.system == "Be terse." and conversation(request) == EXPECTED
    assert request.params.tools == (WEATHER,) and request.params.tool_choice == "required"
    assert request.params.max_tokens == 64


def test_gemini_generate_content_pairs_calls_and_responses_without_ids() -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be terse."}]},
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 40, "stopSequences": ["END"]},
        "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Weather now",
                                             "parameters": SCHEMA}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris? "},
                                       {"inlineData": {"mimeType": "image/png", "data": B64}}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"sky": "sunny"}}}]},
        ]}
    request = chat_request("gemini", body)
    assert request.system == "Be terse."
    assert conversation(request) == [EXPECTED[0], ("assistant", "", [("call_0", "get_weather", {"city": "Paris"})],
                                                   None, []), ("tool", '{"sky": "sunny"}', [], "call_0", [])]
    assert request.params.tools == (WEATHER,) and request.params.tool_choice == "required"
    assert (request.params.temperature, request.params.max_tokens, request.params.stop) == (0.2, 40, ("END",))


def test_ollama_chat() -> None:
    body = {
        "model": "llama3.2", "options": {"temperature": 0.1, "num_predict": 30, "seed": 3}, "tools": [WEATHER],
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Weather in Paris? ", "images": [B64]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
            {"role": "tool", "tool_name": "get_weather", "content": "sunny"},
        ]}
    request = chat_request("ollama", body)
    assert request.system == "Be terse."
    assert conversation(request) == [EXPECTED[0], ("assistant", "", [("call_0", "get_weather", {"city": "Paris"})],
                                                   None, []), ("tool", "sunny", [], "call_0", [])]
    assert (request.params.temperature, request.params.max_tokens, request.params.seed) == (0.1, 30, 3)
    assert request.params.tools == (WEATHER,) and request.params.tool_choice is None


def test_openai_responses_items_and_a_pdf() -> None:
    document = base64.b64encode(pdf(2)).decode()
    body = {
        "model": "gpt-5", "instructions": "Be terse.", "max_output_tokens": 80, "reasoning": {"effort": "low"},
        "tools": [{"type": "function", "name": "get_weather", "description": "Weather now", "parameters": SCHEMA},
                  {"type": "web_search"}],
        "tool_choice": "auto",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris? "},
                                         {"type": "input_image", "image_url": f"data:image/png;base64,{B64}"},
                                         {"type": "input_file", "filename": "report.pdf",
                                          "file_data": f"data:application/pdf;base64,{document}"}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ]}
    request = chat_request("openai_responses", body)
    first = request.messages[0]
    assert [(a.name, a.media_type, a.pages) for a in first.attachments][1] == ("report.pdf", "application/pdf", 2)
    assert conversation(request)[1:] == EXPECTED[1:] and request.system == "Be terse."
    assert request.params.tools == (WEATHER,) and request.params.tool_choice == "auto"
    assert (request.params.max_tokens, request.params.reasoning_effort) == (80, "low")


@pytest.mark.parametrize("body", [
    {"messages": [{"role": "tool", "tool_call_id": "nowhere", "content": "orphan"}, {"role": "user", "content": "hi"}]},
    {"messages": [{"role": "user", "content": "hi"}], "temperature": 9, "tools": [{"type": "function"}],
     "tool_choice": "get_weather"},
])
def test_what_workbench_cannot_hold_is_left_out_and_never_raises(body: dict[str, Any]) -> None:
    request = chat_request("openai_chat", body)
    assert [m.content for m in request.messages][-1] == "hi"
    assert request.params.temperature is None and request.params.tools == () and request.params.tool_choice is None
