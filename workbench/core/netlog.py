"""The network process's log file: where it lives, opening (with rotation) and appending, and how an
exit status and a reason read in one line."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import platformdirs

LOG_DIR_ENV = "WORKBENCH_LOG_DIR"
LOG_NAME = "network.log"
LOG_ROTATE_BYTES = 4 * 1024 * 1024
"""At start, a log larger than this is moved to ``network.log.1`` (replacing the previous one)."""


def network_log_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the network process's stderr goes: ``$WORKBENCH_LOG_DIR/network.log``, else the user log dir."""
    env = os.environ if env is None else env
    return Path(env.get(LOG_DIR_ENV) or platformdirs.user_log_dir("workbench")) / LOG_NAME


def open_log(path: Path) -> IO[bytes] | None:
    """The log, opened for appending (rotated when large); ``None`` when it cannot be written."""
    try:
        from workbench.core.folders import private_folder

        private_folder(path.parent)
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size > LOG_ROTATE_BYTES:
                path.replace(path.with_name(path.name + ".1"))
        return open(path, "ab")  # handed to the child; the caller closes its own copy
    except OSError:
        return None


def append_log(path: Path | None, text: str) -> None:
    if path is not None:
        with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as log:
            log.write(text if text.endswith("\n") else text + "\n")


def one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def exit_text(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            return f"signal {-code}, {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
