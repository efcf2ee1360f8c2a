"""OpenAI pieces shared by Chat Completions and Responses: response headers (rate-limit headers
``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` included) and the error body
``{"error":{"message","type","param","code"}}`` with OpenAI's real wording per status."""

from __future__ import annotations

import math

from workbench.fakeserver.limits import LimitState
from workbench.fakeserver.wire.base import ErrorInfo, WireFormat, compact

__all__ = ["OpenAIWire", "openai_duration", "openai_error_body"]

# status -> (type, code, message); "{model}" and "{wait}" are filled in.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys.",
    ),
    403: ("request_forbidden", "unsupported_country_region_territory", "Country, region, or territory not supported"),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    409: ("invalid_request_error", None, "Conflict: the request could not be completed. Please retry."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: (
        "tokens",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-workbenchfake on tokens per min (TPM): Limit 30000, "
        "Used 29000, Requested 2000. Please try again in {wait}. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later"),
    504: ("server_error", None, "Gateway timeout."),
}


def openai_duration(seconds: float) -> str:
    """A wait the way OpenAI writes it (Go durations, ms precision rounded up): ``120ms``, ``1.5s``, ``6m0s``."""
    ms = math.ceil(seconds * 1000 - 1e-6)
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, frac = divmod(rest, 1000)
    text = f"{secs}.{frac:03d}".rstrip("0") if frac else str(secs)
    if hours:
        return f"{hours}h{minutes}m{text}s"
    return f"{minutes}m{text}s" if minutes else f"{text}s"


def openai_error_body(err: ErrorInfo) -> bytes:
    default = ("invalid_request_error", None, "Invalid request.") if err.status < 500 else _ERRORS[500]
    etype, code, message = _ERRORS.get(err.status, default)
    if err.message is not None:
        message, code = err.message, err.code
    if err.retry_after_ms is not None:
        wait = openai_duration(err.retry_after_ms / 1000)
    else:
        wait = f"{err.retry_after}s" if err.retry_after is not None else "2s"
    message = message.replace("{model}", err.model).replace("{wait}", wait).replace("{key}", err.masked_key)
    return compact({"error": {"message": message, "type": etype, "param": err.param, "code": code}}).encode()


class OpenAIWire(WireFormat):
    """Headers and error bodies common to both OpenAI endpoints."""

    bad_json_message = (
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
        "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you "
        "have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)"
    )

    def headers(self, request_id: str) -> list[tuple[str, str]]:
        return [
            ("x-request-id", request_id),
            ("openai-organization", "workbench-fake"),
            ("openai-processing-ms", "1"),
            ("openai-version", "2020-10-01"),
        ]

    def ratelimit_headers(self, state: LimitState) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for kind, bucket in (("requests", state.requests), ("tokens", state.tokens)):
            if bucket is not None:
                out.append((f"x-ratelimit-limit-{kind}", bucket.limit_text))
                out.append((f"x-ratelimit-remaining-{kind}", str(bucket.remaining)))
                out.append((f"x-ratelimit-reset-{kind}", openai_duration(bucket.reset_s)))
        return out

    def error_body(self, err: ErrorInfo) -> bytes:
        return openai_error_body(err)

    def error_headers(self, err: ErrorInfo) -> list[tuple[str, str]]:
        out = super().error_headers(err)
        if err.retry_after_ms is not None:
            out.append(("retry-after-ms", str(err.retry_after_ms)))
        return out
