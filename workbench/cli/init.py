"""``workbench init [DIR]``: a workspace: workbench.toml, prompts/ with a starter prompt, evals/ with a suite
for it, sessions/, reports/; then the next three commands. Nothing that exists is overwritten."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli._shared import EXIT_OK
from workbench.core.folders import private_folder

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
STARTERS = {
    "prompts/explain.yaml": """\
# A prompt: `workbench run --prompt explain --var topic="..."`, or open it in the app (`workbench`).
name: explain
description: a technical idea explained to a newcomer in a few sentences
params:
  temperature: 0.2
  max_tokens: 200
system: You explain technical ideas to newcomers, plainly, in at most {{sentences}} sentences.
messages:
  - role: user
    content: Explain {{topic}}.
variables:
  topic:
    description: what to explain
    default: server-sent events
  sentences:
    default: "3"
""",
    "evals/explain.yaml": """\
# An eval suite for prompts/explain.yaml: `workbench eval evals/explain.yaml` (promptfoo's format).
description: explanations stay short and on topic
prompts:
  - explain
targets:
  - local/smollm2-135m          # no key, no network; add yours, or pass -t provider/model
defaultTest:
  assert:
    - type: finish-reason       # not cut at max_tokens
      value: stop
    - type: regex               # some words came back
      value: '\\w+'
tests:
  - description: HTTP caching
    vars:
      topic: HTTP caching
  - description: database indexes, briefly
    vars:
      topic: database indexes
      sentences: "2"
""",
}
NEXT_STEPS = """\
next:
  workbench run --prompt explain --var topic="unit tests"   # race it (add -m provider/model)
  workbench eval evals/explain.yaml                        # its eval suite
  workbench                                                # the app: edit, race, read traces"""


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    private_folder(root)  # made 0700 when missing (as every folder workbench makes); an existing one kept as it is
    made = []
    config = root / "workbench.toml"
    if not config.exists():
        config.write_text(TEMPLATE, encoding="utf-8")
        made.append("workbench.toml")
    for folder in FOLDERS:
        if not (root / folder).exists():
            private_folder(root / folder)
            made.append(f"{folder}/")
    for name, text in STARTERS.items():
        if not any((root / name).parent.glob("*.y*ml")):  # a folder with prompts or suites gets no starter
            (root / name).write_text(text, encoding="utf-8")
            made.append(name)
    ignore = root / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    if ".workbench/" not in lines:
        ignore.write_text("\n".join([*lines, ".workbench/"]) + "\n", encoding="utf-8")
        made.append(".gitignore")
    print(f"workspace at {root}: " + (", ".join(made) if made else "already complete"))
    if "prompts/explain.yaml" in made:
        print(NEXT_STEPS)
    return EXIT_OK
