"""Writing an eval suite into a fresh workspace, for the tests that run ``workbench eval`` on it."""

from __future__ import annotations

import textwrap
from pathlib import Path


def workspace_suite(root: Path, body: str) -> Path:
    """``evals/suite.yaml`` holding ``body`` (dedented) in a workspace at ``root`` (an empty ``workbench.toml``)."""
    (root / "workbench.toml").write_text("", encoding="utf-8")
    path = root / "evals" / "suite.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path
