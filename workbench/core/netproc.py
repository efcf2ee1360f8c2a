"""The network process: races run in a child process, and their records are mirrored here.

Why a process and not only a thread: in CPython a UI thread busy in Python code (layout, Markdown,
a table redraw) holds the GIL, and a network thread that wakes up for a chunk must wait for it before
it can take the chunk's timestamp. ``bench/ttft_accuracy.py`` measures that skew at several
milliseconds when the UI is busy. In a child process the network loop has an interpreter of its own:
what the UI does cannot delay a read or a timestamp. All stamps are ``time.perf_counter_ns()``, a
system-wide monotonic clock, so they mean the same in both processes.

The child (``python -m workbench.core.netchild``) runs each :class:`~workbench.core.race.Race` on its
event loop. The two sides exchange typed messages (frozen dataclasses, below) as length-prefixed
pickles: :class:`StartRace`, :class:`CancelRace` and :class:`Stop` go down its stdin; :class:`Events`
(every stream event decoded in one loop turn), :class:`Final` (a record once final) and :class:`Done`
come back on its stdout. A plain child process (not ``multiprocessing``) keeps callers free of any
main-module guard and works on every platform.

Settling happens here, not in the child: usage estimates for providers that sent none, and costs,
are computed by a thread of each :class:`RemoteRace` once the child's ``Done`` came. The price data a
race needs is loaded when it starts, and the tokenizer once its streams have run a moment (counted
from the child's first events, so a child still starting up does not count): in this process, so
neither ever holds the child's loop (or a timestamp) back, and settling after the last stream is
instant. This module imports little (no pydantic model, no httpx2) until a race starts, so a command
can start the child first and let its start-up overlap its own.

Supervision. Each child is a *generation* (:class:`_Child`) with a reader thread, which applies the
messages to :attr:`RemoteRace.records` (a UI may read them at any time), and a writer thread, so that
sending a command never blocks the caller on a full pipe. When a generation ends — the child exited or
was killed, or a message could not be read or applied — the reader fails every unfinished record of its
open races with a one-line reason and marks them finished: a wait never hangs on a dead child. The next
:meth:`NetworkProcess.race` starts a fresh child (and calls ``on_respawn`` with the reason). The child's
stderr, and any traceback the parent's reader hits, go to :func:`network_log_path` (``network.log`` in
the user log directory, or ``$WORKBENCH_LOG_DIR``), never to the terminal.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import subprocess
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.core.errors import ProviderError, WorkbenchError
from workbench.core.netlog import append_log, exit_text, network_log_path, one_line
from workbench.core.netmessages import (
    CancelRace,
    Done,
    Events,
    Final,
    StartRace,
    Stop,
    ToChild,
    encode_frame,
    read_frame,
)
from workbench.core.netspawn import Spawned, spawn

if TYPE_CHECKING:  # imported where used: starting a child must not wait for pydantic models and httpx2
    from workbench.core.call_record import CallRecord
    from workbench.core.network import Network
    from workbench.core.policy import PolicySet
    from workbench.core.pricing import PriceBook
    from workbench.core.registry import ProviderSpec
    from workbench.core.request import ChatRequest

if TYPE_CHECKING:
    from workbench.core.call_record import apply_event
else:

    def apply_event(record, event):
        """:func:`workbench.core.call_record.apply_event`, which replaces this module global on first use."""
        global apply_event
        from workbench.core.call_record import apply_event

        apply_event(record, event)

EXIT_GRACE_S = 2.0
"""How long a child that closed its end of the pipe may take to exit before it is killed."""
SETTLE_SLACK_S = 60.0
"""Added to a race's wait bound: estimating usage (a tokenizer's first load) and pricing after the streams."""
PREPARE_TOKENIZER_AFTER_S = 0.1
"""A race still running this long after the child's first events for it loads the tokenizer meanwhile
(in this process), in case a provider sends no usage: settling after the last stream is then instant.
A shorter race loads it only if needed."""
ABANDON_SETTLE_S = 10.0
"""How long :meth:`RemoteRace.abandon` waits for the abandoned records to be settled (a tokenizer to load)."""

# -- the wait bound ---------------------------------------------------------------------------------


def wait_bound(policies: PolicySet, targets: Sequence[str], request: ChatRequest | None = None) -> float:
    """The longest a race of ``targets`` can legitimately take, in seconds: for the slowest target, every
    attempt (retries, schema re-asks, each fallback's own) running to its total timeout plus connect,
    the longest backoff between them, plus :data:`SETTLE_SLACK_S`. Past it, something is stuck."""
    structured = request is not None and request.params.json_schema is not None

    def chain(target: str) -> float:
        seconds = 0.0
        for link in (target, *policies.for_target(target).fallbacks):
            policy = policies.for_target(link)
            retry = policy.retry
            attempts = (retry.max_retries + 1) * (policy.structured_retries + 1 if structured else 1)
            backoff = max(retry.cap_s, retry.rate_limit_cap_s, retry.retry_after_cap_s)
            seconds += attempts * (policy.timeouts.total + policy.timeouts.connect) + (attempts - 1) * backoff
        return seconds

    return max((chain(t) for t in targets), default=0.0) + SETTLE_SLACK_S


# -- races ------------------------------------------------------------------------------------------


class RemoteRace:
    """A race running in the network process; ``records`` fill in as its events arrive.

    The child sends the records as the streams left them. Usage estimates (for providers that sent
    none) and costs are computed here, by a thread of the race (:meth:`_settle`): the price data the
    race needs is loaded when it starts, the tokenizer too once it has run
    :data:`PREPARE_TOKENIZER_AFTER_S`, all while the streams run and in this process, so the child's
    loop (and its timestamps) never waits for them, and settling after the last stream is instant."""

    def __init__(self, race_id: int, request: ChatRequest, targets: Sequence[str], owner: _Child,
                 prices: PriceBook | None = None, settles: Sequence[str] = (),
                 on_settled: Callable[[int, CallRecord], None] | None = None) -> None:
        from workbench.core.call_record import CallRecord

        self.race_id = race_id
        self.request = request
        self.records = [CallRecord(target, request) for target in targets]
        self.failure: str | None = None
        """Why the race was ended here rather than by the child (it stopped, or was abandoned); else ``None``."""
        self.prices = prices
        """The price book the records are settled with (``None``: the default one)."""
        self._settles = tuple(settles) or tuple(targets)
        """Every target a record may be served by (fallbacks included): what to load prices for."""
        self._heard = threading.Event()
        """Set when the child first sent something for this race (its streams run), or when it ended."""
        self._ended = threading.Event()
        """Set when the child's Done came with every record final (then the records are settled), or when
        the race failed here."""
        self._finished = threading.Event()
        self._owner = owner
        self._callbacks: list[Callable[[], None]] = []
        self._callbacks_lock = threading.Lock()
        self._on_settled = on_settled
        self._to_settle: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        """Indexes of records that became final (the settling thread settles each at once); ``None``: no more."""
        self._settling = False

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every record is final (usage estimates included); False on timeout."""
        return self._finished.wait(timeout)

    def add_done_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the thread that finished the race, or here if already finished) once the
        race is done: an event loop can wait for a race without a thread of its own."""
        with self._callbacks_lock:
            if not self._finished.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def _set_finished(self) -> None:
        with self._callbacks_lock:
            self._finished.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def cancel(self) -> None:
        """Stop every stream still running; their records keep the partial output. Never blocks."""
        if not self.done:
            self._owner.send(CancelRace(self.race_id))

    def abandon(self, reason: str) -> None:
        """Stop mirroring this race: fail its unfinished records with ``reason`` (what they streamed is
        settled) and return once it is finished (and ask the child to cancel it). For a caller whose bounded
        wait ran out."""
        if self._owner.forget(self.race_id):
            self._owner.send(CancelRace(self.race_id))
            self._fail(reason)
            if not self._finished.wait(ABANDON_SETTLE_S):  # settling what streamed is local work, but bounded
                self._set_finished()

    def _fail(self, reason: str, hint: str | None = None) -> None:
        """Fail the records still open with ``reason``; they are settled (their partial output estimated and
        priced) like the others, then the race is finished."""
        try:
            self.failure = reason
            for index, record in enumerate(self.records):
                if not record.done:
                    record.fail(ProviderError(record.target, reason, hint))
                    self._to_settle.put(index)
        finally:
            self._ended.set()
            self._heard.set()
            self._to_settle.put(None)
            if not self._settling:  # never started: nothing streamed, nothing to settle
                self._set_finished()

    def _final(self, index: int) -> None:
        """Record ``index`` is final (the child sent it whole): settle it now, not when the race ends."""
        self._to_settle.put(index)

    def _start_settling(self) -> None:
        self._settling = True
        threading.Thread(target=self._settle, name=f"workbench-settle-{self.race_id}", daemon=True).start()

    def _prepare(self, targets: Sequence[str], prices: PriceBook | None, tokenizer: bool = False) -> None:
        from workbench.core.race import prepare

        try:
            prepare(targets, prices, tokenizer)
        except Exception as exc:  # settling meets it again, and reports it per record
            append_log(self._owner.log_path, f"preparing to settle race {self.race_id} failed: {exc!r}")

    def _settle(self) -> None:
        """The race's settling thread: load the price data while the streams run, then settle each record
        (estimate missing usage, price it) as soon as it is final, and finish the race once the child's
        Done has come (or the race failed here) and every record is settled."""
        from workbench.core.pricing import PriceBook

        prices = self.prices or PriceBook()
        threading.Thread(target=self._prepare_tokenizer, name=f"workbench-tokenizer-{self.race_id}",
                         daemon=True).start()
        try:
            self._prepare(self._settles, prices)
            settled: set[int] = set()
            while (index := self._to_settle.get()) is not None:
                if index not in settled:
                    settled.add(index)
                    self._settle_one(index, prices)
        finally:
            self._set_finished()

    def _prepare_tokenizer(self) -> None:
        """Load the tokenizer once the streams have run a moment (counted from their first events, not from a
        child still starting): an estimate then costs nothing when a stream ends; a race over by then (most
        report their usage) never loads it needlessly."""
        self._heard.wait()
        if not self._ended.wait(PREPARE_TOKENIZER_AFTER_S):
            self._prepare([r.target for r in self.records], None, True)

    def _settle_one(self, index: int, prices: PriceBook) -> None:
        from workbench.core.errors import UnexpectedError
        from workbench.core.race import settle

        record = self.records[index]
        try:
            settle(record, prices)
        except Exception as exc:
            record.fail(UnexpectedError(record.target, exc))
            record.settled = True
        if self._on_settled is not None:
            try:
                self._on_settled(index, record)
            except Exception as exc:  # the face's callback: logged, never the race's end
                append_log(self._owner.log_path, f"race {self.race_id}: on_settled failed: {exc!r}")


class _Child:
    """One network child process with its reader and writer threads. Once stopped, it stays stopped."""

    def __init__(self, log_path: Path, spawned: Spawned | None = None) -> None:
        if spawned is None:
            try:
                spawned = spawn(log_path)
            except OSError as exc:
                raise WorkbenchError(f"could not start the network process: {exc}",
                                     "check that this Python can run `python -m workbench.core.netchild`") from None
        self.process, self.log_path = spawned
        assert self.process.stdin is not None and self.process.stdout is not None
        self._to_child, self._from_child = self.process.stdin, self.process.stdout
        self.lock = threading.Lock()
        self.races: dict[int, RemoteRace] = {}
        self.stopped = False
        self.reason: str | None = None
        """Why this child stopped, once it has (with the log's path)."""
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name="workbench-network-writer", daemon=True)
        self._reader = threading.Thread(target=self._read, name="workbench-network-reader", daemon=True)
        self._writer.start()
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    # commands

    def register(self, race: RemoteRace) -> bool:
        """Track ``race``; False when this child has already stopped (it would never hear of it)."""
        with self.lock:
            if self.stopped:
                return False
            self.races[race.race_id] = race
            return True

    def forget(self, race_id: int) -> bool:
        """Stop applying messages to the race; True when it was still open (the caller now ends it)."""
        with self.lock:
            return self.races.pop(race_id, None) is not None

    def send(self, message: ToChild) -> None:
        """Queue a command for the child; never blocks on the pipe. Ignored once the child stopped."""
        self.send_frame(encode_frame(message))

    def send_frame(self, frame: bytes) -> None:
        """:meth:`send` for a command already framed by :func:`encode_frame`."""
        if not self.stopped:
            self._outbox.put(frame)

    def _write(self) -> None:
        while (frame := self._outbox.get()) is not None:
            try:
                self._to_child.write(frame)
                self._to_child.flush()
            except (OSError, ValueError):  # the child is gone: the reader reports why
                self.kill()
                return
        with contextlib.suppress(OSError, ValueError):
            self._to_child.close()

    # messages

    def _read(self) -> None:
        reason: str | None = None
        stage = "read"
        try:
            while True:
                stage = "read"
                message = read_frame(self._from_child)
                stage = "applied"
                self._apply(message)
        except EOFError:
            pass
        except BaseException as exc:  # a broken frame, a bad message, a bug in applying it: never die silently
            trace = "".join(traceback.format_exception(exc))
            append_log(self.log_path, f"network reader (parent pid {os.getpid()}) failed:\n{trace}")
            reason = f"the network process failed: a message could not be {stage} ({type(exc).__name__}: {exc})"
        finally:
            self._finish(reason)

    def _apply(self, message: object) -> None:
        if not isinstance(message, Events | Final | Done):
            raise TypeError(f"unexpected message from the network process: {type(message).__name__}")
        with self.lock:
            race = self.races.get(message.race_id)
            if race is None:  # abandoned
                return
            race._heard.set()
            if isinstance(message, Events):
                for index, event in message.events:
                    apply_event(race.records[index], event)
            elif isinstance(message, Final):
                record = race.records[message.index]
                if not record.done:  # the first final state is the record's (a cancel sends done ones again)
                    record.update_from(message.record)
                    if record.done:  # not an attempt's progress (a retry follows): settle it now
                        race._final(message.index)
            else:
                del self.races[message.race_id]
                if all(record.done for record in race.records):
                    race._ended.set()
                    race._to_settle.put(None)  # its settling thread settles what is left, then finishes it
                else:
                    race._fail("the network process ended the race without a result for this call",
                               "retry; if it persists, report it with " + self._log_text())

    def _finish(self, reason: str | None) -> None:
        """The end of this generation: fail what is still open, at once, with why."""
        try:
            if reason is None:  # the child closed its stdout: it is exiting (or must)
                try:
                    self.process.wait(timeout=EXIT_GRACE_S)
                except subprocess.TimeoutExpired:
                    self.kill()
            else:
                self.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=EXIT_GRACE_S)
            if reason is None:
                reason = f"the network process stopped ({exit_text(self.process.returncode)})"
            reason = one_line(reason)
            append_log(self.log_path, f"--- network process pid {self.pid}: {reason}")
            if self.log_path is not None:
                reason += f"; see {self.log_path}"
        finally:
            with self.lock:
                self.stopped, self.reason = True, reason or "the network process stopped"
                races, self.races = list(self.races.values()), {}
            self._outbox.put(None)
            for race in races:
                race._fail(self.reason, "retry: a new race starts a new network process")

    def _log_text(self) -> str:
        return str(self.log_path) if self.log_path is not None else "the steps that led to it"

    # lifecycle

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()

    def request_stop(self) -> None:
        """Ask the child to stop (it cancels its races, sends what is left and exits); do not wait."""
        if self.process.poll() is None:
            self.send(Stop())
            self._outbox.put(None)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the child to stop (it cancels its races and sends what is left), kill it if it lingers, and
        wait for both threads."""
        if self.process.poll() is None:
            self.request_stop()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                self.process.wait()
        self._reader.join(timeout=timeout)
        self._outbox.put(None)
        self._writer.join(timeout=timeout)
        if not self._reader.is_alive():
            with contextlib.suppress(OSError):
                self._from_child.close()


class NetworkProcess:
    """Owns the network child process, respawning it when it died. Use as a context manager, or call
    :meth:`close`.

    ``on_respawn`` is called with the previous child's reason when a race has to start a fresh child
    (from the thread that called :meth:`race`). ``spawned`` is a first child already started (by
    :func:`~workbench.core.netspawn.spawn`, with its log path)."""

    def __init__(self, *, log_path: Path | None = None, on_respawn: Callable[[str], None] | None = None,
                 spawned: Spawned | None = None) -> None:
        self.log_path = log_path or network_log_path()
        self.on_respawn = on_respawn
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closed = False
        self.raced = False
        """Whether a race was ever started (a process that started none may close without waiting)."""
        self._child = _Child(self.log_path, spawned)

    @property
    def pid(self) -> int:
        """The current child's process id (it changes when a new child is started)."""
        return self._child.pid

    def race(self, request: ChatRequest, targets: Sequence[str], env: Mapping[str, str],
             policies: PolicySet | None = None, prices: PriceBook | None = None,
             providers: Mapping[str, ProviderSpec] | None = None, network: Network | None = None,
             on_settled: Callable[[int, CallRecord], None] | None = None) -> RemoteRace:
        """Start a race in the child (a fresh one if the last has stopped); ``env`` is the environment its
        targets resolve against; ``on_settled(index, record)`` is called (from the race's settling thread) as soon as
        record ``index`` is final, estimated and priced (to trace or show it at once). Never blocks on the pipe."""
        from workbench.core.policy import PolicySet
        from workbench.core.pricing import PriceBook

        policies, prices = policies or PolicySet(), prices or PriceBook()
        message = StartRace(next(self._ids), request, tuple(targets), dict(env), policies, prices,
                            None if providers is None else dict(providers), network)
        frame = encode_frame(message)  # a message that cannot be pickled fails here, in the caller, not in a thread
        settles = [link for target in targets for link in (target, *policies.for_target(target).fallbacks)]
        respawned: list[str] = []
        with self._lock:
            if self._closed:
                raise WorkbenchError("the network process is closed")
            self.raced = True
            for _ in range(2):  # the child may stop between the check and the registration
                child = self._child
                if child.stopped:
                    respawned.append(child.reason or "the network process stopped")
                    child.stop(timeout=EXIT_GRACE_S)
                    child = self._child = _Child(self.log_path)
                race = RemoteRace(message.race_id, request, targets, child, prices, settles, on_settled)
                if child.register(race):
                    child.send_frame(frame)
                    race._start_settling()
                    break
            else:
                race._fail(child.reason or "the network process stopped", "retry; if it persists, report it")
        if respawned and self.on_respawn is not None:
            self.on_respawn(respawned[-1])
        return race

    def close(self, wait: bool = True) -> None:
        """Stop the child: it cancels what still runs, sends what is left and exits. With ``wait=False`` only
        ask it to (it exits while the caller goes on; a later ``close()`` waits for it and the threads)."""
        with self._lock:
            self._closed = True
            child = self._child
        if wait:
            child.stop()
        else:
            child.request_stop()

    def __enter__(self) -> NetworkProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
