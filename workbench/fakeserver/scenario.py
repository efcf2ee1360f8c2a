"""Scenarios chosen through the model name: ``NAME@key=value,key=value``.

The suffix starts at the LAST ``@`` and only counts as a scenario when it contains ``=``, so
Vertex-style names such as ``claude-3-5-sonnet@20240620`` stay plain names. A plain name (or an
empty suffix) streams a deterministic reply at once. Keys (an unknown key, a repeated key or a bad
value is rejected with a 400 in the provider's real error body, naming the key):

``ttft``        ms before the first token (float >= 0), default 0. Measured from the moment the
                request was read.
``tps``         tokens per second after the first (float > 0); default unpaced (all at once).
                Token ``i`` is due at ``received + ttft + i / tps`` (absolute deadlines).
``tokens``      visible output tokens (int >= 0), default 32.
``reasoning``   reasoning tokens streamed before the text (int >= 0), default 0.
                The request's max-tokens cap applies to reasoning + text (reasoning first); when
                it cuts the reply the finish is length / max_tokens / MAX_TOKENS / incomplete.
``usage``       1/0 (also true/false), default 1: whether usage is reported.
``status``      HTTP status 400..599 to answer with (the provider's real error body).
``fail``        how many requests of this scenario get ``status`` before it succeeds (int >= 0);
                default 1 when ``status`` is given. ``fail`` without ``status`` means status 500.
``retry_after`` seconds (number >= 0) sent as ``Retry-After`` with those errors.
``id``          a free label (no ``,`` ``=`` ``@``) that keeps one test's fail counter apart.
``hang``        ``headers``: never answer; ``stream``: headers + first token, then stall.
``disconnect``  N: close the TCP connection after N content tokens, without a terminator (N at
                or beyond the reply length: every token, then close before the terminal events).
``malformed``   1: right after the first token send a broken event (correct framing around
                truncated JSON), then go on with the normal stream.
``tools``       N (0..64), default 0: when the request offers tools, the reply makes N tool calls
                (:mod:`workbench.fakeserver.tool_calls`: call ``i`` names tool ``i % len(tools)``, its
                arguments a small JSON object holding its schema's required properties), streamed as
                each wire documents them: OpenAI chat ``delta.tool_calls`` (arguments in 3 deltas,
                finish ``tool_calls``), Responses ``function_call`` items (``output_item.added``,
                3 ``function_call_arguments.delta``, ``.done``, ``output_item.done``), Anthropic
                ``tool_use`` blocks with 3 ``input_json_delta`` (stop ``tool_use``), Gemini
                ``functionCall`` parts, Ollama ``message.tool_calls`` (whole calls). The reply then
                holds no text unless ``tokens`` is given. A request without tools gets a plain reply.
                A non-streamed body holds the same calls whole.
``tool_deltas`` N (1..10,000,000), default 3: how many deltas a streamed call's arguments (and a ``pause=1``
                server tool's input) are split into, fewer when the text is shorter (a long argument text
                in many deltas, as a real model streams it a token at a time).
``refusal``     1: the model refuses, as each wire's stream says it: OpenAI chat sends the text as
                ``delta.refusal`` (finish ``stop``), Responses as ``response.refusal.delta`` events,
                Anthropic ends with ``stop_reason: refusal``, Gemini with ``finishReason: SAFETY``;
                Ollama has no refusal: a plain reply. OpenAI chat's first chunk has ``content: null,
                refusal: ""`` and a non-streamed body ``refusal`` (``content`` null); the Responses
                message holds a ``refusal`` part (``response.refusal.done``); Anthropic's message_delta
                carries ``stop_details`` (``category``, ``explanation``); Gemini's last candidate has
                no content, and ``safetyRatings`` with the blocking category ``blocked: true``.
``interleaved`` 1 (Anthropic, with ``reasoning`` and ``tools`` of 2 or more; other wires answer plainly):
                interleaved thinking, as Claude's with the ``interleaved-thinking`` beta: between two
                ``tool_use`` blocks a ``redacted_thinking`` block and a signed ``thinking`` block.
``pause``       1 (Anthropic; other wires answer plainly): the turn pauses in a server tool, as
                Anthropic's ``pause_turn`` does: after the text a ``server_tool_use`` block
                (``web_search``, its input in ``input_json_delta`` pieces) and its
                ``web_search_tool_result`` block, then ``stop_reason: pause_turn``.
``cache``       1: a prompt cache (:mod:`workbench.fakeserver.prompt_cache`), per wire and model NAME. A
                request whose prefix this server saw before reports the prefix's tokens as cache reads,
                and its TTFT shrinks by half the share of the input read (a whole-prompt read: half the
                ``ttft``). The prefix is the system prompt and every message but the last (OpenAI chat
                ``prompt_tokens_details.cached_tokens``, Responses ``input_tokens_details.cached_tokens``,
                Gemini ``cachedContentTokenCount``, Ollama nothing); on Anthropic only what ends at a
                ``cache_control`` breakpoint (system, message or tool) is cached: the first request
                writes it (``cache_creation_input_tokens``, ``cache_creation.ephemeral_5m/1h_input_tokens``
                by its ``ttl``), a later one reads it (``cache_read_input_tokens``), and ``input_tokens``
                counts only the rest. No minimum length, no expiry; ``POST /_fake/reset`` empties it.
``fixed``       1: every byte of the answer is the same on every call (:mod:`workbench.fakeserver.fixed`):
                the ids the server makes up (response, message, chunk and request ids) are zeros, its
                wall clock (``created``, ``created_at``) reads 2023-11-14T22:13:20Z, Ollama's durations
                are 1 ms each. For comparing a stream byte for byte, e.g. through a proxy and direct.
``json``        1: a Chat Completions request whose ``response_format`` is ``json_object`` or ``json_schema``
                is answered in JSON, as OpenAI answers it: ``{"answer": "<the reply's words>"}`` in as
                many tokens as the plain reply (no schema is followed).

Hostile keys (what a broken proxy, gateway or captive portal does to a client):

``cut_error_body`` 1: the error (``status``, default 500) in the provider's real error body, with a
                ``Content-Length`` of the whole body, but only its first half is sent before the
                connection closes.
``huge_error``  1: the error (``status``, default 500) with an endless chunked body: the provider's
                error body up to the opening quote of its message (``{"error":{"message":"`` on
                OpenAI), then ``a`` forever, 64 KiB per chunk, until the client goes away.
``html``        1: a small captive-portal HTML page (``text/html; charset=utf-8``) instead of the
                answer; status 200, or ``status`` (then it replaces that error's body).
                ``cut_error_body``, ``huge_error`` and ``html`` fail EVERY request unless ``fail=N``
                is given (then the first N, as with ``status``). At most one of ``html``,
                ``cut_error_body``, ``huge_error`` and ``huge_line`` per scenario.
``redirect``    301/302/303/307/308: answer that status with ``Location: /_redirected<path>[?query]``
                (the same request path under the prefix ``/_redirected``, on the same server). The
                server answers ``/_redirected/<path>`` exactly like ``<path>`` with ``redirect``
                ignored, so following a 307/308 (body resent) gets the normal answer; a client that
                turns a 301/302/303 into a GET gets the provider's 404.
``bad_gzip``    1: ``Content-Encoding: gzip`` (whatever the request's ``Accept-Encoding``) on a body
                that is not gzip: a valid 10-byte gzip header, the byte ``0xff`` (a deflate block
                of the reserved type 3: every inflater fails on it), then the normal uncompressed
                reply (stream or body).
``bad_shape``   ``choices`` / ``int`` / ``list``: the first text token's event is framed right and is
                valid JSON of the wrong shape (it replaces that token's event; the stream goes on
                normally). ``int``: the text field is the integer 42; ``list``: the text field is
                ``[token]``; ``choices``: the container is the string ``"nope"`` (OpenAI chat
                ``choices``, Anthropic ``delta``, Gemini ``candidates``, Ollama ``message``; on
                Responses ``delta`` is the integer 42, as with ``int``). Non-streaming: the same in
                the body (containers: ``choices``, ``output``, ``content``, ``candidates``,
                ``message``). No text tokens (``tokens=0``): no effect.
``huge_line``   1: a 200 stream (the wire's stream headers) whose first event is one endless line
                with no newline: the first text token's event up to the opening quote of its text
                (from its ``data:`` line on), then ``a`` forever. Non-streaming: an endless body,
                the reply's JSON up to the opening quote of its text, then ``a`` forever.
``overrun``     1: the max-tokens cap is ignored and the text never ends: content deltas forever
                (paced by ``tps`` when given), never a finish event. Non-streaming: the whole
                ``tokens`` reply, the max-tokens cap ignored.
``echo_key``    1: the error (``status``, default 401) in the provider's real error body, its message
                quoting the key the request presented (``Authorization: Bearer``, ``x-api-key``,
                ``x-goog-api-key`` or the ``key`` query parameter) three ways: verbatim, URL-encoded
                (every character but letters and digits as ``%XX``) and lower-cased. Fails EVERY
                request unless ``fail=N`` is given, as ``html`` does.

Endless answers are written with back-pressure (the server never buffers more than the socket
takes) and end when the client closes the connection.

Order: the rate limits, then ``redirect``, then the injected error (``status`` / ``fail``, in the
style ``cut_error_body`` / ``huge_error`` / ``html`` asks for), then ``html`` without a status, then
``hang=headers``, then ``huge_line`` (after the ``bad_gzip`` preamble when both), then the reply;
``bad_gzip``, ``bad_shape`` and ``overrun`` combine with each other and the other reply keys.

Non-streaming requests are answered when the last token would have been streamed (ttft + pacing);
``hang`` (either mode) never answers, ``disconnect`` closes without an answer at token N's due
time, ``malformed`` sends the first half of the JSON body.

The fail counter key is ``(wire, NAME, canonical scenario)`` where the canonical scenario is
the ``key=value`` pairs sorted by key (see :meth:`Scenario.counter_key`); so the same model string
on the same wire (streaming or not) shares one counter, and ``id`` separates otherwise equal ones.
``POST /_fake/reset`` clears all counters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BAD_SHAPES", "FAIL_ALWAYS", "KEYS", "REDIRECT_CODES", "Scenario", "ScenarioError", "parse_model", "split_model",
]  # fmt: skip

KEYS: tuple[str, ...] = (
    "ttft", "tps", "tokens", "usage", "reasoning", "status", "fail",
    "retry_after", "id", "hang", "disconnect", "malformed", "refusal",
    "cut_error_body", "huge_error", "html", "redirect", "bad_gzip", "bad_shape", "huge_line", "overrun",
    "echo_key", "tools", "tool_deltas", "cache", "pause", "fixed", "interleaved", "json",
)  # fmt: skip

REDIRECT_CODES = (301, 302, 303, 307, 308)
BadShape = Literal["choices", "int", "list"]
_SHAPES: dict[str, BadShape] = {"choices": "choices", "int": "int", "list": "list"}
BAD_SHAPES: tuple[str, ...] = tuple(_SHAPES)
FAIL_ALWAYS = 2**62  # the fail count of cut_error_body / huge_error / html without an explicit ``fail``
_EXCLUSIVE = ("html", "cut_error_body", "huge_error", "huge_line")
_FLAG_KEYS = ("cut_error_body", "huge_error", "html", "bad_gzip", "huge_line", "overrun", "refusal", "echo_key",
              "cache", "pause", "fixed", "interleaved", "json")

MAX_TOKENS_LIMIT = 10_000_000
MAX_TOOL_CALLS = 64


class ScenarioError(ValueError):
    """A bad scenario suffix; ``key`` names the offending key (None when the syntax is broken)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    model: str = ""
    ttft_ms: float = 0.0
    tps: float | None = None
    tokens: int = 32
    usage: bool = True
    reasoning: int = 0
    status: int | None = None
    fail: int = 0
    retry_after: str | None = None
    id: str | None = None
    hang: Literal["headers", "stream"] | None = None
    disconnect: int | None = None
    malformed: bool = False
    cut_error_body: bool = False
    huge_error: bool = False
    html: bool = False
    redirect: int | None = None
    bad_gzip: bool = False
    bad_shape: BadShape | None = None
    huge_line: bool = False
    overrun: bool = False
    echo_key: bool = False
    refusal: bool = False
    pause: bool = False
    interleaved: bool = False
    tools: int = 0
    tool_deltas: int = 3
    cache: bool = False
    fixed: bool = False
    json: bool = False
    pairs: tuple[tuple[str, str], ...] = field(default=())

    def counter_key(self, wire: str) -> tuple[str, str, str]:
        """Key of the fail counter: ``(wire, NAME, sorted "k=v" pairs joined by ",")``."""
        return (wire, self.name, ",".join(f"{k}={v}" for k, v in sorted(self.pairs)))


def split_model(model: str) -> tuple[str, str]:
    """Split ``NAME@k=v,...`` into ``(NAME, "k=v,...")``; ``(model, "")`` for a plain name."""
    name, sep, suffix = model.rpartition("@")
    if not sep or "=" not in suffix:
        return model, ""
    return name, suffix


def _number(key: str, value: str, *, minimum: float, maximum: float, strict_min: bool = False) -> float:
    try:
        num = float(value)
    except ValueError:
        raise ScenarioError(f"scenario key '{key}': '{value}' is not a number", key) from None
    if not math.isfinite(num) or num > maximum or num < minimum or (strict_min and num == minimum):
        cmp = ">" if strict_min else ">="
        raise ScenarioError(f"scenario key '{key}': {value} must be {cmp} {minimum:g} and <= {maximum:g}", key)
    return num


def _integer(key: str, value: str, *, minimum: int, maximum: int) -> int:
    try:
        num = int(value)
    except ValueError:
        raise ScenarioError(f"scenario key '{key}': '{value}' is not an integer", key) from None
    if not minimum <= num <= maximum:
        raise ScenarioError(f"scenario key '{key}': {value} must be between {minimum} and {maximum}", key)
    return num


def _flag(key: str, value: str) -> bool:
    low = value.lower()
    if low in ("1", "true"):
        return True
    if low in ("0", "false"):
        return False
    raise ScenarioError(f"scenario key '{key}': '{value}' must be 1 or 0", key)


def parse_model(model: str) -> Scenario:
    """Parse a model string into a :class:`Scenario` (raises :class:`ScenarioError`)."""
    name, suffix = split_model(model)
    values: dict[str, str] = {}
    for item in suffix.split(","):
        if not item.strip():
            continue
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq:
            raise ScenarioError(f"scenario item '{item}' is not key=value", key or None)
        if key not in KEYS:
            raise ScenarioError(f"unknown scenario key '{key}' (known keys: {', '.join(KEYS)})", key)
        if key in values:
            raise ScenarioError(f"scenario key '{key}' given twice", key)
        values[key] = value

    def get(key: str) -> str | None:
        return values.get(key)

    ttft = get("ttft")
    tps = get("tps")
    tokens = get("tokens")
    reasoning = get("reasoning")
    usage = get("usage")
    malformed = get("malformed")
    status = get("status")
    fail = get("fail")
    retry_after = get("retry_after")
    label = get("id")
    hang = get("hang")
    disconnect = get("disconnect")

    if label is not None and not label:
        raise ScenarioError("scenario key 'id': the label is empty", "id")
    if hang is not None and hang not in ("headers", "stream"):
        raise ScenarioError(f"scenario key 'hang': '{hang}' must be 'headers' or 'stream'", "hang")
    if retry_after is not None:
        _number("retry_after", retry_after, minimum=0, maximum=86_400)
    status_code = None if status is None else _integer("status", status, minimum=400, maximum=599)
    fail_count = 0 if fail is None else _integer("fail", fail, minimum=0, maximum=1_000_000_000)
    flags = {key: _flag(key, values[key]) for key in _FLAG_KEYS if key in values}
    exclusive = [key for key in _EXCLUSIVE if flags.get(key)]
    if len(exclusive) > 1:
        first, second = exclusive[:2]
        allowed = ", ".join(_EXCLUSIVE)
        raise ScenarioError(f"scenario key '{second}' cannot be combined with '{first}' (one of {allowed})", second)
    error_style = flags.get("cut_error_body") or flags.get("huge_error") or flags.get("html") or flags.get("echo_key")
    if status_code is None and (flags.get("cut_error_body") or flags.get("huge_error")):
        status_code = 500
    if status_code is None and flags.get("echo_key"):
        status_code = 401
    if status_code is not None and fail is None:
        fail_count = FAIL_ALWAYS if error_style else 1
    if status_code is None and fail is not None:
        status_code = 500
    redirect = get("redirect")
    redirect_code = None
    if redirect is not None:
        redirect_code = _integer("redirect", redirect, minimum=300, maximum=399)
        if redirect_code not in REDIRECT_CODES:
            codes = ", ".join(map(str, REDIRECT_CODES))
            raise ScenarioError(f"scenario key 'redirect': {redirect} must be one of {codes}", "redirect")
    bad_shape = get("bad_shape")
    shape = None if bad_shape is None else _SHAPES.get(bad_shape)
    if bad_shape is not None and shape is None:
        allowed = ", ".join(BAD_SHAPES)
        raise ScenarioError(f"scenario key 'bad_shape': '{bad_shape}' must be one of {allowed}", "bad_shape")
    return Scenario(
        name=name,
        model=model,
        ttft_ms=0.0 if ttft is None else _number("ttft", ttft, minimum=0, maximum=3_600_000),
        tps=None if tps is None else _number("tps", tps, minimum=0, maximum=1e9, strict_min=True),
        tokens=32 if tokens is None else _integer("tokens", tokens, minimum=0, maximum=MAX_TOKENS_LIMIT),
        usage=True if usage is None else _flag("usage", usage),
        reasoning=0 if reasoning is None else _integer("reasoning", reasoning, minimum=0, maximum=MAX_TOKENS_LIMIT),
        status=status_code,
        fail=fail_count,
        retry_after=retry_after,
        id=label,
        hang="headers" if hang == "headers" else "stream" if hang == "stream" else None,
        disconnect=None
        if disconnect is None
        else _integer("disconnect", disconnect, minimum=0, maximum=MAX_TOKENS_LIMIT),
        malformed=False if malformed is None else _flag("malformed", malformed),
        cut_error_body=flags.get("cut_error_body", False),
        huge_error=flags.get("huge_error", False),
        html=flags.get("html", False),
        redirect=redirect_code,
        bad_gzip=flags.get("bad_gzip", False),
        bad_shape=shape,
        huge_line=flags.get("huge_line", False),
        overrun=flags.get("overrun", False),
        echo_key=flags.get("echo_key", False),
        refusal=flags.get("refusal", False),
        pause=flags.get("pause", False),
        interleaved=flags.get("interleaved", False),
        cache=flags.get("cache", False),
        fixed=flags.get("fixed", False),
        json=flags.get("json", False),
        tools=0 if get("tools") is None else _integer("tools", values["tools"], minimum=0, maximum=MAX_TOOL_CALLS),
        tool_deltas=3 if get("tool_deltas") is None
        else _integer("tool_deltas", values["tool_deltas"], minimum=1, maximum=MAX_TOKENS_LIMIT),
        pairs=tuple(values.items()),
    )
