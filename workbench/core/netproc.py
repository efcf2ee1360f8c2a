"""The network process: races run in a child process, and their records are mirrored here.

Why a process and not only a thread: in CPython a UI thread busy in Python code (layout, Markdown,
a table redraw) holds the GIL, and a network thread that wakes up for a chunk must wait for it before
it can take the chunk's timestamp. ``bench/ttft_accuracy.py`` measures that skew at several
milliseconds when the UI is busy. In a child process the network loop has an interpreter of its own:
what the UI does cannot delay a read or a timestamp. All stamps are ``time.perf_counter_ns()``, a
system-wide monotonic clock, so they mean the same in both processes.

The child (``python -m workbench.core.netchild``) runs each :class:`~workbench.core.race.Race` on its
event loop and sends back, over its stdout, every stream event (batched per loop turn) and each record
once final, as length-prefixed pickles. A reader thread here applies them to
:class:`RemoteRace.records`, which a UI may read at any time. A plain child process (not
``multiprocessing``) keeps callers free of any main-module guard and works on every platform.
"""

from __future__ import annotations

import contextlib
import itertools
import pickle
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import IO, Any

from workbench.core.call import CallRecord, apply_event
from workbench.core.errors import ProviderError
from workbench.core.policy import PolicySet
from workbench.core.pricing import PriceBook
from workbench.core.registry import ProviderSpec
from workbench.core.request import ChatRequest


def write_frame(stream: IO[bytes], message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(4, "big") + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next message; raises ``EOFError`` when the other side closed the pipe."""
    header = stream.read(4)
    if len(header) < 4:
        raise EOFError
    data = stream.read(int.from_bytes(header, "big"))
    return pickle.loads(data)


class RemoteRace:
    """A race running in the network process; ``records`` fill in as its events arrive."""

    def __init__(self, race_id: int, request: ChatRequest, targets: Sequence[str], owner: NetworkProcess) -> None:
        self.race_id = race_id
        self.request = request
        self.records = [CallRecord(target, request) for target in targets]
        self._finished = threading.Event()
        self._owner = owner

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every record is final (usage estimates included); False on timeout."""
        return self._finished.wait(timeout)

    def cancel(self) -> None:
        """Stop every stream still running; their records keep the partial output."""
        self._owner._send(("cancel", self.race_id))


class NetworkProcess:
    """Owns the child process and the pipe to it. Use as a context manager, or call :meth:`close`."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "workbench.core.netchild"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._to_child, self._from_child = self._process.stdin, self._process.stdout
        self._ids = itertools.count(1)
        self._races: dict[int, RemoteRace] = {}
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="workbench-network-reader", daemon=True)
        self._reader.start()

    def race(self, request: ChatRequest, targets: Sequence[str], env: Mapping[str, str],
             policies: PolicySet | None = None, prices: PriceBook | None = None,
             providers: Mapping[str, ProviderSpec] | None = None) -> RemoteRace:
        """Start a race in the child; ``env`` is the environment its targets resolve against."""
        race = RemoteRace(next(self._ids), request, targets, self)
        self._races[race.race_id] = race
        self._send(("race", race.race_id, request, list(targets), dict(env), policies or PolicySet(),
                    prices or PriceBook(), None if providers is None else dict(providers)))
        return race

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            write_frame(self._to_child, message)

    def _read(self) -> None:
        while True:
            try:
                message = read_frame(self._from_child)
            except (EOFError, OSError, pickle.UnpicklingError):
                break
            kind, race_id = message[0], message[1]
            race = self._races.get(race_id)
            if race is None:
                continue
            if kind == "events":
                for index, event in message[2]:
                    apply_event(race.records[index], event)
            elif kind == "final":
                race.records[message[2]].update_from(message[3])
            elif kind == "done":
                del self._races[race_id]
                race._finished.set()
        for race in self._races.values():  # the child died: nothing more will come
            for record in race.records:
                if not record.done:
                    record.fail(ProviderError(record.target, "the network process stopped"))
            race._finished.set()

    def close(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self._send(("stop", 0))
                self._to_child.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._reader.join(timeout=5)
        self._from_child.close()

    def __enter__(self) -> NetworkProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
