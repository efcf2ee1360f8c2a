"""The one background writer: every finished call becomes a trace row without touching the caller's loop.

``write`` only puts the record on a queue. A daemon thread turns records into rows (redacting text),
and commits them in batches: at most ``max_batch`` rows, or whatever arrived within ``max_delay_s``
of the first. ``close`` (also run at exit) flushes everything, so a normal exit loses nothing; a crash
loses at most the batch in flight, and WAL keeps the committed rows intact. When the queue is idle
the thread catches up the full-text index, so searching never slows writing.
"""

from __future__ import annotations

import atexit
import json
import queue
import sqlite3
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.call import CallRecord
from workbench.core.traces import rollup
from workbench.core.traces.ids import id_time, new_id
from workbench.core.traces.redact import Redactor
from workbench.core.traces.store import CALL_COLUMNS, PAYLOAD_COLUMNS, connect, index_pending

_INSERT_CALL = f"INSERT OR REPLACE INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({', '.join('?' * len(CALL_COLUMNS))})"
_INSERT_PAYLOAD = (f"INSERT OR REPLACE INTO payloads ({', '.join(PAYLOAD_COLUMNS)}) "
                   f"VALUES ({', '.join('?' * len(PAYLOAD_COLUMNS))})")
_INSERT_TAG = "INSERT OR IGNORE INTO call_tags (call_id, tag) VALUES (?, ?)"
_IDLE_INDEX_S = 0.5


@dataclass(frozen=True, slots=True)
class CallContext:
    """Where a call came from: what the trace browser filters on besides the call itself."""

    prompt_name: str | None = None
    prompt_version: int | None = None
    session_id: str | None = None
    eval_run_id: str | None = None
    tags: tuple[str, ...] = ()


def rows_for(record: CallRecord, context: CallContext, redactor: Redactor,
             call_id: str) -> tuple[tuple[Any, ...], tuple[Any, ...], list[tuple[str, str]]]:
    """(calls row, payloads row, tag rows) for a finished call."""
    usage, timing = record.usage, record.timing
    provider, _, model = record.target.partition("/")
    request = record.request
    tps = record.tokens_per_s
    call = (
        call_id, record.started_at or id_time(call_id), provider, model, record.target, record.served_by, None,
        context.prompt_name, context.prompt_version, context.session_id, context.eval_run_id,
        "error" if record.error is not None else "ok",
        None if record.error is None else record.error.error_class,
        None if record.error is None else redactor.text(str(record.error)),
        None if record.finish is None else record.finish.value, record.finish_raw,
        usage.input_tokens if usage else None, usage.output_tokens if usage else None,
        usage.cache_read_tokens if usage else None, usage.cache_write_tokens if usage else None,
        usage.reasoning_tokens if usage else None, record.usage_estimated,
        None if record.cost_usd is None else float(record.cost_usd),
        timing.ttft_ms, timing.latency_ms, tps, timing.queue_ms, max(len(record.attempts), 1), record.request_id,
    )
    messages = [{"role": m.role, "content": redactor.text(m.content)} for m in request.messages]
    request_json = None if redactor.metadata_only else json.dumps(
        {"system": redactor.text(request.system), "messages": messages,
         "params": request.params.model_dump(exclude_defaults=True)}, ensure_ascii=False)
    attempts = [{**a.summary(), "error_class": a.error_class, "wait_reason": a.wait_reason,
                 "latency_ms": a.latency_ms, "error": redactor.text(a.error), "output": redactor.text(a.output)}
                for a in record.attempts]
    origin = timing.sent_ns or timing.started_ns or 0
    chunks = struct.pack(f"<{len(timing.chunk_ns)}f", *((t - origin) / 1e6 for t in timing.chunk_ns))
    payload = (call_id, request_json, redactor.text(record.text), redactor.text(record.reasoning or None),
               json.dumps(attempts, ensure_ascii=False), chunks)
    return call, payload, [(call_id, tag) for tag in context.tags]


class TraceWriter:
    def __init__(self, path: Path, redactor: Redactor | None = None, *, max_batch: int = 100,
                 max_delay_s: float = 0.1) -> None:
        self.path = path
        self.redactor = redactor or Redactor.build()
        self.max_batch, self.max_delay_s = max_batch, max_delay_s
        self._queue: queue.Queue[tuple[CallRecord, CallContext, str] | None] = queue.Queue()
        self._conn = connect(path)  # opened here so a bad path fails now, with a clear message
        # Checkpoint the WAL every ~40 MB instead of every 4 MB, with a cache to match: fewer, larger
        # checkpoints and fewer page reads while writing a batch.
        self._conn.execute("PRAGMA wal_autocheckpoint=10000")
        self._conn.execute("PRAGMA cache_size=-65536")
        self._thread = threading.Thread(target=self._run, name="workbench-traces", daemon=True)
        self._closed = False
        self.written = 0
        self._thread.start()
        atexit.register(self.close)

    def write(self, record: CallRecord, context: CallContext = CallContext()) -> str:
        """Queue a finished call; returns the id its row will have."""
        call_id = new_id(record.started_at)
        self._queue.put((record, context, call_id))
        return call_id

    def flush(self) -> None:
        """Block until everything queued so far is committed."""
        self._queue.join()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        self._conn.close()
        atexit.unregister(self.close)

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=_IDLE_INDEX_S)
            except queue.Empty:
                index_pending(self._conn, batch=2_000)
                continue
            batch = [first]
            deadline = time.monotonic() + self.max_delay_s
            while first is not None and len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get(timeout=max(deadline - time.monotonic(), 0)))
                except queue.Empty:
                    break
                if batch[-1] is None:
                    break
            items = [item for item in batch if item is not None]
            if items:
                self._commit(items)
            for _ in batch:
                self._queue.task_done()
            if len(items) < len(batch):  # the close marker
                index_pending(self._conn)
                return

    def _commit(self, items: list[tuple[CallRecord, CallContext, str]]) -> None:
        calls, payloads, tags = [], [], []
        for record, context, call_id in items:
            call, payload, tag_rows = rows_for(record, context, self.redactor, call_id)
            calls.append(call)
            payloads.append(payload)
            tags.extend(tag_rows)
        try:
            with self._conn:
                self._conn.executemany(_INSERT_CALL, calls)
                self._conn.executemany(_INSERT_PAYLOAD, payloads)
                self._conn.executemany(_INSERT_TAG, tags)
                rollup.add_batch(self._conn, CALL_COLUMNS, calls, tags)  # the rollups commit with the rows
        except sqlite3.Error as exc:  # never lose the batch silently: say so on stderr, keep running
            import sys

            print(f"workbench: could not write {len(items)} trace rows to {self.path}: {exc}", file=sys.stderr)
            return
        self.written += len(items)
