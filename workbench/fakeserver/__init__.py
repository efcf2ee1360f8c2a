"""A fake LLM provider server that speaks the real streaming wire formats byte-exactly.

Stdlib asyncio only. Endpoints: OpenAI Chat Completions (``/v1/chat/completions``), OpenAI
Responses (``/v1/responses``), Anthropic Messages (``/v1/messages``), Gemini
(``/v1beta/models/{model}:streamGenerateContent?alt=sse`` and ``:generateContent``), Ollama
(``/api/chat``), token counting (Anthropic ``/v1/messages/count_tokens``, Gemini ``:countTokens``,
llama.cpp / vLLM ``/tokenize``), model lists (``/v1/models``, ``/api/tags``) and ``/_fake/log``,
``/_fake/limits``, ``/_fake/reset``.

Behaviour is chosen through the model name, ``NAME@key=value,...`` (see
:mod:`workbench.fakeserver.scenario`): pacing, injected errors and stream faults, and hostile
answers (a cut or endless error body, broken gzip, wrongly shaped JSON, an endless line or stream,
redirects, a captive-portal page; :mod:`workbench.fakeserver.hostile`). The reply is deterministic
(see :mod:`workbench.fakeserver.text`): ``expected_text(model, last_user_message, tokens)`` is exactly
the visible text a plain request gets, and ``count_input_tokens(texts)`` the input tokens every
wire reports and every counting endpoint answers (raw text for ``/tokenize``: ``tokenize_text``).

Optional server-side rate limits, shared by all wires as one account: ``RateLimits(rpm, tpm,
burst_s)`` (see :mod:`workbench.fakeserver.limits`); over the limit a request gets the provider's
429 with ``retry-after``, and the OpenAI / Anthropic wires send their rate-limit headers.

Usage::

    server = FakeServer(host="127.0.0.1", port=0, limits=RateLimits(rpm=600, tpm=100_000))
    port = await server.start()            # on the running loop
    server.base_url, server.log
    await server.stop()

    with FakeServer.in_thread() as server: # own loop in a daemon thread
        ...

    serve("127.0.0.1", 8765, limits=None)   # blocking; python -m workbench.fakeserver [--rpm N --tpm N]
"""

from __future__ import annotations

from workbench.fakeserver.app import FakeServer, serve
from workbench.fakeserver.limits import RateLimits
from workbench.fakeserver.scenario import Scenario, ScenarioError, parse_model, split_model
from workbench.fakeserver.text import (
    VOCAB,
    count_input_tokens,
    expected_reasoning,
    expected_text,
    iter_tokens,
    tokenize_chat,
    tokenize_text,
)

__all__ = [
    "VOCAB",
    "FakeServer",
    "RateLimits",
    "Scenario",
    "ScenarioError",
    "count_input_tokens",
    "expected_reasoning",
    "expected_text",
    "iter_tokens",
    "parse_model",
    "serve",
    "split_model",
    "tokenize_chat",
    "tokenize_text",
]
