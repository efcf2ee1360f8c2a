"""``workbench init [DIR]``: a workspace: workbench.toml, prompts/, evals/, sessions/, reports/."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli._shared import EXIT_OK

TEMPLATE = """\
# workbench configuration for this workspace (see the README for every section).
# Keys never go here: use `workbench keys set PROVIDER` or the provider's environment variable.

[defaults]
# targets = ["openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5"]
# max_tokens = 1024

[aliases]
# fast = "groq/llama-3.3-70b-versatile"

[traces]
metadata_only = false
redact = ["email", "card", "api_key"]

[policy.retry]
max_retries = 2
"""
FOLDERS = ("prompts", "evals", "sessions", "reports")


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    made = []
    config = root / "workbench.toml"
    if not config.exists():
        config.write_text(TEMPLATE, encoding="utf-8")
        made.append("workbench.toml")
    for folder in FOLDERS:
        if not (root / folder).exists():
            (root / folder).mkdir()
            made.append(f"{folder}/")
    ignore = root / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    if ".workbench/" not in lines:
        ignore.write_text("\n".join([*lines, ".workbench/"]) + "\n", encoding="utf-8")
        made.append(".gitignore")
    print(f"workspace at {root}: " + (", ".join(made) if made else "already complete"))
    return EXIT_OK
