"""The workspace: the nearest folder up from here holding ``workbench.toml``, and what lives in it."""

from __future__ import annotations

from pathlib import Path

WORKSPACE_FILE = "workbench.toml"


def find_workspace(start: Path) -> Path | None:
    """The nearest folder from ``start`` up holding :data:`WORKSPACE_FILE`, or ``None``."""
    for folder in (start, *start.parents):
        if (folder / WORKSPACE_FILE).is_file():
            return folder
    return None


def suite_files(workspace: Path) -> list[Path]:
    """The suites of a workspace: ``evals/*.yaml`` (and ``.yml``), then ``promptfooconfig.yaml`` if present."""
    folder = workspace / "evals"
    found = sorted(p for pattern in ("*.yaml", "*.yml") for p in folder.glob(pattern)) if folder.is_dir() else []
    promptfoo = workspace / "promptfooconfig.yaml"
    return found + ([promptfoo] if promptfoo.is_file() else [])
