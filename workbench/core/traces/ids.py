"""Call ids that sort by time: ULIDs (48-bit milliseconds + 80 random bits, Crockford base32, 26 chars).

Ids made in the same millisecond by one process increase (the random part is incremented), so the
primary key order is the time order and keyset pagination needs no extra index. An id carries the
time of its call (its start), not of its writing.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last = (0, 0)


_SHIFTS = tuple(range(125, -1, -5))  # 26 five-bit groups of 130 bits, most significant first


def _encode(value: int) -> str:
    return "".join([_ALPHABET[(value >> shift) & 31] for shift in _SHIFTS])


def new_id(at: float | None = None) -> str:
    """A ULID for wall-clock time ``at`` (epoch seconds; now when ``None``)."""
    global _last
    ms = int((time.time() if at is None else at) * 1000)
    with _lock:
        last_ms, last_rand = _last
        rand = last_rand + 1 if ms == last_ms else int.from_bytes(os.urandom(10), "big")
        if ms >= last_ms:  # an id for an earlier moment (an older call) keeps its own time
            _last = (ms, rand)
    return _encode((ms << 80) | (rand & ((1 << 80) - 1)))


def time_prefix(at: float) -> str:
    """The 10-character time part of the ids made at ``at``: a bound for range queries over ids."""
    return _encode(max(int(at * 1000), 0) << 80)[:10]


def id_time(call_id: str) -> float:
    """The epoch seconds a ULID was made at."""
    value = 0
    for char in call_id[:10]:
        value = value * 32 + _ALPHABET.index(char)
    return value / 1000
