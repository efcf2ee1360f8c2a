"""The network process itself: ``python -m workbench.core.netchild`` (started by :mod:`netproc`).

Reads commands (``race``, ``cancel``, ``stop``) from stdin and writes events and final records to
stdout, framed by :func:`~workbench.core.netproc.write_frame`. Anything printed by mistake goes to
stderr, so the channel cannot be corrupted.
"""

from __future__ import annotations

import asyncio
import pickle
import signal
import sys
from typing import IO, Any

from workbench.core.call import CallRecord
from workbench.core.events import StreamEvent
from workbench.core.httpclient import new_client
from workbench.core.netproc import write_frame
from workbench.core.race import Race
from workbench.core.resilience.caller import Caller


async def _read_command(commands: asyncio.StreamReader) -> tuple[Any, ...]:
    """The next framed command; a closed or broken pipe means stop."""
    try:
        header = await commands.readexactly(4)
        message: tuple[Any, ...] = pickle.loads(await commands.readexactly(int.from_bytes(header, "big")))
    except (asyncio.IncompleteReadError, OSError, pickle.UnpicklingError):
        return ("stop", 0)
    return message


class ChildLoop:
    def __init__(self, inbox: IO[bytes], outbox: IO[bytes]) -> None:
        self.inbox, self.out = inbox, outbox
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.outbox: dict[int, list[tuple[int, StreamEvent]]] = {}

    async def run(self) -> None:
        # Commands are read on this loop too (no reader thread): one thread, so no GIL hand-offs can
        # delay a read or a timestamp.
        loop = asyncio.get_running_loop()
        commands = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), self.inbox)
        async with new_client() as client:
            self.caller = Caller(client)  # one for the process: breakers and rate limits span races
            while True:
                message = await _read_command(commands)
                if message[0] == "stop":
                    break
                self._dispatch(message)
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "race":
            race_id, race = message[1], Race(*message[2:])  # request, targets, env, policies, prices, providers
            self.tasks[race_id] = asyncio.create_task(self._race(race_id, race))
        elif kind == "cancel" and message[1] in self.tasks:
            self.tasks[message[1]].cancel()

    async def _race(self, race_id: int, race: Race) -> None:

        def on_event(index: int, event: StreamEvent) -> None:
            pending = self.outbox.setdefault(race_id, [])
            if not pending:  # one message per loop turn carries every event decoded in it
                asyncio.get_running_loop().call_soon(self._flush, race_id)
            pending.append((index, event))

        def on_done(index: int, record: CallRecord) -> None:
            self._flush(race_id)
            write_frame(self.out, ("final", race_id, index, record))

        try:
            await race.run(self.caller, on_event, on_done, on_update=on_done)
        except asyncio.CancelledError:
            for index, record in enumerate(race.records):
                on_done(index, record)
        finally:
            self._flush(race_id)
            write_frame(self.out, ("done", race_id))
            del self.tasks[race_id]

    def _flush(self, race_id: int) -> None:
        pending = self.outbox.pop(race_id, None)
        if pending:
            write_frame(self.out, ("events", race_id, pending))


def main() -> None:
    # Ctrl-C in the terminal reaches the whole process group: the parent decides (it cancels races
    # and then sends "stop"), so the child must not die half-way through a record.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbox, outbox = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr
    asyncio.run(ChildLoop(inbox, outbox).run())


if __name__ == "__main__":
    main()
