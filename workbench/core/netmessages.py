"""The messages between a command and its network process, and how they are framed on the pipes.

Typed frozen dataclasses, pickled and length-prefixed (4 bytes, big-endian). This module imports no
pydantic model and no httpx2: the types the messages carry are named for type checkers only, so a
command can frame its first message before those load.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.core.call_record import CallRecord
    from workbench.core.events import StreamEvent
    from workbench.core.network import Network
    from workbench.core.policy import PolicySet
    from workbench.core.pricing import PriceBook
    from workbench.core.registry import ProviderSpec
    from workbench.core.request import ChatRequest


@dataclass(frozen=True, slots=True)
class StartRace:
    """Parent → child: run this race (``env`` is what its targets resolve against)."""

    race_id: int
    request: ChatRequest
    targets: tuple[str, ...]
    env: Mapping[str, str]
    policies: PolicySet
    prices: PriceBook
    providers: Mapping[str, ProviderSpec] | None
    network: Network | None = None
    """Proxies, trust and HTTP settings (``None``: the environment's); one client per distinct value."""


@dataclass(frozen=True, slots=True)
class CancelRace:
    """Parent → child: stop the race's streams; their records keep the partial output."""

    race_id: int


@dataclass(frozen=True, slots=True)
class Stop:
    """Parent → child: cancel every race, send what is left, exit."""


@dataclass(frozen=True, slots=True)
class Events:
    """Child → parent: stream events as ``(target index, event)``, in order."""

    race_id: int
    events: tuple[tuple[int, StreamEvent], ...]


@dataclass(frozen=True, slots=True)
class Final:
    """Child → parent: a record as it stands after an attempt or once final (unsettled: the parent settles)."""

    race_id: int
    index: int
    record: CallRecord


@dataclass(frozen=True, slots=True)
class Done:
    """Child → parent: the race is over; nothing more will come for it."""

    race_id: int


ToChild = StartRace | CancelRace | Stop
FromChild = Events | Final | Done


def encode_frame(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(4, "big") + data


def write_frame(stream: IO[bytes], message: object) -> None:
    stream.write(encode_frame(message))
    stream.flush()


def read_frame(stream: IO[bytes]) -> object:
    """The next message; raises ``EOFError`` when the other side closed the pipe (even mid-frame)."""
    header = stream.read(4)
    if len(header) < 4:
        raise EOFError
    size = int.from_bytes(header, "big")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)
