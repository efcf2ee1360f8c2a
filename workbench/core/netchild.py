"""The network process itself: ``python -m workbench.core.netchild`` (started by :mod:`netproc`).

Reads commands (:class:`~workbench.core.netmessages.StartRace`, ``CancelRace``, ``Stop``) from stdin and
sends ``Events``, ``Final`` and ``Done`` messages back on the original stdout, framed by
:func:`~workbench.core.netmessages.encode_frame`. File descriptor 1 is pointed at stderr (the log file the
parent opened), so nothing printed by mistake, from Python or C, can corrupt the channel.

Frames go out through an asyncio write transport, so the loop never blocks on a full pipe. Back-pressure:
while the transport is paused (the parent is not reading), stream events are coalesced per race instead
of framed every loop turn, and a new race waits before it starts its calls (commands, cancels included,
are still read); the streams already running keep reading, so their timestamps stay true. If the parent
goes away (its end of either pipe closes), every race is cancelled and the process exits.

Start-up: the child is started before its parent has read its configuration, so while it waits for
the first command it warms up (:meth:`ChildLoop._warm`): it imports what a first request needs and
builds the client for the environment's network settings, which is what a run without a
``[network]`` table sends. Usage estimates and costs are not computed here: the parent does, with
what they need loaded while the streams run, so this loop never holds a timestamp back for them.
On exit the process ends without tearing its interpreter down (nothing is left to flush by then).
"""

from __future__ import annotations

import gc

STARTING = __name__ == "__main__"
"""This module is the network process's main module: no cyclic collection until it has warmed up (start-up
allocates much and frees little; collecting it costs ~15 % of the imports' time), then everything it
imported is frozen out of later collections, which stay short while streams run."""
if STARTING:
    gc.disable()

import asyncio  # noqa: E402  (after pausing the collector: these imports are the start-up)
import contextlib  # noqa: E402
import faulthandler  # noqa: E402
import os  # noqa: E402
import pickle  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import IO  # noqa: E402

from workbench.core.call_record import CallRecord  # noqa: E402
from workbench.core.errors import CallCancelledError, ProviderError  # noqa: E402
from workbench.core.events import StreamEvent  # noqa: E402
from workbench.core.httpclient import new_client  # noqa: E402
from workbench.core.netmessages import (  # noqa: E402
    CancelRace,
    Done,
    Events,
    Final,
    StartRace,
    Stop,
    ToChild,
    encode_frame,
)
from workbench.core.network import Network  # noqa: E402
from workbench.core.race import Race  # noqa: E402
from workbench.core.resilience.caller import Caller  # noqa: E402

HIGH_WATER = 64 * 1024
"""Bytes buffered in the transport beyond which it pauses (the parent is behind)."""
CLOSE_TIMEOUT_S = 5.0
WARM_TLS_AFTER_S = 0.1
"""Idle time after which the child loads the CA certificates before any race asks for them (an app's first race)."""


def _log(text: str) -> None:
    print(f"network process pid {os.getpid()}: {text}", file=sys.stderr, flush=True)


async def _read_command(commands: asyncio.StreamReader) -> ToChild:
    """The next framed command; a closed pipe means stop (a broken frame is logged, then means stop)."""
    try:
        header = await commands.readexactly(4)
        message = pickle.loads(await commands.readexactly(int.from_bytes(header, "big")))
    except asyncio.IncompleteReadError:
        return Stop()
    except Exception as exc:
        _log(f"unreadable command ({type(exc).__name__}: {exc}); stopping")
        return Stop()
    if not isinstance(message, StartRace | CancelRace | Stop):
        _log(f"unexpected command {type(message).__name__}; stopping")
        return Stop()
    return message


class _Pipe(asyncio.BaseProtocol):
    """Flow control for the write transport: ``writable`` is clear while it is paused."""

    def __init__(self, on_resume: Callable[[], None]) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_resume = on_resume

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()
        self.on_resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self.writable.set()
        if not self.lost.done():
            self.lost.set_result(None)


class ChildLoop:
    def __init__(self, inbox: IO[bytes], outbox: IO[bytes]) -> None:
        self.inbox, self.out = inbox, outbox
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.raced = False
        """A race has come: warming up is over (what it would prepare, the race has prepared or never needs)."""
        self.callers: dict[Network | None, Caller] = {}
        self.callers_lock = asyncio.Lock()
        self.outbox: dict[int, list[tuple[int, StreamEvent]]] = {}

    async def run(self) -> None:
        # Commands are read on this loop too (no reader thread): one thread, so no GIL hand-offs can
        # delay a read or a timestamp.
        loop = asyncio.get_running_loop()
        commands = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), self.inbox)
        self.pipe = _Pipe(on_resume=self._flush_all)
        self.transport, _ = await loop.connect_write_pipe(lambda: self.pipe, self.out)
        self.transport.set_write_buffer_limits(high=HIGH_WATER)
        _log("ready")
        async with contextlib.AsyncExitStack() as clients:
            self.clients = clients
            warming = asyncio.create_task(self._warm())
            receiving = asyncio.create_task(self._receive(commands))
            await asyncio.wait([receiving, self.pipe.lost], return_when=asyncio.FIRST_COMPLETED)
            if self.pipe.lost.done():
                _log("the parent closed the channel; stopping")
            receiving.cancel()
            warming.cancel()
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(receiving, warming, *self.tasks.values(), return_exceptions=True)
        self.transport.close()  # sends what is buffered, then closes
        try:
            await asyncio.wait_for(asyncio.shield(self.pipe.lost), CLOSE_TIMEOUT_S)
        except TimeoutError:
            _log("the parent did not read the last messages")
        _log("stopped")

    async def _receive(self, commands: asyncio.StreamReader) -> None:
        while not isinstance(message := await _read_command(commands), Stop):
            self.raced = self.raced or isinstance(message, StartRace)
            if isinstance(message, CancelRace):
                if message.race_id in self.tasks:
                    self.tasks[message.race_id].cancel()
                continue
            try:
                race = Race(message.request, message.targets, message.env, message.policies, message.prices,
                            message.providers)
                caller = await self._caller(message.network)
            except Exception as exc:  # the parent fails the race's records when Done comes without them
                _log(f"race {message.race_id} could not start:\n{''.join(traceback.format_exception(exc))}")
                self._send(Done(message.race_id))
                continue
            self.tasks[message.race_id] = asyncio.create_task(self._race(message.race_id, race, caller))

    async def _caller(self, network: Network | None) -> Caller:
        """One client (pool) and caller per network setting: breakers and rate limits span races."""
        async with self.callers_lock:
            caller = self.callers.get(network)
            if caller is None:
                client = await self.clients.enter_async_context(new_client(network))
                caller = self.callers[network] = Caller(client)
            return caller

    async def _warm(self) -> None:
        """Ready the first request while the parent still reads its configuration: import the transport
        (httpcore2, anyio's asyncio backend: ~50 ms), build the client for the environment's network
        settings, which the parent sends unless a ``[network]`` table says otherwise, and import the wires'
        adapters (a few ms each, otherwise paid when the race's first call is made). Each step yields, so a
        command that came meanwhile is read between steps; nothing is warmed once a race has come. The CA
        certificates (tens of ms; only ``https://`` origins need them) load last, and only if no race has come
        within :data:`WARM_TLS_AFTER_S`: a command line's race, which comes at once, does not wait for them."""
        try:
            import httpcore2  # noqa: F401  (the transport)

            await asyncio.sleep(0)
            import anyio
            import anyio.lowlevel

            await anyio.lowlevel.checkpoint()  # anyio's asyncio backend, loaded on first use
            anyio.connect_tcp  # noqa: B018  (its socket functions, loaded on first access)
            if self.raced:
                return
            from workbench.core.network import resolve_network

            network = resolve_network(None, check_tls=False)  # the parent checks it
            await asyncio.sleep(0)
            if not self.raced:
                await self._caller(network)
            from workbench.core.registry import WIRES, wire_adapter

            for wire in WIRES:  # the parent reads its configuration meanwhile: the adapters are ready for its race
                if self.raced:
                    return
                wire_adapter(wire)
                await asyncio.sleep(0)
            await asyncio.sleep(WARM_TLS_AFTER_S)
            if not self.raced:
                network.ssl_context()  # cached: the first https:// request finds it built
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bad proxy or CA setting: the race that uses it says so
            _log(f"warming up skipped ({type(exc).__name__}: {exc})")
        finally:
            if STARTING and not gc.isenabled():
                gc.freeze()
                gc.enable()

    def _send(self, message: Events | Final | Done) -> None:
        if self.transport.is_closing():
            return
        try:
            frame = encode_frame(message)
        except Exception as exc:  # an object that does not pickle: say so rather than lose the record
            _log(f"could not send {type(message).__name__}:\n{''.join(traceback.format_exception(exc))}")
            if not isinstance(message, Final):
                return
            record = CallRecord(message.record.target, message.record.request)
            record.fail(ProviderError(record.target, f"the network process could not send this call's record "
                                                     f"({type(exc).__name__}: {exc})"))
            frame = encode_frame(Final(message.race_id, message.index, record))
        self.transport.write(frame)

    async def _race(self, race_id: int, race: Race, caller: Caller) -> None:

        def on_event(index: int, event: StreamEvent) -> None:
            pending = self.outbox.setdefault(race_id, [])
            if not pending:  # one message per loop turn carries every event decoded in it
                asyncio.get_running_loop().call_soon(self._flush, race_id, False)
            pending.append((index, event))

        def on_done(index: int, record: CallRecord) -> None:
            self._flush(race_id)  # the events first: a record's final state must not be overtaken
            self._send(Final(race_id, index, record))

        try:
            await self.pipe.writable.wait()  # back-pressure: no new streams while the parent is behind
            await race.run(caller, on_event, on_done, on_update=on_done, settle=False)  # the parent settles
        except asyncio.CancelledError:
            for index, record in enumerate(race.records):
                if not record.done:  # cancelled before its call began
                    record.fail(CallCancelledError(record.target))
                on_done(index, record)
        except Exception as exc:
            _log(f"race {race_id} failed:\n{''.join(traceback.format_exception(exc))}")
            for index, record in enumerate(race.records):
                if not record.done:
                    record.fail(ProviderError(record.target, f"the network process failed "
                                                             f"({type(exc).__name__}: {exc})"))
                on_done(index, record)
        finally:
            self._flush(race_id)
            self._send(Done(race_id))
            del self.tasks[race_id]

    def _flush(self, race_id: int, force: bool = True) -> None:
        """Send the race's pending events; a scheduled flush waits while the pipe is paused (the events
        keep gathering, and go out in one frame on resume)."""
        if not force and not self.pipe.writable.is_set():
            return
        pending = self.outbox.pop(race_id, None)
        if pending:
            self._send(Events(race_id, tuple(pending)))

    def _flush_all(self) -> None:
        for race_id in list(self.outbox):
            self._flush(race_id)


def main() -> None:
    # Ctrl-C in the terminal reaches the whole process group: the parent decides (it cancels races
    # and then sends Stop), so the child must not die half-way through a record.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A crash writes its traceback to the log; `kill -USR1 <pid>` writes every thread's stack there.
    faulthandler.enable()
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    sys.stdout.flush()
    channel = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # fd 1 is the log now, not the channel
    sys.stdout = sys.stderr
    with open(channel, "wb", buffering=0) as outbox:
        asyncio.run(ChildLoop(sys.stdin.buffer, outbox).run())
    # Everything is sent and every client closed: skip tearing the interpreter down (module by module,
    # object by object: tens of ms that the parent, waiting for this exit, would add to its own).
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
