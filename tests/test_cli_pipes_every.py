"""Every `workbench` subcommand, with its reader gone before it writes (`| head -0`): the command stops quietly,
exit 141 as for SIGPIPE when it had something to print, and no traceback or "Exception ignored" in any case."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_cli import json_lines
from tests.test_readme import ROOT, commands
from workbench.cli import build_parser
from workbench.fakeserver.process import FakeServerProcess

COMMANDS: dict[str, list[str]] = {
    "run": ["run", "hi", "-m", "fake/demo"],
    "tokens": ["tokens", "-m", "openai/gpt-4.1-mini", "prompts/support-reply.yaml"],
    "traces": ["traces", "--help"],
    "traces list": ["traces", "list"],
    "traces show": ["traces", "show", "{call}"],
    "traces search": ["traces", "search", "hi"],
    "traces stats": ["traces", "stats"],
    "traces export": ["traces", "export"],
    "traces prune": ["traces", "prune", "--before", "2000-01-01"],
    "traces check": ["traces", "check"],
    "traces recover": ["traces", "recover", "--to", "{tmp}/recovered-{uniq}.db"],
    "traces tail": ["traces", "tail", "-n", "1"],
    "keys": ["keys", "--help"],
    "keys set": ["keys", "set", "--stdin", "anthropic"],
    "keys list": ["keys", "list"],
    "keys delete": ["keys", "delete", "gemini"],
    "keys test": ["keys", "test", "openai"],
    "prompts": ["prompts", "--help"],
    "prompts list": ["prompts", "list"],
    "prompts show": ["prompts", "show", "support-reply"],
    "prompts versions": ["prompts", "versions", "support-reply"],
    "prompts diff": ["prompts", "diff", "support-reply", "1", "2"],
    "prompts restore": ["prompts", "restore", "support-reply", "1"],
    "prompts label": ["prompts", "label", "support-reply", "production", "2"],
    "prompts save": ["prompts", "save", "summarise"],
    "prompts new": ["prompts", "new", "greeting-{uniq}"],
    "sessions": ["sessions", "--help"],
    "sessions list": ["sessions", "list"],
    "sessions show": ["sessions", "show", "double-charge"],
    "export": ["export", "--help"],
    "export prompt": ["export", "prompt", "support-reply", "--to", "{tmp}/repo"],
    "export session": ["export", "session", "double-charge", "--to", "{tmp}/repo"],
    "export report": ["export", "report", "last", "--to", "{tmp}/repo"],
    "export code": ["export", "code", "support-reply", "--target", "openai/gpt-4.1-mini", "--var", "message=hi"],
    "init": ["init", "{tmp}/new-workspace-{uniq}"],
    "config": ["config", "--help"],
    "config show": ["config", "show"],
    "models": ["models"],
    "eval": ["eval", "evals/support.yaml", "-t", "fake/demo", "--json"],
    "evals": ["evals", "--help"],
    "evals list": ["evals", "list"],
    "evals show": ["evals", "show", "last"],
    "evals diff": ["evals", "diff", "{first_run}", "last", "--json"],
    "evals resume": ["evals", "resume", "--help"],  # a stopped run's resume: tests/test_eval_batch.py
    "evals cancel": ["evals", "cancel", "--help"],
    "load": ["load", "fake/demo", "--concurrency", "1", "--duration", "1s", "--suite", "evals/support.yaml", "--json"],
    "sync": ["sync", "--help"],  # against a team store: tests/test_team_sync.py
    "fake-server": ["fake-server", "--port", "0"],
    "proxy": ["proxy", "--port", "0"],
}
"""One invocation per command that would print something (a new command must be added here)."""


def run(argv: list[str], cwd: Path, env: dict[str, str], *, reader: bool,
        stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``workbench ARGV``; without a reader, its stdout is a pipe whose read end is closed before it starts."""
    argv = [arg.replace("{uniq}", "with-reader" if reader else "without") for arg in argv]
    if reader:
        return subprocess.run([sys.executable, "-m", "workbench", *argv], cwd=cwd, env=env, input=stdin,
                              capture_output=True, text=True, timeout=120)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "workbench", *argv], cwd=cwd, env=env, input=stdin,
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, fake_server: FakeServerProcess) -> Iterator[
        tuple[Path, dict[str, str], dict[str, str]]]:
    """A copy of the example workspace with two prompt versions, a stored key, traces and two eval runs."""
    tmp = tmp_path_factory.mktemp("pipes")
    ws = tmp / "ws"
    for part in ("prompts", "evals", "sessions"):
        shutil.copytree(ROOT / part, ws / part)
    shutil.copy(ROOT / "workbench.toml", ws)
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL")) and k != "OLLAMA_HOST"}
    env |= {"WORKBENCH_FAKE_URL": fake_server.base_url, "WORKBENCH_TRACES": str(tmp / "traces.db"),
            "WORKBENCH_LOG_DIR": str(tmp / "logs"), "WORKBENCH_TEST_KEYRING": str(tmp / "keyring.json"),
            "PYTHON_KEYRING_BACKEND": "tests.keyring_backend.FileKeyring",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "XDG_DATA_HOME": str(tmp / "data"), "XDG_CONFIG_HOME": str(tmp / "config"),
            "OPENAI_BASE_URL": f"{fake_server.base_url}/v1", "OLLAMA_HOST": "http://127.0.0.1:9"}

    def setup(*argv: str, stdin: str = "") -> str:
        done = run(list(argv), ws, env, reader=True, stdin=stdin)
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
        return done.stdout

    setup("keys", "set", "--stdin", "openai", stdin="sk-test-0123456789abcdef\n")
    setup("keys", "set", "--stdin", "gemini", stdin="gm-test-0123456789abcdef\n")
    setup("prompts", "save", "support-reply")
    prompt = ws / "prompts" / "support-reply.yaml"
    prompt.write_text(prompt.read_text().replace("Be warm and brief", "Be warm, brief"))
    setup("prompts", "save", "support-reply")
    setup("run", "hi", "-m", "fake/demo")
    first_run = json_lines(setup("eval", "evals/support.yaml", "-t", "fake/demo", "--json"))[-1]
    setup("eval", "evals/support.yaml", "-t", "fake/demo")
    call = json_lines(setup("traces", "list", "--json", "-n", "1"))[0]
    values = {"tmp": str(tmp), "call": str(call["id"]), "first_run": str(first_run["run"])}
    yield ws, env, values


def test_every_command_has_an_invocation_here() -> None:
    assert sorted(line.removeprefix("workbench ") for line, _ in commands(build_parser())) == sorted(COMMANDS)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_whose_reader_is_gone_stops_quietly(
        command: str, workspace: tuple[Path, dict[str, str], dict[str, str]]) -> None:
    ws, env, values = workspace
    argv = [arg.format(uniq="{uniq}", **values) for arg in COMMANDS[command]]
    stdin = "sk-ant-test-0123456789abcdef\n" if command == "keys set" else ""
    if command not in ("fake-server", "proxy", "traces tail"):  # it serves (follows) until stopped: only its first line
        wrote = run(argv, ws, env, reader=True, stdin=stdin)
        assert wrote.returncode == 0 and wrote.stdout.strip(), (wrote.stdout, wrote.stderr)
    gone = run(argv, ws, env, reader=False, stdin=stdin)
    assert gone.returncode == (0 if "--help" in argv else 141), gone.stderr  # argparse's help: exit 0, as always
    assert "Traceback" not in gone.stderr and "Exception ignored" not in gone.stderr, gone.stderr
    assert "BrokenPipe" not in gone.stderr and "Broken pipe" not in gone.stderr, gone.stderr
