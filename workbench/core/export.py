"""Export workspace artefacts (a prompt version, a session, an eval run's report) into a repository folder.

Every export is a list of ``(relative path, bytes)`` and a commit message, handed to :func:`export_files`:
it writes only the files whose bytes differ, and with ``commit`` makes exactly one git commit holding
only those paths (none when nothing changed). The bytes never carry a time, so exporting the same thing
twice gives identical files.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from workbench.core.errors import ConfigError, WorkbenchError
from workbench.core.evals.model import RunReport
from workbench.core.folders import private_folder
from workbench.core.prompts import get_version_text, labels, pin
from workbench.core.sessions import SESSIONS_DIR, dump_session, load_session_file, redacted_session
from workbench.core.traces.redact import Redactor

ExportFile = tuple[str, bytes]
"""A file to export: its path relative to the destination (``/``-separated) and its exact content."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    root: Path
    paths: tuple[str, ...]
    """Every exported path, relative to ``root``."""
    written: tuple[str, ...]
    """The paths whose content changed on disk."""
    message: str
    committed: str | None = None
    """The new commit's short hash (``None`` without ``commit``, or when there was nothing to commit)."""


def check_destination(root: Path) -> None:
    """The destination folder, made if missing: checked before anything is exported (or saved)."""
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--to {root} is a file, not a folder", "pass a folder (a repository) to export into")
    try:
        private_folder(root)
    except OSError as exc:
        raise ConfigError(f"--to {root}: cannot make the folder ({exc.strerror})",
                          "pass a folder you can write to") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise ConfigError(f"--to {root}: the folder is not writable", "pass a folder you can write to")


def export_files(root: Path, files: Sequence[ExportFile], message: str, *, commit: bool = False) -> ExportResult:
    """Write ``files`` under ``root``; with ``commit``, make one git commit of exactly these paths."""
    paths = tuple(_safe_relative(rel) for rel, _ in files)
    check_destination(root)
    if commit:
        _git(root, "rev-parse", "--show-toplevel", problem=f"{root} is not inside a git repository",
             hint=f"run `git init {root}` first, or export without --commit")
    written = []
    for rel, (_, data) in zip(paths, files, strict=True):
        target = root / rel
        if target.is_file() and target.read_bytes() == data:
            continue
        try:
            private_folder(target.parent)
            target.write_bytes(data)
        except OSError as exc:
            raise WorkbenchError(f"cannot write {target}: {exc.strerror}", "check the destination folder") from None
        written.append(rel)
    committed = None
    if commit:
        _git(root, "add", "--", *paths)
        if _git(root, "status", "--porcelain", "--", *paths):
            _git(root, "commit", "--quiet", "-m", message, "--", *paths, problem="git commit failed",
                 hint="if git asks who you are, set user.name and user.email (git config)")
            committed = _git(root, "rev-parse", "--short", "HEAD").strip()
    return ExportResult(root, paths, tuple(written), message, committed)


def _safe_relative(rel: str) -> str:
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ConfigError(f"'{rel}' is not a path inside the destination", "export paths are relative, without '..'")
    return str(path)


def _git(root: Path, *args: str, problem: str | None = None, hint: str = "see git's message") -> str:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise WorkbenchError("git is not installed", "install git, or export without --commit") from None
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise WorkbenchError(f"{problem or 'git ' + args[0] + ' failed'} ({detail})", hint)
    return done.stdout


# --- what each artefact exports ----------------------------------------------------------------------------------


def prompt_export(workspace: Path, ref: str) -> tuple[list[ExportFile], str]:
    """``prompts/<name>.yaml`` (the version's exact content) and ``prompts/<name>.meta.json``, and the message."""
    prompt, version = pin(workspace, ref)
    text = get_version_text(workspace, prompt.name, version.number)
    on_version = [label for label, number in labels(workspace, prompt.name).items() if number == version.number]
    meta = {"name": prompt.name, "version": version.number, "hash": version.hash, "labels": on_version}
    files = [(f"prompts/{prompt.name}.yaml", text.encode("utf-8")),
             (f"prompts/{prompt.name}.meta.json", (json.dumps(meta, indent=2) + "\n").encode("utf-8"))]
    suffix = f" ({', '.join(on_version)})" if on_version else ""
    return files, f"prompts: {prompt.name} v{version.number}{suffix}"


def session_export(path: Path, redactor: Redactor | None = None) -> tuple[list[ExportFile], str]:
    """``sessions/<name>.yaml`` and the message: the file's exact content once it is known to be valid, unless it
    holds what ``redactor`` (the settings' rules) redacts (a file saved before them, or written by hand): then the
    session written again with its texts redacted."""
    session = load_session_file(path)
    kept = redacted_session(session, redactor or Redactor.build())
    data = path.read_bytes() if kept == session else dump_session(kept).encode("utf-8")
    origin = f" ({session.prompt.name} v{session.prompt.version})" if session.prompt else ""
    return [(f"{SESSIONS_DIR}/{session.name}.yaml", data)], f"sessions: {session.name}{origin}"


def report_export(report: RunReport, formats: Sequence[str]) -> tuple[list[ExportFile], str]:
    """``evals/reports/<suite>.<ext>`` per format: one stable path per suite, so the repository's history
    of that file is the suite's history of runs; and the message with the run's pass rate."""
    from workbench.core.evals.report_formats import render, report_filename

    files = []
    for fmt in dict.fromkeys(formats):
        extension = report_filename(report, fmt).rpartition(".")[2]
        files.append((f"evals/reports/{_file_safe(report.run.suite)}.{extension}", render(report, fmt).encode("utf-8")))
    message = (f"evals: {report.run.suite} run {report.run.id}: {report.passes}/{report.runs} passed "
               f"({report.pass_rate:.0%})")
    return files, message


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in name) or "suite"
