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
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
"""The two characters of every 10-bit value."""
_RANDOM_BITS = (1 << 80) - 1
_40_BITS = (1 << 40) - 1
_ENTROPY_BYTES = 4_000
_lock = threading.Lock()
_last = (0, 0)
_entropy = b""
_used = 0


def _chars(value: int) -> str:
    """The 8 characters of a 40-bit value."""
    return _PAIRS[value >> 30] + _PAIRS[(value >> 20) & 1023] + _PAIRS[(value >> 10) & 1023] + _PAIRS[value & 1023]


def _time_part(ms: int) -> str:
    """The first 10 characters of an id: the milliseconds (50 bits, the top two zero)."""
    return _PAIRS[ms >> 40] + _chars(ms & _40_BITS)


def new_id(at: float | None = None) -> str:
    """A ULID for wall-clock time ``at`` (epoch seconds; now when ``None``)."""
    global _last, _entropy, _used
    ms = int((time.time() if at is None else at) * 1000)
    with _lock:
        last_ms, last_rand = _last
        if ms == last_ms:
            rand = (last_rand + 1) & _RANDOM_BITS
        else:
            if _used == len(_entropy):  # the random parts are read 400 at a time: one system call
                _entropy, _used = os.urandom(_ENTROPY_BYTES), 0
            rand = int.from_bytes(_entropy[_used:_used + 10], "big")
            _used += 10
        if ms >= last_ms:  # an id for an earlier moment (an older call) keeps its own time
            _last = (ms, rand)
    return _time_part(ms) + _chars(rand >> 40) + _chars(rand & _40_BITS)


def time_prefix(at: float) -> str:
    """The 10-character time part of the ids made at ``at``: a bound for range queries over ids."""
    return _time_part(max(int(at * 1000), 0))


def id_time(call_id: str) -> float:
    """The epoch seconds a ULID was made at."""
    value = 0
    for char in call_id[:10]:
        value = value * 32 + _ALPHABET.index(char)
    return value / 1000
