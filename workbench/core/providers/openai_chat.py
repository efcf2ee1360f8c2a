"""OpenAI Chat Completions streaming (``/v1/chat/completions``), also every OpenAI-compatible server.

Usage arrives in a last chunk with ``choices: []`` because ``stream_options.include_usage`` is set;
servers that ignore it send none and the call's usage is estimated. Reasoning arrives as
``delta.reasoning_content`` (DeepSeek, llama.cpp) or ``delta.reasoning`` (vLLM, Ollama, OpenRouter).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from workbench.core.events import (
    FinishEvent,
    FinishReason,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    ToolCallDelta,
    Usage,
    UsageEvent,
)
from workbench.core.finish import finish_reason
from workbench.core.providers import attachments
from workbench.core.providers.base import (
    SERVED_COUNT_TIMEOUT_S,
    HttpProvider,
    WireParser,
    loads_object,
    reported_count,
    sampling,
    several_choices,
    stream_error,
)
from workbench.core.providers.reasoning import openai_chat_reasoning
from workbench.core.providers.think_tags import ThinkSplitter, content_parts
from workbench.core.providers.tools import openai_chat_tools
from workbench.core.providers.turns import Plain, openai_chat_turns
from workbench.core.request import ChatRequest
from workbench.core.sse import SSEMessage


def chat_messages(request: ChatRequest, plain: Plain = attachments.plain) -> list[dict[str, Any]]:
    """The system prompt and the turns as chat messages, a turn without tool calls or results by ``plain`` (its
    text alone by default: what a tokenize endpoint reads)."""
    system = [{"role": "system", "content": request.system}] if request.system else []
    return system + openai_chat_turns(request.messages, plain, signatures=True)


def openai_usage(raw: dict[str, Any]) -> Usage:
    """OpenAI's usage object; the cache read is ``prompt_tokens_details.cached_tokens``, or DeepSeek's own
    ``prompt_cache_hit_tokens`` (part of ``prompt_tokens`` too)."""
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    cached = reported_count(prompt_details, "cached_tokens")
    return Usage(
        input_tokens=raw.get("prompt_tokens") or 0,
        output_tokens=raw.get("completion_tokens") or 0,
        cache_read_tokens=cached if cached is not None else reported_count(raw, "prompt_cache_hit_tokens"),
        cache_write_tokens=reported_count(prompt_details, "cache_write_tokens"),
        reasoning_tokens=completion_details.get("reasoning_tokens") or 0,
    )


class ChatParser(WireParser):
    __slots__ = ("call_ids", "call_slots", "done", "finished", "refused", "think", "tool_calls")

    def __init__(self) -> None:
        self.done = False
        self.think = ThinkSplitter()
        """``<think>…</think>`` opening the content is reasoning."""
        self.finished = False
        self.tool_calls = False
        """A ``delta.tool_calls`` came: a compatible server's plain ``stop`` after it reads ``tool_calls``."""
        self.refused = False
        """The model answered with ``delta.refusal``: its finish (``stop`` on the wire) is a refusal."""
        self.call_slots: dict[object, int] = {}
        """Each ``tool_calls[].index`` on the wire: the tool call it continues."""
        self.call_ids: list[tuple[str | None, bool]] = []
        """Each tool call's id, and whether its name came."""

    def _call_slot(self, call: dict[str, Any]) -> int:
        """The tool call a ``tool_calls`` entry adds to. OpenAI numbers each call (``index``) and sends its id and
        name once. Some compatible servers leave ``index`` out (Gemini's: ``null``, ids ``""``) or send ``0`` for every
        call (Ollama's): an entry with an id other than its call's, or without an index naming a function after a
        named call, begins a new call; an entry without an index otherwise continues the last call."""
        wire, call_id, named = call.get("index"), call.get("id"), bool((call.get("function") or {}).get("name"))
        slot = self.call_slots.get(wire) if wire is not None else len(self.call_ids) - 1 if self.call_ids else None
        if slot is not None:
            known_id, known_name = self.call_ids[slot]
            if (call_id and known_id and call_id != known_id) or (
                    wire is None and named and known_name and not (call_id and call_id == known_id)):
                slot = None
        if slot is None:
            slot = len(self.call_ids)
            self.call_ids.append((call_id or None, named))
        else:
            known_id, known_name = self.call_ids[slot]
            self.call_ids[slot] = (known_id or call_id or None, known_name or named)
        self.call_slots[wire] = slot
        return slot

    def complete_at_eof(self) -> bool:
        """``data: [DONE]`` is the last event, but some compatible servers leave it out: a finish reason is
        the real end (the usage chunk, if any, comes right after it)."""
        return self.done or self.finished

    def feed(self, message: SSEMessage, at_ns: int) -> Iterable[StreamEvent]:
        data = message.data
        if data.startswith("[DONE]"):
            self.done = True
            return self.think.flush(at_ns)
        chunk = loads_object(data)
        usage = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage")  # Groq: x_groq.usage
        error = chunk.get("error") or (chunk if chunk.get("object") == "error" else None)  # FastChat: bare
        if error:  # an OpenRouter error chunk may carry the usage so far
            self.done = True
            counted = [UsageEvent(openai_usage(usage), at_ns)] if usage else []
            if isinstance(error, dict):
                kind = error.get("type") or error.get("code")
                return (*counted, stream_error(None if kind is None else str(kind), str(error.get("message")), at_ns))
            return (*counted, stream_error(None, str(error), at_ns))
        out: list[StreamEvent] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0):  # n > 1: never merged into the first choice
                self.done = True
                return (several_choices(at_ns),)
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                out.append(ReasoningDelta(reasoning, at_ns))
            refusal = delta.get("refusal")
            if refusal:  # the model's refusal: kept apart from the text
                self.refused = True
                out.append(RefusalDelta(refusal, at_ns))
            text = delta.get("content")
            if isinstance(text, list):  # Mistral: text and thinking parts
                out.extend(content_parts(text, at_ns))
            elif text:
                out.extend(self.think.feed(text, at_ns))
            calls = delta.get("tool_calls")
            if calls:
                self.tool_calls = True
                for call in calls:
                    function = call.get("function") or {}
                    arguments = function.get("arguments") or ""
                    if isinstance(arguments, dict):  # some compatible servers send the object, not its JSON text
                        arguments = json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)
                    out.append(ToolCallDelta(self._call_slot(call), call.get("id"), function.get("name"),
                                             arguments, at_ns, _google_signature(call)))
            raw_finish = choice.get("finish_reason")
            if raw_finish == "error":  # OpenRouter, vLLM: the generation failed after the reply began
                self.done = True
                out.append(stream_error("error", 'the provider ended the reply with finish_reason "error"', at_ns))
            elif raw_finish:
                self.finished = True
                out.extend(self.think.flush(at_ns))
                reason = (FinishReason.CONTENT_FILTER if self.refused
                          else finish_reason("openai", raw_finish, tool_calls=self.tool_calls))
                out.append(FinishEvent(reason, raw_finish, at_ns))
        if usage:
            out.append(UsageEvent(openai_usage(usage), at_ns))
        return out


def _google_signature(call: dict[str, Any]) -> str | None:
    """The thought signature Gemini's OpenAI-compatible endpoint puts on a tool call
    (``extra_content.google.thought_signature``), which Gemini 3 wants back with the call."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


class OpenAIChatProvider(HttpProvider):
    def url(self, request: ChatRequest) -> str:
        return f"{self.endpoint.base_url}/chat/completions"

    def headers(self) -> dict[str, str]:
        key = self.endpoint.api_key
        return {"authorization": f"Bearer {key}"} if key else {}

    def body(self, request: ChatRequest) -> dict[str, Any]:
        p = request.params
        # OpenAI itself wants max_completion_tokens (reasoning models reject max_tokens);
        # compatible servers (vLLM, llama.cpp, LM Studio, Ollama) all read max_tokens.
        limit_field = "max_completion_tokens" if self.endpoint.provider == "openai" else "max_tokens"
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": chat_messages(request, attachments.openai_chat),
            "stream": True,
            "stream_options": {"include_usage": True},
            limit_field: p.max_tokens,
            **sampling(p),
        }
        if p.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": p.json_schema, "strict": True},
            }
        body.update(openai_chat_tools(p))
        body.update(openai_chat_reasoning(p))
        return body

    def parser(self) -> WireParser:
        return ChatParser()

    async def count_tokens(self, request: ChatRequest, *, raw: bool = False) -> int | None:
        """vLLM's ``/tokenize`` (chat-templated messages and the tools, as the chat body sends them) and llama.cpp's
        (raw text only) at the server root."""
        root = self.endpoint.base_url.removesuffix("/v1")
        text = "\n".join(m.content for m in request.messages)
        if self.endpoint.provider == "vllm":
            body: dict[str, Any] = {"model": self.endpoint.model}
            if raw:
                body["prompt"] = text
            else:
                body["messages"] = chat_messages(request)
                body.update({k: v for k, v in openai_chat_tools(request.params).items() if k == "tools"})
            return int((await self._post_json(f"{root}/tokenize", body))["count"])
        if self.endpoint.provider == "llamacpp" and raw:
            return len((await self._post_json(f"{root}/tokenize", {"content": text}))["tokens"])
        return None

    async def served_usage(self, request: ChatRequest, text: str) -> Usage | None:
        """llama.cpp's server: ``/apply-template`` (its chat template) and ``/tokenize`` (its tokenizer, with the
        special tokens it adds); llama-cpp-python's (``local/…``): the prompt its chat format makes
        (:func:`~workbench.core.local_model.served_prompt`: the server cannot apply it) counted by
        ``/extras/tokenize/count``. Other servers: ``None``."""
        root = self.endpoint.base_url.removesuffix("/v1")
        if self.endpoint.provider == "llamacpp":
            async with asyncio.timeout(SERVED_COUNT_TIMEOUT_S):
                applied = await self._post_json(f"{root}/apply-template", {"messages": chat_messages(request)})
                prompt = await self._post_json(f"{root}/tokenize",
                                               {"content": str(applied["prompt"]), "add_special": True})
                reply = await self._post_json(f"{root}/tokenize", {"content": text})
            return Usage(input_tokens=len(prompt["tokens"]), output_tokens=len(reply["tokens"]))
        if self.endpoint.provider == "local":
            from workbench.core.local_model import served_prompt

            rendered = await asyncio.to_thread(served_prompt, self.endpoint.model, chat_messages(request))
            if rendered is None:
                return None

            async def count(content: str) -> int:
                answer = await self._post_json(f"{root}/extras/tokenize/count",
                                               {"model": self.endpoint.model, "input": content})
                return int(answer["count"])

            async with asyncio.timeout(SERVED_COUNT_TIMEOUT_S):
                added = await count("")  # what the tokenizer adds to any text (a BOS token)
                return Usage(input_tokens=await count(rendered), output_tokens=await count(text) - added)
        return None
