"""Whether a stored run's process is still alive: a lock file per running run, held by that process.

A run is ``running`` in the store from its start to its end. A process killed outright (``kill -9``, a
power cut) never writes its end, so the status alone cannot tell a live run from a dead one. While a run
lasts, its process holds an exclusive lock on ``evals-running/<run id>.lock`` beside the store; the
operating system drops the lock when the process ends, however it ends. A reader that can take the lock
knows nobody runs the run any more.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

from workbench.core.errors import ConfigError
from workbench.core.folders import private_folder

_RETRY_S = 0.5
"""How long taking a run's lock retries while a reader holds it for a moment to look."""


def lock_folder(store_path: Path) -> Path:
    return store_path.with_name(f"{store_path.stem}-running")


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


class RunLock:
    """The lock a process holds while it runs ``run_id``; :meth:`release` when the run has stored its end.

    The file is removed only by whoever holds the lock, and a lock taken on a file that was removed
    meanwhile is taken again on the new one, so a held lock is always on the file readers open."""

    def __init__(self, store_path: Path, run_id: str) -> None:
        folder = lock_folder(store_path)
        self.path = folder / f"{run_id}.lock"
        deadline = time.monotonic() + _RETRY_S
        while True:
            try:
                private_folder(folder)
                fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            except OSError as exc:
                raise ConfigError(f"cannot create {self.path}: {exc.strerror}",
                                  "check the folder of the eval store and its permissions") from None
            if _try_lock(fd):
                if _same_file(fd, self.path):
                    self._fd = fd
                    return
                _unlock(fd)  # removed by its last holder meanwhile: take the new one
            os.close(fd)
            if time.monotonic() >= deadline:
                raise ConfigError(f"eval run {run_id} is running in another process",
                                  "wait for it to end, or stop it (Ctrl-C) and resume it then")
            time.sleep(0.02)

    def release(self) -> None:
        if self._fd < 0:
            return
        with contextlib.suppress(OSError):  # Windows keeps an open file: it stays, unlocked
            self.path.unlink()
        _unlock(self._fd)
        os.close(self._fd)
        self._fd = -1


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except OSError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def is_alive(store_path: Path, run_id: str) -> bool:
    """Whether a process holds ``run_id``'s lock now (a run left ``running`` by a dead process: False).
    A lock file nobody holds is removed."""
    path = lock_folder(store_path) / f"{run_id}.lock"
    while True:
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            return False  # no lock file: the run ended, or its process died before it took the lock
        try:
            if not _try_lock(fd):
                return True
            if not _same_file(fd, path):
                _unlock(fd)  # replaced meanwhile: look at the new one
                continue
            with contextlib.suppress(OSError):
                path.unlink()  # while holding it: a process taking it now opens a new file
            _unlock(fd)
            return False
        finally:
            os.close(fd)
