"""The one background writer: every finished call becomes a trace row without touching the caller's loop.

``write`` only puts the record on a queue. A daemon thread turns records into rows (redacting text),
and commits them in batches: at most ``max_batch`` rows, or whatever arrived within ``max_delay_s``
of the first. ``close`` (also run at exit) flushes everything, so a normal exit loses nothing; a crash
loses at most the batch in flight, and WAL keeps the committed rows intact. When the queue is idle
the thread catches up the full-text index, so searching never slows writing.

Nothing stops the thread: a call whose rows cannot be stored (text that is not valid Unicode, a value of
the wrong type) is said on stderr and skipped, the other calls of its batch written; storage trouble (a
full disk, a damaged or read-only file) is said once per kind. :meth:`TraceWriter.confirm` gives a face
the ids that were really written.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import sqlite3
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workbench.core.call_record import CallRecord
from workbench.core.errors import one_line
from workbench.core.plain_data import as_data
from workbench.core.reasoning_items import ReasoningItem
from workbench.core.request import Message, Params
from workbench.core.traces import rollup
from workbench.core.traces.columns import insert
from workbench.core.traces.context import NO_CONTEXT, CallContext
from workbench.core.traces.ids import id_time, new_id
from workbench.core.traces.redact import Redactor
from workbench.core.traces.store import connect, index_pending, storage_error, storage_trouble

_INSERT_CALL = insert("calls")
_INSERT_PAYLOAD = insert("payloads")
_INSERT_TAG = insert("call_tags").replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)
_IDLE_INDEX_S = 0.5
_JSON = json.JSONEncoder(ensure_ascii=False)


Row = dict[str, Any]
"""A row by column name (:mod:`workbench.core.traces.columns`)."""


def rows_for(record: CallRecord, context: CallContext, redactor: Redactor,
             call_id: str) -> tuple[Row, Row, list[Row]]:
    """(calls row, payloads row, tag rows) for a finished call, each a mapping by column name."""
    usage, timing, error, request = record.usage, record.timing, record.error, record.request
    redact = redactor.text
    provider, _, model = record.target.partition("/")
    call: Row = {
        "id": call_id, "ts": record.started_at or id_time(call_id), "provider": provider, "model": model,
        "target": record.target, "served_by": record.served_by, "endpoint": None,
        "prompt_name": context.prompt_name, "prompt_version": context.prompt_version,
        "session_id": context.session_id, "eval_run_id": context.eval_run_id,
        "status": "ok" if error is None else "error", "error_class": None if error is None else error.error_class,
        "error": None if error is None else redact(str(error)),
        "finish_reason": None if record.finish is None else record.finish.value, "finish_raw": record.finish_raw,
        "input_tokens": None if usage is None else usage.input_tokens,
        "output_tokens": None if usage is None else usage.output_tokens,
        "cache_read_tokens": None if usage is None else usage.cache_read_tokens,
        "cache_write_tokens": None if usage is None else usage.cache_write_tokens,
        "reasoning_tokens": None if usage is None else usage.reasoning_tokens,
        "usage_estimated": record.usage_estimated,
        "cost_usd": None if record.cost_usd is None else float(record.cost_usd),
        "ttft_ms": timing.ttft_ms, "latency_ms": timing.latency_ms,
        "tokens_per_s": None if usage is None else timing.tokens_per_s(usage.output_tokens),
        "queue_ms": timing.queue_ms, "attempt_count": len(record.attempts) or 1, "request_id": record.request_id,
        "total_ms": record.total_ms, "total_ttft_ms": record.total_ttft_ms, "eval_cell": context.eval_cell,
        "ttft_reasoning_ms": timing.ttft_reasoning_ms, "ttft_answer_ms": timing.ttft_answer_ms,
    }
    request_json = None if redactor.metadata_only else _JSON.encode(
        {"system": redact(request.system),
         "messages": [_message(m, redact) for m in request.messages],
         "params": _params(request.params)})
    attempts = _JSON.encode([{**a.summary(), "error_class": a.error_class, "wait_reason": a.wait_reason,
                              "latency_ms": a.latency_ms, "error": redact(a.error), "output": redact(a.output)}
                             for a in record.attempts]) if record.attempts else "[]"
    origin = timing.sent_ns or timing.started_ns or 0
    chunks = struct.pack(f"<{len(timing.chunk_ns)}f", *[(t - origin) / 1e6 for t in timing.chunk_ns])
    opaque = not redactor.metadata_only  # signatures and reasoning items, kept to continue after the calls
    items = [_item(item, redact) for item in record.reasoning_to_send()] if opaque else []
    signed = opaque and bool(items or any(c.signature for c in record.tool_calls))  # what only its origin takes
    tool_calls = _JSON.encode([{"id": c.id, "name": c.name, "arguments": redact(c.arguments),
                                **({"signature": c.signature} if c.signature and opaque else {}),
                                **({"reasoning_items": items} if i == 0 and items else {}),
                                **({"origin": record.origin} if i == 0 and signed and record.origin else {})}
                               for i, c in enumerate(record.tool_calls)]) if record.tool_calls else None
    payload: Row = {"call_id": call_id, "request_json": request_json, "response_text": redact(record.text),
                    "reasoning_text": redact(record.reasoning or None), "attempts_json": attempts, "chunk_ms": chunks,
                    "tool_calls_json": tool_calls, "refusal_text": redact(record.refusal),
                    "refusal_category": record.refusal_category,
                    "blocks_json": _JSON.encode([{**b.summary(), "content": redact(b.content)} for b in record.blocks])
                    if record.blocks else None}
    return call, payload, [{"call_id": call_id, "tag": tag} for tag in context.tags]


def _message(message: Message, redact: Callable[[str | None], str | None]) -> dict[str, Any]:
    """A turn as stored: role and text, a tool-call turn's calls or a tool result's call id (texts redacted), and
    what its attachments were (``attached``: name, media type, size, sha256; never the bytes)."""
    out: dict[str, Any] = {"role": message.role, "content": redact(message.content)}
    if message.tool_calls:
        out["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": redact(c.arguments),
                              **({"signature": c.signature} if c.signature else {})} for c in message.tool_calls]
    if message.reasoning_items:  # what the turn sends back to its provider (a later continue sends them again)
        out["reasoning_items"] = [_item(item, redact) for item in message.reasoning_items]
    if message.origin is not None and (message.reasoning_items or any(c.signature for c in message.tool_calls)):
        out["origin"] = message.origin
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.attachments:  # what each file was (hash, type, size), never its bytes
        out["attached"] = [{**a.meta(), "name": redact(a.name)} for a in message.attachments]
    return out


def _item(item: ReasoningItem, redact: Callable[[str | None], str | None]) -> dict[str, Any]:
    """A reasoning item as stored: its readable text redacted, its opaque parts as they are."""
    out = as_data(item, exclude_defaults=True)
    if item.text:
        out["text"] = redact(item.text)
    if item.summary:
        out["summary"] = [redact(text) for text in item.summary]
    return out


@functools.lru_cache(maxsize=64)
def _params_dump(params: Params) -> dict[str, Any]:
    return as_data(params, exclude_defaults=True)


def _params(params: Params) -> dict[str, Any]:
    """The request's parameters as stored (set ones only); the same few sets recur, so they are dumped once."""
    try:
        return _params_dump(params)
    except TypeError:  # unhashable (a JSON schema): not cached
        return as_data(params, exclude_defaults=True)


class TraceWriter:
    def __init__(self, path: Path, redactor: Redactor | None = None, *, max_batch: int = 100,
                 max_delay_s: float = 0.1, catch_up: bool = True) -> None:
        """``catch_up=False``: the rollups and the search index are left to catch up later (the next
        writer, ``stats`` or ``search`` does it); ``bench/traces.py`` measures them apart that way."""
        self.path = path
        self.catch_up = catch_up
        self.redactor = redactor or Redactor.build()
        self.max_batch, self.max_delay_s = max_batch, max_delay_s
        self._pending: deque[tuple[CallRecord, CallContext, str]] = deque()
        self._arrived = threading.Event()
        """Set by ``write`` (and ``close``) whenever it is clear: the thread waits on it."""
        self._lock = threading.Lock()
        self._committed = threading.Condition()
        self._queued = self._done = 0
        self._conn = connect(path)  # opened here so a bad path fails now, with a clear message
        # Commits never checkpoint: the checkpointer does it from its own thread and connection (inside
        # SQLite, without the GIL), so the two share the machine's cores instead of taking turns.
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._conn.execute("PRAGMA cache_size=-65536")
        self._checkpointer = Checkpointer(path)
        self._thread = threading.Thread(target=self._run, name="workbench-traces", daemon=True)
        self._closed = False
        self.written = 0
        self._lost: set[str] = set()
        """Ids of calls that could not be written (each said on stderr, or counted in a line already said)."""
        self._said: set[str] = set()
        self._unsaid = 0
        self._flushers = 0
        self._thread.start()
        atexit.register(self.close)

    def write(self, record: CallRecord, context: CallContext = NO_CONTEXT) -> str:
        """Queue a finished call; returns the id its row will have."""
        call_id = new_id(record.started_at)
        with self._lock:
            if not self._closed:
                self._pending.append((record, context, call_id))
                self._queued += 1
            else:  # (after close: never written)
                self._lost.add(call_id)
        if not self._arrived.is_set():
            self._arrived.set()
        return call_id

    @property
    def backlog(self) -> int:
        """Calls queued and not committed yet (what the queue holds in memory)."""
        return self._queued - self._done

    def flush(self) -> None:
        """Block until everything queued so far is committed (the thread commits at once, without waiting
        for a batch to fill)."""
        with self._lock:
            queued = self._queued
            self._flushers += 1
        self._arrived.set()
        try:
            with self._committed:
                self._committed.wait_for(lambda: self._done >= queued or not self._thread.is_alive())
        finally:
            with self._lock:
                self._flushers -= 1

    def confirm(self, ids: Sequence[str | None]) -> list[str | None]:
        """``ids`` (from :meth:`write`) once committed, each ``None`` if its call could not be written (so a
        face never shows the id of a row that does not exist)."""
        self.flush()
        with self._lock:
            return [None if call_id is None or call_id in self._lost else call_id for call_id in ids]

    @property
    def lost(self) -> int:
        """Calls that could not be written."""
        return len(self._lost)

    def wait_for_backlog(self, at_most: int) -> None:
        """Block until at most ``at_most`` calls are queued and not committed (or the writer's thread is
        gone: waiting would never end)."""
        with self._committed:
            while self.backlog > at_most and self._thread.is_alive():
                self._committed.wait(0.5)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._arrived.set()
        self._thread.join()
        self._checkpointer.close()
        self._conn.close()
        atexit.unregister(self.close)
        if self._unsaid:  # lines were said for the first failures of each kind; the count covers them all
            _say(f"{self.lost} calls in all were not written to the trace log {self.path}")

    def _run(self) -> None:
        pending, arrived = self._pending, self._arrived
        while True:
            arrived.clear()
            if not pending and not self._closed:
                if not arrived.wait(_IDLE_INDEX_S) and self.catch_up:
                    self._catch_up(2_000)
                continue
            deadline = time.monotonic() + self.max_delay_s
            while len(pending) < self.max_batch and not self._closed and not self._flushers:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                arrived.clear()
                if len(pending) < self.max_batch:
                    arrived.wait(remaining)
            items = [pending.popleft() for _ in range(min(len(pending), self.max_batch))]
            if items:
                try:
                    self._commit(items)
                except Exception as exc:  # never let the thread die: the calls after these still get written
                    self._failed(items, exc)
                with self._committed:
                    self._done += len(items)
                    self._committed.notify_all()
            if self._closed and not pending:
                if self.catch_up:
                    self._catch_up(5_000)
                return

    def _catch_up(self, batch: int) -> None:
        """The rollups and the search index (what fails is said once; the next idle moment tries again)."""
        try:
            rollup.roll_pending(self._conn, batch=batch)
            index_pending(self._conn, batch=batch)
        except Exception as exc:
            if self._conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.rollback()
            self._say_once(exc, "could not catch up the trace log's search index and rollups")

    def _failed(self, items: list[tuple[CallRecord, CallContext, str]], exc: BaseException) -> None:
        """``items`` were not written because of ``exc``: their ids are lost, and it is said (once per kind of
        storage trouble, once per call otherwise)."""
        with self._lock:
            self._lost.update(call_id for _, _, call_id in items)
        if storage_trouble(exc):
            count = "1 call was" if len(items) == 1 else f"{len(items)} calls were"
            if not self._say_once(exc, f"{count} not written to the trace log"):
                self._unsaid += len(items)
            return
        reason = ("its text holds characters that are not valid Unicode (lone surrogates)"
                  if isinstance(exc, UnicodeEncodeError) else one_line(f"{type(exc).__name__}: {exc}", 200))
        for record, _, call_id in items:
            _say(f"call {call_id} ({one_line(str(record.target), 80)}) was not written to the trace log: {reason}")

    def _say_once(self, exc: BaseException, what: str) -> bool:
        """Say ``what`` and why on stderr, unless this kind of failure was said already; whether it was said."""
        code = getattr(exc, "sqlite_errorcode", None)  # by SQLite's primary code: a full disk is one kind
        kind = f"sqlite {code & 0xFF}" if isinstance(code, int) else type(exc).__name__
        if kind in self._said:
            return False
        self._said.add(kind)
        if isinstance(exc, sqlite3.Error):
            error = storage_error(exc, self.path)
            _say(f"{what}: {error}", error.hint)
        else:
            _say(f"{what} {self.path}: {one_line(f'{type(exc).__name__}: {exc}', 200)}")
        return True

    def _commit(self, items: list[tuple[CallRecord, CallContext, str]]) -> None:
        """Write ``items`` in one transaction. A call whose rows cannot be made or stored (text that is not
        valid Unicode, a value of the wrong type) is said and skipped; the others are written."""
        rows: list[tuple[tuple[CallRecord, CallContext, str], Row, Row, list[Row]]] = []
        for item in items:
            record, context, call_id = item
            try:
                rows.append((item, *rows_for(record, context, self.redactor, call_id)))
            except Exception as exc:
                self._failed([item], exc)
        try:
            self._insert(rows)
        except Exception as exc:
            if storage_trouble(exc) or len(rows) == 1:
                self._failed([row[0] for row in rows], exc)
                return
            for at, row in enumerate(rows):  # which call it was: each on its own
                try:
                    self._insert([row])
                except Exception as one:
                    if storage_trouble(one):
                        self._failed([later[0] for later in rows[at:]], one)
                        return
                    self._failed([row[0]], one)
                else:
                    self.written += 1
            return
        self.written += len(rows)

    def _insert(self, rows: list[tuple[tuple[CallRecord, CallContext, str], Row, Row, list[Row]]]) -> None:
        with self._conn:
            self._conn.executemany(_INSERT_CALL, [call for _, call, _, _ in rows])
            self._conn.executemany(_INSERT_PAYLOAD, [payload for _, _, payload, _ in rows])
            self._conn.executemany(_INSERT_TAG, [tag for _, _, _, tags in rows for tag in tags])


def _say(line: str, hint: str | None = None) -> None:
    """One line on stderr (and the next step, if any), as the CLI says its errors."""
    print(f"workbench: {line}" + (f"\n  hint: {hint}" if hint else ""), file=sys.stderr, flush=True)


class Checkpointer:
    """Checkpoints a store's WAL from a thread of its own whenever it has grown past ``wal_bytes``.

    Passive checkpoints never block the writer or readers; what a reader still needs stays in the WAL
    for the next round. Closing the last connection checkpoints the rest, as SQLite always does.
    """

    def __init__(self, path: Path, *, wal_bytes: int = 32 << 20, every_s: float = 0.1) -> None:
        self.wal = Path(f"{path}-wal")
        self.wal_bytes, self.every_s = wal_bytes, every_s
        self._conn = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="workbench-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                if self.wal.stat().st_size >= self.wal_bytes:
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except (OSError, sqlite3.Error):
                continue  # no WAL yet, or busy: the next round tries again

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()
