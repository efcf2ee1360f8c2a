"""Folders workbench makes: private to the user, as the files in them are.

Every folder workbench creates (the workspace's ``.workbench/``, the data and log directories, prompt versions,
``sessions/``, the folders ``workbench init`` makes, report folders, exported files' folders) is made readable by
its owner only (0700), the missing parents with it. A folder that exists already keeps its mode: a user's own
folders are never changed.
"""

from __future__ import annotations

from pathlib import Path

PRIVATE_FOLDER_MODE = 0o700


def private_folder(path: Path) -> Path:
    """``path`` as a folder: made, with its missing parents, 0700 (as the process's umask allows), or left as it
    is when it exists. A file in the way raises :class:`FileExistsError`, as ``Path.mkdir`` does."""
    missing: list[Path] = []
    current = path
    while not current.is_dir() and current.parent != current:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_FOLDER_MODE)
        except FileExistsError:  # made meanwhile (another process): kept as it is; a file in the way: an error
            if not folder.is_dir():
                raise
    return path
