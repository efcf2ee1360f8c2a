"""What several commands share: exit codes, reading files, the configuration and workspace of a command,
``--var`` values, paths shown relative to the workspace, the eval store. Light to import (``workbench run``
imports it before its request is out): everything heavy is imported where it is used."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from workbench.core.errors import ConfigError, WorkbenchError

if TYPE_CHECKING:
    from rich.console import Console

    from workbench.core.config import Settings
    from workbench.core.evals.run_store import EvalStore
    from workbench.core.prompts import PromptFileError
    from workbench.services import Services

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE, EXIT_TERMINATED = 0, 1, 2, 130, 141, 143
"""130, 141 and 143: 128 + the signal's number (SIGINT, SIGPIPE, SIGTERM), as shells report a process those
signals ended (141: stdout's reader went away, as `yes | head` ends)."""


def read_file(path: str) -> str:
    """A UTF-8 text file, or a :class:`WorkbenchError` saying why not."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise WorkbenchError(f"cannot read {path}: {exc.strerror}", "check the path") from None
    except UnicodeDecodeError:
        raise WorkbenchError(f"cannot read {path}: it is not UTF-8 text", "convert it to UTF-8") from None


STDIN_LIMIT = 64 * 1024 * 1024
"""The most text a command reads from stdin (a prompt of millions of tokens; never all of an endless pipe)."""


def read_stdin() -> str:
    """UTF-8 text from stdin (bounded), or a :class:`WorkbenchError` saying why not."""
    data = sys.stdin.buffer.read(STDIN_LIMIT + 1)
    if len(data) > STDIN_LIMIT:
        raise WorkbenchError(f"stdin holds more than {STDIN_LIMIT // (1024 * 1024)} MiB",
                             "pass a smaller text, or a file with --file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WorkbenchError(f"stdin is not UTF-8 text (byte {exc.start})", "convert it to UTF-8") from None


def invalid_parameter(exc: ValueError, command: str) -> WorkbenchError:
    """One line for a flag refused (``--max-tokens -1: input should be greater than or equal to 1``), never
    pydantic's multi-line report with a URL."""
    from workbench.core.bounds import FieldError

    if isinstance(exc, FieldError):
        return WorkbenchError(f"--{exc.name.replace('_', '-')} {exc.value}: {exc.problem[:1].lower()}{exc.problem[1:]}",
                              f"see `workbench {command} --help`")
    errors = getattr(exc, "errors", None)
    first = errors()[0] if callable(errors) else None
    if not first:
        return WorkbenchError(f"invalid parameter: {exc}", f"see `workbench {command} --help`")
    flag = "--" + "-".join(str(part) for part in first["loc"]).replace("_", "-")
    message = str(first["msg"])
    return WorkbenchError(f"{flag} {first.get('input')}: {message[:1].lower()}{message[1:]}",
                          f"see `workbench {command} --help`")


def known_provider(provider: str, providers: Mapping[str, object], where: str = "") -> None:
    """A :class:`WorkbenchError` when ``provider`` is none of ``providers`` (``where``: what named it)."""
    if provider not in providers:
        raise WorkbenchError(f"unknown provider '{provider}'{where}", "use one of: " + ", ".join(sorted(providers)))


def known_targets(targets: Sequence[str], providers: Mapping[str, object]) -> None:
    """A :class:`WorkbenchError` naming the first target that is not ``provider/model`` of a known provider."""
    from workbench.core.request import ModelRef

    for target in targets:
        known_provider(ModelRef.parse(target).provider, providers, f" in '{target}'")


def services(args: argparse.Namespace) -> Services:
    """The command's services (settings from ``--config``, else the nearest workspace's); close them after."""
    from workbench.services import Services

    config = getattr(args, "config", None)
    return Services(config_path=config or None)


def settings(args: argparse.Namespace) -> Settings:
    """The configuration ``--config`` names (default: the nearest workspace's)."""
    from workbench.core.config import load_settings

    config = getattr(args, "config", None)
    return load_settings(Path(config) if config else None)


def print_network_warnings(settings: Settings) -> None:
    for warning in settings.network(os.environ).warnings():
        print(warning, file=sys.stderr)


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            """The reader went away: handled as for every command (:func:`workbench.cli._dispatch`), not with
            rich's default exit."""
            self.quiet = True
            raise BrokenPipeError

    return _Console(stderr=stderr)


def workspace_dir(explicit: str | None = None, command: str | None = None) -> Path:
    """``--workspace DIR``, else the nearest workspace up from here; a clear error when there is none, whose hint
    names how ``command`` takes a workspace: its ``--workspace DIR`` (before the action), or, for a command
    without one (run, load), ``--config``."""
    from workbench.core.workspace import WORKSPACE_FILE, find_workspace

    if explicit:
        folder = Path(explicit).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"workspace {folder} is not a folder", "pass an existing folder to --workspace")
        return folder.resolve()
    found = find_workspace(Path.cwd())
    if found is None:
        named = (f"`workbench {command} --workspace DIR ...`" if command
                 else f"--config DIR/{WORKSPACE_FILE}")
        raise ConfigError(f"not inside a workspace (no {WORKSPACE_FILE} here or above)",
                          f"run it inside one (`workbench init` makes one), or name one: {named}")
    return found


def optional_workspace(args: argparse.Namespace) -> Path | None:
    """:func:`workspace_dir`, or ``None`` outside a workspace (a session file's path works anywhere)."""
    try:
        return workspace_dir(args.workspace, args.command)
    except ConfigError:
        return None


def variables(items: list[str]) -> dict[str, str]:
    """``--var key=value`` options as a mapping (the last value of a repeated key wins)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--var {item}: expected KEY=VALUE", "e.g. --var name=Ada")
        out[key.strip()] = value
    return out


def relative(path: Path, workspace: Path) -> str:
    """``path`` relative to the workspace when it is inside it."""
    try:
        return str(path.relative_to(workspace))
    except ValueError:
        return str(path)


def report_file_errors(errors: list[PromptFileError], workspace: Path) -> int:
    """Print malformed files as ``path:line: problem`` on stderr; the exit code (1 if there were any)."""
    for error in errors:
        print(f"{relative(Path(error.path), workspace)}:{error.line}: {error.problem}", file=sys.stderr)
    return 1 if errors else 0


def eval_store(settings: Settings) -> EvalStore:
    """The eval store beside the configuration's trace log."""
    from workbench.core.evals.run_store import EvalStore, default_path

    return EvalStore(default_path(settings.trace_path(os.environ)), settings.redactor())


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (what CI and ``timeout`` send) as Ctrl-C: through the SIGINT handler in force (asyncio's cancels the
    main task), else a KeyboardInterrupt."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While it lasts, SIGTERM stops the command as Ctrl-C does (in the main thread; elsewhere it does nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
