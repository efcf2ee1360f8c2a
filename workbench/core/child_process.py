"""A server in a child process, stopped with the block that started it (the fake server, the local model server)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Sequence
from typing import Any


@contextlib.contextmanager
def child_process(argv: Sequence[str], **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """Run ``argv`` as a server in a child process; terminate it on exit (kill it if it lingers).

    It runs in a session of its own: a Ctrl-C meant for the caller must not stop it first."""
    proc = subprocess.Popen(argv, start_new_session=os.name == "posix", **popen)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
