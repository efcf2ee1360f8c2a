"""OpenAI pieces shared by Chat Completions and Responses: response headers and the error body
``{"error":{"message","type","param","code"}}`` with OpenAI's real wording per status."""

from __future__ import annotations

from workbench.fakeserver.wire.base import ErrorInfo, WireFormat, compact

__all__ = ["OpenAIWire", "openai_error_body"]

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


def openai_error_body(err: ErrorInfo) -> bytes:
    default = ("invalid_request_error", None, "Invalid request.") if err.status < 500 else _ERRORS[500]
    etype, code, message = _ERRORS.get(err.status, default)
    if err.message is not None:
        message, code = err.message, err.code
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

    def error_body(self, err: ErrorInfo) -> bytes:
        return openai_error_body(err)
