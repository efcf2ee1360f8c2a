"""``workbench prompts list|show|versions|diff|restore|label|save``: prompt files, their versions and labels."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import ConfigError

if TYPE_CHECKING:
    from workbench.core.prompts import PromptFileError


def add_parser(sub: Any) -> None:
    prompts = sub.add_parser("prompts", help="list, version, diff, label and restore the workspace's prompt files",
                             description="Prompt files: one YAML file per prompt in the workspace's prompts/ folder.")
    workspace_option(prompts)
    actions = prompts.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every prompt, with its saved version and labels")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="a prompt's file, or one of its versions")
    show.add_argument("ref", metavar="NAME[@REF]", help="name (the working file), name@3 or name@production")
    listed = actions.add_parser("versions", help="a prompt's versions and labels")
    listed.add_argument("name")
    listed.add_argument("--json", action="store_true", help="one JSON object per line")
    diff = actions.add_parser("diff", help="word-level diff between two versions")
    diff.add_argument("name")
    diff.add_argument("a", help="a version number or label")
    diff.add_argument("b", help="a version number or label")
    restore = actions.add_parser("restore", help="write a version back to the prompt's file")
    restore.add_argument("name")
    restore.add_argument("number", type=int)
    label = actions.add_parser("label", help="point a label (production, staging, ...) at a version")
    label.add_argument("name")
    label.add_argument("label")
    label.add_argument("number", type=int)
    save = actions.add_parser("save", help="save the prompt's file as a new version (if its content changed)")
    save.add_argument("name")


def workspace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", metavar="DIR",
                        help="the workspace (default: the nearest folder up from here with a workbench.toml)")


def workspace_dir(explicit: str | None = None) -> Path:
    """``--workspace DIR``, else the nearest workspace up from here; a clear error when there is none."""
    from workbench.core.workspace import WORKSPACE_FILE, find_workspace

    if explicit:
        folder = Path(explicit).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"workspace {folder} is not a folder", "pass an existing folder to --workspace")
        return folder.resolve()
    found = find_workspace(Path.cwd())
    if found is None:
        raise ConfigError(f"not inside a workspace (no {WORKSPACE_FILE} here or above)",
                          "run it inside a workspace, or pass --workspace DIR")
    return found


def variables(items: list[str]) -> dict[str, str]:
    """``--var key=value`` options as a mapping (the last value of a repeated key wins)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--var {item}: expected KEY=VALUE", "e.g. --var name=Ada")
        out[key.strip()] = value
    return out


def run(args: argparse.Namespace) -> int:
    from workbench.core import prompts as core

    workspace = workspace_dir(args.workspace)
    action = args.prompts_command
    if action == "list":
        return _list(workspace, args.json)
    if action == "show":
        name, which = core.split_ref(args.ref)
        if which is None:
            path = core.find_prompt_file(core.prompts_folder(workspace), name)
            if path is None:
                raise ConfigError(f"no prompt '{name}' in {core.prompts_folder(workspace)}",
                                  f"create prompts/{name}.yaml, or show a version: {name}@1")
            core.load_prompt_file(path)  # report a malformed file as file:line
            sys.stdout.write(path.read_text(encoding="utf-8"))
        else:
            version = core.resolve_ref(workspace, args.ref)
            sys.stdout.write(core.get_version_text(workspace, name, version.number))
        return 0
    if action == "versions":
        return _versions(workspace, args.name, args.json)
    if action == "diff":
        first = core.resolve_ref(workspace, f"{args.name}@{args.a}")
        second = core.resolve_ref(workspace, f"{args.name}@{args.b}")
        text = core.diff_versions(workspace, args.name, first.number, second.number)
        sys.stdout.write(text or f"versions {first.number} and {second.number} are identical\n")
        return 0
    if action == "restore":
        path = core.restore(workspace, args.name, args.number)
        print(f"restored {args.name}@{args.number} to {relative(path, workspace)}")
        return 0
    if action == "label":
        version = core.set_label(workspace, args.name, args.label, args.number)
        print(f"{args.name}@{args.label} → version {version.number}")
        return 0
    if action == "save":
        before = len(core.versions(workspace, args.name))
        version = core.save_version(workspace, core.load_current(workspace, args.name))
        new = len(core.versions(workspace, args.name)) > before
        print(f"{args.name}: {'saved version' if new else 'unchanged, still version'} {version.number} "
              f"({version.hash[:12]})")
        return 0
    raise ConfigError(f"unknown action {action}", "see: workbench prompts --help")


def relative(path: Path, workspace: Path) -> str:
    try:
        return str(path.relative_to(workspace))
    except ValueError:
        return str(path)


def _list(workspace: Path, as_json: bool) -> int:
    from workbench.core import prompts as core

    folder = core.prompts_folder(workspace)
    loaded, errors = core.load_prompts(folder)
    rows: list[dict[str, Any]] = []
    for prompt in loaded:
        digest = core.content_hash(core.dump_prompt(prompt))
        version = next((v for v in core.versions(workspace, prompt.name) if v.hash == digest), None)
        path = core.find_prompt_file(folder, prompt.name)
        rows.append({"name": prompt.name, "version": version.number if version else None, "hash": digest,
                     "labels": core.labels(workspace, prompt.name),
                     "path": relative(path, workspace) if path else None, "description": prompt.description})
    if as_json:
        for row in rows:
            print(json.dumps({k: row[k] for k in ("name", "version", "hash", "labels", "path")}, ensure_ascii=False))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("name", "version", "labels", "hash", "description"):
            table.add_column(column)
        for row in rows:
            labels = ", ".join(f"{k}→{v}" for k, v in row["labels"].items())
            shown = "unsaved" if row["version"] is None else str(row["version"])
            table.add_row(row["name"], shown, labels, row["hash"][:12], row["description"])
        Console().print(table)
    return report_file_errors(errors, workspace)


def report_file_errors(errors: list[PromptFileError], workspace: Path) -> int:
    """Print malformed files as ``path:line: problem`` on stderr; the exit code (1 if there were any)."""
    for error in errors:
        print(f"{relative(Path(error.path), workspace)}:{error.line}: {error.problem}", file=sys.stderr)
    return 1 if errors else 0


def _versions(workspace: Path, name: str, as_json: bool) -> int:
    from workbench.core import prompts as core

    known = core.versions(workspace, name)
    if not known:
        raise ConfigError(f"prompt '{name}' has no saved versions", f"save it: workbench prompts save {name}")
    by_number: dict[int, list[str]] = {}
    for label, number in core.labels(workspace, name).items():
        by_number.setdefault(number, []).append(label)
    for version in known:
        tags = by_number.get(version.number, [])
        if as_json:
            print(json.dumps({"name": name, "version": version.number, "hash": version.hash,
                              "created": version.created, "labels": tags}))
        else:
            print(f"{version.number:>4}  {version.created}  {version.hash[:12]}  {', '.join(tags)}".rstrip())
    return 0
