"""OpenAI Responses: ``POST /v1/responses``.

Stream: ``event: X\\ndata: {"type":"X",...,"sequence_number":n}\\n\\n`` — response.created,
response.in_progress, [a reasoning item: output_item.added, reasoning_summary_part.added,
reasoning_summary_text.delta*, reasoning_summary_text.done, reasoning_summary_part.done,
output_item.done], the message item: output_item.added, content_part.added, output_text.delta*,
output_text.done, content_part.done, output_item.done (a reasoning item's with its ``encrypted_content`` when the
request includes ``reasoning.encrypted_content``), [with ``tools=N`` a ``function_call`` item per
call: output_item.added (``call_id``, ``name``, empty ``arguments``), function_call_arguments.delta* (the
arguments in pieces), function_call_arguments.done, output_item.done], then response.completed (or
response.incomplete with ``incomplete_details.reason`` ``max_output_tokens``). No ``[DONE]``. With
``refusal=1`` the message's part is a ``refusal`` part: refusal.delta* and refusal.done instead of the text's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.fakeserver.tool_calls import FakeToolCall
from workbench.fakeserver.wire.base import (
    CountWire,
    Generation,
    Prompt,
    StreamRenderer,
    Template,
    WireError,
    broken,
    compact,
    content_text,
    jstr,
    new_id,
    optional_int,
    slot,
)
from workbench.fakeserver.wire.openai_common import OpenAIWire
from workbench.fakeserver.wire.tool_turns import seal_reasoning
from workbench.fakeserver.wire.tools import fragments, tools_of

__all__ = ["OpenAIResponsesCountWire", "OpenAIResponsesWire"]


def responses_usage(gen: Generation) -> dict[str, Any] | None:
    if not gen.usage:
        return None
    return {
        "input_tokens": gen.input_tokens,
        "input_tokens_details": {"cached_tokens": gen.cache_read, "cache_write_tokens": gen.cache_write},
        "output_tokens": gen.output_tokens,
        "output_tokens_details": {"reasoning_tokens": gen.reasoning_count},
        "total_tokens": gen.input_tokens + gen.output_tokens,
    }


class _Items:
    """Ids and the finished output items of one response."""

    def __init__(self, gen: Generation) -> None:
        self.gen = gen
        self.response_id = new_id("resp_", 24)
        self.message_id = new_id("msg_", 24)
        self.reasoning_id = new_id("rs_", 24)
        self.message_index = 1 if gen.reasoning_count else 0

    def text_part(self, text: str) -> dict[str, Any]:
        if self.gen.scenario.refusal:  # the message's content is a refusal part
            return {"type": "refusal", "refusal": text}
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}

    def reasoning_item(self, summary: list[dict[str, Any]], done: bool = True) -> dict[str, Any]:
        """The reasoning item; when done and asked for (``include: ["reasoning.encrypted_content"]``), with its
        encrypted content (sent back in the next turn of a tool loop)."""
        item: dict[str, Any] = {"id": self.reasoning_id, "type": "reasoning", "summary": summary}
        include = self.gen.prompt.extra.get("include")
        if done and isinstance(include, list) and "reasoning.encrypted_content" in include:
            item["encrypted_content"] = seal_reasoning(self.reasoning_id)
        return item

    def message_item(self, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.message_id, "type": "message", "status": status, "content": content, "role": "assistant"}

    def output(self) -> list[dict[str, Any]]:
        gen = self.gen
        out = []
        if gen.reasoning_count:
            out.append(self.reasoning_item([{"type": "summary_text", "text": gen.reasoning()}]))
        status = "incomplete" if gen.truncated else "completed"
        out.append(self.message_item(status, [self.text_part(gen.text())]))
        out.extend(self.call_item(call, "completed", call.arguments) for call in gen.tool_calls)
        return out

    def call_index(self, call: FakeToolCall) -> int:
        return self.message_index + 1 + call.index

    def call_item(self, call: FakeToolCall, status: str, arguments: str) -> dict[str, Any]:
        return {"id": f"fc_{call.id}", "type": "function_call", "status": status, "arguments": arguments,
                "call_id": f"call_{call.id}", "name": call.name}

    def response(self, status: str, output: list[dict[str, Any]], final: bool) -> dict[str, Any]:
        gen = self.gen
        extra = gen.prompt.extra
        reasoning = extra.get("reasoning")
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": gen.created,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": extra.get("instructions"),
            "max_output_tokens": gen.prompt.max_tokens,
            "max_tool_calls": None,
            "model": gen.model,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {
                "effort": reasoning.get("effort") if isinstance(reasoning, Mapping) else None,
                "summary": reasoning.get("summary") if isinstance(reasoning, Mapping) else None,
            },
            "service_tier": "default",
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": [],
            "top_logprobs": 0,
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": responses_usage(gen) if final else None,
            "user": None,
            "metadata": {},
        }

    def final_status(self) -> str:
        return "incomplete" if self.gen.truncated else "completed"


class ResponsesRenderer(StreamRenderer):
    def __init__(self, gen: Generation) -> None:
        super().__init__(gen)
        self.items = _Items(gen)
        self.seq = 0
        msg, idx = self.items.message_id, self.items.message_index
        text_event = "response.refusal.delta" if gen.scenario.refusal else "response.output_text.delta"
        text: dict[str, Any] = {"type": text_event, "content_index": 0, "delta": slot("d"), "item_id": msg,
                                "logprobs": [], "output_index": idx, "sequence_number": slot("n")}
        if gen.scenario.refusal:
            del text["logprobs"]  # a refusal delta carries none
        self._text = Template(text, prefix=f"event: {text_event}\ndata: ".encode(), suffix=b"\n\n")
        self._reasoning = Template(
            {
                "type": "response.reasoning_summary_text.delta",
                "delta": slot("d"),
                "item_id": self.items.reasoning_id,
                "output_index": 0,
                "sequence_number": slot("n"),
                "summary_index": 0,
            },
            prefix=b"event: response.reasoning_summary_text.delta\ndata: ",
            suffix=b"\n\n",
        )

    def _event(self, etype: str, **fields: Any) -> bytes:
        payload = {"type": etype, **fields, "sequence_number": self.seq}
        self.seq += 1
        return b"event: " + etype.encode() + b"\ndata: " + compact(payload).encode() + b"\n\n"

    def _next(self) -> bytes:
        n = self.seq
        self.seq += 1
        return str(n).encode()

    def start(self) -> list[bytes]:
        resp = self.items.response
        return [
            self._event("response.created", response=resp("in_progress", [], False)),
            self._event("response.in_progress", response=resp("in_progress", [], False)),
        ]

    def reasoning_start(self) -> list[bytes]:
        items = self.items
        return [
            self._event("response.output_item.added", item=items.reasoning_item([], done=False), output_index=0),
            self._event(
                "response.reasoning_summary_part.added",
                item_id=items.reasoning_id,
                output_index=0,
                part={"type": "summary_text", "text": ""},
                summary_index=0,
            ),
        ]

    def reasoning_token(self, token: str) -> bytes:
        return self._reasoning.render(jstr(token), self._next())

    def reasoning_end(self) -> list[bytes]:
        items = self.items
        text = self.gen.reasoning()
        part = {"type": "summary_text", "text": text}
        return [
            self._event(
                "response.reasoning_summary_text.done",
                item_id=items.reasoning_id,
                output_index=0,
                summary_index=0,
                text=text,
            ),
            self._event(
                "response.reasoning_summary_part.done",
                item_id=items.reasoning_id,
                output_index=0,
                part=part,
                summary_index=0,
            ),
            self._event("response.output_item.done", item=items.reasoning_item([part]), output_index=0),
        ]

    def text_start(self) -> list[bytes]:
        items = self.items
        return [
            self._event(
                "response.output_item.added",
                item=items.message_item("in_progress", []),
                output_index=items.message_index,
            ),
            self._event(
                "response.content_part.added",
                content_index=0,
                item_id=items.message_id,
                output_index=items.message_index,
                part=items.text_part(""),
            ),
        ]

    def text_token(self, token: str) -> bytes:
        return self._text.render(jstr(token), self._next())

    def text_token_raw(self, value: bytes) -> bytes:
        return self._text.render(value, self._next())

    def bad_container(self, token: str) -> bytes:
        return self.text_token_raw(b"42")  # the event has no container: its ``delta`` is the top level

    def text_end(self) -> list[bytes]:
        items = self.items
        text = self.gen.text()
        part = items.text_part(text)
        if self.gen.scenario.refusal:
            done = self._event("response.refusal.done", content_index=0, item_id=items.message_id,
                               output_index=items.message_index, refusal=text)
        else:
            done = self._event("response.output_text.done", content_index=0, item_id=items.message_id, logprobs=[],
                               output_index=items.message_index, text=text)
        return [
            done,
            self._event(
                "response.content_part.done",
                content_index=0,
                item_id=items.message_id,
                output_index=items.message_index,
                part=part,
            ),
            self._event(
                "response.output_item.done",
                item=items.message_item(items.final_status(), [part]),
                output_index=items.message_index,
            ),
        ]

    def tool_items(self) -> list[bytes]:
        items = self.items
        events: list[bytes] = []
        for call in self.gen.tool_calls:
            index, item_id = items.call_index(call), f"fc_{call.id}"
            events.append(self._event("response.output_item.added", item=items.call_item(call, "in_progress", ""),
                                      output_index=index))
            pieces = fragments(call.arguments, self.gen.scenario.tool_deltas)
            events.extend(self._event("response.function_call_arguments.delta", delta=piece, item_id=item_id,
                                      output_index=index) for piece in pieces)
            events.append(self._event("response.function_call_arguments.done", arguments=call.arguments,
                                      item_id=item_id, output_index=index))
            events.append(self._event("response.output_item.done",
                                      item=items.call_item(call, "completed", call.arguments), output_index=index))
        return events

    def finish(self) -> list[bytes]:
        status = self.items.final_status()
        final = self._event(f"response.{status}", response=self.items.response(status, self.items.output(), True))
        return [*self.tool_items(), final] if self.gen.tool_calls else [final]

    def malformed(self) -> bytes:
        payload = self._text.render(jstr(" broken"), str(self.seq).encode())
        prefix = b"event: response.output_text.delta\ndata: "
        return broken(prefix, payload[len(prefix) : -2], b"\n\n")


class OpenAIResponsesWire(OpenAIWire):
    name = "openai_responses"
    text_container = "output"

    def parse(self, body: Mapping[str, Any], path_model: str | None, params: Mapping[str, str]) -> Prompt:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise WireError("Missing required parameter: 'model'.", "model", code="missing_required_parameter")
        texts: list[str] = []
        instructions = body.get("instructions")
        if isinstance(instructions, str) and instructions:
            texts.append(instructions)
        elif instructions is not None and not isinstance(instructions, str):
            raise WireError("Invalid type for 'instructions': expected a string.", "instructions", code="invalid_type")
        last_user = ""
        raw_input = body.get("input")
        if isinstance(raw_input, str):
            texts.append(raw_input)
            last_user = raw_input
        elif isinstance(raw_input, list):
            for item in raw_input:
                if not isinstance(item, Mapping):
                    raise WireError("Invalid type for 'input': expected a string or an array of items.", "input")
                if "role" not in item:
                    continue
                text = content_text(item.get("content"))
                texts.append(text)
                if item.get("role") == "user":
                    last_user = text
        elif raw_input is not None:
            raise WireError("Invalid type for 'input': expected a string or an array of items.", "input")
        max_tokens = optional_int(body, "max_output_tokens")
        extra: dict[str, Any] = {"instructions": instructions, "reasoning": body.get("reasoning"),
                                 "include": body.get("include")}
        return Prompt(model, texts, last_user, max_tokens, body.get("stream") is True, True, extra,
                      tools=tools_of(self.name, body))

    def renderer(self, gen: Generation) -> StreamRenderer:
        return ResponsesRenderer(gen)

    def text_field(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        return body["output"][-1]["content"][0], "text"

    def body(self, gen: Generation) -> bytes:
        items = _Items(gen)
        return compact(items.response(items.final_status(), items.output(), True)).encode()


class OpenAIResponsesCountWire(CountWire, OpenAIResponsesWire):
    """``POST /v1/responses/input_tokens``: a Responses body (``input``, ``instructions``, ``tools``, …) ->
    ``{"object": "response.input_tokens", "input_tokens": N}``, N being the ``input_tokens`` a Responses call with
    the same body reports without a cache."""

    name = "openai_responses_count"

    def count_body(self, prompt: Prompt) -> bytes:
        return compact({"object": "response.input_tokens", "input_tokens": self.count(prompt)}).encode()
