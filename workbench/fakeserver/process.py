"""Run the fake server in a child process: a separate interpreter, as a remote provider would be.

Tests and benchmarks that measure timing use this, so the server's work never shares a GIL with the
client being measured.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from workbench.core.child_process import child_process

_READY_PREFIX = "workbench fake server listening on "


@dataclass(frozen=True)
class FakeServerProcess:
    base_url: str
    pid: int


@contextlib.contextmanager
def fake_server_process(host: str = "127.0.0.1", port: int = 0,
                        extra_args: Sequence[str] = ()) -> Iterator[FakeServerProcess]:
    """Start ``workbench fake-server`` on a free port, wait until it listens, stop it on exit.

    ``extra_args`` go to the command line (e.g. ``["--rpm", "600"]`` for an enforced rate limit)."""
    argv = [sys.executable, "-m", "workbench", "fake-server", "--host", host, "--port", str(port), *extra_args]
    with child_process(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith(_READY_PREFIX):
            raise RuntimeError(f"the fake server did not start (it printed {line!r})")
        yield FakeServerProcess(line[len(_READY_PREFIX) :].strip(), proc.pid)
