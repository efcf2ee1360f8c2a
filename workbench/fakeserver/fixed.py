"""The scenario key ``fixed=1``: a reply whose every byte is the same on every call, for comparing two streams
byte for byte (a proxy's output against the direct one). Within a fixed request the ids the server makes up
(:func:`new_id`) are zeros, the wall clock reads :data:`FIXED_EPOCH_S` and Ollama's durations are constants.

The flag lives in a context variable set for the request being answered (:func:`fixed_request`), so concurrent
requests on other connections keep their random ids and real clock."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from contextvars import ContextVar

FIXED_EPOCH_S = 1_700_000_000
"""The wall clock of a fixed request: 2023-11-14T22:13:20Z."""
FIXED_DURATION_NS = 1_000_000
"""Every duration a fixed request reports (Ollama's ``*_duration``): 1 ms."""

_FIXED: ContextVar[bool] = ContextVar("workbench_fake_fixed", default=False)


def is_fixed() -> bool:
    return _FIXED.get()


@contextlib.contextmanager
def fixed_request(on: bool) -> Iterator[None]:
    """The request answered inside is fixed (``on``) or not."""
    token = _FIXED.set(on)
    try:
        yield
    finally:
        _FIXED.reset(token)


def set_fixed() -> None:
    """The rest of the request being answered is fixed (inside :func:`fixed_request`, which ends it)."""
    _FIXED.set(True)


def new_id(prefix: str, nbytes: int = 12) -> str:
    """``prefix`` and ``nbytes`` random bytes in hex (zeros in a fixed request)."""
    return prefix + ("00" * nbytes if _FIXED.get() else secrets.token_hex(nbytes))


def wall_ns() -> int:
    """The wall clock in nanoseconds (:data:`FIXED_EPOCH_S` in a fixed request)."""
    return FIXED_EPOCH_S * 1_000_000_000 if _FIXED.get() else time.time_ns()
