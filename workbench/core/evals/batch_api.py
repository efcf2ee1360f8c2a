"""The providers' batch APIs as an eval run uses them, in their documented formats.

- **OpenAI** (Batch API): the requests as a JSONL file (``{custom_id, method: POST, url, body}`` a line; ``url``
  ``/v1/chat/completions`` or ``/v1/responses``, as the target's wire, one per file) uploaded to ``POST /files``
  (``purpose=batch``), a batch made of it on ``POST /batches`` (``completion_window: 24h``), its state on
  ``GET /batches/{id}``, the results in its output file (the requests that succeeded) and error file (the others),
  read from ``GET /files/{id}/content``. A file holds at most 50,000 requests and 200 MB, and one model.
- **Anthropic** (Message Batches): the requests inline on ``POST /v1/messages/batches`` (``{custom_id, params}``), its
  state on ``GET /v1/messages/batches/{id}``, the results (JSONL) at its ``results_url``. A batch holds at most 100,000
  requests and 256 MB.

Each request's body is the one the online call sends (the adapter's, with the endpoint's own fields), not streamed.
Each result is read by the wire's own parser into a :class:`CallRecord`; a request that errored, expired or was
cancelled is a record that failed with that reason (:class:`BatchRequestError` or the provider's HTTP error).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2

from workbench.core.call_record import CallRecord, apply_event
from workbench.core.capture.recording import PARSERS, whole_reply
from workbench.core.errors import ProviderError, ProviderHTTPError
from workbench.core.providers.base import HttpProvider, error_fields, merged_body, with_headers
from workbench.core.request import ChatRequest

__all__ = ["API_OF", "ENDED_STATES", "LIMITS", "BatchApi", "BatchLimits", "BatchRequestError", "BatchStatus",
           "batch_api", "openai_endpoint", "record_of"]


@dataclass(frozen=True, slots=True)
class BatchLimits:
    requests: int
    bytes: int


LIMITS = {"openai": BatchLimits(50_000, 200 * 1024 * 1024), "anthropic": BatchLimits(100_000, 256 * 1024 * 1024)}
"""Each batch API's documented limits: requests and bytes per batch (OpenAI: per input file)."""
API_OF = {"openai": "openai", "openai-responses": "openai", "fake": "openai", "fake-responses": "openai",
          "anthropic": "anthropic", "fake-anthropic": "anthropic"}
"""The providers whose calls go through a batch API (the fake server's learn theirs), and which one."""
_OPENAI_PATHS = {"openai_chat": "/v1/chat/completions", "openai_responses": "/v1/responses"}
"""The endpoint an OpenAI batch names for each wire's requests (each line's ``url``, the batch's ``endpoint``)."""
ENDED_STATES = frozenset({"completed", "expired", "cancelled", "failed", "ended"})
_ANTHROPIC_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
                     "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
                     "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529}
_TIMEOUT = httpx2.Timeout(60.0, connect=10.0)


class BatchRequestError(ProviderError):
    """A request of a batch that was never run: it expired (the batch's window closed first) or was cancelled."""

    def __init__(self, target: str, outcome: str, detail: str) -> None:
        super().__init__(target, f"batch request {outcome}: {detail}",
                         "run the cell again: `workbench eval SUITE --retry-errors`")
        self.outcome = outcome

    @property
    def error_class(self) -> str:  # type: ignore[override]
        return f"batch_{self.outcome}"


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """A batch as its provider reports it: its own state word, and its requests done, failed and in all."""

    state: str
    done: int
    failed: int
    total: int

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    def line(self) -> str:
        return f"{self.state} · {self.done + self.failed}/{self.total} done" + (
            f" ({self.failed} failed)" if self.failed else "")


def openai_endpoint(wire: str) -> str | None:
    """The path an OpenAI batch names for ``wire``'s requests (None: the wire has no batch endpoint)."""
    return _OPENAI_PATHS.get(wire)


def _raise_for(target: str, response: httpx2.Response) -> None:
    if response.status_code >= 400:
        kind, detail = error_fields(response.content)
        raise ProviderHTTPError(target, response.status_code, kind, detail,
                                request_id=response.headers.get("x-request-id") or response.headers.get("request-id"))


def _json(target: str, response: httpx2.Response) -> dict[str, Any]:
    _raise_for(target, response)
    try:
        body = response.json()
    except ValueError:
        raise ProviderError(target, "the batch API answered something that is not JSON",
                            "check the provider's base URL") from None
    if not isinstance(body, dict):
        raise ProviderError(target, "the batch API answered something that is not a JSON object",
                            "check the provider's base URL")
    return body


def record_of(target: str, request: ChatRequest, wire: str, reply: bytes | None,
              error: ProviderError | None = None, request_id: str | None = None) -> CallRecord:
    """A batch request's result as a finished call: ``reply`` (a non-streamed body) read by the wire's parser, or
    ``error``. No timing: a batch's calls have no latency of their own."""
    record = CallRecord(target, request, started_at=time.time())
    record.request_id = request_id
    if reply is not None:
        parser = PARSERS[wire]()
        at_ns = time.perf_counter_ns()
        try:
            for item in whole_reply(wire, reply):
                for event in parser.feed(item, at_ns):
                    apply_event(record, event)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            error = ProviderError(target, f"the batch result could not be read ({type(exc).__name__})")
    record.done = True
    if error is not None:
        record.fail(error)
    return record


class BatchApi:
    """One target's batch API (``provider``: its adapter, for the bodies, headers and endpoint)."""

    name = ""

    @property
    def route(self) -> str:
        """Which batch API (and endpoint) the requests go through, as said to the user."""
        raise NotImplementedError

    def __init__(self, provider: HttpProvider, client: httpx2.AsyncClient) -> None:
        self.provider, self.client = provider, client
        self.endpoint = provider.endpoint
        self.target = provider.target

    def body(self, request: ChatRequest) -> dict[str, Any]:
        """The online call's body for ``request``, not streamed."""
        body = merged_body(self.provider.body(self.provider.resolve(request)), self.endpoint.body)
        body.pop("stream", None)
        body.pop("stream_options", None)
        return body

    def headers(self) -> dict[str, str]:
        return with_headers(self.provider.headers(), self.endpoint.headers)

    def size(self, custom_id: str, body: Mapping[str, Any]) -> int:
        """The bytes one request takes in a batch."""
        return len(json.dumps({"custom_id": custom_id, "body": body}).encode()) + 64

    async def submit(self, requests: Sequence[tuple[str, dict[str, Any]]], run_id: str) -> str:
        raise NotImplementedError

    async def status(self, batch_id: str) -> BatchStatus:
        raise NotImplementedError

    async def cancel(self, batch_id: str) -> BatchStatus:
        raise NotImplementedError

    async def results(self, batch_id: str) -> Iterator[tuple[str, bytes | None, ProviderError | None, str | None]]:
        """Each request's (custom id, reply body or None, error or None, request id) once the batch ended."""
        raise NotImplementedError


class OpenAIBatches(BatchApi):
    name = "openai"

    @property
    def route(self) -> str:
        return f"OpenAI Batch API {self.path}"

    @property
    def path(self) -> str:
        return _OPENAI_PATHS[self.endpoint.wire]

    async def submit(self, requests: Sequence[tuple[str, dict[str, Any]]], run_id: str) -> str:
        lines = "".join(json.dumps({"custom_id": custom_id, "method": "POST", "url": self.path, "body": body},
                                   ensure_ascii=False) + "\n" for custom_id, body in requests)
        uploaded = _json(self.target, await self.client.post(
            f"{self.endpoint.base_url}/files", headers=self.headers(), data={"purpose": "batch"},
            files={"file": (f"workbench-{run_id}.jsonl", lines.encode(), "application/jsonl")}, timeout=_TIMEOUT))
        batch = _json(self.target, await self.client.post(
            f"{self.endpoint.base_url}/batches", headers=self.headers(), timeout=_TIMEOUT,
            json={"input_file_id": uploaded.get("id"), "endpoint": self.path, "completion_window": "24h",
                  "metadata": {"workbench_eval_run": run_id}}))
        return str(batch["id"])

    def _status(self, batch: Mapping[str, Any]) -> BatchStatus:
        counts = batch.get("request_counts") or {}
        return BatchStatus(str(batch.get("status")), int(counts.get("completed") or 0), int(counts.get("failed") or 0),
                           int(counts.get("total") or 0))

    async def _batch(self, batch_id: str) -> dict[str, Any]:
        return _json(self.target, await self.client.get(f"{self.endpoint.base_url}/batches/{batch_id}",
                                                        headers=self.headers(), timeout=_TIMEOUT))

    async def status(self, batch_id: str) -> BatchStatus:
        return self._status(await self._batch(batch_id))

    async def cancel(self, batch_id: str) -> BatchStatus:
        return self._status(_json(self.target, await self.client.post(
            f"{self.endpoint.base_url}/batches/{batch_id}/cancel", headers=self.headers(), timeout=_TIMEOUT)))

    async def _file(self, file_id: str) -> list[str]:
        response = await self.client.get(f"{self.endpoint.base_url}/files/{file_id}/content", headers=self.headers(),
                                         timeout=_TIMEOUT)
        _raise_for(self.target, response)
        return [line for line in response.text.splitlines() if line.strip()]

    async def results(self, batch_id: str) -> Iterator[tuple[str, bytes | None, ProviderError | None, str | None]]:
        batch = await self._batch(batch_id)
        lines = [line for key in ("output_file_id", "error_file_id") if batch.get(key)
                 for line in await self._file(str(batch[key]))]
        failure = None
        if batch.get("status") == "failed":
            errors = (batch.get("errors") or {}).get("data") or [{}]
            failure = ProviderError(self.target, f"the batch failed: {errors[0].get('message') or 'no reason given'}")
        return self._read(lines, failure)

    def _read(self, lines: list[str], failure: ProviderError | None,
              ) -> Iterator[tuple[str, bytes | None, ProviderError | None, str | None]]:
        seen = set()
        for text in lines:
            row = json.loads(text)
            custom_id = str(row.get("custom_id"))
            seen.add(custom_id)
            response, error = row.get("response"), row.get("error")
            if isinstance(response, dict):
                status, body = int(response.get("status_code") or 0), json.dumps(response.get("body")).encode()
                request_id = response.get("request_id")
                if status < 400:
                    yield custom_id, body, None, request_id
                    continue
                kind, detail = error_fields(body)
                yield custom_id, None, ProviderHTTPError(self.target, status, kind, detail,
                                                         request_id=request_id), request_id
                continue
            code = str((error or {}).get("code") or "")
            message = str((error or {}).get("message") or "no reason given")
            outcome = {"batch_expired": "expired", "batch_cancelled": "canceled"}.get(code)
            failed = BatchRequestError(self.target, outcome, message) if outcome else ProviderError(
                self.target, f"batch request failed: {code or 'error'}: {message}")
            yield custom_id, None, failed, None
        if failure is not None:
            yield "", None, failure, None  # every request the batch holds (the caller fills in the rest)


class AnthropicBatches(BatchApi):
    name = "anthropic"

    @property
    def route(self) -> str:
        return "Anthropic Message Batches"

    def size(self, custom_id: str, body: Mapping[str, Any]) -> int:
        return len(json.dumps({"custom_id": custom_id, "params": body}).encode()) + 2

    async def submit(self, requests: Sequence[tuple[str, dict[str, Any]]], run_id: str) -> str:
        batch = _json(self.target, await self.client.post(
            f"{self.endpoint.base_url}/v1/messages/batches", headers=self.headers(), timeout=_TIMEOUT,
            json={"requests": [{"custom_id": custom_id, "params": body} for custom_id, body in requests]}))
        return str(batch["id"])

    def _status(self, batch: Mapping[str, Any]) -> BatchStatus:
        counts = {k: int(v or 0) for k, v in (batch.get("request_counts") or {}).items()}
        failed = counts.get("errored", 0) + counts.get("canceled", 0) + counts.get("expired", 0)
        return BatchStatus(str(batch.get("processing_status")), counts.get("succeeded", 0), failed,
                           sum(counts.values()))

    async def _batch(self, batch_id: str) -> dict[str, Any]:
        return _json(self.target, await self.client.get(f"{self.endpoint.base_url}/v1/messages/batches/{batch_id}",
                                                        headers=self.headers(), timeout=_TIMEOUT))

    async def status(self, batch_id: str) -> BatchStatus:
        return self._status(await self._batch(batch_id))

    async def cancel(self, batch_id: str) -> BatchStatus:
        return self._status(_json(self.target, await self.client.post(
            f"{self.endpoint.base_url}/v1/messages/batches/{batch_id}/cancel", headers=self.headers(),
            timeout=_TIMEOUT)))

    async def results(self, batch_id: str) -> Iterator[tuple[str, bytes | None, ProviderError | None, str | None]]:
        batch = await self._batch(batch_id)
        url = batch.get("results_url") or f"{self.endpoint.base_url}/v1/messages/batches/{batch_id}/results"
        response = await self.client.get(str(url), headers=self.headers(), timeout=_TIMEOUT)
        _raise_for(self.target, response)
        return self._read([line for line in response.text.splitlines() if line.strip()])

    def _read(self, lines: list[str]) -> Iterator[tuple[str, bytes | None, ProviderError | None, str | None]]:
        for text in lines:
            row = json.loads(text)
            custom_id, result = str(row.get("custom_id")), row.get("result") or {}
            kind = result.get("type")
            if kind == "succeeded":
                yield custom_id, json.dumps(result.get("message")).encode(), None, None
            elif kind == "errored":
                error = result.get("error") or {}
                nested = error.get("error")
                inner: dict[str, Any] = nested if isinstance(nested, dict) else error
                etype = str(inner.get("type") or "api_error")
                yield custom_id, None, ProviderHTTPError(
                    self.target, _ANTHROPIC_STATUS.get(etype, 500), etype, str(inner.get("message") or ""),
                    request_id=error.get("request_id")), error.get("request_id")
            else:
                outcome = "canceled" if kind == "canceled" else "expired"
                detail = ("the batch was cancelled before it ran" if outcome == "canceled"
                          else "the batch's 24 hours ended before it ran")
                yield custom_id, None, BatchRequestError(self.target, outcome, detail), None


def batch_api(provider: HttpProvider, client: httpx2.AsyncClient) -> BatchApi | None:
    """The batch API of ``provider``'s target, or None when its provider has none."""
    api = API_OF.get(provider.endpoint.provider)
    if api == "openai" and provider.endpoint.wire in _OPENAI_PATHS:
        return OpenAIBatches(provider, client)
    if api == "anthropic" and provider.endpoint.wire == "anthropic":
        return AnthropicBatches(provider, client)
    return None
