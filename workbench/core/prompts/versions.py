"""Prompt versions and labels, kept in the workspace under ``.workbench/prompts/<name>/``.

Each version is the canonical YAML (:func:`dump_prompt`) in ``<number>.yaml``, written once and never changed;
``index.json`` holds every version's number, sha256 and creation time, and the labels (``production`` → 3).
The working files in ``prompts/`` are written here too: a new one (:func:`create_prompt`), and edits in place
that keep the rest of the file as it was written (:func:`write_prompt`, :func:`restore`).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.folders import private_folder
from workbench.core.prompts.model import (
    Prompt,
    PromptFileError,
    PromptMessage,
    PromptParams,
    Variable,
    check_name,
    dump_prompt,
    find_prompt_file,
    load_prompt_file,
    parse_prompt,
    prompt_data,
    variables_used,
)
from workbench.core.yaml_edit import apply_changes

PROMPTS_DIR = "prompts"
_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Version:
    name: str
    number: int
    hash: str
    created: str


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prompts_folder(workspace: Path) -> Path:
    return workspace / PROMPTS_DIR


def store_folder(workspace: Path, name: str) -> Path:
    return workspace / ".workbench" / "prompts" / check_name(name)


def atomic_write(path: Path, text: str) -> None:
    private_folder(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_index(workspace: Path, name: str) -> dict[str, Any]:
    path = store_folder(workspace, name) / "index.json"
    if not path.exists():
        return {"versions": [], "labels": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the version index ({exc})",
                          "restore it from a backup, or delete the folder to start the history again") from None
    if not isinstance(data, dict) or not isinstance(data.get("versions"), list):
        raise ConfigError(f"{path}: the version index is malformed", "restore it from a backup")
    data.setdefault("labels", {})
    return data


def _write_index(workspace: Path, name: str, index: dict[str, Any]) -> None:
    atomic_write(store_folder(workspace, name) / "index.json", json.dumps(index, indent=2, sort_keys=True) + "\n")


def _version(name: str, entry: dict[str, Any]) -> Version:
    return Version(name=name, number=int(entry["number"]), hash=str(entry["hash"]), created=str(entry["created"]))


def versions(workspace: Path, name: str) -> list[Version]:
    """Every version of ``name``, oldest first (empty if it was never saved)."""
    return [_version(name, e) for e in _read_index(workspace, name)["versions"]]


def labels(workspace: Path, name: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(_read_index(workspace, name)["labels"].items())}


def find_version_by_hash(workspace: Path, name: str, digest: str) -> Version | None:
    return next((v for v in versions(workspace, name) if v.hash == digest), None)


def save_version(workspace: Path, prompt: Prompt) -> Version:
    """Store the prompt as a new version, unless a version with the same content exists (then return that one).

    A version holds its tools themselves, not the ``file://`` path they were read from."""
    text = dump_prompt(prompt.model_copy(update={"tools_file": None}))
    digest = content_hash(text)
    index = _read_index(workspace, prompt.name)
    for entry in index["versions"]:
        if entry["hash"] == digest:
            return _version(prompt.name, entry)
    number = max((int(e["number"]) for e in index["versions"]), default=0) + 1
    folder = store_folder(workspace, prompt.name)
    private_folder(folder)
    try:
        with open(folder / f"{number}.yaml", "x", encoding="utf-8", newline="\n") as fh:  # immutable: never overwrite
            fh.write(text)
    except FileExistsError:
        raise ConfigError(f"version {number} of '{prompt.name}' already exists but is not in the index",
                          f"another save may be running; otherwise remove {folder / f'{number}.yaml'}") from None
    entry = {"number": number, "hash": digest, "created": datetime.now(UTC).isoformat(timespec="seconds")}
    index["versions"].append(entry)
    _write_index(workspace, prompt.name, index)
    return _version(prompt.name, entry)


def _entry(workspace: Path, name: str, number: int) -> Version:
    for version in versions(workspace, name):
        if version.number == number:
            return version
    known = [v.number for v in versions(workspace, name)]
    hint = f"known versions: {', '.join(map(str, known))}" if known else f"save it first: workbench prompts save {name}"
    raise ConfigError(f"prompt '{name}' has no version {number}", hint)


def get_version_text(workspace: Path, name: str, number: int) -> str:
    version = _entry(workspace, name, number)
    path = store_folder(workspace, name) / f"{number}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read version {number} of '{name}': {exc.strerror}",
                          "the version store is damaged") from None
    if content_hash(text) != version.hash:
        raise ConfigError(f"version {number} of '{name}' does not match its recorded hash",
                          f"{path} was edited; versions are immutable")
    return text


def get_version(workspace: Path, name: str, number: int) -> Prompt:
    return parse_prompt(get_version_text(workspace, name, number), store_folder(workspace, name) / f"{number}.yaml")


def set_label(workspace: Path, name: str, label: str, number: int) -> Version:
    """Point ``label`` at version ``number`` (moving it if it pointed elsewhere: that is a rollback)."""
    if not _LABEL.match(label):
        raise ConfigError(f"'{label}' is not a label name",
                          "start with a letter; use letters, digits, '.', '_' and '-' (e.g. production)")
    version = _entry(workspace, name, number)
    index = _read_index(workspace, name)
    index["labels"][label] = number
    _write_index(workspace, name, index)
    return version


def remove_label(workspace: Path, name: str, label: str) -> None:
    index = _read_index(workspace, name)
    if index["labels"].pop(label, None) is None:
        raise ConfigError(f"prompt '{name}' has no label '{label}'", "see: workbench prompts versions " + name)
    _write_index(workspace, name, index)


def split_ref(ref: str) -> tuple[str, str | None]:
    name, sep, which = ref.partition("@")
    check_name(name)
    if sep and not which:
        raise ConfigError(f"'{ref}' names no version", "write name@3, name@production or just name")
    return name, which if sep else None


def resolve_ref(workspace: Path, ref: str) -> Version:
    """``name@3`` → version 3, ``name@production`` → the labelled version, ``name`` → the newest version."""
    name, which = split_ref(ref)
    if which is None:
        known = versions(workspace, name)
        if not known:
            raise ConfigError(f"prompt '{name}' has no saved versions", f"save it: workbench prompts save {name}")
        return known[-1]
    if which.isdigit():
        return _entry(workspace, name, int(which))
    pointed = labels(workspace, name).get(which)
    if pointed is None:
        have = ", ".join(labels(workspace, name)) or "none"
        raise ConfigError(f"prompt '{name}' has no label '{which}'", f"labels: {have}")
    return _entry(workspace, name, pointed)


def write_prompt(path: Path, prompt: Prompt) -> None:
    """Write ``prompt`` to its working file: a new file in the canonical form (:func:`dump_prompt`); an existing
    one edited in place, only the values that differ changed (its comments, order and formatting kept)."""
    if not path.exists():
        atomic_write(path, dump_prompt(prompt))
        return
    current = load_prompt_file(path)
    with open(path, encoding="utf-8", newline="") as fh:  # line endings as they are
        text = fh.read()
    atomic_write(path, apply_changes(text, prompt_data(current), prompt_data(prompt)))


def create_prompt(workspace: Path, name: str, *, system: str | None = None, user: str | None = None,
                  targets: Sequence[str] = ()) -> Path:
    """A new ``prompts/<name>.yaml`` in the canonical form: ``system``, one user message (``{{input}}`` when
    not given), ``targets``, and every ``{{variable}}`` the texts use, declared. An existing prompt is refused."""
    folder = prompts_folder(workspace)
    existing = find_prompt_file(folder, name)
    if existing is not None:
        raise ConfigError(f"prompt '{name}' exists already: {PROMPTS_DIR}/{existing.name}",
                          "edit that file, or pick another name (see: workbench prompts list)")
    prompt = Prompt(name=name, targets=list(targets), params=PromptParams(temperature=0.2, max_tokens=1024),
                    system=system, messages=[PromptMessage(role="user", content=user or "{{input}}")])
    declared = {variable: Variable(description=f"the {variable}") for variable in variables_used(prompt)}
    path = folder / f"{name}.yaml"
    atomic_write(path, dump_prompt(prompt.model_copy(update={"variables": declared})))
    return path


def restore(workspace: Path, name: str, number: int) -> Path:
    """Write version ``number`` back to the prompt's file (saving it again creates no version: same content).

    A file that does not load (malformed) is replaced by the version's text."""
    text = get_version_text(workspace, name, number)
    path = find_prompt_file(prompts_folder(workspace), name) or prompts_folder(workspace) / f"{name}.yaml"
    try:
        write_prompt(path, parse_prompt(text, path))
    except PromptFileError:
        atomic_write(path, text)
    return path


def pin(workspace: Path, ref: str) -> tuple[Prompt, Version]:
    """The prompt ``ref`` names and its immutable version, so whatever uses it can point at that version.

    ``name`` is the working file, saved as a new version first if it changed; ``name@3`` and
    ``name@production`` are saved versions."""
    name, which = split_ref(ref)
    if which is None:
        prompt = load_current(workspace, name)
        return prompt, save_version(workspace, prompt)
    version = resolve_ref(workspace, ref)
    return get_version(workspace, name, version.number), version


def load_current(workspace: Path, name: str) -> Prompt:
    """The prompt's working file, ``prompts/<name>.yaml``."""
    path = find_prompt_file(prompts_folder(workspace), name)
    if path is None:
        raise ConfigError(f"no prompt '{name}' in {prompts_folder(workspace)}",
                          f"create {PROMPTS_DIR}/{name}.yaml")
    return load_prompt_file(path)


# --- word diff -----------------------------------------------------------------------------------------------

_TOKENS = re.compile(r"\s+|[^\s]+")


def _mark(text: str, opening: str, closing: str) -> str:
    """Wrap each line's words in markers, leaving the whitespace around them (and the newlines) outside."""
    out = []
    for piece in re.split(r"(\n)", text):
        if piece == "\n" or not piece.strip():
            out.append(piece)
            continue
        lead = piece[: len(piece) - len(piece.lstrip())]
        trail = piece[len(piece.rstrip()):]
        out.append(f"{lead}{opening}{piece.strip()}{closing}{trail}")
    return "".join(out)


def _word_diff_block(old: str, new: str) -> str:
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append("".join(a[i1:i2]))
            continue
        if tag in ("delete", "replace"):
            out.append(_mark("".join(a[i1:i2]), "[-", "-]"))
        if tag in ("insert", "replace"):
            out.append(_mark("".join(b[j1:j2]), "{+", "+}"))
    return "".join(out)


def word_diff(old: str, new: str, *, from_label: str = "a", to_label: str = "b", context: int = 2) -> str:
    """A unified-style diff whose changed lines show word changes inline as ``[-removed-]{+added+}``.

    Empty when the texts are equal. Unchanged lines start with a space, changed ones with ``~``.
    """
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    groups = list(difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context))
    if not groups:
        return ""
    out = [f"--- {from_label}\n", f"+++ {to_label}\n"]
    for group in groups:
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(f"@@ -{i1 + 1},{i2 - i1} +{j1 + 1},{j2 - j1} @@\n")
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out.extend(" " + line for line in a[a1:a2])
                continue
            block = _word_diff_block("".join(a[a1:a2]), "".join(b[b1:b2]))
            out.extend("~" + line for line in block.splitlines(keepends=True))
    text = "".join(out)
    return text if text.endswith("\n") else text + "\n"


def diff_versions(workspace: Path, name: str, first: int, second: int) -> str:
    return word_diff(get_version_text(workspace, name, first), get_version_text(workspace, name, second),
                     from_label=f"{name}@{first}", to_label=f"{name}@{second}")


