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


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


def new_id(at: float | None = None) -> str:
    """A ULID for wall-clock time ``at`` (epoch seconds; now when ``None``)."""
    global _last
    ms = int((time.time() if at is None else at) * 1000)
    with _lock:
        last_ms, last_rand = _last
        rand = last_rand + 1 if ms == last_ms else int.from_bytes(os.urandom(10), "big")
        if ms >= last_ms:  # an id for an earlier moment (an older call) keeps its own time
            _last = (ms, rand)
    return _encode(ms, 10) + _encode(rand & ((1 << 80) - 1), 16)


def id_time(call_id: str) -> float:
    """The epoch seconds a ULID was made at."""
    value = 0
    for char in call_id[:10]:
        value = value * 32 + _ALPHABET.index(char)
    return value / 1000
