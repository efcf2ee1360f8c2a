"""Errors the core raises. Each says what happened and what to do next, and never holds a secret."""

from __future__ import annotations

import functools
import re

_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])|[\x00-\x1f\x7f-\x9f]")


def one_line(text: str, limit: int = 300) -> str:
    """Text from outside (an error body, an exception) fit for one line of a terminal: escape sequences
    and control characters gone, whitespace runs collapsed, at most ``limit`` characters."""
    flat = " ".join(_ESCAPES.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


PLACEHOLDER = "\ufffd"
"""What a terminal shows in place of a control character or an escape sequence of text from outside."""
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROLS = (
    r"\r\n"  # a Windows line break: kept as a line break
    r"|\x1b(?:\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clearing the screen
    r"|\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC, terminated: window titles, hyperlinks, the clipboard (52)
    r"|[PX^_][^\x1b]*\x1b\\"  # DCS, SOS, PM, APC, terminated
    r"|[ -/]*[0-~])?"  # the other escapes (ESC alone when what follows is none of these)
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # any other C0 or C1 control (tabs and line breaks kept)
)
"""Compiled when first needed (``re``'s own cache): most text never has a control character."""


def printable(text: str) -> str:
    """Text from outside (a model's reply, an error) fit for a terminal: line breaks and tabs kept, every other
    control character and every escape sequence (whole, with an OSC's payload) shown as :data:`PLACEHOLDER`, so
    the text can neither style, move, retitle nor clear the screen, nor set the clipboard."""
    if _UNSAFE.search(text) is None:
        return text
    return re.sub(_CONTROLS, lambda m: "\n" if m.group() == "\r\n" else PLACEHOLDER, text)


KEY_ECHO = "[key]"
"""What an error shows in place of an echo of the API key."""
_SHORT_KEY = 8
"""A key shorter than this (a placeholder such as ``x`` for a local server) is scrubbed verbatim only."""


@functools.lru_cache(maxsize=32)
def _echoes(key: str) -> tuple[re.Pattern[str], re.Pattern[str] | None]:
    """The echoes of ``key``: (1) as it is, in any letter case, any character percent-encoded (either hex case);
    (2) in base64 (standard or URL-safe alphabet) of any text holding it (``Bearer <key>``, ``user:<key>``,
    ``<key>:``): the characters that depend on the key alone, at each of the three byte alignments."""
    import base64

    if len(key) < _SHORT_KEY:
        return re.compile(re.escape(key)), None

    def spelled(text: str) -> str:  # each character as it is or percent-encoded (keys are ASCII: header-safe)
        return "".join(f"(?:{re.escape(c)}|%{ord(c):02x})" if ord(c) < 128 else re.escape(c) for c in text)

    cores: list[str] = []
    raw = key.encode()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        first, last = (1 if shift else 0), (shift + len(raw)) // 3  # the 3-byte groups of key bytes only
        core = encoded[4 * first: 4 * last]
        cores += [spelled(core), spelled(core.replace("+", "-").replace("/", "_"))]
    return re.compile(spelled(key), re.IGNORECASE), re.compile("|".join(cores), re.IGNORECASE)


_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=%")


def scrub_key(text: str, key: str | None) -> str:
    """``text`` without any echo of ``key`` in its common encodings (see :func:`_echoes`): each is :data:`KEY_ECHO`
    (a base64 echo with the whole token around it: the rest of a ``Basic`` credential goes too). Applied where
    provider errors are made from what a server sent, so no error can show or store the key."""
    if not key or len(key) < 3:
        return text
    plain, encoded = _echoes(key)
    text = plain.sub(KEY_ECHO, text)
    if encoded is None:
        return text
    while (found := encoded.search(text)) is not None:
        start, end = found.span()
        while start > 0 and text[start - 1] in _BASE64_CHARS:
            start -= 1
        while end < len(text) and text[end] in _BASE64_CHARS:
            end += 1
        text = text[:start] + KEY_ECHO + text[end:]
    return text


class WorkbenchError(Exception):
    """Base of every error meant for the user: ``str(err)`` is the one-line reason, ``hint`` the next step."""

    error_class = "error"

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take other constructor arguments; rebuild from the state so every error pickles
        # (records cross from the network process to the UI's).
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[WorkbenchError], args: tuple[object, ...], state: dict[str, object]) -> WorkbenchError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigError(WorkbenchError):
    """Bad or missing configuration: an unknown provider, a missing key, a malformed model reference."""

    error_class = "config"


class ProviderError(WorkbenchError):
    """A call to a provider failed. ``target`` is the ``provider/model`` reference."""

    error_class = "provider"

    def __init__(self, target: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"{target}: {message}", hint)
        self.target = target


class ProviderStreamError(ProviderError):
    """The provider reported an error inside a stream that had started (HTTP 200), e.g. overloaded."""

    error_class = "stream_error"


class SeveralChoicesError(ProviderStreamError):
    """The stream carried a second choice (``n`` or ``candidateCount`` above 1 reached the provider): never merged
    into the first; not retried (the same request would answer the same way)."""

    error_class = "several_choices"


class CallCancelledError(ProviderError):
    """The call was cancelled (by the user, or because a hedged twin answered first)."""

    error_class = "cancelled"

    def __init__(self, target: str) -> None:
        super().__init__(target, "cancelled")


class ProviderHTTPError(ProviderError):
    """The provider answered with an HTTP error status before streaming began."""

    def __init__(
        self,
        target: str,
        status: int,
        kind: str | None,
        detail: str,
        *,
        retry_after_s: float | None = None,
        request_id: str | None = None,
        hint: str | None = None,
        should_retry: bool | None = None,
        rate_limits: dict[str, str] | None = None,
    ) -> None:
        label = f"HTTP {status}" + (f" {kind}" if kind else "")
        super().__init__(target, f"{label}: {detail}", hint or _status_hint(status))
        self.status = status
        self.kind = kind
        self.detail = detail
        self.retry_after_s = retry_after_s
        self.request_id = request_id
        self.should_retry = should_retry
        """The provider's own ``x-should-retry`` verdict, when it sent one."""
        self.rate_limits = rate_limits or {}

    @property
    def context_too_long(self) -> bool:
        """The prompt does not fit the model's context window (a reason to fall back to a larger one)."""
        if self.status not in (400, 413):
            return False
        text = f"{self.kind} {self.detail}".lower()
        return any(marker in text for marker in _CONTEXT_MARKERS)

    @property
    def error_class(self) -> str:  # type: ignore[override]
        return f"http_{self.status}"


class ProviderConnectionError(ProviderError):
    """The provider could not be reached (refused, DNS, TLS, reset before the response)."""

    error_class = "connection"


class ServerProtocolError(ProviderError):
    """The server answered, but not in HTTP: bytes that are no status line, headers past the size limit."""

    error_class = "protocol"


class ProviderTimeoutError(ProviderError):
    """A timeout fired; ``which`` names it (connect, read, write, pool)."""

    error_class = "timeout"

    def __init__(self, target: str, which: str, hint: str | None = None) -> None:
        super().__init__(target, f"{which} timeout", hint)
        self.which = which


class StreamProtocolError(ProviderError):
    """The stream broke its wire format: a malformed event or a truncated stream."""

    error_class = "protocol"


class MalformedStreamError(StreamProtocolError):
    error_class = "malformed"


class TruncatedStreamError(StreamProtocolError):
    error_class = "truncated"


class NotAnLLMAPIError(ProviderError):
    """The server answered, but not as an LLM API does (an HTML page: a captive portal, a login page)."""

    error_class = "not_llm_api"


class OverrunError(ProviderError):
    """The provider went on streaming far past ``max_tokens``: a provider fault, so reading stopped."""

    error_class = "overrun"


class RedirectError(ProviderError):
    """The provider answered with a redirect that is not followed (301/302/303, or to another origin)."""

    error_class = "redirect"


class UnexpectedError(ProviderError):
    """Anything else that went wrong while serving one target: it fails that target and no other."""

    error_class = "internal"

    def __init__(self, target: str, exc: BaseException) -> None:
        detail = one_line(str(exc), 200)
        super().__init__(target, f"unexpected {type(exc).__name__}" + (f": {detail}" if detail else ""),
                         "the other targets are unaffected; if it repeats, report it with the trace id")


_CONTEXT_MARKERS = ("context_length_exceeded", "context length", "context window", "prompt is too long",
                    "maximum context", "input token count", "too many tokens")


class CircuitOpenError(ProviderError):
    """The endpoint's circuit breaker is open: the call failed fast, without a network call."""

    error_class = "circuit_open"

    def __init__(self, target: str, retry_in_s: float) -> None:
        super().__init__(target, f"circuit open after repeated failures (next probe in {retry_in_s:.0f} s)",
                         "the endpoint has been failing: wait, or add a fallback with --fallback")


class ContextTooLongError(ProviderError):
    """The prompt plus the output bound does not fit the model's context window (checked before sending)."""

    error_class = "context_too_long"

    def __init__(self, target: str, needed: int, window: int) -> None:
        super().__init__(target, f"the request needs {needed:,} tokens but the context window is {window:,}",
                         "shorten the prompt, lower max_tokens, or add a --fallback with a larger window")


class StructuredOutputError(ProviderError):
    """The reply does not match the request's JSON schema."""

    error_class = "invalid_output"


class RefusalError(StructuredOutputError):
    """The model refused to answer a request that asked for JSON (a refusal, or the provider's filter)."""

    error_class = "refusal"


def _status_hint(status: int) -> str:
    if status == 401:
        return "the API key was rejected: check it, or set the provider's API key environment variable"
    if status == 402:
        return "billing problem on the provider's side: check the account's credit"
    if status == 403:
        return "the key is not allowed to use this model or region"
    if status == 404:
        return "unknown model or wrong base URL: check the model name and the provider's base URL"
    if status in (413,):
        return "the request is too large for this model: shorten the prompt"
    if status in (429, 529):
        return "rate limited or overloaded: wait and retry, or lower concurrency"
    if status >= 500:
        return "the provider failed: retry later"
    if status in (400, 422):
        return "the provider rejected the request: check the model name and the parameters"
    return "the provider refused the request: see its message"


def header_safe(value: str, where: str) -> str:
    """``value`` (an API key) if an HTTP header can carry it; else a :class:`ConfigError` naming ``where``
    (the variable or the provider) and what is wrong, never the value."""
    for position, char in enumerate(value, 1):
        if not "!" <= char <= "~":
            what = ("a space" if char == " " else "a control character" if ord(char) < 32 or ord(char) == 127
                    else f"a non-ASCII character (U+{ord(char):04X})")
            raise ConfigError(f"{where}: the API key has {what} at position {position}, which an HTTP header "
                              "cannot carry", "paste the key again without it (zero-width spaces and accented "
                              "letters often come with a copy)")
    return value


class StreamDecodeError(ValueError):
    """Raised by the byte-level decoders; the provider layer turns it into a :class:`StreamProtocolError`."""


class TruncatedInputError(StreamDecodeError):
    """The byte stream ended inside an event or line."""


class InvalidLineError(StreamDecodeError):
    """A line that cannot be decoded (NDJSON: not JSON)."""
