"""The workspace: the nearest folder up from here holding ``workbench.toml``."""

from __future__ import annotations

from pathlib import Path

WORKSPACE_FILE = "workbench.toml"


def find_workspace(start: Path) -> Path | None:
    """The nearest folder from ``start`` up holding :data:`WORKSPACE_FILE`, or ``None``."""
    for folder in (start, *start.parents):
        if (folder / WORKSPACE_FILE).is_file():
            return folder
    return None
