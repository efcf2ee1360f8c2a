"""A private SQLite file: created 0600 (its sidecars too) in a folder made 0700 when missing, WAL,
``synchronous=NORMAL``, a busy timeout."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from workbench.core.errors import ConfigError
from workbench.core.folders import private_folder


def open_private(path: Path, migrate: Callable[[sqlite3.Connection], None], what: str, hint: str) -> sqlite3.Connection:
    """Open ``path`` (creating it readable by the owner only), run ``migrate``; a failure is a
    :class:`ConfigError` naming ``what`` with ``hint`` as the next step."""
    try:
        private_folder(path.parent)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        migrate(conn)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot open {what} {path}: {exc}", hint) from None
    for suffix in ("", "-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists():
            side.chmod(0o600)
    conn.row_factory = sqlite3.Row
    return conn
