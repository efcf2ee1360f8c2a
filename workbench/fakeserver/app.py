"""Routing, fail counters, the request log, and the :class:`FakeServer` entry points.

Routes: ``POST /v1/chat/completions``, ``POST /v1/responses``, ``POST /v1/messages``,
``POST /v1beta/models/{model}:streamGenerateContent`` (``?alt=sse``) and ``:generateContent``
(also under ``/v1/models/``), ``POST /api/chat``; embeddings: ``POST /v1/embeddings`` (OpenAI's, deterministic
vectors: :mod:`workbench.fakeserver.embeddings`; not logged, no scenarios); token counting:
``POST /v1/messages/count_tokens`` (Anthropic), ``POST /v1/responses/input_tokens`` (OpenAI Responses),
``POST .../models/{model}:countTokens`` (Gemini),
``POST /tokenize`` (llama.cpp, or vLLM when the body has ``prompt`` / ``messages``); ``GET /v1/models``,
``GET /api/tags``, ``GET /api/version``, ``GET /``; ``GET /_fake/log``, ``GET /_fake/limits``, ``POST /_fake/reset``;
the batch APIs (OpenAI's ``/v1/files`` and ``/v1/batches``, Anthropic's ``/v1/messages/batches``, ``POST
/_fake/batches/end``): :mod:`workbench.fakeserver.batches` (not logged, no rate limits).
Every provider route is also served under ``/_redirected`` (where ``redirect=CODE`` points), with the
scenario's ``redirect`` key ignored there.

Model lists answer in the shape of the client asking: ``GET /v1/models`` is OpenAI's list, or Anthropic's
Models API page when the request carries Anthropic's headers (``x-api-key``, ``anthropic-version``);
``GET /v1beta/models`` (and ``/v1alpha/``) is Gemini's ``models.list``, ``GET /v1beta/models/{model}`` its
``models.get``. ``POST /apply-template`` is llama.cpp's (the messages laid out ChatML-style, the generation prompt
after them), for counting a prompt as a llama.cpp server would.

Only provider requests (the five wires and the counting endpoints) are logged. A log entry is
appended when the request has been read and updated in place while it is answered; ``outcome`` is
``ok``, ``error`` (an HTTP error was answered: bad request, bad scenario or injected ``status``,
also cut short by ``cut_error_body`` or endless with ``huge_error``), ``hang``, ``disconnect``
(injected, or the client went away mid-answer), ``malformed``, or the hostile key that shaped the
answer: ``redirect``, ``html``, ``bad_gzip``, ``bad_shape``, ``huge_line``, ``overrun``. Extra keys
beyond the documented ones: ``request_id`` and ``stream``; what the client sent: ``key`` (the key presented, masked
as OpenAI quotes it: :func:`mask_key`), ``headers`` (the request's, the key's own left out) and ``params`` (the
JSON body's top-level fields but the conversation: ``messages``, ``input``, ``contents``, ``system``,
``instructions``).

Rate limits (optional, :class:`~workbench.fakeserver.limits.RateLimits`): a request that parsed and
named a valid scenario is admitted or answered 429 (the provider's real body, ``retry-after`` in
whole seconds >= 1, plus ``retry-after-ms`` on the OpenAI wires) before any scenario fault applies.
It costs 1 request and input tokens + its max output tokens (the reply length when it sets none).
Every answer of the OpenAI and Anthropic wires carries their rate-limit headers (when limits are
set). Log entries gain ``rate_limited`` and ``cost_tokens`` (tokens charged; 0 when rejected or
never admitted). ``GET /_fake/limits`` shows the buckets and the admitted / rejected totals;
``POST /_fake/reset`` refills the buckets and zeroes the totals as well.

Counting endpoints (wires ``anthropic_count``, ``openai_responses_count``, ``gemini_count``,
``llamacpp_tokenize``, ``vllm_tokenize``) skip the rate limits entirely: never charged nor rejected, no rate-limit
headers (Anthropic's count_tokens limits are separate from message creation). They honour the scenario
keys ``status`` / ``fail`` / ``retry_after`` / ``id`` (their own fail counters: the wire is part of
the key), ``ttft``, ``hang``, ``disconnect``, ``malformed``, ``redirect``, ``html``, ``cut_error_body``
and ``huge_error`` (the other hostile keys are ignored there); their log entries gain
``input_tokens`` (the count answered).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from workbench.fakeserver import embeddings
from workbench.fakeserver.batches import Batches, batch_knobs
from workbench.fakeserver.fixed import fixed_request, set_fixed, wall_ns
from workbench.fakeserver.hostile import (
    HTML_HEADERS,
    PORTAL_HTML,
    REDIRECT_PREFIX,
    endless,
    error_prefix,
    redirect_body,
)
from workbench.fakeserver.http_server import HttpServer, Request, Responder
from workbench.fakeserver.limits import Limiter, LimitState, RateLimits
from workbench.fakeserver.playback import play_body, play_count, play_huge_line, play_stream
from workbench.fakeserver.prompt_cache import PromptCache, breakpoints_of
from workbench.fakeserver.scenario import Scenario, ScenarioError, parse_model, split_model
from workbench.fakeserver.wire import (
    AnthropicCountWire,
    AnthropicWire,
    CountWire,
    GeminiCountWire,
    GeminiWire,
    OllamaWire,
    OpenAIChatWire,
    OpenAIResponsesCountWire,
    OpenAIResponsesWire,
    WireFormat,
    anthropic,
    gemini,
    tokenize_wire,
)
from workbench.fakeserver.wire.attachments import attached_tokens
from workbench.fakeserver.wire.base import ErrorInfo, WireError, compact, plan
from workbench.fakeserver.wire.gemini import ACTION
from workbench.fakeserver.wire.reasoning import reasoning_off
from workbench.fakeserver.wire.tokenize import apply_template
from workbench.fakeserver.wire.tool_turns import answers_tools

__all__ = ["FakeServer", "mask_key", "serve"]


def mask_key(key: str) -> str:
    """A key the way OpenAI quotes it back in a 401: its first 8 and last 4 characters."""
    if len(key) <= 12:
        return "*" * len(key) or "sk-fake"
    return key[:8] + "*" * (len(key) - 12) + key[-4:]

def presented_key(req: Request) -> str:
    """The key a request presented: ``Authorization: Bearer``, ``x-api-key``, ``x-goog-api-key`` or ``?key=``."""
    bearer = req.headers.get("authorization", "")
    return (bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else
            req.headers.get("x-api-key") or req.headers.get("x-goog-api-key") or req.params.get("key") or "")


def echo_message(key: str) -> str:
    """The ``echo_key`` error message: the key verbatim, URL-encoded (all but letters and digits) and lower-cased."""
    encoded = "".join(c if c.isascii() and c.isalnum() else "".join(f"%{b:02X}" for b in c.encode()) for c in key)
    return f"Invalid API key: {key} (as sent: {encoded}; normalised: {key.lower()})."


_ROUTES: dict[str, WireFormat] = {
    "/v1/chat/completions": OpenAIChatWire(),
    "/v1/responses": OpenAIResponsesWire(),
    "/v1/messages": AnthropicWire(),
    "/api/chat": OllamaWire(),
    "/v1/messages/count_tokens": AnthropicCountWire(),
    "/v1/responses/input_tokens": OpenAIResponsesCountWire(),
}
_GEMINI = GeminiWire()
_GEMINI_COUNT = GeminiCountWire()
_GEMINI_PREFIXES = ("/v1beta/models/", "/v1/models/", "/v1alpha/models/")
_GEMINI_ACTIONS = ("streamGenerateContent", "generateContent")

OVERRUN_TOKENS = sys.maxsize
MODELS = ("gpt-4o-mini", "gpt-4.1", "o4-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "llama3.2", "fake-model")
_CREATED = 1_700_000_000
_CREATED_AT = "2023-11-14T22:13:20Z"
"""``_CREATED`` as Anthropic writes it (RFC 3339)."""
_GEMINI_LISTS = ("/v1beta/models", "/v1alpha/models")


_KEY_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key"})
_CONVERSATION = frozenset({"messages", "input", "contents", "system", "instructions"})


def _sent(req: Request, body: dict[str, Any]) -> dict[str, Any]:
    """What a logged request sent besides its conversation: the key (masked), headers, body fields."""
    params = {k: v for k, v in body.items() if k not in _CONVERSATION}
    headers = {k.lower(): v for k, v in req.headers.items() if k.lower() not in _KEY_HEADERS}
    presented = presented_key(req)
    return {"key": mask_key(presented) if presented else None, "headers": headers, "params": params}


def _json(obj: Any) -> bytes:
    return compact(obj).encode()


class FakeServer:
    """The fake LLM provider server. ``await start()`` on a running loop, or ``with FakeServer.in_thread()``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: RateLimits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.port = port
        self.limits = limits
        self.limiter = Limiter(limits, clock)
        self.log: list[dict[str, Any]] = []
        self._fails: dict[tuple[str, str, str], int] = {}
        self.prompt_cache = PromptCache()
        self.batches = Batches()
        self._seq = 0
        self._http = HttpServer(self._handle, host, port)

    # ------------------------------------------------------------------------------ lifecycle
    async def start(self) -> int:
        """Listen on the current running loop; returns the bound port."""
        self.port = await self._http.start()
        return self.port

    async def stop(self) -> None:
        await self._http.stop()

    @property
    def base_url(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def wait_idle(self) -> None:
        """Return once no request is being answered (e.g. an endless body noticed its client left). For tests."""
        await self._http.wait_idle()

    def write_buffer_size(self) -> int:
        """Bytes the server's transports hold that the kernel has not taken yet (bounded: back-pressure)."""
        return self._http.write_buffer_size()

    def reset(self) -> None:
        """Clear the log, the fail counters and the prompt cache, refill the rate-limit buckets
        (``POST /_fake/reset``)."""
        self.log.clear()
        self._fails.clear()
        self.limiter.reset()
        self.prompt_cache.clear()

    @classmethod
    @contextlib.contextmanager
    def in_thread(
        cls, host: str = "127.0.0.1", port: int = 0, limits: RateLimits | None = None
    ) -> Iterator[FakeServer]:
        """Run a server on its own event loop in a daemon thread for the duration of the block."""
        server = cls(host, port, limits)
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(server.start())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="workbench-fakeserver", daemon=True)
        thread.start()
        started.wait()
        if failure:
            raise failure[0]
        try:
            yield server
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    # -------------------------------------------------------------------------------- routing
    async def _handle(self, req: Request, resp: Responder) -> None:
        path = req.path
        redirected = path.startswith(REDIRECT_PREFIX + "/")
        if redirected:
            path = path.removeprefix(REDIRECT_PREFIX)
        if await self.batches.handle(req, resp, path):  # OpenAI's files and batches, Anthropic's message batches
            return
        if req.method == "POST":
            wire = _ROUTES.get(path)
            if wire is not None:
                await self._answer(wire, req, resp, None, dict(parse_qsl(req.query)), redirected)
                return
            if path.startswith(_GEMINI_PREFIXES):
                rest = unquote(path.split("/models/", 1)[1])
                model, _, action = rest.rpartition(":")
                if action in _GEMINI_ACTIONS:
                    params = dict(parse_qsl(req.query))
                    params[ACTION] = action
                    await self._answer(_GEMINI, req, resp, model.removeprefix("models/"), params, redirected)
                    return
                if action == "countTokens":
                    await self._answer(_GEMINI_COUNT, req, resp, model.removeprefix("models/"), {}, redirected)
                    return
            if path == "/tokenize":
                await self._answer(tokenize_wire(req.body), req, resp, None, {}, redirected)
                return
            if path == "/apply-template":
                status, answer = apply_template(req.body)
                await resp.send(status, _json(answer), [("content-type", "application/json; charset=utf-8")])
                return
            if path == "/v1/embeddings":
                status, answer = embeddings.answer(req.body)
                await resp.send(status, _json(answer), [("content-type", "application/json")])
                return
            if path == "/_fake/reset":
                self.reset()
                await resp.send(200, b'{"ok":true}', [("content-type", "application/json")])
                return
        elif req.method == "GET":
            body = self._get(path, req.headers)
            if body is not None:
                await resp.send(200, body, [("content-type", "application/json")])
                return
            if path == "/":
                await resp.send(200, b"workbench fake server is running", [("content-type", "text/plain")])
                return
        message = f"Invalid URL ({req.method} {path})"
        body = _json({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})
        await resp.send(404, body, [("content-type", "application/json")])

    def _get(self, path: str, headers: Mapping[str, str]) -> bytes | None:
        if path == "/_fake/log":
            return _json(list(self.log))
        if path == "/_fake/limits":
            return _json(self.limiter.as_json())
        if path == "/v1/models" and ("x-api-key" in headers or "anthropic-version" in headers):
            return _json(anthropic.models_list(MODELS, _CREATED_AT))
        if path == "/v1/models":
            data = [{"id": m, "object": "model", "created": _CREATED, "owned_by": "workbench-fake"} for m in MODELS]
            return _json({"object": "list", "data": data})
        if path in _GEMINI_LISTS:
            return gemini.google_json(gemini.models_list(MODELS)).encode()
        if path.startswith(_GEMINI_LISTS) and path.count("/") == 3 and ":" not in path:  # not a method (a GET of one)
            return gemini.google_json(gemini.model_info(unquote(path.rpartition("/")[2]))).encode()
        if path == "/api/tags":
            models = [
                {
                    "name": f"{m}:latest",
                    "model": f"{m}:latest",
                    "modified_at": "2025-01-01T00:00:00Z",
                    "size": 2_019_393_189,
                    "digest": f"{i:064x}",
                    "details": {
                        "parent_model": "",
                        "format": "gguf",
                        "family": "llama",
                        "families": ["llama"],
                        "parameter_size": "3.2B",
                        "quantization_level": "Q4_K_M",
                    },
                }
                for i, m in enumerate(MODELS)
            ]
            return _json({"models": models})
        if path == "/api/version":
            return b'{"version":"0.12.0"}'
        return None

    # ---------------------------------------------------------------------------- provider wires
    async def _answer(
        self,
        wire: WireFormat,
        req: Request,
        resp: Responder,
        path_model: str | None,
        params: Mapping[str, str],
        redirected: bool = False,
    ) -> None:
        request_id = wire.new_request_id()
        self._seq += 1
        entry: dict[str, Any] = {
            "seq": self._seq,
            "path": req.path,
            "wire": wire.name,
            "model": path_model,
            "scenario_id": None,
            "status": None,
            "received_ns": req.received_ns,
            "first_token_ns": None,
            "last_token_ns": None,
            "tokens_sent": 0,
            "outcome": "running",
            "request_id": request_id,
            "stream": None,
            "rate_limited": False,
            "cost_tokens": 0,
            "key": None,
            "headers": {},
            "params": {},
        }
        self.log.append(entry)
        try:
            with fixed_request(False):  # until the scenario says ``fixed=1``
                await self._answer_logged(wire, req, resp, path_model, params, redirected, request_id, entry)
        except BaseException as exc:  # the log says what happened, never "ok" for an answer cut by a failure
            if entry["outcome"] == "running":
                entry["outcome"] = "cancelled" if isinstance(exc, asyncio.CancelledError) else \
                    f"failed: {type(exc).__name__}"
            raise
        if entry["outcome"] == "running":
            entry["outcome"] = "ok"

    async def _answer_logged(self, wire: WireFormat, req: Request, resp: Responder, path_model: str | None,
                             params: Mapping[str, str], redirected: bool, request_id: str,
                             entry: dict[str, Any]) -> None:
        limited = self.limiter.limits.enabled and not isinstance(wire, CountWire)
        state: LimitState | None = None  # the buckets as of this request's admission

        async def reject(err: ErrorInfo) -> None:
            entry["status"] = err.status
            entry["outcome"] = "error"
            headers = wire.error_headers(err)
            if limited:
                headers += wire.ratelimit_headers(self.limiter.state() if state is None else state)
            await resp.send(err.status, wire.error_body(err), headers)

        try:
            body = json.loads(req.body)
        except (ValueError, UnicodeDecodeError):
            await reject(ErrorInfo(wire.bad_json_status, wire.bad_json_message, request_id=request_id))
            return
        if not isinstance(body, dict):
            await reject(ErrorInfo(400, "The request body must be a JSON object.", request_id=request_id))
            return
        entry.update(_sent(req, body))
        try:
            prompt = wire.parse(body, path_model, params)
            prompt.attached_tokens = attached_tokens(wire.name, prompt.model, body)
            prompt.answers_tools = answers_tools(wire.name, body, prompt.model)
            prompt.reasoning_off = reasoning_off(wire.name, body)
        except WireError as exc:
            await reject(exc.info(path_model or str(body.get("model", "")), request_id))
            return
        entry["model"] = prompt.model
        entry["stream"] = prompt.stream
        try:
            scenario = parse_model(batch_knobs(prompt.model)[0])  # batch keys: the same suite runs online
        except ScenarioError as exc:
            message = f"Invalid fake-server scenario in model '{prompt.model}': {exc}"
            await reject(ErrorInfo(400, message, "model", prompt.model, request_id, code="invalid_scenario"))
            return
        entry["scenario_id"] = scenario.id
        if scenario.fixed:
            set_fixed()
            request_id = entry["request_id"] = wire.new_request_id()
        if redirected:
            scenario = dataclasses.replace(scenario, redirect=None)

        async def hostile(headers: list[tuple[str, str]]) -> bool:
            """``redirect``, the injected error (in its style) and ``html``: True when one was answered."""
            if scenario.redirect is not None:
                entry["status"] = scenario.redirect
                entry["outcome"] = "redirect"
                location = REDIRECT_PREFIX + req.path + (f"?{req.query}" if req.query else "")
                out = [("location", location), ("content-type", "text/html"), *headers]
                await resp.send(scenario.redirect, redirect_body(scenario.redirect, location), out)
                return True
            injected = self._injected_error(wire.name, scenario, prompt.model, req, request_id)
            if injected is not None:
                await self._styled_error(wire, scenario, injected, resp, entry, headers)
                return True
            if scenario.html and scenario.status is None:  # with a status: only while its fail count lasts
                entry["status"] = 200
                entry["outcome"] = "html"
                await resp.send(200, PORTAL_HTML, HTML_HEADERS)
                return True
            return False

        if isinstance(wire, CountWire):  # no generation, never charged to the rate limits
            if await hostile([]):
                return
            await play_count(wire, prompt, scenario, req.received_ns, resp, entry)
            return

        gen = plan(prompt, scenario, request_id, wall_ns() // 1_000_000_000, req.received_ns)
        cost = gen.input_tokens + (prompt.max_tokens if prompt.max_tokens is not None else gen.output_tokens)
        admission = self.limiter.admit(cost)
        state = admission.state
        if not admission.admitted:
            entry["rate_limited"] = True
            wait_ms = max(1, math.ceil(admission.wait_s * 1000))
            retry_after = str(max(1, math.ceil(wait_ms / 1000)))
            model = split_model(prompt.model)[0]
            await reject(ErrorInfo(429, None, None, model, request_id, retry_after, retry_after_ms=wait_ms))
            return
        entry["cost_tokens"] = cost

        rl_headers = wire.ratelimit_headers(state) if limited else []
        if await hostile(rl_headers):
            return
        if scenario.cache:
            self.prompt_cache.apply(wire.name, gen, breakpoints_of(wire.name, body))
            entry["cache_read"], entry["cache_write"] = gen.cache_read, gen.cache_write
        if scenario.hang == "headers":
            entry["outcome"] = "hang"
            await resp.wait_peer_closed()
            return
        if scenario.overrun:  # the cap ignored; a stream's text never ends
            gen.reasoning_count = scenario.reasoning
            gen.text_count = OVERRUN_TOKENS if prompt.stream else scenario.tokens
            gen.truncated = False
        if prompt.stream and scenario.huge_line:
            await play_huge_line(gen, wire.renderer(gen), resp, entry, wire.stream_headers(gen) + rl_headers)
        elif prompt.stream:
            await play_stream(gen, wire.renderer(gen), resp, entry, wire.stream_headers(gen) + rl_headers)
        else:
            await play_body(gen, wire, resp, entry, rl_headers)

    async def _styled_error(
        self,
        wire: WireFormat,
        scenario: Scenario,
        err: ErrorInfo,
        resp: Responder,
        entry: dict[str, Any],
        extra_headers: list[tuple[str, str]],
    ) -> None:
        """An injected error: the wire's error body, cut short, endless, or a captive-portal page."""
        entry["status"] = err.status
        entry["outcome"] = "error"
        if scenario.html:
            entry["outcome"] = "html"
            await resp.send(err.status, PORTAL_HTML, HTML_HEADERS)
            return
        headers = wire.error_headers(err) + extra_headers
        if scenario.huge_error:
            resp.start_stream(err.status, headers)
            await endless(resp, error_prefix(wire, err))
            return
        body = wire.error_body(err)
        if scenario.cut_error_body:
            await resp.send_truncated(err.status, body, len(body) // 2, headers)
            return
        await resp.send(err.status, body, headers)

    def _injected_error(
        self, wire_name: str, scenario: Scenario, model: str, req: Request, request_id: str
    ) -> ErrorInfo | None:
        """The scenario's injected ``status`` while its fail counter lasts (counting this request), else None."""
        if scenario.status is None or scenario.fail <= 0:
            return None
        key = scenario.counter_key(wire_name)
        used = self._fails.get(key, 0)
        if used >= scenario.fail:
            return None
        self._fails[key] = used + 1
        masked = mask_key(req.headers.get("authorization", "").removeprefix("Bearer "))
        name = split_model(model)[0]
        message = echo_message(presented_key(req)) if scenario.echo_key else None
        return ErrorInfo(scenario.status, message, None, name, request_id, scenario.retry_after, masked_key=masked)


def serve(host: str = "127.0.0.1", port: int = 8765, limits: RateLimits | None = None) -> None:
    """Run the fake server until Ctrl-C (blocking)."""

    async def main() -> None:
        server = FakeServer(host, port, limits)
        await server.start()
        print(f"workbench fake server listening on {server.base_url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
