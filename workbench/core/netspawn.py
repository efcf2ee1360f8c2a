"""Starting the network process (``python -m workbench.core.netchild``), its stderr in the log file.

Kept apart from :mod:`workbench.core.netproc` and light (the standard library's ``subprocess`` and the log
file's path), so that ``workbench run`` can start its child before it imports anything else: the child's
start-up then overlaps all of the parent's (see :mod:`workbench.launch`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from workbench.core.netlog import open_log

CHILD_ENV = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}
"""Set for the child unless the environment says otherwise: pydantic's plugin discovery reads every installed
distribution's entry points (~15 ms of the child's start-up), and the child validates nothing a plugin
would observe (the parent validated what it sends)."""


class Spawned(NamedTuple):
    """A started child and the log its stderr goes to (``None`` when the log cannot be written)."""

    process: subprocess.Popen[bytes]
    log_path: Path | None


def spawn(log_path: Path) -> Spawned:
    """Start a network child; :class:`OSError` when it cannot be started."""
    log = open_log(log_path)
    try:
        if log is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"--- {stamp} network process starting (parent pid {os.getpid()})\n".encode())
            log.flush()
        process = subprocess.Popen(
            [sys.executable, "-m", "workbench.core.netchild"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log if log is not None else subprocess.DEVNULL, env={**CHILD_ENV, **os.environ},
        )
    finally:
        if log is not None:
            log.close()
    return Spawned(process, log_path if log is not None else None)
