"""The fake server's batch APIs, in each provider's documented format.

OpenAI (Files and Batch APIs): ``POST /v1/files`` (multipart: ``purpose=batch`` and a JSONL ``file`` whose lines are
``{custom_id, method: POST, url, body}``), ``GET /v1/files/{id}``, ``GET /v1/files/{id}/content``,
``POST /v1/batches`` (``input_file_id``, ``endpoint`` ``/v1/chat/completions`` or ``/v1/responses``,
``completion_window`` ``24h``), ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``. A batch is
``validating`` when created, ``in_progress`` while it waits, then ``completed``, ``expired`` or (after a cancel:
``cancelling``) ``cancelled``; its ``output_file_id`` holds the lines of the requests that succeeded and its
``error_file_id`` the others, each ``{id, custom_id, response: {status_code, request_id, body} | null,
error: {code, message} | null}`` (``batch_expired`` and ``batch_cancelled`` for requests never run).

Anthropic (Message Batches): ``POST /v1/messages/batches`` (``requests: [{custom_id, params}]``),
``GET /v1/messages/batches/{id}``, ``GET /v1/messages/batches/{id}/results`` (JSONL of ``{custom_id, result}``,
``result.type`` ``succeeded`` (with ``message``), ``errored`` (with ``error``), ``canceled`` or ``expired``),
``POST /v1/messages/batches/{id}/cancel``. ``processing_status`` is ``in_progress``, ``canceling`` or ``ended``;
``request_counts`` counts ``processing``, ``succeeded``, ``errored``, ``canceled``, ``expired``; ``results_url``
is set once the batch ended.

Each request is answered as its online endpoint would answer it, not streamed (its scenario keys shape the
reply; ``status`` makes it fail, every time), when the batch ends. Batch keys in a request's model name (taken
out before the scenario is read; the online endpoints ignore them), for the whole batch (the largest value its
requests give):

``batch_polls``  N: reads of the batch's status answered "in progress" before it ends; default 0, the first read
                 finds it ended.
``batch_errors`` N: the batch's first N requests fail as the provider's overloaded answer does (HTTP 500
                 ``server_error`` on OpenAI, ``overloaded_error`` on Anthropic): a partially failed batch.
``batch_expire`` N: the batch's last N requests are not run before its window closes: they expire (the batch ends
                 ``expired`` on OpenAI; ``expired`` in its counts on Anthropic).

``POST /_fake/batches/end`` ends every batch still in progress at its next read (a test's way to finish a batch
held with a large ``batch_polls``). ``POST /_fake/reset`` does not drop batches or files.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from workbench.fakeserver.http_server import Request, Responder
from workbench.fakeserver.scenario import ScenarioError, parse_model, split_model
from workbench.fakeserver.wire import AnthropicWire, OpenAIChatWire, OpenAIResponsesWire, WireFormat
from workbench.fakeserver.wire.attachments import attached_tokens
from workbench.fakeserver.wire.base import ErrorInfo, WireError, compact, plan
from workbench.fakeserver.wire.reasoning import reasoning_off
from workbench.fakeserver.wire.tool_turns import answers_tools

__all__ = ["BATCH_KEYS", "Batches", "Knobs", "answer_request", "batch_knobs"]

BATCH_KEYS = ("batch_polls", "batch_errors", "batch_expire")
OPENAI_MAX_REQUESTS = 50_000
OPENAI_MAX_FILE_BYTES = 200 * 1024 * 1024
ANTHROPIC_MAX_REQUESTS = 100_000
WINDOW_S = 24 * 3600
_OPENAI_ENDPOINTS: dict[str, WireFormat] = {"/v1/chat/completions": OpenAIChatWire(),
                                            "/v1/responses": OpenAIResponsesWire()}
_ANTHROPIC = AnthropicWire()
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_JSON = [("content-type", "application/json")]

Outcome = Literal["succeeded", "errored", "expired", "canceled"]


def _id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def _rfc3339(seconds: float | None) -> str | None:
    return None if seconds is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass(frozen=True, slots=True)
class Knobs:
    """A batch's keys (see the module docstring)."""

    polls: int = 0
    errors: int = 0
    expire: int = 0

    def __or__(self, other: Knobs) -> Knobs:
        return Knobs(max(self.polls, other.polls), max(self.errors, other.errors), max(self.expire, other.expire))


def batch_knobs(model: str) -> tuple[str, Knobs]:
    """``model`` without its batch keys, and their values (a value that is not a whole number: 0)."""
    name, suffix = split_model(model)
    if not suffix:
        return model, Knobs()
    kept, values = [], {}
    for pair in suffix.split(","):
        key, _, value = pair.partition("=")
        if key in BATCH_KEYS:
            values[key.removeprefix("batch_")] = int(value) if value.isdigit() else 0
        else:
            kept.append(pair)
    return (f"{name}@{','.join(kept)}" if kept else name), Knobs(**values)


def answer_request(wire: WireFormat, body: Mapping[str, Any]) -> tuple[int, str, dict[str, Any]]:
    """A request's answer as its online endpoint gives it, not streamed: (status, request id, JSON body)."""
    request_id = wire.new_request_id()
    body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    model = str(body.get("model", ""))

    def failed(err: ErrorInfo) -> tuple[int, str, dict[str, Any]]:
        return err.status, request_id, json.loads(wire.error_body(err))

    try:
        prompt = wire.parse(body, None, {})
        prompt.attached_tokens = attached_tokens(wire.name, prompt.model, body)
        prompt.answers_tools = answers_tools(wire.name, body, prompt.model)
        prompt.reasoning_off = reasoning_off(wire.name, body)
    except WireError as exc:
        return failed(exc.info(model, request_id))
    try:
        scenario = parse_model(prompt.model)
    except ScenarioError as exc:
        message = f"Invalid fake-server scenario in model '{prompt.model}': {exc}"
        return failed(ErrorInfo(400, message, "model", prompt.model, request_id, code="invalid_scenario"))
    if scenario.status is not None:
        return failed(ErrorInfo(scenario.status, None, None, split_model(prompt.model)[0], request_id))
    gen = plan(prompt, scenario, request_id, int(time.time()), time.perf_counter_ns())
    return 200, request_id, json.loads(wire.body(gen))


def overloaded(wire: WireFormat, body: Mapping[str, Any]) -> tuple[int, str, dict[str, Any]]:
    """The provider's answer when it is overloaded (``batch_errors``): OpenAI's 500, Anthropic's overloaded_error."""
    request_id = wire.new_request_id()
    status = 529 if wire.name == "anthropic" else 500
    err = ErrorInfo(status, None, None, split_model(str(body.get("model", "")))[0], request_id)
    return status, request_id, json.loads(wire.error_body(err))


@dataclass(slots=True)
class _Line:
    custom_id: str
    body: dict[str, Any]
    fate: Literal["run", "error", "expire"] = "run"
    outcome: Outcome | None = None
    status: int = 0
    request_id: str = ""
    answer: dict[str, Any] | None = None


@dataclass(slots=True)
class _Job:
    """One batch of either provider: its requests, how many reads it waits, and how it ended."""

    id: str
    wire: WireFormat
    lines: list[_Line]
    polls: int
    created_at: float = field(default_factory=time.time)
    cancel_at: float | None = None
    ended_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def read(self) -> None:
        """A read of its status: one less to wait; past the last, the batch ends (its requests answered)."""
        if self.ended_at is not None:
            return
        if self.polls > 0 and self.cancel_at is None:
            self.polls -= 1
            return
        for line in self.lines:
            if self.cancel_at is not None:
                line.outcome = "canceled"
            elif line.fate == "expire":
                line.outcome = "expired"
            elif line.fate == "error":
                line.status, line.request_id, line.answer = overloaded(self.wire, line.body)
                line.outcome = "errored"
            else:
                line.status, line.request_id, line.answer = answer_request(self.wire, line.body)
                line.outcome = "succeeded" if line.status == 200 else "errored"
        self.ended_at = time.time()

    @classmethod
    def of(cls, prefix: str, wire: WireFormat, lines: list[tuple[_Line, Knobs]], **extra: Any) -> _Job:
        """A batch of ``lines``, shaped by the keys its requests give."""
        knobs = Knobs()
        for _, knob in lines:
            knobs |= knob
        held = [line for line, _ in lines]
        for line in held[:knobs.errors]:
            line.fate = "error"
        for line in held[len(held) - min(knobs.expire, len(held)):]:
            line.fate = "expire"
        return cls(_id(prefix), wire, held, knobs.polls, extra=extra)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for line in self.lines if line.outcome == outcome)


@dataclass(slots=True)
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed", "status_details": None,
                "expires_at": None}


def _multipart(req: Request) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a ``multipart/form-data`` body: name → (file name, bytes)."""
    head = f"Content-Type: {req.headers.get('content-type', '')}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + req.body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = (part.get_filename(), payload)
    return fields


class BatchError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class Batches:
    """The files and batches one fake server holds (in memory, for its life)."""

    def __init__(self) -> None:
        self.files: dict[str, _File] = {}
        self.openai: dict[str, _Job] = {}
        self.anthropic: dict[str, _Job] = {}

    def end_all(self) -> int:
        """End every batch still in progress at its next read; how many there were."""
        held = [job for job in (*self.openai.values(), *self.anthropic.values()) if job.ended_at is None]
        for job in held:
            job.polls = 0
        return len(held)

    async def handle(self, req: Request, resp: Responder, path: str) -> bool:
        """Answer ``req`` when it is a batch or file request (True), else leave it (False)."""
        anthropic = path.startswith("/v1/messages/batches")
        if not (anthropic or path.startswith(("/v1/files", "/v1/batches")) or path == "/_fake/batches/end"):
            return False
        try:
            status, body, headers = self._route(req, path, anthropic)
        except BatchError as exc:
            if anthropic:
                error: dict[str, Any] = {"type": "error", "error": {"type": exc.kind, "message": exc.message}}
            else:
                error = {"error": {"message": exc.message, "type": exc.kind, "param": None, "code": None}}
            status, body, headers = exc.status, compact(error).encode(), _JSON
        await resp.send(status, body, headers)
        return True

    def _route(self, req: Request, path: str, anthropic: bool) -> tuple[int, bytes, list[tuple[str, str]]]:
        parts = path.strip("/").split("/")
        method = req.method
        if path == "/_fake/batches/end" and method == "POST":
            return 200, compact({"ended": self.end_all()}).encode(), _JSON
        if anthropic:
            return self._anthropic(req, parts[3:])
        if parts[1] == "files":
            return self._files(req, parts[2:])
        return self._openai(req, parts[2:])

    # ------------------------------------------------------------------------------------------ OpenAI
    def _files(self, req: Request, rest: list[str]) -> tuple[int, bytes, list[tuple[str, str]]]:
        if not rest and req.method == "POST":
            fields = _multipart(req)
            purpose = fields.get("purpose", (None, b""))[1].decode(errors="replace")
            if "file" not in fields:
                raise BatchError(400, "Missing required parameter: 'file'.")
            if purpose not in ("batch", "assistants", "fine-tune", "vision", "user_data", "evals"):
                raise BatchError(400, f"Invalid value for 'purpose': '{purpose}'.")
            filename, data = fields["file"]
            entry = _File(_id("file-"), filename or "upload", purpose, data)
            self.files[entry.id] = entry
            return 200, compact(entry.as_json()).encode(), _JSON
        found = self.files.get(rest[0]) if rest else None
        if found is None:
            raise BatchError(404, f"No such File object: {rest[0] if rest else ''}")
        if len(rest) == 1 and req.method == "GET":
            return 200, compact(found.as_json()).encode(), _JSON
        if rest[1:] == ["content"] and req.method == "GET":
            return 200, found.data, [("content-type", "application/octet-stream")]
        raise BatchError(404, f"Invalid URL ({req.method} {req.path})")

    def _openai(self, req: Request, rest: list[str]) -> tuple[int, bytes, list[tuple[str, str]]]:
        if not rest and req.method == "POST":
            created = self._openai_create(_object(req))
            return 200, compact(self._openai_json(created)).encode(), _JSON
        job = self.openai.get(rest[0]) if rest else None
        if job is None:
            raise BatchError(404, f"No batch found with id '{rest[0] if rest else ''}'.")
        if len(rest) == 1 and req.method == "GET":
            job.read()
            return 200, compact(self._openai_json(job)).encode(), _JSON
        if rest[1:] == ["cancel"] and req.method == "POST":
            if job.ended_at is None and job.cancel_at is None:
                job.cancel_at = time.time()
            return 200, compact(self._openai_json(job)).encode(), _JSON
        raise BatchError(404, f"Invalid URL ({req.method} {req.path})")

    def _openai_create(self, body: dict[str, Any]) -> _Job:
        endpoint, window, file_id = body.get("endpoint"), body.get("completion_window"), body.get("input_file_id")
        wire = _OPENAI_ENDPOINTS.get(str(endpoint))
        if wire is None:
            raise BatchError(400, f"Invalid value for 'endpoint': {endpoint!r}. Supported values are: "
                             f"{', '.join(sorted(_OPENAI_ENDPOINTS))}.")
        if window != "24h":
            raise BatchError(400, f"Invalid value for 'completion_window': {window!r}. Supported values are: '24h'.")
        entry = self.files.get(str(file_id))
        if entry is None:
            raise BatchError(404, f"No such File object: {file_id}")
        if entry.purpose != "batch":
            raise BatchError(400, f"File {file_id} was not uploaded with purpose 'batch'.")
        lines, errors = [], []
        seen: set[str] = set()
        for number, text in enumerate(entry.data.decode(errors="replace").splitlines(), 1):
            if not text.strip():
                continue
            try:
                item = json.loads(text)
            except ValueError:
                errors.append({"code": "invalid_json_line", "message": "This line is not parseable as valid JSON.",
                               "param": None, "line": number})
                continue
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            if not isinstance(custom_id, str) or custom_id in seen:
                errors.append({"code": "duplicate_custom_id" if custom_id in seen else "missing_required_parameter",
                               "message": "The custom_id for this request is missing or a duplicate.",
                               "param": "custom_id", "line": number})
                continue
            if item.get("url") != endpoint or item.get("method") != "POST" or not isinstance(item.get("body"), dict):
                errors.append({"code": "mismatched_endpoint", "message": f"The url of this request must be "
                               f"{endpoint} and its method POST, with a body.", "param": "url", "line": number})
                continue
            seen.add(custom_id)
            model, knobs = batch_knobs(str(item["body"].get("model", "")))
            lines.append((_Line(custom_id, {**item["body"], "model": model}), knobs))
        if len(lines) > OPENAI_MAX_REQUESTS or len(entry.data) > OPENAI_MAX_FILE_BYTES:
            errors.append({"code": "too_many_requests", "message": f"A batch holds at most {OPENAI_MAX_REQUESTS:,} "
                           "requests and 200 MB.", "param": None, "line": None})
        job = _Job.of("batch_", wire, lines, endpoint=endpoint, input_file_id=file_id, metadata=body.get("metadata"))
        if errors or not lines:
            job.extra["errors"] = errors or [{"code": "empty_file", "message": "The input file holds no requests.",
                                              "param": None, "line": None}]
            job.ended_at = time.time()
        self.openai[job.id] = job
        job.extra["created"] = True
        return job

    def _openai_json(self, job: _Job) -> dict[str, Any]:
        created = int(job.created_at)
        failed = job.extra.get("errors")
        ended = job.ended_at is not None
        if failed:
            status = "failed"
        elif job.extra.pop("created", False):
            status = "validating"
        elif not ended:
            status = "cancelling" if job.cancel_at is not None else "in_progress"
        elif job.cancel_at is not None:
            status = "cancelled"
        else:
            status = "expired" if job.count("expired") else "completed"
        out: dict[str, Any] = {
            "id": job.id, "object": "batch", "endpoint": job.extra["endpoint"], "errors": None,
            "input_file_id": job.extra["input_file_id"], "completion_window": "24h", "status": status,
            "output_file_id": None, "error_file_id": None, "created_at": created,
            "in_progress_at": None if failed else created, "expires_at": created + WINDOW_S,
            "finalizing_at": None, "completed_at": None, "failed_at": None, "expired_at": None,
            "cancelling_at": None if job.cancel_at is None else int(job.cancel_at), "cancelled_at": None,
            "request_counts": {"total": len(job.lines), "completed": job.count("succeeded"),
                               "failed": len(job.lines) - job.count("succeeded") if ended else 0},
            "metadata": job.extra.get("metadata"),
        }
        if failed:
            out["errors"] = {"object": "list", "data": failed}
            out["failed_at"] = int(job.ended_at or created)
            out["request_counts"] = {"total": 0, "completed": 0, "failed": 0}
            return out
        if ended and status != "validating":
            at = int(job.ended_at or created)
            out["finalizing_at"] = at
            out[{"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}[status]] = at
            out["output_file_id"], out["error_file_id"] = self._openai_outputs(job)
        return out

    def _openai_outputs(self, job: _Job) -> tuple[str | None, str | None]:
        """The output and error files of an ended batch (made once)."""
        if "files" not in job.extra:
            good: list[str] = []
            bad: list[str] = []
            for line in job.lines:
                out: dict[str, Any] = {"id": _id("batch_req_"), "custom_id": line.custom_id, "response": None,
                                       "error": None}
                if line.answer is not None:
                    out["response"] = {"status_code": line.status, "request_id": line.request_id, "body": line.answer}
                elif line.outcome == "expired":
                    out["error"] = {"code": "batch_expired", "message": "This request could not be executed before "
                                    "the completion window expired."}
                else:
                    out["error"] = {"code": "batch_cancelled", "message": "This request was not executed because "
                                    "the batch was cancelled."}
                (good if line.outcome == "succeeded" else bad).append(compact(out))
            ids: list[str | None] = []
            for kind, rows in (("output", good), ("error", bad)):
                if not rows:
                    ids.append(None)
                    continue
                entry = _File(_id("file-"), f"{job.id}_{kind}.jsonl", "batch_output", "\n".join(rows).encode() + b"\n")
                self.files[entry.id] = entry
                ids.append(entry.id)
            job.extra["files"] = tuple(ids)
        files: tuple[str | None, str | None] = job.extra["files"]
        return files

    # --------------------------------------------------------------------------------------- Anthropic
    def _anthropic(self, req: Request, rest: list[str]) -> tuple[int, bytes, list[tuple[str, str]]]:
        host = req.headers.get("host", "127.0.0.1")
        if not rest and req.method == "POST":
            created = self._anthropic_create(_object(req))
            return 200, compact(self._anthropic_json(created, host)).encode(), _JSON
        job = self.anthropic.get(rest[0]) if rest else None
        if job is None:
            raise BatchError(404, f"No message batch with id {rest[0] if rest else ''!r}", "not_found_error")
        if len(rest) == 1 and req.method == "GET":
            job.read()
            return 200, compact(self._anthropic_json(job, host)).encode(), _JSON
        if rest[1:] == ["cancel"] and req.method == "POST":
            if job.ended_at is None and job.cancel_at is None:
                job.cancel_at = time.time()
            return 200, compact(self._anthropic_json(job, host)).encode(), _JSON
        if rest[1:] == ["results"] and req.method == "GET":
            if job.ended_at is None:
                raise BatchError(400, f"Batch {job.id} is still in progress: its results are not ready.")
            rows = [compact({"custom_id": line.custom_id, "result": _anthropic_result(line)}) for line in job.lines]
            return 200, ("\n".join(rows) + "\n").encode(), [("content-type", "application/binary")]
        raise BatchError(404, f"Invalid URL ({req.method} {req.path})", "not_found_error")

    def _anthropic_create(self, body: dict[str, Any]) -> _Job:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise BatchError(400, "requests: Field required (a non-empty list)")
        if len(requests) > ANTHROPIC_MAX_REQUESTS:
            raise BatchError(400, f"requests: a batch holds at most {ANTHROPIC_MAX_REQUESTS:,} requests")
        lines, seen = [], set()
        for index, item in enumerate(requests):
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            params = item.get("params") if isinstance(item, dict) else None
            if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
                raise BatchError(400, f"requests.{index}.custom_id: String should match pattern "
                                 "'^[a-zA-Z0-9_-]{1,64}$'")
            if custom_id in seen:
                raise BatchError(400, f"requests.{index}.custom_id: duplicate custom_id {custom_id!r}")
            if not isinstance(params, dict):
                raise BatchError(400, f"requests.{index}.params: Field required")
            if params.get("stream"):
                raise BatchError(400, f"requests.{index}.params.stream: streaming is not supported in batches")
            seen.add(custom_id)
            model, knobs = batch_knobs(str(params.get("model", "")))
            lines.append((_Line(custom_id, {**params, "model": model}), knobs))
        job = _Job.of("msgbatch_", _ANTHROPIC, lines)
        self.anthropic[job.id] = job
        return job

    def _anthropic_json(self, job: _Job, host: str) -> dict[str, Any]:
        ended = job.ended_at is not None
        status = "ended" if ended else "canceling" if job.cancel_at is not None else "in_progress"
        return {
            "id": job.id, "type": "message_batch", "processing_status": status,
            "request_counts": {"processing": 0 if ended else len(job.lines), "succeeded": job.count("succeeded"),
                               "errored": job.count("errored"), "canceled": job.count("canceled"),
                               "expired": job.count("expired")},
            "ended_at": _rfc3339(job.ended_at), "created_at": _rfc3339(job.created_at),
            "expires_at": _rfc3339(job.created_at + WINDOW_S), "archived_at": None,
            "cancel_initiated_at": _rfc3339(job.cancel_at),
            "results_url": f"http://{host}/v1/messages/batches/{job.id}/results" if ended else None,
        }


def _anthropic_result(line: _Line) -> dict[str, Any]:
    if line.outcome == "succeeded":
        return {"type": "succeeded", "message": line.answer}
    if line.outcome == "errored":
        error = dict(line.answer or {})
        error.setdefault("request_id", line.request_id)
        return {"type": "errored", "error": error}
    return {"type": line.outcome or "expired"}


def _object(req: Request) -> dict[str, Any]:
    try:
        body = json.loads(req.body)
    except (ValueError, UnicodeDecodeError):
        raise BatchError(400, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BatchError(400, "The request body must be a JSON object.")
    return body
