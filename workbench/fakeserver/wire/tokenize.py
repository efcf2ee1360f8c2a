"""llama.cpp and vLLM ``POST /tokenize`` (one path; :func:`tokenize_wire` tells them apart by the body).

The fake tokenizer is :func:`workbench.fakeserver.text.tokenize_text`: one token per
whitespace-separated word (BPE-style pieces carrying their leading whitespace, ids from a stable
hash); raw text has no chat overhead.

llama.cpp (:class:`LlamaCppTokenizeWire`, any body without ``prompt`` / ``messages``):
``{"content": str | [str | int, ...], "add_special"?: bool, "with_pieces"?: bool}`` ->
``{"tokens": [id, ...]}``, with ``with_pieces`` ``{"tokens": [{"id": id, "piece": str}, ...]}``.
``add_special: true`` prepends BOS (id 1, ``<s>``); ints in a content list are token ids passed
through (piece ``""`` unless special). No ``content`` gives ``{"tokens": []}``, as llama.cpp does.
Errors: ``{"error": {"code", "message", "type"}}``; a body that is not JSON is a 500
``server_error`` (llama.cpp lets the JSON parser's exception through).

vLLM (:class:`VllmTokenizeWire`): ``{"model"?, "prompt": str}`` -> the raw text tokens as above;
``{"model"?, "messages": [...]}`` -> ChatML-style chat tokens (:func:`~workbench.fakeserver.text.
tokenize_chat`: ``<|im_start|>``, ``"{role}\\n"``, words, ``<|im_end|>`` per message), so ``count``
equals OpenAI chat ``prompt_tokens`` for the same messages (``add_generation_prompt`` and
``add_special_tokens`` add nothing); its ``tools`` (OpenAI's function form) come first, one ``tool`` message
each (:func:`~workbench.fakeserver.tool_calls.definition_text`), as the chat wire counts them.
Answer ``{"count", "max_model_len": 32768, "tokens",
"token_strs"}`` (``token_strs`` the pieces with ``return_token_strs: true``, else null). Errors:
``{"error": {"message", "type", "param", "code"}}``.

An optional ``model`` string (vLLM's field; tolerated by the llama.cpp flavour) carries scenario
keys as on the other wires.

llama.cpp's ``POST /apply-template`` (:func:`apply_template`): ``{"messages": [...]}`` -> ``{"prompt": str}``, the
messages laid out ChatML-style with the generation prompt after them (not logged, no scenarios).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from workbench.fakeserver.text import BOS_ID, SPECIAL_TOKENS, tokenize_chat, tokenize_text
from workbench.fakeserver.tool_calls import definition_text
from workbench.fakeserver.wire.base import CountWire, ErrorInfo, Prompt, WireError, compact, content_text
from workbench.fakeserver.wire.tools import tools_of

__all__ = ["MAX_MODEL_LEN", "LlamaCppTokenizeWire", "VllmTokenizeWire", "apply_template", "tokenize_wire"]

MAX_MODEL_LEN = 32_768
Tokens = list[tuple[int, str]]

# llama.cpp: status -> (type, message)
_LLAMA_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "Invalid API Key"),
    403: ("permission_error", "Forbidden"),
    404: ("not_found_error", "File Not Found"),
    500: ("server_error", "Internal server error"),
    501: ("not_supported_error", "This server does not support this feature"),
    503: ("unavailable_error", "Loading model"),
}
# vLLM: status -> (type, message)
_VLLM_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequestError", "Bad Request"),
    404: ("NotFoundError", "The model `{model}` does not exist."),
    500: ("InternalServerError", "Internal Server Error"),
    501: ("NotImplementedError", "Not Implemented"),
}


def _model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    return model if isinstance(model, str) else ""


def _tokens(prompt: Prompt) -> Tokens:
    tokens: Tokens = prompt.extra["tokens"]
    return tokens


def apply_template(body: bytes) -> tuple[int, dict[str, Any]]:
    """llama.cpp's chat template applied: each message ``<|im_start|>{role}\\n{content}<|im_end|>\\n``, then
    ``<|im_start|>assistant\\n``; a body without a list of messages is a 400 in llama.cpp's error shape."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, list) or not all(isinstance(m, Mapping) and isinstance(m.get("role"), str)
                                                 for m in messages):
        etype, _ = _LLAMA_ERRORS[400]
        return 400, {"error": {"code": 400, "message": "'messages' is required", "type": etype}}
    turns = "".join(f"<|im_start|>{m['role']}\n{content_text(m.get('content'))}<|im_end|>\n" for m in messages)
    return 200, {"prompt": turns + "<|im_start|>assistant\n"}


class LlamaCppTokenizeWire(CountWire):
    name = "llamacpp_tokenize"
    json_content_type = "application/json; charset=utf-8"
    error_content_type = "application/json; charset=utf-8"
    bad_json_status = 500
    bad_json_message = "[json.exception.parse_error.101] parse error: syntax error while parsing value"

    def parse(self, body: Mapping[str, Any], path_model: str | None, params: Mapping[str, str]) -> Prompt:
        content = body.get("content")
        texts: list[str] = []
        tokens: Tokens = []
        if content is not None:
            items = content if isinstance(content, list) else [content]
            for item in items:
                if isinstance(item, str):
                    texts.append(item)
                    tokens.extend(tokenize_text(item))
                elif isinstance(item, int) and not isinstance(item, bool):
                    tokens.append((item, SPECIAL_TOKENS[item] if 0 <= item < len(SPECIAL_TOKENS) else ""))
                else:
                    raise WireError('"content" must be a string or an array of strings and token ids')
            if body.get("add_special") is True:
                tokens.insert(0, (BOS_ID, SPECIAL_TOKENS[BOS_ID]))
        extra = {"tokens": tokens, "pieces": body.get("with_pieces") is True}
        return Prompt(_model(body), texts, texts[-1] if texts else "", None, False, False, extra)

    def count(self, prompt: Prompt) -> int:
        return len(_tokens(prompt))

    def count_body(self, prompt: Prompt) -> bytes:
        tokens = _tokens(prompt)
        if prompt.extra["pieces"]:
            return compact({"tokens": [{"id": i, "piece": p} for i, p in tokens]}).encode()
        return compact({"tokens": [i for i, _ in tokens]}).encode()

    def error_body(self, err: ErrorInfo) -> bytes:
        etype, message = _LLAMA_ERRORS.get(err.status, _LLAMA_ERRORS[400 if err.status < 500 else 500])
        if err.message is not None:
            message = err.message
        return compact({"error": {"code": err.status, "message": message, "type": etype}}).encode()


class VllmTokenizeWire(CountWire):
    name = "vllm_tokenize"

    def parse(self, body: Mapping[str, Any], path_model: str | None, params: Mapping[str, str]) -> Prompt:
        messages = body.get("messages")
        if messages is not None:
            if not isinstance(messages, list):
                raise WireError("messages: Input should be a valid list", "messages")
            chat: list[tuple[str, str]] = []
            last_user = ""
            for i, msg in enumerate(messages):
                if not isinstance(msg, Mapping) or not isinstance(msg.get("role"), str):
                    raise WireError(f"messages.{i}.role: Field required", f"messages.{i}.role")
                text = content_text(msg.get("content"))
                chat.append((msg["role"], text))
                if msg["role"] == "user":
                    last_user = text
            tools = [("tool", definition_text(t)) for t in tools_of("openai_chat", body)]  # rendered first
            tokens = tokenize_chat([*tools, *chat])
            texts = [text for _, text in chat]
        else:
            prompt = body.get("prompt")
            if not isinstance(prompt, str):
                raise WireError("prompt: Input should be a valid string", "prompt")
            tokens, texts, last_user = tokenize_text(prompt), [prompt], prompt
        extra = {"tokens": tokens, "pieces": body.get("return_token_strs") is True}
        return Prompt(_model(body), texts, last_user, None, False, False, extra)

    def count(self, prompt: Prompt) -> int:
        return len(_tokens(prompt))

    def count_body(self, prompt: Prompt) -> bytes:
        tokens = _tokens(prompt)
        strs = [p for _, p in tokens] if prompt.extra["pieces"] else None
        ids = [i for i, _ in tokens]
        return compact({"count": len(ids), "max_model_len": MAX_MODEL_LEN, "tokens": ids, "token_strs": strs}).encode()

    def error_body(self, err: ErrorInfo) -> bytes:
        etype, message = _VLLM_ERRORS.get(err.status, _VLLM_ERRORS[400 if err.status < 500 else 500])
        if err.message is not None:
            message = err.message
        message = message.replace("{model}", err.model)
        return compact({"error": {"message": message, "type": etype, "param": err.param, "code": err.status}}).encode()


_LLAMA = LlamaCppTokenizeWire()
_VLLM = VllmTokenizeWire()


def tokenize_wire(raw: bytes) -> CountWire:
    """The flavour a ``/tokenize`` body is for: vLLM when it is a JSON object with ``prompt`` or ``messages``."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _LLAMA
    return _VLLM if isinstance(body, dict) and ("prompt" in body or "messages" in body) else _LLAMA
