"""``workbench prompts new|list|show|versions|diff|restore|label|save``: prompt files, their versions and labels."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from workbench.cli._shared import EXIT_OK, known_targets, relative, report_file_errors, workspace_dir
from workbench.core.errors import ConfigError


def run(args: argparse.Namespace) -> int:
    from workbench.core import prompts as core

    workspace = workspace_dir(args.workspace, args.command)
    action = args.prompts_command
    if action == "new":
        return _new(workspace, args)
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
        return EXIT_OK
    if action == "versions":
        return _versions(workspace, args.name, args.json)
    if action == "diff":
        first = core.resolve_ref(workspace, f"{args.name}@{args.a}")
        second = core.resolve_ref(workspace, f"{args.name}@{args.b}")
        text = core.diff_versions(workspace, args.name, first.number, second.number)
        sys.stdout.write(text or f"versions {first.number} and {second.number} are identical\n")
        return EXIT_OK
    if action == "restore":
        path = core.restore(workspace, args.name, args.number)
        print(f"restored {args.name}@{args.number} to {relative(path, workspace)}")
        return EXIT_OK
    if action == "label":
        version = core.set_label(workspace, args.name, args.label, args.number)
        print(f"{args.name}@{args.label} → version {version.number}")
        return EXIT_OK
    if action == "save":
        before = len(core.versions(workspace, args.name))
        version = core.save_version(workspace, core.load_current(workspace, args.name))
        new = len(core.versions(workspace, args.name)) > before
        print(f"{args.name}: {'saved version' if new else 'unchanged, still version'} {version.number} "
              f"({version.hash[:12]})")
        return EXIT_OK
    raise ConfigError(f"unknown action {action}", "see: workbench prompts --help")


def _new(workspace: Path, args: argparse.Namespace) -> int:
    from workbench.core import prompts as core

    core.check_name(args.name)
    if args.models:
        from workbench.core.config import load_settings

        config = load_settings(cwd=workspace).config
        known_targets([config.expand(model) for model in args.models], config.provider_specs())
    path = core.create_prompt(workspace, args.name, system=args.system, user=args.user, targets=args.models)
    needed = core.variables_used(core.load_prompt_file(path))
    values = "".join(f' --var {name}="..."' for name in needed)
    print(f"created {relative(path, workspace)}")
    print(f"next: workbench run --prompt {args.name}{values}")
    return EXIT_OK


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
        from workbench.cli._shared import console
        from workbench.cli.render import new_table, print_table

        table = new_table("name", "version", "labels", "hash", "description", numbers=("version",))
        for row in rows:
            labels = ", ".join(f"{k}→{v}" for k, v in row["labels"].items())
            shown = "unsaved" if row["version"] is None else str(row["version"])
            table.add_row(row["name"], shown, labels, row["hash"][:12], row["description"])
        print_table(table, console())
    return report_file_errors(errors, workspace)


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
    return EXIT_OK
